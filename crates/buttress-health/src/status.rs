//! The statuses, and how the checks' results add up to the service's.
//!
//! This is the synchronous core: no clock, no I/O. [`aggregate`] is the
//! whole rule, in one place, so that the endpoints, the metrics and the
//! tests agree on it.

use std::fmt;

use serde::Serialize;

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// The dependency answered as expected. Shown as `"ok"`.
    #[serde(rename = "ok")]
    Up,
    /// The dependency works, but not fully: a breaker probing it again, a
    /// paused gauge, a full queue. The service still answers.
    Degraded,
    /// The dependency failed, timed out, or a breaker in front of it is
    /// open.
    Down,
}

impl CheckStatus {
    /// The name the JSON report uses: `ok`, `degraded` or `down`.
    ///
    /// ```
    /// use buttress_health::CheckStatus;
    /// assert_eq!(CheckStatus::Up.as_str(), "ok");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Up => "ok",
            Self::Degraded => "degraded",
            Self::Down => "down",
        }
    }

    /// The value of the `buttress_health_status` gauge: 1 up, 0.5
    /// degraded, 0 down.
    pub const fn gauge_value(self) -> f64 {
        match self {
            Self::Up => 1.0,
            Self::Degraded => 0.5,
            Self::Down => 0.0,
        }
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the service can answer without a dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Criticality {
    /// Without it the service cannot answer: when it is down the service
    /// is unhealthy (`503`) and not ready.
    #[default]
    Critical,
    /// The service degrades without it (a cache, a model it can answer
    /// without): when it is down the service is degraded, still `200`.
    NonCritical,
}

impl Criticality {
    /// Whether this is [`Criticality::Critical`].
    pub const fn is_critical(self) -> bool {
        matches!(self, Self::Critical)
    }
}

/// Where the readiness gate stands, as far as the status is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GateStatus {
    /// Open: requests are served.
    Open,
    /// Closed while startup work runs (a model loading, a cache warming).
    Starting,
    /// Closed because startup work failed for good.
    Failed,
    /// Closed for good: the service is shutting down.
    Draining,
}

/// The service's status, from its checks and its readiness gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every check is up and the gate is open. `200`.
    Healthy,
    /// A non-critical check is down, or some check is degraded; the
    /// service answers, perhaps with less. `200`.
    Degraded,
    /// A critical check is down, or startup failed. `503`.
    Unhealthy,
    /// Startup work is still running. `503`.
    Starting,
    /// The service is shutting down. `503`.
    Draining,
}

impl Status {
    /// The name the JSON report uses.
    ///
    /// ```
    /// use buttress_health::Status;
    /// assert_eq!(Status::Unhealthy.as_str(), "unhealthy");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
            Self::Starting => "starting",
            Self::Draining => "draining",
        }
    }

    /// The HTTP status of `/health` with this status: `200` while the
    /// service answers (healthy or degraded), `503` otherwise.
    ///
    /// ```
    /// use buttress_health::Status;
    /// assert_eq!(Status::Degraded.http_status(), 200);
    /// assert_eq!(Status::Starting.http_status(), 503);
    /// ```
    pub const fn http_status(self) -> http::StatusCode {
        match self {
            Self::Healthy | Self::Degraded => http::StatusCode::OK,
            Self::Unhealthy | Self::Starting | Self::Draining => {
                http::StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// Whether the service answers in this status (healthy or degraded).
    pub const fn is_serving(self) -> bool {
        matches!(self, Self::Healthy | Self::Degraded)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The service's status from its checks' results and its gate, by the
/// first rule that applies:
///
/// | rule | status |
/// |---|---|
/// | the gate is draining | `draining` |
/// | a critical check is down, or startup failed | `unhealthy` |
/// | the gate is closed for startup work | `starting` |
/// | a non-critical check is down, or any check is degraded | `degraded` |
/// | otherwise | `healthy` |
///
/// ```
/// use buttress_health::{CheckStatus, Criticality, GateStatus, Status, aggregate};
///
/// let checks = [
///     (CheckStatus::Up, Criticality::Critical),         // postgres
///     (CheckStatus::Down, Criticality::NonCritical),    // the LLM
/// ];
/// assert_eq!(aggregate(checks, GateStatus::Open), Status::Degraded);
/// ```
pub fn aggregate(
    checks: impl IntoIterator<Item = (CheckStatus, Criticality)>,
    gate: GateStatus,
) -> Status {
    if gate == GateStatus::Draining {
        return Status::Draining;
    }
    let mut critical_down = gate == GateStatus::Failed;
    let mut degraded = false;
    for (status, criticality) in checks {
        match status {
            CheckStatus::Up => {}
            CheckStatus::Degraded => degraded = true,
            CheckStatus::Down if criticality.is_critical() => critical_down = true,
            CheckStatus::Down => degraded = true,
        }
    }
    if critical_down {
        Status::Unhealthy
    } else if gate == GateStatus::Starting {
        Status::Starting
    } else if degraded {
        Status::Degraded
    } else {
        Status::Healthy
    }
}

/// Whether the service is ready for traffic: the gate is open and no
/// critical check is down. What `/readyz` answers.
///
/// ```
/// use buttress_health::{CheckStatus, Criticality, GateStatus, is_ready};
///
/// let checks = [(CheckStatus::Down, Criticality::NonCritical)];
/// assert!(is_ready(checks, GateStatus::Open));
/// assert!(!is_ready(checks, GateStatus::Starting));
/// ```
pub fn is_ready(
    checks: impl IntoIterator<Item = (CheckStatus, Criticality)>,
    gate: GateStatus,
) -> bool {
    gate == GateStatus::Open
        && checks
            .into_iter()
            .all(|(s, c)| !(s == CheckStatus::Down && c.is_critical()))
}
