//! TCP Vegas applied to concurrency (Netflix `VegasLimit`).

use super::{Algorithm, Bounds, Sample, bounds};

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
    samples: u64,
    probe_multiplier: f64,
    since_probe: u64,
}

fn log(limit: f64) -> f64 {
    limit.log10().max(1.0)
}

impl Vegas {
    /// Starts at `initial`, between `min` and `max`, re-probing every 30·L
    /// samples.
    pub fn new(initial: u32, min: u32, max: u32) -> Vegas {
        let bounds = bounds(min, max);
        Vegas {
            limit: bounds.clamp(f64::from(initial)),
            bounds,
            rtt_noload: None,
            rtt: None,
            smoothing: 0.1,
            samples: 0,
            probe_multiplier: 30.0,
            since_probe: 0,
        }
    }

    /// The weight of each sample in the latency average (0.01–1; 1 is no
    /// smoothing, as in Netflix's default).
    pub fn smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = super::finite_or(smoothing, 0.01, 1.0, 0.1);
        self
    }

    /// Re-probe `rtt_noload` every `multiplier × L` samples (≥ 1).
    pub fn probe_multiplier(mut self, multiplier: u32) -> Self {
        self.probe_multiplier = f64::from(multiplier.max(1));
        self
    }

    /// The latency without load, in seconds.
    pub fn rtt_noload(&self) -> Option<f64> {
        self.rtt_noload
    }
}

impl Algorithm for Vegas {
    fn limit(&self) -> f64 {
        self.limit
    }

    fn update(&mut self, s: Sample) -> f64 {
        let sample = s.rtt.as_secs_f64().max(1e-9);
        let rtt = match self.rtt {
            None => sample,
            Some(avg) => avg + self.smoothing * (sample - avg),
        };
        self.rtt = Some(rtt);
        self.samples += 1;
        // Until the average has seen about 1/smoothing samples it is mostly
        // the first few: hold.
        if (self.samples as f64) < 1.0 / self.smoothing {
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
            let (alpha, beta, threshold) = (3.0 * log(l), 6.0 * log(l), log(l));
            if q <= threshold {
                l + beta
            } else if q < alpha {
                l + log(l)
            } else if q > beta {
                l - log(l)
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

    #[test]
    fn follows_the_formula_step_by_step() {
        let mut v = Vegas::new(100, 10, 1000).smoothing(1.0);
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
        let mut v = Vegas::new(10, 10, 10).probe_multiplier(1).smoothing(1.0);
        v.update(s(50, 10));
        assert_eq!(v.rtt_noload(), Some(0.05));
        for _ in 0..10 {
            v.update(s(80, 10));
        }
        assert_eq!(v.rtt_noload(), Some(0.08));
    }
}

#[cfg(test)]
mod smoothing_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_average_not_the_noise_sets_the_latency_without_load() {
        let run = |smoothing: f64| {
            let mut v = Vegas::new(20, 2, 200).smoothing(smoothing);
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
