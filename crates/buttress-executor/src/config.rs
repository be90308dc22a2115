//! [`ExecutorConfig`]: the bounds and timeouts of an executor.

use std::time::Duration;

use crate::core::Bounds;

/// The bounds and timeouts of an executor. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecutorConfig {
    /// Tasks queued at most, in all. Default 1,000.
    pub max_queued: usize,
    /// Tasks queued at most per priority. Default: no bound of its own.
    pub max_queued_per_priority: Option<usize>,
    /// Tasks running at once at most (the bulkhead). Default 8.
    pub max_running: usize,
    /// The timeout of each task, unless submitted with its own. Default:
    /// none.
    pub timeout: Option<Duration>,
    /// A task that has waited this long runs before any task that arrived
    /// after it, whatever their priorities: the bound on how long
    /// low-priority work can be starved. Default: none (strict priority).
    pub aging: Option<Duration>,
    /// Finished tasks remembered. Default 1,000.
    pub history: usize,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            max_queued: 1_000,
            max_queued_per_priority: None,
            max_running: 8,
            timeout: None,
            aging: None,
            history: 1_000,
        }
    }
}

impl ExecutorConfig {
    /// Sets [`max_queued`](ExecutorConfig::max_queued).
    pub fn max_queued(mut self, n: usize) -> Self {
        self.max_queued = n;
        self
    }
    /// Sets [`max_queued_per_priority`](ExecutorConfig::max_queued_per_priority).
    pub fn max_queued_per_priority(mut self, n: Option<usize>) -> Self {
        self.max_queued_per_priority = n;
        self
    }
    /// Sets [`max_running`](ExecutorConfig::max_running).
    pub fn max_running(mut self, n: usize) -> Self {
        self.max_running = n;
        self
    }
    /// Sets [`timeout`](ExecutorConfig::timeout).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }
    /// Sets [`aging`](ExecutorConfig::aging).
    pub fn aging(mut self, bound: Option<Duration>) -> Self {
        self.aging = bound;
        self
    }
    /// Sets [`history`](ExecutorConfig::history).
    pub fn history(mut self, n: usize) -> Self {
        self.history = n;
        self
    }

    pub(crate) fn bounds(&self) -> Result<Bounds, String> {
        if self.max_running == 0 {
            return Err("max_running must be at least 1".into());
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err("a zero timeout would time out every task".into());
        }
        Ok(Bounds {
            max_queued: self.max_queued,
            max_queued_per_priority: self.max_queued_per_priority,
            max_running: self.max_running,
            history: self.history,
        })
    }
}
