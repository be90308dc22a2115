//! The knowledge API (`buttress_stack::knowledge`).
//!
//! Environment: `PORT` (8080), `BIND`, `DATABASE_URL` (unset: documents in
//! memory), `REDIS_URL` (unset: limits and cache in process),
//! `EMBEDDINGS_URL`, `QDRANT_URL`, `QDRANT_COLLECTION`, `LLM_URL`, `LLM_API`
//! (`completion` or `chat`),
//! `POLICY_FILE` (unset: the built-in policy), `JOURNAL_DIR`
//! (`data/telemetry`), `JOURNAL_KEEP_BYTES` (`1GiB`), `ADMIN_TOKEN`, `TOP_K` (4), `HEALTH_CHECK_TIMEOUT` (2s).

use std::process::ExitCode;

use buttress_stack::env::Env;
use buttress_stack::knowledge::{KnowledgeApi, KnowledgeConfig};
use buttress_stack::serving;

#[tokio::main]
async fn main() -> ExitCode {
    serving::init_logging();
    // Before anything is built (see `install_metrics`).
    serving::install_metrics();
    let config = match KnowledgeConfig::from_env(&Env::process()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("knowledge-api: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match serving::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("knowledge-api: {e}");
            return ExitCode::FAILURE;
        }
    };
    let api = match KnowledgeApi::new(config) {
        Ok(api) => api,
        Err(e) => {
            eprintln!("knowledge-api: {e}");
            return ExitCode::from(2);
        }
    };
    let shutdown = api.shutdown();
    if let Err(e) = shutdown.listen_for_signals() {
        eprintln!("knowledge-api: cannot listen for signals: {e}");
        return ExitCode::FAILURE;
    }
    tracing::info!(address = %api.config().listen, "knowledge-api listening");
    // When the database never comes up, stop (exit 1) so that a
    // supervisor restarts the service, rather than stay unready for good.
    let startup = api.spawn_startup();
    let gave_up = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            match startup.await {
                Ok(Ok(())) => false,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "stopping: the service cannot start");
                    shutdown.trigger();
                    true
                }
                Err(_) => false,
            }
        })
    };
    let outcome = serving::serve(listener, api.router(), &shutdown).await;
    tracing::info!(?outcome, "knowledge-api stopped");
    if gave_up.is_finished() && gave_up.await.unwrap_or(false) {
        return ExitCode::FAILURE;
    }
    ExitCode::from(outcome.exit_code() as u8)
}
