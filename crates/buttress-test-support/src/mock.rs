//! Upstreams for adapter tests: each a `tower::Service<u32>` that echoes
//! its request or fails, and counts its calls.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

type Answer = Pin<Box<dyn Future<Output = Result<u32, std::io::Error>> + Send>>;

/// An upstream whose health the test flips, counting the calls it gets;
/// each call takes `latency` (tokio time) first.
#[derive(Clone, Debug, Default)]
pub struct Flaky {
    /// Whether calls fail.
    pub failing: Arc<AtomicBool>,
    /// Calls made.
    pub calls: Arc<AtomicUsize>,
    /// How long each call takes.
    pub latency: Duration,
}

impl Flaky {
    /// Makes calls fail (or succeed again).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Calls made so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Service<u32> for Flaky {
    type Response = u32;
    type Error = std::io::Error;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: u32) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let failing = self.failing.load(Ordering::SeqCst);
        let latency = self.latency;
        Box::pin(async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            if failing {
                Err(std::io::Error::other("upstream down"))
            } else {
                Ok(req)
            }
        })
    }
}

/// What a [`Scripted`] upstream does for one call.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Succeeds.
    Ok,
    /// Fails.
    Fail,
    /// Takes this long (tokio time), then succeeds.
    Slow(Duration),
}

/// An upstream that follows a script, one step per call (then `Ok`
/// forever), and records when each call arrived.
#[derive(Clone, Debug, Default)]
pub struct Scripted {
    /// The steps still to play.
    pub script: Arc<Mutex<VecDeque<Step>>>,
    /// Calls made.
    pub calls: Arc<AtomicUsize>,
    /// When each call arrived.
    pub arrivals: Arc<Mutex<Vec<tokio::time::Instant>>>,
}

impl Scripted {
    /// An upstream that plays `steps`, then succeeds.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            script: Arc::new(Mutex::new(steps.into_iter().collect())),
            ..Self::default()
        }
    }

    /// Calls made so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Gaps between consecutive calls.
    pub fn gaps(&self) -> Vec<Duration> {
        let a = self.arrivals.lock().unwrap();
        a.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

impl Service<u32> for Scripted {
    type Response = u32;
    type Error = std::io::Error;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: u32) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.arrivals
            .lock()
            .unwrap()
            .push(tokio::time::Instant::now());
        let step = self.script.lock().unwrap().pop_front().unwrap_or(Step::Ok);
        Box::pin(async move {
            match step {
                Step::Ok => Ok(req),
                Step::Fail => Err(std::io::Error::other("upstream failed")),
                Step::Slow(d) => {
                    tokio::time::sleep(d).await;
                    Ok(req)
                }
            }
        })
    }
}

/// A service that must be polled ready before each call on the same
/// instance (a clone starts not ready; calling it unready panics), and
/// that fails its first `n` calls when made with [`ReadyOnce::failing`].
#[derive(Debug, Default)]
pub struct ReadyOnce {
    ready: bool,
    fail_first: Arc<AtomicUsize>,
}

impl ReadyOnce {
    /// A service whose first `times` calls (across clones) fail.
    pub fn failing(times: usize) -> Self {
        Self {
            ready: false,
            fail_first: Arc::new(AtomicUsize::new(times)),
        }
    }
}

impl Clone for ReadyOnce {
    fn clone(&self) -> Self {
        Self {
            ready: false,
            fail_first: Arc::clone(&self.fail_first),
        }
    }
}

impl Service<u32> for ReadyOnce {
    type Response = u32;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<u32, std::io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: u32) -> Self::Future {
        assert!(self.ready, "called without poll_ready on this instance");
        self.ready = false;
        let failed = self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failed {
            std::future::ready(Err(std::io::Error::other("not yet")))
        } else {
            std::future::ready(Ok(req))
        }
    }
}
