//! What a task's handle shares with the executor: the answer (the task's
//! output, or why there is none) and the flag that cancels the task while
//! it runs. One small allocation, typed by the output only. And what the
//! running list keeps of each running task or in-place request: how to
//! cancel it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use buttress_core::sync::Mutex;

use crate::error::TaskError;

/// What shutdown keeps of each running task: a way to cancel it.
pub(crate) trait Cancel: Send + Sync {
    /// Asks the task to stop at its next poll; whether it had no answer
    /// yet.
    fn cancel(&self) -> bool;
}

/// What the running list keeps of one running slot's holder.
#[derive(Clone)]
pub(crate) enum Canceller {
    /// A task on a worker: its cell, which stops it at its next poll.
    Task(Option<Arc<dyn Cancel>>),
    /// A request run in place by its caller's task.
    InPlace(InPlaceRun),
}

/// A request run in place, as the running list keeps it: enough to record
/// it when a shutdown's deadline frees its slot, and, once it has waited
/// on its inner service, how to wake it to stop.
#[derive(Clone)]
pub(crate) struct InPlaceRun {
    pub(crate) priority: u8,
    pub(crate) queued_at: Instant,
    pub(crate) started: Instant,
    pub(crate) cancel: Option<Arc<dyn Cancel>>,
}

impl Canceller {
    /// Asks the holder to stop, if it can be reached.
    pub(crate) fn cancel(&self) {
        match self {
            Canceller::Task(Some(c))
            | Canceller::InPlace(InPlaceRun {
                cancel: Some(c), ..
            }) => {
                c.cancel();
            }
            Canceller::Task(None) | Canceller::InPlace(_) => {}
        }
    }
}

/// The answer to one task's handle, and its cancel flag.
#[derive(Debug)]
pub(crate) struct TaskCell<T> {
    answer: Mutex<Answer<T>>,
    cancel: CancelFlag,
}

#[derive(Debug)]
struct Answer<T> {
    reply: Reply<T>,
    /// The handle's waker, while it waits.
    waker: Option<Waker>,
}

#[derive(Debug)]
enum Reply<T> {
    /// Not answered yet.
    Unanswered,
    Ready(Result<T, TaskError>),
    /// Answered, and the handle took it.
    Taken,
}

impl<T> TaskCell<T> {
    pub(crate) fn new() -> Self {
        TaskCell {
            answer: Mutex::new(Answer {
                reply: Reply::Unanswered,
                waker: None,
            }),
            cancel: CancelFlag::default(),
        }
    }

    /// Answers the handle, unless it was answered already: the first
    /// answer wins (a task that timed out stays timed out).
    pub(crate) fn answer(&self, reply: Result<T, TaskError>) {
        let waker = {
            let mut a = self.answer.lock();
            if !matches!(a.reply, Reply::Unanswered) {
                return;
            }
            a.reply = Reply::Ready(reply);
            a.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The answer, once there is one; if not, `cx` is woken by it.
    pub(crate) fn poll_answer(&self, cx: &Context<'_>) -> Poll<Result<T, TaskError>> {
        let mut a = self.answer.lock();
        match std::mem::replace(&mut a.reply, Reply::Taken) {
            Reply::Ready(r) => Poll::Ready(r),
            // Polled again after it completed.
            Reply::Taken => Poll::Ready(Err(TaskError::Cancelled)),
            Reply::Unanswered => {
                a.reply = Reply::Unanswered;
                match a.waker.as_mut() {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => a.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    pub(crate) fn cancel_flag(&self) -> &CancelFlag {
        &self.cancel
    }

    /// Whether the handle has its answer (or took it): the task ended,
    /// and is neither queued nor running.
    pub(crate) fn is_answered(&self) -> bool {
        !matches!(self.answer.lock().reply, Reply::Unanswered)
    }

    /// As [`Cancel::cancel`].
    pub(crate) fn cancel_task(&self) -> bool {
        if self.is_answered() {
            return false;
        }
        self.cancel.raise();
        true
    }
}

impl<T: Send> Cancel for TaskCell<T> {
    fn cancel(&self) -> bool {
        self.cancel_task()
    }
}

/// Cancels one running task: a flag, and the waker of what runs it.
#[derive(Debug)]
pub(crate) struct CancelFlag {
    cancelled: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Default for CancelFlag {
    fn default() -> Self {
        CancelFlag {
            cancelled: AtomicBool::new(false),
            waker: Mutex::new(None),
        }
    }
}

impl Cancel for CancelFlag {
    fn cancel(&self) -> bool {
        self.raise();
        true
    }
}

impl CancelFlag {
    /// Raises the flag and wakes whoever waits on it.
    pub(crate) fn raise(&self) {
        self.cancelled.store(true, Ordering::Release);
        let waker = self.waker.lock().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether cancelled, without registering for a later cancel.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Whether cancelled; if not, `cx` is woken by a later cancel. The flag
    /// is read again after the waker is stored, so no cancel is missed.
    pub(crate) fn poll_cancelled(&self, cx: &Context<'_>) -> bool {
        if self.is_cancelled() {
            return true;
        }
        {
            let mut w = self.waker.lock();
            match w.as_mut() {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *w = Some(cx.waker().clone()),
            }
        }
        self.is_cancelled()
    }
}
