//! Quotas: how many, per how long, with what burst.

use std::time::Duration;

/// A rate and a burst, validated.
///
/// The constructors say what they mean: `Quota::per_minute(150)` admits
/// 150 requests each minute, one every 400 ms on average, with a burst of
/// 150 (tower_governor's `per_second(n)` set the *period* to n seconds and
/// caused outages). Use [`Quota::with_burst`] for a smaller or larger burst.
///
/// ```
/// use std::time::Duration;
/// use buttress_limit::Quota;
///
/// let q = Quota::per_minute(150)?.with_burst(10)?;
/// assert_eq!(q.interval(), Duration::from_millis(400));
/// assert_eq!(q.burst(), 10);
/// assert!(Quota::per_second(0).is_err());
/// # Ok::<(), buttress_limit::QuotaError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "QuotaConfig"))]
pub struct Quota {
    /// Nanoseconds between tokens (the emission interval T).
    interval: u64,
    /// Tokens that may be taken at once.
    burst: u32,
}

/// Why a quota was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// A count of zero requests, or a burst of zero.
    #[error("a quota needs at least one request and a burst of at least one")]
    Zero,
    /// The period is zero or longer than 100 years.
    #[error("a quota's period must be above zero and at most 100 years, got {0:?}")]
    Period(Duration),
    /// The rate is faster than one request per nanosecond, or the interval
    /// between tokens rounds to zero.
    #[error("{count} requests per {period:?} is faster than one per nanosecond")]
    TooFast {
        /// Requests asked for.
        count: u64,
        /// Per this period.
        period: Duration,
    },
    /// The burst times the interval overflows 64-bit nanoseconds (about
    /// 584 years).
    #[error("burst × interval overflows; use a smaller burst or a faster rate")]
    Overflow,
}

/// A quota as written in a configuration file:
/// `{ "count": 150, "per": "1m", "burst": 10 }` (`burst` defaults to
/// `count`). Loading validates it into a [`Quota`].
#[cfg(feature = "serde")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Requests…
    pub count: u64,
    /// …per this period.
    #[serde(with = "humantime_serde")]
    pub per: Duration,
    /// Tokens that may be taken at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

#[cfg(feature = "serde")]
impl TryFrom<QuotaConfig> for Quota {
    type Error = QuotaError;

    fn try_from(c: QuotaConfig) -> Result<Self, QuotaError> {
        let q = Quota::new(c.count, c.per)?;
        match c.burst {
            Some(b) => q.with_burst(b),
            None => Ok(q),
        }
    }
}

const HUNDRED_YEARS: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Quota {
    /// `count` requests per `period`, with a burst of `count`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_limit::{Quota, QuotaError};
    ///
    /// let q = Quota::new(3, Duration::from_secs(1))?;
    /// assert_eq!(q.burst(), 3);
    /// // The interval is rounded up: never faster than asked.
    /// assert_eq!(q.interval(), Duration::from_nanos(333_333_334));
    /// assert_eq!(Quota::new(0, Duration::from_secs(1)), Err(QuotaError::Zero));
    /// assert!(matches!(Quota::new(1, Duration::ZERO), Err(QuotaError::Period(_))));
    /// # Ok::<(), QuotaError>(())
    /// ```
    pub fn new(count: u64, period: Duration) -> Result<Self, QuotaError> {
        if count == 0 {
            return Err(QuotaError::Zero);
        }
        if period.is_zero() || period > HUNDRED_YEARS {
            return Err(QuotaError::Period(period));
        }
        let nanos = period.as_nanos();
        // Round the interval up: the limiter is never faster than asked.
        let interval = nanos.div_ceil(u128::from(count));
        if nanos < u128::from(count) {
            return Err(QuotaError::TooFast { count, period });
        }
        let interval = u64::try_from(interval).map_err(|_| QuotaError::Period(period))?;
        let burst = u32::try_from(count).unwrap_or(u32::MAX);
        Self { interval, burst }.checked()
    }

    /// `count` requests each second.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_limit::Quota;
    ///
    /// let q = Quota::per_second(20)?;
    /// assert_eq!(q.interval(), Duration::from_millis(50));
    /// assert_eq!(q.burst(), 20);
    /// # Ok::<(), buttress_limit::QuotaError>(())
    /// ```
    pub fn per_second(count: u64) -> Result<Self, QuotaError> {
        Self::new(count, Duration::from_secs(1))
    }

    /// `count` requests each minute.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_limit::Quota;
    ///
    /// // 150 each minute: one every 400 ms, not one every 150 s.
    /// let q = Quota::per_minute(150)?;
    /// assert_eq!(q.interval(), Duration::from_millis(400));
    /// assert_eq!(q.burst(), 150);
    /// # Ok::<(), buttress_limit::QuotaError>(())
    /// ```
    pub fn per_minute(count: u64) -> Result<Self, QuotaError> {
        Self::new(count, Duration::from_secs(60))
    }

    /// `count` requests each hour.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_limit::Quota;
    ///
    /// let q = Quota::per_hour(60)?;
    /// assert_eq!(q.interval(), Duration::from_secs(60));
    /// assert_eq!(q, Quota::per_minute(1)?.with_burst(60)?);
    /// # Ok::<(), buttress_limit::QuotaError>(())
    /// ```
    pub fn per_hour(count: u64) -> Result<Self, QuotaError> {
        Self::new(count, Duration::from_secs(3600))
    }

    /// The same rate with a burst of `burst` requests at once.
    ///
    /// ```
    /// use buttress_limit::{Quota, QuotaError};
    ///
    /// let smooth = Quota::per_second(100)?.with_burst(5)?;
    /// assert_eq!(smooth.burst(), 5);
    /// assert_eq!(smooth.interval(), Quota::per_second(100)?.interval()); // same rate
    /// assert_eq!(Quota::per_second(100)?.with_burst(0), Err(QuotaError::Zero));
    /// # Ok::<(), QuotaError>(())
    /// ```
    pub fn with_burst(self, burst: u32) -> Result<Self, QuotaError> {
        if burst == 0 {
            return Err(QuotaError::Zero);
        }
        Self { burst, ..self }.checked()
    }

    fn checked(self) -> Result<Self, QuotaError> {
        self.interval
            .checked_mul(u64::from(self.burst))
            .map(|_| self)
            .ok_or(QuotaError::Overflow)
    }

    /// The time between tokens.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_limit::Quota;
    ///
    /// assert_eq!(Quota::per_second(4)?.interval(), Duration::from_millis(250));
    /// # Ok::<(), buttress_limit::QuotaError>(())
    /// ```
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    /// The burst.
    ///
    /// ```
    /// use buttress_limit::Quota;
    ///
    /// assert_eq!(Quota::per_minute(30)?.burst(), 30); // the count, by default
    /// assert_eq!(Quota::per_minute(30)?.with_burst(3)?.burst(), 3);
    /// # Ok::<(), buttress_limit::QuotaError>(())
    /// ```
    pub fn burst(&self) -> u32 {
        self.burst
    }

    pub(crate) fn interval_nanos(&self) -> u64 {
        self.interval
    }

    /// The quota whose interval and capacity (burst × interval, which a
    /// valid quota never overflows) a `QuotaCell` holds.
    pub(crate) fn from_rates((interval, capacity): (u64, u64)) -> Quota {
        Quota {
            interval,
            burst: u32::try_from(capacity / interval.max(1)).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_mean_what_they_say() {
        let q = Quota::per_minute(150).expect("valid");
        assert_eq!(q.interval(), Duration::from_millis(400));
        assert_eq!(q.burst(), 150);
        let q = Quota::per_second(10).expect("valid");
        assert_eq!(q.interval(), Duration::from_millis(100));
        let q = Quota::per_hour(1).expect("valid");
        assert_eq!(q.interval(), Duration::from_secs(3600));
    }

    #[test]
    fn bad_values_are_typed_errors() {
        assert_eq!(Quota::per_second(0), Err(QuotaError::Zero));
        assert!(matches!(
            Quota::new(1, Duration::ZERO),
            Err(QuotaError::Period(_))
        ));
        assert!(matches!(
            Quota::new(1, Duration::MAX),
            Err(QuotaError::Period(_))
        ));
        // The longest period is a hundred 365-day years, to the nanosecond.
        let century = Duration::from_secs(3_153_600_000);
        assert!(Quota::new(1, century).is_ok());
        assert_eq!(
            Quota::new(1, century + Duration::from_nanos(1)),
            Err(QuotaError::Period(century + Duration::from_nanos(1)))
        );
        assert!(matches!(
            Quota::per_second(2_000_000_000),
            Err(QuotaError::TooFast { .. })
        ));
        assert_eq!(
            Quota::per_second(1).expect("valid").with_burst(0),
            Err(QuotaError::Zero)
        );
        assert_eq!(
            Quota::new(1, HUNDRED_YEARS)
                .expect("valid")
                .with_burst(u32::MAX),
            Err(QuotaError::Overflow)
        );
        assert!(!QuotaError::Zero.to_string().is_empty());
    }
}
