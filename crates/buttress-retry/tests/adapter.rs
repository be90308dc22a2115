//! The tower layer under paused tokio time, with a scripted upstream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use buttress_core::{Classification, FixedRandom, classify_fn};
use buttress_retry::error::AttemptTimedOut;
use buttress_retry::{Backoff, RetryEvent, RetryPolicy, Stop, clone_with};
use buttress_test_support::mock::{ReadyOnce, Scripted, Step};
use tower::{Layer, ServiceExt};

fn exp() -> Backoff {
    Backoff::Exponential {
        base: Duration::from_secs(1),
        factor: 2.0,
        max: Duration::from_secs(30),
    }
}

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder("upstream")
        .max_attempts(max_attempts)
        .backoff(exp())
        .no_budget()
        .build()
        .expect("valid")
}

type Finishes = Arc<Mutex<Vec<(u32, Stop)>>>;

/// A policy of `max_attempts` that records how each request finished.
fn recording_finishes(max_attempts: u32) -> (RetryPolicy, Finishes) {
    let stops: Finishes = Arc::default();
    let s = Arc::clone(&stops);
    let p = RetryPolicy::builder("upstream")
        .max_attempts(max_attempts)
        .backoff(exp())
        .no_budget()
        .on_event(move |e| {
            if let RetryEvent::Finished { attempts, stop, .. } = e {
                s.lock().expect("lock").push((*attempts, *stop));
            }
        })
        .build()
        .expect("valid");
    (p, stops)
}

#[tokio::test(start_paused = true)]
async fn retries_with_the_backoff_until_success() {
    let up = Scripted::new([Step::Fail, Step::Fail, Step::Ok]);
    let svc = policy(5).layer().layer(up.clone());
    let start = tokio::time::Instant::now();
    assert_eq!(svc.oneshot(7).await.expect("third attempt succeeds"), 7);
    assert_eq!(up.calls(), 3);
    assert_eq!(up.gaps(), [Duration::from_secs(1), Duration::from_secs(2)]);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_attempts_with_the_last_error() {
    let up = Scripted::new([Step::Fail; 10]);
    let (p, stops) = recording_finishes(3);
    let e = p
        .layer()
        .layer(up.clone())
        .oneshot(1)
        .await
        .expect_err("fails");
    assert_eq!(e.to_string(), "upstream failed");
    assert_eq!(up.calls(), 3);
    assert_eq!(*stops.lock().expect("lock"), [(3, Stop::MaxAttempts)]);
}

#[tokio::test(start_paused = true)]
async fn never_starts_a_sleep_past_the_deadline() {
    let up = Scripted::new([Step::Fail; 10]);
    let p = RetryPolicy::builder("upstream")
        .max_attempts(10)
        .backoff(exp())
        .deadline(Duration::from_secs(5))
        .no_budget()
        .build()
        .expect("valid");
    let start = tokio::time::Instant::now();
    assert!(p.layer().layer(up.clone()).oneshot(1).await.is_err());
    // Attempts at 0, 1 and 3 s; the next wait (4 s) would end at 7 > 5.
    assert_eq!(up.calls(), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_is_cut_off_and_retried() {
    let up = Scripted::new([Step::Slow(Duration::from_secs(60)), Step::Ok]);
    let p = RetryPolicy::builder("upstream")
        .max_attempts(2)
        .backoff(exp())
        .attempt_timeout(Duration::from_secs(2))
        .no_budget()
        .build()
        .expect("valid");
    let start = tokio::time::Instant::now();
    assert_eq!(
        p.layer()
            .layer(up.clone())
            .oneshot(9)
            .await
            .expect("second attempt"),
        9
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3)); // 2 s cut off + 1 s wait

    // When every attempt is slow, the error says so.
    let up = Scripted::new([Step::Slow(Duration::from_secs(60)); 3]);
    let e = p.layer().layer(up).oneshot(1).await.expect_err("times out");
    let t = e.downcast_ref::<AttemptTimedOut>().expect("a timeout");
    assert_eq!((t.after(), t.attempts()), (Duration::from_secs(2), 2));
}

#[tokio::test(start_paused = true)]
async fn a_request_that_cannot_be_cloned_is_sent_once() {
    let up = Scripted::new([Step::Fail; 3]);
    let (p, stops) = recording_finishes(3);
    let svc = p
        .layer()
        .cloner(clone_with(|_: &u32| None))
        .layer(up.clone());
    let start = tokio::time::Instant::now();
    assert!(svc.oneshot(1).await.is_err());
    assert_eq!(up.calls(), 1);
    // Its error comes back at once, without a backoff wait before it, and
    // the finish says why it was not retried.
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(*stops.lock().expect("lock"), [(1, Stop::NotCloneable)]);
}

#[tokio::test(start_paused = true)]
async fn a_request_is_cloned_once_for_each_attempt_that_can_follow() {
    // Cloning a large body for an attempt that can never be sent is waste.
    for (max_attempts, clones) in [(1, 0), (2, 1), (3, 2)] {
        let up = Scripted::new([Step::Fail; 3]);
        let cloned = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&cloned);
        let svc = policy(max_attempts)
            .layer()
            .cloner(clone_with(move |r: &u32| {
                counter.fetch_add(1, Ordering::Relaxed);
                Some(*r)
            }))
            .layer(up.clone());
        assert!(svc.oneshot(1).await.is_err());
        assert_eq!(up.calls(), max_attempts as usize);
        assert_eq!(
            cloned.load(Ordering::Relaxed),
            clones,
            "{max_attempts} attempts"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn calls_only_instances_that_were_polled_ready() {
    let svc = policy(4).layer().layer(ReadyOnce::failing(2));
    assert_eq!(svc.oneshot(5).await.expect("third attempt"), 5);
}

#[tokio::test(start_paused = true)]
async fn clones_share_one_budget() {
    use buttress_retry::{RatioBudget, RetryBudget};
    // No reserve and no ratio: not a single retry allowed.
    let budget: Arc<dyn RetryBudget> =
        Arc::new(RatioBudget::new(0.0, 0.0, Duration::from_secs(10)).expect("valid"));
    let p = RetryPolicy::builder("upstream")
        .max_attempts(3)
        .backoff(exp())
        .shared_budget(Arc::clone(&budget))
        .build()
        .expect("valid");
    let up = Scripted::new([Step::Fail; 10]);
    let layer = p.layer();
    let a = layer.layer(up.clone());
    let b = a.clone();
    assert!(a.oneshot(1).await.is_err());
    assert!(b.oneshot(1).await.is_err());
    assert_eq!(up.calls(), 2, "the budget refused every retry");
}

#[tokio::test(start_paused = true)]
async fn retry_after_sets_the_wait_and_a_classifier_decides() {
    let up = Scripted::new([Step::Fail, Step::Ok]);
    let hint = classify_fn(|r: &Result<u32, std::io::Error>| match r {
        Ok(_) => Classification::SUCCESS,
        Err(_) => Classification::RETRYABLE_FAILURE.with_retry_after(Some(Duration::from_secs(9))),
    });
    let svc = policy(3).layer().classifier(hint).layer(up.clone());
    assert!(svc.oneshot(1).await.is_ok());
    assert_eq!(up.gaps(), [Duration::from_secs(9)]);

    let up = Scripted::new([Step::Fail, Step::Ok]);
    let fatal = classify_fn(|r: &Result<u32, std::io::Error>| match r {
        Ok(_) => Classification::SUCCESS,
        Err(_) => Classification::FATAL_FAILURE,
    });
    let svc = policy(3).layer().classifier(fatal).layer(up.clone());
    assert!(svc.oneshot(1).await.is_err());
    assert_eq!(up.calls(), 1, "a fatal error is not retried");
}

#[tokio::test(start_paused = true)]
async fn full_jitter_draws_from_the_injected_source() {
    let up = Scripted::new([Step::Fail, Step::Fail, Step::Ok]);
    let p = RetryPolicy::builder("upstream")
        .max_attempts(3)
        .backoff(Backoff::FullJitter {
            base: Duration::from_secs(4),
            factor: 2.0,
            max: Duration::from_secs(30),
        })
        .random(FixedRandom::new([0.25, 0.5]))
        .no_budget()
        .build()
        .expect("valid");
    assert!(p.layer().layer(up.clone()).oneshot(1).await.is_ok());
    assert_eq!(up.gaps(), [Duration::from_secs(1), Duration::from_secs(4)]);
}

/// Fails its first call, then is never ready again.
#[derive(Clone, Debug, Default)]
struct StuckAfterFirst {
    called: Arc<std::sync::atomic::AtomicBool>,
}

impl tower::Service<u32> for StuckAfterFirst {
    type Response = u32;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<u32, std::io::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        if self.called.load(std::sync::atomic::Ordering::SeqCst) {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, _: u32) -> Self::Future {
        self.called.store(true, std::sync::atomic::Ordering::SeqCst);
        std::future::ready(Err(std::io::Error::other("first call failed")))
    }
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_the_wait_for_readiness() {
    let p = RetryPolicy::builder("upstream")
        .max_attempts(3)
        .backoff(exp())
        .deadline(Duration::from_secs(10))
        .no_budget()
        .build()
        .expect("valid");
    let start = tokio::time::Instant::now();
    let e = p
        .layer()
        .layer(StuckAfterFirst::default())
        .oneshot(1)
        .await
        .expect_err("gives up");
    assert_eq!(e.to_string(), "first call failed", "the last real error");
    assert_eq!(start.elapsed(), Duration::from_secs(10));
}
