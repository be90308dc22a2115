//! The response futures of the limiter's services.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use buttress_core::Answer;
use pin_project_lite::pin_project;

pin_project! {
    /// The response future of [`RateLimitService`](crate::RateLimitService):
    /// the inner service's future, or the answer to a refused request.
    ///
    /// Its parameters are the inner future, the response and the service's
    /// error type (the rejection handler's).
    pub struct ResponseFuture<F, T, E> {
        #[pin]
        kind: Kind<F, T, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, T, E> {
        Called { #[pin] future: F },
        Rejected { answer: Answer<Result<T, E>> },
    }
}

impl<F, T, E> ResponseFuture<F, T, E> {
    pub(crate) fn called(future: F) -> Self {
        Self {
            kind: Kind::Called { future },
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

impl<F, T, E> fmt::Debug for ResponseFuture<F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<F, T, E, E2> Future for ResponseFuture<F, T, E2>
where
    F: Future<Output = Result<T, E>>,
    E2: From<E>,
{
    type Output = Result<T, E2>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future } => future.poll(cx).map_err(E2::from),
            KindProj::Rejected { answer } => answer.take(),
        }
    }
}

/// What an admitted response is decorated with.
pub(crate) struct Admitted<A> {
    pub(crate) handler: A,
    pub(crate) name: buttress_core::Name,
    pub(crate) remaining: u32,
    pub(crate) quota: crate::Quota,
}

pin_project! {
    /// The response future of
    /// [`KeyedRateLimitService`](crate::KeyedRateLimitService): the inner
    /// service's future (its response decorated by the layer's
    /// [`OnAdmitted`](crate::OnAdmitted) handler), or the answer to a
    /// refused request.
    pub struct KeyedResponseFuture<F, T, E, A> {
        #[pin]
        kind: KeyedKind<F, T, E, A>,
    }
}

pin_project! {
    #[project = KeyedKindProj]
    enum KeyedKind<F, T, E, A> {
        Called { #[pin] future: F, admitted: Option<Admitted<A>> },
        Rejected { answer: Answer<Result<T, E>> },
    }
}

impl<F, T, E, A> KeyedResponseFuture<F, T, E, A> {
    pub(crate) fn called(future: F, admitted: Option<Admitted<A>>) -> Self {
        Self {
            kind: KeyedKind::Called { future, admitted },
        }
    }

    pub(crate) fn rejected(result: Result<T, E>) -> Self {
        Self {
            kind: KeyedKind::Rejected {
                answer: Answer::new(result),
            },
        }
    }
}

impl<F, T, E, A> fmt::Debug for KeyedResponseFuture<F, T, E, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedResponseFuture")
    }
}

impl<F, T, E, E2, A> Future for KeyedResponseFuture<F, T, E2, A>
where
    F: Future<Output = Result<T, E>>,
    E2: From<E>,
    A: crate::OnAdmitted<T>,
{
    type Output = Result<T, E2>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KeyedKindProj::Called { future, admitted } => {
                let mut result = std::task::ready!(future.poll(cx));
                if let (Ok(response), Some(a)) = (&mut result, admitted.take()) {
                    a.handler
                        .on_admitted(response, a.name.as_str(), a.remaining, a.quota);
                }
                Poll::Ready(result.map_err(E2::from))
            }
            KeyedKindProj::Rejected { answer } => answer.take(),
        }
    }
}
