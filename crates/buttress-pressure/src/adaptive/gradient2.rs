//! Gradient2 (Netflix `Gradient2Limit`).

use super::{Algorithm, Bounds, Sample, bounds};

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
    /// tolerance 1.5, queue size 4, a window of 600 samples.
    pub fn new(initial: u32, min: u32, max: u32) -> Gradient2 {
        let bounds = bounds(min, max);
        Gradient2 {
            limit: bounds.clamp(f64::from(initial)),
            bounds,
            smoothing: 0.2,
            tolerance: 1.5,
            queue_size: 4.0,
            window: 600.0,
            long_rtt: None,
            samples: 0,
        }
    }

    /// How much of each new estimate is taken (0.01–1).
    pub fn smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = super::finite_or(smoothing, 0.01, 1.0, 0.2);
        self
    }

    /// How much latency above the long-term average is tolerated (≥ 1).
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = if tolerance.is_finite() {
            tolerance.max(1.0)
        } else {
            1.5
        };
        self
    }

    /// How many requests may queue above the estimate.
    pub fn queue_size(mut self, queue: u32) -> Self {
        self.queue_size = f64::from(queue);
        self
    }

    /// The samples the long-term average spans (≥ 1).
    pub fn window(mut self, samples: u32) -> Self {
        self.window = f64::from(samples.max(1));
        self
    }

    /// The long-term average of latency, in seconds.
    pub fn long_rtt(&self) -> Option<f64> {
        self.long_rtt
    }
}

impl Algorithm for Gradient2 {
    fn limit(&self) -> f64 {
        self.limit
    }

    fn update(&mut self, s: Sample) -> f64 {
        let rtt = s.rtt.as_secs_f64().max(1e-9);
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
        let mut g = Gradient2::new(20, 10, 200);
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

    #[test]
    fn shrinks_under_overload_and_grows_back() {
        let mut g = Gradient2::new(50, 5, 200);
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
