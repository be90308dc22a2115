//! The knowledge API (`buttress_stack::knowledge`).
//!
//! Environment: `PORT` (8080), `BIND`, `DATABASE_URL` (unset: documents in
//! memory), `REDIS_URL` (unset: limits and cache in process),
//! `EMBEDDINGS_URL`, `QDRANT_URL`, `QDRANT_COLLECTION`, `LLM_URL`,
//! `POLICY_FILE` (unset: the built-in policy), `JOURNAL_DIR`
//! (`data/telemetry`), `ADMIN_TOKEN`, `TOP_K` (4), `HEALTH_CHECK_TIMEOUT` (2s).

use std::process::ExitCode;

use buttress_stack::env::Env;
use buttress_stack::knowledge::{KnowledgeApi, KnowledgeConfig};
use buttress_stack::serving;

#[tokio::main]
async fn main() -> ExitCode {
    serving::init_logging();
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
    api.spawn_startup();
    let outcome = serving::serve(listener, api.router(), &shutdown).await;
    tracing::info!(?outcome, "knowledge-api stopped");
    ExitCode::from(outcome.exit_code() as u8)
}
