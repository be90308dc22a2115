//! Helpers the test binaries share.

use buttress_executor::error::SubmitError;
use buttress_executor::{Executor, ExecutorConfig};
use buttress_limit::{Quota, RateLimiter};

/// A limiter named `api` of 10 a minute, bursts of 1, whose one token is
/// spent: its next check is refused for 6 s.
pub(crate) fn spent_limiter() -> RateLimiter {
    let quota = Quota::per_minute(10)
        .expect("valid")
        .with_burst(1)
        .expect("valid");
    let limiter = RateLimiter::new("api", quota).expect("valid");
    limiter.check().expect("the first is admitted");
    limiter
}

/// A queue-full refusal from a real executor: one task running, one
/// queued, a third refused. The executor and its tasks are kept for the
/// rest of the test.
pub(crate) async fn full_queue() -> SubmitError {
    let executor = Executor::new(
        "chat",
        ExecutorConfig::default().max_running(1).max_queued(1),
    )
    .expect("valid");
    std::mem::forget(
        executor
            .submit(0, std::future::pending::<()>())
            .expect("runs"),
    );
    tokio::task::yield_now().await;
    std::mem::forget(
        executor
            .submit(0, std::future::pending::<()>())
            .expect("queued"),
    );
    let full = executor
        .submit(0, std::future::pending::<()>())
        .expect_err("the queue is full");
    std::mem::forget(executor);
    full
}
