//! [`ShedLayer`]: load shedding while a gauge is paused.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_layer::Layer;
use tower_service::Service;

use crate::Priority;
use crate::combined::Pressure;
use crate::error::{BoxError, Overloaded};

/// Turns a refusal into the service's result.
pub trait OnShed<Response> {
    /// The result a refused request returns.
    fn on_shed(&self, overloaded: Overloaded) -> Result<Response, BoxError>;
}

/// Refused requests fail with a boxed [`Overloaded`] (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectWithError;

impl<Response> OnShed<Response> for RejectWithError {
    fn on_shed(&self, overloaded: Overloaded) -> Result<Response, BoxError> {
        Err(Box::new(overloaded))
    }
}

/// Refused requests are answered `503 Service Unavailable`, with
/// `Retry-After` (whole seconds, rounded up) when a hint is configured and
/// an empty (`Default`) body; the [`Overloaded`] is attached as an
/// extension.
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Http503;

#[cfg(feature = "http")]
impl<B: Default> OnShed<http::Response<B>> for Http503 {
    fn on_shed(&self, overloaded: Overloaded) -> Result<http::Response<B>, BoxError> {
        let mut response = buttress_core::service_unavailable(overloaded.retry_after());
        response.extensions_mut().insert(overloaded);
        Ok(response)
    }
}

/// What a paused gauge does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedMode {
    /// Refuse it at once.
    Reject,
    /// Wait up to this long for the gauge to flow, then refuse.
    Wait(Duration),
}

/// Sheds requests while a [`Pressure`] source (a [`Gauge`](crate::Gauge),
/// or an [`AnyGauge`](crate::AnyGauge)) is paused for their priority.
///
/// The priority comes from the request, through a closure (for example a
/// header); low-priority requests are shed first, at the gauge's lower
/// watermarks. Unlike tower's `load_shed`, which sheds whenever the inner
/// service is not ready *for any reason*, this sheds only on the signal
/// the service chose.
///
/// ```
/// use std::time::Duration;
/// use buttress_pressure::{Gauge, Priority, ShedLayer, ShedMode, Watermarks};
/// use tower::{ServiceBuilder, service_fn};
///
/// let queue = Gauge::builder("outbox", Watermarks::new(10_000, 8_000)?)
///     .low_priority(Watermarks::new(5_000, 4_000)?)
///     .build()?;
/// let svc = ServiceBuilder::new()
///     .layer(
///         ShedLayer::new(queue.clone(), ShedMode::Wait(Duration::from_millis(50)))
///             .priority(|req: &String| if req.starts_with("batch") { Priority::Low } else { Priority::Normal }),
///     )
///     .service(service_fn(|req: String| async move { Ok::<_, std::io::Error>(req) }));
/// # let _ = svc;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShedLayer<G, P = AllNormal, R = RejectWithError> {
    pressure: G,
    mode: ShedMode,
    priority: Arc<P>,
    on_shed: R,
}

/// Every request is normal priority: the default of [`ShedLayer`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AllNormal;

impl<G: Pressure> ShedLayer<G> {
    /// Sheds every request (normal priority) while `pressure` is paused.
    pub fn new(pressure: G, mode: ShedMode) -> ShedLayer<G> {
        ShedLayer {
            pressure,
            mode,
            priority: Arc::new(AllNormal),
            on_shed: RejectWithError,
        }
    }
}

impl<G, P, R> ShedLayer<G, P, R> {
    /// Takes each request's priority from `f`.
    pub fn priority<F>(self, f: F) -> ShedLayer<G, F, R> {
        ShedLayer {
            pressure: self.pressure,
            mode: self.mode,
            priority: Arc::new(f),
            on_shed: self.on_shed,
        }
    }

    /// What a shed request returns.
    pub fn on_shed<R2>(self, on_shed: R2) -> ShedLayer<G, P, R2> {
        ShedLayer {
            pressure: self.pressure,
            mode: self.mode,
            priority: self.priority,
            on_shed,
        }
    }

    /// Shed requests are answered `503` with `Retry-After`.
    #[cfg(feature = "http")]
    pub fn http(self) -> ShedLayer<G, P, Http503> {
        self.on_shed(Http503)
    }
}

impl<G: Clone, P, R: Clone> Clone for ShedLayer<G, P, R> {
    fn clone(&self) -> Self {
        ShedLayer {
            pressure: self.pressure.clone(),
            mode: self.mode,
            priority: self.priority.clone(),
            on_shed: self.on_shed.clone(),
        }
    }
}

impl<G: fmt::Debug, P, R> fmt::Debug for ShedLayer<G, P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShedLayer")
            .field("pressure", &self.pressure)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<S, G: Clone, P, R: Clone> Layer<S> for ShedLayer<G, P, R> {
    type Service = ShedService<S, G, P, R>;
    fn layer(&self, inner: S) -> Self::Service {
        ShedService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`ShedLayer`].
pub struct ShedService<S, G, P = AllNormal, R = RejectWithError> {
    inner: S,
    layer: ShedLayer<G, P, R>,
}

impl<S: Clone, G: Clone, P, R: Clone> Clone for ShedService<S, G, P, R> {
    fn clone(&self) -> Self {
        ShedService {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, G: fmt::Debug, P, R> fmt::Debug for ShedService<S, G, P, R> {
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

impl<S, G, P, R, Req> Service<Req> for ShedService<S, G, P, R>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    Req: Send + 'static,
    G: Pressure,
    P: PriorityOf<Req>,
    R: OnShed<S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = future::ResponseFuture<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let priority = self.layer.priority.priority_of(&request);
        let pressure = &self.layer.pressure;
        if !pressure.is_paused_for(priority) {
            return future::ResponseFuture::called(self.inner.call(request));
        }
        match self.layer.mode {
            ShedMode::Reject => {
                pressure.count_shed(priority);
                future::ResponseFuture::done(
                    self.layer.on_shed.on_shed(pressure.overloaded(priority)),
                )
            }
            ShedMode::Wait(max) => {
                // The ready inner service stays here for the next request:
                // a waiting request must not hold a slot (of a Buffer or a
                // ConcurrencyLimit inside) that flowing requests need. It
                // waits with a clone, and asks that clone for readiness
                // once the gauge flows.
                let mut svc = self.inner.clone();
                let pressure = pressure.clone();
                let shed = self.layer.on_shed.on_shed(pressure.overloaded(priority));
                future::ResponseFuture::waiting(Box::pin(async move {
                    let flowing = tokio::time::timeout(max, pressure.flowing_for(priority)).await;
                    if flowing.is_ok() {
                        std::future::poll_fn(|cx| svc.poll_ready(cx))
                            .await
                            .map_err(Into::into)?;
                        svc.call(request).await.map_err(Into::into)
                    } else {
                        pressure.count_shed(priority);
                        shed
                    }
                }))
            }
        }
    }
}

/// The response future of [`ShedService`].
pub(crate) mod future {
    use super::*;

    type Waiting<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

    pin_project_lite::pin_project! {
        /// The inner future, an answer, or a wait for the gauge. (Its
        /// fields are private in all but name: pin-project-lite cannot
        /// document them.)
        #[project = Projection]
        #[allow(missing_docs)]
        pub enum ResponseFuture<F, T> {
            /// Passed to the inner service.
            Called { #[pin] inner: F },
            /// Answered at once (shed).
            Done { answer: Option<Result<T, BoxError>> },
            /// Waiting for the gauge to flow.
            Waiting { wait: Waiting<T> },
        }
    }

    impl<F, T> ResponseFuture<F, T> {
        pub(super) fn called(inner: F) -> Self {
            ResponseFuture::Called { inner }
        }
        pub(super) fn done(answer: Result<T, BoxError>) -> Self {
            ResponseFuture::Done {
                answer: Some(answer),
            }
        }
        pub(super) fn waiting(wait: Waiting<T>) -> Self {
            ResponseFuture::Waiting { wait }
        }
    }

    impl<F, T> fmt::Debug for ResponseFuture<F, T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ResponseFuture").finish_non_exhaustive()
        }
    }

    impl<F, T, E> Future for ResponseFuture<F, T>
    where
        F: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        type Output = Result<T, BoxError>;

        #[inline]
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            match self.project() {
                Projection::Called { inner } => inner.poll(cx).map_err(Into::into),
                Projection::Done { answer } => Poll::Ready(
                    answer
                        .take()
                        .unwrap_or_else(|| Err("polled after completion".into())),
                ),
                Projection::Waiting { wait } => wait.as_mut().poll(cx),
            }
        }
    }
}
