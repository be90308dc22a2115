//! A timeout whose duration can change while services use it.
//!
//! tower's `Timeout` fixes its duration when the layer is built; a policy
//! that changes live needs one read per call instead. The error is tower's
//! own `Elapsed`, so everything that recognises a tower timeout (the
//! fallback, the stale cache, the problem+json mapping) recognises this
//! one.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use buttress_core::BoxError;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::timeout::error::Elapsed;
use tower_layer::Layer;
use tower_service::Service;

/// A duration shared by every service it times; [`set`](Self::set)
/// changes it for calls that start afterwards.
///
/// ```
/// use std::time::Duration;
/// use buttress_policy::LiveTimeout;
///
/// let timeout = LiveTimeout::new(Duration::from_secs(30));
/// let same = timeout.clone();
/// timeout.set(Duration::from_secs(5));
/// assert_eq!(same.get(), Duration::from_secs(5));
/// ```
#[derive(Clone)]
pub struct LiveTimeout {
    nanos: Arc<AtomicU64>,
}

impl fmt::Debug for LiveTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LiveTimeout").field(&self.get()).finish()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl LiveTimeout {
    /// A timeout of `duration`.
    pub fn new(duration: Duration) -> Self {
        Self {
            nanos: Arc::new(AtomicU64::new(nanos(duration))),
        }
    }

    /// The duration in force.
    pub fn get(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    /// A new duration, for calls that start from now on; calls already
    /// running keep the deadline they started with.
    pub fn set(&self, duration: Duration) {
        self.nanos.store(nanos(duration), Ordering::Relaxed);
    }

    /// A tower layer that cuts calls off after this timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_policy::LiveTimeout;
    /// use tower::{Layer, ServiceExt, service_fn};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let timeout = LiveTimeout::new(Duration::from_secs(1));
    /// let hangs = service_fn(|()| std::future::pending::<Result<(), std::io::Error>>());
    /// let e = timeout.layer().layer(hangs).oneshot(()).await.unwrap_err();
    /// assert!(e.is::<tower::timeout::error::Elapsed>());
    /// # });
    /// ```
    pub fn layer(&self) -> TimeoutLayer {
        TimeoutLayer {
            timeout: self.clone(),
        }
    }
}

/// Applies a [`LiveTimeout`] to a service.
#[derive(Debug, Clone)]
pub struct TimeoutLayer {
    timeout: LiveTimeout,
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            timeout: self.timeout.clone(),
        }
    }
}

/// A service whose calls are cut off after a [`LiveTimeout`].
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    timeout: LiveTimeout,
}

impl<S, Req> Service<Req> for Timeout<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = TimeoutFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        TimeoutFuture {
            inner: self.inner.call(request),
            sleep: tokio::time::sleep(self.timeout.get()),
        }
    }
}

pin_project! {
    /// The response future of [`Timeout`].
    #[derive(Debug)]
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
    }
}

impl<F, T, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(r) = this.inner.poll(cx) {
            return Poll::Ready(r.map_err(Into::into));
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Box::new(Elapsed::new()))),
            Poll::Pending => Poll::Pending,
        }
    }
}
