//! [`ExecutorLayer`]: requests wait in the executor's bounded priority
//! queue.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::error::{QueueFull, SubmitError};
use crate::executor::{Executor, TaskHandle};

/// A boxed error, as tower layers return them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Turns a full queue into the service's result.
pub trait OnFull<Response> {
    /// The result of a request refused because the queue is full.
    fn on_full(&self, full: QueueFull) -> Result<Response, BoxError>;
}

/// Refused requests fail with a boxed [`QueueFull`] (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectWithError;

impl<R> OnFull<R> for RejectWithError {
    fn on_full(&self, full: QueueFull) -> Result<R, BoxError> {
        Err(Box::new(full))
    }
}

/// Refused requests are answered `503 Service Unavailable` with an empty
/// (`Default`) body and the [`QueueFull`] as an extension.
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Http503;

#[cfg(feature = "http")]
impl<B: Default> OnFull<http::Response<B>> for Http503 {
    fn on_full(&self, full: QueueFull) -> Result<http::Response<B>, BoxError> {
        let mut response = buttress_core::service_unavailable(None);
        response.extensions_mut().insert(full);
        Ok(response)
    }
}

/// Runs each request through an [`Executor`]: it waits in the bounded
/// priority queue (priority from `priority(&request)`, higher first), runs
/// when the bulkhead has room, and is shed with [`QueueFull`] (or `503`
/// under `http`) when the queue is full. A request whose response future
/// is dropped is cancelled.
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
    on_full: R,
}

impl<P> ExecutorLayer<P> {
    /// Queues requests on `executor` at the priority `priority` gives.
    pub fn new(executor: Executor, priority: P) -> Self {
        ExecutorLayer {
            executor,
            priority: Arc::new(priority),
            on_full: RejectWithError,
        }
    }
}

impl<P, R> ExecutorLayer<P, R> {
    /// What a refused request returns.
    pub fn on_full<R2>(self, on_full: R2) -> ExecutorLayer<P, R2> {
        ExecutorLayer {
            executor: self.executor,
            priority: self.priority,
            on_full,
        }
    }

    /// Refused requests are answered `503`.
    #[cfg(feature = "http")]
    pub fn http(self) -> ExecutorLayer<P, Http503> {
        self.on_full(Http503)
    }
}

impl<P, R: Clone> Clone for ExecutorLayer<P, R> {
    fn clone(&self) -> Self {
        ExecutorLayer {
            executor: self.executor.clone(),
            priority: self.priority.clone(),
            on_full: self.on_full.clone(),
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
    S::Error: Into<BoxError> + Send + 'static,
    Req: Send + 'static,
    P: Fn(&Req) -> u8,
    R: OnFull<S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
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
            Ok(handle) => ResponseFuture::Waiting { handle },
            Err(SubmitError::Full(full)) => ResponseFuture::Done {
                answer: Some(self.layer.on_full.on_full(full)),
            },
            Err(e) => ResponseFuture::Done {
                answer: Some(Err(Box::new(e))),
            },
        }
    }
}

/// The response future of [`ExecutorService`].
#[derive(Debug)]
pub enum ResponseFuture<T, E> {
    /// Queued or running.
    Waiting {
        /// The task.
        handle: TaskHandle<Result<T, E>>,
    },
    /// Answered at once.
    Done {
        /// The answer, until taken.
        answer: Option<Result<T, BoxError>>,
    },
}

// Nothing in it is ever pinned: the handle holds only shared pointers, and
// the answer is moved out, never polled.
impl<T, E> Unpin for ResponseFuture<T, E> {}

/// A request whose caller went away (a client gone, an outer timeout) is
/// cancelled: it leaves the queue, or stops running, instead of taking a
/// slot nobody waits for.
impl<T, E> Drop for ResponseFuture<T, E> {
    fn drop(&mut self) {
        if let ResponseFuture::Waiting { handle } = self {
            handle.cancel();
        }
    }
}

impl<T, E: Into<BoxError>> Future for ResponseFuture<T, E> {
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is Unpin: the handle holds only shared pointers.
        match self.get_mut() {
            ResponseFuture::Waiting { handle } => Pin::new(handle).poll(cx).map(|r| match r {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(e)) => Err(e.into()),
                Err(e) => Err(Box::new(e) as BoxError),
            }),
            ResponseFuture::Done { answer } => Poll::Ready(
                answer
                    .take()
                    .unwrap_or_else(|| Err("polled after completion".into())),
            ),
        }
    }
}
