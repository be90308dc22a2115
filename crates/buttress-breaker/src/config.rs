//! Configuration: plain data that can be loaded from a file, validated into
//! the rules the state machine runs.

use std::time::Duration;

/// Where the failure and slow-call rates are measured.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)
)]
#[non_exhaustive]
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
#[non_exhaustive]
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
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::{BreakerConfig, CircuitBreaker, OpenDuration};
    /// use buttress_core::ManualClock;
    ///
    /// const OPEN: OpenDuration = OpenDuration::fixed(Duration::from_secs(30)); // usable in constants
    /// assert_eq!(OPEN, OpenDuration::Fixed { duration: Duration::from_secs(30) });
    ///
    /// let config = BreakerConfig::default().consecutive_failures(1).open(OPEN);
    /// let breaker = CircuitBreaker::builder("db").config(config).clock(ManualClock::new()).build()?;
    /// breaker.try_acquire()?.failure();
    /// let rejected = breaker.try_acquire().unwrap_err();
    /// assert_eq!(rejected.retry_after(), Some(Duration::from_secs(30)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
/// reads per call).
///
/// Start from [`Default`] or a preset and change fields with the chainable
/// setters (one per field); the fields stay public for reading. Use
/// [`BreakerConfig::validate`] or the builder to check a configuration:
///
/// ```
/// use std::time::Duration;
/// use buttress_breaker::{BreakerConfig, OpenDuration};
///
/// let cfg = BreakerConfig::default()
///     .consecutive_failures(5)
///     .failure_rate_threshold(None)
///     .open(OpenDuration::fixed(Duration::from_secs(30)));
/// cfg.validate()?;
/// assert_eq!(cfg.consecutive_failures, Some(5));
/// # Ok::<(), buttress_breaker::ConfigError>(())
/// ```
///
/// Under the `serde` feature it can be loaded from a file, with durations
/// written like `"250ms"` or `"60s"`, and `"off"` (or `null`) for a rule or
/// limit that is not set; unknown fields are refused:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// let cfg: buttress_breaker::BreakerConfig = serde_json::from_str(r#"{
///     "consecutive_failures": 5,
///     "failure_rate_threshold": "off",
///     "open": { "kind": "fixed", "duration": "60s" }
/// }"#).unwrap();
/// cfg.validate().unwrap();
/// assert_eq!(cfg.failure_rate_threshold, None);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Trip after this many failures in a row (gobreaker's rule). `None`
    /// (`"off"` or `null` in a file) turns the rule off.
    #[cfg_attr(feature = "serde", serde(with = "crate::off::count"))]
    pub consecutive_failures: Option<u32>,
    /// Trip when the share of failures in the window reaches this, in
    /// (0, 1]. `None` (`"off"` or `null` in a file) turns the rule off; it
    /// is on by default, so a file that wants only `consecutive_failures`
    /// says `failure_rate_threshold = "off"`.
    #[cfg_attr(feature = "serde", serde(with = "crate::off::rate"))]
    pub failure_rate_threshold: Option<f64>,
    /// Trip when the share of slow calls in the window reaches this, in
    /// (0, 1]. `None` (`"off"` or `null` in a file) turns the rule off.
    #[cfg_attr(feature = "serde", serde(with = "crate::off::rate"))]
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
    /// unless a probe hangs forever). `"off"` or `null` in a file.
    #[cfg_attr(feature = "serde", serde(with = "crate::off::duration"))]
    pub max_half_open: Option<Duration>,
    /// When a failure carries a server's `Retry-After`, open the breaker at
    /// once for that long, clamped to this. `None` (`"off"` or `null` in a
    /// file) ignores the hints.
    #[cfg_attr(feature = "serde", serde(with = "crate::off::duration"))]
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

/// Setters, one per field.
impl BreakerConfig {
    buttress_core::setters! {
        /// Sets the `consecutive_failures` field: trip after `n` failures in a
        /// row; `None` turns the rule off.
        ///
        /// ```
        /// use buttress_breaker::BreakerConfig;
        /// let cfg = BreakerConfig::default().consecutive_failures(5);
        /// assert_eq!(cfg.consecutive_failures, Some(5));
        /// ```
        consecutive_failures: into Option<u32>,
        /// Sets the `failure_rate_threshold` field, in (0, 1]; `None` turns the
        /// rule off.
        ///
        /// ```
        /// use buttress_breaker::BreakerConfig;
        /// let cfg = BreakerConfig::default().failure_rate_threshold(0.25);
        /// assert_eq!(cfg.failure_rate_threshold, Some(0.25));
        /// ```
        failure_rate_threshold: into Option<f64>,
        /// Sets the `slow_call_rate_threshold` field, in (0, 1]; `None` turns
        /// the rule off.
        ///
        /// ```
        /// use buttress_breaker::BreakerConfig;
        /// let cfg = BreakerConfig::default().slow_call_rate_threshold(0.8);
        /// assert_eq!(cfg.slow_call_rate_threshold, Some(0.8));
        /// ```
        slow_call_rate_threshold: into Option<f64>,
        /// Sets the `slow_call_duration` field: a call that takes at least this
        /// long is slow.
        ///
        /// ```
        /// use std::time::Duration;
        /// use buttress_breaker::BreakerConfig;
        /// let cfg = BreakerConfig::default().slow_call_duration(Duration::from_secs(2));
        /// assert_eq!(cfg.slow_call_duration, Duration::from_secs(2));
        /// ```
        slow_call_duration: Duration,
        /// Sets the `window` field: where the rates are measured.
        ///
        /// ```
        /// use buttress_breaker::{BreakerConfig, Window};
        /// let cfg = BreakerConfig::default().window(Window::Count { size: 50 }).minimum_calls(20);
        /// assert_eq!(cfg.window, Window::Count { size: 50 });
        /// ```
        window: Window,
        /// Sets the `minimum_calls` field: the rates are not judged until the
        /// window holds this many calls.
        ///
        /// ```
        /// use buttress_breaker::BreakerConfig;
        /// let cfg = BreakerConfig::default().minimum_calls(20);
        /// assert_eq!(cfg.minimum_calls, 20);
        /// ```
        minimum_calls: u32,
        /// Sets the `open` field: how long the breaker stays open.
        ///
        /// ```
        /// use std::time::Duration;
        /// use buttress_breaker::{BreakerConfig, OpenDuration};
        /// let cfg = BreakerConfig::default().open(OpenDuration::fixed(Duration::from_secs(30)));
        /// assert_eq!(cfg.open, OpenDuration::Fixed { duration: Duration::from_secs(30) });
        /// ```
        open: OpenDuration,
        /// Sets the `half_open_permits` field: how many probes half-open lets
        /// through.
        ///
        /// ```
        /// use buttress_breaker::BreakerConfig;
        /// let cfg = BreakerConfig::default().half_open_permits(1);
        /// assert_eq!(cfg.half_open_permits, 1);
        /// ```
        half_open_permits: u32,
        /// Sets the `max_half_open` field: the longest the breaker may stay
        /// half-open; `None` for no limit.
        ///
        /// ```
        /// use std::time::Duration;
        /// use buttress_breaker::BreakerConfig;
        /// let cfg = BreakerConfig::default().max_half_open(Duration::from_secs(30));
        /// assert_eq!(cfg.max_half_open, Some(Duration::from_secs(30)));
        /// ```
        max_half_open: into Option<Duration>,
        /// Sets the `retry_after_max` field: the longest `Retry-After` hint
        /// honoured; `None` ignores the hints.
        ///
        /// ```
        /// use buttress_breaker::BreakerConfig;
        /// let cfg = BreakerConfig::default().retry_after_max(None);
        /// assert_eq!(cfg.retry_after_max, None);
        /// ```
        retry_after_max: into Option<Duration>,
    }
}

/// Presets and validation.
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
        Self::default()
            .consecutive_failures(5)
            .failure_rate_threshold(None)
            .open(OpenDuration::fixed(Duration::from_secs(60)))
            .half_open_permits(1)
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
        Self::embeddings().half_open_permits(3)
    }

    /// For an expensive LLM server: open after 3 failures in a row, for
    /// 120 s; a single probe.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::{BreakerConfig, OpenDuration};
    /// let cfg = BreakerConfig::llm();
    /// assert_eq!(cfg.consecutive_failures, Some(3));
    /// assert_eq!(cfg.open, OpenDuration::fixed(Duration::from_secs(120)));
    /// ```
    pub fn llm() -> Self {
        Self::default()
            .consecutive_failures(3)
            .failure_rate_threshold(None)
            .open(OpenDuration::fixed(Duration::from_secs(120)))
            .half_open_permits(1)
    }

    /// Checks every field; the first problem found is returned.
    ///
    /// ```
    /// use buttress_breaker::{BreakerConfig, ConfigError};
    /// assert_eq!(
    ///     BreakerConfig::default().half_open_permits(0).validate(),
    ///     Err(ConfigError::HalfOpenPermits(0)),
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        Rules::new(self).map(|_| ())
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The breaker's name is not valid.
    #[error("invalid breaker name")]
    Name(#[source] buttress_core::NameError),
    /// No rule could ever trip the breaker.
    #[error(
        "no trip rule: set consecutive_failures, failure_rate_threshold or slow_call_rate_threshold"
    )]
    NoTripRule,
    /// `consecutive_failures` is zero.
    #[error("consecutive_failures must be at least 1")]
    ZeroConsecutiveFailures,
    /// A rate threshold is not in (0, 1].
    #[error("{field} must be in (0, 1], got {value}")]
    Threshold {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// The window holds no calls, or too many to track.
    #[error("a count window must hold 1 to 1000000 calls, got {0}")]
    WindowSize(u32),
    /// A time window is shorter than its number of 1 ms buckets, or has no
    /// bucket, or more than 1,000 of them.
    #[error(
        "a time window needs 1 to 1000 buckets of at least 1ms each, got {buckets} over {duration:?}"
    )]
    TimeWindow {
        /// The window's duration.
        duration: Duration,
        /// The number of buckets.
        buckets: u32,
    },
    /// `minimum_calls` is zero, or larger than a count window can hold.
    #[error("minimum_calls must be at least 1 and at most the window size {window}, got {minimum}")]
    MinimumCalls {
        /// The minimum given.
        minimum: u32,
        /// The window's size.
        window: u32,
    },
    /// `half_open_permits` is zero or above 100,000.
    #[error("half_open_permits must be 1 to 100000, got {0}")]
    HalfOpenPermits(u32),
    /// A registry already holds a breaker with this name.
    #[error("a breaker named '{0}' is already registered")]
    DuplicateName(String),
    /// An open period or other duration is zero where it must not be, or
    /// longer than 100 years.
    #[error("{field} must be above zero and at most 100 years, got {value:?}")]
    Duration {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: Duration,
    },
    /// An exponential multiplier below 1 or not finite, or a jitter outside
    /// [0, 1].
    #[error("{field} is out of range (multiplier ≥ 1 and finite, jitter in [0, 1]), got {value}")]
    Backoff {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// [`CircuitBreaker::reconfigure`](crate::CircuitBreaker::reconfigure)
    /// was asked to change the window's kind or size, or to add or drop the
    /// window (by adding or dropping every rate rule). The counts in the
    /// window cannot be carried over to another shape, so this takes a new
    /// breaker.
    #[error(
        "the window cannot change shape while the breaker runs (its counts would be lost); build a new breaker"
    )]
    WindowChanged,
}

impl ConfigError {
    /// The configuration key at fault, dotted as the serde form spells it
    /// (`"failure_rate_threshold"`, `"open.multiplier"`, `"window"`), or
    /// `None` when the fault is the configuration as a whole (no trip rule,
    /// a name or registry problem).
    ///
    /// ```
    /// use buttress_breaker::{BreakerConfig, CircuitBreaker};
    ///
    /// let mut cfg = BreakerConfig::default();
    /// cfg.failure_rate_threshold = Some(1.5);
    /// let e = CircuitBreaker::new("llm", cfg).unwrap_err();
    /// assert_eq!(e.field(), Some("failure_rate_threshold"));
    /// ```
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Threshold { field, .. }
            | Self::Duration { field, .. }
            | Self::Backoff { field, .. } => Some(field),
            Self::ZeroConsecutiveFailures => Some("consecutive_failures"),
            Self::WindowSize(_) => Some("window.size"),
            Self::TimeWindow { .. } | Self::WindowChanged => Some("window"),
            Self::MinimumCalls { .. } => Some("minimum_calls"),
            Self::HalfOpenPermits(_) => Some("half_open_permits"),
            Self::Name(_) | Self::NoTripRule | Self::DuplicateName(_) => None,
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
    /// The configuration these rules came from, as the user wrote it.
    pub(crate) config: BreakerConfig,
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

/// The smallest count `k` of `n` probes with `k / n ≥ rate`, found by the
/// same comparison the closed state makes (`ceil(rate × n)` can be one too
/// many: 0.14 × 50 = 7.000000000000001). A search, at configuration time
/// only, over at most 100,000 permits.
fn probes_reaching(rate: f64, n: u32) -> u32 {
    // rate ∈ (0, 1], so n itself always reaches it.
    (1..n)
        .find(|&k| f64::from(k) / f64::from(n) >= rate)
        .unwrap_or(n)
}

impl Rules {
    /// Checks `c` section by section, in a fixed order (the first problem
    /// found is the error), and converts it to the machine's units.
    pub(crate) fn new(c: &BreakerConfig) -> Result<Self, ConfigError> {
        check_trip_rules(c)?;
        let window = check_window(c.window, c.minimum_calls)?;
        check_open(&c.open)?;
        check_half_open(c.half_open_permits, c.max_half_open)?;
        if let Some(d) = c.retry_after_max {
            check_duration("retry_after_max", d)?;
        }
        Ok(Self::checked(c, window))
    }

    /// The rules of a configuration that passed every check.
    fn checked(c: &BreakerConfig, window: WindowSpec) -> Self {
        let needs_window =
            c.failure_rate_threshold.is_some() || c.slow_call_rate_threshold.is_some();
        let permits = c.half_open_permits;
        Self {
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
            config: c.clone(),
        }
    }

    /// Whether the slow-call rule needs each call timed.
    pub(crate) fn times_calls(&self) -> bool {
        self.slow_rate.is_some()
    }
}

/// The trip rules: at least one, each in range, and the slow-call duration.
fn check_trip_rules(c: &BreakerConfig) -> Result<(), ConfigError> {
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
    check_duration("slow_call_duration", c.slow_call_duration)
}

/// The rate window and the minimum number of calls it must hold (checked
/// even when no rate rule uses the window).
fn check_window(window: Window, minimum_calls: u32) -> Result<WindowSpec, ConfigError> {
    match window {
        Window::Count { size } => {
            if size == 0 || size > 1_000_000 {
                return Err(ConfigError::WindowSize(size));
            }
            if minimum_calls == 0 || minimum_calls > size {
                return Err(ConfigError::MinimumCalls {
                    minimum: minimum_calls,
                    window: size,
                });
            }
            Ok(WindowSpec::Count(size))
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
            if minimum_calls == 0 {
                return Err(ConfigError::MinimumCalls {
                    minimum: 0,
                    window: u32::MAX,
                });
            }
            Ok(WindowSpec::Time {
                bucket_nanos,
                buckets,
            })
        }
    }
}

/// The open period: durations in range; for exponential growth, a cap not
/// below the start, a finite multiplier of at least 1 and jitter in [0, 1].
fn check_open(open: &OpenDuration) -> Result<(), ConfigError> {
    match *open {
        OpenDuration::Fixed { duration } => check_duration("open.duration", duration),
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
            Ok(())
        }
    }
}

/// Half-open: the number of probes, and the longest time it may last.
fn check_half_open(permits: u32, max_half_open: Option<Duration>) -> Result<(), ConfigError> {
    if permits == 0 || permits > 100_000 {
        return Err(ConfigError::HalfOpenPermits(permits));
    }
    match max_half_open {
        Some(d) => check_duration("max_half_open", d),
        None => Ok(()),
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
            err(d().failure_rate_threshold(None)),
            ConfigError::NoTripRule
        );
        for bad in [0.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                err(d().failure_rate_threshold(bad)),
                ConfigError::Threshold { .. }
            ));
        }
        assert_eq!(
            err(d().window(Window::Count { size: 0 })),
            ConfigError::WindowSize(0)
        );
        assert!(matches!(
            err(d().window(Window::Count { size: 10 }).minimum_calls(11)),
            ConfigError::MinimumCalls {
                minimum: 11,
                window: 10
            }
        ));
        assert!(matches!(
            err(d().window(Window::Time {
                duration: Duration::from_millis(5),
                buckets: 10
            })),
            ConfigError::TimeWindow { .. }
        ));
        assert!(matches!(
            err(d().open(OpenDuration::fixed(Duration::ZERO))),
            ConfigError::Duration { .. }
        ));
        assert!(matches!(
            err(d().open(OpenDuration::Exponential {
                initial: Duration::from_secs(1),
                multiplier: 0.5,
                max: Duration::from_secs(10),
                jitter: 0.0
            })),
            ConfigError::Backoff { .. }
        ));
        assert_eq!(
            err(d().half_open_permits(0)),
            ConfigError::HalfOpenPermits(0)
        );
        assert_eq!(
            err(d().consecutive_failures(0)),
            ConfigError::ZeroConsecutiveFailures
        );
        // Every error has a message naming the problem.
        assert!(ConfigError::NoTripRule.to_string().contains("trip rule"));
    }

    /// The longest duration a config takes is a hundred 365-day years,
    /// exactly: one nanosecond more is refused, for a period and for a
    /// time window alike.
    #[test]
    fn durations_are_bounded_at_a_hundred_years_exactly() {
        let d = BreakerConfig::default;
        let longest = Duration::from_secs(100 * 365 * 86_400);
        let over = longest + Duration::from_nanos(1);
        d().open(OpenDuration::fixed(longest))
            .validate()
            .expect("the bound itself");
        assert_eq!(
            err(d().open(OpenDuration::fixed(over))),
            ConfigError::Duration {
                field: "open.duration",
                value: over
            }
        );
        let window = |duration| Window::Time {
            duration,
            buckets: 10,
        };
        d().window(window(longest))
            .validate()
            .expect("the bound itself");
        assert!(matches!(
            err(d().window(window(over))),
            ConfigError::TimeWindow { .. }
        ));
    }

    /// An exponential open period may start at its cap (a fixed period
    /// with jitter), never above it.
    #[test]
    fn an_exponential_cap_may_equal_the_start() {
        let d = BreakerConfig::default;
        let exp = |initial, max| {
            d().open(OpenDuration::Exponential {
                initial,
                multiplier: 2.0,
                max,
                jitter: 0.0,
            })
        };
        let s = Duration::from_secs(5);
        exp(s, s).validate().expect("cap equal to the start");
        let below = s - Duration::from_nanos(1);
        assert_eq!(
            err(exp(s, below)),
            ConfigError::Duration {
                field: "open.max (below open.initial)",
                value: below
            }
        );
    }

    #[test]
    fn half_open_permits_are_bounded_exactly() {
        let d = BreakerConfig::default;
        d().half_open_permits(100_000)
            .validate()
            .expect("the most permits");
        assert_eq!(
            err(d().half_open_permits(100_001)),
            ConfigError::HalfOpenPermits(100_001)
        );
    }

    #[test]
    fn window_bounds_are_exact() {
        let d = BreakerConfig::default;
        d().window(Window::Count { size: 1_000_000 })
            .validate()
            .expect("the largest count window");
        assert_eq!(
            err(d().window(Window::Count { size: 1_000_001 })),
            ConfigError::WindowSize(1_000_001)
        );
        let time = |buckets| Window::Time {
            duration: Duration::from_secs(1_000),
            buckets,
        };
        // Buckets of 1 ms at least.
        let ten_ms = |nanos| Window::Time {
            duration: Duration::from_nanos(nanos),
            buckets: 10,
        };
        d().window(ten_ms(10_000_000))
            .validate()
            .expect("1 ms buckets");
        assert!(matches!(
            err(d().window(ten_ms(9_999_999))),
            ConfigError::TimeWindow { .. }
        ));
        d().window(time(1_000))
            .validate()
            .expect("the most buckets");
        d().window(time(1)).validate().expect("one bucket");
        for bad in [0, 1_001] {
            assert!(matches!(
                err(d().window(time(bad))),
                ConfigError::TimeWindow { buckets, .. } if buckets == bad
            ));
        }
    }

    #[test]
    fn the_first_section_with_a_problem_decides_the_error() {
        let d = BreakerConfig::default;
        // Trip rules before the window, the window before the open period,
        // the open period before half-open, half-open before Retry-After.
        assert_eq!(
            err(d()
                .consecutive_failures(0)
                .window(Window::Count { size: 0 })),
            ConfigError::ZeroConsecutiveFailures
        );
        assert_eq!(
            err(d()
                .window(Window::Count { size: 0 })
                .open(OpenDuration::fixed(Duration::ZERO))),
            ConfigError::WindowSize(0)
        );
        assert!(matches!(
            err(d()
                .open(OpenDuration::fixed(Duration::ZERO))
                .half_open_permits(0)),
            ConfigError::Duration {
                field: "open.duration",
                ..
            }
        ));
        assert_eq!(
            err(d().half_open_permits(0).retry_after_max(Duration::ZERO)),
            ConfigError::HalfOpenPermits(0)
        );
        assert!(matches!(
            err(d().retry_after_max(Duration::ZERO)),
            ConfigError::Duration {
                field: "retry_after_max",
                ..
            }
        ));
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
