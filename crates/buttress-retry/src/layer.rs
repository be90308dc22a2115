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
    pub fn classifier<C2>(self, classifier: C2) -> RetryLayer<C2, K> {
        RetryLayer {
            policy: self.policy,
            classifier,
            cloner: self.cloner,
        }
    }

    /// Copies requests with `cloner`.
    pub fn cloner<K2>(self, cloner: K2) -> RetryLayer<C, K2> {
        RetryLayer {
            policy: self.policy,
            classifier: self.classifier,
            cloner,
        }
    }

    /// For HTTP clients: 5xx and 429 are retryable (with `Retry-After`),
    /// other statuses are not, and only idempotent requests are sent again.
    #[cfg(feature = "http")]
    pub fn http(self) -> RetryLayer<buttress_core::HttpClassifier, crate::IdempotentHttp> {
        self.classifier(buttress_core::HttpClassifier::new())
            .cloner(crate::IdempotentHttp)
    }

    /// The policy.
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
