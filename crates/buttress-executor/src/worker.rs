//! The workers: one tokio task per running slot. A worker runs a task,
//! records it, and runs the next task the queue gives its slot, until the
//! queue has none: a queued task costs no spawn of its own. A task that
//! starts at submission (a free slot, nothing queued) gets a new worker
//! that holds it unboxed.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use crate::executor::Inner;
use crate::history::Status;
use crate::job::{Kind, Work};

/// Tasks a worker runs in one poll, at most, before it yields to the
/// other tasks of its runtime thread.
const BUDGET: usize = 16;

/// How long a worker goes on starting tasks in one poll: after the first
/// task of a poll ends, it starts more only until this much time has
/// passed, then yields. As a separate tokio task each, they would have
/// let the thread's other tasks in between.
const TIME_BUDGET: Duration = Duration::from_millis(1);

/// A running task's place and times.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    /// Its place among the running tasks.
    pub(crate) slot: usize,
    pub(crate) id: u64,
    pub(crate) priority: u8,
    pub(crate) queued_at: Instant,
    pub(crate) started: Instant,
}

/// Where a worker keeps its next task: its place and times, and the task.
pub(crate) type NextPlaces<'a> = (&'a mut Option<Meta>, &'a mut Option<Pin<Box<dyn Work>>>);

/// A task taken from the queue to run.
pub(crate) struct Current {
    pub(crate) work: Pin<Box<dyn Work>>,
    pub(crate) meta: Meta,
}

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Current")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// A worker: the spawned future that runs task after task in one
    /// slot. `first`, when set, is the task it was spawned for, held
    /// unboxed; the tasks after it come boxed from the queue.
    pub(crate) struct Worker<W: Work> {
        inner: Arc<Inner>,
        // The task running now; none once the worker is done.
        meta: Option<Meta>,
        #[pin]
        first: Option<W>,
        current: Option<Pin<Box<dyn Work>>>,
    }

    impl<W: Work> PinnedDrop for Worker<W> {
        /// The runtime dropped the worker before its task ended (it is
        /// shutting down): the task is cancelled and its slot freed. What
        /// the queue gives the slot next is cancelled the same way, in
        /// this loop rather than by spawning into a runtime that would
        /// drop it at once (a request run in place is given the slot
        /// instead: its caller runs it).
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let Some(meta) = this.meta.take() else {
                return;
            };
            // Their drops answer the handles: cancelled.
            this.first.set(None);
            *this.current = None;
            // Its own task ran; those the queue gives its slot never do.
            // A request run in place is given the slot: its caller runs
            // it, if still there.
            let mut left = vec![(meta, true)];
            while let Some((meta, ran)) = left.pop() {
                let (outcome, now) = this.inner.end(&meta, Status::Cancelled, None, ran);
                for start in outcome.starts {
                    let (priority, depth) = (start.entry.priority, start.depth);
                    let waited = now.saturating_duration_since(start.entry.enqueued);
                    let (next, kind) = Inner::placed(start, now);
                    match kind {
                        Kind::Task(work) => {
                            drop(work);
                            left.push((next, false));
                        }
                        Kind::InPlace(ticket) => {
                            if ticket.grant(next) {
                                this.inner.metrics.started(waited);
                            } else {
                                left.push((next, false));
                            }
                        }
                    }
                    this.inner.set_depth(priority, depth);
                }
            }
        }
    }
}

impl<W: Work> Worker<W> {
    /// A worker for `task`, started at submission.
    pub(crate) fn new(inner: Arc<Inner>, meta: Meta, task: W) -> Self {
        Worker {
            inner,
            meta: Some(meta),
            first: Some(task),
            current: None,
        }
    }
}

impl Worker<NoTask> {
    /// A worker for a task from the queue.
    pub(crate) fn from_queue(inner: Arc<Inner>, current: Current) -> Self {
        Worker {
            inner,
            meta: Some(current.meta),
            first: None,
            current: Some(current.work),
        }
    }
}

impl<W: Work> Future for Worker<W> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let mut first_end: Option<Instant> = None;
        for _ in 0..BUDGET {
            let Some(meta) = this.meta.as_ref() else {
                return Poll::Ready(());
            };
            let (polled, timeout) = match (this.first.as_mut().as_pin_mut(), this.current.as_mut())
            {
                (Some(first), _) => {
                    let timeout = first.timeout();
                    (first.poll_work(cx), timeout)
                }
                (None, Some(work)) => (work.as_mut().poll_work(cx), work.timeout()),
                (None, None) => (Poll::Ready(Status::Cancelled), None),
            };
            let Poll::Ready(status) = polled else {
                return Poll::Pending;
            };
            let meta = *meta;
            // The finished task is dropped before it is recorded, where a
            // panic is contained: with its handle gone, its output goes
            // with it, and may panic in its `Drop`.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
                this.first.set(None);
                *this.current = None;
            }));
            let (outcome, now) = this.inner.end(&meta, status, timeout, true);
            // Recorded: the next task, if any, takes its place.
            *this.meta = None;
            this.inner
                .dispatch(outcome, now, Some((&mut *this.meta, &mut *this.current)));
            if now.saturating_duration_since(*first_end.get_or_insert(now)) >= TIME_BUDGET {
                break;
            }
        }
        if this.meta.is_none() {
            return Poll::Ready(());
        }
        // Budget spent: run on after the thread's other tasks.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<W: Work> fmt::Debug for Worker<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// The type of the first task of a worker spawned for a queued one: none.
#[derive(Debug)]
pub(crate) struct NoTask;

impl Work for NoTask {
    fn poll_work(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Status> {
        Poll::Ready(Status::Cancelled)
    }
    fn timeout(&self) -> Option<Duration> {
        None
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}
