//! The tower adapter, under paused tokio time.

use std::time::Duration;

use buttress_breaker::error::{BoxError, Rejected};
use buttress_breaker::{CircuitBreaker, Classification, Outcome, State};
use buttress_core::classify_fn;
use buttress_test_support::mock::{Flaky, ReadyOnce};
use tower::{Layer, Service, ServiceExt};

fn breaker(n: u32) -> CircuitBreaker {
    CircuitBreaker::builder("upstream")
        .consecutive_failures(n)
        .failure_rate(None)
        .open_for(Duration::from_secs(10))
        .half_open_permits(1)
        .build()
        .expect("valid")
}

async fn send<S>(svc: &mut S, x: u32) -> Result<u32, BoxError>
where
    S: Service<u32, Response = u32, Error = BoxError>,
{
    svc.ready().await?.call(x).await
}

#[tokio::test(start_paused = true)]
async fn opens_rejects_fast_probes_and_closes() {
    let upstream = Flaky::default();
    let b = breaker(2);
    let mut svc = b.layer().layer(upstream.clone());

    assert_eq!(send(&mut svc, 1).await.expect("healthy"), 1);
    upstream.set_failing(true);
    for _ in 0..2 {
        let e = send(&mut svc, 1).await.expect_err("failing");
        assert!(
            e.downcast_ref::<Rejected>().is_none(),
            "the upstream's own error"
        );
    }
    assert_eq!(b.state(), State::Open);
    let calls = upstream.calls();

    tokio::time::advance(Duration::from_secs(4)).await;
    let e = send(&mut svc, 1).await.expect_err("open");
    let r = e.downcast_ref::<Rejected>().expect("a rejection");
    assert_eq!(r.retry_after(), Some(Duration::from_secs(6)));
    assert_eq!(
        upstream.calls(),
        calls,
        "a rejected call never reaches the upstream"
    );

    upstream.set_failing(false);
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(send(&mut svc, 7).await.expect("probe"), 7);
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn clones_share_one_breaker() {
    let upstream = Flaky::default();
    upstream.set_failing(true);
    let b = breaker(4);
    let layer = b.layer();
    let mut a = layer.layer(upstream.clone());
    let mut c = a.clone();
    let mut d = layer.layer(upstream.clone());
    let _ = send(&mut a, 1).await;
    let _ = send(&mut c, 1).await;
    let _ = send(&mut d, 1).await;
    let _ = send(&mut a, 1).await;
    assert_eq!(
        b.state(),
        State::Open,
        "four failures across three services trip one breaker"
    );
    assert!(send(&mut c, 1).await.expect_err("open").is::<Rejected>());
}

#[tokio::test(start_paused = true)]
async fn calls_the_instance_that_was_polled_ready() {
    let b = breaker(3);
    let mut svc = b.layer().layer(ReadyOnce::default());
    for i in 0..5 {
        // Clone between readiness and call: the original must be called.
        let ready = svc.ready().await.expect("ready");
        let _clone = ready.clone();
        assert_eq!(ready.call(i).await.expect("ok"), i);
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_probe_gives_its_permit_back() {
    let upstream = Flaky {
        latency: Duration::from_secs(1),
        ..Flaky::default()
    };
    upstream.set_failing(true);
    let b = breaker(1);
    let mut svc = b.layer().layer(upstream.clone());
    let _ = send(&mut svc, 1).await;
    assert_eq!(b.state(), State::Open);
    tokio::time::advance(Duration::from_secs(10)).await;

    upstream.set_failing(false);
    let probe = svc.ready().await.expect("ready").call(1);
    assert!(
        send(&mut svc, 2)
            .await
            .expect_err("busy half-open")
            .is::<Rejected>()
    );
    drop(probe); // cancelled before it completed
    assert_eq!(b.snapshot().half_open_permits_left, Some(1));
    assert_eq!(send(&mut svc, 3).await.expect("the permit came back"), 3);
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_around_the_breaker_counts_as_ignored() {
    // tower's Timeout outside the breaker drops the breaker's future: the
    // call is ignored, neither success nor failure.
    let upstream = Flaky {
        latency: Duration::from_secs(30),
        ..Flaky::default()
    };
    let b = breaker(1);
    let mut svc = tower::ServiceBuilder::new()
        .timeout(Duration::from_secs(1))
        .layer(b.layer())
        .service(upstream);
    assert!(send(&mut svc, 1).await.is_err());
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_classifier_decides_what_fails() {
    let upstream = Flaky::default();
    upstream.set_failing(true);
    let b = breaker(1);
    let ignore_all = classify_fn(|_: &Result<u32, std::io::Error>| Classification::IGNORED);
    let mut svc = b.layer().classifier(ignore_all).layer(upstream);
    for _ in 0..5 {
        let _ = send(&mut svc, 1).await;
    }
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_are_timed_with_the_paused_clock() {
    let upstream = Flaky {
        latency: Duration::from_secs(3),
        ..Flaky::default()
    };
    let b = CircuitBreaker::builder("slow")
        .failure_rate(None)
        .slow_calls(1.0, Duration::from_secs(2))
        .count_window(2)
        .minimum_calls(2)
        .build()
        .expect("valid");
    let mut svc = b.layer().layer(upstream);
    send(&mut svc, 1).await.expect("slow but fine");
    send(&mut svc, 1).await.expect("slow but fine");
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        b.snapshot().slow_calls,
        2,
        "while open, the snapshot shows the window that tripped it"
    );
}

#[tokio::test(start_paused = true)]
async fn plain_call_and_cancellation() {
    let b = breaker(1);
    // A cancelled plain call is ignored.
    let slow = b.call(|| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Err::<(), _>("late")
    });
    assert!(
        tokio::time::timeout(Duration::from_secs(1), slow)
            .await
            .is_err()
    );
    assert_eq!(b.state(), State::Closed);
    let r = b.call(|| async { Err::<(), _>("down") }).await;
    assert_eq!(r.expect_err("failed").into_inner(), Some("down"));
    let r = b.call(|| async { Ok::<_, &str>(()) }).await;
    let e = r.expect_err("open");
    assert_eq!(e.rejected().map(Rejected::state), Some(State::Open));
    assert!(e.to_string().contains("'upstream' is open"), "{e}");
    // call_with and an outcome that is ignored
    b.reset();
    let c = classify_fn(|r: &Result<(), &str>| match r {
        Err(_) => Classification::IGNORED,
        Ok(_) => Classification::SUCCESS,
    });
    let _ = b
        .call_with(&c, || async { Err::<(), _>("client error") })
        .await;
    assert_eq!(b.state(), State::Closed);
    let _ = Outcome::Success;
}

/// An inner service (a tower-test mock) that is never ready: its handle
/// allows no request. The handle also shows that nothing reached it.
fn busy() -> (
    tower_test::mock::Mock<u32, u32>,
    tower_test::mock::Handle<u32, u32>,
) {
    let (svc, mut handle) = tower_test::mock::pair::<u32, u32>();
    handle.allow(0);
    (svc, handle)
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_rejects_at_once_even_when_the_inner_service_is_busy() {
    let b = breaker(1);
    b.try_acquire().expect("closed").failure();
    let (inner, mut handle) = busy();
    let mut svc = b.layer().layer(inner);
    let ready = tokio::time::timeout(Duration::from_millis(1), svc.ready())
        .await
        .expect("ready at once")
        .expect("no error");
    let e = ready.call(1).await.expect_err("rejected");
    assert!(e.is::<Rejected>());
    drop(svc);
    assert!(
        handle.next_request().await.is_none(),
        "no request reached the inner service"
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_dropped_after_poll_ready_gives_its_probe_back() {
    let b = breaker(1);
    b.try_acquire().expect("closed").failure();
    tokio::time::advance(Duration::from_secs(10)).await;
    let (inner, _handle) = busy();
    let mut svc = b.layer().layer(inner);
    // Takes the only probe permit, then waits on the inner service.
    assert!(
        tokio::time::timeout(Duration::from_millis(1), svc.ready())
            .await
            .is_err()
    );
    assert_eq!(b.snapshot().half_open_permits_left, Some(0));
    let clone = svc.clone();
    drop(svc);
    assert_eq!(
        b.snapshot().half_open_permits_left,
        Some(1),
        "returned on drop"
    );
    drop(clone);
    assert_eq!(
        b.snapshot().half_open_permits_left,
        Some(1),
        "a clone holds no permit"
    );
}
