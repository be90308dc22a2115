//! The chat backend's settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::env::{Env, EnvError};
use crate::knowledge::LlmApi;

/// The chat backend's settings, from its environment.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Where it listens (`BIND`, `PORT`; default `0.0.0.0:8084`).
    pub listen: SocketAddr,
    /// The LLM server (`LLM_URL`, default `http://127.0.0.1:8082`).
    pub llm_url: String,
    /// Its API (`LLM_API`): `completion` (the default) or `chat`.
    pub llm_api: LlmApi,
    /// PostgreSQL for the conversation memory (`DATABASE_URL`); unset, the
    /// memory is kept in process.
    pub database_url: Option<String>,
    /// NATS with JetStream for the events (`NATS_URL`); unset, the events
    /// are kept in process.
    pub nats_url: Option<String>,
    /// The policy file (`POLICY_FILE`), watched for changes; unset, the
    /// built-in `stack/chat.toml`.
    pub policy_file: Option<PathBuf>,
    /// How often background summaries are queued (`SUMMARY_INTERVAL`,
    /// default 30 s; `0s` turns them off).
    pub summary_interval: Duration,
    /// The bearer token of `/admin` for callers not on loopback
    /// (`ADMIN_TOKEN`; unset, `/admin` answers loopback only).
    pub admin_token: Option<String>,
    /// How long each health check may take (`HEALTH_CHECK_TIMEOUT`, default 2 s).
    pub check_timeout: Duration,
    /// How long a shutdown drains the pipeline (`DRAIN_TIMEOUT`, default 10 s).
    pub drain_timeout: Duration,
}

/// The port the chat backend listens on by default.
pub const DEFAULT_PORT: u16 = 8084;

impl ChatConfig {
    /// The settings `env` gives.
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        let nats_url = env.get("NATS_URL");
        if let Some(url) = &nats_url {
            crate::nats::check_url(url)?;
        }
        Ok(ChatConfig {
            listen: env.listen(DEFAULT_PORT)?,
            llm_url: env.url("LLM_URL", "http://127.0.0.1:8082")?,
            llm_api: env.parse("LLM_API", LlmApi::Completion)?,
            database_url: env.get("DATABASE_URL"),
            nats_url,
            policy_file: env.get("POLICY_FILE").map(PathBuf::from),
            summary_interval: env.duration("SUMMARY_INTERVAL", Duration::from_secs(30))?,
            admin_token: env.get("ADMIN_TOKEN"),
            check_timeout: env.duration("HEALTH_CHECK_TIMEOUT", Duration::from_secs(2))?,
            drain_timeout: env.duration("DRAIN_TIMEOUT", Duration::from_secs(10))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let c = ChatConfig::from_env(&Env::from_pairs(&[])).unwrap();
        assert_eq!(c.listen.port(), DEFAULT_PORT);
        assert!(c.nats_url.is_none() && c.database_url.is_none());
        let e = ChatConfig::from_env(&Env::from_pairs(&[("NATS_URL", "http://x")])).unwrap_err();
        assert_eq!(e.name, "NATS_URL");
        assert!(ChatConfig::from_env(&Env::from_pairs(&[("NATS_URL", "127.0.0.1:4222")])).is_ok());
        let e =
            ChatConfig::from_env(&Env::from_pairs(&[("SUMMARY_INTERVAL", "often")])).unwrap_err();
        assert_eq!(e.name, "SUMMARY_INTERVAL");
    }
}
