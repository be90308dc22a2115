//! The knowledge API's settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::env::{Env, EnvError};

/// The knowledge API's settings, from its environment.
#[derive(Debug, Clone)]
pub struct KnowledgeConfig {
    /// Where it listens (`BIND`, `PORT`; default `0.0.0.0:8080`).
    pub listen: SocketAddr,
    /// PostgreSQL (`DATABASE_URL`); unset, the documents are kept in
    /// memory and keyword search runs there.
    pub database_url: Option<String>,
    /// Redis (`REDIS_URL`); set, the inbound limit is shared across
    /// replicas and embeddings are cached there; unset, both are in
    /// process.
    pub redis_url: Option<String>,
    /// The embeddings service (`EMBEDDINGS_URL`, default `http://127.0.0.1:8081`).
    pub embeddings_url: String,
    /// Qdrant (`QDRANT_URL`, default `http://127.0.0.1:6333`).
    pub qdrant_url: String,
    /// The collection searched (`QDRANT_COLLECTION`, default `documents`).
    pub collection: String,
    /// The llama.cpp server (`LLM_URL`, default `http://127.0.0.1:8082`).
    pub llm_url: String,
    /// Its API (`LLM_API`): `completion` (llama.cpp's `/completion`, the
    /// default) or `chat` (OpenAI-compatible `/v1/chat/completions`).
    pub llm_api: super::LlmApi,
    /// The policy file (`POLICY_FILE`), watched for changes; unset, the
    /// built-in `stack/policy.toml`.
    pub policy_file: Option<PathBuf>,
    /// The telemetry journal's directory (`JOURNAL_DIR`, default `data/telemetry`).
    pub journal_dir: PathBuf,
    /// The most the journal's files keep (`JOURNAL_KEEP_BYTES`, default
    /// `1GiB`): past it the oldest rotated files are deleted, read or not.
    pub journal_keep_bytes: u64,
    /// The bearer token of `/admin` for callers that are not on loopback
    /// (`ADMIN_TOKEN`; unset, `/admin` answers loopback only).
    pub admin_token: Option<String>,
    /// How many passages an answer is built from (`TOP_K`, default 4).
    pub top_k: usize,
    /// How long each health check may take (`HEALTH_CHECK_TIMEOUT`, default 2 s).
    pub check_timeout: Duration,
}

/// The port the knowledge API listens on by default.
pub const DEFAULT_PORT: u16 = 8080;

impl KnowledgeConfig {
    /// The settings `env` gives.
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        Ok(KnowledgeConfig {
            listen: env.listen(DEFAULT_PORT)?,
            database_url: env.get("DATABASE_URL"),
            redis_url: env.get("REDIS_URL"),
            embeddings_url: env.url("EMBEDDINGS_URL", "http://127.0.0.1:8081")?,
            qdrant_url: env.url("QDRANT_URL", "http://127.0.0.1:6333")?,
            collection: env
                .get("QDRANT_COLLECTION")
                .unwrap_or_else(|| "documents".to_owned()),
            llm_url: env.url("LLM_URL", "http://127.0.0.1:8082")?,
            llm_api: env.parse("LLM_API", super::LlmApi::Completion)?,
            policy_file: env.get("POLICY_FILE").map(PathBuf::from),
            journal_dir: env
                .get("JOURNAL_DIR")
                .map_or_else(|| PathBuf::from("data/telemetry"), PathBuf::from),
            journal_keep_bytes: env.bytes("JOURNAL_KEEP_BYTES", 1 << 30)?,
            admin_token: env.get("ADMIN_TOKEN"),
            top_k: env.parse("TOP_K", 4)?,
            check_timeout: env.duration("HEALTH_CHECK_TIMEOUT", Duration::from_secs(2))?,
        })
    }
}
