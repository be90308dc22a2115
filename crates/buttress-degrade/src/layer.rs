//! The fallback as a tower layer.

use std::fmt;
use std::sync::Arc;

use buttress_core::DefaultClassifier;
use tower_layer::Layer;

use crate::fallback::Fallback;
use crate::service::FallbackService;

/// Answers for its inner service when it fails: with a value, a function
/// of the request and the failure, or another service (see [`backup`](crate::backup)),
/// marking the answer [`Degraded`](crate::Degraded).
///
/// Which results are failures is decided by a buttress-core
/// [`Classify`](buttress_core::Classify) (every `Err` by default; set one
/// with [`classifier`](Self::classifier)), and which failures it answers
/// for by the [`Fallback`]'s [`Reasons`](crate::Reasons). Place it
/// outermost, so it sees what a timeout, a retry and a breaker inside it
/// could not fix. Its error type is the inner service's: a backup that
/// fails too returns the inner service's own error.
///
/// ```
/// use buttress_degrade::{Fallback, FallbackLayer, backup};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let llm = service_fn(|_prompt: String| async {
///     Err::<http::Response<String>, _>(std::io::Error::other("connection refused"))
/// });
/// let canned = http::Response::new("The assistant is busy; please try again.".to_owned());
/// let svc = FallbackLayer::new(Fallback::new("llm")?, backup::value(canned)).layer(llm);
/// let response = svc.oneshot("hello".to_owned()).await?;
/// assert_eq!(response.headers()["x-degraded"], "error");
/// assert!(response.extensions().get::<buttress_degrade::Degraded>().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub struct FallbackLayer<B, C = DefaultClassifier> {
    pub(crate) shared: Arc<Shared<B, C>>,
}

pub(crate) struct Shared<B, C> {
    pub(crate) fallback: Fallback,
    pub(crate) backup: B,
    pub(crate) classifier: C,
}

impl<B> FallbackLayer<B> {
    /// A layer that answers with `backup` for the failures `fallback`
    /// answers for.
    pub fn new(fallback: Fallback, backup: B) -> Self {
        FallbackLayer {
            shared: Arc::new(Shared {
                fallback,
                backup,
                classifier: DefaultClassifier,
            }),
        }
    }
}

impl<B, C> FallbackLayer<B, C> {
    /// Decides which results are failures with `classifier`: for an HTTP
    /// client, `buttress_core::HttpClassifier` makes a `503` from the
    /// upstream a failure the fallback answers for.
    pub fn classifier<C2>(self, classifier: C2) -> FallbackLayer<B, C2>
    where
        B: Clone,
    {
        FallbackLayer {
            shared: Arc::new(Shared {
                fallback: self.shared.fallback.clone(),
                backup: self.shared.backup.clone(),
                classifier,
            }),
        }
    }

    /// The fallback.
    pub fn fallback(&self) -> &Fallback {
        &self.shared.fallback
    }
}

impl<B, C> Clone for FallbackLayer<B, C> {
    fn clone(&self) -> Self {
        FallbackLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, B, C> Layer<S> for FallbackLayer<B, C> {
    type Service = FallbackService<S, B, C>;

    fn layer(&self, inner: S) -> Self::Service {
        FallbackService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<B, C> fmt::Debug for FallbackLayer<B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer")
            .field("fallback", &self.shared.fallback)
            .finish_non_exhaustive()
    }
}
