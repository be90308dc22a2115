//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tower::Service;

/// What the scripted upstream does for one call.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Ok,
    Fail,
    /// Takes this long, then succeeds.
    Slow(Duration),
}

/// An upstream that follows a script, one step per call (then `Ok`
/// forever), and records when each call arrived.
#[derive(Clone, Debug, Default)]
pub struct Scripted {
    pub script: Arc<Mutex<VecDeque<Step>>>,
    pub calls: Arc<AtomicUsize>,
    pub arrivals: Arc<Mutex<Vec<tokio::time::Instant>>>,
}

impl Scripted {
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            script: Arc::new(Mutex::new(steps.into_iter().collect())),
            ..Self::default()
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Gaps between consecutive calls.
    pub fn gaps(&self) -> Vec<Duration> {
        let a = self.arrivals.lock().expect("lock");
        a.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

impl Service<u32> for Scripted {
    type Response = u32;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<u32, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: u32) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.arrivals
            .lock()
            .expect("lock")
            .push(tokio::time::Instant::now());
        let step = self
            .script
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or(Step::Ok);
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
/// instance; a clone starts not ready.
#[derive(Debug)]
pub struct ReadyOnce {
    ready: bool,
    fail_first: Arc<AtomicUsize>,
}

impl ReadyOnce {
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
        let left = self.fail_first.load(Ordering::SeqCst);
        if left > 0 {
            self.fail_first.store(left - 1, Ordering::SeqCst);
            std::future::ready(Err(std::io::Error::other("not yet")))
        } else {
            std::future::ready(Ok(req))
        }
    }
}
