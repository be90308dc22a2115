//! The tower service.

use std::task::{Context, Poll};

use buttress_core::{Classify, OnReject};
use tower_service::Service;

use crate::breaker::{CircuitBreaker, Permit};
use crate::error::Rejected;
use crate::future::ResponseFuture;

/// A service behind a [`CircuitBreaker`]; made by
/// [`CircuitBreakerLayer`](crate::CircuitBreakerLayer).
///
/// Unless the breaker is closed, it is asked in `poll_ready`, before the
/// inner service: a refused call is ready at once (the rejection is returned
/// by `call`), so callers never wait on a busy inner service only to be
/// refused, and a refused call never reaches the inner service. A probe
/// admitted there holds its permit until `call`; a service dropped in
/// between gives it back (counted as ignored). In the closed state the
/// permit is taken in `call`. The call is made on the very service that was
/// polled ready, never on a fresh clone; clones share the breaker but not a
/// held permit.
#[derive(Debug)]
pub struct CircuitBreakerService<S, C, R> {
    inner: S,
    breaker: CircuitBreaker,
    classifier: C,
    on_rejected: R,
    /// The breaker's answer, taken in `poll_ready` and used by `call`.
    admission: Option<Result<Permit, Rejected>>,
    /// Whether `admission` is set.
    held: bool,
}

impl<S: Clone, C: Clone, R: Clone> Clone for CircuitBreakerService<S, C, R> {
    /// A clone shares the breaker, but not a permit this service holds: it
    /// must be polled ready itself.
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            breaker: self.breaker.clone(),
            classifier: self.classifier.clone(),
            on_rejected: self.on_rejected.clone(),
            admission: None,
            held: false,
        }
    }
}

impl<S, C, R> CircuitBreakerService<S, C, R> {
    pub(crate) fn new(inner: S, breaker: CircuitBreaker, classifier: C, on_rejected: R) -> Self {
        Self {
            inner,
            breaker,
            classifier,
            on_rejected,
            admission: None,
            held: false,
        }
    }

    /// The breaker.
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::builder("db").build()?;
    /// let svc = breaker
    ///     .layer()
    ///     .layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
    /// assert_eq!(svc.breaker().state(), State::Closed);
    /// svc.breaker().force_open(); // the breaker the layer was made from
    /// assert_eq!(breaker.state(), State::ForcedOpen);
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The inner service.
    ///
    /// ```
    /// use tower::{Layer, Service, ServiceExt};
    /// use buttress_breaker::CircuitBreaker;
    ///
    /// # use std::convert::Infallible;
    /// # use std::future::{Ready, ready};
    /// # use std::task::{Context, Poll};
    /// /// Answers each call with how many calls it has answered.
    /// #[derive(Debug, Default)]
    /// struct Counter {
    ///     calls: u32,
    /// }
    /// # impl tower::Service<()> for Counter {
    /// #     type Response = u32;
    /// #     type Error = Infallible;
    /// #     type Future = Ready<Result<u32, Infallible>>;
    /// #     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
    /// #         Poll::Ready(Ok(()))
    /// #     }
    /// #     fn call(&mut self, _: ()) -> Self::Future {
    /// #         self.calls += 1;
    /// #         ready(Ok(self.calls))
    /// #     }
    /// # }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let breaker = CircuitBreaker::builder("db").build().unwrap();
    /// let mut svc = breaker.layer().layer(Counter::default());
    /// svc.ready().await.unwrap().call(()).await.unwrap();
    /// svc.ready().await.unwrap().call(()).await.unwrap();
    /// assert_eq!(svc.get_ref().calls, 2);
    /// # });
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    ///
    /// ```
    /// use tower::{Layer, Service, ServiceExt};
    /// use buttress_breaker::CircuitBreaker;
    ///
    /// # use std::convert::Infallible;
    /// # use std::future::{Ready, ready};
    /// # use std::task::{Context, Poll};
    /// /// Answers each call with how many calls it has answered.
    /// #[derive(Debug, Default)]
    /// struct Counter {
    ///     calls: u32,
    /// }
    /// # impl tower::Service<()> for Counter {
    /// #     type Response = u32;
    /// #     type Error = Infallible;
    /// #     type Future = Ready<Result<u32, Infallible>>;
    /// #     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
    /// #         Poll::Ready(Ok(()))
    /// #     }
    /// #     fn call(&mut self, _: ()) -> Self::Future {
    /// #         self.calls += 1;
    /// #         ready(Ok(self.calls))
    /// #     }
    /// # }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let breaker = CircuitBreaker::builder("db").build().unwrap();
    /// let mut svc = breaker.layer().layer(Counter::default());
    /// svc.get_mut().calls = 41; // change the inner service in place
    /// assert_eq!(svc.ready().await.unwrap().call(()).await.unwrap(), 42);
    /// # });
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    ///
    /// ```
    /// use tower::{Layer, Service, ServiceExt};
    /// use buttress_breaker::CircuitBreaker;
    ///
    /// # use std::convert::Infallible;
    /// # use std::future::{Ready, ready};
    /// # use std::task::{Context, Poll};
    /// /// Answers each call with how many calls it has answered.
    /// #[derive(Debug, Default)]
    /// struct Counter {
    ///     calls: u32,
    /// }
    /// # impl tower::Service<()> for Counter {
    /// #     type Response = u32;
    /// #     type Error = Infallible;
    /// #     type Future = Ready<Result<u32, Infallible>>;
    /// #     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
    /// #         Poll::Ready(Ok(()))
    /// #     }
    /// #     fn call(&mut self, _: ()) -> Self::Future {
    /// #         self.calls += 1;
    /// #         ready(Ok(self.calls))
    /// #     }
    /// # }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let breaker = CircuitBreaker::builder("db").build().unwrap();
    /// let mut svc = breaker.layer().layer(Counter::default());
    /// svc.ready().await.unwrap().call(()).await.unwrap();
    /// let counter: Counter = svc.into_inner(); // the breaker is left behind
    /// assert_eq!(counter.calls, 1);
    /// assert_eq!(breaker.snapshot().calls, 1); // and kept its count
    /// # });
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, R> CircuitBreakerService<S, C, R> {
    /// `call` with the answer `poll_ready` took (the breaker was not
    /// closed): kept out of line so the closed path stays short.
    #[inline(never)]
    fn call_held<Req>(&mut self, req: Req) -> ResponseFuture<S::Future, C, S::Response, R::Error>
    where
        S: Service<Req>,
        C: Clone,
        R: OnReject<Rejected, S::Response, S::Error>,
    {
        self.held = false;
        match self.admission.take() {
            Some(Ok(permit)) => {
                // Time the call itself, not the wait for readiness.
                let start = self.breaker.start_timer();
                ResponseFuture::called(self.inner.call(req), permit, start, self.classifier.clone())
            }
            Some(Err(rejected)) => ResponseFuture::rejected(self.on_rejected.on_reject(rejected)),
            None => match self.breaker.try_acquire_owned() {
                Ok(permit) => ResponseFuture::called(
                    self.inner.call(req),
                    permit,
                    self.breaker.start_timer(),
                    self.classifier.clone(),
                ),
                Err(rejected) => ResponseFuture::rejected(self.on_rejected.on_reject(rejected)),
            },
        }
    }
}

impl<S, Req, C, R> Service<Req> for CircuitBreakerService<S, C, R>
where
    S: Service<Req>,
    C: Classify<S::Response, S::Error> + Clone,
    R: OnReject<Rejected, S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = ResponseFuture<S::Future, C, S::Response, R::Error>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // In the closed state the permit is taken in `call` (the hot path
        // stays a few atomic operations); otherwise ask now, so a refused
        // call does not wait on the inner service.
        if self.held || !self.breaker.state().admits_all() {
            self.held = true;
            let admission = self
                .admission
                .get_or_insert_with(|| self.breaker.try_acquire_owned());
            if admission.is_err() {
                // Refused: ready at once; `call` returns the rejection.
                return Poll::Ready(Ok(()));
            }
        }
        match self.inner.poll_ready(cx) {
            Poll::Ready(Err(e)) => {
                self.held = false;
                self.admission = None; // the permit goes back as ignored
                Poll::Ready(Err(R::Error::from(e)))
            }
            other => other.map_err(R::Error::from),
        }
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        if self.held {
            return self.call_held(req);
        }
        // Closed at `poll_ready` (or no `poll_ready` at all): ask now.
        match self.breaker.try_acquire_owned() {
            Ok(permit) => ResponseFuture::called(
                self.inner.call(req),
                permit,
                self.breaker.start_timer(),
                self.classifier.clone(),
            ),
            Err(rejected) => ResponseFuture::rejected(self.on_rejected.on_reject(rejected)),
        }
    }
}
