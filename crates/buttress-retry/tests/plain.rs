//! The plain async and blocking APIs, tower's `Retry` with our policy, and
//! configuration loading.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use buttress_core::{Clock, ManualClock};
use buttress_retry::{
    Backoff, LastError, RetryClassifier, RetryConfig, RetryPolicy, Stop, retry, retry_blocking_with,
};

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder("plain")
        .max_attempts(max_attempts)
        .backoff(Backoff::Exponential {
            base: Duration::from_secs(2),
            factor: 2.0,
            max: Duration::from_secs(60),
        })
        .no_budget()
        .build()
        .expect("valid")
}

#[tokio::test(start_paused = true)]
async fn the_database_connection_one_liner() {
    let tries = Cell::new(0);
    let start = tokio::time::Instant::now();
    let conn = retry(
        &RetryPolicy::new("db", RetryConfig::database_connect()).expect("valid"),
        || {
            tries.set(tries.get() + 1);
            let ok = tries.get() == 6;
            async move {
                if ok {
                    Ok("connected")
                } else {
                    Err(std::io::Error::other("refused"))
                }
            }
        },
    )
    .await
    .expect("connects on the sixth attempt");
    assert_eq!(conn, "connected");
    assert_eq!(start.elapsed(), Duration::from_secs(62));
}

#[tokio::test(start_paused = true)]
async fn the_error_says_what_happened() {
    let e = retry(&policy(3), || async {
        Err::<(), _>(std::io::Error::other("down"))
    })
    .await
    .expect_err("fails");
    assert_eq!(e.attempts(), 3);
    assert_eq!(e.stop(), Stop::MaxAttempts);
    // The message says what happened at this level; the last error is the
    // source, said once.
    assert_eq!(e.to_string(), "failed after 3 attempts (max_attempts)");
    let source = std::error::Error::source(&e).expect("the last error");
    assert_eq!(source.to_string(), "down");
    assert!(source.is::<std::io::Error>());
    assert!(matches!(e.last(), LastError::Error(_)));
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_in_the_plain_api() {
    let p = RetryPolicy::builder("plain")
        .max_attempts(2)
        .backoff(Backoff::Constant {
            delay: Duration::from_secs(1),
        })
        .attempt_timeout(Duration::from_secs(5))
        .no_budget()
        .build()
        .expect("valid");
    let e = retry(&p, || async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<(), std::io::Error>(())
    })
    .await
    .expect_err("times out");
    assert!(e.is_timeout());
    assert_eq!(e.attempts(), 2);
    // The timeout is a typed error too, reachable through `source()`.
    match e.last() {
        LastError::TimedOut(t) => {
            assert_eq!(t.after(), Duration::from_secs(5));
            assert_eq!(t.attempts(), 2);
        }
        LastError::Error(_) => panic!("the last attempt timed out"),
    }
    let source = std::error::Error::source(&e).expect("the timeout");
    assert_eq!(source.to_string(), "attempt 2 timed out after 5s");
    assert!(source.is::<buttress_retry::error::AttemptTimedOut>());
    assert_eq!(e.to_string(), "failed after 2 attempts (max_attempts)");
}

#[test]
fn blocking_retry_with_a_manual_clock_never_sleeps() {
    let clock = ManualClock::new();
    let p = RetryPolicy::builder("blocking")
        .max_attempts(4)
        .backoff(Backoff::Exponential {
            base: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(60),
        })
        .deadline(Duration::from_secs(5))
        .clock(clock.clone())
        .no_budget()
        .build()
        .expect("valid");
    let t0 = clock.now();
    let calls = Cell::new(0);
    let sleeps = std::cell::RefCell::new(Vec::new());
    let r: Result<(), _> = retry_blocking_with(
        &p,
        &buttress_retry::RetryClassifier,
        |d| {
            sleeps.borrow_mut().push(d);
            clock.advance(d);
        },
        || {
            calls.set(calls.get() + 1);
            Err(std::io::Error::other("no"))
        },
    );
    let e = r.expect_err("fails");
    // Waits of 1 and 2 s; the next (4 s) would pass the 5 s deadline.
    assert_eq!(
        *sleeps.borrow(),
        [Duration::from_secs(1), Duration::from_secs(2)]
    );
    assert_eq!(e.stop(), Stop::Deadline);
    assert_eq!(calls.get(), 3);
    assert_eq!(clock.now() - t0, Duration::from_secs(3));
}

#[cfg(feature = "tower")]
#[tokio::test(start_paused = true)]
async fn tower_retry_with_our_policy() {
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let svc = ServiceBuilder::new()
        .retry(buttress_retry::TowerPolicy::new(policy(3)))
        .service(service_fn(move |x: u32| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    Err(std::io::Error::other("no"))
                } else {
                    Ok(x)
                }
            }
        }));
    let start = tokio::time::Instant::now();
    assert_eq!(svc.clone().oneshot(4).await.expect("third attempt"), 4);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(6)); // 2 + 4
    // Exhausted: the last error comes back.
    calls.store(0, Ordering::SeqCst);
    let svc = ServiceBuilder::new()
        .retry(buttress_retry::TowerPolicy::new(policy(2)))
        .service(service_fn(|_: u32| async {
            Err::<u32, _>(std::io::Error::other("down"))
        }));
    assert!(svc.oneshot(1).await.is_err());
}

#[cfg(feature = "serde")]
#[test]
fn a_policy_loads_from_json() {
    let cfg: RetryConfig = serde_json::from_str(
        r#"{
            "max_attempts": 4,
            "backoff": { "kind": "decorrelated", "base": "100ms", "max": "5s" },
            "deadline": "30s",
            "attempt_timeout": "2s",
            "budget": { "kind": "throttle", "max_tokens": 10.0, "token_ratio": 0.1 }
        }"#,
    )
    .expect("parses");
    assert_eq!(cfg.deadline, Some(Duration::from_secs(30)));
    RetryPolicy::new("from-file", cfg).expect("valid");
    assert!(serde_json::from_str::<RetryConfig>(r#"{ "max_atempts": 4 }"#).is_err());
    let bad: RetryConfig = serde_json::from_str(r#"{ "max_attempts": 0 }"#).expect("parses");
    assert!(bad.validate().is_err());
}

/// A budget of the user's that counts deposits and grants every retry.
#[derive(Debug, Default)]
struct Counting {
    deposits: AtomicUsize,
}

impl buttress_retry::RetryBudget for Counting {
    fn deposit(&self, _: Instant) {
        self.deposits.fetch_add(1, Ordering::SeqCst);
    }
    fn try_withdraw(&self, _: Instant) -> bool {
        true
    }
}

/// A budget of the user's that implements only `deposit` and
/// `try_withdraw` still hears of every request: the default
/// `deposit_untimed` declines, and the policy deposits with the time.
#[test]
fn a_custom_budget_gets_a_deposit_for_every_request() {
    let budget = Arc::new(Counting::default());
    let p = RetryPolicy::builder("custom")
        .max_attempts(2)
        .shared_budget(budget.clone())
        .build()
        .expect("valid");
    for _ in 0..20 {
        retry_blocking_with(&p, &RetryClassifier, |_| {}, || Ok::<_, &str>(())).expect("succeeds");
    }
    assert_eq!(budget.deposits.load(Ordering::SeqCst), 20);
}

#[cfg(feature = "tower")]
#[tokio::test(start_paused = true)]
async fn tower_retry_deposits_once_per_request() {
    use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

    let budget = Arc::new(Counting::default());
    let p = RetryPolicy::builder("tower")
        .max_attempts(3)
        .backoff(Backoff::Constant {
            delay: Duration::from_millis(1),
        })
        .shared_budget(budget.clone())
        .build()
        .expect("valid");
    let failing = Arc::new(AtomicUsize::new(0));
    let f = Arc::clone(&failing);
    let svc = ServiceBuilder::new()
        .retry(buttress_retry::TowerPolicy::new(p))
        .service(service_fn(move |x: u32| {
            let n = f.fetch_add(1, Ordering::SeqCst);
            async move {
                if n.is_multiple_of(2) {
                    Err(std::io::Error::other("odd"))
                } else {
                    Ok(x)
                }
            }
        }));
    for _ in 0..3 {
        svc.clone()
            .oneshot(1)
            .await
            .expect("second attempt succeeds");
    }
    let mut svc = svc;
    for _ in 0..2 {
        svc.ready()
            .await
            .expect("ready")
            .call(1)
            .await
            .expect("second attempt succeeds");
    }
    assert_eq!(
        budget.deposits.load(Ordering::SeqCst),
        5,
        "one deposit per request"
    );
}
