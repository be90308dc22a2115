//! The errors of the crate: [`Overloaded`], which the layers add, and the
//! configuration errors ([`WatermarkError`], [`GaugeError`],
//! [`AdaptiveConfigError`]), each an enum a caller can match on.

use std::fmt;
use std::time::Duration;

use buttress_core::NameError;

use crate::Priority;
use crate::watermarks::{MAX_LEVEL, Watermarks};

pub use buttress_core::BoxError;

/// The work was refused because the service is overloaded: a gauge is
/// paused for its priority, or the concurrency limit is reached.
///
/// Opaque: inspect it through its methods.
///
/// ```
/// use buttress_pressure::{Gauge, Priority, Watermarks};
///
/// let gauge = Gauge::builder("outbox", Watermarks::new(10, 5)?).build()?;
/// gauge.set(10);
/// let refused = gauge.check(Priority::Normal).unwrap_err();
/// assert_eq!(refused.name(), "outbox");
/// assert!(!refused.is_limit());
/// assert_eq!(refused.to_string(), "overloaded: outbox is paused for normal priority work");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("overloaded: {name} {}", Refusal(.reason, .priority))]
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

/// What refused, after the name in the message.
struct Refusal<'a>(&'a Reason, &'a Priority);

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Reason::Paused => write!(f, "is paused for {} priority work", self.1.as_str()),
            Reason::Limit => f.write_str("is at its concurrency limit"),
        }
    }
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
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Priority, Watermarks};
    /// let gauge = Gauge::builder("outbox", Watermarks::new(10, 5)?).build()?;
    /// gauge.set(10);
    /// assert_eq!(gauge.check(Priority::Normal).unwrap_err().name(), "outbox");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The priority of the refused work.
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Priority, Watermarks};
    /// let gauge = Gauge::builder("outbox", Watermarks::new(10, 5)?)
    ///     .low_priority(Watermarks::new(8, 4)?)
    ///     .build()?;
    /// gauge.set(8);
    /// assert_eq!(gauge.check(Priority::Low).unwrap_err().priority(), Priority::Low);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// A hint for when to try again, if one is configured
    /// ([`GaugeBuilder::retry_after`](crate::GaugeBuilder::retry_after)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use buttress_pressure::{Gauge, Priority, Watermarks};
    /// let gauge = Gauge::builder("outbox", Watermarks::new(10, 5)?)
    ///     .retry_after(Duration::from_secs(1))
    ///     .build()?;
    /// gauge.set(10);
    /// let refused = gauge.check(Priority::Normal).unwrap_err();
    /// assert_eq!(refused.retry_after(), Some(Duration::from_secs(1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether the concurrency limit refused (rather than a paused gauge).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use buttress_pressure::{AdaptiveLimiter, Aimd};
    /// let limiter = AdaptiveLimiter::new("llm", Aimd::new(1, 1, 1)?)?;
    /// let _permit = limiter.try_acquire(Instant::now())?;
    /// assert!(limiter.try_acquire(Instant::now()).unwrap_err().is_limit());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_limit(&self) -> bool {
        self.reason == Reason::Limit
    }
}

impl buttress_core::Rejection for Overloaded {
    fn kind(&self) -> buttress_core::RejectionKind {
        buttress_core::RejectionKind::Overloaded
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    fn instance_name(&self) -> Option<&str> {
        Some(&self.name)
    }
}

/// Watermarks that make no sense; from [`Watermarks::new`] (and from
/// loading watermarks under the `serde` feature).
///
/// ```
/// use buttress_pressure::{WatermarkError, Watermarks};
///
/// assert_eq!(
///     Watermarks::new(50, 50),
///     Err(WatermarkError::LowNotBelowHigh { high: 50, low: 50 })
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WatermarkError {
    /// `low` is not below `high`: equal watermarks would flap, and a low
    /// above the high one would never resume.
    #[error("invalid watermarks: low ({low}) must be below high ({high})")]
    LowNotBelowHigh {
        /// The high watermark given.
        high: u64,
        /// The low watermark given.
        low: u64,
    },
    /// `high` is above [`MAX_LEVEL`], the largest level a gauge holds.
    #[error("invalid watermarks: high ({high}) is above the largest level, {MAX_LEVEL}")]
    HighAboveMax {
        /// The high watermark given.
        high: u64,
    },
}

/// A gauge that cannot be built; from [`GaugeBuilder::build`] and
/// [`GaugeConfig::validate`] (and from loading a [`GaugeConfig`] under the
/// `serde` feature).
///
/// ```
/// use buttress_pressure::{Gauge, GaugeError, Watermarks};
///
/// let err = Gauge::builder("", Watermarks::new(10, 5)?).build().unwrap_err();
/// assert!(matches!(err, GaugeError::Name(_)));
/// assert!(std::error::Error::source(&err).is_some()); // the NameError
///
/// let err = Gauge::builder("queue", Watermarks::new(10, 5)?)
///     .low_priority(Watermarks::new(20, 4)?)
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, GaugeError::LowPriorityAbove { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`GaugeBuilder::build`]: crate::GaugeBuilder::build
/// [`GaugeConfig`]: crate::GaugeConfig
/// [`GaugeConfig::validate`]: crate::GaugeConfig::validate
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GaugeError {
    /// The name is not a valid [`Name`](buttress_core::Name).
    #[error("invalid gauge name")]
    Name(#[from] NameError),
    /// A low-priority watermark is above its normal counterpart: low
    /// priority would be paused later, or resumed earlier, than normal
    /// work.
    #[error(
        "invalid gauge: the low-priority watermarks (high {}, low {}) must not be above the normal ones (high {}, low {})",
        .low_priority.high(), .low_priority.low(), .normal.high(), .normal.low()
    )]
    LowPriorityAbove {
        /// The normal watermarks.
        normal: Watermarks,
        /// The low-priority watermarks given.
        low_priority: Watermarks,
    },
}

/// Parameters of an adaptive limit algorithm that make no sense; from the
/// configs' `validate` and `build` ([`AimdConfig`], [`VegasConfig`],
/// [`Gradient2Config`], [`AdaptiveConfig`]) and from loading them under
/// the `serde` feature.
///
/// ```
/// use buttress_pressure::{AdaptiveConfigError, Aimd, AimdConfig};
///
/// assert_eq!(Aimd::new(5, 10, 100).unwrap_err(),
///     AdaptiveConfigError::InitialOutOfBounds { initial: 5, min: 10, max: 100 });
/// let err = AimdConfig::default().backoff(1.5).build().unwrap_err();
/// assert!(matches!(err, AdaptiveConfigError::OutOfRange { parameter: "backoff", .. }));
/// ```
///
/// [`AimdConfig`]: crate::AimdConfig
/// [`VegasConfig`]: crate::VegasConfig
/// [`Gradient2Config`]: crate::Gradient2Config
/// [`AdaptiveConfig`]: crate::AdaptiveConfig
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AdaptiveConfigError {
    /// `min` is 0: a limit of zero would admit nothing, ever.
    #[error("invalid adaptive limit: min must be at least 1")]
    ZeroMin,
    /// `min` is above `max`.
    #[error("invalid adaptive limit: min ({min}) is above max ({max})")]
    MinAboveMax {
        /// The lower bound given.
        min: u32,
        /// The upper bound given.
        max: u32,
    },
    /// The initial limit is outside `min..=max`.
    #[error("invalid adaptive limit: initial ({initial}) is outside {min}..={max}")]
    InitialOutOfBounds {
        /// The initial limit given.
        initial: u32,
        /// The lower bound.
        min: u32,
        /// The upper bound.
        max: u32,
    },
    /// A parameter is outside its range, or not a number.
    #[error("invalid adaptive limit: {parameter} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// The parameter (its field name in the config).
        parameter: &'static str,
        /// The value given.
        value: f64,
        /// The smallest value allowed.
        min: f64,
        /// The largest value allowed.
        max: f64,
    },
    /// A parameter is below its minimum, or not a finite number.
    #[error(
        "invalid adaptive limit: {parameter} must be a finite number of at least {min}, got {value}"
    )]
    TooSmall {
        /// The parameter (its field name in the config).
        parameter: &'static str,
        /// The value given.
        value: f64,
        /// The smallest value allowed.
        min: f64,
    },
    /// A parameter that must be above zero is zero.
    #[error("invalid adaptive limit: {parameter} must be above zero")]
    Zero {
        /// The parameter (its field name in the config).
        parameter: &'static str,
    },
}
