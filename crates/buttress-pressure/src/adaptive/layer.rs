//! [`AdaptiveLimitLayer`]: an adaptive concurrency limit in front of a
//! service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use buttress_core::{Classify, DefaultClassifier, Outcome, SharedClock, TokioClock};
use tower_layer::Layer;
use tower_service::Service;

use super::limiter::{AdaptiveLimiter, LimitPermit};
use crate::error::BoxError;
use crate::shed::{OnShed, RejectWithError};

/// Puts an [`AdaptiveLimiter`] in front of a service: a request beyond the
/// limit is refused at once (with [`Overloaded`](crate::Overloaded), or
/// `503` under `http`, without `Retry-After`: a concurrency limit has no
/// time at which it will admit again), never queued; each completed request
/// moves the limit by its latency and by whether the classifier calls it a
/// failure (a drop). Results classified `Ignored` (client errors,
/// cancellations) and requests dropped before they finish free their slot
/// without moving the limit. Behind an outer timeout, the requests it
/// cancels are never seen as slow: give the algorithm a timeout (AIMD) at
/// or below the outer one.
///
/// Clones of the layer and of its services share the limiter.
pub struct AdaptiveLimitLayer<C = DefaultClassifier, R = RejectWithError> {
    limiter: AdaptiveLimiter,
    classifier: Arc<C>,
    on_limit: R,
    clock: SharedClock,
}

impl<C, R: Clone> Clone for AdaptiveLimitLayer<C, R> {
    fn clone(&self) -> Self {
        AdaptiveLimitLayer {
            limiter: self.limiter.clone(),
            classifier: self.classifier.clone(),
            on_limit: self.on_limit.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<C, R> fmt::Debug for AdaptiveLimitLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimitLayer")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl AdaptiveLimitLayer {
    /// A layer for `limiter`; errors are drops.
    pub fn new(limiter: AdaptiveLimiter) -> Self {
        AdaptiveLimitLayer {
            limiter,
            classifier: Arc::new(DefaultClassifier),
            on_limit: RejectWithError,
            clock: Arc::new(TokioClock),
        }
    }
}

impl<C, R> AdaptiveLimitLayer<C, R> {
    /// Which results are drops: failures by `classifier`.
    pub fn classifier<C2>(self, classifier: C2) -> AdaptiveLimitLayer<C2, R> {
        AdaptiveLimitLayer {
            limiter: self.limiter,
            classifier: Arc::new(classifier),
            on_limit: self.on_limit,
            clock: self.clock,
        }
    }

    /// What a refused request returns.
    pub fn on_limit<R2>(self, on_limit: R2) -> AdaptiveLimitLayer<C, R2> {
        AdaptiveLimitLayer {
            limiter: self.limiter,
            classifier: self.classifier,
            on_limit,
            clock: self.clock,
        }
    }

    /// Refused requests are answered `503` with `Retry-After`.
    #[cfg(feature = "http")]
    pub fn http(self) -> AdaptiveLimitLayer<C, crate::shed::Http503> {
        self.on_limit(crate::shed::Http503)
    }

    /// Reads time (for latencies) from `clock`.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
}

impl<S, C, R: Clone> Layer<S> for AdaptiveLimitLayer<C, R> {
    type Service = AdaptiveLimitService<S, C, R>;
    fn layer(&self, inner: S) -> Self::Service {
        AdaptiveLimitService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`AdaptiveLimitLayer`].
pub struct AdaptiveLimitService<S, C = DefaultClassifier, R = RejectWithError> {
    inner: S,
    layer: AdaptiveLimitLayer<C, R>,
}

impl<S: Clone, C, R: Clone> Clone for AdaptiveLimitService<S, C, R> {
    fn clone(&self) -> Self {
        AdaptiveLimitService {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, C, R> fmt::Debug for AdaptiveLimitService<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimitService")
            .field("inner", &self.inner)
            .field("limiter", &self.layer.limiter)
            .finish()
    }
}

impl<S, C, R, Req> Service<Req> for AdaptiveLimitService<S, C, R>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error>,
    R: OnShed<S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = future::ResponseFuture<S::Future, C, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let now = self.layer.clock.now();
        match self.layer.limiter.try_acquire(now) {
            Ok(permit) => future::ResponseFuture::admitted(
                self.inner.call(request),
                permit,
                self.layer.classifier.clone(),
                self.layer.clock.clone(),
            ),
            Err(overloaded) => {
                future::ResponseFuture::refused(self.layer.on_limit.on_shed(overloaded))
            }
        }
    }
}

/// The response future of [`AdaptiveLimitService`].
pub(crate) mod future {
    use super::*;

    pin_project_lite::pin_project! {
        /// Runs the inner future and records its latency and outcome.
        pub struct ResponseFuture<F, C, T> {
            #[pin]
            inner: Option<F>,
            permit: Option<LimitPermit>,
            classifier: Option<Arc<C>>,
            clock: Option<SharedClock>,
            refused: Option<Result<T, BoxError>>,
            finished: bool,
        }
    }

    impl<F, C, T> ResponseFuture<F, C, T> {
        pub(super) fn admitted(
            inner: F,
            permit: LimitPermit,
            classifier: Arc<C>,
            clock: SharedClock,
        ) -> Self {
            ResponseFuture {
                inner: Some(inner),
                permit: Some(permit),
                classifier: Some(classifier),
                clock: Some(clock),
                refused: None,
                finished: false,
            }
        }

        pub(super) fn refused(answer: Result<T, BoxError>) -> Self {
            ResponseFuture {
                inner: None,
                permit: None,
                classifier: None,
                clock: None,
                refused: Some(answer),
                finished: false,
            }
        }
    }

    impl<F, C, T> fmt::Debug for ResponseFuture<F, C, T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ResponseFuture").finish_non_exhaustive()
        }
    }

    impl<F, C, T, E> Future for ResponseFuture<F, C, T>
    where
        F: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
        C: Classify<T, E>,
    {
        type Output = Result<T, BoxError>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            if let Some(answer) = this.refused.take() {
                return Poll::Ready(answer);
            }
            let Some(inner) = this.inner.as_pin_mut() else {
                return Poll::Ready(Err("polled after completion".into()));
            };
            let result = ready!(inner.poll(cx));
            if let (Some(permit), Some(classifier), Some(clock)) = (
                this.permit.take(),
                this.classifier.as_ref(),
                this.clock.as_ref(),
            ) {
                let dropped = classifier.classify(&result).outcome == Outcome::Failure;
                permit.record(clock.now(), dropped);
            }
            Poll::Ready(result.map_err(Into::into))
        }
    }
}
