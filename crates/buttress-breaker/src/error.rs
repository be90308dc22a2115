//! Errors the breaker adds: a rejection, and the error of the plain API.

use std::error::Error as StdError;
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
#[derive(Clone)]
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
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The state the breaker was in.
    pub fn state(&self) -> State {
        self.state
    }

    /// How long until the breaker will admit a call again, when known: the
    /// rest of the open period. `None` when half-open with every probe
    /// permit taken, or when forced open.
    pub fn retry_after(&self) -> Option<Duration> {
        (self.retry_after_nanos != u64::MAX).then(|| Duration::from_nanos(self.retry_after_nanos))
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker '{}' is {}", self.name, self.state)?;
        match self.retry_after() {
            Some(d) => write!(f, "; retry in {:.3}s", d.as_secs_f64()),
            None => Ok(()),
        }
    }
}

impl StdError for Rejected {}

impl buttress_core::Rejection for Rejected {
    fn kind(&self) -> buttress_core::RejectionKind {
        buttress_core::RejectionKind::CircuitOpen
    }

    fn retry_after(&self) -> Option<Duration> {
        Rejected::retry_after(self)
    }

    fn source_name(&self) -> Option<&str> {
        Some(self.name())
    }
}

/// The error of [`CircuitBreaker::call`](crate::CircuitBreaker::call):
/// either the breaker refused the call, or the call ran and failed.
#[derive(Debug)]
pub enum CallError<E> {
    /// The breaker refused the call; it was not made.
    Rejected(Rejected),
    /// The call was made and returned this error.
    Inner(E),
}

impl<E> CallError<E> {
    /// The call's own error, if it ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(e) => Some(e),
            Self::Rejected(_) => None,
        }
    }

    /// The rejection, if the breaker refused the call.
    pub fn rejected(&self) -> Option<&Rejected> {
        match self {
            Self::Rejected(r) => Some(r),
            Self::Inner(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(r) => fmt::Display::fmt(r, f),
            Self::Inner(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: StdError + 'static> StdError for CallError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Rejected(r) => Some(r),
            Self::Inner(e) => Some(e),
        }
    }
}
