//! The response future of [`CircuitBreakerService`](crate::CircuitBreakerService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use buttress_core::Classify;
use pin_project_lite::pin_project;

use crate::breaker::Permit;
use crate::error::BoxError;

pin_project! {
    /// Resolves to the inner service's response, recording its outcome in
    /// the breaker; or, for a refused call, to the rejection at once.
    ///
    /// Dropping it before it completes counts the call as ignored.
    pub struct ResponseFuture<F, C, T> {
        #[pin]
        kind: Kind<F, C, T>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, C, T> {
        Called {
            #[pin]
            future: F,
            permit: Option<Permit>,
            start: u64,
            classifier: C,
        },
        Rejected {
            result: Option<Result<T, BoxError>>,
        },
    }
}

impl<F, C, T> ResponseFuture<F, C, T> {
    pub(crate) fn called(future: F, permit: Permit, start: u64, classifier: C) -> Self {
        Self {
            kind: Kind::Called {
                future,
                permit: Some(permit),
                start,
                classifier,
            },
        }
    }

    pub(crate) fn rejected(result: Result<T, BoxError>) -> Self {
        Self {
            kind: Kind::Rejected {
                result: Some(result),
            },
        }
    }
}

impl<F, C, T> fmt::Debug for ResponseFuture<F, C, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Called { .. } => "called",
            Kind::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C, T>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T, E>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called {
                future,
                permit,
                start,
                classifier,
            } => {
                let result = ready!(future.poll(cx));
                if let Some(permit) = permit.take() {
                    let c = classifier.classify(&result);
                    permit.finish(c.outcome, c.retry_after, *start);
                }
                Poll::Ready(result.map_err(Into::into))
            }
            KindProj::Rejected { result } => Poll::Ready(
                result
                    .take()
                    .unwrap_or_else(|| Err("ResponseFuture polled after completion".into())),
            ),
        }
    }
}
