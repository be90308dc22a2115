//! The response future of [`ExecutorService`](crate::ExecutorService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use buttress_core::{Answer, OnReject};

use crate::error::ExecutorError;
use crate::executor::TaskHandle;

/// Resolves to the response of a request's task, or to the rejection
/// handler's answer when the executor failed it.
///
/// Its parameters are the response, the inner service's error and the
/// rejection handler. Dropping it before it completes cancels the task: it
/// leaves the queue, or stops running, instead of taking a slot nobody
/// waits for.
pub struct ResponseFuture<T, E, R>
where
    R: OnReject<ExecutorError, T, E>,
{
    kind: Kind<T, E, R>,
}

enum Kind<T, E, R: OnReject<ExecutorError, T, E>> {
    /// Queued or running.
    Waiting {
        handle: TaskHandle<Result<T, E>>,
        on_rejected: R,
    },
    /// Answered at once, until taken.
    Done(Answer<Result<T, R::Error>>),
}

impl<T, E, R: OnReject<ExecutorError, T, E>> ResponseFuture<T, E, R> {
    pub(crate) fn waiting(handle: TaskHandle<Result<T, E>>, on_rejected: R) -> Self {
        Self {
            kind: Kind::Waiting {
                handle,
                on_rejected,
            },
        }
    }

    pub(crate) fn done(answer: Result<T, R::Error>) -> Self {
        Self {
            kind: Kind::Done(Answer::new(answer)),
        }
    }
}

impl<T, E, R: OnReject<ExecutorError, T, E>> fmt::Debug for ResponseFuture<T, E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Waiting { .. } => "waiting",
            Kind::Done(_) => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}

// Nothing in it is ever pinned: the handle holds only shared pointers, and
// the answer is moved out, never polled.
impl<T, E, R: OnReject<ExecutorError, T, E>> Unpin for ResponseFuture<T, E, R> {}

impl<T, E, R: OnReject<ExecutorError, T, E>> Drop for ResponseFuture<T, E, R> {
    fn drop(&mut self) {
        if let Kind::Waiting { handle, .. } = &self.kind {
            handle.cancel();
        }
    }
}

impl<T, E, R: OnReject<ExecutorError, T, E>> Future for ResponseFuture<T, E, R> {
    type Output = Result<T, R::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is Unpin: the handle holds only shared pointers.
        match &mut self.get_mut().kind {
            Kind::Waiting {
                handle,
                on_rejected,
            } => Pin::new(handle).poll(cx).map(|r| match r {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(e)) => Err(R::Error::from(e)),
                Err(e) => on_rejected.on_reject(ExecutorError::Task(e)),
            }),
            Kind::Done(answer) => answer.take(),
        }
    }
}
