//! The executor beside `tokio::spawn` with a `Semaphore`, and its layer
//! beside tower-resilience's bulkhead and tower's `ConcurrencyLimit`, in
//! one run:
//!
//! ```text
//! cargo bench -p buttress-benches --bench executor
//! ```
//!
//! The measured routines live in `buttress_benches::cases::executor`,
//! shared with the benchmark report.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use buttress_benches::cases::executor as cases;
use buttress_benches::{noop, through};
use buttress_executor::{Executor, ExecutorConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::sync::{Semaphore, oneshot};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime")
}

/// One request through each layer over a no-op service, each with a cap
/// large enough that nothing waits.
fn layer(c: &mut Criterion) {
    let mut g = c.benchmark_group("executor_layer");
    let mut base = noop();
    g.bench_function("baseline_noop_service", |b| {
        b.iter(|| through(&mut base, black_box(1)))
    });
    let mut task = cases::layer_task();
    g.bench_function("buttress_layer_task", |b| b.iter_custom(&mut task));
    let mut in_place = cases::layer_in_place();
    g.bench_function("buttress_layer_in_place", |b| b.iter_custom(&mut in_place));
    let mut bulkhead = cases::tower_resilience_bulkhead();
    g.bench_function("tower_resilience_bulkhead", |b| {
        b.iter_custom(&mut bulkhead)
    });
    let mut limit = cases::tower_concurrency_limit();
    g.bench_function("tower_concurrency_limit", |b| b.iter_custom(&mut limit));
    g.finish();
}

fn submit_and_run(c: &mut Criterion) {
    let mut g = c.benchmark_group("executor_submit_and_run_trivial");
    g.throughput(Throughput::Elements(1));
    let mut submit = cases::submit();
    g.bench_function("buttress_submit", |b| b.iter_custom(&mut submit));
    let mut spawn = cases::tokio_spawn_semaphore();
    g.bench_function("tokio_spawn_with_semaphore", |b| b.iter_custom(&mut spawn));
    g.finish();

    // Per thread, while both threads submit to one executor (one
    // semaphore).
    let mut g = c.benchmark_group("executor_submit_and_run_trivial_2_threads");
    g.throughput(Throughput::Elements(1));
    let mut submit = cases::submit_two_threads();
    g.bench_function("buttress_submit", |b| b.iter_custom(&mut submit));
    let mut spawn = cases::tokio_spawn_semaphore_two_threads();
    g.bench_function("tokio_spawn_with_semaphore", |b| b.iter_custom(&mut spawn));
    g.finish();
}

/// About `micros` of work that does not yield.
fn busy(micros: u64) {
    let end = Instant::now() + Duration::from_micros(micros);
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// The wait of one high-priority task behind `backlog` queued low-priority
/// tasks of ~5 µs each, on 4 running slots.
async fn high_priority_wait(ex: &Executor, backlog: usize) -> Duration {
    let mut low = Vec::with_capacity(backlog);
    for _ in 0..backlog {
        low.push(ex.submit(0, async { busy(5) }).expect("room"));
    }
    let (tx, rx) = oneshot::channel();
    let submitted = Instant::now();
    let high = ex
        .submit(9, async move {
            let _ = tx.send(submitted.elapsed());
        })
        .expect("room");
    let waited = rx.await.expect("ran");
    high.await.expect("ran");
    for h in low {
        h.cancel();
    }
    waited
}

/// The same with tokio's semaphore, first come first served.
async fn fifo_wait(permits: &Arc<Semaphore>, backlog: usize) -> Duration {
    let mut low = Vec::with_capacity(backlog);
    for _ in 0..backlog {
        let permits = permits.clone();
        low.push(tokio::spawn(async move {
            let _p = permits.acquire_owned().await.expect("open");
            busy(5);
        }));
    }
    tokio::task::yield_now().await;
    let submitted = Instant::now();
    let permits2 = permits.clone();
    let waited = tokio::spawn(async move {
        let _p = permits2.acquire_owned().await.expect("open");
        submitted.elapsed()
    })
    .await
    .expect("ran");
    for h in low {
        let _ = h.await;
    }
    waited
}

fn priority_wait(c: &mut Criterion) {
    let rt = runtime();
    let ex = rt.block_on(async {
        Executor::new(
            "wait",
            ExecutorConfig::default()
                .max_running(4)
                .max_queued(20_000)
                .history(0),
        )
        .expect("executor")
    });
    let permits = Arc::new(Semaphore::new(4));
    // The p99 over 200 runs, printed once.
    let mut waits: Vec<Duration> = (0..200)
        .map(|_| rt.block_on(high_priority_wait(&ex, 10_000)))
        .collect();
    waits.sort();
    eprintln!(
        "high-priority wait behind 10,000 queued low-priority tasks: p50 {:?}, p99 {:?} (200 runs)",
        waits[100], waits[198]
    );
    let mut g = c.benchmark_group("executor_high_priority_wait_behind_10k_low");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("buttress_priority_9_over_0", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += rt.block_on(high_priority_wait(&ex, 10_000));
            }
            total
        })
    });
    g.bench_function("tokio_semaphore_fifo", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += rt.block_on(fifo_wait(&permits, 10_000));
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, layer, submit_and_run, priority_wait);
criterion_main!(benches);
