//! What `/health` and `/readyz` answer: the reports and their JSON.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

use crate::gate::GateSnapshot;
use crate::status::{CheckStatus, Criticality, Status};

/// One check's last result.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CheckReport {
    /// The check's name.
    pub name: Arc<str>,
    /// What it found.
    pub status: CheckStatus,
    /// Whether the service can answer without it.
    pub criticality: Criticality,
    /// How long the probe took.
    pub took: Duration,
    /// Why it is not up (the error, with its causes), or a note.
    pub message: Option<String>,
    /// The check's own detail.
    pub detail: Option<Value>,
    /// Since when the check has had this status.
    pub since: SystemTime,
    /// When the probe ended.
    pub checked_at: SystemTime,
}

/// A check's entry under `checks`, in a fixed order.
impl Serialize for CheckReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("status", self.status.as_str())?;
        map.serialize_entry("critical", &self.criticality.is_critical())?;
        map.serialize_entry("duration_ms", &millis(self.took))?;
        if let Some(message) = &self.message {
            let key = if self.status == CheckStatus::Up {
                "message"
            } else {
                "error"
            };
            map.serialize_entry(key, message)?;
        }
        if let Some(detail) = &self.detail {
            map.serialize_entry("detail", detail)?;
        }
        map.serialize_entry("since", &rfc3339(self.since))?;
        map.serialize_entry("checked_at", &rfc3339(self.checked_at))?;
        map.end()
    }
}

/// The whole health report: what `/health` answers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Report {
    /// The service's status.
    pub status: Status,
    /// Every check's result, in the order they were registered.
    pub checks: Vec<CheckReport>,
    /// The readiness gate.
    pub gate: GateSnapshot,
    /// How long the service has been up.
    pub uptime: Duration,
    /// The service's version, when it was given one.
    pub version: Option<Arc<str>>,
}

/// Keys of the report's top level, which no check may be named.
pub(crate) const RESERVED: [&str; 6] = [
    "status",
    "checks",
    "ready",
    "uptime_seconds",
    "version",
    "startup",
];

impl Report {
    /// The HTTP status of the answer: `200` healthy or degraded, `503`
    /// otherwise.
    pub fn http_status(&self) -> http::StatusCode {
        self.status.http_status()
    }

    /// The report as a JSON value (its keys sorted; the text
    /// `/health` answers, [`Report::to_json_text`], keeps the order shown
    /// below: the status first, then one `"name": "ok"` entry per check,
    /// the shape compose healthchecks and dashboards read, then the
    /// detail).
    ///
    /// ```json
    /// {
    ///   "status": "degraded",
    ///   "postgres": "ok",
    ///   "llm": "down",
    ///   "ready": true,
    ///   "uptime_seconds": 12.5,
    ///   "version": "1.4.0",
    ///   "checks": {
    ///     "postgres": { "status": "ok", "critical": true, "duration_ms": 1.2,
    ///                   "since": "2026-11-30T21:00:00.000Z", "checked_at": "…" },
    ///     "llm": { "status": "down", "critical": false, "duration_ms": 2000.0,
    ///              "error": "no answer within 2s", "since": "…", "checked_at": "…" }
    ///   }
    /// }
    /// ```
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The report as the JSON text `/health` answers, in the order of
    /// [`to_json`](Report::to_json)'s example.
    pub fn to_json_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("status", self.status.as_str())?;
        for check in &self.checks {
            map.serialize_entry(&*check.name, check.status.as_str())?;
        }
        map.serialize_entry("ready", &self.gate.is_open())?;
        if !self.gate.holds.is_empty() {
            map.serialize_entry("startup", &self.gate.holds_json())?;
        }
        map.serialize_entry("uptime_seconds", &round3(self.uptime.as_secs_f64()))?;
        if let Some(version) = &self.version {
            map.serialize_entry("version", &**version)?;
        }
        map.serialize_entry("checks", &Checks(&self.checks))?;
        map.end()
    }
}

/// The `checks` object: one entry per check, in registration order.
struct Checks<'a>(&'a [CheckReport]);

impl Serialize for Checks<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for check in self.0 {
            map.serialize_entry(&*check.name, check)?;
        }
        map.end()
    }
}

/// What `/readyz` answers: ready or not, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadyReport {
    /// Whether the service is ready for traffic.
    pub ready: bool,
    /// Why not: the gate's reasons, then each critical check that is
    /// down, as `name: error`.
    pub reasons: Vec<String>,
}

impl ReadyReport {
    /// `200` when ready, `503` when not.
    pub fn http_status(&self) -> http::StatusCode {
        if self.ready {
            http::StatusCode::OK
        } else {
            http::StatusCode::SERVICE_UNAVAILABLE
        }
    }

    /// `{"ready": true}`, or `{"ready": false, "reasons": [...]}`.
    pub fn to_json(&self) -> Value {
        if self.ready {
            json!({ "ready": true })
        } else {
            json!({ "ready": false, "reasons": self.reasons })
        }
    }
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn millis(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1000.0)
}

/// Three decimals: enough for people, short in JSON.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
