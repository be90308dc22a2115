//! The plain waiting API and the tower layer, under paused tokio time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::task::{Context, Poll, Waker};

use buttress_limit::{
    KeyedRateLimitLayer, KeyedRateLimiter, Mode, Quota, RateLimitLayer, RateLimited, RateLimiter,
};
use buttress_test_support::mock::ReadyOnce;
use tower::{Layer, Service, ServiceExt, service_fn};

fn limiter(per_second: u64, burst: u32) -> RateLimiter {
    RateLimiter::new(
        "test",
        Quota::per_second(per_second)
            .expect("valid")
            .with_burst(burst)
            .expect("valid"),
    )
    .expect("valid")
}

fn echo() -> impl Service<
    u32,
    Response = u32,
    Error = std::io::Error,
    Future = std::future::Ready<Result<u32, std::io::Error>>,
> + Clone {
    service_fn(|x: u32| std::future::ready(Ok(x)))
}

#[tokio::test(start_paused = true)]
async fn clones_share_one_limit() {
    // tower's RateLimit counted per clone: 1500 requests passed a 5/s limit
    // in an axum test (tower #794). Here every clone draws from one bucket.
    let svc = RateLimitLayer::new(limiter(5, 5)).layer(echo());
    let mut passed = 0;
    for i in 0..1500 {
        if svc.clone().oneshot(i).await.is_ok() {
            passed += 1;
        }
    }
    assert_eq!(passed, 5);
}

#[tokio::test(start_paused = true)]
async fn a_rejection_carries_retry_after_and_never_reaches_the_service() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let inner = service_fn(move |x: u32| {
        c.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok::<_, std::io::Error>(x))
    });
    let mut svc = RateLimitLayer::new(limiter(10, 1)).layer(inner);
    svc.ready()
        .await
        .expect("ready")
        .call(1)
        .await
        .expect("allowed");
    let e = svc
        .ready()
        .await
        .expect("ready")
        .call(2)
        .await
        .expect_err("limited");
    let r = e.downcast_ref::<RateLimited>().expect("a RateLimited");
    assert_eq!(r.retry_after(), Some(Duration::from_millis(100)));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_millis(100)).await;
    svc.ready()
        .await
        .expect("ready")
        .call(3)
        .await
        .expect("a token again");
}

#[tokio::test(start_paused = true)]
async fn waiting_mode_serves_in_order_and_fails_fast_past_the_maximum() {
    let l = limiter(10, 1);
    let svc = RateLimitLayer::new(l.clone())
        .mode(Mode::Wait(Duration::from_millis(250)))
        .layer(echo());
    let start = tokio::time::Instant::now();
    let mut handles = Vec::new();
    for i in 0..4u32 {
        let svc = svc.clone();
        handles.push(tokio::spawn(async move {
            let r = svc.oneshot(i).await;
            (i, r.is_ok(), tokio::time::Instant::now() - start)
        }));
        tokio::task::yield_now().await; // arrive in order
    }
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.expect("task"));
    }
    // Tokens at 0, 100 and 200 ms; the fourth would wait 300 ms > 250 ms
    // and fails at once.
    assert_eq!(
        results,
        [
            (0, true, Duration::ZERO),
            (1, true, Duration::from_millis(100)),
            (2, true, Duration::from_millis(200)),
            (3, false, Duration::ZERO),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_waiter_gives_its_token_back() {
    let l = limiter(10, 1);
    l.check().expect("the burst");
    let waiter = l.until_ready(Duration::from_secs(1));
    // Cancelled before its turn (at 100 ms).
    assert!(
        tokio::time::timeout(Duration::from_millis(50), waiter)
            .await
            .is_err()
    );
    // Its reservation was returned: the next token is at 100 ms, not 200.
    assert_eq!(l.state().next_token_in, Duration::from_millis(50));
    tokio::time::advance(Duration::from_millis(50)).await;
    l.check().expect("the returned token");
}

#[tokio::test(start_paused = true)]
async fn a_service_dropped_while_waiting_gives_its_token_back() {
    let l = limiter(10, 1);
    l.check().expect("the burst");
    let mut svc = RateLimitLayer::new(l.clone())
        .mode(Mode::Wait(Duration::from_secs(1)))
        .layer(echo());
    let mut cx = Context::from_waker(Waker::noop());
    // Waits for the token at 100 ms, holding it reserved.
    assert!(svc.poll_ready(&mut cx).is_pending());
    assert_eq!(l.state().next_token_in, Duration::from_millis(200));
    // A caller that gives up (a timeout, a disconnected client) drops the
    // service: the reservation is returned.
    drop(svc);
    assert_eq!(l.state().next_token_in, Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn waiting_mode_admits_a_free_token_in_the_same_poll() {
    // Off a millisecond boundary, even a timer of zero would wait for the
    // timer wheel's next tick: a free token must not go through one.
    tokio::time::advance(Duration::from_micros(500)).await;
    let mut svc = RateLimitLayer::new(limiter(10, 1))
        .mode(Mode::Wait(Duration::from_secs(1)))
        .layer(echo());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(svc.call(7).await.expect("admitted"), 7);
}

#[tokio::test(start_paused = true)]
async fn the_keyed_layer_waits_for_its_inner_service_to_be_ready() {
    let limiter = KeyedRateLimiter::<u32>::builder("keyed", Quota::per_second(10).expect("valid"))
        .build()
        .expect("valid");
    // ReadyOnce panics when called without being polled ready first.
    let svc = KeyedRateLimitLayer::new(limiter, |r: &u32| *r).layer(ReadyOnce::default());
    assert_eq!(svc.oneshot(3).await.expect("admitted"), 3);
}

#[tokio::test(start_paused = true)]
async fn the_quota_changes_live() {
    let l = limiter(1, 1);
    l.check().expect("the burst");
    assert!(l.check().is_err());
    l.set_quota(
        Quota::per_second(100)
            .expect("valid")
            .with_burst(100)
            .expect("valid"),
    );
    // The one token owed stays owed at the new rate: 99 of 100 are left.
    assert_eq!(l.state().remaining, 99);
    l.check().expect("a token at the new rate");
    assert_eq!(l.quota().burst(), 100);
    // Tightening does not grant a second burst: 98 owed become 98 owed.
    l.set_quota(
        Quota::per_minute(60)
            .expect("valid")
            .with_burst(100)
            .expect("valid"),
    );
    assert_eq!(l.state().remaining, 98);
    for _ in 0..98 {
        l.check().expect("the rest of the burst");
    }
    assert!(l.check().is_err(), "no more than the burst");
}

#[tokio::test(start_paused = true)]
async fn weighted_and_impossible_costs() {
    let l = limiter(10, 5);
    l.check_n(5).expect("the whole burst");
    assert_eq!(
        l.peek_n(1).expect_err("empty").retry_after(),
        Some(Duration::from_millis(100))
    );
    let never = l.check_n(6).expect_err("above the burst");
    assert_eq!(never.retry_after(), None);
    assert!(never.to_string().contains("can never be admitted"));
    let never = l
        .until_n_ready(6, Duration::from_secs(60))
        .await
        .expect_err("above the burst");
    assert_eq!(never.retry_after(), None);
}

#[cfg(feature = "serde")]
#[test]
fn a_quota_loads_from_json() {
    let q: Quota =
        serde_json::from_str(r#"{ "count": 150, "per": "1m", "burst": 10 }"#).expect("parses");
    assert_eq!(
        q,
        Quota::per_minute(150)
            .expect("valid")
            .with_burst(10)
            .expect("valid")
    );
    assert!(serde_json::from_str::<Quota>(r#"{ "count": 0, "per": "1m" }"#).is_err());
    assert!(serde_json::from_str::<Quota>(r#"{ "count": 5, "per": "1m", "brust": 1 }"#).is_err());
}

/// A refused request is counted as refused once, however often the
/// service is polled before `call`.
#[tokio::test(start_paused = true)]
async fn a_refusal_is_counted_once_however_often_it_is_polled() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let limiter = metrics::with_local_recorder(&recorder, || {
        RateLimiter::new(
            "counted",
            Quota::per_second(1)
                .expect("valid")
                .with_burst(1)
                .expect("valid"),
        )
        .expect("valid")
    });
    let mut svc = RateLimitLayer::new(limiter).layer(echo());
    svc.ready()
        .await
        .expect("ready")
        .call(1)
        .await
        .expect("admitted");
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..5 {
        assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    }
    assert!(svc.call(2).await.is_err(), "refused");
    let counts: std::collections::HashMap<String, u64> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) => Some((key.key().name().to_owned(), n)),
            _ => None,
        })
        .collect();
    assert_eq!(
        counts.get("buttress_limit_rejected_total"),
        Some(&1),
        "{counts:?}"
    );
    assert_eq!(
        counts.get("buttress_limit_allowed_total"),
        Some(&1),
        "{counts:?}"
    );
}

#[test]
fn a_limiter_built_outside_paused_time_reads_the_fast_clock_unless_told() {
    // Built outside any runtime: the default is the time-stamp counter,
    // which tokio's paused time does not move. A test in that position
    // passes `TokioClock` explicitly, as the guide says.
    let fast = limiter(1, 1);
    let tokio_clock = RateLimiter::with_clock(
        "test",
        Quota::per_second(1).expect("valid"),
        buttress_core::TokioClock,
    )
    .expect("valid");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async {
        fast.check().expect("first token");
        tokio_clock.check().expect("first token");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(fast.check().is_err(), "paused time moved the fast clock");
        tokio_clock
            .check()
            .expect("tokio's clock moved two seconds");
        // Built inside the paused runtime, the default follows it.
        let inside = limiter(1, 1);
        inside.check().expect("first token");
        assert!(inside.check().is_err());
        tokio::time::advance(Duration::from_secs(1)).await;
        inside
            .check()
            .expect("one second of paused time refilled it");
    });
}
