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
    ///
    /// ```
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_breaker::{CircuitBreaker, CircuitBreakerLayer, State, error::Rejected};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let breaker = CircuitBreaker::builder("db").consecutive_failures(1).build().unwrap();
    /// let svc = CircuitBreakerLayer::new(breaker.clone())
    ///     .layer(service_fn(|_: ()| async { Err::<(), _>(std::io::Error::other("down")) }));
    ///
    /// let e = svc.clone().oneshot(()).await.unwrap_err();
    /// assert_eq!(e.to_string(), "down"); // the call ran and failed
    /// assert_eq!(breaker.state(), State::Open);
    /// let e = svc.oneshot(()).await.unwrap_err();
    /// assert!(e.downcast_ref::<Rejected>().is_some()); // refused, inside tower's `BoxError`
    /// # });
    /// ```
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
    ///
    /// ```
    /// use std::io::{Error, ErrorKind};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_breaker::{CircuitBreaker, Classification, State};
    /// use buttress_core::classify_fn;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// // "Not found" is the caller's problem: it does not count against the store.
    /// let classifier = classify_fn(|r: &Result<String, Error>| match r {
    ///     Ok(_) => Classification::SUCCESS,
    ///     Err(e) if e.kind() == ErrorKind::NotFound => Classification::IGNORED,
    ///     Err(_) => Classification::RETRYABLE_FAILURE,
    /// });
    /// let breaker = CircuitBreaker::builder("store").consecutive_failures(1).build().unwrap();
    /// let svc = breaker
    ///     .layer()
    ///     .classifier(classifier)
    ///     .layer(service_fn(|_key: &str| async { Err::<String, _>(Error::from(ErrorKind::NotFound)) }));
    /// assert!(svc.oneshot("missing").await.is_err());
    /// assert_eq!(breaker.state(), State::Closed);
    /// # });
    /// ```
    pub fn classifier<C2>(self, classifier: C2) -> CircuitBreakerLayer<C2, R> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classifier,
            on_rejected: self.on_rejected,
        }
    }

    /// Uses `on_rejected` (any [`OnReject`](buttress_core::OnReject)
    /// handler) to answer refused calls.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_breaker::{CircuitBreaker, OnReject, error::Rejected};
    ///
    /// /// A refused lookup is answered from a fallback instead of failing.
    /// #[derive(Debug, Clone, Copy)]
    /// struct Fallback;
    ///
    /// impl OnReject<Rejected, String, std::io::Error> for Fallback {
    ///     type Error = std::io::Error; // the inner service's: no `BoxError`
    ///     fn on_reject(&self, rejected: Rejected) -> Result<String, std::io::Error> {
    ///         Ok(format!("stale ({} is {})", rejected.name(), rejected.state()))
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let breaker = CircuitBreaker::builder("profiles").build().unwrap();
    /// let svc = breaker
    ///     .layer()
    ///     .on_rejected(Fallback)
    ///     .layer(service_fn(|_: ()| async { Ok::<_, std::io::Error>("fresh".to_string()) }));
    /// breaker.force_open();
    /// assert_eq!(svc.oneshot(()).await.unwrap(), "stale (profiles is forced_open)");
    /// # });
    /// ```
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
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response, StatusCode};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_breaker::{CircuitBreaker, State};
    /// use buttress_core::ManualClock;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let breaker = CircuitBreaker::builder("upstream")
    ///     .consecutive_failures(1)
    ///     .clock(ManualClock::new())
    ///     .build()
    ///     .unwrap();
    /// let svc = breaker.layer().http().layer(service_fn(|_: Request<()>| async {
    ///     Ok::<_, Infallible>(Response::builder().status(502).body(String::new()).unwrap())
    /// }));
    ///
    /// let response = svc.clone().oneshot(Request::new(())).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::BAD_GATEWAY); // a failure: it opens
    /// assert_eq!(breaker.state(), State::Open);
    /// // Refused: a response, not an error (the service's error is still `Infallible`).
    /// let response = svc.oneshot(Request::new(())).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// assert_eq!(response.headers()["retry-after"], "60"); // the default open period
    /// # });
    /// ```
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn http(self) -> CircuitBreakerLayer<buttress_core::HttpClassifier, crate::HttpStatus> {
        self.classifier(buttress_core::HttpClassifier::new())
            .on_rejected(crate::HttpStatus)
    }

    /// The breaker this layer uses.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::builder("db").build()?;
    /// let layer = breaker.layer();
    /// assert_eq!(layer.breaker().name().as_str(), "db");
    /// layer.breaker().force_open(); // the very breaker: every clone shares its state
    /// assert_eq!(breaker.state(), State::ForcedOpen);
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
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
