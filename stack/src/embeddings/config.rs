//! The embeddings service's settings.

use std::net::SocketAddr;
use std::time::Duration;

use crate::env::{Env, EnvError};

/// The embeddings service's settings, from its environment.
#[derive(Debug, Clone)]
pub struct EmbeddingsConfig {
    /// Where it listens (`BIND`, `PORT`; default `0.0.0.0:8081`).
    pub listen: SocketAddr,
    /// The most inputs in one request (`EMBEDDINGS_MAX_INPUTS`, default 32).
    pub max_inputs: usize,
    /// The most characters in one input (`EMBEDDINGS_MAX_CHARS`, default 10,000).
    pub max_chars: usize,
    /// The longest a request may take (`EMBEDDINGS_REQUEST_TIMEOUT`, default 30 s).
    pub request_timeout: Duration,
    /// How long loading the default model takes (`EMBEDDINGS_LOAD_DELAY`,
    /// default none): a stand-in for a real model's load, to see the gate.
    pub load_delay: Duration,
}

/// The port the embeddings service listens on by default.
pub const DEFAULT_PORT: u16 = 8081;

impl Default for EmbeddingsConfig {
    fn default() -> Self {
        EmbeddingsConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            max_inputs: 32,
            max_chars: 10_000,
            request_timeout: Duration::from_secs(30),
            load_delay: Duration::ZERO,
        }
    }
}

impl EmbeddingsConfig {
    /// The settings `env` gives.
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        let d = EmbeddingsConfig::default();
        Ok(EmbeddingsConfig {
            listen: env.listen(DEFAULT_PORT)?,
            max_inputs: env.parse("EMBEDDINGS_MAX_INPUTS", d.max_inputs)?,
            max_chars: env.parse("EMBEDDINGS_MAX_CHARS", d.max_chars)?,
            request_timeout: env.duration("EMBEDDINGS_REQUEST_TIMEOUT", d.request_timeout)?,
            load_delay: env.duration("EMBEDDINGS_LOAD_DELAY", d.load_delay)?,
        })
    }
}
