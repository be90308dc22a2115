//! The retry layer's default classifier.

use std::any::Any;

use buttress_core::{Classification, Classify};

/// `Ok` is a success; every `Err` is a retryable failure, except that
/// under the `breaker` feature a `buttress-breaker` rejection (an error of
/// type `Rejected`, or a tower `BoxError` holding one) is retryable only
/// after its `retry_after` (and not at all from a breaker forced open).
///
/// For HTTP, use `buttress_core::HttpClassifier` (feature `http`): 5xx and
/// 429 are retryable for idempotent requests, with their `Retry-After`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryClassifier;

impl<T, E: Any> Classify<T, E> for RetryClassifier {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Classification {
        match result {
            Ok(_) => Classification::SUCCESS,
            Err(e) => classify_error(e),
        }
    }
}

#[cfg(not(feature = "breaker"))]
#[inline]
fn classify_error<E: Any>(_: &E) -> Classification {
    Classification::RETRYABLE_FAILURE
}

#[cfg(feature = "breaker")]
fn classify_error<E: Any>(e: &E) -> Classification {
    use buttress_breaker::error::{BoxError, Rejected};
    let any = e as &dyn Any;
    let rejected = any.downcast_ref::<Rejected>().or_else(|| {
        any.downcast_ref::<BoxError>()
            .and_then(|b| b.downcast_ref::<Rejected>())
    });
    match rejected {
        None => Classification::RETRYABLE_FAILURE,
        Some(r) if r.state() == buttress_breaker::State::ForcedOpen => {
            Classification::FATAL_FAILURE
        }
        Some(r) => Classification::RETRYABLE_FAILURE.with_retry_after(r.retry_after()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use buttress_core::Outcome;

    #[test]
    fn errors_are_retryable() {
        let r: Result<(), std::io::Error> = Err(std::io::Error::other("x"));
        assert!(RetryClassifier.classify(&r).retryable);
        let ok: Result<u8, ()> = Ok(1);
        assert_eq!(RetryClassifier.classify(&ok).outcome, Outcome::Success);
    }

    #[cfg(feature = "breaker")]
    #[test]
    fn breaker_rejections_carry_their_retry_after() {
        use buttress_breaker::CircuitBreaker;
        use buttress_breaker::error::BoxError;
        let b = CircuitBreaker::builder("x")
            .consecutive_failures(1)
            .failure_rate(None)
            .build()
            .expect("valid");
        b.try_acquire().expect("closed").failure();
        let rejected = b.try_acquire().expect_err("open");
        let boxed: Result<(), BoxError> = Err(Box::new(rejected.clone()));
        let c = RetryClassifier.classify(&boxed);
        assert!(c.retryable);
        assert_eq!(c.retry_after, rejected.retry_after());
        b.force_open();
        let forced: Result<(), _> = Err(b.try_acquire().expect_err("forced"));
        assert!(!RetryClassifier.classify(&forced).retryable);
    }
}
