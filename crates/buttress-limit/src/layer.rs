//! The tower layer and service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use buttress_core::{OnReject, RejectWithError};
use tokio::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::RateLimited;
use crate::future::ResponseFuture;
use crate::limiter::RateLimiter;

/// What a request does when no token is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Fail at once with [`RateLimited`] (the default).
    #[default]
    Reject,
    /// Wait for a token up to this long, first come first served; fail at
    /// once when the token would come later than that.
    Wait(Duration),
}

/// Limits the rate of requests to a service. Every service the layer makes
/// shares the one limiter (and so one limit), unlike tower's `RateLimit`.
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use buttress_limit::{Quota, RateLimiter, RateLimitLayer};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let limiter = RateLimiter::new("api", Quota::per_second(100).unwrap()).unwrap();
/// let svc = ServiceBuilder::new()
///     .layer(RateLimitLayer::new(limiter))
///     .service(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// assert_eq!(svc.oneshot(1).await.unwrap(), 1);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitLayer<R = RejectWithError> {
    limiter: RateLimiter,
    mode: Mode,
    on_rejected: R,
}

impl RateLimitLayer {
    /// Rejects requests over `limiter`'s quota.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{Quota, RateLimited, RateLimitLayer, RateLimiter};
    ///
    /// let limiter = RateLimiter::with_clock("api", Quota::per_hour(1)?, ManualClock::new())?;
    /// let svc = RateLimitLayer::new(limiter)
    ///     .layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x * 2) }));
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// assert_eq!(svc.clone().oneshot(21).await.unwrap(), 42);
    /// // Clones share the limit: the hour's one request is spent.
    /// let err = svc.clone().oneshot(21).await.unwrap_err();
    /// assert!(err.downcast_ref::<RateLimited>().is_some());
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(limiter: RateLimiter) -> Self {
        Self {
            limiter,
            mode: Mode::Reject,
            on_rejected: RejectWithError,
        }
    }
}

impl<R> RateLimitLayer<R> {
    buttress_core::setters! {
        /// Sets what an over-quota request does.
        ///
        /// ```
        /// use std::time::Duration;
        /// use tokio::time::Instant;
        /// use tower::{Layer, ServiceExt, service_fn};
        /// use buttress_limit::{Mode, Quota, RateLimitLayer, RateLimiter};
        ///
        /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
        /// # async fn main() -> Result<(), buttress_limit::error::BoxError> {
        /// let limiter = RateLimiter::new("api", Quota::per_second(10)?.with_burst(1)?)?;
        /// let svc = RateLimitLayer::new(limiter)
        ///     .mode(Mode::Wait(Duration::from_secs(1)))
        ///     .layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
        /// let start = Instant::now();
        /// assert_eq!(svc.clone().oneshot(1).await?, 1);
        /// assert_eq!(svc.clone().oneshot(2).await?, 2); // waited for its token
        /// assert!(start.elapsed() >= Duration::from_millis(100));
        /// # Ok(())
        /// # }
        /// ```
        mode: Mode,
    }

    /// Uses `on_rejected` (any [`OnReject`] handler) to answer refused
    /// requests; it decides the service's error type.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{OnReject, Quota, RateLimited, RateLimitLayer, RateLimiter};
    ///
    /// /// Refused requests get a stale answer instead of an error.
    /// #[derive(Clone)]
    /// struct Stale;
    /// impl OnReject<RateLimited, String, Infallible> for Stale {
    ///     type Error = Infallible;
    ///     fn on_reject(&self, _: RateLimited) -> Result<String, Infallible> {
    ///         Ok("stale".to_string())
    ///     }
    /// }
    ///
    /// let limiter = RateLimiter::with_clock("api", Quota::per_hour(1)?, ManualClock::new())?;
    /// let svc = RateLimitLayer::new(limiter)
    ///     .on_rejected(Stale)
    ///     .layer(service_fn(|_: ()| async { Ok::<_, Infallible>("fresh".to_string()) }));
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// assert_eq!(svc.clone().oneshot(()).await, Ok("fresh".to_string()));
    /// assert_eq!(svc.clone().oneshot(()).await, Ok("stale".to_string()));
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_rejected<R2>(self, on_rejected: R2) -> RateLimitLayer<R2> {
        RateLimitLayer {
            limiter: self.limiter,
            mode: self.mode,
            on_rejected,
        }
    }

    /// Answers refused requests `429 Too Many Requests` with `Retry-After`
    /// and the RateLimit header fields; the service keeps the inner
    /// service's error, so it goes straight into an axum `Router`.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response, StatusCode};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{Quota, RateLimited, RateLimitLayer, RateLimiter};
    ///
    /// let limiter = RateLimiter::with_clock("api", Quota::per_hour(1)?, ManualClock::new())?;
    /// let svc = RateLimitLayer::new(limiter).http().layer(service_fn(|_: Request<()>| async {
    ///     Ok::<_, Infallible>(Response::new("hello".to_string()))
    /// }));
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let ok = svc.clone().oneshot(Request::new(())).await?;
    /// assert_eq!(ok.status(), StatusCode::OK);
    /// let refused = svc.clone().oneshot(Request::new(())).await?;
    /// assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    /// assert_eq!(refused.headers()["retry-after"], "3600");
    /// assert_eq!(refused.headers()["ratelimit"], "\"api\";r=0;t=3600");
    /// assert!(refused.extensions().get::<RateLimited>().is_some());
    /// # Ok::<(), Infallible>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn http(self) -> RateLimitLayer<buttress_core::HttpStatus> {
        self.on_rejected(buttress_core::HttpStatus)
    }
}

impl<S, R: Clone> Layer<S> for RateLimitLayer<R> {
    type Service = RateLimitService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService::new(
            inner,
            self.limiter.clone(),
            self.mode,
            self.on_rejected.clone(),
        )
    }
}

/// Where a service is between `poll_ready` and `call`. The common case,
/// a token taken, is one byte; the rare states keep their data aside, so
/// the hot path never moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing asked yet.
    Idle,
    /// A token is ours.
    Admitted,
    /// Refused; `call` returns the error in `refused`.
    Refused,
    /// A reservation is due when `waiting`'s sleep ends.
    Waiting,
}

/// A reservation being waited for.
struct Wait {
    sleep: Pin<Box<Sleep>>,
    tat: u64,
    cost: u64,
}

/// A rate-limited service; made by [`RateLimitLayer`].
///
/// The limiter is asked in `poll_ready`: an admitted request holds its
/// token until `call`; a refused one is ready at once and `call` returns
/// the [`RateLimited`] error without reaching the inner service; in
/// waiting mode `poll_ready` waits for the reserved token. A clone shares
/// the limiter but not a held token, and a service dropped while waiting
/// gives its reservation back when nobody queued behind it.
pub struct RateLimitService<S, R = RejectWithError> {
    inner: S,
    limiter: RateLimiter,
    mode: Mode,
    on_rejected: R,
    phase: Phase,
    refused: Option<RateLimited>,
    waiting: Option<Wait>,
}

impl<S: fmt::Debug, R> fmt::Debug for RateLimitService<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitService")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .field("mode", &self.mode)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl<S: Clone, R: Clone> Clone for RateLimitService<S, R> {
    fn clone(&self) -> Self {
        Self::new(
            self.inner.clone(),
            self.limiter.clone(),
            self.mode,
            self.on_rejected.clone(),
        )
    }
}

impl<S, R> Drop for RateLimitService<S, R> {
    fn drop(&mut self) {
        if let Some(w) = self.waiting.take() {
            self.limiter.cancel(w.tat, w.cost);
        }
    }
}

impl<S, R> RateLimitService<S, R> {
    fn new(inner: S, limiter: RateLimiter, mode: Mode, on_rejected: R) -> Self {
        Self {
            inner,
            limiter,
            mode,
            on_rejected,
            phase: Phase::Idle,
            refused: None,
            waiting: None,
        }
    }

    #[inline]
    fn ask(&mut self) {
        self.phase = match self.mode {
            Mode::Reject => match self.limiter.check() {
                Ok(()) => Phase::Admitted,
                Err(e) => self.refuse(e),
            },
            Mode::Wait(max) => match self.limiter.reserve(1, max) {
                Ok((wait, _, _)) if wait.is_zero() => Phase::Admitted,
                Ok((wait, tat, cost)) => {
                    self.waiting = Some(Wait {
                        sleep: Box::pin(tokio::time::sleep(wait)),
                        tat,
                        cost,
                    });
                    Phase::Waiting
                }
                Err(e) => self.refuse(e),
            },
        };
    }

    #[cold]
    fn refuse(&mut self, e: RateLimited) -> Phase {
        self.refused = Some(e);
        Phase::Refused
    }
}

impl<S, R, Req> Service<Req> for RateLimitService<S, R>
where
    S: Service<Req>,
    R: OnReject<RateLimited, S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = ResponseFuture<S::Future, R>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            match self.phase {
                Phase::Idle => {
                    self.ask();
                    if self.phase == Phase::Refused {
                        // Refused (and counted) just now: ready, and
                        // `call` answers with the refusal.
                        return Poll::Ready(Ok(()));
                    }
                }
                Phase::Admitted => return self.inner.poll_ready(cx).map_err(R::Error::from),
                Phase::Refused => {
                    // Polled again before `call`: tokens may have come
                    // back. A request refused once is counted as refused
                    // once, however often it is polled.
                    if let Mode::Reject = self.mode
                        && self.limiter.retake()
                    {
                        self.refused = None;
                        self.phase = Phase::Admitted;
                        continue;
                    }
                    return Poll::Ready(Ok(()));
                }
                Phase::Waiting => {
                    if let Some(w) = self.waiting.as_mut() {
                        ready!(w.sleep.as_mut().poll(cx));
                    }
                    self.waiting = None;
                    self.phase = Phase::Admitted;
                }
            }
        }
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        match phase {
            Phase::Admitted => ResponseFuture::called(self.inner.call(req)),
            Phase::Idle => match self.limiter.check() {
                // Called without `poll_ready`: ask now, never wait.
                Ok(()) => ResponseFuture::called(self.inner.call(req)),
                Err(e) => ResponseFuture::rejected(e, self.on_rejected.clone()),
            },
            Phase::Refused => match self.refused.take() {
                Some(e) => ResponseFuture::rejected(e, self.on_rejected.clone()),
                None => ResponseFuture::called(self.inner.call(req)),
            },
            Phase::Waiting => {
                // Called before the wait was over: give the token back.
                if let Some(w) = self.waiting.take() {
                    self.limiter.cancel(w.tat, w.cost);
                }
                let e = RateLimited::new(self.limiter.name().clone(), Some(Duration::ZERO))
                    .with_quota(self.limiter.quota());
                ResponseFuture::rejected(e, self.on_rejected.clone())
            }
        }
    }
}
