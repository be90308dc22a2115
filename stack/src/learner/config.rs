//! The learner's settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::env::{Env, EnvError};

/// Where the learner reads telemetry from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelemetrySource {
    /// The knowledge API's journal on this machine (`JOURNAL_DIR`).
    Journal,
    /// A JetStream stream the journal relays of one or more machines fill,
    /// read through a durable consumer named after the learner.
    Nats {
        /// The server (`NATS_URL`, default `nats://127.0.0.1:4222`).
        url: String,
        /// The stream (`TELEMETRY_STREAM`, default `TELEMETRY`).
        stream: String,
    },
}

impl TelemetrySource {
    /// How stored patterns name where their position comes from: positions
    /// from another source never match this one's.
    pub fn label(&self) -> String {
        match self {
            TelemetrySource::Journal => "journal".to_owned(),
            TelemetrySource::Nats { stream, .. } => format!("nats:{stream}"),
        }
    }
}

/// The learner's settings, from its environment.
#[derive(Debug, Clone)]
pub struct LearnerConfig {
    /// Where it listens (`BIND`, `PORT`; default `0.0.0.0:8083`).
    pub listen: SocketAddr,
    /// PostgreSQL (`DATABASE_URL`): set, patterns and checkpoints are kept
    /// there; unset, patterns are kept in memory (a demo: they are lost
    /// with the process) and checkpoints in `CHECKPOINT_DIR`.
    pub database_url: Option<String>,
    /// Where telemetry comes from (`TELEMETRY_SOURCE`: `journal`, the
    /// default, or `nats`).
    pub source: TelemetrySource,
    /// The knowledge API's telemetry journal (`JOURNAL_DIR`, default
    /// `data/telemetry`), read from the saved cursor.
    pub journal_dir: PathBuf,
    /// The checkpoints' directory without a database (`CHECKPOINT_DIR`,
    /// default `data/learner`).
    pub checkpoint_dir: PathBuf,
    /// This learner's name (`LEARNER_NAME`, default `learner`): its
    /// checkpoint's name, so learners of different journals keep apart.
    pub name: String,
    /// The patterns' table (`PATTERNS_TABLE`, default `learned_patterns`).
    pub patterns_table: String,
    /// The checkpoints' table (`CHECKPOINT_TABLE`, default `learner_checkpoints`).
    pub checkpoint_table: String,
    /// The outbox table (`OUTBOX_TABLE`; needs `DATABASE_URL`): set, each
    /// new pattern adds a `pattern.learned` event to it in the statement
    /// that stores the pattern, for the outbox relay to publish.
    pub outbox_table: Option<String>,
    /// The policy file (`POLICY_FILE`), watched for changes; unset, the
    /// built-in `stack/learner.toml`.
    pub policy_file: Option<PathBuf>,
    /// How often it looks for new records at the end of the journal
    /// (`POLL_INTERVAL`, default 200 ms).
    pub poll_interval: Duration,
    /// The bearer token of `/admin` for callers not on loopback
    /// (`ADMIN_TOKEN`; unset, `/admin` answers loopback only).
    pub admin_token: Option<String>,
    /// How long each health check may take (`HEALTH_CHECK_TIMEOUT`, default 2 s).
    pub check_timeout: Duration,
}

/// The port the learner listens on by default.
pub const DEFAULT_PORT: u16 = 8083;

impl LearnerConfig {
    /// The name its progress is saved under: `LEARNER_NAME`, with `-nats`
    /// after it for the NATS source (a journal cursor and a stream
    /// sequence must never be taken one for the other). Also the durable
    /// consumer's name.
    pub fn checkpoint_name(&self) -> String {
        match self.source {
            TelemetrySource::Journal => self.name.clone(),
            TelemetrySource::Nats { .. } => format!("{}-nats", self.name),
        }
    }

    /// The settings `env` gives.
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        let table = |name: &'static str, default: &str| -> Result<String, EnvError> {
            let value = env.get(name).unwrap_or_else(|| default.to_owned());
            if crate::pg::valid_table(&value) {
                Ok(value)
            } else {
                Err(EnvError {
                    name,
                    value,
                    reason: "a table name is lower-case letters, digits and _, starting with a letter, at most 63".to_owned(),
                })
            }
        };
        let name = env
            .get("LEARNER_NAME")
            .unwrap_or_else(|| "learner".to_owned());
        if name.len() > 200
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(EnvError {
                name: "LEARNER_NAME",
                value: name,
                reason: "letters, digits, '-', '_' and '.' only, at most 200".to_owned(),
            });
        }
        let database_url = env.get("DATABASE_URL");
        let outbox_table = match env.get("OUTBOX_TABLE") {
            None => None,
            Some(value) if database_url.is_none() => {
                return Err(EnvError {
                    name: "OUTBOX_TABLE",
                    value,
                    reason: "the outbox is a PostgreSQL table: set DATABASE_URL too".to_owned(),
                });
            }
            Some(_) => Some(table("OUTBOX_TABLE", "")?),
        };
        let source = match env.get("TELEMETRY_SOURCE").as_deref() {
            None | Some("journal") => TelemetrySource::Journal,
            Some("nats") => {
                let url = env
                    .get("NATS_URL")
                    .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
                crate::nats::check_url(&url)?;
                TelemetrySource::Nats {
                    url,
                    stream: crate::journal_relay::telemetry_stream(env)?,
                }
            }
            Some(other) => {
                return Err(EnvError {
                    name: "TELEMETRY_SOURCE",
                    value: other.to_owned(),
                    reason: "journal (this machine's journal) or nats (the stream the journal relays fill)".to_owned(),
                });
            }
        };
        Ok(LearnerConfig {
            listen: env.listen(DEFAULT_PORT)?,
            source,
            database_url,
            journal_dir: env
                .get("JOURNAL_DIR")
                .map_or_else(|| PathBuf::from("data/telemetry"), PathBuf::from),
            checkpoint_dir: env
                .get("CHECKPOINT_DIR")
                .map_or_else(|| PathBuf::from("data/learner"), PathBuf::from),
            name,
            patterns_table: table("PATTERNS_TABLE", "learned_patterns")?,
            checkpoint_table: table("CHECKPOINT_TABLE", "learner_checkpoints")?,
            outbox_table,
            policy_file: env.get("POLICY_FILE").map(PathBuf::from),
            poll_interval: env.duration("POLL_INTERVAL", Duration::from_millis(200))?,
            admin_token: env.get("ADMIN_TOKEN"),
            check_timeout: env.duration("HEALTH_CHECK_TIMEOUT", Duration::from_secs(2))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs)
    }

    #[test]
    fn defaults() {
        let c = LearnerConfig::from_env(&env(&[])).unwrap();
        assert_eq!(c.listen.port(), DEFAULT_PORT);
        assert_eq!(c.patterns_table, "learned_patterns");
        assert_eq!(c.name, "learner");
        assert!(c.database_url.is_none());
        assert_eq!(c.source, TelemetrySource::Journal);
        assert_eq!(c.checkpoint_name(), "learner");
    }

    #[test]
    fn bad_names_are_refused_with_the_variable() {
        let e =
            LearnerConfig::from_env(&env(&[("PATTERNS_TABLE", "x; drop table y")])).unwrap_err();
        assert_eq!(e.name, "PATTERNS_TABLE");
        let e = LearnerConfig::from_env(&env(&[("LEARNER_NAME", "../etc")])).unwrap_err();
        assert_eq!(e.name, "LEARNER_NAME");
        let e = LearnerConfig::from_env(&env(&[("POLL_INTERVAL", "soon")])).unwrap_err();
        assert_eq!(e.name, "POLL_INTERVAL");
        let e = LearnerConfig::from_env(&env(&[("OUTBOX_TABLE", "outbox")])).unwrap_err();
        assert_eq!(e.name, "OUTBOX_TABLE");
        let db = ("DATABASE_URL", "postgres://postgres@127.0.0.1/test");
        let e = LearnerConfig::from_env(&env(&[db, ("OUTBOX_TABLE", "Out Box")])).unwrap_err();
        assert_eq!(e.name, "OUTBOX_TABLE");
        let c = LearnerConfig::from_env(&env(&[db, ("OUTBOX_TABLE", "outbox")])).unwrap();
        assert_eq!(c.outbox_table.as_deref(), Some("outbox"));
        let e = LearnerConfig::from_env(&env(&[("TELEMETRY_SOURCE", "kafka")])).unwrap_err();
        assert_eq!(e.name, "TELEMETRY_SOURCE");
        let c = LearnerConfig::from_env(&env(&[("TELEMETRY_SOURCE", "nats")])).unwrap();
        assert_eq!(c.source.label(), "nats:TELEMETRY");
        assert_eq!(c.checkpoint_name(), "learner-nats");
        let e = LearnerConfig::from_env(&env(&[
            ("TELEMETRY_SOURCE", "nats"),
            ("NATS_URL", "http://x"),
        ]))
        .unwrap_err();
        assert_eq!(e.name, "NATS_URL");
    }
}
