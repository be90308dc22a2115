//! The outbox relay (`buttress_stack::outbox`).
//!
//! Environment: `PORT` (8085), `BIND`, `DATABASE_URL` (required),
//! `NATS_URL` (`nats://127.0.0.1:4222`), `OUTBOX_TABLE` (`outbox`),
//! `OUTBOX_STREAM` (`STACK_EVENTS`), `OUTBOX_SUBJECT_PREFIX`
//! (`stack.events`), `BATCH_SIZE` (100), `POLL_INTERVAL` (200ms),
//! `STATS_INTERVAL` (1s), `KEEP_SENT` (1h), `DUPLICATE_WINDOW` (10m),
//! `POLICY_FILE` (unset: the built-in policy), `ADMIN_TOKEN`,
//! `HEALTH_CHECK_TIMEOUT` (2s), `DRAIN_TIMEOUT` (10s).

use std::process::ExitCode;

use buttress_stack::env::Env;
use buttress_stack::outbox::{Relay, RelayConfig};
use buttress_stack::serving;

#[tokio::main]
async fn main() -> ExitCode {
    serving::init_logging();
    // Before anything is built (see `install_metrics`).
    serving::install_metrics();
    let config = match RelayConfig::from_env(&Env::process()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("outbox-relay: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match serving::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("outbox-relay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let relay = match Relay::new(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("outbox-relay: {e}");
            return ExitCode::from(2);
        }
    };
    let shutdown = relay.shutdown();
    if let Err(e) = shutdown.listen_for_signals() {
        eprintln!("outbox-relay: cannot listen for signals: {e}");
        return ExitCode::FAILURE;
    }
    let address = listener.local_addr().unwrap_or(relay.config().listen);
    tracing::info!(%address, "outbox relay listening");
    let task = relay.spawn();
    serving::serve_with_task("outbox relay", listener, relay.router(), &shutdown, task).await
}
