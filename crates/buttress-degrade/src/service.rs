//! The fallback's tower service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use buttress_core::Classify;
use tower_service::Service;

use crate::backup::Backup;
use crate::degraded::Mark;
use crate::future::ResponseFuture;
use crate::layer::Shared;

/// The service of a [`FallbackLayer`](crate::FallbackLayer).
pub struct FallbackService<S, B, C> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<B, C>>,
}

impl<S, B, C, Req> Service<Req> for FallbackService<S, B, C>
where
    S: Service<Req>,
    S::Response: Mark,
    S::Error: 'static,
    B: Backup<Req, S::Response, S::Error>,
    C: Classify<S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, B, C, Req, S::Response, S::Error>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let saved = self.shared.backup.save(&request);
        ResponseFuture::new(self.inner.call(request), saved, Arc::clone(&self.shared))
    }
}

impl<S: Clone, B, C> Clone for FallbackService<S, B, C> {
    fn clone(&self) -> Self {
        FallbackService {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, B, C> fmt::Debug for FallbackService<S, B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackService")
            .field("inner", &self.inner)
            .field("fallback", &self.shared.fallback)
            .finish_non_exhaustive()
    }
}
