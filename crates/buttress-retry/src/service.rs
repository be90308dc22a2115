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
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower::{Layer, service_fn};
    /// use buttress_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::builder("search").max_attempts(2).build()?;
    /// let svc = policy
    ///     .layer()
    ///     .layer(service_fn(|q: String| async move { Ok::<_, std::io::Error>(q) }));
    /// assert_eq!(svc.policy().max_attempts(), 2);
    /// // A clone of the policy: it draws on the same budget.
    /// assert!(Arc::ptr_eq(svc.policy().budget().unwrap(), policy.budget().unwrap()));
    /// # Ok::<(), buttress_retry::ConfigError>(())
    /// ```
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The inner service.
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use tower::{Layer, Service, ServiceExt};
    /// use buttress_retry::RetryPolicy;
    ///
    /// # use std::sync::Arc;
    /// # use std::sync::atomic::AtomicU32;
    /// # use std::task::{Context, Poll};
    /// /// A client that fails its first call; clones share the count.
    /// #[derive(Debug, Clone, Default)]
    /// struct Flaky {
    ///     calls: Arc<AtomicU32>,
    /// }
    /// # impl tower::Service<u32> for Flaky {
    /// #     type Response = u32;
    /// #     type Error = std::io::Error;
    /// #     type Future = std::future::Ready<Result<u32, std::io::Error>>;
    /// #     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
    /// #         Poll::Ready(Ok(()))
    /// #     }
    /// #     fn call(&mut self, x: u32) -> Self::Future {
    /// #         let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    /// #         std::future::ready(if n == 0 { Err(std::io::Error::other("reset")) } else { Ok(x) })
    /// #     }
    /// # }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let policy = RetryPolicy::builder("api").build().unwrap();
    /// let mut svc = policy.layer().layer(Flaky::default());
    /// assert_eq!(svc.ready().await.unwrap().call(7).await.unwrap(), 7);
    /// assert_eq!(svc.get_ref().calls.load(Ordering::SeqCst), 2); // one failure, one retry
    /// # });
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt};
    /// use buttress_retry::RetryPolicy;
    ///
    /// # use std::sync::Arc;
    /// # use std::sync::atomic::AtomicU32;
    /// # use std::task::{Context, Poll};
    /// /// A client that fails its first call; clones share the count.
    /// #[derive(Debug, Clone, Default)]
    /// struct Flaky {
    ///     calls: Arc<AtomicU32>,
    /// }
    /// # impl tower::Service<u32> for Flaky {
    /// #     type Response = u32;
    /// #     type Error = std::io::Error;
    /// #     type Future = std::future::Ready<Result<u32, std::io::Error>>;
    /// #     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
    /// #         Poll::Ready(Ok(()))
    /// #     }
    /// #     fn call(&mut self, x: u32) -> Self::Future {
    /// #         let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    /// #         std::future::ready(if n == 0 { Err(std::io::Error::other("reset")) } else { Ok(x) })
    /// #     }
    /// # }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let policy = RetryPolicy::builder("api").build().unwrap();
    /// let svc = policy.layer().layer(Flaky::default());
    /// let client: Flaky = svc.into_inner(); // without retries
    /// assert!(client.oneshot(7).await.is_err()); // its first call fails, and stays failed
    /// # });
    /// ```
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
