//! The learner (`buttress_stack::learner`).
//!
//! Environment: `PORT` (8083), `BIND`, `DATABASE_URL` (unset: patterns in
//! memory, checkpoints in files), `JOURNAL_DIR` (`data/telemetry`),
//! `CHECKPOINT_DIR` (`data/learner`), `LEARNER_NAME` (`learner`),
//! `PATTERNS_TABLE` (`learned_patterns`), `CHECKPOINT_TABLE`
//! (`learner_checkpoints`), `POLICY_FILE` (unset: the built-in policy),
//! `POLL_INTERVAL` (200ms), `OUTBOX_TABLE` (unset: no events; needs
//! `DATABASE_URL`), `TELEMETRY_SOURCE` (`journal`, or `nats` to read the
//! stream journal relays fill: then `NATS_URL` and `TELEMETRY_STREAM`
//! (`TELEMETRY`)), `ADMIN_TOKEN`, `HEALTH_CHECK_TIMEOUT` (2s).

use std::process::ExitCode;

use buttress_stack::env::Env;
use buttress_stack::learner::{Learner, LearnerConfig};
use buttress_stack::serving;

#[tokio::main]
async fn main() -> ExitCode {
    serving::init_logging();
    // Before anything is built (see `install_metrics`).
    serving::install_metrics();
    let config = match LearnerConfig::from_env(&Env::process()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("learner: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match serving::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("learner: {e}");
            return ExitCode::FAILURE;
        }
    };
    let learner = match Learner::new(config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("learner: {e}");
            return ExitCode::from(2);
        }
    };
    let shutdown = learner.shutdown();
    if let Err(e) = shutdown.listen_for_signals() {
        eprintln!("learner: cannot listen for signals: {e}");
        return ExitCode::FAILURE;
    }
    let address = listener.local_addr().unwrap_or(learner.config().listen);
    tracing::info!(%address, "learner listening");
    // When the learner cannot start or must stop (another one took over
    // its checkpoint), stop the process (exit 1) for its supervisor.
    let task = learner.spawn();
    serving::serve_with_task("learner", listener, learner.router(), &shutdown, task).await
}
