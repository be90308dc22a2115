//! Measuring a gate: our routine and its anchor, interleaved.

use std::time::Duration;

use super::Gate;
use crate::Routine;

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Samples of each routine (odd, so the median is one of them).
    pub rounds: usize,
    /// The wall time one sample aims at.
    pub sample: Duration,
}

impl Settings {
    /// The defaults (41 rounds of 4 ms), or `BENCH_REPORT_ROUNDS` and
    /// `BENCH_REPORT_SAMPLE_MS` from the environment.
    pub fn from_env() -> Self {
        let read = |k: &str, d: u64| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(d)
        };
        Self {
            rounds: usize::try_from(read("BENCH_REPORT_ROUNDS", 41).max(3)).unwrap_or(41) | 1,
            sample: Duration::from_millis(read("BENCH_REPORT_SAMPLE_MS", 4).max(1)),
        }
    }
}

/// The medians of one measurement, in nanoseconds per operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// Our routine's median.
    pub ours: f64,
    /// The anchor's median.
    pub anchor: f64,
}

impl Figures {
    /// Ours over the anchor.
    pub fn ratio(&self) -> f64 {
        self.ours / self.anchor
    }

    /// Ours minus the anchor.
    pub fn overhead(&self) -> f64 {
        self.ours - self.anchor
    }
}

/// Measures `gate`: builds both routines, finds for each how many
/// iterations fill a sample, then takes `rounds` samples of each,
/// alternating (ours, anchor, ours, …), and returns the medians.
pub fn measure(gate: &Gate, s: &Settings) -> Figures {
    let mut ours = (gate.ours)();
    let mut anchor = (gate.anchor)();
    let n_ours = calibrate(&mut ours, s.sample, gate.min_iters);
    let n_anchor = calibrate(&mut anchor, s.sample, gate.min_iters);
    let mut a = Vec::with_capacity(s.rounds);
    let mut b = Vec::with_capacity(s.rounds);
    for round in 0..s.rounds {
        // Alternate which goes first, so neither always follows the other.
        if round % 2 == 0 {
            a.push(per_iter(&mut ours, n_ours));
            b.push(per_iter(&mut anchor, n_anchor));
        } else {
            b.push(per_iter(&mut anchor, n_anchor));
            a.push(per_iter(&mut ours, n_ours));
        }
    }
    Figures {
        ours: median(a),
        anchor: median(b),
    }
}

fn per_iter(r: &mut Routine, iters: u64) -> f64 {
    r(iters).as_nanos() as f64 / iters as f64
}

/// Iterations that take about `target`, at least `min`: doubles from `min`
/// until a run takes a tenth of the target (which also warms the routine
/// up), then scales by the faster of that run and one more of the same
/// size, so that one run slowed by the machine (a descheduled thread)
/// does not set a sample of too few iterations for the whole measurement.
fn calibrate(r: &mut Routine, target: Duration, min: u64) -> u64 {
    let mut n = min.max(1);
    loop {
        let mut t = r(n);
        if t >= target / 10 || n >= 1 << 40 {
            t = t.min(r(n));
            let per = t.as_nanos().max(1) as f64 / n as f64;
            let want = target.as_nanos() as f64 / per;
            return (want as u64).max(min.max(1));
        }
        n *= 2;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 3.0);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn calibration_fills_the_sample() {
        // A routine whose iterations "take" 1 µs each, by its own report.
        let mut r: Routine = Box::new(Duration::from_micros);
        assert_eq!(calibrate(&mut r, Duration::from_millis(4), 1), 4_000);
        assert_eq!(calibrate(&mut r, Duration::from_millis(4), 10_000), 10_000);
    }

    #[test]
    fn one_slow_run_does_not_set_the_sample() {
        // 1 µs an iteration, but the first run that reaches a tenth of the
        // target (512 iterations) is descheduled for 40 ms.
        let mut slowed = false;
        let mut r: Routine = Box::new(move |n| {
            if n == 512 && !slowed {
                slowed = true;
                return Duration::from_millis(40);
            }
            Duration::from_micros(n)
        });
        assert_eq!(calibrate(&mut r, Duration::from_millis(4), 1), 4_000);
    }
}
