//! Criterion benchmarks of buttress (see `benches/`), and the drivers they
//! share.

use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tower::Service;
use tower::util::ServiceFn;

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
