//! The journal relay (`buttress_stack::journal_relay`).
//!
//! Environment: `PORT` (8086), `BIND`, `JOURNAL_DIR` (`data/telemetry`),
//! `MACHINE_ID` (the host name), `NATS_URL` (`nats://127.0.0.1:4222`),
//! `TELEMETRY_STREAM` (`TELEMETRY`), `TELEMETRY_SUBJECT_PREFIX`
//! (`telemetry`), `CHECKPOINT_DIR`
//! (`data/journal-relay`), `BATCH_SIZE` (256), `POLL_INTERVAL` (200ms),
//! `DUPLICATE_WINDOW` (10m), `POLICY_FILE` (unset: the built-in policy),
//! `ADMIN_TOKEN`, `HEALTH_CHECK_TIMEOUT` (2s).

use std::process::ExitCode;

use buttress_stack::env::Env;
use buttress_stack::journal_relay::{JournalRelay, JournalRelayConfig};
use buttress_stack::serving;

#[tokio::main]
async fn main() -> ExitCode {
    serving::init_logging();
    // Before anything is built (see `install_metrics`).
    serving::install_metrics();
    let config = match JournalRelayConfig::from_env(&Env::process()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("journal-relay: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match serving::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("journal-relay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let relay = match JournalRelay::new(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("journal-relay: {e}");
            return ExitCode::from(2);
        }
    };
    let shutdown = relay.shutdown();
    if let Err(e) = shutdown.listen_for_signals() {
        eprintln!("journal-relay: cannot listen for signals: {e}");
        return ExitCode::FAILURE;
    }
    let address = listener.local_addr().unwrap_or(relay.config().listen);
    tracing::info!(%address, "journal relay listening");
    let task = relay.spawn();
    serving::serve_with_task("journal relay", listener, relay.router(), &shutdown, task).await
}
