//! Additive increase, multiplicative decrease (Netflix `AIMDLimit`).

use std::time::Duration;

use super::{Algorithm, Bounds, Sample, bounds};

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
/// that creeps up below the timeout.
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
    /// a drop or a request slower than 5 s.
    pub fn new(initial: u32, min: u32, max: u32) -> Aimd {
        let bounds = bounds(min, max);
        Aimd {
            limit: bounds.clamp(f64::from(initial)),
            bounds,
            backoff: 0.9,
            timeout: Duration::from_secs(5),
            cooldown: 0,
        }
    }

    /// The factor a drop multiplies the limit by (clamped to 0.5–0.99).
    pub fn backoff(mut self, ratio: f64) -> Aimd {
        self.backoff = super::finite_or(ratio, 0.5, 0.99, 0.9);
        self
    }

    /// Requests slower than this count as drops.
    pub fn timeout(mut self, timeout: Duration) -> Aimd {
        self.timeout = timeout;
        self
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
        let mut a = Aimd::new(20, 5, 30).timeout(Duration::from_millis(100));
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
}
