//! [`ExecutorLayer`]: requests wait in the executor's bounded priority
//! queue, and run as tasks or in place.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use buttress_core::{OnReject, RejectWithError};

use crate::error::ExecutorError;
use crate::executor::Executor;
use crate::future::{InPlaceFuture, ResponseFuture};

/// How [`ExecutorLayer`] runs a request: the layer's third parameter.
///
/// * [`Task`](mode::Task) (the default): each request runs as a task on
///   the executor, which owns it until it ends.
/// * [`InPlace`](mode::InPlace) ([`ExecutorLayer::in_place`]): each
///   request runs in its caller's task, holding one of the executor's
///   running slots; no task is spawned.
pub mod mode {
    /// Each request runs as a task on the executor.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Task;

    /// Each request runs in place, in its caller's task, holding one of
    /// the executor's running slots.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct InPlace;
}

/// Runs each request through an [`Executor`]: it waits in the bounded
/// priority queue (priority from `priority(&request)`, higher first), runs
/// when the bulkhead has room, and is shed when the queue is full. A
/// request whose response future is dropped is cancelled.
///
/// By default each request runs as a task on the executor. With
/// [`in_place`](ExecutorLayer::in_place) it runs in its caller's task
/// instead, holding one of the executor's running slots: the same bulkhead,
/// queue, priorities, refusals, timeout, history and metrics, without a
/// spawn (see [`in_place`](ExecutorLayer::in_place) for when to pick
/// which).
///
/// Every way the executor can fail a request (queue full, shutting down,
/// task timed out, cancelled or panicked) reaches the rejection handler as
/// an [`ExecutorError`]: by default ([`RejectWithError`]) it fails the call
/// inside tower's `BoxError`; [`http`](ExecutorLayer::http) answers `503`
/// (queue full, shutting down), `504` (timed out) or `500` instead and keeps
/// the inner service's error.
///
/// The service is always ready: the queue is where requests wait. The
/// inner service is cloned into each task and asked for readiness there,
/// inside the task's slot and timeout, so use it with services whose
/// clones share readiness (or are always ready).
///
/// ```
/// use buttress_executor::{Executor, ExecutorConfig, ExecutorLayer};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let executor = Executor::new("chat", ExecutorConfig::default().max_running(2))?;
/// let svc = ServiceBuilder::new()
///     .layer(ExecutorLayer::new(executor, |req: &String| if req.starts_with("vip") { 9 } else { 1 }))
///     .service(service_fn(|req: String| async move { Ok::<_, std::io::Error>(req.len()) }));
/// assert_eq!(svc.oneshot("vip hello".to_owned()).await?, 9);
/// # Ok(()) }
/// ```
pub struct ExecutorLayer<P, R = RejectWithError, M = mode::Task> {
    executor: Executor,
    priority: Arc<P>,
    on_rejected: R,
    mode: PhantomData<fn() -> M>,
}

impl<P> ExecutorLayer<P> {
    /// Queues requests on `executor` at the priority `priority` gives
    /// (higher runs first).
    ///
    /// ```
    /// use buttress_executor::{Executor, ExecutorConfig, ExecutorLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default())?;
    /// let layer = ExecutorLayer::new(executor, |req: &String| if req.starts_with("vip") { 9 } else { 1 });
    /// # let _ = layer;
    /// # Ok(()) }
    /// ```
    pub fn new(executor: Executor, priority: P) -> Self {
        ExecutorLayer {
            executor,
            priority: Arc::new(priority),
            on_rejected: RejectWithError,
            mode: PhantomData,
        }
    }
}

impl<P, R, M> ExecutorLayer<P, R, M> {
    /// Uses `on_rejected` (any [`OnReject`] handler) to answer requests
    /// the executor failed; it decides the service's error type.
    ///
    /// ```
    /// use buttress_executor::{Executor, ExecutorConfig, ExecutorLayer, RejectWithError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default())?;
    /// let layer = ExecutorLayer::new(executor, |_: &String| 1).on_rejected(RejectWithError); // the default
    /// # let _ = layer;
    /// # Ok(()) }
    /// ```
    pub fn on_rejected<R2>(self, on_rejected: R2) -> ExecutorLayer<P, R2, M> {
        ExecutorLayer {
            executor: self.executor,
            priority: self.priority,
            on_rejected,
            mode: PhantomData,
        }
    }

    /// Runs each request in place: in its caller's task, holding one of
    /// the executor's running slots, instead of as a task of its own.
    ///
    /// A request that finds a slot free and nothing queued takes it at
    /// once, allocating nothing; otherwise it waits in the executor's
    /// queue beside its tasks, in the same order (priority, then first
    /// in first out, with aging), and is refused the same way when the
    /// queue is full (`QueueFull`) or the executor is shutting down.
    /// Requests in place and tasks share the one bulkhead: `max_running`
    /// counts both. The executor's timeout applies from the request's
    /// first poll in its slot; its panics are caught and answered like a
    /// task's; it is counted in the snapshot, the history and the metrics
    /// like a task. The rejection handler is the layer's, as in task mode.
    ///
    /// What differs is who owns the work. The caller's task polls it, so
    /// it stops when the caller drops its response future (its slot comes
    /// back at once). A shutdown waits for it while draining, like a task;
    /// at the deadline the executor cannot stop its caller's task, so it
    /// takes the slot back, records the request as cancelled, and wakes
    /// it: the request answers `Cancelled` (a `ShuttingDown` rejection) at
    /// its next poll. The inner service need not be `Send` nor `'static`.
    ///
    /// Pick in place when a request only needs "at most N at once, refuse
    /// when the queue is full, higher priority first while waiting": a
    /// request handler behind a bulkhead. Pick tasks (the default) when
    /// the work must go on after its caller went away, or must be stopped
    /// and accounted for by the executor itself at a shutdown's deadline.
    /// In place costs no spawn and, when a slot is free, no allocation:
    /// a fraction of a task's cost (the benchmarks are in the guide).
    ///
    /// ```
    /// use buttress_executor::{Executor, ExecutorConfig, ExecutorLayer};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// let executor = Executor::new("api", ExecutorConfig::default().max_running(16).max_queued(100))?;
    /// let svc = ServiceBuilder::new()
    ///     .layer(ExecutorLayer::new(executor.clone(), |req: &String| if req.starts_with("vip") { 9 } else { 1 }).in_place())
    ///     .service(service_fn(|req: String| async move { Ok::<_, std::io::Error>(req.len()) }));
    /// assert_eq!(svc.oneshot("vip hello".to_owned()).await?, 9);
    /// // Counted like a task.
    /// assert_eq!(executor.snapshot().counters.ok, 1);
    /// # Ok(()) }
    /// ```
    pub fn in_place(self) -> ExecutorLayer<P, R, mode::InPlace> {
        ExecutorLayer {
            executor: self.executor,
            priority: self.priority,
            on_rejected: self.on_rejected,
            mode: PhantomData,
        }
    }

    /// Failed requests are answered with an HTTP status (`503`, `504` or
    /// `500`), keeping the inner service's error.
    ///
    /// ```
    /// use buttress_executor::{Executor, ExecutorConfig, ExecutorLayer};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default().max_running(1).max_queued(0))?;
    /// let _busy = executor.submit(0, std::future::pending::<()>())?; // the only slot
    /// let svc = ServiceBuilder::new()
    ///     .layer(ExecutorLayer::new(executor, |_: &http::Request<()>| 1).http())
    ///     .service(service_fn(|_: http::Request<()>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    ///     }));
    /// let response = svc.oneshot(http::Request::new(())).await?;
    /// assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE); // queue full
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn http(self) -> ExecutorLayer<P, buttress_core::HttpStatus, M> {
        self.on_rejected(buttress_core::HttpStatus)
    }
}

impl<P, R: Clone, M> Clone for ExecutorLayer<P, R, M> {
    fn clone(&self) -> Self {
        ExecutorLayer {
            executor: self.executor.clone(),
            priority: self.priority.clone(),
            on_rejected: self.on_rejected.clone(),
            mode: PhantomData,
        }
    }
}

impl<P, R, M> fmt::Debug for ExecutorLayer<P, R, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorLayer")
            .field("executor", &self.executor.name())
            .field("mode", &std::any::type_name::<M>().rsplit("::").next())
            .finish_non_exhaustive()
    }
}

impl<S, P, R: Clone, M> Layer<S> for ExecutorLayer<P, R, M> {
    type Service = ExecutorService<S, P, R, M>;
    fn layer(&self, inner: S) -> Self::Service {
        ExecutorService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`ExecutorLayer`]; `M` is its [`mode`].
pub struct ExecutorService<S, P, R = RejectWithError, M = mode::Task> {
    inner: S,
    layer: ExecutorLayer<P, R, M>,
}

impl<S: Clone, P, R: Clone, M> Clone for ExecutorService<S, P, R, M> {
    fn clone(&self) -> Self {
        ExecutorService {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, P, R, M> fmt::Debug for ExecutorService<S, P, R, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorService")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, P, R, Req> Service<Req> for ExecutorService<S, P, R, mode::Task>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Send + 'static,
    P: Fn(&Req) -> u8,
    R: OnReject<ExecutorError, S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = ResponseFuture<S::Response, S::Error, R>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), R::Error>> {
        // The queue is where requests wait; the inner service is asked for
        // readiness inside each task.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let priority = (self.layer.priority)(&request);
        let mut svc = self.inner.clone();
        let submitted = self.layer.executor.submit_try(priority, async move {
            std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
            svc.call(request).await
        });
        match submitted {
            Ok(handle) => ResponseFuture::waiting(handle, self.layer.on_rejected.clone()),
            Err(e) => {
                ResponseFuture::done(self.layer.on_rejected.on_reject(ExecutorError::Submit(e)))
            }
        }
    }
}

impl<S, P, R, Req> Service<Req> for ExecutorService<S, P, R, mode::InPlace>
where
    S: Service<Req> + Clone,
    P: Fn(&Req) -> u8,
    R: OnReject<ExecutorError, S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = InPlaceFuture<S, Req, R>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), R::Error>> {
        // As in task mode: the queue is where requests wait; the inner
        // service is asked for readiness once the request holds a slot.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let priority = (self.layer.priority)(&request);
        let executor = &self.layer.executor.inner;
        match executor.admit_in_place(priority) {
            Ok(seat) => InPlaceFuture::admitted(
                seat,
                executor.clone(),
                self.inner.clone(),
                request,
                self.layer.on_rejected.clone(),
            ),
            Err(e) => {
                InPlaceFuture::refused(ExecutorError::Submit(e), self.layer.on_rejected.clone())
            }
        }
    }
}
