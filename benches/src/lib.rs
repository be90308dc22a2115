//! Criterion benchmarks of buttress (see `benches/`), and the drivers they
//! share.

use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tower::Service;
use tower::util::ServiceFn;

pub mod cases;
pub mod report;

/// A measured operation in criterion's `iter_custom` shape: runs the
/// operation `iters` times and returns the wall time that took. Built once
/// (its subject, runtime and inputs are set up before the first call).
pub type Routine = Box<dyn FnMut(u64) -> Duration>;

/// The bare service every benchmark measures against: answers at once.
pub type NoOp = ServiceFn<fn(u64) -> Ready<Result<u64, std::io::Error>>>;

/// A [`NoOp`] service.
pub fn noop() -> NoOp {
    tower::service_fn(|x: u64| ready(Ok(x)))
}

/// Runs an operation `iters` times on each of two threads at once, each
/// thread with its own operation from `make` and a tokio runtime context;
/// returns the slower thread's wall time, so the figure per iteration is
/// the time per call on a thread while both contend.
pub fn two_threads<F>(iters: u64, make: impl Fn() -> F) -> Duration
where
    F: FnMut() + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(3));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let mut op = make();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("runtime");
                let _guard = rt.enter();
                barrier.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    op();
                }
                start.elapsed()
            })
        })
        .collect();
    barrier.wait();
    handles
        .into_iter()
        .map(|h| h.join().expect("bench thread"))
        .max()
        .unwrap_or_default()
}

/// Polls a future until it is ready, with a no-op waker. Uncontended, every
/// future in these benchmarks is ready at the first poll; under two threads
/// a lock inside a competitor may be busy, so spin (yielding now and then)
/// until it is free.
#[inline(always)]
pub fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    let mut polls = 0u32;
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        polls += 1;
        if polls.is_multiple_of(64) {
            std::thread::yield_now();
        }
    }
}

/// One call through a tower service: readiness, then the call.
#[inline(always)]
pub fn through<S: Service<u64>>(svc: &mut S, x: u64) -> Result<S::Response, S::Error> {
    run(async {
        std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
        svc.call(x).await
    })
}

/// A [`Routine`] that calls `op` once per iteration, inside a
/// current-thread tokio runtime's context (entered for each batch, so that
/// layers that start timers find one).
pub fn routine(op: impl FnMut() + 'static) -> Routine {
    routine_on(current_thread(), op)
}

/// [`routine`] on a given runtime: for a case whose service was built on
/// it (an executor spawns onto the runtime it was created in).
pub fn routine_on(rt: tokio::runtime::Runtime, mut op: impl FnMut() + 'static) -> Routine {
    Box::new(move |iters| {
        let _guard = rt.enter();
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        start.elapsed()
    })
}

/// A [`Routine`] that sends one request through `svc` per iteration
/// ([`through`]: readiness, then the call).
pub fn service_routine<S>(svc: S) -> Routine
where
    S: Service<u64> + 'static,
{
    service_routine_on(current_thread(), svc)
}

/// [`service_routine`] on a given runtime (see [`routine_on`]).
pub fn service_routine_on<S>(rt: tokio::runtime::Runtime, mut svc: S) -> Routine
where
    S: Service<u64> + 'static,
{
    routine_on(rt, move || {
        let _ = std::hint::black_box(through(&mut svc, std::hint::black_box(1)));
    })
}

/// A [`Routine`] of [`two_threads`]: each iteration is one call on each of
/// two threads at once; the time is the slower thread's, so the figure is
/// the time per call on a thread while both contend.
pub fn two_thread_routine<F>(make: impl Fn() -> F + 'static) -> Routine
where
    F: FnMut() + Send + 'static,
{
    Box::new(move |iters| two_threads(iters, &make))
}

/// A current-thread tokio runtime with timers.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

/// Measures `rows` (name, routine) as one criterion group, in order, so
/// that each row sits beside its anchors in the same run.
pub fn bench(c: &mut criterion::Criterion, group: &str, rows: Vec<(&str, Routine)>) {
    let mut g = c.benchmark_group(group);
    for (name, mut routine) in rows {
        g.bench_function(name, |b| b.iter_custom(&mut routine));
    }
    g.finish();
}

/// A directory of its own for one routine (under the system's temporary
/// directory, named `buttress-bench-{name}-{pid}-{n}`), removed on drop.
#[derive(Debug)]
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// A fresh, empty directory.
    pub fn new(name: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "buttress-bench-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("bench dir");
        TempDir(dir)
    }

    /// Where it is.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `BUTTRESS_INTERLEAVE=<rounds>`: instead of criterion, runs the gated
/// routines alternately (`rounds` rounds of `iters` operations each, after
/// a warm-up round) and prints each row's median time per operation and
/// the median of its per-round ratio to the first row. Same-run ratios of
/// interleaved rounds are what survives a shared, noisy machine.
pub fn interleave(rows: &mut [(&str, Routine)], iters: u64) -> bool {
    let Some(rounds) = std::env::var_os("BUTTRESS_INTERLEAVE") else {
        return false;
    };
    let rounds: usize = rounds.to_str().and_then(|r| r.parse().ok()).unwrap_or(30);
    for (_, routine) in rows.iter_mut() {
        routine(iters);
    }
    let mut times = vec![Vec::with_capacity(rounds); rows.len()];
    for _ in 0..rounds {
        for (i, (_, routine)) in rows.iter_mut().enumerate() {
            times[i].push(routine(iters).as_secs_f64() / iters as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (i, (name, _)) in rows.iter().enumerate() {
        let mut ratios: Vec<f64> = times[i]
            .iter()
            .zip(&times[0])
            .map(|(t, anchor)| t / anchor)
            .collect();
        let ratio = median(&mut ratios);
        let t = median(&mut times[i]);
        println!(
            "{name:<40} median {:>10.1} ns   median ratio to {}: {ratio:.3}",
            t * 1e9,
            rows[0].0
        );
    }
    true
}
