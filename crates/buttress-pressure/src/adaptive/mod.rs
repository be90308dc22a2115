//! Adaptive concurrency limits: the limit falls under overload and grows
//! back when latency recovers.
//!
//! Each algorithm is a synchronous state machine fed one [`Sample`] per
//! completed request; [`AdaptiveLimiter`] keeps the in-flight count and the
//! limit, and [`AdaptiveLimitLayer`] puts it in front of a service.

mod aimd;
mod config;
mod gradient2;
mod layer;
mod limiter;
mod vegas;

use std::time::Duration;

use crate::error::AdaptiveConfigError;

pub use aimd::{Aimd, AimdConfig};
pub use config::AdaptiveConfig;
pub use gradient2::{Gradient2, Gradient2Config};
pub(crate) use layer::future;
pub use layer::{AdaptiveLimitLayer, AdaptiveLimitService};
pub use limiter::{AdaptiveLimiter, LimitPermit};
pub use vegas::{Vegas, VegasConfig};

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

/// An adaptive limit algorithm: [`Aimd`], [`Vegas`], [`Gradient2`], one
/// built from an [`AdaptiveConfig`] (a `Box<dyn Algorithm>`), or your own.
///
/// ```
/// use buttress_pressure::{AdaptiveLimiter, Algorithm, Sample};
///
/// /// A limit that never moves.
/// struct Fixed(f64);
///
/// impl Algorithm for Fixed {
///     fn limit(&self) -> f64 {
///         self.0
///     }
///     fn update(&mut self, _: Sample) -> f64 {
///         self.0
///     }
/// }
///
/// let limiter = AdaptiveLimiter::new("fixed", Fixed(50.0))?;
/// assert_eq!(limiter.limit(), 50);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Algorithm: Send + 'static {
    /// The limit before any sample.
    fn limit(&self) -> f64;
    /// Takes one sample; returns the new limit.
    fn update(&mut self, sample: Sample) -> f64;

    /// Whether [`update_timed`](Algorithm::update_timed) reads its
    /// `seconds`. Not part of the stable API.
    #[doc(hidden)]
    fn uses_seconds(&self) -> bool {
        false
    }

    /// [`update`](Algorithm::update), given the sample's latency in
    /// seconds as [`seconds`] computes it, worked out before the limiter
    /// takes its lock: an algorithm that averages latencies (Vegas,
    /// Gradient2) then keeps the division out of the critical section.
    /// The result must be `update(sample)`'s. Not part of the stable API.
    #[doc(hidden)]
    fn update_timed(&mut self, sample: Sample, seconds: f64) -> f64 {
        let _ = seconds;
        self.update(sample)
    }
}

impl Algorithm for Box<dyn Algorithm> {
    fn limit(&self) -> f64 {
        (**self).limit()
    }

    fn update(&mut self, sample: Sample) -> f64 {
        (**self).update(sample)
    }

    fn uses_seconds(&self) -> bool {
        (**self).uses_seconds()
    }

    fn update_timed(&mut self, sample: Sample, seconds: f64) -> f64 {
        (**self).update_timed(sample, seconds)
    }
}

/// A sample's latency in seconds as the latency-averaging algorithms read
/// it: never zero, so that ratios of latencies stay finite.
#[inline]
pub(crate) fn seconds(sample: &Sample) -> f64 {
    sample.rtt.as_secs_f64().max(1e-9)
}

/// The lower and upper bound of a limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Bounds {
    /// Bounds checked by [`check_limits`].
    pub(crate) fn new(min: u32, max: u32) -> Bounds {
        Bounds {
            min: f64::from(min),
            max: f64::from(max),
        }
    }

    /// `v.clamp(min, max)` (a NaN stays NaN) without its check that
    /// `min <= max`, which `check_limits` made when the bounds were built:
    /// this runs on every sample.
    #[inline]
    pub(crate) fn clamp(&self, v: f64) -> f64 {
        let mut v = v;
        if v < self.min {
            v = self.min;
        }
        if v > self.max {
            v = self.max;
        }
        v
    }
}

/// The bounds every algorithm takes: `1 <= min <= initial <= max`.
pub(crate) fn check_limits(initial: u32, min: u32, max: u32) -> Result<(), AdaptiveConfigError> {
    if min == 0 {
        return Err(AdaptiveConfigError::ZeroMin);
    }
    if min > max {
        return Err(AdaptiveConfigError::MinAboveMax { min, max });
    }
    if !(min..=max).contains(&initial) {
        return Err(AdaptiveConfigError::InitialOutOfBounds { initial, min, max });
    }
    Ok(())
}

/// `value` is a number within `min..=max`.
pub(crate) fn check_range(
    parameter: &'static str,
    value: f64,
    min: f64,
    max: f64,
) -> Result<(), AdaptiveConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(AdaptiveConfigError::OutOfRange {
            parameter,
            value,
            min,
            max,
        })
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
