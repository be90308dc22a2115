//! Events delivered to listeners.

use std::time::Duration;

use buttress_core::Name;

use crate::attempts::{RetryReason, Stop};

/// Something a retry policy did, delivered to the listeners given to
/// [`Builder::on_event`](crate::Builder::on_event) on the calling task; a
/// panicking listener is contained.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RetryEvent {
    /// Attempt `attempt` failed and another will be made after `delay`.
    Retrying {
        /// Which policy.
        name: Name,
        /// The attempt that failed (1 for the first).
        attempt: u32,
        /// The wait before the next attempt.
        delay: Duration,
        /// Why.
        reason: RetryReason,
    },
    /// The request finished after `attempts` attempts.
    Finished {
        /// Which policy.
        name: Name,
        /// Attempts made in all.
        attempts: u32,
        /// Why it stopped.
        stop: Stop,
    },
}
