//! What the simulator does to each request of one API: latency drawn from a
//! distribution, errors at a rate, connection resets, hangs, an outage
//! window and a slow start. Every draw comes from one seeded generator, so
//! a run with the same seed and the same requests is the same run.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// The faults of one API, as `PUT /faults` and `--faults` take them.
///
/// ```json
/// {"latency": {"p50": "20ms", "p99": "200ms"}, "error_rate": 0.1, "error_status": 502,
///  "reset_rate": 0.01, "hang": false, "outage": {"after": "5s", "for": "10s"}, "loading": "5s"}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// How long each answer takes.
    pub latency: Latency,
    /// The share of requests answered with `error_status` (0 to 1).
    pub error_rate: f64,
    /// The status of an injected error (default 500).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_status: Option<u16>,
    /// The share of requests whose connection is closed without an answer.
    pub reset_rate: f64,
    /// Accept every request and never answer.
    pub hang: bool,
    /// A window, from when the faults are set, in which every request is
    /// answered with `error_status` (503 by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outage: Option<Window>,
    /// A slow start: for this long from when the faults are set, answer
    /// 503 "loading" with `Retry-After`, as a model server does.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub loading: Option<Duration>,
}

/// A window of time, from when the faults are set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// When it starts (default at once).
    #[serde(default, with = "humantime_serde")]
    pub after: Duration,
    /// How long it lasts.
    #[serde(rename = "for", with = "humantime_serde")]
    pub duration: Duration,
}

/// A latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    /// Always this long.
    Fixed(#[serde(with = "humantime_serde")] Duration),
    /// Evenly between two durations.
    Uniform {
        /// The shortest.
        #[serde(with = "humantime_serde")]
        min: Duration,
        /// The longest.
        #[serde(with = "humantime_serde")]
        max: Duration,
    },
    /// Log-normal, given its median and 99th percentile: the long tail
    /// real servers have.
    #[serde(untagged)]
    Percentiles {
        /// The median.
        #[serde(with = "humantime_serde")]
        p50: Duration,
        /// The 99th percentile.
        #[serde(with = "humantime_serde")]
        p99: Duration,
    },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Fixed(Duration::ZERO)
    }
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer normally after `delay`.
    Answer {
        /// The latency drawn.
        delay: Duration,
    },
    /// Answer with this error status after `delay`.
    Fail {
        /// The status.
        status: u16,
        /// The latency drawn.
        delay: Duration,
    },
    /// 503 "loading", with this much loading left.
    Loading(Duration),
    /// Close the connection without answering.
    Reset,
    /// Never answer.
    Hang,
}

/// Faults set at a moment, so windows can be placed in time.
#[derive(Debug, Clone)]
pub struct Armed {
    /// The faults.
    pub faults: Faults,
    /// When they were set.
    pub since: Instant,
}

impl Armed {
    /// `faults`, set now.
    pub fn now(faults: Faults) -> Self {
        Armed {
            faults,
            since: Instant::now(),
        }
    }

    /// Whether a slow start is still going on at `now`, and for how long.
    pub fn loading_left(&self, now: Instant) -> Option<Duration> {
        let loading = self.faults.loading?;
        match self.since.checked_add(loading) {
            Some(end) => (now < end).then(|| end - now),
            // Past what the clock can say: loading for good.
            None => Some(loading),
        }
    }

    fn in_outage(&self, now: Instant) -> bool {
        self.faults.outage.is_some_and(|w| {
            let Some(start) = self.since.checked_add(w.after) else {
                return false;
            };
            now >= start && start.checked_add(w.duration).is_none_or(|end| now < end)
        })
    }

    /// What to do with a request arriving at `now`; `rng` gives the draws.
    pub fn verdict(&self, now: Instant, rng: &mut fastrand::Rng) -> Verdict {
        let f = &self.faults;
        if let Some(left) = self.loading_left(now) {
            return Verdict::Loading(left);
        }
        if f.hang {
            return Verdict::Hang;
        }
        if self.in_outage(now) {
            return Verdict::Fail {
                status: f.error_status.unwrap_or(503),
                delay: Duration::ZERO,
            };
        }
        // Draw every number every time, so one fault's setting does not
        // shift the draws of another.
        let (reset, error, delay) = (rng.f64(), rng.f64(), f.latency.draw(rng));
        if reset < f.reset_rate {
            Verdict::Reset
        } else if error < f.error_rate {
            Verdict::Fail {
                status: f.error_status.unwrap_or(500),
                delay,
            }
        } else {
            Verdict::Answer { delay }
        }
    }
}

/// The standard normal's 99th percentile.
const Z99: f64 = 2.326_347_874;

impl Latency {
    /// One draw.
    pub fn draw(&self, rng: &mut fastrand::Rng) -> Duration {
        match *self {
            Latency::Fixed(d) => {
                rng.f64();
                d
            }
            Latency::Uniform { min, max } => {
                let (lo, hi) = (min.min(max), min.max(max));
                lo + (hi - lo).mul_f64(rng.f64())
            }
            Latency::Percentiles { p50, p99 } => {
                let median = p50.as_secs_f64().max(1e-6);
                let sigma = (p99.as_secs_f64().max(median) / median).ln() / Z99;
                // Box–Muller: one standard normal from two uniforms.
                let (u1, u2) = (rng.f64().max(f64::MIN_POSITIVE), rng.f64());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                Duration::from_secs_f64((median * (sigma * z).exp()).min(3600.0))
            }
        }
    }
}

/// The longest duration a fault may name: a simulation that runs longer
/// is a mistake in the setting.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Checks `faults` for values that cannot mean anything.
pub fn validate(faults: &Faults) -> Result<(), String> {
    let latencies = match faults.latency {
        Latency::Fixed(d) => vec![("latency", d)],
        Latency::Uniform { min, max } => vec![("latency.min", min), ("latency.max", max)],
        Latency::Percentiles { p50, p99 } => vec![("latency.p50", p50), ("latency.p99", p99)],
    };
    let windows = faults.outage.map_or_else(Vec::new, |w| {
        vec![("outage.after", w.after), ("outage.for", w.duration)]
    });
    let loading = faults.loading.map(|d| ("loading", d));
    for (name, d) in latencies.into_iter().chain(windows).chain(loading) {
        if d > MAX_DURATION {
            return Err(format!(
                "{name} must be at most 30 days, got {}",
                humantime::format_duration(d)
            ));
        }
    }
    for (name, rate) in [
        ("error_rate", faults.error_rate),
        ("reset_rate", faults.reset_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!("{name} must be between 0 and 1, got {rate}"));
        }
    }
    if let Some(status) = faults.error_status
        && !(400..=599).contains(&status)
    {
        return Err(format!(
            "error_status must be a 4xx or 5xx status, got {status}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Faults {
        serde_json::from_str(json).expect("valid faults")
    }

    #[test]
    fn reads_every_form() {
        let f = parse(
            r#"{"latency": {"p50": "20ms", "p99": "200ms"}, "error_rate": 0.5, "outage": {"for": "10s"}, "loading": "5s"}"#,
        );
        assert_eq!(
            f.latency,
            Latency::Percentiles {
                p50: Duration::from_millis(20),
                p99: Duration::from_millis(200)
            }
        );
        assert_eq!(
            f.outage,
            Some(Window {
                after: Duration::ZERO,
                duration: Duration::from_secs(10)
            })
        );
        assert_eq!(
            parse(r#"{"latency": {"fixed": "2s"}}"#).latency,
            Latency::Fixed(Duration::from_secs(2))
        );
        assert!(serde_json::from_str::<Faults>(r#"{"eror_rate": 1}"#).is_err());
        assert!(validate(&parse(r#"{"error_rate": 1.5}"#)).is_err());
        assert!(validate(&parse(r#"{"error_status": 200}"#)).is_err());
        assert_eq!(
            validate(&parse(r#"{"loading": "500000000000y"}"#)).unwrap_err(),
            "loading must be at most 30 days, got 500000000000years"
        );
        assert!(validate(&parse(r#"{"outage": {"after": "31days", "for": "1s"}}"#)).is_err());
        assert!(validate(&parse(r#"{"latency": {"p50": "1ms", "p99": "40days"}}"#)).is_err());
        assert!(
            validate(&parse(
                r#"{"loading": "30days", "latency": {"fixed": "1s"}}"#
            ))
            .is_ok()
        );
        let back: Faults = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }

    #[tokio::test(start_paused = true)]
    async fn windows_follow_the_clock() {
        let armed = Armed::now(parse(
            r#"{"outage": {"after": "1s", "for": "2s"}, "error_status": 502}"#,
        ));
        let mut rng = fastrand::Rng::with_seed(1);
        let at = |s: u64| armed.since + Duration::from_millis(s);
        assert!(matches!(
            armed.verdict(at(999), &mut rng),
            Verdict::Answer { .. }
        ));
        assert_eq!(
            armed.verdict(at(1000), &mut rng),
            Verdict::Fail {
                status: 502,
                delay: Duration::ZERO
            }
        );
        assert!(matches!(
            armed.verdict(at(3000), &mut rng),
            Verdict::Answer { .. }
        ));
        let loading = Armed::now(parse(r#"{"loading": "5s"}"#));
        assert_eq!(
            loading.verdict(loading.since + Duration::from_secs(1), &mut rng),
            Verdict::Loading(Duration::from_secs(4))
        );
        assert!(matches!(
            loading.verdict(loading.since + Duration::from_secs(5), &mut rng),
            Verdict::Answer { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn durations_past_the_clock_do_not_panic() {
        // Set through the API without validation: no overflow, no panic.
        let huge = Duration::from_secs(u64::MAX / 4);
        let armed = Armed::now(Faults {
            loading: Some(huge),
            ..Faults::default()
        });
        assert_eq!(
            armed.verdict(armed.since, &mut fastrand::Rng::with_seed(1)),
            Verdict::Loading(huge)
        );
        let armed = Armed::now(Faults {
            outage: Some(Window {
                after: Duration::ZERO,
                duration: huge,
            }),
            ..Faults::default()
        });
        assert!(matches!(
            armed.verdict(armed.since, &mut fastrand::Rng::with_seed(1)),
            Verdict::Fail { status: 503, .. }
        ));
        let armed = Armed::now(Faults {
            outage: Some(Window {
                after: huge,
                duration: huge,
            }),
            ..Faults::default()
        });
        assert!(matches!(
            armed.verdict(armed.since, &mut fastrand::Rng::with_seed(1)),
            Verdict::Answer { .. }
        ));
    }

    #[test]
    fn each_distribution_draws_by_its_formula() {
        // The formulas, written again as a reference: the same uniforms
        // from the same seed must give the same durations.
        let ms = Duration::from_millis;
        let uniform = Latency::Uniform {
            min: ms(30),
            max: ms(10),
        };
        let log_normal = Latency::Percentiles {
            p50: ms(20),
            p99: ms(400),
        };
        let (mut a, mut b) = (fastrand::Rng::with_seed(3), fastrand::Rng::with_seed(3));
        for _ in 0..100 {
            let u = b.f64();
            assert_eq!(uniform.draw(&mut a), ms(10) + ms(20).mul_f64(u));
            let (u1, u2) = (b.f64(), b.f64());
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let sigma = (400.0f64 / 20.0).ln() / Z99;
            let want = Duration::from_secs_f64(0.020 * (sigma * z).exp());
            let got = log_normal.draw(&mut a);
            assert!(
                got.abs_diff(want) < Duration::from_nanos(2),
                "{got:?} vs {want:?}"
            );
        }
        assert_eq!(Latency::Fixed(ms(7)).draw(&mut a), ms(7));
    }

    #[tokio::test(start_paused = true)]
    async fn rates_and_latency_are_seeded() {
        let armed = Armed::now(parse(
            r#"{"error_rate": 0.25, "reset_rate": 0.05, "latency": {"p50": "10ms", "p99": "100ms"}}"#,
        ));
        let run = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..4000)
                .map(|_| armed.verdict(armed.since, &mut rng))
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        let fails = a
            .iter()
            .filter(|v| matches!(v, Verdict::Fail { .. }))
            .count();
        let resets = a.iter().filter(|v| **v == Verdict::Reset).count();
        assert!((850..1050).contains(&fails), "{fails}");
        assert!((150..260).contains(&resets), "{resets}");
        let mut delays: Vec<Duration> = a
            .iter()
            .filter_map(|v| match v {
                Verdict::Answer { delay } => Some(*delay),
                _ => None,
            })
            .collect();
        delays.sort();
        let p50 = delays[delays.len() / 2];
        let p99 = delays[delays.len() * 99 / 100];
        assert!(
            p50 > Duration::from_millis(8) && p50 < Duration::from_millis(12),
            "{p50:?}"
        );
        assert!(
            p99 > Duration::from_millis(70) && p99 < Duration::from_millis(140),
            "{p99:?}"
        );
    }
}
