//! Errors the breaker adds: a rejection, and the error of the plain API.

use std::fmt;
use std::time::Duration;

use buttress_core::Name;

use crate::state::State;

pub use buttress_core::BoxError;

/// A call refused by an open (or half-open and busy) breaker.
///
/// Returned at once, without calling the inner service. Through tower it
/// arrives inside a [`BoxError`]; recover it with `downcast_ref`:
///
/// ```
/// use buttress_breaker::{CircuitBreaker, error::Rejected};
///
/// let breaker = CircuitBreaker::builder("llm").consecutive_failures(1).build().unwrap();
/// breaker.try_acquire().unwrap().failure();
/// let err: buttress_breaker::error::BoxError = Box::new(breaker.try_acquire().unwrap_err());
/// let rejected = err.downcast_ref::<Rejected>().expect("a rejection");
/// assert_eq!(rejected.name(), "llm");
/// assert!(rejected.retry_after().is_some());
/// ```
#[derive(Clone, thiserror::Error)]
#[error("circuit breaker '{name}' is {state}{}", RetryIn(*.retry_after_nanos))]
pub struct Rejected {
    name: Name,
    /// Nanoseconds, or `u64::MAX` for none: whole words keep the error
    /// cheap to move on the rejection path.
    retry_after_nanos: u64,
    state: State,
}

impl fmt::Debug for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("name", &self.name)
            .field("state", &self.state)
            .field("retry_after", &self.retry_after())
            .finish()
    }
}

impl Rejected {
    pub(crate) fn new(name: Name, state: State, retry_after: Option<Duration>) -> Self {
        let retry_after_nanos = retry_after.map_or(u64::MAX, |d| {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
        });
        Self {
            name,
            retry_after_nanos,
            state,
        }
    }

    /// The name of the breaker that refused the call.
    ///
    /// ```
    /// use buttress_breaker::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder("payments").build()?;
    /// breaker.force_open();
    /// let rejected = breaker.try_acquire().unwrap_err();
    /// assert_eq!(rejected.name(), "payments");
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The state the breaker was in.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::{CircuitBreaker, State};
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder("db")
    ///     .consecutive_failures(1)
    ///     .open_for(Duration::from_secs(5))
    ///     .half_open_permits(1)
    ///     .clock(clock.clone())
    ///     .build()?;
    /// breaker.try_acquire()?.failure();
    /// assert_eq!(breaker.try_acquire().unwrap_err().state(), State::Open);
    /// clock.advance(Duration::from_secs(5));
    /// let probe = breaker.try_acquire()?;
    /// // Half-open, and its only probe permit is taken.
    /// assert_eq!(breaker.try_acquire().unwrap_err().state(), State::HalfOpen);
    /// # drop(probe);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn state(&self) -> State {
        self.state
    }

    /// How long until the breaker will admit a call again, when known: the
    /// rest of the open period. `None` when half-open with every probe
    /// permit taken, or when forced open.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_breaker::CircuitBreaker;
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder("db")
    ///     .consecutive_failures(1)
    ///     .open_for(Duration::from_secs(10))
    ///     .half_open_permits(1)
    ///     .clock(clock.clone())
    ///     .build()?;
    /// breaker.try_acquire()?.failure();
    /// clock.advance(Duration::from_secs(4));
    /// let rejected = breaker.try_acquire().unwrap_err();
    /// assert_eq!(rejected.retry_after(), Some(Duration::from_secs(6))); // the rest of the open period
    ///
    /// clock.advance(Duration::from_secs(6));
    /// let probe = breaker.try_acquire()?;
    /// assert_eq!(breaker.try_acquire().unwrap_err().retry_after(), None); // up to the probe
    /// # drop(probe);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        (self.retry_after_nanos != u64::MAX).then(|| Duration::from_nanos(self.retry_after_nanos))
    }
}

/// The `; retry in 1.500s` suffix of a rejection's message, if known.
struct RetryIn(u64);

impl fmt::Display for RetryIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == u64::MAX {
            return Ok(());
        }
        write!(
            f,
            "; retry in {:.3}s",
            Duration::from_nanos(self.0).as_secs_f64()
        )
    }
}

impl buttress_core::Rejection for Rejected {
    fn kind(&self) -> buttress_core::RejectionKind {
        buttress_core::RejectionKind::CircuitOpen
    }

    fn retry_after(&self) -> Option<Duration> {
        Rejected::retry_after(self)
    }

    fn instance_name(&self) -> Option<&str> {
        Some(self.name())
    }
}

/// The error of [`CircuitBreaker::call`](crate::CircuitBreaker::call):
/// either the breaker refused the call, or the call ran and failed.
///
/// Both variants are transparent: the message and the `source()` are those
/// of the rejection or of the call's own error.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use buttress_breaker::{CircuitBreaker, error::CallError};
///
/// let breaker = CircuitBreaker::builder("db").consecutive_failures(1).build().unwrap();
/// let e = breaker.call(|| async { Err::<(), _>(std::io::Error::other("down")) }).await.unwrap_err();
/// assert_eq!(e.to_string(), "down");
/// let e = breaker.call(|| async { Ok::<_, std::io::Error>(()) }).await.unwrap_err();
/// assert!(matches!(e, CallError::Rejected(_)));
/// assert!(e.to_string().starts_with("circuit breaker 'db' is open"));
/// # });
/// ```
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// The breaker refused the call; it was not made.
    #[error(transparent)]
    Rejected(Rejected),
    /// The call was made and returned this error.
    #[error(transparent)]
    Inner(E),
}

impl<E> CallError<E> {
    /// The call's own error, if it ran.
    ///
    /// ```
    /// use buttress_breaker::error::CallError;
    /// let e: CallError<&str> = CallError::Inner("down");
    /// assert_eq!(e.into_inner(), Some("down"));
    /// ```
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(e) => Some(e),
            Self::Rejected(_) => None,
        }
    }

    /// The rejection, if the breaker refused the call.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, error::CallError};
    /// let breaker = CircuitBreaker::builder("db").build().unwrap();
    /// breaker.force_open();
    /// let e: CallError<std::io::Error> = CallError::Rejected(breaker.try_acquire().unwrap_err());
    /// assert_eq!(e.rejected().map(|r| r.name()), Some("db"));
    /// ```
    pub fn rejected(&self) -> Option<&Rejected> {
        match self {
            Self::Rejected(r) => Some(r),
            Self::Inner(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::ConfigError;

    #[test]
    fn messages_say_what_happened_once() {
        let name = Name::new("llm").expect("valid");
        let r = Rejected::new(name.clone(), State::Open, Some(Duration::from_millis(1500)));
        assert_eq!(
            r.to_string(),
            "circuit breaker 'llm' is open; retry in 1.500s"
        );
        assert!(r.source().is_none());
        let r = Rejected::new(name, State::HalfOpen, None);
        assert_eq!(r.to_string(), "circuit breaker 'llm' is half_open");
        assert_eq!(r.retry_after(), None);

        // `CallError` is transparent: the message and the source are the
        // rejection's or the call's own, never both.
        let e: CallError<std::io::Error> = CallError::Rejected(r);
        assert_eq!(e.to_string(), "circuit breaker 'llm' is half_open");
        assert!(e.source().is_none());
        let e: CallError<ConfigError> =
            CallError::Inner(ConfigError::Name(buttress_core::NameError::Empty));
        assert_eq!(e.to_string(), "invalid breaker name");
        assert!(
            e.source()
                .is_some_and(|s| s.is::<buttress_core::NameError>())
        );

        // A wrapper's message leaves its cause to `source()`.
        let e = ConfigError::Name(buttress_core::NameError::Empty);
        let cause = e.source().expect("the name error");
        assert!(!e.to_string().contains(&cause.to_string()));
    }
}
