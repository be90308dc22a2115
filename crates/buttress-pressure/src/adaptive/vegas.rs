//! TCP Vegas applied to concurrency (Netflix `VegasLimit`).

use super::{Algorithm, Bounds, Sample, check_limits, check_range, seconds};
use crate::error::AdaptiveConfigError;

/// Vegas: estimates the queue from the latency without load (the lowest
/// seen) and the latest sample, and keeps it between α and β:
///
/// ```text
/// q = ⌈L · (1 − rtt_noload / rtt)⌉      α = 3·log L   β = 6·log L   threshold = log L
/// drop:             L − log L
/// 2·inflight < L:   hold (app-limited)
/// q ≤ threshold:    L + β
/// q < α:            L + log L
/// q > β:            L − log L
/// ```
///
/// with `log L = max(1, log10 L)`. `rtt` is an exponential average of the
/// samples (weight `smoothing`, 0.1 by default) and `rtt_noload` the lowest
/// average seen: with raw samples, the lowest of a noisy latency is far
/// below its typical value and Vegas reads the noise as a queue (Netflix's
/// default is no smoothing). `rtt_noload` is re-measured every
/// `probe_multiplier × L` samples (it resets to the current average), so
/// that a service that became permanently slower is not read as
/// overloaded forever.
#[derive(Debug, Clone)]
pub struct Vegas {
    limit: f64,
    bounds: Bounds,
    rtt_noload: Option<f64>,
    rtt: Option<f64>,
    smoothing: f64,
    /// `1 / smoothing`: the samples held while the average settles
    /// (computed once: a division per sample is a cost on every request).
    warmup: f64,
    samples: u64,
    probe_multiplier: f64,
    since_probe: u64,
}

fn log(limit: f64) -> f64 {
    limit.log10().max(1.0)
}

impl Vegas {
    /// Starts at `initial`, between `min` and `max`, with smoothing 0.1,
    /// re-probing every 30·L samples: the defaults of [`VegasConfig`] with
    /// these bounds.
    ///
    /// ```
    /// use buttress_pressure::{AdaptiveConfigError, Algorithm, Vegas};
    ///
    /// assert_eq!(Vegas::new(20, 2, 200)?.limit(), 20.0);
    /// assert_eq!(
    ///     Vegas::new(20, 300, 200).unwrap_err(),
    ///     AdaptiveConfigError::MinAboveMax { min: 300, max: 200 }
    /// );
    /// # Ok::<(), AdaptiveConfigError>(())
    /// ```
    pub fn new(initial: u32, min: u32, max: u32) -> Result<Vegas, AdaptiveConfigError> {
        VegasConfig::default()
            .initial(initial)
            .min(min)
            .max(max)
            .build()
    }

    /// The latency without load, in seconds.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_pressure::{Algorithm, Sample, VegasConfig};
    ///
    /// let mut vegas = VegasConfig::default().smoothing(1.0).build()?;
    /// assert_eq!(vegas.rtt_noload(), None);
    /// vegas.update(Sample { rtt: Duration::from_millis(50), inflight: 20, dropped: false });
    /// assert_eq!(vegas.rtt_noload(), Some(0.05));
    /// # Ok::<(), buttress_pressure::AdaptiveConfigError>(())
    /// ```
    pub fn rtt_noload(&self) -> Option<f64> {
        self.rtt_noload
    }
}

/// The parameters of [`Vegas`]: the bounds, the initial limit, the
/// smoothing of the latency average and how often the latency without load
/// is re-probed. `Default` and chainable setters, checked by
/// [`build`](VegasConfig::build) into a typed error. Under the `serde`
/// feature it loads from a file (every key optional; unknown keys and
/// invalid values refused as it loads), most often as the `"vegas"` case
/// of an [`AdaptiveConfig`](crate::AdaptiveConfig).
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use buttress_pressure::VegasConfig;
///
/// let config: VegasConfig = serde_json::from_str(r#"{ "initial": 20, "min": 2, "max": 200 }"#).unwrap();
/// assert_eq!(config, VegasConfig::default().min(2).max(200));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(try_from = "VegasDoc", into = "VegasDoc"))]
pub struct VegasConfig {
    /// The limit before any sample, within `min..=max`. Default 20.
    pub initial: u32,
    /// The lowest limit, at least 1. Default 1.
    pub min: u32,
    /// The highest limit. Default 1,000.
    pub max: u32,
    /// The weight of each sample in the latency average, 0.01 to 1 (1 is
    /// no smoothing, as in Netflix's default). Default 0.1.
    pub smoothing: f64,
    /// Re-probe the latency without load every `probe_multiplier × L`
    /// samples; at least 1. Default 30.
    pub probe_multiplier: u32,
}

impl Default for VegasConfig {
    fn default() -> Self {
        VegasConfig {
            initial: 20,
            min: 1,
            max: 1_000,
            smoothing: 0.1,
            probe_multiplier: 30,
        }
    }
}

impl VegasConfig {
    buttress_core::setters! {
        /// Sets [`initial`](VegasConfig::initial).
        ///
        /// ```
        /// # use buttress_pressure::VegasConfig;
        /// assert_eq!(VegasConfig::default().initial(50).initial, 50);
        /// ```
        initial: u32,
        /// Sets [`min`](VegasConfig::min).
        ///
        /// ```
        /// # use buttress_pressure::VegasConfig;
        /// assert_eq!(VegasConfig::default().min(5).min, 5);
        /// ```
        min: u32,
        /// Sets [`max`](VegasConfig::max).
        ///
        /// ```
        /// # use buttress_pressure::VegasConfig;
        /// assert_eq!(VegasConfig::default().max(200).max, 200);
        /// ```
        max: u32,
        /// Sets [`smoothing`](VegasConfig::smoothing).
        ///
        /// ```
        /// # use buttress_pressure::VegasConfig;
        /// assert_eq!(VegasConfig::default().smoothing(1.0).smoothing, 1.0);
        /// ```
        smoothing: f64,
        /// Sets [`probe_multiplier`](VegasConfig::probe_multiplier).
        ///
        /// ```
        /// # use buttress_pressure::VegasConfig;
        /// assert_eq!(VegasConfig::default().probe_multiplier(10).probe_multiplier, 10);
        /// ```
        probe_multiplier: u32,
    }

    /// Whether the parameters make sense (see each field).
    ///
    /// ```
    /// # use buttress_pressure::{AdaptiveConfigError, VegasConfig};
    /// assert!(VegasConfig::default().validate().is_ok());
    /// assert_eq!(
    ///     VegasConfig::default().probe_multiplier(0).validate(),
    ///     Err(AdaptiveConfigError::Zero { parameter: "probe_multiplier" })
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), AdaptiveConfigError> {
        check_limits(self.initial, self.min, self.max)?;
        check_range("smoothing", self.smoothing, 0.01, 1.0)?;
        if self.probe_multiplier == 0 {
            return Err(AdaptiveConfigError::Zero {
                parameter: "probe_multiplier",
            });
        }
        Ok(())
    }

    /// The algorithm, at its initial limit; or why the parameters make no
    /// sense.
    ///
    /// ```
    /// # use buttress_pressure::{Algorithm, VegasConfig};
    /// let vegas = VegasConfig::default().initial(10).build()?;
    /// assert_eq!(vegas.limit(), 10.0);
    /// # Ok::<(), buttress_pressure::AdaptiveConfigError>(())
    /// ```
    pub fn build(&self) -> Result<Vegas, AdaptiveConfigError> {
        self.validate()?;
        Ok(Vegas {
            limit: f64::from(self.initial),
            bounds: Bounds::new(self.min, self.max),
            rtt_noload: None,
            rtt: None,
            smoothing: self.smoothing,
            warmup: 1.0 / self.smoothing,
            samples: 0,
            probe_multiplier: f64::from(self.probe_multiplier),
            since_probe: 0,
        })
    }
}

/// A [`VegasConfig`] as written in a configuration file, before it is
/// checked; what is left out keeps its default.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct VegasDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    initial: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    smoothing: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    probe_multiplier: Option<u32>,
}

/// Written out in full: loading it back gives the same configuration.
#[cfg(feature = "serde")]
impl From<VegasConfig> for VegasDoc {
    fn from(c: VegasConfig) -> Self {
        VegasDoc {
            initial: Some(c.initial),
            min: Some(c.min),
            max: Some(c.max),
            smoothing: Some(c.smoothing),
            probe_multiplier: Some(c.probe_multiplier),
        }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<VegasDoc> for VegasConfig {
    type Error = AdaptiveConfigError;

    fn try_from(doc: VegasDoc) -> Result<Self, AdaptiveConfigError> {
        let d = VegasConfig::default();
        let config = VegasConfig {
            initial: doc.initial.unwrap_or(d.initial),
            min: doc.min.unwrap_or(d.min),
            max: doc.max.unwrap_or(d.max),
            smoothing: doc.smoothing.unwrap_or(d.smoothing),
            probe_multiplier: doc.probe_multiplier.unwrap_or(d.probe_multiplier),
        };
        config.validate()?;
        Ok(config)
    }
}

impl Algorithm for Vegas {
    fn limit(&self) -> f64 {
        self.limit
    }

    fn update(&mut self, s: Sample) -> f64 {
        self.update_timed(s, seconds(&s))
    }

    fn uses_seconds(&self) -> bool {
        true
    }

    fn update_timed(&mut self, s: Sample, sample: f64) -> f64 {
        let rtt = match self.rtt {
            None => sample,
            Some(avg) => avg + self.smoothing * (sample - avg),
        };
        self.rtt = Some(rtt);
        self.samples += 1;
        // Until the average has seen about 1/smoothing samples it is mostly
        // the first few: hold.
        if (self.samples as f64) < self.warmup {
            return self.limit;
        }
        self.since_probe += 1;
        if self.since_probe as f64 >= self.probe_multiplier * self.limit {
            // Re-probe: the current average becomes the latency without
            // load, and this sample changes nothing (as in Netflix's).
            self.since_probe = 0;
            self.rtt_noload = Some(rtt);
            return self.limit;
        }
        let noload = match self.rtt_noload {
            Some(n) if n <= rtt => n,
            _ => {
                self.rtt_noload = Some(rtt);
                rtt
            }
        };
        let l = self.limit;
        let next = if s.dropped {
            l - log(l)
        } else if 2.0 * (s.inflight as f64) < l {
            l
        } else {
            let q = (l * (1.0 - noload / rtt)).ceil();
            let log_l = log(l);
            let (alpha, beta, threshold) = (3.0 * log_l, 6.0 * log_l, log_l);
            if q <= threshold {
                l + beta
            } else if q < alpha {
                l + log_l
            } else if q > beta {
                l - log_l
            } else {
                l
            }
        };
        self.limit = self.bounds.clamp(next);
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::adaptive::sample as s;

    /// Limit 100 between 10 and 1000, the average the last sample.
    fn at_100() -> Vegas {
        VegasConfig::default()
            .initial(100)
            .min(10)
            .max(1000)
            .smoothing(1.0)
            .build()
            .expect("valid")
    }

    #[test]
    fn follows_the_formula_step_by_step() {
        let mut v = at_100();
        // First sample sets rtt_noload: q = 0 ≤ threshold (2): L + β = 100 + 12.
        assert_eq!(v.update(s(100, 60)), 112.0);
        // rtt 105: q = ⌈112·(1 − 100/105)⌉ = 6; log = 2.049..., α = 6.147: q < α → L + log L.
        let l = 112.0f64;
        assert!((v.update(s(105, 60)) - (l + l.log10())).abs() < 1e-9);
        // rtt 200: q = ⌈L/2⌉ > β → L − log L.
        let l = v.limit();
        assert!((v.update(s(200, 100)) - (l - l.log10())).abs() < 1e-9);
        // A drop: L − log L.
        let l = v.limit();
        assert!(
            (v.update(Sample {
                dropped: true,
                ..s(100, 100)
            }) - (l - l.log10()))
            .abs()
                < 1e-9
        );
        // App-limited: holds.
        let l = v.limit();
        assert_eq!(v.update(s(500, 1)), l);
    }

    #[test]
    fn re_probes_the_latency_without_load() {
        let mut v = VegasConfig::default()
            .initial(10)
            .min(10)
            .max(10)
            .probe_multiplier(1)
            .smoothing(1.0)
            .build()
            .expect("valid");
        v.update(s(50, 10));
        assert_eq!(v.rtt_noload(), Some(0.05));
        // A probe every multiplier × limit = 10 samples: not at the 9th,
        // at the 10th.
        for _ in 0..8 {
            v.update(s(80, 10));
        }
        assert_eq!(v.rtt_noload(), Some(0.05));
        v.update(s(80, 10));
        assert_eq!(v.rtt_noload(), Some(0.08));
    }

    /// A queue of exactly α (3 log L) holds the limit: only below it does
    /// the limit grow.
    #[test]
    fn a_queue_of_alpha_holds() {
        let mut v = at_100();
        // App-limited (it holds), but it sets the latency without load.
        assert_eq!(v.update(s(50, 1)), 100.0);
        // q = ⌈100·(1 − 50/53)⌉ = 6 = 3·log 100.
        assert_eq!(v.update(s(53, 100)), 100.0);
        // q = ⌈100·(1 − 50/56.5)⌉ = 12 = β = 6·log 100: holds too; only
        // above β does it shrink.
        let at_beta = Sample {
            rtt: std::time::Duration::from_micros(56_500),
            ..s(0, 100)
        };
        assert_eq!(v.update(at_beta), 100.0);
    }

    /// Exactly half the limit in flight is not app-limited: the limit moves.
    #[test]
    fn half_the_limit_in_flight_is_not_app_limited() {
        let mut v = at_100();
        assert_eq!(v.update(s(50, 50)), 112.0);
    }
}

#[cfg(test)]
mod smoothing_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_average_not_the_noise_sets_the_latency_without_load() {
        let run = |smoothing: f64| {
            let mut v = VegasConfig::default()
                .initial(20)
                .min(2)
                .max(200)
                .smoothing(smoothing)
                .build()
                .expect("valid");
            for i in 0..400u64 {
                // 30 to 70 ms of noise around 50, and no queue at all.
                let ms = 30 + (i * 7919 % 41);
                v.update(Sample {
                    rtt: Duration::from_millis(ms),
                    inflight: 100,
                    dropped: false,
                });
            }
            (v.rtt_noload().unwrap_or_default(), v.limit())
        };
        let (raw_noload, raw_limit) = run(1.0);
        let (noload, limit) = run(0.1);
        // Raw samples put it at the lowest, 30 ms; the average near 40 or above.
        assert!((raw_noload - 0.030).abs() < 1e-9, "{raw_noload}");
        assert!(noload > 0.036, "{noload}");
        // Reading the noise as a queue holds the raw limit down.
        assert!(limit > raw_limit, "{limit} vs {raw_limit}");
    }
}
