//! The errors: a check that cannot be registered, and a request refused
//! while the service is not ready.

use std::fmt;
use std::time::Duration;

use buttress_core::{Rejection, RejectionKind};

use crate::status::GateStatus;

/// A check that cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// The name is empty, longer than 100 bytes, or has a character other
    /// than letters, digits, `_`, `-`, `.` and `:`.
    #[error("check name {0:?} must be 1 to 100 letters, digits, '_', '-', '.' or ':'")]
    Name(String),
    /// The name is one of the report's own keys.
    #[error("check name {0:?} is a key of the report itself; choose another")]
    Reserved(String),
    /// A check of that name is already registered.
    #[error("a check named {0:?} is already registered")]
    Duplicate(String),
    /// The timeout is zero: the check could never answer.
    #[error("check {0:?} has a timeout of zero")]
    ZeroTimeout(String),
}

/// A request refused because the service is not ready: starting, failed
/// to start, or draining. Answered `503` with `Retry-After` under
/// [`HttpStatus`](buttress_core::HttpStatus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    pub(crate) status: GateStatus,
    pub(crate) reasons: Vec<String>,
    pub(crate) retry_after: Duration,
}

impl NotReady {
    /// Where the gate stood.
    pub fn status(&self) -> GateStatus {
        self.status
    }

    /// Why it was closed.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            GateStatus::Draining => f.write_str("the service is shutting down"),
            _ if self.reasons.is_empty() => f.write_str("the service is not ready"),
            _ => write!(f, "the service is not ready: {}", self.reasons.join("; ")),
        }
    }
}

impl std::error::Error for NotReady {}

impl Rejection for NotReady {
    fn kind(&self) -> RejectionKind {
        match self.status {
            GateStatus::Draining => RejectionKind::ShuttingDown,
            _ => RejectionKind::NotReady,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        Some(self.retry_after)
    }

    fn instance_name(&self) -> Option<&str> {
        Some("readiness")
    }
}
