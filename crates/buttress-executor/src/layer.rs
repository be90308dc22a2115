//! [`ExecutorLayer`]: requests wait in the executor's bounded priority
//! queue.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use buttress_core::{OnReject, RejectWithError};

use crate::error::ExecutorError;
use crate::executor::Executor;
use crate::future::ResponseFuture;

/// Runs each request through an [`Executor`]: it waits in the bounded
/// priority queue (priority from `priority(&request)`, higher first), runs
/// when the bulkhead has room, and is shed when the queue is full. A
/// request whose response future is dropped is cancelled.
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
pub struct ExecutorLayer<P, R = RejectWithError> {
    executor: Executor,
    priority: Arc<P>,
    on_rejected: R,
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
        }
    }
}

impl<P, R> ExecutorLayer<P, R> {
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
    pub fn on_rejected<R2>(self, on_rejected: R2) -> ExecutorLayer<P, R2> {
        ExecutorLayer {
            executor: self.executor,
            priority: self.priority,
            on_rejected,
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
    pub fn http(self) -> ExecutorLayer<P, buttress_core::HttpStatus> {
        self.on_rejected(buttress_core::HttpStatus)
    }
}

impl<P, R: Clone> Clone for ExecutorLayer<P, R> {
    fn clone(&self) -> Self {
        ExecutorLayer {
            executor: self.executor.clone(),
            priority: self.priority.clone(),
            on_rejected: self.on_rejected.clone(),
        }
    }
}

impl<P, R> fmt::Debug for ExecutorLayer<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorLayer")
            .field("executor", &self.executor.name())
            .finish_non_exhaustive()
    }
}

impl<S, P, R: Clone> Layer<S> for ExecutorLayer<P, R> {
    type Service = ExecutorService<S, P, R>;
    fn layer(&self, inner: S) -> Self::Service {
        ExecutorService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`ExecutorLayer`].
pub struct ExecutorService<S, P, R = RejectWithError> {
    inner: S,
    layer: ExecutorLayer<P, R>,
}

impl<S: Clone, P, R: Clone> Clone for ExecutorService<S, P, R> {
    fn clone(&self) -> Self {
        ExecutorService {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, P, R> fmt::Debug for ExecutorService<S, P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorService")
            .field("inner", &self.inner)
            .field("executor", &self.layer.executor.name())
            .finish()
    }
}

impl<S, P, R, Req> Service<Req> for ExecutorService<S, P, R>
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
