//! [`AdaptiveLimitLayer`]: an adaptive concurrency limit in front of a
//! service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use buttress_core::{
    Classify, DefaultClassifier, OnReject, Outcome, RejectWithError, SharedClock, Stopwatch,
};
use tower_layer::Layer;
use tower_service::Service;

use super::Sample;
use super::limiter::AdaptiveLimiter;
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
/// Each admitted request reads the clock twice (its latency), so the layer
/// reads [`default_clock`](buttress_core::default_clock): the CPU's
/// time-stamp counter, with no system call; or tokio's clock when the
/// layer is made inside a runtime whose time is paused
/// (`#[tokio::test(start_paused = true)]`), so that such tests see the
/// latencies they advance with no setup. [`clock`](Self::clock) chooses
/// any other.
///
/// Clones of the layer and of its services share the limiter.
pub struct AdaptiveLimitLayer<C = DefaultClassifier, R = RejectWithError> {
    limiter: AdaptiveLimiter,
    classifier: Arc<C>,
    on_rejected: R,
    clock: Stopwatch,
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
            clock: Stopwatch::default(),
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

    /// Reads time (for latencies) from `clock` instead: a `ManualClock`
    /// for tests that step time by hand, `TokioClock` for tests that pause
    /// tokio's time only after the layer is made, or make it outside the
    /// runtime.
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
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Stopwatch::new(clock);
        self
    }
}

impl<S, C, R: Clone> Layer<S> for AdaptiveLimitLayer<C, R> {
    type Service = AdaptiveLimitService<S, C, R>;
    fn layer(&self, inner: S) -> Self::Service {
        AdaptiveLimitService {
            inner,
            shared: Arc::new(Shared {
                limiter: self.limiter.clone(),
                classifier: self.classifier.clone(),
                clock: self.clock.clone(),
            }),
            on_rejected: self.on_rejected.clone(),
        }
    }
}

/// What an admitted request needs when it completes, behind one `Arc`:
/// one reference count per request, not one per part.
struct Shared<C> {
    limiter: AdaptiveLimiter,
    classifier: Arc<C>,
    clock: Stopwatch,
}

/// The service of [`AdaptiveLimitLayer`].
pub struct AdaptiveLimitService<S, C = DefaultClassifier, R = RejectWithError> {
    inner: S,
    shared: Arc<Shared<C>>,
    on_rejected: R,
}

impl<S: Clone, C, R: Clone> Clone for AdaptiveLimitService<S, C, R> {
    fn clone(&self) -> Self {
        AdaptiveLimitService {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            on_rejected: self.on_rejected.clone(),
        }
    }
}

impl<S: fmt::Debug, C, R> fmt::Debug for AdaptiveLimitService<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimitService")
            .field("inner", &self.inner)
            .field("limiter", &self.shared.limiter)
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
        match self.shared.limiter.admit() {
            Ok(inflight) => {
                // The clock is read once admitted (a refusal reads none),
                // just before the inner call: the latency is that call's.
                let started = self.shared.clock.nanos();
                future::ResponseFuture::admitted(
                    self.inner.call(request),
                    Admitted {
                        shared: self.shared.clone(),
                        started,
                        inflight,
                    },
                )
            }
            Err(overloaded) => {
                future::ResponseFuture::refused(self.on_rejected.on_reject(overloaded))
            }
        }
    }
}

/// An admitted request's slot: freed when it completes
/// ([`complete`](Admitted::complete), with its sample) or when it is
/// dropped unfinished (cancelled: no sample).
struct Admitted<C> {
    shared: Arc<Shared<C>>,
    /// When it started, on `shared.clock`.
    started: u64,
    /// In flight when it started, itself included.
    inflight: u64,
}

impl<C> Admitted<C> {
    /// Frees the slot and feeds the algorithm this request's latency and
    /// whether the classifier calls `result` a failure; a result classified
    /// `Ignored` frees the slot and says nothing (and reads no clock).
    fn complete<T, E>(self, result: &Result<T, E>)
    where
        C: Classify<T, E>,
    {
        let shared = &*self.shared;
        let dropped = match shared.classifier.classify(result).outcome {
            Outcome::Failure => true,
            Outcome::Success => false,
            Outcome::Ignored => return shared.limiter.complete(None),
        };
        let rtt = Duration::from_nanos(shared.clock.nanos().saturating_sub(self.started));
        shared.limiter.complete(Some(Sample {
            rtt,
            inflight: self.inflight,
            dropped,
        }));
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
            state: State<F, C, T, E>,
        }

        impl<F, C, T, E> PinnedDrop for ResponseFuture<F, C, T, E> {
            fn drop(this: Pin<&mut Self>) {
                // Dropped before it finished (cancelled): free the slot,
                // move nothing.
                if let StateProj::Admitted { admitted, .. } = this.project().state.project()
                    && let Some(admitted) = admitted.take()
                {
                    admitted.shared.limiter.complete(None);
                }
            }
        }
    }

    pin_project_lite::pin_project! {
        #[project = StateProj]
        enum State<F, C, T, E> {
            // `admitted` is taken when the inner future finishes.
            Admitted { #[pin] inner: F, admitted: Option<Admitted<C>> },
            Refused { answer: Option<Result<T, E>> },
        }
    }

    impl<F, C, T, E> ResponseFuture<F, C, T, E> {
        pub(super) fn admitted(inner: F, admitted: Admitted<C>) -> Self {
            ResponseFuture {
                state: State::Admitted {
                    inner,
                    admitted: Some(admitted),
                },
            }
        }

        pub(super) fn refused(answer: Result<T, E>) -> Self {
            ResponseFuture {
                state: State::Refused {
                    answer: Some(answer),
                },
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
            match self.project().state.project() {
                StateProj::Admitted { inner, admitted } => {
                    // Polled again after it finished: the `Future`
                    // contract is broken, and it pends forever (the inner
                    // future is not polled again).
                    if admitted.is_none() {
                        return Poll::Pending;
                    }
                    let result = ready!(inner.poll(cx));
                    if let Some(admitted) = admitted.take() {
                        admitted.complete(&result);
                    }
                    Poll::Ready(result.map_err(E2::from))
                }
                StateProj::Refused { answer } => match answer.take() {
                    Some(answer) => Poll::Ready(answer),
                    None => Poll::Pending,
                },
            }
        }
    }
}
