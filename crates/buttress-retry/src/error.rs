//! Errors the retry layer adds.

use std::fmt;
use std::time::Duration;

/// The error of the tower service: tower's `BoxError`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The last attempt through the tower service took longer than the
/// attempt timeout (or what was left of the deadline) and was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptTimedOut {
    after: Duration,
    attempts: u32,
}

impl AttemptTimedOut {
    pub(crate) fn new(after: Duration, attempts: u32) -> Self {
        Self { after, attempts }
    }

    /// How long the attempt was allowed.
    pub fn after(&self) -> Duration {
        self.after
    }

    /// Attempts made in all.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl fmt::Display for AttemptTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "attempt {} timed out after {:?}",
            self.attempts, self.after
        )
    }
}

impl std::error::Error for AttemptTimedOut {}
