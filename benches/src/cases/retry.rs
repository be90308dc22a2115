//! Gated routines for buttress-retry: the happy path (the first attempt
//! succeeds) beside tower's and tower-resilience's retry, and the budget
//! under two threads.

use std::future::{Ready, ready};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use buttress_retry::{RatioBudget, RetryBudget, RetryPolicy};
use tower::{Layer, service_fn};

use crate::{Routine, routine, service_routine, two_thread_routine};

/// An error type every contestant accepts.
#[derive(Debug, Clone)]
pub struct BenchError;

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bench error")
    }
}

impl std::error::Error for BenchError {}

/// The no-op service with [`BenchError`].
pub type NoOp = tower::util::ServiceFn<fn(u64) -> Ready<Result<u64, BenchError>>>;

/// A [`NoOp`] service.
pub fn noop() -> NoOp {
    service_fn(|x: u64| ready(Ok(x)))
}

/// The bare no-op service: the baseline the layer's overhead is taken from.
pub fn noop_service() -> Routine {
    service_routine(noop())
}

/// One request through `RetryPolicy::layer` with the defaults (3 attempts,
/// the default budget: 10 % plus 10 a second).
pub fn layer() -> Routine {
    let policy = RetryPolicy::builder("bench").build().expect("valid");
    service_routine(policy.layer().layer(noop()))
}

/// The same without a budget.
pub fn layer_no_budget() -> Routine {
    let policy = RetryPolicy::builder("bench")
        .no_budget()
        .build()
        .expect("valid");
    service_routine(policy.layer().layer(noop()))
}

/// tower-resilience's retry, 3 attempts.
pub fn tower_resilience_layer() -> Routine {
    let layer = tower_resilience_retry::RetryLayer::<u64, u64, BenchError>::builder()
        .max_attempts(3)
        .exponential_backoff(Duration::from_millis(100))
        .build();
    service_routine(layer.layer(noop()))
}

/// What the layer asks of the default budget for one successful request
/// (a deposit and a success), on two threads sharing one budget.
pub fn budget_two_threads() -> Routine {
    let budget: Arc<dyn RetryBudget> = Arc::new(RatioBudget::finagle());
    two_thread_routine(move || {
        let b = Arc::clone(&budget);
        let now = Instant::now();
        move || {
            if !b.deposit_untimed() {
                b.deposit(now);
            }
            b.record(true);
            black_box(&b);
        }
    })
}

/// The anchor for a shared counter under two threads: tokio's semaphore
/// giving a permit back and taking one (two atomic read-modify-writes on
/// one word, like a deposit and a withdrawal).
pub fn semaphore_two_threads() -> Routine {
    let sem = Arc::new(tokio::sync::Semaphore::new(1_000));
    two_thread_routine(move || {
        let s = Arc::clone(&sem);
        move || {
            if let Ok(p) = s.try_acquire() {
                black_box(&p);
            }
        }
    })
}

/// The budget on one thread (the cost a request pays in the layer).
pub fn budget_one_thread() -> Routine {
    let budget: Arc<dyn RetryBudget> = Arc::new(RatioBudget::finagle());
    let now = Instant::now();
    routine(move || {
        if !budget.deposit_untimed() {
            budget.deposit(now);
        }
        budget.record(true);
    })
}
