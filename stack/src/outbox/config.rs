//! The outbox relay's settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::env::{Env, EnvError};

/// The outbox relay's settings, from its environment.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Where it listens (`BIND`, `PORT`; default `0.0.0.0:8085`).
    pub listen: SocketAddr,
    /// PostgreSQL, where the outbox is (`DATABASE_URL`, required).
    pub database_url: String,
    /// NATS with JetStream (`NATS_URL`, default `nats://127.0.0.1:4222`).
    pub nats_url: String,
    /// The outbox table (`OUTBOX_TABLE`, default `outbox`).
    pub table: String,
    /// The stream the events go to (`OUTBOX_STREAM`, default `STACK_EVENTS`).
    pub stream: String,
    /// The subjects' prefix (`OUTBOX_SUBJECT_PREFIX`, default
    /// `stack.events`): an event of type `t` goes to `<prefix>.<t>`.
    pub subject_prefix: String,
    /// Events per batch: claimed in one transaction, published together,
    /// marked in one statement (`BATCH_SIZE`, default 100, 1–10,000).
    pub batch_size: u32,
    /// How often it looks for new events when the outbox is empty
    /// (`POLL_INTERVAL`, default 200 ms).
    pub poll_interval: Duration,
    /// How often the pending metrics are read from the table
    /// (`STATS_INTERVAL`, default 1 s).
    pub stats_interval: Duration,
    /// How long sent events stay in the table before they are deleted
    /// (`KEEP_SENT`, default 1 h).
    pub keep_sent: Duration,
    /// How long the stream remembers message ids (`DUPLICATE_WINDOW`,
    /// default 10 min): a relay that dies between publishing and marking
    /// sends its batch again when the next one starts; inside this window
    /// the stream drops the repeat.
    pub duplicate_window: Duration,
    /// The policy file (`POLICY_FILE`), watched for changes; unset, the
    /// built-in `stack/outbox.toml`.
    pub policy_file: Option<PathBuf>,
    /// The bearer token of `/admin` for callers not on loopback (`ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// How long each health check may take (`HEALTH_CHECK_TIMEOUT`, default 2 s).
    pub check_timeout: Duration,
    /// The graceful drain's limit (`DRAIN_TIMEOUT`, default 10 s).
    pub drain_timeout: Duration,
}

/// The port the relay listens on by default.
pub const DEFAULT_PORT: u16 = 8085;

impl RelayConfig {
    /// The settings `env` gives.
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        let database_url = env.get("DATABASE_URL").ok_or_else(|| EnvError {
            name: "DATABASE_URL",
            value: String::new(),
            reason: "the relay reads its outbox from PostgreSQL: set DATABASE_URL".to_owned(),
        })?;
        let nats_url = env
            .get("NATS_URL")
            .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
        crate::nats::check_url(&nats_url)?;
        let table = env
            .get("OUTBOX_TABLE")
            .unwrap_or_else(|| "outbox".to_owned());
        super::OutboxTable::new(&table).map_err(|reason| EnvError {
            name: "OUTBOX_TABLE",
            value: table.clone(),
            reason,
        })?;
        let stream = env
            .get("OUTBOX_STREAM")
            .unwrap_or_else(|| "STACK_EVENTS".to_owned());
        if stream.is_empty()
            || stream.len() > 64
            || !stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(EnvError {
                name: "OUTBOX_STREAM",
                value: stream,
                reason: "a stream name is letters, digits, '_' and '-', at most 64".to_owned(),
            });
        }
        let subject_prefix = env
            .get("OUTBOX_SUBJECT_PREFIX")
            .unwrap_or_else(|| "stack.events".to_owned());
        if super::EventType::new(&subject_prefix).is_err() {
            return Err(EnvError {
                name: "OUTBOX_SUBJECT_PREFIX",
                value: subject_prefix,
                reason: "dot-separated words of a-z, 0-9, '_' and '-'".to_owned(),
            });
        }
        let batch_size: u32 = env.parse("BATCH_SIZE", 100)?;
        if !(1..=10_000).contains(&batch_size) {
            return Err(EnvError {
                name: "BATCH_SIZE",
                value: batch_size.to_string(),
                reason: "between 1 and 10000".to_owned(),
            });
        }
        Ok(RelayConfig {
            listen: env.listen(DEFAULT_PORT)?,
            database_url,
            nats_url,
            table,
            stream,
            subject_prefix,
            batch_size,
            poll_interval: env.duration("POLL_INTERVAL", Duration::from_millis(200))?,
            stats_interval: env.duration("STATS_INTERVAL", Duration::from_secs(1))?,
            keep_sent: env.duration("KEEP_SENT", Duration::from_secs(3600))?,
            duplicate_window: env.duration("DUPLICATE_WINDOW", Duration::from_secs(600))?,
            policy_file: env.get("POLICY_FILE").map(PathBuf::from),
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
        let e = RelayConfig::from_env(&Env::from_pairs(&[])).unwrap_err();
        assert_eq!(e.name, "DATABASE_URL");
        let db = ("DATABASE_URL", "postgres://postgres@127.0.0.1/test");
        let c = RelayConfig::from_env(&Env::from_pairs(&[db])).unwrap();
        assert_eq!(c.listen.port(), DEFAULT_PORT);
        assert_eq!(
            (c.table.as_str(), c.stream.as_str()),
            ("outbox", "STACK_EVENTS")
        );
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.drain_timeout, Duration::from_secs(10));
        for (name, value) in [
            ("NATS_URL", "http://x"),
            ("OUTBOX_TABLE", "a;b"),
            ("OUTBOX_STREAM", "a.b"),
            ("OUTBOX_SUBJECT_PREFIX", "a.>"),
            ("BATCH_SIZE", "0"),
            ("BATCH_SIZE", "10001"),
            ("KEEP_SENT", "forever"),
        ] {
            let e = RelayConfig::from_env(&Env::from_pairs(&[db, (name, value)])).unwrap_err();
            assert_eq!(e.name, name, "{value}");
        }
    }
}
