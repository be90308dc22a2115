//! [`AdaptiveLimitLayer`]: an adaptive concurrency limit in front of a
//! service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use buttress_core::{
    Classify, DefaultClassifier, OnReject, Outcome, RejectWithError, SharedClock, TokioClock,
};
use tower_layer::Layer;
use tower_service::Service;

use super::limiter::{AdaptiveLimiter, LimitPermit};
use crate::error::Overloaded;

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
    on_rejected: R,
    clock: SharedClock,
}

impl<C, R: Clone> Clone for AdaptiveLimitLayer<C, R> {
    fn clone(&self) -> Self {
        AdaptiveLimitLayer {
            limiter: self.limiter.clone(),
            classifier: self.classifier.clone(),
            on_rejected: self.on_rejected.clone(),
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
    ///
    /// ```
    /// use buttress_pressure::{AdaptiveLimitLayer, AdaptiveLimiter, Vegas};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// let limiter = AdaptiveLimiter::new("llm", Vegas::new(20, 2, 200)?)?;
    /// let svc = ServiceBuilder::new()
    ///     .layer(AdaptiveLimitLayer::new(limiter.clone()))
    ///     .service(service_fn(|req: u32| async move { Ok::<_, std::io::Error>(req) }));
    /// assert_eq!(svc.oneshot(1).await?, 1);
    /// assert_eq!(limiter.inflight(), 0);
    /// # Ok(()) }
    /// ```
    pub fn new(limiter: AdaptiveLimiter) -> Self {
        AdaptiveLimitLayer {
            limiter,
            classifier: Arc::new(DefaultClassifier),
            on_rejected: RejectWithError,
            clock: Arc::new(TokioClock),
        }
    }
}

impl<C, R> AdaptiveLimitLayer<C, R> {
    /// Which results are drops: failures by `classifier`.
    ///
    /// ```
    /// use buttress_core::{Classification, classify_fn};
    /// use buttress_pressure::{AdaptiveLimitLayer, AdaptiveLimiter, Aimd};
    ///
    /// let limiter = AdaptiveLimiter::new("llm", Aimd::new(20, 2, 200)?)?;
    /// // A "not found" is the caller's problem: it moves nothing.
    /// let layer = AdaptiveLimitLayer::new(limiter).classifier(classify_fn(
    ///     |r: &Result<u32, std::io::Error>| match r {
    ///         Ok(_) => Classification::SUCCESS,
    ///         Err(e) if e.kind() == std::io::ErrorKind::NotFound => Classification::IGNORED,
    ///         Err(_) => Classification::RETRYABLE_FAILURE,
    ///     },
    /// ));
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn classifier<C2>(self, classifier: C2) -> AdaptiveLimitLayer<C2, R> {
        AdaptiveLimitLayer {
            limiter: self.limiter,
            classifier: Arc::new(classifier),
            on_rejected: self.on_rejected,
            clock: self.clock,
        }
    }

    /// Uses `on_rejected` (any [`OnReject`] handler) to answer refused
    /// requests; it decides the service's error type.
    ///
    /// ```
    /// use buttress_pressure::{AdaptiveLimitLayer, AdaptiveLimiter, Aimd, RejectWithError};
    ///
    /// let limiter = AdaptiveLimiter::new("llm", Aimd::new(20, 2, 200)?)?;
    /// let layer = AdaptiveLimitLayer::new(limiter).on_rejected(RejectWithError); // the default
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_rejected<R2>(self, on_rejected: R2) -> AdaptiveLimitLayer<C, R2> {
        AdaptiveLimitLayer {
            limiter: self.limiter,
            classifier: self.classifier,
            on_rejected,
            clock: self.clock,
        }
    }

    /// Refused requests are answered `503`, keeping the inner service's
    /// error.
    ///
    /// ```
    /// use buttress_pressure::{AdaptiveLimitLayer, AdaptiveLimiter, Aimd};
    ///
    /// let limiter = AdaptiveLimiter::new("llm", Aimd::new(20, 2, 200)?)?;
    /// let layer = AdaptiveLimitLayer::new(limiter).http();
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn http(self) -> AdaptiveLimitLayer<C, buttress_core::HttpStatus> {
        self.on_rejected(buttress_core::HttpStatus)
    }

    buttress_core::setters! {
        /// Reads time (for latencies) from `clock`.
        ///
        /// ```
        /// use std::sync::Arc;
        /// use buttress_core::ManualClock;
        /// use buttress_pressure::{AdaptiveLimitLayer, AdaptiveLimiter, Aimd};
        ///
        /// let limiter = AdaptiveLimiter::new("llm", Aimd::new(20, 2, 200)?)?;
        /// let layer = AdaptiveLimitLayer::new(limiter).clock(Arc::new(ManualClock::new()));
        /// # let _ = layer;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        clock: SharedClock,
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
    C: Classify<S::Response, S::Error>,
    R: OnReject<Overloaded, S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = future::ResponseFuture<S::Future, C, S::Response, R::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), R::Error>> {
        self.inner.poll_ready(cx).map_err(R::Error::from)
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
                future::ResponseFuture::refused(self.layer.on_rejected.on_reject(overloaded))
            }
        }
    }
}

/// The response future of [`AdaptiveLimitService`].
pub(crate) mod future {
    use super::*;

    pin_project_lite::pin_project! {
        /// Runs the inner future and records its latency and outcome, or
        /// answers a refused request.
        ///
        /// Its parameters are the inner future, the classifier, the
        /// response and the service's error type (the rejection
        /// handler's).
        pub struct ResponseFuture<F, C, T, E> {
            #[pin]
            inner: Option<F>,
            permit: Option<LimitPermit>,
            classifier: Option<Arc<C>>,
            clock: Option<SharedClock>,
            refused: Option<Result<T, E>>,
        }
    }

    impl<F, C, T, E> ResponseFuture<F, C, T, E> {
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
            }
        }

        pub(super) fn refused(answer: Result<T, E>) -> Self {
            ResponseFuture {
                inner: None,
                permit: None,
                classifier: None,
                clock: None,
                refused: Some(answer),
            }
        }
    }

    impl<F, C, T, E> fmt::Debug for ResponseFuture<F, C, T, E> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ResponseFuture").finish_non_exhaustive()
        }
    }

    impl<F, C, T, E, E2> Future for ResponseFuture<F, C, T, E2>
    where
        F: Future<Output = Result<T, E>>,
        E2: From<E>,
        C: Classify<T, E>,
    {
        type Output = Result<T, E2>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let mut this = self.project();
            if let Some(answer) = this.refused.take() {
                return Poll::Ready(answer);
            }
            // Polled again after it finished: the `Future` contract is
            // broken, and it pends forever.
            let Some(inner) = this.inner.as_mut().as_pin_mut() else {
                return Poll::Pending;
            };
            let result = ready!(inner.poll(cx));
            this.inner.set(None);
            if let (Some(permit), Some(classifier), Some(clock)) = (
                this.permit.take(),
                this.classifier.as_ref(),
                this.clock.as_ref(),
            ) {
                let dropped = classifier.classify(&result).outcome == Outcome::Failure;
                permit.record(clock.now(), dropped);
            }
            Poll::Ready(result.map_err(E2::from))
        }
    }
}
