//! The response futures of [`ExecutorService`](crate::ExecutorService):
//! [`ResponseFuture`] for a request run as a task, [`InPlaceFuture`] for
//! one run in place.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use buttress_core::{Answer, OnReject};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use crate::error::{ExecutorError, TaskError};
use crate::executor::{Inner, TaskHandle};
use crate::history::Status;
use crate::in_place::{Seat, WaiterCell};
use crate::job::drop_contained;
use crate::worker::Meta;

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

pin_project! {
    /// The response future of an [`ExecutorService`](crate::ExecutorService)
    /// run in place ([`ExecutorLayer::in_place`](crate::ExecutorLayer::in_place)):
    /// it waits for a running slot when it must (in the executor's priority
    /// queue), then asks the inner service for readiness, calls it and
    /// polls its response, all in the caller's task, holding the slot.
    ///
    /// Its parameters are the inner service, the request and the
    /// rejection handler. Dropping it before it completes gives its slot
    /// back, or takes it out of the queue.
    pub struct InPlaceFuture<S, Req, R>
    where
        S: Service<Req>,
    {
        stage: Stage,
        // `None` for a refused request.
        executor: Option<Arc<Inner>>,
        service: Option<S>,
        request: Option<Req>,
        #[pin]
        call: Option<S::Future>,
        // Boxed: most executors have no timeout, and it is large.
        timer: Option<Pin<Box<Sleep>>>,
        on_rejected: R,
    }

    impl<S, Req, R> PinnedDrop for InPlaceFuture<S, Req, R>
    where
        S: Service<Req>,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let Some(inner) = this.executor.as_ref() else {
                return;
            };
            match std::mem::replace(this.stage, Stage::Done) {
                Stage::Held { meta, .. } => {
                    // The inner future goes first, a panic in its `Drop`
                    // contained; then the slot.
                    let status = if drop_contained(this.call) {
                        Status::Cancelled
                    } else {
                        Status::Panicked
                    };
                    inner.end_in_place(&meta, status);
                }
                Stage::Queued { cell, id, priority } => inner.leave_queue(priority, id, &cell),
                Stage::Refused(_) | Stage::Done => {}
            }
        }
    }
}

/// Where an in-place request stands.
enum Stage {
    /// Refused at the call: answered at the first poll.
    Refused(Option<ExecutorError>),
    /// Waiting in the queue for a slot.
    Queued {
        cell: Arc<WaiterCell>,
        id: u64,
        priority: u8,
    },
    /// Holding a slot. `cancel` is how a shutdown's deadline stops it: made
    /// (or, for a request that was queued, kept) once it waits on its
    /// inner service; `first`: not polled in the slot yet.
    Held {
        meta: Meta,
        cancel: Option<Arc<WaiterCell>>,
        first: bool,
    },
    /// Answered, or dropped.
    Done,
}

impl<S, Req, R> InPlaceFuture<S, Req, R>
where
    S: Service<Req>,
{
    pub(crate) fn admitted(
        seat: Seat,
        executor: Arc<Inner>,
        service: S,
        request: Req,
        on_rejected: R,
    ) -> Self {
        let stage = match seat {
            Seat::Held(meta) => Stage::Held {
                meta,
                cancel: None,
                first: true,
            },
            Seat::Queued { cell, id, priority } => Stage::Queued { cell, id, priority },
        };
        InPlaceFuture {
            stage,
            executor: Some(executor),
            service: Some(service),
            request: Some(request),
            call: None,
            timer: None,
            on_rejected,
        }
    }

    #[cold]
    pub(crate) fn refused(refusal: ExecutorError, on_rejected: R) -> Self {
        InPlaceFuture {
            stage: Stage::Refused(Some(refusal)),
            executor: None,
            service: None,
            request: None,
            call: None,
            timer: None,
            on_rejected,
        }
    }
}

impl<S, Req, R> fmt::Debug for InPlaceFuture<S, Req, R>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            Stage::Refused(_) => "refused",
            Stage::Queued { .. } => "queued",
            Stage::Held { .. } => "running",
            Stage::Done => "done",
        };
        f.debug_struct("InPlaceFuture")
            .field("stage", &stage)
            .finish_non_exhaustive()
    }
}

impl<S, Req, R> Future for InPlaceFuture<S, Req, R>
where
    S: Service<Req>,
    R: OnReject<ExecutorError, S::Response, S::Error>,
{
    type Output = Result<S::Response, R::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // Until it holds a slot.
        loop {
            match this.stage {
                Stage::Held { .. } => break,
                Stage::Queued { cell, .. } => match cell.poll_grant(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(meta)) => {
                        let cell = cell.clone();
                        *this.stage = Stage::Held {
                            meta,
                            cancel: Some(cell),
                            first: true,
                        };
                    }
                    // Dropped from the queue by a shutdown.
                    Poll::Ready(None) => {
                        *this.stage = Stage::Done;
                        let refusal = ExecutorError::Task(TaskError::Cancelled);
                        return Poll::Ready(this.on_rejected.on_reject(refusal));
                    }
                },
                Stage::Refused(refusal) => {
                    return match refusal.take() {
                        Some(r) => {
                            *this.stage = Stage::Done;
                            Poll::Ready(this.on_rejected.on_reject(r))
                        }
                        None => Poll::Pending,
                    };
                }
                // Polled again after its answer: the `Future` contract is
                // broken, and it pends forever.
                Stage::Done => return Poll::Pending,
            }
        }
        let (
            Stage::Held {
                meta,
                cancel,
                first,
            },
            Some(inner),
        ) = (&mut *this.stage, this.executor.as_ref())
        else {
            return Poll::Pending;
        };
        let meta = *meta;
        let outcome: Result<Result<S::Response, S::Error>, TaskError> = 'ended: {
            if std::mem::take(first) {
                // A shutdown's deadline freed the slot before the first
                // poll: the work never starts.
                if inner.deadline_passed() {
                    break 'ended Err(TaskError::Cancelled);
                }
                if let Some(t) = inner.default_timeout() {
                    // Panics on a runtime without its time driver: the
                    // request then ends as panicked, as a task would.
                    match std::panic::catch_unwind(|| Box::pin(tokio::time::sleep(t))) {
                        Ok(timer) => *this.timer = Some(timer),
                        Err(_) => {
                            tracing::error!(timeout = ?t, "a request's timeout could not start: does the runtime have its time driver (enable_time)?");
                            break 'ended Err(TaskError::Panicked);
                        }
                    }
                }
            }
            // Read first, without registering: a request that ends at its
            // first poll never clones a waker for it.
            if cancel.as_ref().is_some_and(|c| c.flag().is_cancelled()) {
                break 'ended Err(TaskError::Cancelled);
            }
            if let Some(t) = this.timer.as_mut()
                && t.as_mut().poll(cx).is_ready()
            {
                break 'ended Err(TaskError::TimedOut);
            }
            let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                poll_call(this.service, this.request, this.call.as_mut(), cx)
            }));
            match polled {
                Ok(Poll::Ready(result)) => Ok(result),
                Ok(Poll::Pending) => {
                    // It waits: from now on a shutdown's deadline must be
                    // able to wake it, so the running list learns how.
                    let flag = match cancel {
                        Some(c) => c,
                        None => {
                            let c = Arc::new(WaiterCell::running());
                            if !inner.watch_in_place(&meta, c.clone()) {
                                break 'ended Err(TaskError::Cancelled);
                            }
                            cancel.insert(c)
                        }
                    };
                    if flag.flag().poll_cancelled(cx) {
                        break 'ended Err(TaskError::Cancelled);
                    }
                    return Poll::Pending;
                }
                Err(_) => Err(TaskError::Panicked),
            }
        };
        // Ended: the inner future goes first, where a panic in its `Drop`
        // is contained (and counts as a panic); then the slot.
        let outcome = if drop_contained(this.call) {
            outcome
        } else {
            Err(TaskError::Panicked)
        };
        *this.timer = None;
        *this.stage = Stage::Done;
        let status = match &outcome {
            Ok(Ok(_)) => Status::Ok,
            Ok(Err(_)) => Status::Failed,
            Err(TaskError::TimedOut) => Status::TimedOut,
            Err(TaskError::Panicked) => Status::Panicked,
            Err(TaskError::Cancelled) => Status::Cancelled,
        };
        inner.end_in_place(&meta, status);
        Poll::Ready(match outcome {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(R::Error::from(e)),
            Err(e) => this.on_rejected.on_reject(ExecutorError::Task(e)),
        })
    }
}

/// Asks the inner service for readiness and calls it (once), then polls
/// its response.
#[inline]
fn poll_call<S: Service<Req>, Req>(
    service: &mut Option<S>,
    request: &mut Option<Req>,
    mut call: Pin<&mut Option<S::Future>>,
    cx: &mut Context<'_>,
) -> Poll<Result<S::Response, S::Error>> {
    if call.is_none() {
        let (Some(svc), true) = (service.as_mut(), request.is_some()) else {
            return Poll::Pending;
        };
        std::task::ready!(svc.poll_ready(cx))?;
        let Some(req) = request.take() else {
            return Poll::Pending;
        };
        call.set(Some(svc.call(req)));
    }
    match call.as_pin_mut() {
        Some(f) => f.poll(cx),
        None => Poll::Pending,
    }
}
