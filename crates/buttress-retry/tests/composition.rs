//! Retry outside a circuit breaker: once the breaker opens, retrying
//! stops hammering and waits for the breaker's `retry_after`.
#![cfg(feature = "breaker")]

use std::time::Duration;

use buttress_breaker::CircuitBreaker;
use buttress_retry::{Backoff, RetryPolicy};
use buttress_test_support::mock::{Scripted, Step};
use tower::{Layer, ServiceExt};

#[tokio::test(start_paused = true)]
async fn retry_waits_for_an_open_breaker_instead_of_hammering_it() {
    let breaker = CircuitBreaker::builder("upstream")
        .consecutive_failures(2)
        .failure_rate(None)
        .open_for(Duration::from_secs(20))
        .half_open_permits(1)
        .build()
        .expect("valid");
    // The breaker's hint is honoured up to the backoff's maximum delay.
    let retry = RetryPolicy::builder("upstream")
        .max_attempts(5)
        .backoff(Backoff::Exponential {
            base: Duration::from_millis(100),
            factor: 2.0,
            max: Duration::from_secs(30),
        })
        .honor_retry_after(true)
        .no_budget()
        .build()
        .expect("valid");
    // Fails twice (tripping the breaker), then recovers.
    let up = Scripted::new([Step::Fail, Step::Fail]);
    let svc = retry.layer().layer(breaker.layer().layer(up.clone()));

    let start = tokio::time::Instant::now();
    assert_eq!(
        svc.oneshot(5)
            .await
            .expect("succeeds after the open period"),
        5
    );
    // Attempt 1 fails, attempt 2 (at 0.1 s) fails and trips; attempt 3 (at
    // 0.3 s) is refused by the breaker with 19.8 s left, so the retry waits
    // that long (the backoff alone would have waited 0.4 s) and attempt 4,
    // at 20.1 s, is the probe.
    assert_eq!(
        up.calls(),
        3,
        "the upstream is not called while the breaker is open"
    );
    assert_eq!(start.elapsed(), Duration::from_millis(20_100));
}

#[tokio::test(start_paused = true)]
async fn a_breaker_retry_after_past_the_deadline_gives_up_at_once() {
    let breaker = CircuitBreaker::builder("upstream")
        .consecutive_failures(1)
        .failure_rate(None)
        .open_for(Duration::from_secs(60))
        .build()
        .expect("valid");
    let retry = RetryPolicy::builder("upstream")
        .max_attempts(5)
        .backoff(Backoff::Constant {
            delay: Duration::from_millis(100),
        })
        .deadline(Duration::from_secs(10))
        .no_budget()
        .build()
        .expect("valid");
    let up = Scripted::new([Step::Fail; 5]);
    let svc = retry.layer().layer(breaker.layer().layer(up.clone()));
    let start = tokio::time::Instant::now();
    let e = svc.oneshot(1).await.expect_err("gives up");
    assert!(
        e.is::<buttress_breaker::error::Rejected>(),
        "the breaker's refusal is the last error"
    );
    assert_eq!(up.calls(), 1);
    assert!(start.elapsed() < Duration::from_secs(1));
}

/// The default retry (backoff capped at 10 s) in front of a breaker that
/// opens for 60 s: it used to spend its attempts on refusals 10 s apart.
/// Now the first refusal stops it, with the breaker's rejection, and the
/// metrics say why.
#[tokio::test(start_paused = true)]
async fn a_breaker_open_longer_than_the_policy_waits_stops_at_once() {
    let breaker = CircuitBreaker::builder("embeddings")
        .config(buttress_breaker::BreakerConfig::embeddings())
        .build()
        .expect("valid");
    let retry = RetryPolicy::builder("embeddings")
        .no_budget()
        .build()
        .expect("valid");
    let up = Scripted::new([Step::Fail; 10]);
    let svc = retry.layer().layer(breaker.layer().layer(up.clone()));
    // Trip the breaker: 5 failures in a row (3 attempts; then 2 more, and
    // the third is refused and stops the retry).
    let _ = svc.clone().oneshot(1).await;
    let _ = svc.clone().oneshot(2).await;
    assert_eq!(up.calls(), 5);
    assert_eq!(breaker.state(), buttress_breaker::State::Open);

    let start = tokio::time::Instant::now();
    let e = svc.clone().oneshot(3).await.expect_err("refused");
    let rejected = e
        .downcast_ref::<buttress_breaker::error::Rejected>()
        .expect("the breaker's refusal is the error");
    assert!(rejected.retry_after().expect("known") > Duration::from_secs(10));
    assert_eq!(start.elapsed(), Duration::ZERO, "no waits on refusals");
    assert_eq!(up.calls(), 5, "the upstream is never reached");

    // The plain API says why it stopped.
    let e = buttress_retry::retry(&retry, || async {
        Err::<(), _>(breaker.try_acquire().expect_err("open"))
    })
    .await
    .expect_err("stops");
    assert_eq!(e.stop(), buttress_retry::Stop::RetryAfterTooLong);
    assert_eq!(e.attempts(), 1);
    assert!(e.to_string().contains("retry_after_too_long"), "{e}");
}

/// The same breaker, and a policy that may wait 60 s: it waits the
/// breaker's remaining time once and reaches the upstream as the probe.
#[tokio::test(start_paused = true)]
async fn a_policy_allowed_to_wait_waits_the_breaker_out() {
    let breaker = CircuitBreaker::builder("embeddings")
        .config(buttress_breaker::BreakerConfig::embeddings())
        .build()
        .expect("valid");
    let retry = RetryPolicy::builder("embeddings")
        .max_retry_after(Duration::from_secs(60))
        .no_budget()
        .build()
        .expect("valid");
    let up = Scripted::new([Step::Ok]);
    let svc = retry.layer().layer(breaker.layer().layer(up.clone()));
    for _ in 0..5 {
        breaker.try_acquire().expect("closed").failure();
    }
    let start = tokio::time::Instant::now();
    assert_eq!(svc.oneshot(9).await.expect("the probe succeeds"), 9);
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    assert_eq!(up.calls(), 1, "one call: the probe");
    assert_eq!(breaker.state(), buttress_breaker::State::Closed);
}
