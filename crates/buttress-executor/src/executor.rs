//! [`Executor`]: the async side: spawning, timeouts, panics, cancellation,
//! shutdown.

use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use buttress_core::{Name, SharedClock, default_clock};
use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::config::ExecutorConfig;
use crate::core::{Core, Now, Outcome, Refused, Snapshot, Start};
use crate::error::{BuildError, ConfigError, SubmitError, TaskError};
use crate::history::{Status, TaskRecord};
use crate::in_place::{Seat, WaiterCell};
use crate::job::{Job, Kind, RunJob};
use crate::task::{Cancel, Canceller, InPlaceRun, TaskCell};
use crate::worker::{Current, Meta, NextPlaces, Worker};

/// A bounded priority executor. Cheap to clone: clones share it.
///
/// ```
/// use std::time::Duration;
/// use buttress_executor::{Executor, ExecutorConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let executor = Executor::new("chat", ExecutorConfig::default().max_running(4))?;
/// let answer = executor.submit(10, async { 6 * 7 })?; // priority 10
/// let batch = executor.submit(0, async { "later" })?;  // priority 0 waits behind 10
/// assert_eq!(answer.await?, 42);
/// assert_eq!(batch.await?, "later");
/// let report = executor.shutdown(Duration::from_secs(5)).await;
/// assert_eq!(report.dropped_queued, 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Executor {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    name: Name,
    core: Core<Job, Canceller>,
    /// The default task timeout in nanoseconds, [`NO_TIMEOUT`] for none:
    /// read by every submit, changed by [`Executor::reconfigure`].
    default_timeout: AtomicU64,
    /// The configuration in force, for [`Executor::config`].
    config: std::sync::Mutex<ExecutorConfig>,
    runtime: Handle,
    clock: SharedClock,
    /// Signalled when a task finishes (space, and maybe idle), if anyone
    /// waits (`waiting` counts them).
    finished: Notify,
    waiting: AtomicUsize,
    /// Signalled by a forcing shutdown.
    forced: Notify,
    shutting_down: AtomicBool,
    /// Set by a forcing (second) shutdown call, before `forced` is
    /// notified, so the first call cannot miss it.
    force_requested: AtomicBool,
    /// Set when a shutdown cancels what is left: an in-place request not
    /// yet polled learns it at its first poll.
    deadline_passed: AtomicBool,
    pub(crate) metrics: crate::metrics::ExecutorMetrics,
    depth_gauges: Box<[OnceLock<metrics::Gauge>]>,
}

/// [`Inner::default_timeout`]'s word for "no timeout".
const NO_TIMEOUT: u64 = u64::MAX;

fn timeout_nanos(timeout: Option<Duration>) -> u64 {
    timeout.map_or(NO_TIMEOUT, |t| {
        u64::try_from(t.as_nanos()).unwrap_or(NO_TIMEOUT - 1)
    })
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("name", &self.inner.name)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

/// What a shutdown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Queued tasks dropped at the deadline (their handles get
    /// [`TaskError::Cancelled`]).
    pub dropped_queued: usize,
    /// Running tasks cancelled at the deadline.
    pub cancelled_running: usize,
    /// Whether everything finished before the deadline.
    pub drained: bool,
}

impl Executor {
    /// An executor named `name` (the `name` label of its metrics),
    /// spawning on the current tokio runtime and reading
    /// [`default_clock`](buttress_core::default_clock) (the CPU's
    /// time-stamp counter, or tokio's clock when the runtime's time is
    /// paused, as in `#[tokio::test(start_paused = true)]`); or why it
    /// cannot be made (no runtime, an invalid name or config).
    ///
    /// ```
    /// use buttress_executor::{Executor, ExecutorConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default().max_running(4))?;
    /// assert_eq!(executor.name(), "chat");
    /// # Ok(()) }
    /// ```
    pub fn new(name: &str, config: ExecutorConfig) -> Result<Executor, BuildError> {
        let runtime = Handle::try_current().map_err(BuildError::NoRuntime)?;
        Executor::with_runtime(name, config, runtime, default_clock())
    }

    /// An executor spawning on `runtime`, reading time from `clock`: made
    /// outside the runtime, or on a clock of its own (for tests).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use buttress_core::TokioClock;
    /// use buttress_executor::{Executor, ExecutorConfig};
    ///
    /// let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build()?;
    /// let executor = Executor::with_runtime(
    ///     "chat",
    ///     ExecutorConfig::default(),
    ///     runtime.handle().clone(),
    ///     Arc::new(TokioClock),
    /// )?;
    /// let answer = executor.submit(0, async { 42 })?;
    /// assert_eq!(runtime.block_on(answer)?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_runtime(
        name: &str,
        config: ExecutorConfig,
        runtime: Handle,
        clock: SharedClock,
    ) -> Result<Executor, BuildError> {
        let name = Name::new(name)?;
        let bounds = config.bounds()?;
        Ok(Executor {
            inner: Arc::new(Inner {
                metrics: crate::metrics::ExecutorMetrics::new(name.as_str()),
                depth_gauges: (0..256).map(|_| OnceLock::new()).collect(),
                name,
                core: Core::new(bounds, config.aging),
                default_timeout: AtomicU64::new(timeout_nanos(config.timeout)),
                config: std::sync::Mutex::new(config),
                runtime,
                clock,
                finished: Notify::new(),
                waiting: AtomicUsize::new(0),
                forced: Notify::new(),
                shutting_down: AtomicBool::new(false),
                force_requested: AtomicBool::new(false),
                deadline_passed: AtomicBool::new(false),
            }),
        })
    }

    /// The name.
    ///
    /// ```
    /// # use buttress_executor::{Executor, ExecutorConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default())?;
    /// assert_eq!(executor.name(), "chat");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    /// Queues `task` at `priority` (higher runs first), with the default
    /// timeout. Fails at once when the queue is full
    /// ([`SubmitError::Full`]) or the executor is shutting down.
    ///
    /// ```
    /// # use buttress_executor::{Executor, ExecutorConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default())?;
    /// let answer = executor.submit(9, async { 6 * 7 })?;
    /// assert_eq!(answer.await?, 42);
    /// # Ok(()) }
    /// ```
    pub fn submit<F, T>(&self, priority: u8, task: F) -> Result<TaskHandle<T>, SubmitError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit_with(priority, self.inner.default_timeout(), task)
    }

    /// [`submit`](Executor::submit) with its own timeout (`None`: none),
    /// instead of the config's.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_executor::{Executor, ExecutorConfig, TaskError};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default())?;
    /// let stuck = executor.submit_with(0, Some(Duration::from_secs(2)), std::future::pending::<()>())?;
    /// assert_eq!(stuck.await, Err(TaskError::TimedOut)); // paused time: no real wait
    /// # Ok(()) }
    /// ```
    pub fn submit_with<F, T>(
        &self,
        priority: u8,
        timeout: Option<Duration>,
        task: F,
    ) -> Result<TaskHandle<T>, SubmitError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.enqueue(priority, timeout, task, |_| Status::Ok)
    }

    /// Queues a fallible task: it is recorded as failed when it returns
    /// `Err`.
    ///
    /// ```
    /// use buttress_executor::{Executor, ExecutorConfig, Status};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default())?;
    /// let failed = executor.submit_try(0, async { Err::<u32, _>("upstream down") })?;
    /// assert_eq!(failed.await?, Err("upstream down"));
    /// assert_eq!(executor.snapshot().history[0].status, Status::Failed);
    /// # Ok(()) }
    /// ```
    pub fn submit_try<F, T, E>(
        &self,
        priority: u8,
        task: F,
    ) -> Result<TaskHandle<Result<T, E>>, SubmitError>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.enqueue(
            priority,
            self.inner.default_timeout(),
            task,
            |r: &Result<T, E>| {
                if r.is_ok() {
                    Status::Ok
                } else {
                    Status::Failed
                }
            },
        )
    }

    /// Queues `task`, waiting for space when the queue is full. Fails with
    /// [`SubmitError::Closed`] if the executor shuts down meanwhile.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use buttress_executor::{Executor, ExecutorConfig};
    /// use tokio::sync::Notify;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("jobs", ExecutorConfig::default().max_running(1).max_queued(0))?;
    /// let gate = Arc::new(Notify::new());
    /// let g = gate.clone();
    /// let first = executor.submit(0, async move { g.notified().await })?;
    /// assert!(executor.submit(0, async {}).is_err()); // no room in the queue
    /// gate.notify_one(); // the first task finishes soon
    /// let second = executor.submit_wait(0, async { "queued once there was room" }).await?;
    /// first.await?;
    /// assert_eq!(second.await?, "queued once there was room");
    /// # Ok(()) }
    /// ```
    pub async fn submit_wait<F, T>(
        &self,
        priority: u8,
        task: F,
    ) -> Result<TaskHandle<T>, SubmitError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let mut task = Some(task);
        loop {
            let _watch = self.inner.watch();
            let mut space = pin!(self.inner.finished.notified());
            space.as_mut().enable();
            let Some(t) = task.take() else {
                return Err(SubmitError::Closed);
            };
            match self.try_enqueue(
                priority,
                self.inner.default_timeout(),
                t,
                |_| Status::Ok,
                false,
            ) {
                Ok(handle) => return Ok(handle),
                Err((SubmitError::Full(_), Some(back))) => task = Some(back),
                Err((e, _)) => return Err(e),
            }
            space.await;
        }
    }

    fn enqueue<F, T>(
        &self,
        priority: u8,
        timeout: Option<Duration>,
        task: F,
        status: fn(&T) -> Status,
    ) -> Result<TaskHandle<T>, SubmitError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.try_enqueue(priority, timeout, task, status, true)
            .map_err(|(e, _)| e)
    }

    /// On a full queue, gives the task back.
    fn try_enqueue<F, T>(
        &self,
        priority: u8,
        timeout: Option<Duration>,
        task: F,
        status: fn(&T) -> Status,
        count_refusal: bool,
    ) -> Result<TaskHandle<T>, (SubmitError, Option<F>)>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let cell = Arc::new(TaskCell::new());
        let inner = &self.inner;
        let now = inner.clock.now();
        let handle = |cell, id| TaskHandle {
            cell,
            id,
            priority,
            executor: Arc::downgrade(&self.inner),
        };
        // A free slot and nothing queued: the task starts now, on a
        // worker of its own that holds it unboxed.
        if !inner.core.maybe_queued() {
            match inner.core.start_now(Canceller::Task(Some(cell.clone()))) {
                Now::Started { id, slot } => {
                    let meta = Meta {
                        slot,
                        id,
                        priority,
                        queued_at: now,
                        started: now,
                    };
                    let task = RunJob::new(task, cell.clone(), status, timeout);
                    inner.runtime.spawn(Worker::new(inner.clone(), meta, task));
                    // Metrics once the task is placed: nothing is lost if
                    // a recorder panics.
                    inner.metrics.submitted.increment(1);
                    inner.metrics.started(Duration::ZERO);
                    return Ok(handle(cell, id));
                }
                Now::Closed => return Err((SubmitError::Closed, None)),
                Now::Queue => {}
            }
        }
        let job = Job::new(task, cell.clone(), status, timeout);
        match inner
            .core
            .submit(priority, job, now, count_refusal, |j| j.take_canceller(now))
        {
            Ok((id, depth, outcome)) => {
                inner.dispatch(outcome, now, None);
                inner.metrics.submitted.increment(1);
                inner.set_depth(priority, depth);
                Ok(handle(cell, id))
            }
            Err(Refused::Full(full, job)) => {
                if count_refusal {
                    inner.metrics.rejected.increment(1);
                }
                Err((SubmitError::Full(full), job.give_back::<F, T>()))
            }
            Err(Refused::Closed(_job)) => Err((SubmitError::Closed, None)),
        }
    }

    /// Counts, depths and the history of finished tasks.
    ///
    /// ```
    /// # use buttress_executor::{Executor, ExecutorConfig, Status};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default())?;
    /// executor.submit(0, async {})?.await?;
    /// let snapshot = executor.snapshot();
    /// assert_eq!((snapshot.queued, snapshot.running, snapshot.counters.ok), (0, 0, 1));
    /// assert_eq!(snapshot.history[0].status, Status::Ok);
    /// # Ok(()) }
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        self.inner.core.snapshot()
    }

    /// The configuration in force: the one it was made with, or the last
    /// one [`reconfigure`](Self::reconfigure) accepted.
    ///
    /// ```
    /// use buttress_executor::{Executor, ExecutorConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default().max_running(4))?;
    /// assert_eq!(executor.config().max_running, 4);
    /// # Ok(()) }
    /// ```
    pub fn config(&self) -> ExecutorConfig {
        self.inner
            .config
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Puts new bounds, aging, default timeout and history length in
    /// force without losing work: queued tasks stay queued in their order
    /// and running tasks keep running. More running slots start queued
    /// tasks at once; fewer start nothing until enough tasks finish; a
    /// smaller queue bound refuses new tasks until the queue is below it.
    /// The new default timeout applies to tasks submitted from now on.
    /// Refused whole, with nothing changed, when `config` is invalid.
    ///
    /// ```
    /// use buttress_executor::{Executor, ExecutorConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default().max_running(1))?;
    /// executor.reconfigure(ExecutorConfig::default().max_running(8))?;
    /// assert_eq!(executor.config().max_running, 8);
    /// assert!(executor.reconfigure(ExecutorConfig::default().max_running(0)).is_err());
    /// # Ok(()) }
    /// ```
    pub fn reconfigure(&self, config: ExecutorConfig) -> Result<(), ConfigError> {
        let bounds = config.bounds()?;
        let inner = &self.inner;
        let mut current = inner
            .config
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner
            .default_timeout
            .store(timeout_nanos(config.timeout), Ordering::Relaxed);
        let now = inner.clock.now();
        let outcome = inner
            .core
            .set_bounds(bounds, config.aging, now, |j| j.take_canceller(now));
        let (running, queued) = (config.max_running, config.max_queued);
        *current = config;
        drop(current);
        inner.dispatch(outcome, now, None);
        inner.wake_watchers();
        tracing::info!(executor = %inner.name, max_running = running, max_queued = queued, "configuration changed");
        Ok(())
    }

    /// Stops accepting tasks, lets running and queued tasks finish until
    /// `deadline`, then cancels the rest and reports what was dropped.
    /// Calling it again while a shutdown is under way forces it: the rest
    /// is cancelled at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_executor::{Executor, ExecutorConfig, TaskError};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default().max_running(1))?;
    /// let stuck = executor.submit(0, std::future::pending::<()>())?;
    /// let queued = executor.submit(0, async {})?;
    /// // Paused time: the 5 s deadline passes without a real wait.
    /// let report = executor.shutdown(Duration::from_secs(5)).await;
    /// assert!(!report.drained);
    /// assert_eq!((report.cancelled_running, report.dropped_queued), (1, 1));
    /// assert_eq!(stuck.await, Err(TaskError::Cancelled));
    /// assert_eq!(queued.await, Err(TaskError::Cancelled));
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let inner = &self.inner;
        if inner.shutting_down.swap(true, Ordering::AcqRel) {
            inner.force_requested.store(true, Ordering::Release);
            inner.forced.notify_waiters();
            inner.core.close();
            return self.cancel_rest().await;
        }
        inner.core.close();
        // Waiters for space learn at once that there will be none.
        inner.finished.notify_waiters();
        tracing::info!(executor = %inner.name, ?deadline, "shutting down");
        let timer = tokio::time::sleep(deadline);
        let mut timer = pin!(timer);
        let mut forced = pin!(inner.forced.notified());
        forced.as_mut().enable();
        loop {
            if inner.force_requested.load(Ordering::Acquire) {
                return self.cancel_rest().await;
            }
            let _watch = inner.watch();
            let mut finished = pin!(inner.finished.notified());
            finished.as_mut().enable();
            if inner.core.is_idle() {
                tracing::info!(executor = %inner.name, "drained");
                return ShutdownReport {
                    drained: true,
                    ..ShutdownReport::default()
                };
            }
            let stop = std::future::poll_fn(|cx| {
                if timer.as_mut().poll(cx).is_ready() || forced.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(true);
                }
                finished.as_mut().poll(cx).map(|()| false)
            })
            .await;
            if stop {
                return self.cancel_rest().await;
            }
        }
    }

    async fn cancel_rest(&self) -> ShutdownReport {
        let inner = &self.inner;
        // Before the drain: an in-place request not yet polled, whose slot
        // the drain frees, must not start its work when it is polled.
        inner.deadline_passed.store(true, Ordering::Release);
        let now = inner.clock.now();
        // Requests run in place leave their slots now: the executor cannot
        // stop its callers' tasks, only tell them (they answer
        // `Cancelled` when next polled), so it does not wait for them.
        let (queued, running, released) = inner.core.drain(now, |id, held| match held {
            Canceller::InPlace(run) => Some(TaskRecord {
                id,
                priority: run.priority,
                status: Status::Cancelled,
                queued_at: run.queued_at,
                started_at: Some(run.started),
                finished_at: now,
            }),
            Canceller::Task(_) => None,
        });
        let report = ShutdownReport {
            dropped_queued: queued.len(),
            cancelled_running: running.len(),
            drained: false,
        };
        for entry in queued {
            inner.metrics.cancelled.increment(1);
            inner.set_depth(entry.priority, 0);
            // Dropping the job answers its handle, or its in-place
            // request: cancelled.
            drop(entry);
        }
        for record in &released {
            inner
                .metrics
                .finished(Status::Cancelled, Some(record.ran()));
        }
        for cancel in &running {
            cancel.cancel();
        }
        // Each may be the last reference to a task's output (a task that
        // answered meanwhile, its handle dropped): dropped now, contained,
        // rather than kept until everything is idle.
        drop_contained(running);
        tracing::warn!(
            executor = %inner.name,
            dropped_queued = report.dropped_queued,
            cancelled_running = report.cancelled_running,
            "shutdown deadline: cancelled what was left"
        );
        // The cancelled tasks record themselves as soon as they are polled.
        loop {
            let _watch = inner.watch();
            let mut finished = pin!(inner.finished.notified());
            finished.as_mut().enable();
            if inner.core.is_idle() {
                return report;
            }
            finished.await;
        }
    }
}

/// Counts a task waiting on `finished` while it lives.
struct Watch<'a>(&'a AtomicUsize);

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Inner {
    /// The default task timeout in force.
    #[inline]
    pub(crate) fn default_timeout(&self) -> Option<Duration> {
        match self.default_timeout.load(Ordering::Relaxed) {
            NO_TIMEOUT => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// Call before creating the `finished` listener and before checking
    /// the condition: a finish that comes after sees the count.
    fn watch(&self) -> Watch<'_> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Watch(&self.waiting)
    }

    /// After a change under the core's lock: wakes the watchers, if any
    /// (most finishes have none, and skip the notifier's lock).
    fn wake_watchers(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.finished.notify_waiters();
        }
    }

    pub(crate) fn set_depth(&self, priority: u8, depth: usize) {
        let gauge = self.depth_gauges[usize::from(priority)].get_or_init(|| {
            metrics::gauge!(
                "buttress_executor_queued",
                "name" => self.name.as_str().to_owned(),
                "priority" => priority.to_string()
            )
        });
        gauge.set(depth as f64);
    }

    /// Records the task `current` as ended with `status` (after running
    /// with `timeout`; `ran`: whether it ever ran, or was cancelled as it
    /// took its slot) and frees its slot; returns the tasks that may start
    /// now, and the time. Metrics and logs come first, while nothing is in
    /// flight.
    pub(crate) fn end(
        &self,
        current: &Meta,
        status: Status,
        timeout: Option<Duration>,
        ran: bool,
    ) -> (Outcome<Job>, Instant) {
        self.log_end(current.id, status, timeout);
        let now = self.clock.now();
        self.metrics.finished(
            status,
            ran.then(|| now.saturating_duration_since(current.started)),
        );
        let record = TaskRecord {
            id: current.id,
            priority: current.priority,
            status,
            queued_at: current.queued_at,
            started_at: ran.then_some(current.started),
            finished_at: now,
        };
        let (outcome, released) = self
            .core
            .finish(current.slot, record, now, |j| j.take_canceller(now));
        // Outside the lock, and contained: with its handle dropped, this
        // may be the last reference to the task's output.
        drop_contained(released);
        self.wake_watchers();
        (outcome, now)
    }

    /// Logs a task or request that timed out or panicked.
    fn log_end(&self, id: u64, status: Status, timeout: Option<Duration>) {
        match status {
            Status::TimedOut => {
                tracing::warn!(executor = %self.name, task = id, ?timeout, "task timed out");
            }
            Status::Panicked => {
                tracing::error!(executor = %self.name, task = id, "task panicked");
            }
            Status::Ok | Status::Failed | Status::Cancelled => {}
        }
    }

    /// A task or in-place request taken from the queue at `now`: its place
    /// and times, and what it is.
    pub(crate) fn placed(start: Start<Job>, now: Instant) -> (Meta, Kind) {
        let entry = start.entry;
        let meta = Meta {
            slot: start.slot,
            id: entry.id,
            priority: entry.priority,
            queued_at: entry.enqueued,
            started: now,
        };
        (meta, entry.job.into_kind())
    }

    /// Starts the tasks `outcome` says may start at `now`: the first in
    /// `keep` (the asking worker's places for its next task), when given,
    /// and the others each on a new worker; an in-place request is given
    /// its slot and woken. Each is in place before its metrics are
    /// recorded, so a panicking recorder loses nothing. A request whose
    /// future went away before its slot came gives the slot back, which
    /// may start more: handled in this loop, never by recursion.
    pub(crate) fn dispatch(
        self: &Arc<Self>,
        outcome: Outcome<Job>,
        now: Instant,
        mut keep: Option<NextPlaces<'_>>,
    ) {
        let mut later: Vec<(Outcome<Job>, Instant)> = Vec::new();
        let mut next = Some((outcome, now));
        while let Some((outcome, now)) = next.take().or_else(|| later.pop()) {
            for start in outcome.starts {
                let (priority, depth) = (start.entry.priority, start.depth);
                let waited = now.saturating_duration_since(start.entry.enqueued);
                let (meta, kind) = Self::placed(start, now);
                match kind {
                    Kind::Task(work) => {
                        let work = Box::into_pin(work);
                        match keep.take() {
                            Some((m, w)) => {
                                *m = Some(meta);
                                *w = Some(work);
                            }
                            None => {
                                self.runtime.spawn(Worker::from_queue(
                                    self.clone(),
                                    Current { work, meta },
                                ));
                            }
                        }
                    }
                    Kind::InPlace(ticket) => {
                        if !ticket.grant(meta) {
                            self.set_depth(priority, depth);
                            later.push(self.end(&meta, Status::Cancelled, None, false));
                            continue;
                        }
                    }
                }
                self.metrics.started(waited);
                self.set_depth(priority, depth);
            }
        }
    }

    /// Admits a request to run in place at `priority`: a running slot now
    /// when one is free and nothing is queued (no allocation), otherwise a
    /// place in the queue, where it waits like a task; or why not (the
    /// queue is full, or the executor is shutting down).
    pub(crate) fn admit_in_place(self: &Arc<Self>, priority: u8) -> Result<Seat, SubmitError> {
        let now = self.clock.now();
        if !self.core.maybe_queued() {
            let run = InPlaceRun {
                priority,
                queued_at: now,
                started: now,
                cancel: None,
            };
            match self.core.start_now(Canceller::InPlace(run)) {
                Now::Started { id, slot } => {
                    self.metrics.submitted.increment(1);
                    self.metrics.started(Duration::ZERO);
                    return Ok(Seat::Held(Meta {
                        slot,
                        id,
                        priority,
                        queued_at: now,
                        started: now,
                    }));
                }
                Now::Closed => return Err(SubmitError::Closed),
                Now::Queue => {}
            }
        }
        let cell = Arc::new(WaiterCell::queued());
        let job = Job::in_place(cell.clone(), priority, now);
        match self
            .core
            .submit(priority, job, now, true, |j| j.take_canceller(now))
        {
            Ok((id, depth, outcome)) => {
                // It may be granted its slot here already.
                self.dispatch(outcome, now, None);
                self.metrics.submitted.increment(1);
                self.set_depth(priority, depth);
                Ok(Seat::Queued { cell, id, priority })
            }
            Err(Refused::Full(full, _)) => {
                self.metrics.rejected.increment(1);
                Err(SubmitError::Full(full))
            }
            Err(Refused::Closed(_)) => Err(SubmitError::Closed),
        }
    }

    /// An in-place request that held the slot `meta` describes ended as
    /// `status`: its slot goes back (unless a shutdown's deadline took it
    /// already, which recorded it), and what the queue gives the slot
    /// starts.
    pub(crate) fn end_in_place(self: &Arc<Self>, meta: &Meta, status: Status) {
        self.log_end(meta.id, status, self.default_timeout());
        let now = self.clock.now();
        let record = TaskRecord {
            id: meta.id,
            priority: meta.priority,
            status,
            queued_at: meta.queued_at,
            started_at: Some(meta.started),
            finished_at: now,
        };
        let (outcome, released) = self
            .core
            .finish(meta.slot, record, now, |j| j.take_canceller(now));
        self.dispatch(outcome, now, None);
        if released.is_some() {
            self.metrics
                .finished(status, Some(now.saturating_duration_since(meta.started)));
        }
        self.wake_watchers();
    }

    /// An in-place request that waited on its inner service: `cancel`
    /// is how a shutdown's deadline stops it. Whether it still holds its
    /// slot (if not, the deadline passed: it stops now).
    pub(crate) fn watch_in_place(&self, meta: &Meta, cancel: Arc<dyn Cancel>) -> bool {
        self.core.update_running(meta.slot, meta.id, |held| {
            if let Canceller::InPlace(run) = held {
                run.cancel = Some(cancel);
            }
        })
    }

    /// Whether a shutdown cancelled what was left.
    pub(crate) fn deadline_passed(&self) -> bool {
        self.deadline_passed.load(Ordering::Acquire)
    }

    /// A queued in-place request's future went away: it leaves the queue,
    /// or, if it was given a slot meanwhile, gives the slot back.
    pub(crate) fn leave_queue(self: &Arc<Self>, priority: u8, id: u64, cell: &WaiterCell) {
        if let Some((job, depth)) = self.core.cancel_queued(priority, id, self.clock.now()) {
            self.metrics.cancelled.increment(1);
            self.set_depth(priority, depth);
            drop(job);
            self.wake_watchers();
            return;
        }
        // Whichever of the grant and this comes second gives the slot back.
        if let Some(meta) = cell.abandon() {
            self.end_in_place(&meta, Status::Cancelled);
        }
    }
}

/// A submitted task: await it for its output, or cancel it.
///
/// Dropping the handle does not cancel the task: it runs on, detached.
#[must_use = "a handle does nothing unless awaited or cancelled; dropping it detaches the task"]
pub struct TaskHandle<T> {
    cell: Arc<TaskCell<T>>,
    id: u64,
    priority: u8,
    executor: std::sync::Weak<Inner>,
}

impl<T> TaskHandle<T> {
    /// The task's id (submission order).
    ///
    /// ```
    /// # use buttress_executor::{Executor, ExecutorConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default())?;
    /// let first = executor.submit(0, async {})?;
    /// let second = executor.submit(0, async {})?;
    /// assert!(first.id() < second.id());
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Cancels the task: a queued task leaves the queue at once, a running
    /// one is stopped at its next poll. Its handle then yields
    /// [`TaskError::Cancelled`]. Returns whether the task had not ended
    /// yet (it was queued, or running without an answer); a task that
    /// already answered keeps its answer.
    ///
    /// ```
    /// use buttress_executor::{Executor, ExecutorConfig, TaskError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let executor = Executor::new("chat", ExecutorConfig::default().max_running(1))?;
    /// let running = executor.submit(0, std::future::pending::<()>())?;
    /// let queued = executor.submit(0, async { 1 })?;
    /// assert!(queued.cancel()); // leaves the queue at once
    /// assert_eq!(executor.snapshot().queued, 0);
    /// assert_eq!(queued.await, Err(TaskError::Cancelled));
    /// assert!(running.cancel()); // stopped at its next poll
    /// assert_eq!(running.await, Err(TaskError::Cancelled));
    /// # Ok(()) }
    /// ```
    pub fn cancel(&self) -> bool {
        // Ended (the common case for the layer, which cancels on every
        // drop): neither queued nor running, and the executor's lock is
        // not needed to know it.
        if self.cell.is_answered() {
            return false;
        }
        if let Some(inner) = self.executor.upgrade()
            && let Some((job, depth)) =
                inner
                    .core
                    .cancel_queued(self.priority, self.id, inner.clock.now())
        {
            inner.metrics.cancelled.increment(1);
            inner.set_depth(self.priority, depth);
            // Dropping the job answers the handle: cancelled.
            drop(job);
            inner.wake_watchers();
            return true;
        }
        // Running, or about to: stopped at its next poll.
        self.cell.cancel_task()
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.cell.poll_answer(cx)
    }
}

/// Drops `value`, containing a panic in its `Drop`.
pub(crate) fn drop_contained<V>(value: V) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(value)));
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
