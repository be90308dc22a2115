//! The response future of [`CircuitBreakerService`](crate::CircuitBreakerService).
//!
//! Its type parameters are the inner future, the classifier, the response
//! and the service's error type (the rejection handler's).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use buttress_core::{Answer, Classify};
use pin_project_lite::pin_project;

use crate::breaker::Permit;

pin_project! {
    /// Resolves to the inner service's response, recording its outcome in
    /// the breaker; or, for a refused call, to the rejection at once.
    ///
    /// Dropping it before it completes counts the call as ignored.
    pub struct ResponseFuture<F, C, T, E> {
        #[pin]
        kind: Kind<F, C, T, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, C, T, E> {
        Called {
            #[pin]
            future: F,
            permit: Option<Permit>,
            start: u64,
            classifier: C,
        },
        Rejected {
            answer: Answer<Result<T, E>>,
        },
    }
}

impl<F, C, T, E> ResponseFuture<F, C, T, E> {
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

    pub(crate) fn rejected(result: Result<T, E>) -> Self {
        Self {
            kind: Kind::Rejected {
                answer: Answer::new(result),
            },
        }
    }
}

impl<F, C, T, E> fmt::Debug for ResponseFuture<F, C, T, E> {
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

impl<F, C, T, E, E2> Future for ResponseFuture<F, C, T, E2>
where
    F: Future<Output = Result<T, E>>,
    E2: From<E>,
    C: Classify<T, E>,
{
    type Output = Result<T, E2>;

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
                Poll::Ready(result.map_err(E2::from))
            }
            KindProj::Rejected { answer } => answer.take(),
        }
    }
}
