//! Additive increase, multiplicative decrease (Netflix `AIMDLimit`).

use std::time::Duration;

use super::{Algorithm, Bounds, Sample, check_limits, check_range};
use crate::error::AdaptiveConfigError;

/// AIMD: on a drop, or a request slower than `timeout`, the limit is
/// multiplied by `backoff` (0.9); otherwise, when at least half the limit
/// was in use, it grows by one.
///
/// After a back-off, further drops are ignored for the next `L` samples
/// (about one round of the requests that were already in flight): those
/// requests were admitted under the old limit, and letting each of them
/// multiply the limit by 0.9 again collapses it to the minimum after one
/// slow burst. (Netflix's `AIMDLimit` backs off on every drop.)
///
/// Simple and stable; it reacts to failures and timeouts, not to latency
/// that creeps up below the timeout. Built from an [`AimdConfig`] (or
/// [`Aimd::new`] for the bounds alone).
///
/// ```
/// use std::time::Duration;
/// use buttress_pressure::{AdaptiveLimiter, AimdConfig};
///
/// let aimd = AimdConfig::default()
///     .initial(20)
///     .min(2)
///     .max(200)
///     .timeout(Duration::from_millis(250))
///     .build()?;
/// let limiter = AdaptiveLimiter::new("llm", aimd)?;
/// assert_eq!(limiter.limit(), 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Aimd {
    limit: f64,
    bounds: Bounds,
    backoff: f64,
    timeout: Duration,
    /// Samples left during which drops do not back off again.
    cooldown: u64,
}

impl Aimd {
    /// Starts at `initial`, between `min` and `max`, backing off by 0.9 on
    /// a drop or a request slower than 5 s: the defaults of
    /// [`AimdConfig`] with these bounds.
    ///
    /// ```
    /// use buttress_pressure::{AdaptiveConfigError, Aimd, Algorithm};
    ///
    /// assert_eq!(Aimd::new(20, 2, 200)?.limit(), 20.0);
    /// assert_eq!(Aimd::new(20, 0, 200).unwrap_err(), AdaptiveConfigError::ZeroMin);
    /// # Ok::<(), AdaptiveConfigError>(())
    /// ```
    pub fn new(initial: u32, min: u32, max: u32) -> Result<Aimd, AdaptiveConfigError> {
        AimdConfig::default()
            .initial(initial)
            .min(min)
            .max(max)
            .build()
    }
}

/// The parameters of [`Aimd`]: the bounds, the initial limit, the back-off
/// factor and the timeout. `Default` and chainable setters, checked by
/// [`build`](AimdConfig::build) into a typed error. Under the `serde`
/// feature it loads from a file (every key optional; unknown keys, bad
/// durations and invalid values refused as it loads), most often as the
/// `"aimd"` case of an [`AdaptiveConfig`](crate::AdaptiveConfig).
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use std::time::Duration;
/// use buttress_pressure::AimdConfig;
///
/// let config: AimdConfig = serde_json::from_str(r#"{ "max": 100, "timeout": "250ms" }"#).unwrap();
/// assert_eq!(config, AimdConfig::default().max(100).timeout(Duration::from_millis(250)));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(try_from = "AimdDoc", into = "AimdDoc"))]
pub struct AimdConfig {
    /// The limit before any sample, within `min..=max`. Default 20.
    pub initial: u32,
    /// The lowest limit, at least 1. Default 1.
    pub min: u32,
    /// The highest limit. Default 200.
    pub max: u32,
    /// What a drop multiplies the limit by, 0.5 to 0.99. Default 0.9.
    pub backoff: f64,
    /// Requests slower than this count as drops; above zero. Default 5 s.
    pub timeout: Duration,
}

impl Default for AimdConfig {
    fn default() -> Self {
        AimdConfig {
            initial: 20,
            min: 1,
            max: 200,
            backoff: 0.9,
            timeout: Duration::from_secs(5),
        }
    }
}

impl AimdConfig {
    buttress_core::setters! {
        /// Sets [`initial`](AimdConfig::initial).
        ///
        /// ```
        /// # use buttress_pressure::AimdConfig;
        /// assert_eq!(AimdConfig::default().initial(50).initial, 50);
        /// ```
        initial: u32,
        /// Sets [`min`](AimdConfig::min).
        ///
        /// ```
        /// # use buttress_pressure::AimdConfig;
        /// assert_eq!(AimdConfig::default().min(5).min, 5);
        /// ```
        min: u32,
        /// Sets [`max`](AimdConfig::max).
        ///
        /// ```
        /// # use buttress_pressure::AimdConfig;
        /// assert_eq!(AimdConfig::default().max(500).max, 500);
        /// ```
        max: u32,
        /// Sets [`backoff`](AimdConfig::backoff).
        ///
        /// ```
        /// # use buttress_pressure::AimdConfig;
        /// assert_eq!(AimdConfig::default().backoff(0.75).backoff, 0.75);
        /// ```
        backoff: f64,
        /// Sets [`timeout`](AimdConfig::timeout).
        ///
        /// ```
        /// # use std::time::Duration;
        /// # use buttress_pressure::AimdConfig;
        /// let config = AimdConfig::default().timeout(Duration::from_millis(250));
        /// assert_eq!(config.timeout, Duration::from_millis(250));
        /// ```
        timeout: Duration,
    }

    /// Whether the parameters make sense (see each field).
    ///
    /// ```
    /// # use buttress_pressure::{AdaptiveConfigError, AimdConfig};
    /// assert!(AimdConfig::default().validate().is_ok());
    /// assert_eq!(
    ///     AimdConfig::default().min(10).max(5).validate(),
    ///     Err(AdaptiveConfigError::MinAboveMax { min: 10, max: 5 })
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), AdaptiveConfigError> {
        check_limits(self.initial, self.min, self.max)?;
        check_range("backoff", self.backoff, 0.5, 0.99)?;
        if self.timeout.is_zero() {
            return Err(AdaptiveConfigError::Zero {
                parameter: "timeout",
            });
        }
        Ok(())
    }

    /// The algorithm, at its initial limit; or why the parameters make no
    /// sense.
    ///
    /// ```
    /// # use buttress_pressure::{AimdConfig, Algorithm};
    /// let aimd = AimdConfig::default().initial(10).build()?;
    /// assert_eq!(aimd.limit(), 10.0);
    /// # Ok::<(), buttress_pressure::AdaptiveConfigError>(())
    /// ```
    pub fn build(&self) -> Result<Aimd, AdaptiveConfigError> {
        self.validate()?;
        let bounds = Bounds::new(self.min, self.max);
        Ok(Aimd {
            limit: f64::from(self.initial),
            bounds,
            backoff: self.backoff,
            timeout: self.timeout,
            cooldown: 0,
        })
    }
}

/// An [`AimdConfig`] as written in a configuration file, before it is
/// checked; what is left out keeps its default.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct AimdDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    initial: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backoff: Option<f64>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    timeout: Option<Duration>,
}

/// Written out in full: loading it back gives the same configuration.
#[cfg(feature = "serde")]
impl From<AimdConfig> for AimdDoc {
    fn from(c: AimdConfig) -> Self {
        AimdDoc {
            initial: Some(c.initial),
            min: Some(c.min),
            max: Some(c.max),
            backoff: Some(c.backoff),
            timeout: Some(c.timeout),
        }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<AimdDoc> for AimdConfig {
    type Error = AdaptiveConfigError;

    fn try_from(doc: AimdDoc) -> Result<Self, AdaptiveConfigError> {
        let d = AimdConfig::default();
        let config = AimdConfig {
            initial: doc.initial.unwrap_or(d.initial),
            min: doc.min.unwrap_or(d.min),
            max: doc.max.unwrap_or(d.max),
            backoff: doc.backoff.unwrap_or(d.backoff),
            timeout: doc.timeout.unwrap_or(d.timeout),
        };
        config.validate()?;
        Ok(config)
    }
}

impl Algorithm for Aimd {
    fn limit(&self) -> f64 {
        self.limit
    }

    fn update(&mut self, s: Sample) -> f64 {
        let cooling = self.cooldown > 0;
        self.cooldown = self.cooldown.saturating_sub(1);
        if s.dropped || s.rtt > self.timeout {
            if !cooling {
                self.limit = self.bounds.clamp((self.limit * self.backoff).floor());
                self.cooldown = self.limit as u64;
            }
        } else if 2.0 * s.inflight as f64 >= self.limit {
            self.limit += 1.0;
        }
        self.limit = self.bounds.clamp(self.limit);
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::adaptive::sample as ok;

    #[test]
    fn follows_the_formula_step_by_step() {
        let mut a = AimdConfig::default()
            .initial(20)
            .min(5)
            .max(30)
            .timeout(Duration::from_millis(100))
            .build()
            .expect("valid");
        assert_eq!(a.update(ok(10, 10)), 21.0); // 2·10 ≥ 20: +1
        assert_eq!(a.update(ok(10, 5)), 21.0); // app-limited: hold
        assert_eq!(
            a.update(Sample {
                dropped: true,
                ..ok(10, 21)
            }),
            18.0
        ); // ⌊21·0.9⌋
        // The next 18 drops were in flight already: no second back-off.
        for _ in 0..18 {
            assert_eq!(a.update(ok(150, 18)), 18.0);
        }
        assert_eq!(a.update(ok(150, 18)), 16.0); // slower than the timeout: ⌊18·0.9⌋
        for _ in 0..100 {
            a.update(ok(10, 100));
        }
        assert_eq!(a.limit(), 30.0); // max
        for _ in 0..1000 {
            a.update(Sample {
                dropped: true,
                ..ok(10, 1)
            });
        }
        assert_eq!(a.limit(), 5.0); // min
    }

    /// A call that takes exactly the timeout is not overload; one a
    /// nanosecond longer is.
    #[test]
    fn the_timeout_itself_is_not_overload() {
        let timeout = Duration::from_millis(100);
        let mut a = AimdConfig::default()
            .initial(20)
            .timeout(timeout)
            .build()
            .expect("valid");
        let at = |rtt| Sample {
            rtt,
            inflight: 20,
            dropped: false,
        };
        assert_eq!(a.update(at(timeout)), 21.0);
        assert_eq!(a.update(at(timeout + Duration::from_nanos(1))), 18.0);
    }
}
