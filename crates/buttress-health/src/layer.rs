//! [`ReadinessLayer`]: refuses requests while the readiness gate is
//! closed, without calling the inner service.

use std::fmt;
use std::task::{Context, Poll};

use buttress_core::{OnReject, RejectWithError};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::NotReady;
use crate::gate::Readiness;

/// Refuses requests while the [`Readiness`] gate is closed (starting,
/// failed, draining) with a [`NotReady`]; the inner service never sees
/// them. With the gate open, a request costs one atomic load.
///
/// ```
/// use buttress_health::{Readiness, ReadinessLayer};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let gate = Readiness::new();
/// let svc = ReadinessLayer::new(gate.clone())
///     .layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// let loading = gate.hold("loading the model");
/// assert!(svc.clone().oneshot(1).await.is_err());
/// drop(loading);
/// assert_eq!(svc.oneshot(2).await.unwrap(), 2);
/// # });
/// ```
#[derive(Clone)]
pub struct ReadinessLayer<R = RejectWithError> {
    gate: Readiness,
    on_rejected: R,
}

impl ReadinessLayer {
    /// Refuses requests while `gate` is closed, failing them with a
    /// [`NotReady`] in a [`BoxError`](buttress_core::BoxError).
    pub fn new(gate: Readiness) -> Self {
        Self {
            gate,
            on_rejected: RejectWithError,
        }
    }
}

impl<R> ReadinessLayer<R> {
    /// Answers refused requests with `on_rejected` instead.
    pub fn on_rejected<R2>(self, on_rejected: R2) -> ReadinessLayer<R2> {
        ReadinessLayer {
            gate: self.gate,
            on_rejected,
        }
    }

    /// Answers refused requests with `503 Service Unavailable` and
    /// `Retry-After`, keeping the inner service's error type.
    pub fn http(self) -> ReadinessLayer<buttress_core::HttpStatus> {
        self.on_rejected(buttress_core::HttpStatus)
    }
}

impl<R> fmt::Debug for ReadinessLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadinessLayer")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl<S, R: Clone> Layer<S> for ReadinessLayer<R> {
    type Service = ReadinessService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        ReadinessService {
            inner,
            gate: self.gate.clone(),
            on_rejected: self.on_rejected.clone(),
        }
    }
}

/// The service of a [`ReadinessLayer`].
#[derive(Clone)]
pub struct ReadinessService<S, R = RejectWithError> {
    inner: S,
    gate: Readiness,
    on_rejected: R,
}

impl<S: fmt::Debug, R> fmt::Debug for ReadinessService<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadinessService")
            .field("inner", &self.inner)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl<S, R> ReadinessService<S, R> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, R, Req> Service<Req> for ReadinessService<S, R>
where
    S: Service<Req>,
    R: OnReject<NotReady, S::Response, S::Error>,
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
        if self.gate.is_ready() {
            return future::ResponseFuture::called(self.inner.call(request));
        }
        let gate = self.gate.snapshot();
        let refusal = NotReady {
            status: gate.status,
            reasons: gate.reasons(),
            retry_after: self.gate.retry_after(),
        };
        future::ResponseFuture::answered(self.on_rejected.on_reject(refusal))
    }
}

/// The response future of a [`ReadinessService`].
pub mod future {
    /// The inner service's answer, or the refusal.
    pub type ResponseFuture<F, T, E> = buttress_core::CalledOrAnswered<F, T, E>;
}
