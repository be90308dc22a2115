//! The errors of the executor, each a type a caller can match on:
//! [`BuildError`] and [`ConfigError`] when making one, [`SubmitError`]
//! (with [`QueueFull`]) when queueing a task, [`TaskError`] when a task
//! gives no output, and [`ExecutorError`], what the layer hands its
//! rejection handler.

use buttress_core::NameError;

/// The queue was full: the task was not queued.
///
/// ```
/// use buttress_executor::{Executor, ExecutorConfig, SubmitError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let executor = Executor::new("jobs", ExecutorConfig::default().max_running(1).max_queued(1))?;
/// let _running = executor.submit(0, std::future::pending::<()>())?;
/// let _queued = executor.submit(3, async {})?;
/// let Err(SubmitError::Full(full)) = executor.submit(3, async {}) else { panic!() };
/// assert_eq!((full.priority(), full.depth(), full.total()), (3, 1, 1));
/// assert_eq!(full.to_string(), "executor queue full: 1 queued at priority 3, 1 in all");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("executor queue full: {depth} queued at priority {priority}, {total} in all")]
pub struct QueueFull {
    pub(crate) priority: u8,
    pub(crate) depth: usize,
    pub(crate) total: usize,
}

impl QueueFull {
    /// The priority of the refused task.
    ///
    /// ```
    /// # use buttress_executor::{Executor, ExecutorConfig, SubmitError};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let executor = Executor::new("jobs", ExecutorConfig::default().max_running(1).max_queued(2))?;
    /// # let _running = executor.submit(0, std::future::pending::<()>())?;
    /// # let _a = executor.submit(1, async {})?;
    /// # let _b = executor.submit(3, async {})?;
    /// let Err(SubmitError::Full(full)) = executor.submit(3, async {}) else { panic!() };
    /// assert_eq!(full.priority(), 3);
    /// # Ok(()) }
    /// ```
    pub fn priority(&self) -> u8 {
        self.priority
    }
    /// Tasks queued at that priority.
    ///
    /// ```
    /// # use buttress_executor::{Executor, ExecutorConfig, SubmitError};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let executor = Executor::new("jobs", ExecutorConfig::default().max_running(1).max_queued(2))?;
    /// # let _running = executor.submit(0, std::future::pending::<()>())?;
    /// # let _a = executor.submit(1, async {})?;
    /// # let _b = executor.submit(3, async {})?;
    /// let Err(SubmitError::Full(full)) = executor.submit(3, async {}) else { panic!() };
    /// assert_eq!(full.depth(), 1); // one task of priority 3 queued
    /// # Ok(()) }
    /// ```
    pub fn depth(&self) -> usize {
        self.depth
    }
    /// Tasks queued in all.
    ///
    /// ```
    /// # use buttress_executor::{Executor, ExecutorConfig, SubmitError};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let executor = Executor::new("jobs", ExecutorConfig::default().max_running(1).max_queued(2))?;
    /// # let _running = executor.submit(0, std::future::pending::<()>())?;
    /// # let _a = executor.submit(1, async {})?;
    /// # let _b = executor.submit(3, async {})?;
    /// let Err(SubmitError::Full(full)) = executor.submit(3, async {}) else { panic!() };
    /// assert_eq!(full.total(), 2);
    /// # Ok(()) }
    /// ```
    pub fn total(&self) -> usize {
        self.total
    }
}

/// Why a submission failed. Its `Display` and `source` are the
/// [`QueueFull`]'s when the queue was full.
///
/// ```
/// use std::time::Duration;
/// use buttress_executor::{Executor, ExecutorConfig, SubmitError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let executor = Executor::new("jobs", ExecutorConfig::default())?;
/// executor.shutdown(Duration::from_secs(1)).await;
/// assert_eq!(executor.submit(0, async {}).unwrap_err(), SubmitError::Closed);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The queue was full.
    #[error(transparent)]
    Full(QueueFull),
    /// The executor is shutting down.
    #[error("executor is shutting down")]
    Closed,
}

/// Why a task produced no output.
///
/// ```
/// use std::time::Duration;
/// use buttress_executor::{Executor, ExecutorConfig, TaskError};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let executor = Executor::new("jobs", ExecutorConfig::default())?;
/// let slow = executor.submit_with(0, Some(Duration::from_secs(1)), std::future::pending::<()>())?;
/// assert_eq!(slow.await, Err(TaskError::TimedOut)); // on paused time: no real wait
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// It ran past its timeout.
    #[error("task timed out")]
    TimedOut,
    /// It was cancelled (by its handle or a shutdown).
    #[error("task cancelled")]
    Cancelled,
    /// It panicked.
    #[error("task panicked")]
    Panicked,
}

/// An [`ExecutorConfig`](crate::ExecutorConfig) that makes no sense; from
/// [`ExecutorConfig::validate`](crate::ExecutorConfig::validate), making an
/// executor, and loading a config under the `serde` feature.
///
/// ```
/// use buttress_executor::{ConfigError, ExecutorConfig};
///
/// let config = ExecutorConfig::default().max_running(0);
/// assert_eq!(config.validate(), Err(ConfigError::ZeroMaxRunning));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_running` is 0: no task could ever run.
    #[error("invalid executor configuration: max_running must be at least 1")]
    ZeroMaxRunning,
    /// `timeout` is zero: every task would time out.
    #[error("invalid executor configuration: a zero timeout would time out every task")]
    ZeroTimeout,
}

/// Why an executor could not be made: from
/// [`Executor::new`](crate::Executor::new) and
/// [`Executor::with_runtime`](crate::Executor::with_runtime). The cause,
/// when there is one, is its `source`.
///
/// ```
/// use buttress_executor::{BuildError, ConfigError, Executor, ExecutorConfig};
///
/// // Outside a tokio runtime.
/// let err = Executor::new("jobs", ExecutorConfig::default()).unwrap_err();
/// assert!(matches!(err, BuildError::NoRuntime(_)));
/// assert!(std::error::Error::source(&err).is_some());
///
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// let _inside = runtime.enter();
/// let err = Executor::new("jobs", ExecutorConfig::default().max_running(0)).unwrap_err();
/// assert!(matches!(err, BuildError::Config(ConfigError::ZeroMaxRunning)));
/// let err = Executor::new("", ExecutorConfig::default()).unwrap_err();
/// assert!(matches!(err, BuildError::Name(_)));
/// assert_eq!(err.to_string(), "invalid executor name"); // the cause is its source
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Not inside a tokio runtime ([`Executor::new`](crate::Executor::new)
    /// spawns on the current one).
    #[error("no tokio runtime: make the executor inside one")]
    NoRuntime(#[source] tokio::runtime::TryCurrentError),
    /// The name is not a valid [`Name`](buttress_core::Name).
    #[error("invalid executor name")]
    Name(#[from] NameError),
    /// The configuration makes no sense.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

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
            // A layer's request (task or in place) is cancelled only by a
            // shutdown (a dropped response future has nobody left to
            // answer).
            ExecutorError::Task(TaskError::Cancelled) => K::ShuttingDown,
            ExecutorError::Task(TaskError::Panicked) => K::Failed,
        }
    }
}
