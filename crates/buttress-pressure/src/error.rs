//! The errors the pressure layers add.

use std::fmt;
use std::time::Duration;

use crate::Priority;

pub use buttress_core::BoxError;

/// The work was refused because the service is overloaded: a gauge is
/// paused for its priority, or the concurrency limit is reached.
///
/// Opaque: inspect it through its methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overloaded {
    name: String,
    priority: Priority,
    retry_after: Option<Duration>,
    reason: Reason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Paused,
    Limit,
}

impl Overloaded {
    pub(crate) fn paused(name: &str, priority: Priority, retry_after: Option<Duration>) -> Self {
        Overloaded {
            name: name.to_owned(),
            priority,
            retry_after,
            reason: Reason::Paused,
        }
    }

    pub(crate) fn limit(name: &str, retry_after: Option<Duration>) -> Self {
        Overloaded {
            name: name.to_owned(),
            priority: Priority::Normal,
            retry_after,
            reason: Reason::Limit,
        }
    }

    /// The name of the gauge or limit that refused.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The priority of the refused work.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// A hint for when to try again, if one is configured.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether the concurrency limit refused (rather than a paused gauge).
    pub fn is_limit(&self) -> bool {
        self.reason == Reason::Limit
    }
}

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            Reason::Paused => write!(
                f,
                "overloaded: {} is paused for {} priority work",
                self.name,
                self.priority.as_str()
            ),
            Reason::Limit => write!(f, "overloaded: {} is at its concurrency limit", self.name),
        }
    }
}

impl std::error::Error for Overloaded {}

impl buttress_core::Rejection for Overloaded {
    fn kind(&self) -> buttress_core::RejectionKind {
        buttress_core::RejectionKind::Overloaded
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    fn source_name(&self) -> Option<&str> {
        Some(&self.name)
    }
}
