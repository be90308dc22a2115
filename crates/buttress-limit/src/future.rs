//! The response futures of the limiter's services.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use buttress_core::{Answer, OnReject};

use crate::error::RateLimited;
use pin_project_lite::pin_project;

pin_project! {
    /// The response future of [`RateLimitService`](crate::RateLimitService):
    /// the inner service's future, or the answer to a refused request.
    ///
    /// Its parameters are the inner future and the rejection handler, which
    /// answers a refusal when the future is polled (so the admitted path
    /// never carries room for an answer it does not need).
    pub struct ResponseFuture<F, R> {
        #[pin]
        kind: Kind<F, R>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, R> {
        Called { #[pin] future: F },
        Rejected { rejection: Option<RateLimited>, handler: R },
    }
}

impl<F, R> ResponseFuture<F, R> {
    pub(crate) fn called(future: F) -> Self {
        Self {
            kind: Kind::Called { future },
        }
    }

    #[cold]
    pub(crate) fn rejected(rejection: RateLimited, handler: R) -> Self {
        Self {
            kind: Kind::Rejected {
                rejection: Some(rejection),
                handler,
            },
        }
    }
}

impl<F, R> fmt::Debug for ResponseFuture<F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<F, R, T, E> Future for ResponseFuture<F, R>
where
    F: Future<Output = Result<T, E>>,
    R: OnReject<RateLimited, T, E>,
{
    type Output = Result<T, R::Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future } => future.poll(cx).map_err(R::Error::from),
            // Polled again after its answer: the `Future` contract is
            // broken, and it pends forever.
            KindProj::Rejected { rejection, handler } => match rejection.take() {
                Some(r) => Poll::Ready(handler.on_reject(r)),
                None => Poll::Pending,
            },
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
