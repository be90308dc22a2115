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
    // Before anything is built (see `install_metrics`).
    serving::install_metrics();
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
    // When every load fails, stop (exit 1) so that a supervisor restarts
    // the service, rather than stay unready for good.
    let loading = {
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tokio::spawn(async move {
            let failed = app.load().await.err();
            if let Some(e) = &failed {
                tracing::error!(error = %e, "stopping: the model did not load");
                shutdown.trigger();
            }
            failed.is_some()
        })
    };
    let outcome = serving::serve(listener, router(app), &shutdown).await;
    tracing::info!(?outcome, "embeddings stopped");
    if loading.is_finished() && loading.await.unwrap_or(false) {
        return ExitCode::FAILURE;
    }
    ExitCode::from(outcome.exit_code() as u8)
}
