//! What happened to finished tasks.

use std::time::{Duration, Instant};

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// It completed (for `submit_try`, with `Ok`).
    Ok,
    /// It completed with `Err` (tasks submitted with `submit_try`).
    Failed,
    /// It ran past its timeout and was cancelled.
    TimedOut,
    /// It was cancelled: by its handle, or by a shutdown.
    Cancelled,
    /// It panicked; the executor carried on.
    Panicked,
}

impl Status {
    /// `"ok"`, `"failed"`, `"timed_out"`, `"cancelled"`, `"panicked"`.
    ///
    /// ```
    /// use buttress_executor::Status;
    /// assert_eq!(Status::TimedOut.as_str(), "timed_out");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::TimedOut => "timed_out",
            Status::Cancelled => "cancelled",
            Status::Panicked => "panicked",
        }
    }
}

/// One finished task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    /// Its id (submission order).
    pub id: u64,
    /// Its priority.
    pub priority: u8,
    /// How it ended.
    pub status: Status,
    /// When it was submitted.
    pub queued_at: Instant,
    /// When it started, if it did.
    pub started_at: Option<Instant>,
    /// When it finished (or was removed from the queue).
    pub finished_at: Instant,
}

impl TaskRecord {
    /// How long it waited in the queue.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_executor::{Executor, ExecutorConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("jobs", ExecutorConfig::default().max_running(1))?;
    /// let first = executor.submit(0, tokio::time::sleep(Duration::from_secs(2)))?;
    /// let second = executor.submit(0, async {})?;
    /// first.await?;
    /// second.await?;
    /// // Paused time: the 2 s pass without a real wait.
    /// assert_eq!(executor.snapshot().history[1].waited(), Duration::from_secs(2));
    /// # Ok(()) }
    /// ```
    pub fn waited(&self) -> Duration {
        self.started_at
            .unwrap_or(self.finished_at)
            .saturating_duration_since(self.queued_at)
    }

    /// How long it ran.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_executor::{Executor, ExecutorConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("jobs", ExecutorConfig::default())?;
    /// executor.submit(0, tokio::time::sleep(Duration::from_secs(3)))?.await?;
    /// // Paused time: the 3 s pass without a real wait.
    /// assert_eq!(executor.snapshot().history[0].ran(), Duration::from_secs(3));
    /// # Ok(()) }
    /// ```
    pub fn ran(&self) -> Duration {
        self.started_at.map_or(Duration::ZERO, |s| {
            self.finished_at.saturating_duration_since(s)
        })
    }
}

/// Counts since the executor was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Accepted into the queue.
    pub submitted: u64,
    /// Refused because the queue was full.
    pub rejected: u64,
    /// Completed.
    pub ok: u64,
    /// Completed with `Err`.
    pub failed: u64,
    /// Timed out.
    pub timed_out: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Panicked.
    pub panicked: u64,
}

impl Counters {
    pub(crate) fn count(&mut self, status: Status) {
        let c = match status {
            Status::Ok => &mut self.ok,
            Status::Failed => &mut self.failed,
            Status::TimedOut => &mut self.timed_out,
            Status::Cancelled => &mut self.cancelled,
            Status::Panicked => &mut self.panicked,
        };
        *c += 1;
    }
}
