//! The states of a breaker and the reasons it moves between them.

use std::fmt;

/// The state of a circuit breaker.
///
/// The discriminant is the value of the `buttress_breaker_state` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[repr(u8)]
pub enum State {
    /// Calls go through and are counted. Gauge value 0.
    Closed = 0,
    /// A fixed number of probe calls go through; all others are rejected.
    /// Gauge value 1.
    HalfOpen = 1,
    /// Every call is rejected until the open period ends. Gauge value 2.
    Open = 2,
    /// Opened by hand: every call is rejected until the breaker is reset.
    /// Gauge value 3.
    ForcedOpen = 3,
    /// Switched off by hand: every call goes through and is counted, but the
    /// breaker never trips. Gauge value 4.
    Disabled = 4,
}

impl State {
    pub(crate) const fn from_bits(bits: u64) -> Self {
        match bits {
            0 => Self::Closed,
            1 => Self::HalfOpen,
            2 => Self::Open,
            3 => Self::ForcedOpen,
            _ => Self::Disabled,
        }
    }

    /// A short lower-case name, as used in metric labels.
    ///
    /// ```
    /// use buttress_breaker::State;
    ///
    /// assert_eq!(State::HalfOpen.as_str(), "half_open");
    /// assert_eq!(State::ForcedOpen.as_str(), "forced_open");
    /// assert_eq!(State::Open.to_string(), State::Open.as_str()); // `Display` writes the same
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
        }
    }

    /// Whether calls are admitted in this state without limit.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// assert!(State::Closed.admits_all());
    /// assert!(!State::HalfOpen.admits_all()); // only the probes
    /// assert!(!State::Open.admits_all());
    ///
    /// let breaker = CircuitBreaker::builder("db").build()?;
    /// breaker.disable(); // switched off by hand: everything goes through
    /// assert!(breaker.state().admits_all());
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub const fn admits_all(self) -> bool {
        matches!(self, Self::Closed | Self::Disabled)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Reason {
    /// `consecutive_failures` failures in a row.
    ConsecutiveFailures,
    /// The failure rate reached its threshold.
    FailureRate,
    /// The slow-call rate reached its threshold.
    SlowCallRate,
    /// A failure carried a server's `Retry-After`.
    RetryAfter,
    /// The open period ended and a call arrived: probing starts.
    OpenElapsed,
    /// Every probe completed and they were healthy enough.
    ProbesSucceeded,
    /// Too many probes failed.
    ProbesFailed,
    /// Too many probes were slow.
    ProbesSlow,
    /// The probes did not complete within `max_half_open`.
    HalfOpenTimeout,
    /// [`CircuitBreaker::force_open`](crate::CircuitBreaker::force_open).
    ForcedOpen,
    /// [`CircuitBreaker::disable`](crate::CircuitBreaker::disable).
    Disabled,
    /// [`CircuitBreaker::reset`](crate::CircuitBreaker::reset).
    Reset,
}

impl Reason {
    /// A short lower-case name.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use buttress_breaker::{BreakerEvent, CircuitBreaker, Reason};
    ///
    /// let reasons = Arc::new(Mutex::new(Vec::new()));
    /// let seen = Arc::clone(&reasons);
    /// let breaker = CircuitBreaker::builder("db")
    ///     .consecutive_failures(1)
    ///     .on_event(move |e| {
    ///         if let BreakerEvent::StateChanged { reason, .. } = e {
    ///             seen.lock().unwrap().push(reason.as_str());
    ///         }
    ///     })
    ///     .build()?;
    /// breaker.try_acquire()?.failure();
    /// breaker.reset();
    /// assert_eq!(*reasons.lock().unwrap(), ["consecutive_failures", "reset"]);
    /// assert_eq!(Reason::HalfOpenTimeout.to_string(), "half_open_timeout"); // `Display` agrees
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConsecutiveFailures => "consecutive_failures",
            Self::FailureRate => "failure_rate",
            Self::SlowCallRate => "slow_call_rate",
            Self::RetryAfter => "retry_after",
            Self::OpenElapsed => "open_elapsed",
            Self::ProbesSucceeded => "probes_succeeded",
            Self::ProbesFailed => "probes_failed",
            Self::ProbesSlow => "probes_slow",
            Self::HalfOpenTimeout => "half_open_timeout",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
            Self::Reset => "reset",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
