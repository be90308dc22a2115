//! The tower layer.

use buttress_core::{DefaultClassifier, RejectWithError};
use tower_layer::Layer;

use crate::breaker::CircuitBreaker;
use crate::service::CircuitBreakerService;

/// Puts a [`CircuitBreaker`] in front of a service.
///
/// Every service the layer makes shares the one breaker; build separate
/// breakers for separate state. The classifier (`C`) decides what counts as
/// a failure (default: every `Err`); the rejection handler (`R`) decides
/// what a refused call returns, and so the service's error type (default:
/// [`RejectWithError`], an error holding [`Rejected`](crate::error::Rejected)
/// inside tower's `BoxError`; under `http`, [`HttpStatus`](crate::HttpStatus)
/// answers `503 Service Unavailable` with `Retry-After` instead and keeps
/// the inner service's error, so over an axum handler the layer is
/// infallible).
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use buttress_breaker::CircuitBreaker;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let breaker = CircuitBreaker::builder("embeddings").consecutive_failures(5).build().unwrap();
/// let svc = ServiceBuilder::new()
///     .layer(breaker.layer())
///     .service(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x * 2) }));
/// assert_eq!(svc.oneshot(21).await.unwrap(), 42);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer<C = DefaultClassifier, R = RejectWithError> {
    breaker: CircuitBreaker,
    classifier: C,
    on_rejected: R,
}

impl CircuitBreakerLayer {
    /// A layer for `breaker`, with the default classifier and errors for
    /// rejections.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breaker,
            classifier: DefaultClassifier,
            on_rejected: RejectWithError,
        }
    }
}

impl<C, R> CircuitBreakerLayer<C, R> {
    /// Uses `classifier` to judge results.
    pub fn classifier<C2>(self, classifier: C2) -> CircuitBreakerLayer<C2, R> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classifier,
            on_rejected: self.on_rejected,
        }
    }

    /// Uses `on_rejected` (any [`OnReject`](buttress_core::OnReject)
    /// handler) to answer refused calls.
    pub fn on_rejected<R2>(self, on_rejected: R2) -> CircuitBreakerLayer<C, R2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classifier: self.classifier,
            on_rejected,
        }
    }

    /// For HTTP services: 5xx and 429 are failures (honouring
    /// `Retry-After`), and a refused call is answered with a ready
    /// `503 Service Unavailable` carrying `Retry-After`. The service's
    /// error is the inner service's, so the layer goes straight into an
    /// axum `Router`.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn http(self) -> CircuitBreakerLayer<buttress_core::HttpClassifier, crate::HttpStatus> {
        self.classifier(buttress_core::HttpClassifier::new())
            .on_rejected(crate::HttpStatus)
    }

    /// The breaker this layer uses.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl<S, C: Clone, R: Clone> Layer<S> for CircuitBreakerLayer<C, R> {
    type Service = CircuitBreakerService<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(
            inner,
            self.breaker.clone(),
            self.classifier.clone(),
            self.on_rejected.clone(),
        )
    }
}
