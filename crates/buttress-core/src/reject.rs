//! What every buttress layer does with work it refuses.
//!
//! A layer that refuses work (an open breaker, a spent rate limit, a
//! paused gauge, a full queue) produces a typed refusal that implements
//! [`Rejection`]. One handler trait, [`OnReject`], turns that refusal into
//! the service's result, and so decides the service's error type:
//!
//! * [`RejectWithError`] (every layer's default) fails the call with the
//!   refusal inside tower's [`BoxError`], where `downcast_ref` finds it.
//! * [`HttpStatus`] (feature `http`) answers with a ready HTTP response
//!   whose status fits the refusal (`429` for a rate limit, `503` for the
//!   rest, `504` for a timeout), `Retry-After` when the refusal knows when
//!   to come back, and the refusal itself as a response extension. Its
//!   error type is the inner service's own: over an infallible service the
//!   layer stays infallible, so it drops straight into an axum `Router`.
//!
//! ```
//! use std::time::Duration;
//! use buttress_core::{BoxError, OnReject, RejectWithError, Rejection, RejectionKind};
//!
//! #[derive(Debug, Clone)]
//! struct Busy;
//! impl std::fmt::Display for Busy {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str("busy")
//!     }
//! }
//! impl std::error::Error for Busy {}
//! impl Rejection for Busy {
//!     fn kind(&self) -> RejectionKind { RejectionKind::Overloaded }
//!     fn retry_after(&self) -> Option<Duration> { Some(Duration::from_secs(2)) }
//! }
//!
//! let answer: Result<u32, BoxError> =
//!     OnReject::<Busy, u32, std::io::Error>::on_reject(&RejectWithError, Busy);
//! assert!(answer.unwrap_err().downcast_ref::<Busy>().is_some());
//! ```

use std::fmt;
use std::time::Duration;

/// tower's boxed error: the error type of every buttress layer that fails
/// refused work (the default), and what inner errors are boxed into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of refusal a [`Rejection`] is: what a client is told, the
/// status an HTTP answer carries, and the label metrics and logs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// A circuit breaker is open (or half-open with every probe taken).
    CircuitOpen,
    /// A rate limit is spent.
    RateLimited,
    /// The service sheds load: a gauge is paused, or a concurrency limit
    /// is reached.
    Overloaded,
    /// A bounded queue is full.
    QueueFull,
    /// The service is shutting down and takes no new work.
    ShuttingDown,
    /// The service is not ready yet: it is starting (loading a model,
    /// warming a cache), or its startup failed.
    NotReady,
    /// The work ran past its time limit.
    TimedOut,
    /// The work was accepted but ended without an answer (it panicked, or
    /// was cancelled).
    Failed,
}

impl RejectionKind {
    /// A short snake_case name, for metric labels and logs.
    ///
    /// ```
    /// use buttress_core::RejectionKind;
    /// assert_eq!(RejectionKind::CircuitOpen.as_str(), "circuit_open");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CircuitOpen => "circuit_open",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::QueueFull => "queue_full",
            Self::ShuttingDown => "shutting_down",
            Self::NotReady => "not_ready",
            Self::TimedOut => "timed_out",
            Self::Failed => "failed",
        }
    }

    /// The HTTP status that answers this kind of refusal: `429` for a
    /// rate limit, `504` for a timeout, `500` for work that failed inside,
    /// and `503` for the rest (the service cannot take the work now).
    ///
    /// ```
    /// use buttress_core::RejectionKind;
    /// assert_eq!(RejectionKind::RateLimited.status().as_u16(), 429);
    /// assert_eq!(RejectionKind::QueueFull.status().as_u16(), 503);
    /// ```
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub const fn status(self) -> http::StatusCode {
        match self {
            Self::RateLimited => http::StatusCode::TOO_MANY_REQUESTS,
            Self::TimedOut => http::StatusCode::GATEWAY_TIMEOUT,
            Self::Failed => http::StatusCode::INTERNAL_SERVER_ERROR,
            Self::CircuitOpen
            | Self::Overloaded
            | Self::QueueFull
            | Self::ShuttingDown
            | Self::NotReady => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The quota a rate-limit refusal was made under: what the IETF
/// `RateLimit-Policy` field announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// Requests the quota admits in one burst.
    pub burst: u32,
    /// The time the whole burst takes to come back.
    pub window: Duration,
}

/// A typed refusal: the error a buttress layer produces for work it did
/// not do (or could not finish).
///
/// Implemented by `buttress_breaker::error::Rejected`,
/// `buttress_limit::error::RateLimited`, `buttress_pressure::error::Overloaded`
/// and the executor's errors; implement it for refusals of your own to use
/// the same handlers.
pub trait Rejection: std::error::Error + Send + Sync + 'static {
    /// What kind of refusal this is.
    fn kind(&self) -> RejectionKind;

    /// When to come back, if the refusing layer knows.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// For a rate-limit refusal: the quota, for the `RateLimit` header
    /// fields.
    fn rate_limit_policy(&self) -> Option<RateLimitPolicy> {
        None
    }

    /// The name of the instance that refused (a breaker's, a limiter's).
    fn instance_name(&self) -> Option<&str> {
        None
    }
}

/// Turns a refusal of type `R` into the result of a service whose inner
/// service answers `Result<Response, InnerError>`, and so decides the
/// layer's error type ([`OnReject::Error`]): a handler that fails uses
/// [`BoxError`]; one that answers with a response keeps the inner error.
///
/// Every buttress layer that refuses work takes one (`.on_rejected(h)`),
/// so a handler written once serves them all.
///
/// ```
/// use buttress_core::{OnReject, Rejection, RejectionKind};
///
/// /// Refusals become a plain-text answer.
/// #[derive(Debug, Clone, Copy)]
/// struct Sorry;
///
/// impl<R: Rejection, E> OnReject<R, String, E> for Sorry {
///     type Error = E;
///     fn on_reject(&self, rejection: R) -> Result<String, E> {
///         Ok(format!("sorry: {}", rejection.kind()))
///     }
/// }
/// ```
pub trait OnReject<R, Response, InnerError> {
    /// The service's error type: the inner service's errors convert into
    /// it.
    type Error: From<InnerError>;

    /// The result of refused work.
    fn on_reject(&self, rejection: R) -> Result<Response, Self::Error>;
}

/// Refused work fails with the refusal boxed in a [`BoxError`]: the
/// default of every buttress layer. Recover the refusal with
/// `downcast_ref`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RejectWithError;

impl<R, Response, E> OnReject<R, Response, E> for RejectWithError
where
    R: Rejection,
    BoxError: From<E>,
{
    type Error = BoxError;

    #[inline]
    fn on_reject(&self, rejection: R) -> Result<Response, BoxError> {
        Err(Box::new(rejection))
    }
}

/// Refused work is answered with an HTTP response: the status of its
/// [`RejectionKind`] (`429`, `503`, `504` or `500`), `Retry-After` in whole
/// seconds rounded up when the refusal knows when to come back, the IETF
/// `RateLimit` and `RateLimit-Policy` fields on a rate-limit refusal, and
/// an empty (`Default`) body. The refusal itself rides along as a response
/// extension, for logging or for a body of your own, and so does its
/// [`RejectionKind`], which a layer that knows no refusal type can read
/// (buttress-degrade's problem layer renders the body from it).
///
/// The layer's error stays the inner service's error: over an infallible
/// service (an axum handler) the whole layer is infallible.
///
/// ```
/// use buttress_core::{HttpStatus, OnReject, Rejection, RejectionKind};
/// # #[derive(Debug, Clone)] struct Full;
/// # impl std::fmt::Display for Full { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("full") } }
/// # impl std::error::Error for Full {}
/// # impl Rejection for Full { fn kind(&self) -> RejectionKind { RejectionKind::QueueFull } }
///
/// let response: http::Response<String> =
///     OnReject::<Full, _, std::convert::Infallible>::on_reject(&HttpStatus, Full).unwrap();
/// assert_eq!(response.status(), 503);
/// assert!(response.extensions().get::<Full>().is_some());
/// assert_eq!(response.extensions().get::<RejectionKind>(), Some(&RejectionKind::QueueFull));
/// ```
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStatus;

#[cfg(feature = "http")]
impl<R, B, E> OnReject<R, http::Response<B>, E> for HttpStatus
where
    R: Rejection + Clone,
    B: Default,
{
    type Error = E;

    fn on_reject(&self, rejection: R) -> Result<http::Response<B>, E> {
        Ok(crate::http::rejection_response(rejection))
    }
}
