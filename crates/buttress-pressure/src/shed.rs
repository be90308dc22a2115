//! [`ShedLayer`]: load shedding while a gauge is paused.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_layer::Layer;
use tower_service::Service;

use buttress_core::{Answer, OnReject, RejectWithError};

use crate::Priority;
use crate::combined::Pressure;
use crate::error::Overloaded;

/// A paused gauge refuses a request at once: the default mode of
/// [`ShedLayer`]. It asks nothing of the inner service, its futures or its
/// requests (no `Clone`, `Send` or `'static`), like tower's `LoadShed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Immediate;

/// A paused gauge makes a request wait up to this long for it to flow,
/// then refuses it; set by [`ShedLayer::wait`]. The wait runs on a clone
/// of the inner service in a boxed future, so this mode needs the inner
/// service to be `Clone + Send + 'static` and its futures, responses and
/// requests `Send + 'static`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitUpTo(pub Duration);

/// Sheds requests while a [`Pressure`] source (a [`Gauge`](crate::Gauge),
/// or an [`AnyGauge`](crate::AnyGauge)) is paused for their priority.
///
/// The priority comes from the request, through a closure (for example a
/// header); low-priority requests are shed first, at the gauge's lower
/// watermarks. Unlike tower's `load_shed`, which sheds whenever the inner
/// service is not ready *for any reason*, this sheds only on the signal
/// the service chose.
///
/// A shed request goes to the rejection handler (`R`, default
/// [`RejectWithError`]: tower's `BoxError` holding an [`Overloaded`]);
/// `.http()` (feature `http`) answers `503` instead and keeps the inner
/// service's error. The mode (`M`) is [`Immediate`] unless
/// [`wait`](ShedLayer::wait) sets [`WaitUpTo`].
///
/// ```
/// use std::time::Duration;
/// use buttress_pressure::{Gauge, Priority, ShedLayer, Watermarks};
/// use tower::{ServiceBuilder, service_fn};
///
/// let queue = Gauge::builder("outbox", Watermarks::new(10_000, 8_000)?)
///     .low_priority(Watermarks::new(5_000, 4_000)?)
///     .build()?;
/// let svc = ServiceBuilder::new()
///     .layer(
///         ShedLayer::new(queue.clone())
///             .wait(Duration::from_millis(50))
///             .priority(|req: &String| if req.starts_with("batch") { Priority::Low } else { Priority::Normal }),
///     )
///     .service(service_fn(|req: String| async move { Ok::<_, std::io::Error>(req) }));
/// # let _ = svc;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShedLayer<G, P = AllNormal, R = RejectWithError, M = Immediate> {
    pressure: G,
    mode: M,
    priority: Arc<P>,
    on_rejected: R,
}

/// Every request is normal priority: the default of [`ShedLayer`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AllNormal;

impl<G: Pressure> ShedLayer<G> {
    /// Sheds every request (normal priority) at once while `pressure` is
    /// paused.
    ///
    /// ```
    /// use buttress_pressure::{Gauge, Overloaded, ShedLayer, Watermarks};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = Gauge::builder("queue", Watermarks::new(10, 5)?).build()?;
    /// let svc = ServiceBuilder::new()
    ///     .layer(ShedLayer::new(queue.clone()))
    ///     .service(service_fn(|req: u32| async move { Ok::<_, std::io::Error>(req) }));
    /// assert_eq!(svc.clone().oneshot(1).await.unwrap(), 1);
    /// queue.set(10);
    /// let shed = svc.oneshot(2).await.unwrap_err();
    /// assert!(shed.downcast_ref::<Overloaded>().is_some());
    /// # Ok(()) }
    /// ```
    pub fn new(pressure: G) -> ShedLayer<G> {
        ShedLayer {
            pressure,
            mode: Immediate,
            priority: Arc::new(AllNormal),
            on_rejected: RejectWithError,
        }
    }
}

impl<G, P, R, M> ShedLayer<G, P, R, M> {
    /// Takes each request's priority from `f`.
    ///
    /// ```
    /// use buttress_pressure::{Gauge, Priority, ShedLayer, Watermarks};
    ///
    /// let queue = Gauge::builder("queue", Watermarks::new(100, 50)?)
    ///     .low_priority(Watermarks::new(60, 30)?)
    ///     .build()?;
    /// let layer = ShedLayer::new(queue).priority(|req: &String| {
    ///     if req.starts_with("batch") { Priority::Low } else { Priority::Normal }
    /// });
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn priority<F>(self, f: F) -> ShedLayer<G, F, R, M> {
        ShedLayer {
            pressure: self.pressure,
            mode: self.mode,
            priority: Arc::new(f),
            on_rejected: self.on_rejected,
        }
    }

    /// Uses `on_rejected` (any [`OnReject`] handler) to answer shed
    /// requests; it decides the service's error type.
    ///
    /// ```
    /// use buttress_pressure::{Gauge, RejectWithError, ShedLayer, Watermarks};
    ///
    /// let queue = Gauge::builder("queue", Watermarks::new(10, 5)?).build()?;
    /// let layer = ShedLayer::new(queue).on_rejected(RejectWithError); // the default
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_rejected<R2>(self, on_rejected: R2) -> ShedLayer<G, P, R2, M> {
        ShedLayer {
            pressure: self.pressure,
            mode: self.mode,
            priority: self.priority,
            on_rejected,
        }
    }

    /// A request that finds the gauge paused waits up to `max` for it to
    /// flow before it is shed (see [`WaitUpTo`] for what this mode asks
    /// of the inner service).
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_pressure::{Gauge, ShedLayer, Watermarks};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = Gauge::builder("queue", Watermarks::new(10, 5)?).build()?;
    /// queue.set(10);
    /// let svc = ServiceBuilder::new()
    ///     .layer(ShedLayer::new(queue.clone()).wait(Duration::from_secs(1)))
    ///     .service(service_fn(|req: u32| async move { Ok::<_, std::io::Error>(req) }));
    /// let consumer = queue.clone();
    /// tokio::spawn(async move { consumer.set(0) });
    /// assert_eq!(svc.oneshot(7).await.unwrap(), 7); // waited for the gauge, not shed
    /// # Ok(()) }
    /// ```
    pub fn wait(self, max: Duration) -> ShedLayer<G, P, R, WaitUpTo> {
        ShedLayer {
            pressure: self.pressure,
            mode: WaitUpTo(max),
            priority: self.priority,
            on_rejected: self.on_rejected,
        }
    }

    /// Shed requests are answered `503` with `Retry-After`, keeping the
    /// inner service's error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_pressure::{Gauge, ShedLayer, Watermarks};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = Gauge::builder("queue", Watermarks::new(10, 5)?)
    ///     .retry_after(Duration::from_secs(2))
    ///     .build()?;
    /// queue.set(10);
    /// let svc = ServiceBuilder::new()
    ///     .layer(ShedLayer::new(queue).http())
    ///     .service(service_fn(|_: http::Request<()>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    ///     }));
    /// let response = svc.oneshot(http::Request::new(())).await?;
    /// assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    /// assert_eq!(response.headers()[http::header::RETRY_AFTER], "2");
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn http(self) -> ShedLayer<G, P, buttress_core::HttpStatus, M> {
        self.on_rejected(buttress_core::HttpStatus)
    }
}

impl<G: Clone, P, R: Clone, M: Clone> Clone for ShedLayer<G, P, R, M> {
    fn clone(&self) -> Self {
        ShedLayer {
            pressure: self.pressure.clone(),
            mode: self.mode.clone(),
            priority: self.priority.clone(),
            on_rejected: self.on_rejected.clone(),
        }
    }
}

impl<G: fmt::Debug, P, R, M: fmt::Debug> fmt::Debug for ShedLayer<G, P, R, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShedLayer")
            .field("pressure", &self.pressure)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<S, G: Clone, P, R: Clone, M: Clone> Layer<S> for ShedLayer<G, P, R, M> {
    type Service = ShedService<S, G, P, R, M>;
    fn layer(&self, inner: S) -> Self::Service {
        ShedService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`ShedLayer`].
pub struct ShedService<S, G, P = AllNormal, R = RejectWithError, M = Immediate> {
    inner: S,
    layer: ShedLayer<G, P, R, M>,
}

impl<S: Clone, G: Clone, P, R: Clone, M: Clone> Clone for ShedService<S, G, P, R, M> {
    fn clone(&self) -> Self {
        ShedService {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, G: fmt::Debug, P, R, M: fmt::Debug> fmt::Debug for ShedService<S, G, P, R, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShedService")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

/// How a request's priority is read.
pub trait PriorityOf<Req> {
    /// The priority of `request`.
    fn priority_of(&self, request: &Req) -> Priority;
}

impl<Req> PriorityOf<Req> for AllNormal {
    fn priority_of(&self, _: &Req) -> Priority {
        Priority::Normal
    }
}

impl<Req, F: Fn(&Req) -> Priority> PriorityOf<Req> for F {
    fn priority_of(&self, request: &Req) -> Priority {
        self(request)
    }
}

impl<S, G, P, R, Req> Service<Req> for ShedService<S, G, P, R, Immediate>
where
    S: Service<Req>,
    G: Pressure,
    P: PriorityOf<Req>,
    R: OnReject<Overloaded, S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = future::ResponseFuture<S::Future, S::Response, R::Error>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), R::Error>> {
        self.inner.poll_ready(cx).map_err(R::Error::from)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let priority = self.layer.priority.priority_of(&request);
        let pressure = &self.layer.pressure;
        if !pressure.is_paused_for(priority) {
            return future::ResponseFuture::called(self.inner.call(request));
        }
        pressure.count_shed(priority);
        future::ResponseFuture::done(
            self.layer
                .on_rejected
                .on_reject(pressure.overloaded(priority)),
        )
    }
}

impl<S, G, P, R, Req> Service<Req> for ShedService<S, G, P, R, WaitUpTo>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    Req: Send + 'static,
    G: Pressure,
    P: PriorityOf<Req>,
    R: OnReject<Overloaded, S::Response, S::Error>,
    R::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = future::ResponseFuture<S::Future, S::Response, R::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), R::Error>> {
        self.inner.poll_ready(cx).map_err(R::Error::from)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let priority = self.layer.priority.priority_of(&request);
        let pressure = &self.layer.pressure;
        if !pressure.is_paused_for(priority) {
            return future::ResponseFuture::called(self.inner.call(request));
        }
        let WaitUpTo(max) = self.layer.mode;
        // The ready inner service stays here for the next request: a
        // waiting request must not hold a slot (of a Buffer or a
        // ConcurrencyLimit inside) that flowing requests need. It waits
        // with a clone, and asks that clone for readiness once the gauge
        // flows.
        let mut svc = self.inner.clone();
        let pressure = pressure.clone();
        let shed = self
            .layer
            .on_rejected
            .on_reject(pressure.overloaded(priority));
        future::ResponseFuture::waiting(Box::pin(async move {
            let flowing = tokio::time::timeout(max, pressure.flowing_for(priority)).await;
            if flowing.is_ok() {
                std::future::poll_fn(|cx| svc.poll_ready(cx))
                    .await
                    .map_err(R::Error::from)?;
                svc.call(request).await.map_err(R::Error::from)
            } else {
                pressure.count_shed(priority);
                shed
            }
        }))
    }
}

/// The response future of [`ShedService`].
pub(crate) mod future {
    use super::*;

    type Waiting<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

    pin_project_lite::pin_project! {
        /// The inner future, the answer to a shed request, or a wait for
        /// the gauge.
        ///
        /// Its parameters are the inner future, the response and the
        /// service's error type (the rejection handler's).
        pub struct ResponseFuture<F, T, E> {
            #[pin]
            kind: Kind<F, T, E>,
        }
    }

    pin_project_lite::pin_project! {
        #[project = KindProj]
        enum Kind<F, T, E> {
            Called { #[pin] inner: F },
            Done { answer: Answer<Result<T, E>> },
            Waiting { wait: Waiting<T, E> },
        }
    }

    impl<F, T, E> ResponseFuture<F, T, E> {
        pub(super) fn called(inner: F) -> Self {
            Self {
                kind: Kind::Called { inner },
            }
        }
        pub(super) fn done(answer: Result<T, E>) -> Self {
            Self {
                kind: Kind::Done {
                    answer: Answer::new(answer),
                },
            }
        }
        pub(super) fn waiting(wait: Waiting<T, E>) -> Self {
            Self {
                kind: Kind::Waiting { wait },
            }
        }
    }

    impl<F, T, E> fmt::Debug for ResponseFuture<F, T, E> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ResponseFuture").finish_non_exhaustive()
        }
    }

    impl<F, T, E, E2> Future for ResponseFuture<F, T, E2>
    where
        F: Future<Output = Result<T, E>>,
        E2: From<E>,
    {
        type Output = Result<T, E2>;

        #[inline]
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            match self.project().kind.project() {
                KindProj::Called { inner } => inner.poll(cx).map_err(E2::from),
                KindProj::Done { answer } => answer.take(),
                KindProj::Waiting { wait } => wait.as_mut().poll(cx),
            }
        }
    }
}
