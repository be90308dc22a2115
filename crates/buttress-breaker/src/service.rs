//! The tower service.

use std::task::{Context, Poll};

use buttress_core::Classify;
use tower_service::Service;

use crate::breaker::CircuitBreaker;
use crate::error::BoxError;
use crate::future::ResponseFuture;
use crate::reject::OnRejected;

/// A service behind a [`CircuitBreaker`]; made by
/// [`CircuitBreakerLayer`](crate::CircuitBreakerLayer).
///
/// Readiness is the inner service's. The breaker is asked in `call`, and a
/// refused call never reaches the inner service. The call is made on the
/// very service that was polled ready (never on a fresh clone), and clones
/// share the breaker.
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S, C, R> {
    inner: S,
    breaker: CircuitBreaker,
    classifier: C,
    on_rejected: R,
}

impl<S, C, R> CircuitBreakerService<S, C, R> {
    pub(crate) fn new(inner: S, breaker: CircuitBreaker, classifier: C, on_rejected: R) -> Self {
        Self {
            inner,
            breaker,
            classifier,
            on_rejected,
        }
    }

    /// The breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req, C, R> Service<Req> for CircuitBreakerService<S, C, R>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
    R: OnRejected<S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C, S::Response>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        match self.breaker.try_acquire_owned() {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(req), permit, self.classifier.clone())
            }
            Err(rejected) => ResponseFuture::rejected(self.on_rejected.on_rejected(rejected)),
        }
    }
}
