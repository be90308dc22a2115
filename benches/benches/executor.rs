//! The executor beside `tokio::spawn` with a `Semaphore`, in one run:
//!
//! ```text
//! cargo bench -p buttress-benches --bench executor
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use buttress_executor::{Executor, ExecutorConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::sync::{Semaphore, oneshot};

const BATCH: u64 = 1_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime")
}

fn submit_and_run(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("executor_submit_and_run_trivial");
    g.throughput(Throughput::Elements(1));
    let ex = rt.block_on(async {
        Executor::new(
            "bench",
            ExecutorConfig::default()
                .max_running(64)
                .max_queued(100_000)
                .history(1_000),
        )
        .expect("executor")
    });
    g.bench_function("buttress_submit", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
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
                start.elapsed()
            })
        })
    });
    let permits = Arc::new(Semaphore::new(64));
    g.bench_function("tokio_spawn_with_semaphore", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
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
                start.elapsed()
            })
        })
    });
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

criterion_group!(benches, submit_and_run, priority_wait);
criterion_main!(benches);
