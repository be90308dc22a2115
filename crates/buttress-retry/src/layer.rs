//! The tower layer.

use tower_layer::Layer;

use crate::classify::RetryClassifier;
use crate::policy::RetryPolicy;
use crate::request::CloneAll;
use crate::service::RetryService;

/// Retries a service's calls with a [`RetryPolicy`].
///
/// `C` judges results (default [`RetryClassifier`]: every `Err` is
/// retryable); `K` copies requests for further attempts (default
/// [`CloneAll`]: `Req: Clone`). Every service the layer makes shares the
/// policy's budget.
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use buttress_retry::RetryPolicy;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let policy = RetryPolicy::builder("embeddings").build().unwrap();
/// let svc = ServiceBuilder::new()
///     .layer(policy.layer())
///     .service(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x + 1) }));
/// assert_eq!(svc.oneshot(1).await.unwrap(), 2);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct RetryLayer<C = RetryClassifier, K = CloneAll> {
    policy: RetryPolicy,
    classifier: C,
    cloner: K,
}

impl RetryLayer {
    /// A layer for `policy`.
    ///
    /// ```
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// use buttress_retry::{RetryLayer, RetryPolicy};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let layer = RetryLayer::new(RetryPolicy::builder("api").build().unwrap());
    /// let svc = ServiceBuilder::new()
    ///     .layer(layer)
    ///     .service(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
    /// assert_eq!(svc.oneshot(5).await.unwrap(), 5);
    /// # });
    /// ```
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            classifier: RetryClassifier,
            cloner: CloneAll,
        }
    }
}

impl<C, K> RetryLayer<C, K> {
    /// Judges results with `classifier`.
    ///
    /// ```
    /// use std::io::{Error, ErrorKind};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_core::{Classification, classify_fn};
    /// use buttress_retry::RetryPolicy;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// // "Permission denied" will not change on a retry.
    /// let classifier = classify_fn(|r: &Result<u32, Error>| match r {
    ///     Ok(_) => Classification::SUCCESS,
    ///     Err(e) if e.kind() == ErrorKind::PermissionDenied => Classification::FATAL_FAILURE,
    ///     Err(_) => Classification::RETRYABLE_FAILURE,
    /// });
    /// let calls = AtomicU32::new(0);
    /// let layer = RetryPolicy::builder("api").build().unwrap().layer().classifier(classifier);
    /// let svc = layer.layer(service_fn(|_: u32| {
    ///     calls.fetch_add(1, Ordering::SeqCst);
    ///     async { Err::<u32, _>(Error::from(ErrorKind::PermissionDenied)) }
    /// }));
    /// assert!(svc.oneshot(1).await.is_err());
    /// assert_eq!(calls.load(Ordering::SeqCst), 1); // not retried
    /// # });
    /// ```
    pub fn classifier<C2>(self, classifier: C2) -> RetryLayer<C2, K> {
        RetryLayer {
            policy: self.policy,
            classifier,
            cloner: self.cloner,
        }
    }

    /// Copies requests with `cloner`.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_retry::{RetryPolicy, clone_with};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// // Odd requests must not be sent twice.
    /// let cloner = clone_with(|x: &u32| (x % 2 == 0).then_some(*x));
    /// let calls = AtomicU32::new(0);
    /// let layer = RetryPolicy::builder("api").build().unwrap().layer().cloner(cloner);
    /// let svc = layer.layer(service_fn(|_: u32| {
    ///     calls.fetch_add(1, Ordering::SeqCst);
    ///     async { Err::<u32, _>(std::io::Error::other("down")) }
    /// }));
    /// assert!(svc.clone().oneshot(1).await.is_err());
    /// assert_eq!(calls.load(Ordering::SeqCst), 1); // sent once
    /// assert!(svc.oneshot(2).await.is_err());
    /// assert_eq!(calls.load(Ordering::SeqCst), 4); // 1 + 3 attempts
    /// # });
    /// ```
    pub fn cloner<K2>(self, cloner: K2) -> RetryLayer<C, K2> {
        RetryLayer {
            policy: self.policy,
            classifier: self.classifier,
            cloner,
        }
    }

    /// For HTTP clients: 5xx and 429 are retryable (with `Retry-After`),
    /// other statuses are not, and only idempotent requests are sent again.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use http::{Request, Response, StatusCode};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_retry::RetryPolicy;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let calls = AtomicU32::new(0);
    /// let layer = RetryPolicy::builder("api").build().unwrap().layer().http();
    /// let svc = layer.layer(service_fn(|_: Request<()>| {
    ///     let n = calls.fetch_add(1, Ordering::SeqCst);
    ///     let status = if n == 0 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    ///     async move { Ok::<_, std::io::Error>(Response::builder().status(status).body(()).unwrap()) }
    /// }));
    /// let response = svc.oneshot(Request::get("/").body(()).unwrap()).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::OK); // the GET was sent again after the 503
    /// assert_eq!(calls.load(Ordering::SeqCst), 2);
    /// # });
    /// ```
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn http(self) -> RetryLayer<buttress_core::HttpClassifier, crate::IdempotentHttp> {
        self.classifier(buttress_core::HttpClassifier::new())
            .cloner(crate::IdempotentHttp)
    }

    /// The policy.
    ///
    /// ```
    /// use buttress_retry::RetryPolicy;
    ///
    /// let layer = RetryPolicy::builder("api").build()?.layer();
    /// assert_eq!(layer.policy().name().as_str(), "api");
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl<S, C: Clone, K: Clone> Layer<S> for RetryLayer<C, K> {
    type Service = RetryService<S, C, K>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService::new(
            inner,
            self.policy.clone(),
            self.classifier.clone(),
            self.cloner.clone(),
        )
    }
}
