//! The errors of the executor.

use std::fmt;

/// The queue was full: the task was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull {
    pub(crate) priority: u8,
    pub(crate) depth: usize,
    pub(crate) total: usize,
}

impl QueueFull {
    /// The priority of the refused task.
    pub fn priority(&self) -> u8 {
        self.priority
    }
    /// Tasks queued at that priority.
    pub fn depth(&self) -> usize {
        self.depth
    }
    /// Tasks queued in all.
    pub fn total(&self) -> usize {
        self.total
    }
}

impl fmt::Display for QueueFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "executor queue full: {} queued at priority {}, {} in all",
            self.depth, self.priority, self.total
        )
    }
}

impl std::error::Error for QueueFull {}

/// Why a submission failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// The queue was full.
    Full(QueueFull),
    /// The executor is shutting down.
    Closed,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Full(e) => e.fmt(f),
            SubmitError::Closed => f.write_str("executor is shutting down"),
        }
    }
}

impl std::error::Error for SubmitError {}

/// Why a task produced no output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// It ran past its timeout.
    TimedOut,
    /// It was cancelled (by its handle or a shutdown).
    Cancelled,
    /// It panicked.
    Panicked,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskError::TimedOut => "task timed out",
            TaskError::Cancelled => "task cancelled",
            TaskError::Panicked => "task panicked",
        })
    }
}

impl std::error::Error for TaskError {}

/// Why the [`ExecutorLayer`](crate::ExecutorLayer) gave no response: the
/// request was not queued (the queue was full, or the executor is shutting
/// down), or its task ended without output (timed out, cancelled,
/// panicked). What the layer hands its rejection handler; with the default
/// handler it arrives inside tower's `BoxError`. Its `Display` and
/// `source` are the inner error's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// The request was not queued.
    #[error(transparent)]
    Submit(SubmitError),
    /// The request's task ended without output.
    #[error(transparent)]
    Task(TaskError),
}

impl ExecutorError {
    /// The queue-full refusal, if that is what this is.
    ///
    /// ```
    /// use buttress_executor::error::{ExecutorError, TaskError};
    /// assert!(ExecutorError::Task(TaskError::TimedOut).queue_full().is_none());
    /// ```
    pub fn queue_full(&self) -> Option<&QueueFull> {
        match self {
            ExecutorError::Submit(SubmitError::Full(full)) => Some(full),
            _ => None,
        }
    }
}

impl buttress_core::Rejection for ExecutorError {
    fn kind(&self) -> buttress_core::RejectionKind {
        use buttress_core::RejectionKind as K;
        match self {
            ExecutorError::Submit(SubmitError::Full(_)) => K::QueueFull,
            ExecutorError::Submit(SubmitError::Closed) => K::ShuttingDown,
            ExecutorError::Task(TaskError::TimedOut) => K::TimedOut,
            ExecutorError::Task(TaskError::Cancelled | TaskError::Panicked) => K::Failed,
        }
    }
}
