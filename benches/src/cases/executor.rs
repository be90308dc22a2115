//! Gated routines for buttress-executor.
//!
//! * The layer, one request at a time over [`noop`]: the executor's layer
//!   running each request as a task ([`layer_task`]) and in place
//!   ([`layer_in_place`]), beside the crates a
//!   user would pick for "at most N at once" ([`tower_resilience_bulkhead()`],
//!   [`tower_concurrency_limit`]), each with a cap large enough that
//!   nothing waits.
//! * Submitting trivial tasks, in batches of 1,000 then awaited, on one
//!   thread ([`submit`]) and from two threads at once
//!   ([`submit_two_threads`]), beside `tokio::spawn` with a `Semaphore`
//!   permit ([`tokio_spawn_semaphore`], [`tokio_spawn_semaphore_two_threads`]).
//!   The two-thread figures are per thread: each thread submits `iters`
//!   tasks, and the slower thread's time is returned.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use buttress_executor::{Executor, ExecutorConfig, ExecutorLayer};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

use crate::{Routine, current_thread, noop, service_routine, service_routine_on};

/// Tasks submitted before the batch is awaited.
const BATCH: u64 = 1_000;

/// Running slots of the submission benchmarks (and permits of their
/// baseline).
const SLOTS: usize = 64;

/// The cap of the layer benchmarks: large enough that nothing waits.
const NOTHING_WAITS: usize = 1 << 20;

fn two_workers() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime")
}

fn layer_executor(rt: &Runtime) -> Executor {
    let _in_runtime = rt.enter();
    Executor::new(
        "bench_layer",
        ExecutorConfig::default().max_running(NOTHING_WAITS),
    )
    .expect("executor")
}

/// One request through [`ExecutorLayer`] as a task: it is spawned on the
/// executor's runtime (current-thread), so the loop runs inside
/// `block_on`, where the task runs while the request awaits it.
pub fn layer_task() -> Routine {
    let rt = current_thread();
    let mut svc = ExecutorLayer::new(layer_executor(&rt), |_: &u64| 1).layer(noop());
    Box::new(move |iters| {
        rt.block_on(async {
            let start = Instant::now();
            for i in 0..iters {
                let ready = svc.ready().await.expect("ready");
                black_box(ready.call(black_box(i)).await.expect("answered"));
            }
            start.elapsed()
        })
    })
}

/// One request through [`ExecutorLayer::in_place`]: it runs in the
/// caller's task holding a running slot, on a current-thread runtime,
/// driven with [`service_routine_on`].
pub fn layer_in_place() -> Routine {
    let rt = current_thread();
    let svc = ExecutorLayer::new(layer_executor(&rt), |_: &u64| 1)
        .in_place()
        .layer(noop());
    service_routine_on(rt, svc)
}

/// One request through tower-resilience's bulkhead (rejection mode, no
/// wait bound), on a current-thread runtime, driven with [`service_routine`].
pub fn tower_resilience_bulkhead() -> Routine {
    let layer = tower_resilience_bulkhead::BulkheadLayer::builder()
        .max_concurrent_calls(NOTHING_WAITS)
        .build()
        .expect("valid");
    service_routine(layer.layer(noop()))
}

/// One request through tower's `ConcurrencyLimit`, on a current-thread
/// runtime, driven with [`service_routine`].
pub fn tower_concurrency_limit() -> Routine {
    service_routine(
        ServiceBuilder::new()
            .concurrency_limit(NOTHING_WAITS)
            .service(noop()),
    )
}

fn submit_executor(rt: &Runtime) -> Executor {
    let _in_runtime = rt.enter();
    Executor::new(
        "bench",
        ExecutorConfig::default()
            .max_running(SLOTS)
            .max_queued(100_000)
            .history(1_000),
    )
    .expect("executor")
}

/// Submits `iters` trivial tasks in batches, awaiting each batch.
async fn submit_batches(ex: &Executor, iters: u64) {
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        let mut handles = Vec::with_capacity(n as usize);
        for i in 0..n {
            handles.push(ex.submit(0, async move { black_box(i) }).expect("room"));
        }
        for h in handles {
            black_box(h.await.expect("ran"));
        }
        left -= n;
    }
}

/// The same with `tokio::spawn`, each task holding a semaphore permit.
async fn spawn_batches(permits: &Arc<Semaphore>, iters: u64) {
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        let mut handles = Vec::with_capacity(n as usize);
        for i in 0..n {
            let permit = permits.clone().acquire_owned().await.expect("open");
            handles.push(tokio::spawn(async move {
                let out = black_box(i);
                drop(permit);
                out
            }));
        }
        for h in handles {
            black_box(h.await.expect("ran"));
        }
        left -= n;
    }
}

/// Executor `submit` of a trivial task, on a runtime of two workers.
pub fn submit() -> Routine {
    let rt = two_workers();
    let ex = submit_executor(&rt);
    Box::new(move |iters| {
        rt.block_on(async {
            let start = Instant::now();
            submit_batches(&ex, iters).await;
            start.elapsed()
        })
    })
}

/// `tokio::spawn` with a `Semaphore` permit, on a runtime of two workers.
pub fn tokio_spawn_semaphore() -> Routine {
    let rt = two_workers();
    let permits = Arc::new(Semaphore::new(SLOTS));
    Box::new(move |iters| {
        rt.block_on(async {
            let start = Instant::now();
            spawn_batches(&permits, iters).await;
            start.elapsed()
        })
    })
}

/// Runs `each` on two threads at once, each inside `block_on` of `rt`;
/// the slower thread's time.
fn on_two_threads<F>(rt: &Runtime, each: impl Fn() -> F + Sync) -> Duration
where
    F: Future<Output = ()>,
{
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    rt.block_on(each());
                    start.elapsed()
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

/// Executor `submit` from two threads at once, one executor (on a runtime
/// of two workers): the time per submission on each thread.
pub fn submit_two_threads() -> Routine {
    let rt = two_workers();
    let ex = submit_executor(&rt);
    Box::new(move |iters| on_two_threads(&rt, || submit_batches(&ex, iters)))
}

/// `tokio::spawn` with a permit of one shared `Semaphore`, from two
/// threads at once: the time per spawn on each thread.
pub fn tokio_spawn_semaphore_two_threads() -> Routine {
    let rt = two_workers();
    let permits = Arc::new(Semaphore::new(SLOTS));
    Box::new(move |iters| on_two_threads(&rt, || spawn_batches(&permits, iters)))
}
