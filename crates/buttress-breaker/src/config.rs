//! Configuration: plain data that can be loaded from a file, validated into
//! the rules the state machine runs.

use std::fmt;
use std::time::Duration;

/// Where the failure and slow-call rates are measured.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)
)]
pub enum Window {
    /// The last `size` recorded calls.
    Count {
        /// How many calls the window holds (1 to 1,000,000).
        size: u32,
    },
    /// The calls of the last `duration`, counted in `buckets` equal slices
    /// that are dropped whole as they age out (so a rate costs O(1) to read).
    Time {
        /// How far back the window reaches.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        duration: Duration,
        /// How many slices the window is cut into (1 to 1,000); each slice
        /// must be at least 1 ms long.
        buckets: u32,
    },
}

/// How long the breaker stays open before it lets probes through.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)
)]
pub enum OpenDuration {
    /// Always the same time.
    Fixed {
        /// The open period.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        duration: Duration,
    },
    /// `initial × multiplier^(n−1)` for the n-th opening in a row, capped at
    /// `max`, then shortened by up to `jitter` (a fraction in [0, 1]) at
    /// random so that many breakers do not probe in step. The count `n`
    /// starts again after the breaker closes from half-open.
    Exponential {
        /// The first open period.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        initial: Duration,
        /// Growth per re-opening, at least 1.
        multiplier: f64,
        /// The longest open period.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        max: Duration,
        /// The fraction of the period that jitter may remove, in [0, 1].
        jitter: f64,
    },
}

impl OpenDuration {
    /// A fixed open period.
    pub const fn fixed(duration: Duration) -> Self {
        Self::Fixed { duration }
    }

    /// The open period of the `n`-th opening in a row (`n ≥ 1`), given a
    /// uniform random value `u` in [0, 1).
    pub(crate) fn period(&self, n: u32, u: f64) -> Duration {
        match *self {
            Self::Fixed { duration } => duration,
            Self::Exponential {
                initial,
                multiplier,
                max,
                jitter,
            } => {
                let exp = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
                let grown = initial.as_secs_f64() * multiplier.powi(exp);
                // `min` first, so a huge or infinite product is capped before
                // it is converted; jitter only shortens, so the cap holds.
                let capped = if grown.is_finite() {
                    grown.min(max.as_secs_f64())
                } else {
                    max.as_secs_f64()
                };
                let jittered = capped * (1.0 - jitter * u.clamp(0.0, 1.0));
                Duration::try_from_secs_f64(jittered)
                    .unwrap_or(max)
                    .min(max)
            }
        }
    }
}

/// The whole policy of one circuit breaker, as data.
///
/// The defaults follow resilience4j: trip when at least half of the last 100
/// calls failed (once 100 calls were seen), stay open 60 s, then let 10
/// probes through. Slow-call detection is off by default (it costs two clock
/// reads per call). Use [`BreakerConfig::validate`] or the builder to check
/// a configuration; under the `serde` feature this type can be loaded from a
/// file, with durations written like `"250ms"` or `"60s"`:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// let cfg: buttress_breaker::BreakerConfig = serde_json::from_str(r#"{
///     "consecutive_failures": 5,
///     "failure_rate_threshold": null,
///     "open": { "kind": "fixed", "duration": "60s" }
/// }"#).unwrap();
/// cfg.validate().unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct BreakerConfig {
    /// Trip after this many failures in a row (gobreaker's rule). `None`
    /// turns the rule off.
    pub consecutive_failures: Option<u32>,
    /// Trip when the share of failures in the window reaches this, in
    /// (0, 1]. `None` turns the rule off.
    pub failure_rate_threshold: Option<f64>,
    /// Trip when the share of slow calls in the window reaches this, in
    /// (0, 1]. `None` turns the rule off.
    pub slow_call_rate_threshold: Option<f64>,
    /// A call that takes at least this long is slow.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub slow_call_duration: Duration,
    /// Where the rates are measured.
    pub window: Window,
    /// The rates are not judged until the window holds this many calls.
    pub minimum_calls: u32,
    /// How long the breaker stays open.
    pub open: OpenDuration,
    /// How many probes half-open lets through; every other call is rejected.
    pub half_open_permits: u32,
    /// The longest the breaker may stay half-open waiting for its probes;
    /// after it, the breaker opens again. `None`: no limit (a probe that is
    /// dropped gives its permit back, so a breaker cannot stick in half-open
    /// unless a probe hangs forever).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_half_open: Option<Duration>,
    /// When a failure carries a server's `Retry-After`, open the breaker at
    /// once for that long, clamped to this. `None` ignores the hints.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub retry_after_max: Option<Duration>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: None,
            failure_rate_threshold: Some(0.5),
            slow_call_rate_threshold: None,
            slow_call_duration: Duration::from_secs(60),
            window: Window::Count { size: 100 },
            minimum_calls: 100,
            open: OpenDuration::fixed(Duration::from_secs(60)),
            half_open_permits: 10,
            max_half_open: None,
            retry_after_max: Some(Duration::from_secs(300)),
        }
    }
}

impl BreakerConfig {
    /// The AI stack's embeddings breaker: open after 5 failures in a row,
    /// for 60 s; then one probe, whose success closes it and whose failure
    /// reopens it. While the probe runs every other call is refused.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::{BreakerConfig, CircuitBreaker, State};
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let b = CircuitBreaker::builder("embeddings")
    ///     .config(BreakerConfig::embeddings())
    ///     .clock(clock.clone())
    ///     .build()?;
    /// for _ in 0..5 {
    ///     b.try_acquire()?.failure();
    /// }
    /// clock.advance(Duration::from_secs(60));
    /// let probe = b.try_acquire()?;
    /// assert!(b.try_acquire().is_err()); // one probe at a time
    /// probe.success();
    /// assert_eq!(b.state(), State::Closed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn embeddings() -> Self {
        Self {
            consecutive_failures: Some(5),
            failure_rate_threshold: None,
            open: OpenDuration::fixed(Duration::from_secs(60)),
            half_open_permits: 1,
            ..Self::default()
        }
    }

    /// The AI stack's vector-store breaker: the same rule as
    /// [`embeddings`](Self::embeddings) (5 failures in a row, open 60 s,
    /// one probe).
    ///
    /// ```
    /// use buttress_breaker::BreakerConfig;
    /// assert_eq!(BreakerConfig::vector_store().half_open_permits, 1);
    /// ```
    pub fn vector_store() -> Self {
        Self::embeddings()
    }

    /// For a cheap, fast dependency called by many: open after 5 failures
    /// in a row, for 60 s; then **3 probes**, all of which must succeed
    /// before it closes (any failure reopens it). Three probes cost little
    /// on a cheap call and keep a breaker from closing on one lucky answer
    /// from a dependency that is only partly back, which one probe cannot
    /// tell apart; pick [`embeddings`](Self::embeddings) when one probe is
    /// what your service's contract says.
    ///
    /// ```
    /// use buttress_breaker::BreakerConfig;
    /// assert_eq!(BreakerConfig::cheap_dependency().half_open_permits, 3);
    /// ```
    pub fn cheap_dependency() -> Self {
        Self {
            half_open_permits: 3,
            ..Self::embeddings()
        }
    }

    /// For an expensive LLM server: open after 3 failures in a row, for
    /// 120 s; a single probe.
    pub fn llm() -> Self {
        Self {
            consecutive_failures: Some(3),
            failure_rate_threshold: None,
            open: OpenDuration::fixed(Duration::from_secs(120)),
            half_open_permits: 1,
            ..Self::default()
        }
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Rules::new(self).map(|_| ())
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The breaker's name is not valid.
    Name(buttress_core::NameError),
    /// No rule could ever trip the breaker.
    NoTripRule,
    /// `consecutive_failures` is zero.
    ZeroConsecutiveFailures,
    /// A rate threshold is not in (0, 1].
    Threshold {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// The window holds no calls, or too many to track.
    WindowSize(u32),
    /// A time window is shorter than its number of 1 ms buckets, or has no
    /// bucket, or more than 1,000 of them.
    TimeWindow {
        /// The window's duration.
        duration: Duration,
        /// The number of buckets.
        buckets: u32,
    },
    /// `minimum_calls` is zero, or larger than a count window can hold.
    MinimumCalls {
        /// The minimum given.
        minimum: u32,
        /// The window's size.
        window: u32,
    },
    /// `half_open_permits` is zero or above 100,000.
    HalfOpenPermits(u32),
    /// A registry already holds a breaker with this name.
    DuplicateName(String),
    /// An open period or other duration is zero where it must not be, or
    /// longer than 100 years.
    Duration {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: Duration,
    },
    /// An exponential multiplier below 1 or not finite, or a jitter outside
    /// [0, 1].
    Backoff {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: f64,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(e) => write!(f, "invalid breaker name: {e}"),
            Self::NoTripRule => f.write_str(
                "no trip rule: set consecutive_failures, failure_rate_threshold or slow_call_rate_threshold",
            ),
            Self::ZeroConsecutiveFailures => f.write_str("consecutive_failures must be at least 1"),
            Self::Threshold { field, value } => {
                write!(f, "{field} must be in (0, 1], got {value}")
            }
            Self::WindowSize(n) => {
                write!(f, "a count window must hold 1 to 1000000 calls, got {n}")
            }
            Self::TimeWindow { duration, buckets } => write!(
                f,
                "a time window needs 1 to 1000 buckets of at least 1ms each, got {buckets} over {duration:?}"
            ),
            Self::MinimumCalls { minimum, window } => write!(
                f,
                "minimum_calls must be at least 1 and at most the window size {window}, got {minimum}"
            ),
            Self::DuplicateName(n) => write!(f, "a breaker named '{n}' is already registered"),
            Self::HalfOpenPermits(n) => {
                write!(f, "half_open_permits must be 1 to 100000, got {n}")
            }
            Self::Duration { field, value } => {
                write!(f, "{field} must be above zero and at most 100 years, got {value:?}")
            }
            Self::Backoff { field, value } => write!(
                f,
                "{field} is out of range (multiplier ≥ 1 and finite, jitter in [0, 1]), got {value}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Name(e) => Some(e),
            _ => None,
        }
    }
}

/// A validated window, in the machine's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WindowSpec {
    Count(u32),
    Time { bucket_nanos: u64, buckets: u32 },
}

/// The validated rules the state machine runs, times in nanoseconds.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(crate) consecutive: Option<u32>,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) slow_rate: Option<f64>,
    pub(crate) slow_nanos: u64,
    /// Present only when a rate rule needs it.
    pub(crate) window: Option<WindowSpec>,
    pub(crate) minimum_calls: u32,
    pub(crate) open: OpenDuration,
    pub(crate) half_open_permits: u32,
    pub(crate) max_half_open_nanos: Option<u64>,
    pub(crate) retry_after_max_nanos: Option<u64>,
    /// Failed probes that reopen the breaker.
    pub(crate) probe_failures_to_reopen: u32,
    /// Slow probes that reopen the breaker.
    pub(crate) probe_slow_to_reopen: Option<u32>,
}

const HUNDRED_YEARS: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn check_duration(field: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() || value > HUNDRED_YEARS {
        Err(ConfigError::Duration { field, value })
    } else {
        Ok(())
    }
}

fn check_threshold(field: &'static str, value: Option<f64>) -> Result<(), ConfigError> {
    match value {
        Some(v) if !(v > 0.0 && v <= 1.0) => Err(ConfigError::Threshold { field, value: v }),
        _ => Ok(()),
    }
}

/// The smallest count `k` of `n` probes with `k / n ≥ rate`.
fn probes_reaching(rate: f64, n: u32) -> u32 {
    // rate ∈ (0, 1] so k ∈ [1, n]. `ceil(rate × n)` can round up one too
    // many (0.14 × 50 = 7.000000000000001), so step down while the same
    // comparison the closed state uses, k / n ≥ rate, still holds.
    let mut k = ((rate * f64::from(n)).ceil() as u32).clamp(1, n);
    while k > 1 && f64::from(k - 1) / f64::from(n) >= rate {
        k -= 1;
    }
    k
}

impl Rules {
    pub(crate) fn new(c: &BreakerConfig) -> Result<Self, ConfigError> {
        if c.consecutive_failures.is_none()
            && c.failure_rate_threshold.is_none()
            && c.slow_call_rate_threshold.is_none()
        {
            return Err(ConfigError::NoTripRule);
        }
        if c.consecutive_failures == Some(0) {
            return Err(ConfigError::ZeroConsecutiveFailures);
        }
        check_threshold("failure_rate_threshold", c.failure_rate_threshold)?;
        check_threshold("slow_call_rate_threshold", c.slow_call_rate_threshold)?;
        check_duration("slow_call_duration", c.slow_call_duration)?;
        let needs_window =
            c.failure_rate_threshold.is_some() || c.slow_call_rate_threshold.is_some();
        let window = match c.window {
            Window::Count { size } => {
                if size == 0 || size > 1_000_000 {
                    return Err(ConfigError::WindowSize(size));
                }
                if c.minimum_calls == 0 || c.minimum_calls > size {
                    return Err(ConfigError::MinimumCalls {
                        minimum: c.minimum_calls,
                        window: size,
                    });
                }
                WindowSpec::Count(size)
            }
            Window::Time { duration, buckets } => {
                let bad = ConfigError::TimeWindow { duration, buckets };
                if buckets == 0 || buckets > 1000 || duration > HUNDRED_YEARS {
                    return Err(bad);
                }
                let bucket_nanos = nanos(duration) / u64::from(buckets);
                if bucket_nanos < 1_000_000 {
                    return Err(bad);
                }
                if c.minimum_calls == 0 {
                    return Err(ConfigError::MinimumCalls {
                        minimum: 0,
                        window: u32::MAX,
                    });
                }
                WindowSpec::Time {
                    bucket_nanos,
                    buckets,
                }
            }
        };
        match c.open {
            OpenDuration::Fixed { duration } => check_duration("open.duration", duration)?,
            OpenDuration::Exponential {
                initial,
                multiplier,
                max,
                jitter,
            } => {
                check_duration("open.initial", initial)?;
                check_duration("open.max", max)?;
                if max < initial {
                    return Err(ConfigError::Duration {
                        field: "open.max (below open.initial)",
                        value: max,
                    });
                }
                if !(multiplier.is_finite() && multiplier >= 1.0) {
                    return Err(ConfigError::Backoff {
                        field: "open.multiplier",
                        value: multiplier,
                    });
                }
                if !(0.0..=1.0).contains(&jitter) {
                    return Err(ConfigError::Backoff {
                        field: "open.jitter",
                        value: jitter,
                    });
                }
            }
        }
        if c.half_open_permits == 0 || c.half_open_permits > 100_000 {
            return Err(ConfigError::HalfOpenPermits(c.half_open_permits));
        }
        if let Some(d) = c.max_half_open {
            check_duration("max_half_open", d)?;
        }
        if let Some(d) = c.retry_after_max {
            check_duration("retry_after_max", d)?;
        }
        let permits = c.half_open_permits;
        Ok(Self {
            consecutive: c.consecutive_failures,
            failure_rate: c.failure_rate_threshold,
            slow_rate: c.slow_call_rate_threshold,
            slow_nanos: nanos(c.slow_call_duration),
            window: needs_window.then_some(window),
            minimum_calls: c.minimum_calls,
            open: c.open,
            half_open_permits: permits,
            max_half_open_nanos: c.max_half_open.map(nanos),
            retry_after_max_nanos: c.retry_after_max.map(nanos),
            probe_failures_to_reopen: c
                .failure_rate_threshold
                .map_or(1, |r| probes_reaching(r, permits)),
            probe_slow_to_reopen: c
                .slow_call_rate_threshold
                .map(|r| probes_reaching(r, permits)),
        })
    }

    /// Whether the slow-call rule needs each call timed.
    pub(crate) fn times_calls(&self) -> bool {
        self.slow_rate.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(c: BreakerConfig) -> ConfigError {
        Rules::new(&c).expect_err("config should be refused")
    }

    #[test]
    fn defaults_and_presets_are_valid() {
        for c in [
            BreakerConfig::default(),
            BreakerConfig::embeddings(),
            BreakerConfig::vector_store(),
            BreakerConfig::cheap_dependency(),
            BreakerConfig::llm(),
        ] {
            c.validate().expect("valid");
        }
        let r = Rules::new(&BreakerConfig::default()).expect("valid");
        assert_eq!(r.probe_failures_to_reopen, 5);
        assert_eq!(r.window, Some(WindowSpec::Count(100)));
        let r = Rules::new(&BreakerConfig::embeddings()).expect("valid");
        assert_eq!(r.window, None);
        assert_eq!(r.probe_failures_to_reopen, 1);
        // The stack's breakers test recovery with one probe.
        for c in [
            BreakerConfig::embeddings(),
            BreakerConfig::vector_store(),
            BreakerConfig::llm(),
        ] {
            assert_eq!(c.half_open_permits, 1);
        }
        assert_eq!(BreakerConfig::cheap_dependency().half_open_permits, 3);
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        let d = BreakerConfig::default;
        assert_eq!(
            err(BreakerConfig {
                failure_rate_threshold: None,
                ..d()
            }),
            ConfigError::NoTripRule
        );
        for bad in [0.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                err(BreakerConfig {
                    failure_rate_threshold: Some(bad),
                    ..d()
                }),
                ConfigError::Threshold { .. }
            ));
        }
        assert_eq!(
            err(BreakerConfig {
                window: Window::Count { size: 0 },
                ..d()
            }),
            ConfigError::WindowSize(0)
        );
        assert!(matches!(
            err(BreakerConfig {
                window: Window::Count { size: 10 },
                minimum_calls: 11,
                ..d()
            }),
            ConfigError::MinimumCalls {
                minimum: 11,
                window: 10
            }
        ));
        assert!(matches!(
            err(BreakerConfig {
                window: Window::Time {
                    duration: Duration::from_millis(5),
                    buckets: 10
                },
                ..d()
            }),
            ConfigError::TimeWindow { .. }
        ));
        assert!(matches!(
            err(BreakerConfig {
                open: OpenDuration::fixed(Duration::ZERO),
                ..d()
            }),
            ConfigError::Duration { .. }
        ));
        assert!(matches!(
            err(BreakerConfig {
                open: OpenDuration::Exponential {
                    initial: Duration::from_secs(1),
                    multiplier: 0.5,
                    max: Duration::from_secs(10),
                    jitter: 0.0
                },
                ..d()
            }),
            ConfigError::Backoff { .. }
        ));
        assert_eq!(
            err(BreakerConfig {
                half_open_permits: 0,
                ..d()
            }),
            ConfigError::HalfOpenPermits(0)
        );
        assert_eq!(
            err(BreakerConfig {
                consecutive_failures: Some(0),
                ..d()
            }),
            ConfigError::ZeroConsecutiveFailures
        );
        // Every error has a message naming the problem.
        assert!(ConfigError::NoTripRule.to_string().contains("trip rule"));
    }

    #[test]
    fn exponential_open_period_is_capped_with_jitter_included() {
        let o = OpenDuration::Exponential {
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max: Duration::from_secs(30),
            jitter: 0.5,
        };
        assert_eq!(o.period(1, 0.0), Duration::from_secs(1));
        assert_eq!(o.period(3, 0.0), Duration::from_secs(4));
        assert_eq!(
            o.period(3, 0.999_999),
            Duration::from_secs_f64(4.0 * (1.0 - 0.5 * 0.999_999))
        );
        assert_eq!(o.period(6, 0.0), Duration::from_secs(30));
        assert_eq!(o.period(u32::MAX, 0.0), Duration::from_secs(30));
        for n in 1..200 {
            assert!(o.period(n, 0.3) <= Duration::from_secs(30));
        }
    }

    #[test]
    fn probe_thresholds() {
        assert_eq!(probes_reaching(0.5, 10), 5);
        assert_eq!(probes_reaching(0.01, 10), 1);
        assert_eq!(probes_reaching(1.0, 3), 3);
        assert_eq!(probes_reaching(0.34, 3), 2);
        assert_eq!(probes_reaching(0.14, 50), 7);
        for n in 1..200u32 {
            for r in [0.01, 0.1, 0.14, 0.2, 0.3, 1.0 / 3.0, 0.5, 0.7, 0.99, 1.0] {
                let k = probes_reaching(r, n);
                assert!(
                    f64::from(k) / f64::from(n) >= r || k == n,
                    "{r} of {n}: {k}"
                );
                assert!(
                    k == 1 || f64::from(k - 1) / f64::from(n) < r,
                    "{r} of {n}: {k}"
                );
            }
        }
    }
}
