//! Outcome classification shared by every primitive.

use std::fmt;
use std::time::Duration;

/// What a call's result means to a resilience primitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Outcome {
    /// The call worked: it counts towards health.
    Success,
    /// The call failed in a way that says something about the callee's
    /// health: it counts towards tripping a breaker.
    Failure,
    /// The result says nothing about health (a cancelled call, a client
    /// error): it is not counted at all.
    Ignored,
}

/// The full verdict on one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// Success, failure, or ignored.
    pub outcome: Outcome,
    /// Whether the same request may be sent again.
    pub retryable: bool,
    /// A server's hint of when to come back (`Retry-After`), if any.
    pub retry_after: Option<Duration>,
}

impl Classification {
    /// A success, not to be retried.
    pub const SUCCESS: Self = Self {
        outcome: Outcome::Success,
        retryable: false,
        retry_after: None,
    };
    /// A failure that may be retried.
    pub const RETRYABLE_FAILURE: Self = Self {
        outcome: Outcome::Failure,
        retryable: true,
        retry_after: None,
    };
    /// A failure that must not be retried.
    pub const FATAL_FAILURE: Self = Self {
        outcome: Outcome::Failure,
        retryable: false,
        retry_after: None,
    };
    /// An ignored result, not to be retried.
    pub const IGNORED: Self = Self {
        outcome: Outcome::Ignored,
        retryable: false,
        retry_after: None,
    };

    /// The same verdict with a `Retry-After` hint.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::{Classification, Outcome};
    ///
    /// let c = Classification::RETRYABLE_FAILURE.with_retry_after(Some(Duration::from_secs(3)));
    /// assert_eq!(c.outcome, Outcome::Failure);
    /// assert!(c.retryable);
    /// assert_eq!(c.retry_after, Some(Duration::from_secs(3)));
    /// ```
    #[must_use]
    pub const fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }
}

/// Decides what the result of a call means.
///
/// Implemented for [`DefaultClassifier`], for [`FnClassifier`] (any closure
/// `Fn(&Result<T, E>) -> Classification`, made with [`classify_fn`]), and,
/// under the `http` feature, for `HttpClassifier`.
pub trait Classify<T, E> {
    /// The verdict on one result.
    fn classify(&self, result: &Result<T, E>) -> Classification;
}

/// `Ok` is a success; every `Err` is a retryable failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultClassifier;

impl<T, E> Classify<T, E> for DefaultClassifier {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Classification {
        match result {
            Ok(_) => Classification::SUCCESS,
            Err(_) => Classification::RETRYABLE_FAILURE,
        }
    }
}

/// A classifier made from a closure; see [`classify_fn`].
#[derive(Clone, Copy)]
pub struct FnClassifier<F>(F);

impl<F> fmt::Debug for FnClassifier<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnClassifier(..)")
    }
}

/// Wraps a closure as a classifier.
///
/// ```
/// use buttress_core::{classify_fn, Classification, Classify, Outcome};
///
/// // A "not found" is the caller's problem, not the server's.
/// let c = classify_fn(|r: &Result<u32, std::io::Error>| match r {
///     Ok(_) => Classification::SUCCESS,
///     Err(e) if e.kind() == std::io::ErrorKind::NotFound => Classification::IGNORED,
///     Err(_) => Classification::RETRYABLE_FAILURE,
/// });
/// let r = Err(std::io::Error::from(std::io::ErrorKind::NotFound));
/// assert_eq!(c.classify(&r).outcome, Outcome::Ignored);
/// ```
pub fn classify_fn<T, E, F>(f: F) -> FnClassifier<F>
where
    F: Fn(&Result<T, E>) -> Classification,
{
    FnClassifier(f)
}

impl<T, E, F> Classify<T, E> for FnClassifier<F>
where
    F: Fn(&Result<T, E>) -> Classification,
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Classification {
        (self.0)(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_classifier() {
        let ok: Result<(), ()> = Ok(());
        let err: Result<(), ()> = Err(());
        assert_eq!(DefaultClassifier.classify(&ok), Classification::SUCCESS);
        assert_eq!(
            DefaultClassifier.classify(&err),
            Classification::RETRYABLE_FAILURE
        );
    }

    #[test]
    fn closure_overrides() {
        let c = classify_fn(|r: &Result<u8, u8>| match r {
            Err(4) => Classification::IGNORED,
            Err(_) => Classification::FATAL_FAILURE,
            Ok(_) => Classification::SUCCESS.with_retry_after(Some(Duration::from_secs(1))),
        });
        assert_eq!(c.classify(&Err(4)).outcome, Outcome::Ignored);
        assert!(!c.classify(&Err(5)).retryable);
        assert_eq!(c.classify(&Ok(1)).retry_after, Some(Duration::from_secs(1)));
    }
}
