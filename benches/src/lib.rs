//! Criterion benchmarks of buttress (see `benches/`), and the drivers they
//! share.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tower::Service;

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
