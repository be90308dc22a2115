//! The embeddings service: OpenAI-compatible `POST /v1/embeddings`, model
//! loaded in the background (`buttress_stack::embeddings`).
//!
//! Environment: `PORT` (8081), `BIND`, `EMBEDDINGS_MAX_INPUTS` (32),
//! `EMBEDDINGS_MAX_CHARS` (10000), `EMBEDDINGS_REQUEST_TIMEOUT` (30s),
//! `EMBEDDINGS_LOAD_DELAY` (none).

use std::process::ExitCode;

use buttress_stack::embeddings::{Embeddings, EmbeddingsConfig, router};
use buttress_stack::env::Env;
use buttress_stack::serving;

#[tokio::main]
async fn main() -> ExitCode {
    serving::init_logging();
    let config = match EmbeddingsConfig::from_env(&Env::process()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("embeddings: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match serving::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("embeddings: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = Embeddings::new(config);
    let shutdown = app.shutdown();
    if let Err(e) = shutdown.listen_for_signals() {
        eprintln!("embeddings: cannot listen for signals: {e}");
        return ExitCode::FAILURE;
    }
    tracing::info!(address = %app.config().listen, "embeddings listening; loading the model");
    let loader = app.clone();
    tokio::spawn(async move {
        if let Err(e) = loader.load().await {
            tracing::error!(error = %e, "the model did not load; /readyz stays 503");
        }
    });
    let outcome = serving::serve(listener, router(app), &shutdown).await;
    tracing::info!(?outcome, "embeddings stopped");
    ExitCode::from(outcome.exit_code() as u8)
}
