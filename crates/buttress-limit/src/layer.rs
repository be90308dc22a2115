//! The tower layer and service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{BoxError, RateLimited};
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
pub struct RateLimitLayer {
    limiter: RateLimiter,
    mode: Mode,
}

impl RateLimitLayer {
    /// Rejects requests over `limiter`'s quota.
    pub fn new(limiter: RateLimiter) -> Self {
        Self {
            limiter,
            mode: Mode::Reject,
        }
    }

    /// Sets what an over-quota request does.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            limiter: self.limiter.clone(),
            mode: self.mode,
            state: Admission::Idle,
        }
    }
}

enum Admission {
    /// Nothing asked yet.
    Idle,
    /// A reservation is due after the sleep.
    Waiting {
        sleep: Pin<Box<Sleep>>,
        tat: u64,
        cost: u64,
    },
    /// A token is ours.
    Admitted,
    /// Refused; `call` returns the error.
    Refused(RateLimited),
}

/// A rate-limited service; made by [`RateLimitLayer`].
///
/// The limiter is asked in `poll_ready`: an admitted request holds its
/// token until `call`; a refused one is ready at once and `call` returns
/// the [`RateLimited`] error without reaching the inner service; in
/// waiting mode `poll_ready` waits for the reserved token. A clone shares
/// the limiter but not a held token, and a service dropped while waiting
/// gives its reservation back when nobody queued behind it.
pub struct RateLimitService<S> {
    inner: S,
    limiter: RateLimiter,
    mode: Mode,
    state: Admission,
}

impl<S: fmt::Debug> fmt::Debug for RateLimitService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitService")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<S: Clone> Clone for RateLimitService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
            mode: self.mode,
            state: Admission::Idle,
        }
    }
}

impl<S> Drop for RateLimitService<S> {
    fn drop(&mut self) {
        if let Admission::Waiting { tat, cost, .. } = self.state {
            self.limiter.cancel(tat, cost);
        }
    }
}

impl<S> RateLimitService<S> {
    fn ask(&self) -> Admission {
        match self.mode {
            Mode::Reject => match self.limiter.check() {
                Ok(()) => Admission::Admitted,
                Err(e) => Admission::Refused(e),
            },
            Mode::Wait(max) => match self.limiter.reserve(1, max) {
                Ok((wait, _, _)) if wait.is_zero() => Admission::Admitted,
                Ok((wait, tat, cost)) => Admission::Waiting {
                    sleep: Box::pin(tokio::time::sleep(wait)),
                    tat,
                    cost,
                },
                Err(e) => Admission::Refused(e),
            },
        }
    }
}

impl<S, Req> Service<Req> for RateLimitService<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            match &mut self.state {
                Admission::Idle => self.state = self.ask(),
                Admission::Waiting { sleep, .. } => {
                    ready!(sleep.as_mut().poll(cx));
                    self.state = Admission::Admitted;
                }
                Admission::Admitted => return self.inner.poll_ready(cx).map_err(Into::into),
                Admission::Refused(_) => return Poll::Ready(Ok(())),
            }
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let admission = match std::mem::replace(&mut self.state, Admission::Idle) {
            Admission::Idle => match self.limiter.check() {
                // Called without `poll_ready`: ask now, never wait.
                Ok(()) => Admission::Admitted,
                Err(e) => Admission::Refused(e),
            },
            other => other,
        };
        match admission {
            Admission::Refused(e) => ResponseFuture::rejected(e),
            Admission::Waiting { tat, cost, .. } => {
                // Called before the wait was over: give the token back.
                self.limiter.cancel(tat, cost);
                ResponseFuture::rejected(RateLimited::new(
                    self.limiter.name().clone(),
                    Some(Duration::ZERO),
                ))
            }
            _ => ResponseFuture::called(self.inner.call(req)),
        }
    }
}

pin_project! {
    /// The response future of [`RateLimitService`].
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Called { #[pin] future: F },
        Rejected { error: Option<RateLimited> },
    }
}

impl<F> ResponseFuture<F> {
    fn called(future: F) -> Self {
        Self {
            kind: Kind::Called { future },
        }
    }

    fn rejected(error: RateLimited) -> Self {
        Self {
            kind: Kind::Rejected { error: Some(error) },
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future } => future.poll(cx).map_err(Into::into),
            KindProj::Rejected { error } => Poll::Ready(Err(match error.take() {
                Some(e) => Box::new(e),
                None => "ResponseFuture polled after completion".into(),
            })),
        }
    }
}
