//! The chat backend (`buttress_stack::chat`).
//!
//! Environment: `PORT` (8084), `BIND`, `LLM_URL`, `LLM_API` (`completion`
//! or `chat`), `DATABASE_URL` (unset: memory in process), `NATS_URL`
//! (unset: events in process), `POLICY_FILE` (unset: the built-in policy),
//! `SUMMARY_INTERVAL` (30s), `ADMIN_TOKEN`, `HEALTH_CHECK_TIMEOUT` (2s),
//! `DRAIN_TIMEOUT` (10s).

use std::process::ExitCode;

use buttress_stack::chat::{Chat, ChatConfig};
use buttress_stack::env::Env;
use buttress_stack::serving;

#[tokio::main]
async fn main() -> ExitCode {
    serving::init_logging();
    // Before anything is built (see `install_metrics`).
    serving::install_metrics();
    let config = match ChatConfig::from_env(&Env::process()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chat: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match serving::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("chat: {e}");
            return ExitCode::FAILURE;
        }
    };
    let chat = match Chat::new(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chat: {e}");
            return ExitCode::from(2);
        }
    };
    let shutdown = chat.shutdown();
    if let Err(e) = shutdown.listen_for_signals() {
        eprintln!("chat: cannot listen for signals: {e}");
        return ExitCode::FAILURE;
    }
    let address = listener.local_addr().unwrap_or(chat.config().listen);
    tracing::info!(%address, "chat listening");
    let _summaries = chat.spawn_summaries();
    let outcome = serving::serve(listener, chat.router(), &shutdown).await;
    tracing::info!(?outcome, "chat stopped");
    ExitCode::from(outcome.exit_code() as u8)
}
