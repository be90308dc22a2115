//! A minimal `block_on` for the blocking waits: the future is polled on the
//! calling thread, which parks between wake-ups.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};
use std::thread::Thread;
use std::time::{Duration, Instant};

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `f` to completion, or gives up after `timeout`.
pub(crate) fn block_on_timeout<F: Future>(f: F, timeout: Option<Duration>) -> Option<F::Output> {
    // A timeout too long to add is no timeout.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
        match deadline {
            None => std::thread::park(),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return None;
                }
                std::thread::park_timeout(d - now);
            }
        }
    }
}
