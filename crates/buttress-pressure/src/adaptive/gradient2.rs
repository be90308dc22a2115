//! Gradient2 (Netflix `Gradient2Limit`).

use super::{Algorithm, Bounds, Sample, check_limits, check_range, seconds};
use crate::error::AdaptiveConfigError;

/// Gradient2: compares a long-term average of latency with the latest
/// sample. When latency rises above `tolerance` × the long-term average the
/// gradient falls below 1 and the limit shrinks; otherwise it grows by
/// `queue_size` a step, smoothed:
///
/// ```text
/// g = clamp(tolerance · long_rtt / rtt, 0.5, 1)
/// L ← (1 − smoothing) · L + smoothing · (g · L + queue_size)
/// ```
///
/// The long-term average is an exponential average over `window` samples
/// (a plain mean over the first 10, as Netflix warms up); when it is more
/// than twice the latest sample it decays by 5 % a step, so that it comes
/// down quickly after an overload ends. During a sustained overload it
/// learns the slow latency as normal and the limit creeps back up
/// (Netflix #134); prefer Vegas or AIMD for long capacity losses. While
/// fewer than half the limit are in flight the limit holds (app-limited).
///
/// Built from a [`Gradient2Config`] (or [`Gradient2::new`] for the bounds
/// alone).
///
/// ```
/// use buttress_pressure::{AdaptiveLimiter, Gradient2Config};
///
/// let gradient2 = Gradient2Config::default().initial(20).min(2).max(200).build()?;
/// let limiter = AdaptiveLimiter::new("search", gradient2)?;
/// assert_eq!(limiter.limit(), 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Gradient2 {
    limit: f64,
    bounds: Bounds,
    smoothing: f64,
    tolerance: f64,
    queue_size: f64,
    window: f64,
    long_rtt: Option<f64>,
    samples: u64,
}

impl Gradient2 {
    /// Starts at `initial`, between `min` and `max`; smoothing 0.2,
    /// tolerance 1.5, queue size 4, a window of 600 samples: the defaults
    /// of [`Gradient2Config`] with these bounds.
    ///
    /// ```
    /// use buttress_pressure::{AdaptiveConfigError, Algorithm, Gradient2};
    ///
    /// assert_eq!(Gradient2::new(20, 2, 200)?.limit(), 20.0);
    /// assert_eq!(
    ///     Gradient2::new(500, 2, 200).unwrap_err(),
    ///     AdaptiveConfigError::InitialOutOfBounds { initial: 500, min: 2, max: 200 }
    /// );
    /// # Ok::<(), AdaptiveConfigError>(())
    /// ```
    pub fn new(initial: u32, min: u32, max: u32) -> Result<Gradient2, AdaptiveConfigError> {
        Gradient2Config::default()
            .initial(initial)
            .min(min)
            .max(max)
            .build()
    }

    /// The long-term average of latency, in seconds.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_pressure::{Algorithm, Gradient2, Sample};
    ///
    /// let mut gradient2 = Gradient2::new(20, 2, 200)?;
    /// assert_eq!(gradient2.long_rtt(), None);
    /// gradient2.update(Sample { rtt: Duration::from_millis(100), inflight: 20, dropped: false });
    /// assert_eq!(gradient2.long_rtt(), Some(0.1));
    /// # Ok::<(), buttress_pressure::AdaptiveConfigError>(())
    /// ```
    pub fn long_rtt(&self) -> Option<f64> {
        self.long_rtt
    }
}

/// The parameters of [`Gradient2`]: the bounds, the initial limit, the
/// smoothing, the latency tolerance, the queue allowed above the estimate
/// and the long-term window. `Default` and chainable setters, checked by
/// [`build`](Gradient2Config::build) into a typed error. Under the `serde`
/// feature it loads from a file (every key optional; unknown keys and
/// invalid values refused as it loads), most often as the `"gradient2"`
/// case of an [`AdaptiveConfig`](crate::AdaptiveConfig).
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use buttress_pressure::Gradient2Config;
///
/// let config: Gradient2Config = serde_json::from_str(r#"{ "tolerance": 2.0, "window": 300 }"#).unwrap();
/// assert_eq!(config, Gradient2Config::default().tolerance(2.0).window(300));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(try_from = "Gradient2Doc", into = "Gradient2Doc")
)]
pub struct Gradient2Config {
    /// The limit before any sample, within `min..=max`. Default 20.
    pub initial: u32,
    /// The lowest limit, at least 1. Default 1.
    pub min: u32,
    /// The highest limit. Default 200.
    pub max: u32,
    /// How much of each new estimate is taken, 0.01 to 1. Default 0.2.
    pub smoothing: f64,
    /// How much latency above the long-term average is tolerated, at
    /// least 1. Default 1.5.
    pub tolerance: f64,
    /// How many requests may queue above the estimate. Default 4.
    pub queue_size: u32,
    /// The samples the long-term average spans, at least 1. Default 600.
    pub window: u32,
}

impl Default for Gradient2Config {
    fn default() -> Self {
        Gradient2Config {
            initial: 20,
            min: 1,
            max: 200,
            smoothing: 0.2,
            tolerance: 1.5,
            queue_size: 4,
            window: 600,
        }
    }
}

impl Gradient2Config {
    buttress_core::setters! {
        /// Sets [`initial`](Gradient2Config::initial).
        ///
        /// ```
        /// # use buttress_pressure::Gradient2Config;
        /// assert_eq!(Gradient2Config::default().initial(50).initial, 50);
        /// ```
        initial: u32,
        /// Sets [`min`](Gradient2Config::min).
        ///
        /// ```
        /// # use buttress_pressure::Gradient2Config;
        /// assert_eq!(Gradient2Config::default().min(5).min, 5);
        /// ```
        min: u32,
        /// Sets [`max`](Gradient2Config::max).
        ///
        /// ```
        /// # use buttress_pressure::Gradient2Config;
        /// assert_eq!(Gradient2Config::default().max(500).max, 500);
        /// ```
        max: u32,
        /// Sets [`smoothing`](Gradient2Config::smoothing).
        ///
        /// ```
        /// # use buttress_pressure::Gradient2Config;
        /// assert_eq!(Gradient2Config::default().smoothing(0.5).smoothing, 0.5);
        /// ```
        smoothing: f64,
        /// Sets [`tolerance`](Gradient2Config::tolerance).
        ///
        /// ```
        /// # use buttress_pressure::Gradient2Config;
        /// assert_eq!(Gradient2Config::default().tolerance(2.0).tolerance, 2.0);
        /// ```
        tolerance: f64,
        /// Sets [`queue_size`](Gradient2Config::queue_size).
        ///
        /// ```
        /// # use buttress_pressure::Gradient2Config;
        /// assert_eq!(Gradient2Config::default().queue_size(8).queue_size, 8);
        /// ```
        queue_size: u32,
        /// Sets [`window`](Gradient2Config::window).
        ///
        /// ```
        /// # use buttress_pressure::Gradient2Config;
        /// assert_eq!(Gradient2Config::default().window(100).window, 100);
        /// ```
        window: u32,
    }

    /// Whether the parameters make sense (see each field).
    ///
    /// ```
    /// # use buttress_pressure::{AdaptiveConfigError, Gradient2Config};
    /// assert!(Gradient2Config::default().validate().is_ok());
    /// assert!(matches!(
    ///     Gradient2Config::default().tolerance(0.5).validate(),
    ///     Err(AdaptiveConfigError::TooSmall { parameter: "tolerance", .. })
    /// ));
    /// ```
    pub fn validate(&self) -> Result<(), AdaptiveConfigError> {
        check_limits(self.initial, self.min, self.max)?;
        check_range("smoothing", self.smoothing, 0.01, 1.0)?;
        if !(self.tolerance.is_finite() && self.tolerance >= 1.0) {
            return Err(AdaptiveConfigError::TooSmall {
                parameter: "tolerance",
                value: self.tolerance,
                min: 1.0,
            });
        }
        if self.window == 0 {
            return Err(AdaptiveConfigError::Zero {
                parameter: "window",
            });
        }
        Ok(())
    }

    /// The algorithm, at its initial limit; or why the parameters make no
    /// sense.
    ///
    /// ```
    /// # use buttress_pressure::{Algorithm, Gradient2Config};
    /// let gradient2 = Gradient2Config::default().initial(10).build()?;
    /// assert_eq!(gradient2.limit(), 10.0);
    /// # Ok::<(), buttress_pressure::AdaptiveConfigError>(())
    /// ```
    pub fn build(&self) -> Result<Gradient2, AdaptiveConfigError> {
        self.validate()?;
        Ok(Gradient2 {
            limit: f64::from(self.initial),
            bounds: Bounds::new(self.min, self.max),
            smoothing: self.smoothing,
            tolerance: self.tolerance,
            queue_size: f64::from(self.queue_size),
            window: f64::from(self.window),
            long_rtt: None,
            samples: 0,
        })
    }
}

/// A [`Gradient2Config`] as written in a configuration file, before it is
/// checked; what is left out keeps its default.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Gradient2Doc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    initial: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    smoothing: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tolerance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    queue_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window: Option<u32>,
}

/// Written out in full: loading it back gives the same configuration.
#[cfg(feature = "serde")]
impl From<Gradient2Config> for Gradient2Doc {
    fn from(c: Gradient2Config) -> Self {
        Gradient2Doc {
            initial: Some(c.initial),
            min: Some(c.min),
            max: Some(c.max),
            smoothing: Some(c.smoothing),
            tolerance: Some(c.tolerance),
            queue_size: Some(c.queue_size),
            window: Some(c.window),
        }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<Gradient2Doc> for Gradient2Config {
    type Error = AdaptiveConfigError;

    fn try_from(doc: Gradient2Doc) -> Result<Self, AdaptiveConfigError> {
        let d = Gradient2Config::default();
        let config = Gradient2Config {
            initial: doc.initial.unwrap_or(d.initial),
            min: doc.min.unwrap_or(d.min),
            max: doc.max.unwrap_or(d.max),
            smoothing: doc.smoothing.unwrap_or(d.smoothing),
            tolerance: doc.tolerance.unwrap_or(d.tolerance),
            queue_size: doc.queue_size.unwrap_or(d.queue_size),
            window: doc.window.unwrap_or(d.window),
        };
        config.validate()?;
        Ok(config)
    }
}

impl Algorithm for Gradient2 {
    fn limit(&self) -> f64 {
        self.limit
    }

    fn update(&mut self, s: Sample) -> f64 {
        self.update_timed(s, seconds(&s))
    }

    fn uses_seconds(&self) -> bool {
        true
    }

    fn update_timed(&mut self, s: Sample, rtt: f64) -> f64 {
        self.samples += 1;
        // Exponential average; plain average while warming up.
        let long = match self.long_rtt {
            None => rtt,
            Some(avg) if self.samples <= 10 => avg + (rtt - avg) / self.samples as f64,
            Some(avg) => {
                let k = 2.0 / (self.window + 1.0);
                avg * (1.0 - k) + rtt * k
            }
        };
        let long = if long / rtt > 2.0 { long * 0.95 } else { long };
        self.long_rtt = Some(long);
        if (s.inflight as f64) < self.limit / 2.0 {
            return self.limit;
        }
        let gradient = (self.tolerance * long / rtt).clamp(0.5, 1.0);
        let estimate = gradient * self.limit + self.queue_size;
        self.limit = self
            .bounds
            .clamp((1.0 - self.smoothing) * self.limit + self.smoothing * estimate);
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::adaptive::sample as s;

    #[test]
    fn follows_the_formula_step_by_step() {
        let mut g = Gradient2::new(20, 10, 200).expect("valid");
        // First sample: long = rtt, g = min(1.5, 1) = 1: L = 0.8·20 + 0.2·(20 + 4).
        assert!((g.update(s(100, 20)) - 20.8).abs() < 1e-9);
        // Twice the latency: long = (0.1 + 0.2)/2 = 0.15, g = 1.5·0.15/0.2 = 1.125 → 1.
        assert!((g.update(s(200, 20)) - (0.8 * 20.8 + 0.2 * (20.8 + 4.0))).abs() < 1e-9);
        let before = g.limit();
        // Far slower than the average: g = 1.5·avg/rtt < 1: the limit falls.
        let after = g.update(s(2_000, 30));
        let long = g.long_rtt().unwrap_or_default();
        assert!((long - (0.15 + (2.0 - 0.15) / 3.0)).abs() < 1e-9);
        let gradient = (1.5 * long / 2.0).clamp(0.5, 1.0);
        assert!(gradient < 1.0);
        assert!((after - (0.8 * before + 0.2 * (gradient * before + 4.0))).abs() < 1e-9);
        assert!(after < before);
        // App-limited: holds.
        assert_eq!(g.update(s(10, 1)), after);
    }

    /// Exactly at half the limit in flight the limit moves (below half,
    /// the caller is app-limited and it holds).
    #[test]
    fn half_the_limit_in_flight_is_not_app_limited() {
        let mut g = Gradient2::new(20, 10, 200).expect("valid");
        assert!((g.update(s(100, 10)) - 20.8).abs() < 1e-9);
    }

    /// The long average: plain over the first ten samples, then an
    /// exponential one with k = 2 / (window + 1); and decayed by 5 % when
    /// it is more than twice the sample (not when exactly twice).
    #[test]
    fn the_long_average_warms_up_then_decays_exponentially() {
        let mut g = Gradient2::new(20, 10, 200).expect("valid");
        g.update(s(750, 20));
        g.update(s(250, 20));
        // (0.75 + 0.25) / 2 = 0.5: exactly twice the sample, kept.
        assert_eq!(g.long_rtt(), Some(0.5));
        g.update(s(100, 20));
        // 0.5 + (0.1 − 0.5) / 3 = 0.3666…, 3.67 times the sample: decayed.
        let warm = (0.5 + (0.1 - 0.5) / 3.0) * 0.95;
        assert!((g.long_rtt().unwrap_or_default() - warm).abs() < 1e-12);

        let mut g = Gradient2::new(20, 10, 200).expect("valid");
        for _ in 0..10 {
            g.update(s(100, 20));
        }
        assert_eq!(g.long_rtt(), Some(0.1));
        g.update(s(150, 20));
        let k = 2.0 / (600.0 + 1.0);
        let ema = 0.1 * (1.0 - k) + 0.15 * k;
        assert!((g.long_rtt().unwrap_or_default() - ema).abs() < 1e-12);
    }

    #[test]
    fn shrinks_under_overload_and_grows_back() {
        let mut g = Gradient2::new(50, 5, 200).expect("valid");
        for _ in 0..700 {
            g.update(s(100, 60));
        }
        let healthy = g.limit();
        for _ in 0..200 {
            g.update(s(400, 200));
        }
        let overloaded = g.limit();
        assert!(overloaded < healthy / 2.0, "{overloaded} vs {healthy}");
        for _ in 0..2_000 {
            g.update(s(100, 200));
        }
        assert!(g.limit() > overloaded * 2.0);
    }
}
