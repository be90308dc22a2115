//! The fallback's response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use buttress_core::Classify;

use crate::backup::Backup;
use crate::degraded::Mark;
use crate::fallback::Caught;
use crate::layer::Shared;
use crate::reason::Reason;

pin_project_lite::pin_project! {
    /// The response future of a [`FallbackService`](crate::FallbackService):
    /// the inner call, then, when it failed, the backup's answer.
    pub struct ResponseFuture<F, B, C, Req, Res, E>
    where
        B: Backup<Req, Res, E>,
    {
        #[pin]
        state: State<F, B::Future, B::Saved, Res, E>,
        shared: Arc<Shared<B, C>>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F, A, Saved, Res, E> {
        Calling { #[pin] inner: F, saved: Option<Saved> },
        // Boxed: a success never pays to move the failure path's state.
        Answering { answering: Pin<Box<Answering<A, Res, E>>> },
    }
}

pin_project_lite::pin_project! {
    /// The backup's answer in progress, and the result it stands in for.
    struct Answering<A, Res, E> {
        #[pin]
        answer: A,
        original: Option<Result<Res, E>>,
        reason: Reason,
    }
}

impl<F, B, C, Req, Res, E> ResponseFuture<F, B, C, Req, Res, E>
where
    B: Backup<Req, Res, E>,
{
    #[inline]
    pub(crate) fn new(inner: F, saved: B::Saved, shared: Arc<Shared<B, C>>) -> Self {
        ResponseFuture {
            state: State::Calling {
                inner,
                saved: Some(saved),
            },
            shared,
        }
    }
}

impl<F, B, C, Req, Res, E> Future for ResponseFuture<F, B, C, Req, Res, E>
where
    F: Future<Output = Result<Res, E>>,
    B: Backup<Req, Res, E>,
    C: Classify<Res, E>,
    Res: Mark,
    E: 'static,
{
    type Output = Result<Res, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { inner, saved } => {
                    let result = ready!(inner.poll(cx));
                    let shared = &**this.shared;
                    let Some(reason) = shared.fallback.catches(&shared.classifier, &result) else {
                        return Poll::Ready(result);
                    };
                    let Some(saved) = saved.take() else {
                        // Calling holds its saved request until the one
                        // poll that leaves it.
                        return Poll::Ready(result);
                    };
                    let answer = shared.backup.answer(
                        saved,
                        Caught {
                            reason,
                            error: result.as_ref().err(),
                        },
                    );
                    this.state.set(State::Answering {
                        answering: Box::pin(Answering {
                            answer,
                            original: Some(result),
                            reason,
                        }),
                    });
                }
                StateProj::Answering { answering } => {
                    let answering = answering.as_mut().project();
                    let answer = ready!(answering.answer.poll(cx));
                    let fallback = &this.shared.fallback;
                    let reason = *answering.reason;
                    return match (answer, answering.original.take()) {
                        (Some(mut response), _) => {
                            response.mark_degraded(fallback.answered(reason));
                            Poll::Ready(Ok(response))
                        }
                        (None, Some(original)) => {
                            fallback.failed(reason);
                            Poll::Ready(original)
                        }
                        // Polled again after it answered: the contract is
                        // broken; pend rather than panic.
                        (None, None) => Poll::Pending,
                    };
                }
            }
        }
    }
}

impl<F, B, C, Req, Res, E> fmt::Debug for ResponseFuture<F, B, C, Req, Res, E>
where
    B: Backup<Req, Res, E>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("fallback", &self.shared.fallback)
            .finish_non_exhaustive()
    }
}
