//! The tower service.

use std::task::{Context, Poll};

use buttress_core::Classify;
use tower_service::Service;

use crate::error::BoxError;
use crate::future::ResponseFuture;
use crate::policy::RetryPolicy;
use crate::request::CloneRequest;

/// A service whose calls are retried; made by [`RetryLayer`](crate::RetryLayer).
///
/// Readiness is the inner service's. `call` sends the first attempt on the
/// very service that was polled ready and keeps a clone of the inner
/// service in the response future for further attempts, each polled ready
/// before it is called.
#[derive(Debug, Clone)]
pub struct RetryService<S, C, K> {
    inner: S,
    policy: RetryPolicy,
    classifier: C,
    cloner: K,
}

impl<S, C, K> RetryService<S, C, K> {
    pub(crate) fn new(inner: S, policy: RetryPolicy, classifier: C, cloner: K) -> Self {
        Self {
            inner,
            policy,
            classifier,
            cloner,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req, C, K> Service<Req> for RetryService<S, C, K>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
    K: CloneRequest<Req> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, S::Future, Req, C, K, S::Response>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        let mut run = self.policy.begin();
        let spare = if self.policy.max_attempts() > 1 {
            let spare = self.cloner.clone_request(&req);
            if spare.is_none() {
                self.policy.not_cloneable();
            }
            spare
        } else {
            None
        };
        // Retries go to a clone, polled ready before each of them.
        let retries = spare.as_ref().map(|_| self.inner.clone());
        let limit = self.policy.start_attempt(&mut run);
        let first = self.inner.call(req);
        ResponseFuture::new(
            first,
            limit,
            retries,
            spare,
            run,
            self.policy.clone(),
            self.classifier.clone(),
            self.cloner.clone(),
        )
    }
}
