//! The journal relay's settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::env::{Env, EnvError};

/// The journal relay's settings, from its environment.
#[derive(Debug, Clone)]
pub struct JournalRelayConfig {
    /// Where it listens (`BIND`, `PORT`; default `0.0.0.0:8086`).
    pub listen: SocketAddr,
    /// The knowledge API's telemetry journal on this machine (`JOURNAL_DIR`,
    /// default `data/telemetry`).
    pub journal_dir: PathBuf,
    /// This machine's name (`MACHINE_ID`; default the host name): the
    /// subject `telemetry.<machine>` and the first part of each message id.
    /// Letters, digits, `-` and `_`, at most 64.
    pub machine: String,
    /// NATS with JetStream (`NATS_URL`, default `nats://127.0.0.1:4222`).
    pub nats_url: String,
    /// The stream (`TELEMETRY_STREAM`, default `TELEMETRY`).
    pub stream: String,
    /// The subjects' prefix (`TELEMETRY_SUBJECT_PREFIX`, default
    /// `telemetry`): records go to `<prefix>.<machine>`, and the stream
    /// takes `<prefix>.>` (two streams cannot share subjects).
    pub subject_prefix: String,
    /// Where its cursor is saved (`CHECKPOINT_DIR`, default `data/journal-relay`).
    pub checkpoint_dir: PathBuf,
    /// Records per batch (`BATCH_SIZE`, default 256, 1–10,000; a batch also
    /// ends at 1 MiB).
    pub batch_size: usize,
    /// How often it looks for new records at the end of the journal
    /// (`POLL_INTERVAL`, default 200 ms).
    pub poll_interval: Duration,
    /// How long the stream remembers message ids (`DUPLICATE_WINDOW`,
    /// default 10 min): a batch published again after a crash within this
    /// window is dropped by the stream.
    pub duplicate_window: Duration,
    /// The policy file (`POLICY_FILE`); unset, the built-in
    /// `stack/journal-relay.toml`.
    pub policy_file: Option<PathBuf>,
    /// The bearer token of `/admin` for callers not on loopback (`ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// How long each health check may take (`HEALTH_CHECK_TIMEOUT`, default 2 s).
    pub check_timeout: Duration,
}

/// The port the journal relay listens on by default.
pub const DEFAULT_PORT: u16 = 8086;

/// A machine name, a stream name: letters, digits, `-` and `_`, 1 to 64.
pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The stream of a `TELEMETRY_STREAM` setting (default `TELEMETRY`).
pub(crate) fn telemetry_stream(env: &Env) -> Result<String, EnvError> {
    let stream = env
        .get("TELEMETRY_STREAM")
        .unwrap_or_else(|| "TELEMETRY".to_owned());
    if is_token(&stream) {
        Ok(stream)
    } else {
        Err(EnvError {
            name: "TELEMETRY_STREAM",
            value: stream,
            reason: "letters, digits, '-' and '_', at most 64".to_owned(),
        })
    }
}

impl JournalRelayConfig {
    /// The settings `env` gives.
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        let machine = match env.get("MACHINE_ID") {
            Some(m) => m,
            None => host_name(env),
        };
        if !is_token(&machine) {
            return Err(EnvError {
                name: "MACHINE_ID",
                value: machine,
                reason: "letters, digits, '-' and '_', at most 64 (set MACHINE_ID)".to_owned(),
            });
        }
        let nats_url = env
            .get("NATS_URL")
            .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
        crate::nats::check_url(&nats_url)?;
        let subject_prefix = env
            .get("TELEMETRY_SUBJECT_PREFIX")
            .unwrap_or_else(|| super::SUBJECT_PREFIX.to_owned());
        if crate::outbox::EventType::new(&subject_prefix).is_err() {
            return Err(EnvError {
                name: "TELEMETRY_SUBJECT_PREFIX",
                value: subject_prefix,
                reason: "dot-separated words of a-z, 0-9, '_' and '-'".to_owned(),
            });
        }
        let batch_size: usize = env.parse("BATCH_SIZE", 256)?;
        if !(1..=10_000).contains(&batch_size) {
            return Err(EnvError {
                name: "BATCH_SIZE",
                value: batch_size.to_string(),
                reason: "between 1 and 10000".to_owned(),
            });
        }
        Ok(JournalRelayConfig {
            listen: env.listen(DEFAULT_PORT)?,
            journal_dir: env
                .get("JOURNAL_DIR")
                .map_or_else(|| PathBuf::from("data/telemetry"), PathBuf::from),
            machine,
            nats_url,
            stream: telemetry_stream(env)?,
            subject_prefix,
            checkpoint_dir: env
                .get("CHECKPOINT_DIR")
                .map_or_else(|| PathBuf::from("data/journal-relay"), PathBuf::from),
            batch_size,
            poll_interval: env.duration("POLL_INTERVAL", Duration::from_millis(200))?,
            duplicate_window: env.duration("DUPLICATE_WINDOW", Duration::from_secs(600))?,
            policy_file: env.get("POLICY_FILE").map(PathBuf::from),
            admin_token: env.get("ADMIN_TOKEN"),
            check_timeout: env.duration("HEALTH_CHECK_TIMEOUT", Duration::from_secs(2))?,
        })
    }
}

/// The host name (`HOSTNAME`, else `/etc/hostname`), with what a subject
/// token cannot hold replaced by `-`; `local` when there is none.
fn host_name(env: &Env) -> String {
    let name = env
        .get("HOSTNAME")
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "local".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let c = JournalRelayConfig::from_env(&Env::from_pairs(&[("HOSTNAME", "web-1.example")]))
            .unwrap();
        assert_eq!(c.machine, "web-1-example");
        assert_eq!(c.listen.port(), DEFAULT_PORT);
        assert_eq!((c.stream.as_str(), c.batch_size), ("TELEMETRY", 256));
        for (name, value) in [
            ("MACHINE_ID", "a.b"),
            ("MACHINE_ID", "a>"),
            ("TELEMETRY_STREAM", "a b"),
            ("TELEMETRY_SUBJECT_PREFIX", "a.>"),
            ("NATS_URL", "http://x"),
            ("BATCH_SIZE", "0"),
            ("POLL_INTERVAL", "often"),
        ] {
            let e = JournalRelayConfig::from_env(&Env::from_pairs(&[(name, value)])).unwrap_err();
            assert_eq!(e.name, name, "{value}");
        }
    }
}
