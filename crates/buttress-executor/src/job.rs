//! A queued task with its types erased: its future, its timeout, and the
//! cell that answers its handle (or a request waiting to run in place:
//! see `in_place`). Run by a worker, it is polled in place;
//! dropped before it ended (cancelled in the queue, shut down, or its
//! worker dropped by the runtime), it answers its handle
//! [`TaskError::Cancelled`], so no handle waits forever.

use std::any::Any;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::error::TaskError;
use crate::history::Status;
use crate::in_place::{Ticket, WaiterCell};
use crate::task::{Cancel, CancelFlag, Canceller, InPlaceRun, TaskCell};

/// A task as a worker runs it.
pub(crate) trait Work: Send + 'static {
    /// Polls the task until it ends, times out, panics or is cancelled;
    /// then its handle is answered, its future dropped, and its status
    /// returned. Its timer starts at the first poll.
    fn poll_work(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Status>;
    /// Its timeout, for the log.
    fn timeout(&self) -> Option<Duration>;
    /// For giving a refused task back to its submitter.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

/// A task in the queue, or a request waiting to run in place; for a task,
/// a second reference to its cell for the running list (made at
/// submission, where the cell is in the submitter's cache, so that no
/// reference count is written under the executor's lock).
pub(crate) struct Job {
    kind: Kind,
    canceller: Option<Arc<dyn Cancel>>,
}

/// What a queued job is.
pub(crate) enum Kind {
    /// A task, run by a worker.
    Task(Box<dyn Work>),
    /// A request run in place by its caller, once given a slot.
    InPlace(Ticket),
}

impl Job {
    pub(crate) fn new<F, T>(
        task: F,
        cell: Arc<TaskCell<T>>,
        status: fn(&T) -> Status,
        timeout: Option<Duration>,
    ) -> Job
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        Job {
            canceller: Some(cell.clone()),
            kind: Kind::Task(Box::new(RunJob::new(task, cell, status, timeout))),
        }
    }

    /// A request waiting to run in place, sharing `cell` with its future.
    pub(crate) fn in_place(cell: Arc<WaiterCell>, priority: u8, queued_at: Instant) -> Job {
        Job {
            canceller: Some(cell.clone()),
            kind: Kind::InPlace(Ticket::new(cell, priority, queued_at)),
        }
    }

    /// What the running list keeps of it once it starts at `now` (taken
    /// once, when it starts).
    pub(crate) fn take_canceller(&mut self, now: Instant) -> Canceller {
        match &self.kind {
            Kind::Task(_) => Canceller::Task(self.canceller.take()),
            Kind::InPlace(ticket) => Canceller::InPlace(InPlaceRun {
                priority: ticket.priority,
                queued_at: ticket.queued_at,
                started: now,
                cancel: self.canceller.take(),
            }),
        }
    }

    pub(crate) fn into_kind(self) -> Kind {
        self.kind
    }

    /// The future of a task submitted as `F` with output `T`, back from a
    /// refused submission.
    pub(crate) fn give_back<F, T>(self) -> Option<F>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let Kind::Task(work) = self.kind else {
            return None;
        };
        let mut job = work.into_any().downcast::<RunJob<F, T>>().ok()?;
        job.work.take()
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Task(work) => f
                .debug_struct("Job")
                .field("timeout", &work.timeout())
                .finish_non_exhaustive(),
            Kind::InPlace(ticket) => f.debug_tuple("Job").field(ticket).finish(),
        }
    }
}

pin_project! {
    /// A task of type `F` with output `T`: one allocation, polled in
    /// place by its worker.
    pub(crate) struct RunJob<F, T>
    where
        F: Future<Output = T>,
        F: Send,
        F: 'static,
        T: Send,
        T: 'static,
    {
        #[pin]
        work: Option<F>,
        cell: Arc<TaskCell<T>>,
        status: fn(&T) -> Status,
        timeout: Option<Duration>,
        // Boxed: most tasks have none, and it is large.
        timer: Option<Pin<Box<Sleep>>>,
        polled: bool,
    }

    impl<F, T> PinnedDrop for RunJob<F, T>
    where
        F: Future<Output = T>,
        F: Send,
        F: 'static,
        T: Send,
        T: 'static,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Still there: it never ended. Dropped first (a panic in its
            // `Drop` contained), then the handle learns. An answered
            // handle keeps its answer.
            drop_contained(this.work);
            this.cell.answer(Err(TaskError::Cancelled));
        }
    }
}

impl<F, T> RunJob<F, T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(
        task: F,
        cell: Arc<TaskCell<T>>,
        status: fn(&T) -> Status,
        timeout: Option<Duration>,
    ) -> Self {
        RunJob {
            work: Some(task),
            cell,
            status,
            timeout,
            timer: None,
            polled: false,
        }
    }
}

impl<F, T> Work for RunJob<F, T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    fn poll_work(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Status> {
        let mut this = self.project();
        if !*this.polled {
            *this.polled = true;
            if let Some(t) = *this.timeout {
                // Panics on a runtime without its time driver: the task
                // then ends as panicked, and the executor carries on.
                let timer =
                    std::panic::catch_unwind(|| Box::pin(tokio::time::sleep(t))).map_err(|_| {
                        tracing::error!(timeout = ?t, "a task's timeout could not start: does the runtime have its time driver (enable_time)?");
                    });
                match timer {
                    Ok(timer) => *this.timer = Some(timer),
                    Err(()) => {
                        drop_contained(this.work);
                        this.cell.answer(Err(TaskError::Panicked));
                        return Poll::Ready(Status::Panicked);
                    }
                }
            }
        }
        let Poll::Ready(mut outcome) = poll_task(
            this.work.as_mut(),
            this.timer.as_mut(),
            this.cell.cancel_flag(),
            cx,
        ) else {
            return Poll::Pending;
        };
        // Timed out or cancelled: the task is dropped now, and a panic in
        // its `Drop` counts as a panic.
        if this.work.as_mut().as_pin_mut().is_some() && !drop_contained(this.work.as_mut()) {
            outcome = Err(TaskError::Panicked);
        }
        *this.timer = None;
        Poll::Ready(match outcome {
            Ok(out) => {
                let status = (this.status)(&out);
                this.cell.answer(Ok(out));
                status
            }
            Err(e) => {
                this.cell.answer(Err(e));
                match e {
                    TaskError::TimedOut => Status::TimedOut,
                    TaskError::Panicked => Status::Panicked,
                    TaskError::Cancelled => Status::Cancelled,
                }
            }
        })
    }

    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

fn poll_task<F: Future>(
    mut work: Pin<&mut Option<F>>,
    timer: Option<&mut Pin<Box<Sleep>>>,
    cancel: &CancelFlag,
    cx: &mut Context<'_>,
) -> Poll<Result<F::Output, TaskError>> {
    // The flag is read first, without registering: a task that ends at
    // its first poll never clones a waker for it.
    if cancel.is_cancelled() {
        return Poll::Ready(Err(TaskError::Cancelled));
    }
    if let Some(t) = timer
        && t.as_mut().poll(cx).is_ready()
    {
        return Poll::Ready(Err(TaskError::TimedOut));
    }
    let Some(task) = work.as_mut().as_pin_mut() else {
        return Poll::Ready(Err(TaskError::Cancelled));
    };
    match std::panic::catch_unwind(AssertUnwindSafe(|| task.poll(cx))) {
        Ok(Poll::Ready(out)) => {
            // Finished: drop it here, where a panic is contained.
            if !drop_contained(work) {
                return Poll::Ready(Err(TaskError::Panicked));
            }
            Poll::Ready(Ok(out))
        }
        Ok(Poll::Pending) if cancel.poll_cancelled(cx) => Poll::Ready(Err(TaskError::Cancelled)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(_) => {
            // Its state after a panic is unknown; dropping it may panic
            // again, contained.
            drop_contained(work);
            Poll::Ready(Err(TaskError::Panicked))
        }
    }
}

/// Drops a task's future in place, containing a panic in its `Drop`;
/// whether it dropped without one. The place is empty afterwards either
/// way.
pub(crate) fn drop_contained<F>(mut work: Pin<&mut Option<F>>) -> bool {
    std::panic::catch_unwind(AssertUnwindSafe(move || work.set(None))).is_ok()
}
