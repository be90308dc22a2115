//! Adaptive concurrency limits: the limit falls under overload and grows
//! back when latency recovers.
//!
//! Each algorithm is a synchronous state machine fed one [`Sample`] per
//! completed request; [`AdaptiveLimiter`] keeps the in-flight count and the
//! limit, and [`AdaptiveLimitLayer`] puts it in front of a service.

mod aimd;
mod gradient2;
mod layer;
mod limiter;
mod vegas;

use std::time::Duration;

pub use aimd::Aimd;
pub use gradient2::Gradient2;
pub(crate) use layer::future;
pub use layer::{AdaptiveLimitLayer, AdaptiveLimitService};
pub use limiter::{AdaptiveLimiter, LimitPermit};
pub use vegas::Vegas;

/// One completed request, as the algorithms see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// How long it took.
    pub rtt: Duration,
    /// Requests in flight when it started (itself included).
    pub inflight: u64,
    /// Whether it failed in a way that signals overload (an error, a
    /// timeout, a rejection downstream).
    pub dropped: bool,
}

/// An adaptive limit algorithm.
pub trait Algorithm: Send + 'static {
    /// The limit before any sample.
    fn limit(&self) -> f64;
    /// Takes one sample; returns the new limit.
    fn update(&mut self, sample: Sample) -> f64;
}

/// The lower and upper bound of a limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Bounds {
    pub(crate) fn clamp(&self, v: f64) -> f64 {
        v.clamp(self.min, self.max)
    }
}

/// Bounds from user input: at least 1, min not above max, both finite.
pub(crate) fn bounds(min: u32, max: u32) -> Bounds {
    let min = f64::from(min.max(1));
    let max = f64::from(max).max(min);
    Bounds { min, max }
}

/// `value` clamped to `lo..=hi`, or `default` when it is not a number.
pub(crate) fn finite_or(value: f64, lo: f64, hi: f64, default: f64) -> f64 {
    if value.is_finite() {
        value.clamp(lo, hi)
    } else {
        default
    }
}

/// A successful sample, for the algorithms' tests.
#[cfg(test)]
pub(crate) fn sample(ms: u64, inflight: u64) -> Sample {
    Sample {
        rtt: Duration::from_millis(ms),
        inflight,
        dropped: false,
    }
}
