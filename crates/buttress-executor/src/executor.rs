//! [`Executor`]: the async side: spawning, timeouts, panics, cancellation,
//! shutdown.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use buttress_core::{Name, SharedClock, TokioClock};
use tokio::runtime::Handle;
use tokio::sync::{Notify, oneshot};

use crate::config::ExecutorConfig;
use crate::core::{Core, Outcome, Refused, Snapshot};
use crate::error::{SubmitError, TaskError};
use crate::history::{Status, TaskRecord};

type Work = Pin<Box<dyn Future<Output = Status> + Send>>;
/// What the executor does to a task from outside: answer its handle with
/// an error, cancel it while it runs. One allocation per task holds this,
/// the task until it runs, and the channel to its handle.
pub(crate) trait Control: Send + Sync {
    /// Answers the handle with `e`, unless it was answered already.
    fn fail(&self, e: TaskError);
    /// Asks the running task to stop.
    fn cancel(&self);
    /// Whether a cancel came; if not, `cx` is woken by a later one.
    fn poll_cancelled(&self, cx: &Context<'_>) -> bool;
}

/// A queued task, with its output type erased.
pub(crate) struct Job {
    work: Work,
    control: Arc<dyn Control>,
    timeout: Option<Duration>,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What the task's future, its supervisor and its handle's canceller
/// share.
struct Shared<F, T> {
    task: Mutex<Option<F>>,
    tx: Mutex<Option<oneshot::Sender<Result<T, TaskError>>>>,
    cancel: CancelFlag,
}

impl<F: Send, T: Send> Control for Shared<F, T> {
    fn fail(&self, e: TaskError) {
        if let Some(tx) = self.tx.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(Err(e));
        }
    }
    fn cancel(&self) {
        self.cancel.cancel();
    }
    fn poll_cancelled(&self, cx: &Context<'_>) -> bool {
        self.cancel.poll_cancelled(cx)
    }
}

/// Cancels one running task: a flag, and the supervisor's waker.
#[derive(Debug, Default)]
pub(crate) struct CancelFlag {
    cancelled: AtomicBool,
    waker: Mutex<Option<std::task::Waker>>,
}

impl CancelFlag {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        let waker = self.waker.lock().ok().and_then(|mut w| w.take());
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether cancelled; if not, `cx` is woken by a later cancel. The flag
    /// is read again after the waker is stored, so no cancel is missed.
    fn poll_cancelled(&self, cx: &Context<'_>) -> bool {
        if self.cancelled.load(Ordering::Acquire) {
            return true;
        }
        if let Ok(mut w) = self.waker.lock() {
            match w.as_mut() {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *w = Some(cx.waker().clone()),
            }
        }
        self.cancelled.load(Ordering::Acquire)
    }
}

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
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    name: Name,
    core: Core<Job, Arc<dyn Control>>,
    default_timeout: Option<Duration>,
    runtime: Handle,
    clock: SharedClock,
    /// Signalled when a task finishes (space, and maybe idle), if anyone
    /// waits (`waiting` counts them).
    finished: Notify,
    waiting: std::sync::atomic::AtomicUsize,
    /// Signalled by a forcing shutdown.
    forced: Notify,
    shutting_down: AtomicBool,
    /// Set by a forcing (second) shutdown call, before `forced` is
    /// notified, so the first call cannot miss it.
    force_requested: AtomicBool,
    metrics: crate::metrics::ExecutorMetrics,
    depth_gauges: Box<[OnceLock<metrics::Gauge>]>,
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("name", &self.inner.name)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

/// Why an executor could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError(pub(crate) String);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid executor: {}", self.0)
    }
}

impl std::error::Error for BuildError {}

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
    /// An executor named `name`, spawning on the current tokio runtime.
    pub fn new(name: &str, config: ExecutorConfig) -> Result<Executor, BuildError> {
        let runtime = Handle::try_current()
            .map_err(|_| BuildError("no tokio runtime: make the executor inside one".into()))?;
        Executor::with_runtime(name, config, runtime, Arc::new(TokioClock))
    }

    /// An executor spawning on `runtime`, reading time from `clock`.
    pub fn with_runtime(
        name: &str,
        config: ExecutorConfig,
        runtime: Handle,
        clock: SharedClock,
    ) -> Result<Executor, BuildError> {
        let name = Name::new(name).map_err(|e| BuildError(e.to_string()))?;
        let bounds = config.bounds().map_err(BuildError)?;
        Ok(Executor {
            inner: Arc::new(Inner {
                metrics: crate::metrics::ExecutorMetrics::new(name.as_str()),
                depth_gauges: (0..256).map(|_| OnceLock::new()).collect(),
                name,
                core: Core::new(bounds, config.aging),
                default_timeout: config.timeout,
                runtime,
                clock,
                finished: Notify::new(),
                waiting: std::sync::atomic::AtomicUsize::new(0),
                forced: Notify::new(),
                shutting_down: AtomicBool::new(false),
                force_requested: AtomicBool::new(false),
            }),
        })
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    /// Queues `task` at `priority` (higher runs first), with the default
    /// timeout. Fails at once when the queue is full.
    pub fn submit<F, T>(&self, priority: u8, task: F) -> Result<TaskHandle<T>, SubmitError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit_with(priority, self.inner.default_timeout, task)
    }

    /// [`submit`](Executor::submit) with its own timeout (`None`: none).
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
            self.inner.default_timeout,
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

    /// Queues `task`, waiting for space when the queue is full.
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
                self.inner.default_timeout,
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
        let (tx, rx) = oneshot::channel::<Result<T, TaskError>>();
        // The task stays reachable (to give it back when the queue is
        // full) until it runs; the sender answers either the task or the
        // supervisor, whichever ends it.
        let shared = Arc::new(Shared {
            task: Mutex::new(Some(task)),
            tx: Mutex::new(Some(tx)),
            cancel: CancelFlag::default(),
        });
        let work_shared = shared.clone();
        let work: Work = Box::pin(async move {
            let task = work_shared.task.lock().ok().and_then(|mut s| s.take());
            let Some(task) = task else {
                return Status::Cancelled;
            };
            let out = task.await;
            let st = status(&out);
            if let Some(tx) = work_shared.tx.lock().ok().and_then(|mut t| t.take()) {
                let _ = tx.send(Ok(out));
            }
            st
        });
        let control: Arc<dyn Control> = shared.clone();
        let job = Job {
            work,
            control,
            timeout,
        };
        let inner = &self.inner;
        let now = inner.clock.now();
        match inner
            .core
            .submit(priority, job, now, count_refusal, |job: &Job| {
                job.control.clone()
            }) {
            Ok((id, depth, outcome)) => {
                inner.metrics.submitted.increment(1);
                inner.set_depth(priority, depth);
                inner.start_all(outcome);
                Ok(TaskHandle {
                    rx,
                    id,
                    priority,
                    executor: Arc::downgrade(&self.inner),
                })
            }
            Err(Refused::Full(full, _job)) => {
                if count_refusal {
                    inner.metrics.rejected.increment(1);
                }
                let back = shared.task.lock().ok().and_then(|mut s| s.take());
                Err((SubmitError::Full(full), back))
            }
            Err(Refused::Closed(_job)) => Err((SubmitError::Closed, None)),
        }
    }

    /// Counts, depths and the history of finished tasks.
    pub fn snapshot(&self) -> Snapshot {
        self.inner.core.snapshot()
    }

    /// Stops accepting tasks, lets running and queued tasks finish until
    /// `deadline`, then cancels the rest and reports what was dropped.
    /// Calling it again while a shutdown is under way forces it: the rest
    /// is cancelled at once.
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
        let (queued, running) = inner.core.drain(inner.clock.now());
        let report = ShutdownReport {
            dropped_queued: queued.len(),
            cancelled_running: running.len(),
            drained: false,
        };
        for entry in queued {
            inner.metrics.cancelled.increment(1);
            entry.job.control.fail(TaskError::Cancelled);
            inner.set_depth(entry.priority, 0);
        }
        for cancel in &running {
            cancel.cancel();
        }
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
struct Watch<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Inner {
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

    fn set_depth(&self, priority: u8, depth: usize) {
        let gauge = self.depth_gauges[usize::from(priority)].get_or_init(|| {
            metrics::gauge!(
                "buttress_executor_queued",
                "name" => self.name.as_str().to_owned(),
                "priority" => priority.to_string()
            )
        });
        gauge.set(depth as f64);
    }

    fn start_all(self: &Arc<Self>, outcome: Outcome<Job>) {
        self.metrics.running.set(outcome.running as f64);
        for start in outcome.starts {
            self.metrics.wait_seconds.record(start.waited.as_secs_f64());
            self.set_depth(start.entry.priority, start.depth);
            let Job {
                work,
                control,
                timeout,
            } = start.entry.job;
            // The slot is given back by this guard whatever happens: the
            // task ends, panics, is cancelled, or the runtime drops the
            // spawned future without ever running it.
            let slot = Slot {
                inner: self.clone(),
                id: start.entry.id,
                priority: start.entry.priority,
                queued_at: start.entry.enqueued,
                started: start.started,
                control,
                status: None,
            };
            self.runtime
                .spawn(async move { run(slot, work, timeout).await });
        }
    }

    /// Records a finished task, frees its slot and starts what may start.
    fn finish(self: &Arc<Self>, record: TaskRecord) {
        self.metrics.finished(
            record.status,
            record
                .finished_at
                .saturating_duration_since(record.started_at.unwrap_or(record.finished_at)),
        );
        let finished = record.finished_at;
        let outcome = self
            .core
            .finish(record, finished, |job: &Job| job.control.clone());
        self.start_all(outcome);
        self.wake_watchers();
    }
}

/// A running task's hold on its slot.
struct Slot {
    inner: Arc<Inner>,
    id: u64,
    priority: u8,
    queued_at: std::time::Instant,
    started: std::time::Instant,
    control: Arc<dyn Control>,
    status: Option<Status>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Never ran to the end (the runtime dropped it, or something
        // panicked on the way): answer the handle and free the slot.
        let status = self.status.take().unwrap_or_else(|| {
            self.control.fail(TaskError::Cancelled);
            Status::Cancelled
        });
        let record = TaskRecord {
            id: self.id,
            priority: self.priority,
            status,
            queued_at: self.queued_at,
            started_at: Some(self.started),
            finished_at: self.inner.clock.now(),
        };
        self.inner.finish(record);
    }
}

async fn run(mut slot: Slot, work: Work, timeout: Option<Duration>) {
    let outcome = supervise(work, timeout, &*slot.control).await;
    let status = match outcome {
        Ok(status) => status,
        Err(e) => {
            slot.control.fail(e);
            match e {
                TaskError::TimedOut => {
                    tracing::warn!(executor = %slot.inner.name, task = slot.id, ?timeout, "task timed out");
                    Status::TimedOut
                }
                TaskError::Panicked => {
                    tracing::error!(executor = %slot.inner.name, task = slot.id, "task panicked");
                    Status::Panicked
                }
                TaskError::Cancelled => Status::Cancelled,
            }
        }
    };
    slot.status = Some(status);
    // Dropping the slot records the task and frees its place.
}

/// Runs `work` until it ends, times out, panics or is cancelled.
async fn supervise(
    work: Work,
    timeout: Option<Duration>,
    cancel: &dyn Control,
) -> Result<Status, TaskError> {
    let mut work = Some(work);
    let result = supervise_inner(&mut work, timeout, cancel).await;
    // A future that panics when dropped (after a timeout or a cancel)
    // counts as a panic, and the executor carries on.
    match work.take().map(drop_contained) {
        Some(false) => Err(TaskError::Panicked),
        _ => result,
    }
}

async fn supervise_inner(
    slot: &mut Option<Work>,
    timeout: Option<Duration>,
    cancel: &dyn Control,
) -> Result<Status, TaskError> {
    let mut timer = timeout.map(|t| Box::pin(tokio::time::sleep(t)));
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        let Some(work) = slot.as_mut() else {
            return Poll::Ready(Err(TaskError::Cancelled));
        };
        if cancel.poll_cancelled(cx) {
            return Poll::Ready(Err(TaskError::Cancelled));
        }
        if let Some(t) = timer.as_mut()
            && t.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(TaskError::TimedOut));
        }
        match std::panic::catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx))) {
            Ok(Poll::Ready(status)) => {
                // Finished: drop it here, where a panic is contained.
                let done = slot.take();
                if done.map(drop_contained) == Some(false) {
                    return Poll::Ready(Err(TaskError::Panicked));
                }
                Poll::Ready(Ok(status))
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => {
                // Its state after a panic is unknown; dropping it may panic
                // again, contained.
                if let Some(w) = slot.take() {
                    drop_contained(w);
                }
                Poll::Ready(Err(TaskError::Panicked))
            }
        }
    })
    .await
}

/// Drops a task's future, containing a panic in its `Drop`.
fn drop_contained<T>(value: T) -> bool {
    std::panic::catch_unwind(AssertUnwindSafe(move || drop(value))).is_ok()
}

/// A submitted task: await it for its output, or cancel it.
///
/// Dropping the handle does not cancel the task: it runs on, detached.
#[derive(Debug)]
#[must_use = "a handle does nothing unless awaited or cancelled; dropping it detaches the task"]
pub struct TaskHandle<T> {
    rx: oneshot::Receiver<Result<T, TaskError>>,
    id: u64,
    priority: u8,
    executor: std::sync::Weak<Inner>,
}

impl<T> TaskHandle<T> {
    /// The task's id (submission order).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Cancels the task: a queued task leaves the queue at once, a running
    /// one is stopped at its next poll. Its handle then yields
    /// [`TaskError::Cancelled`]. Returns whether the task was still queued
    /// or running.
    pub fn cancel(&self) -> bool {
        let Some(inner) = self.executor.upgrade() else {
            return false;
        };
        if let Some((job, depth)) =
            inner
                .core
                .cancel_queued(self.priority, self.id, inner.clock.now())
        {
            inner.metrics.cancelled.increment(1);
            inner.set_depth(self.priority, depth);
            job.control.fail(TaskError::Cancelled);
            inner.wake_watchers();
            return true;
        }
        match inner.core.running_cancel(self.id) {
            Some(cancel) => {
                cancel.cancel();
                true
            }
            None => false,
        }
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(TaskError::Cancelled)))
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
