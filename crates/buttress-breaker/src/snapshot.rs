//! A picture of a breaker, for health endpoints.

use std::time::Duration;

use buttress_core::Name;

use crate::machine::MachineSnapshot;
use crate::state::State;

/// The state and counts of one breaker at one moment.
///
/// Under the `serde` feature it serializes (durations as `"1m 30s"`), ready
/// for a health endpoint.
///
/// ```
/// use std::time::Duration;
/// use buttress_breaker::{CircuitBreaker, State};
/// use buttress_core::ManualClock;
///
/// let clock = ManualClock::new();
/// let breaker = CircuitBreaker::builder("db")
///     .failure_rate(0.5)
///     .count_window(4)
///     .minimum_calls(4)
///     .open_for(Duration::from_secs(30))
///     .clock(clock.clone())
///     .build()?;
/// breaker.try_acquire()?.success();
/// breaker.try_acquire()?.failure();
/// let s = breaker.snapshot();
/// assert_eq!((s.calls, s.failures, s.failure_rate), (2, 1, Some(0.5)));
/// breaker.try_acquire()?.success();
/// breaker.try_acquire()?.failure(); // 2 of 4 failed: it opens
/// clock.advance(Duration::from_secs(10));
/// let s = breaker.snapshot();
/// assert_eq!(s.state, State::Open);
/// assert_eq!(s.time_until_half_open, Some(Duration::from_secs(20)));
/// assert_eq!(s.openings, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Snapshot {
    /// The breaker's name.
    pub name: String,
    /// The state.
    pub state: State,
    /// Bumped at every change of state.
    pub generation: u64,
    /// Failures in a row, in the closed state.
    pub consecutive_failures: u64,
    /// Calls in the rate window (0 when no rate rule is set).
    pub calls: u64,
    /// Failed calls in the rate window.
    pub failures: u64,
    /// Slow calls in the rate window.
    pub slow_calls: u64,
    /// `failures / calls`, when there are calls in the window.
    pub failure_rate: Option<f64>,
    /// `slow_calls / calls`, when there are calls in the window.
    pub slow_call_rate: Option<f64>,
    /// When open: how long until a call will be let through as a probe.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub time_until_half_open: Option<Duration>,
    /// When half-open: probe permits not yet handed out.
    pub half_open_permits_left: Option<u32>,
    /// Openings in a row since the last healthy close.
    pub openings: u32,
}

impl Snapshot {
    pub(crate) fn new(name: &Name, m: MachineSnapshot) -> Self {
        let counts = m.counts.unwrap_or_default();
        Self {
            name: name.to_string(),
            state: m.state,
            generation: m.generation,
            consecutive_failures: m.consecutive_failures,
            calls: counts.calls,
            failures: counts.failures,
            slow_calls: counts.slow,
            failure_rate: counts.failure_rate(),
            slow_call_rate: counts.slow_rate(),
            time_until_half_open: m.open_remaining,
            half_open_permits_left: m.probes.map(|p| p.left),
            openings: m.openings,
        }
    }
}
