//! The embeddings service: OpenAI-compatible `POST /v1/embeddings`. The
//! server answers at once; the model loads in the background (retried 3
//! times, 5, 10 and 20 s apart, 2 minutes an attempt), and until it has, `/health`,
//! `/readyz` and the work answer `503` with `Retry-After`. A batch holds
//! at most 32 inputs of at most 10,000 characters each (`422` naming
//! each input in error otherwise), and a request gets 30 s.

mod config;
mod routes;

use std::sync::{Arc, OnceLock};

use buttress::BoxError;
use buttress::health::{Health, Shutdown};
use buttress::retry::{RetryConfig, RetryPolicy};

pub use config::{DEFAULT_PORT, EmbeddingsConfig};
pub use routes::router;

use crate::model::{HashedModel, MODEL_NAME};

/// A loaded model.
pub trait Embedder: Send + Sync + 'static {
    /// Its name, as the API reports it.
    fn name(&self) -> &str;
    /// The vector of one text.
    fn embed(&self, text: &str) -> Vec<f32>;
    /// The tokens `text` counts as.
    fn tokens(&self, text: &str) -> usize;
}

impl Embedder for HashedModel {
    fn name(&self) -> &str {
        MODEL_NAME
    }
    fn embed(&self, text: &str) -> Vec<f32> {
        HashedModel::embed(self, text)
    }
    fn tokens(&self, text: &str) -> usize {
        HashedModel::tokens(self, text)
    }
}

/// The service's state: the model once loaded, the health registry, and
/// the limits. Cheap to clone.
#[derive(Clone)]
pub struct Embeddings {
    model: Arc<OnceLock<Arc<dyn Embedder>>>,
    health: Health,
    config: Arc<EmbeddingsConfig>,
}

impl std::fmt::Debug for Embeddings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embeddings")
            .field("loaded", &self.model.get().is_some())
            .field("config", &self.config)
            .finish()
    }
}

impl Embeddings {
    /// A service with no model yet: it answers `503` until [`load`](Self::load) ends.
    pub fn new(config: EmbeddingsConfig) -> Self {
        Embeddings {
            model: Arc::new(OnceLock::new()),
            health: Health::new().version(env!("CARGO_PKG_VERSION")),
            config: Arc::new(config),
        }
    }

    /// Its health registry (the readiness gate is held while loading).
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Its settings.
    pub fn config(&self) -> &EmbeddingsConfig {
        &self.config
    }

    /// Whether the model has loaded.
    pub fn is_loaded(&self) -> bool {
        self.model.get().is_some()
    }

    /// The retries of a load: buttress-retry's `model_download` preset (3
    /// after the first attempt, 5, 10 and 20 s apart, 2 minutes an
    /// attempt, no budget).
    pub fn load_policy() -> Result<RetryPolicy, BoxError> {
        Ok(RetryPolicy::new(
            "embeddings-model",
            RetryConfig::model_download(),
        )?)
    }

    /// Loads the model with `loader`, retried by [`load_policy`](Self::load_policy),
    /// holding the readiness gate until it succeeds. When every attempt
    /// fails the gate stays closed and `/health` says why.
    pub async fn load_with<F, Fut, E>(&self, mut loader: F) -> Result<(), BoxError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Arc<dyn Embedder>, E>>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let policy = Self::load_policy()?;
        let model = self
            .health
            .readiness()
            .startup("loading the model", &policy, &mut loader)
            .await
            .map_err(|e| -> BoxError { Box::new(e) })?;
        let name = model.name().to_owned();
        let _ = self.model.set(model);
        tracing::info!(model = %name, "model loaded");
        Ok(())
    }

    /// Loads the default model (hashed features; after the configured
    /// `EMBEDDINGS_LOAD_DELAY`, to show a slow load).
    pub async fn load(&self) -> Result<(), BoxError> {
        let delay = self.config.load_delay;
        self.load_with(move || async move {
            tokio::time::sleep(delay).await;
            Ok::<_, std::io::Error>(Arc::new(HashedModel) as Arc<dyn Embedder>)
        })
        .await
    }

    /// A shutdown that closes this service's gate.
    pub fn shutdown(&self) -> Shutdown {
        Shutdown::new(self.health.readiness().clone())
    }

    fn model(&self) -> Option<Arc<dyn Embedder>> {
        self.model.get().cloned()
    }
}
