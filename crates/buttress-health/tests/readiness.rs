//! The readiness gate, its layer, and startup work retried under paused
//! time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use buttress_health::{
    GateStatus, Health, NotReady, Readiness, ReadinessLayer, Rejection, RejectionKind, Status,
};
use buttress_retry::{Backoff, RetryPolicy};
use tower::{Layer, ServiceExt, service_fn};

/// The embeddings service's model load: 4 attempts, 5 s, 10 s, 20 s
/// apart, 2 minutes each.
fn model_policy() -> RetryPolicy {
    RetryPolicy::builder("model")
        .max_attempts(4)
        .backoff(Backoff::Exponential {
            base: Duration::from_secs(5),
            factor: 2.0,
            max: Duration::from_secs(20),
        })
        .attempt_timeout(Duration::from_secs(120))
        .no_budget()
        .build()
        .expect("valid")
}

#[test]
fn holds_close_the_gate_until_the_last_lets_go() {
    let gate = Readiness::new();
    assert_eq!(gate.status(), GateStatus::Open);
    let model = gate.hold("loading the model");
    let cache = gate.hold("warming the cache");
    assert!(!gate.is_ready());
    assert_eq!(gate.status(), GateStatus::Starting);
    assert_eq!(gate.reasons(), ["loading the model", "warming the cache"]);
    model.release();
    assert!(!gate.is_ready());
    assert_eq!(gate.reasons(), ["warming the cache"]);
    drop(cache);
    assert!(gate.is_ready());
    assert!(gate.reasons().is_empty());
    assert!(!gate.is_draining());
    gate.drain();
    assert!(!gate.is_ready());
    assert_eq!(gate.status(), GateStatus::Draining);
    // A hold taken and released while draining does not reopen it.
    drop(gate.hold("late"));
    assert!(!gate.is_ready());
    assert!(gate.is_draining());
}

#[test]
fn a_failed_hold_keeps_the_gate_closed_and_says_why() {
    let gate = Readiness::new();
    let hold = gate.hold("loading the model");
    hold.attempt(3);
    hold.fail("out of memory");
    assert!(!gate.is_ready());
    assert_eq!(gate.status(), GateStatus::Failed);
    assert_eq!(
        gate.reasons(),
        ["loading the model: failed (attempt 3): out of memory"]
    );
}

#[tokio::test(start_paused = true)]
async fn requests_while_not_ready_never_reach_the_service() {
    let gate = Readiness::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let svc = ReadinessLayer::new(gate.clone()).layer(service_fn(move |x: u32| {
        c.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, std::io::Error>(x) }
    }));
    let loading = gate.hold("loading the model");
    gate.set_retry_after(Duration::from_millis(1500));
    let e = svc.clone().oneshot(1).await.expect_err("not ready");
    let refusal = e.downcast_ref::<NotReady>().expect("a NotReady");
    assert_eq!(refusal.kind(), RejectionKind::NotReady);
    assert_eq!(refusal.retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(refusal.reasons(), ["loading the model"]);
    assert_eq!(
        refusal.to_string(),
        "the service is not ready: loading the model"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    drop(loading);
    assert_eq!(svc.clone().oneshot(2).await.unwrap(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    gate.drain();
    let e = svc.oneshot(3).await.expect_err("draining");
    let refusal = e.downcast_ref::<NotReady>().expect("a NotReady");
    assert_eq!(refusal.kind(), RejectionKind::ShuttingDown);
    assert_eq!(refusal.to_string(), "the service is shutting down");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn http_refusals_are_503_with_retry_after() {
    let gate = Readiness::new();
    let svc =
        ReadinessLayer::new(gate.clone())
            .http()
            .layer(service_fn(|_: http::Request<()>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hi")))
            }));
    let _loading = gate.hold("loading the model");
    let response = svc
        .oneshot(http::Request::new(()))
        .await
        .expect("infallible");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    assert!(response.extensions().get::<NotReady>().is_some());
}

#[tokio::test(start_paused = true)]
async fn startup_retries_with_the_policy_and_opens_the_gate_when_it_succeeds() {
    let health = Health::new();
    let gate = health.readiness().clone();
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&attempts);
    let start = tokio::time::Instant::now();
    let loading = tokio::spawn({
        let gate = gate.clone();
        async move {
            gate.startup("loading the model", &model_policy(), || {
                let n = a.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    match n {
                        // The first attempt hangs past its 2 minutes.
                        1 => std::future::pending().await,
                        2 => Err(std::io::Error::other("CUDA out of memory")),
                        _ => Ok("model"),
                    }
                }
            })
            .await
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = health.report().await;
    assert_eq!(report.status, Status::Starting);
    assert_eq!(report.http_status(), 503);
    let json = report.to_json();
    assert_eq!(json["ready"], false);
    assert_eq!(json["startup"][0]["reason"], "loading the model");
    assert_eq!(json["startup"][0]["attempts"], 1);

    // Cut off at 120 s: the report says why, during the 5 s of backoff.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let json = health.report().await.to_json();
    assert_eq!(
        json["startup"][0]["last_error"],
        "the attempt ran past its time limit"
    );
    // Then the second attempt fails.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let json = health.report().await.to_json();
    assert_eq!(json["startup"][0]["attempts"], 2);
    assert_eq!(json["startup"][0]["last_error"], "CUDA out of memory");

    assert_eq!(loading.await.unwrap().expect("third attempt"), "model");
    // 120 s cut off, 5 s, the failure, 10 s.
    assert_eq!(start.elapsed(), Duration::from_secs(135));
    assert!(gate.is_ready());
    let report = health.report().await;
    assert_eq!(report.status, Status::Healthy);
    assert!(report.to_json().get("startup").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_startup_that_gives_up_is_reported_not_hidden() {
    let health = Health::new();
    let gate = health.readiness().clone();
    let result = gate
        .startup("loading the model", &model_policy(), || async {
            Err::<(), _>(std::io::Error::other("weights file missing"))
        })
        .await;
    assert!(result.is_err());
    assert_eq!(gate.status(), GateStatus::Failed);
    let report = health.report().await;
    assert_eq!(report.status, Status::Unhealthy);
    let json = report.to_json();
    assert_eq!(json["startup"][0]["status"], "failed");
    assert_eq!(json["startup"][0]["attempts"], 4);
    let last = json["startup"][0]["last_error"].as_str().unwrap();
    assert!(last.contains("weights file missing"), "{last}");
    let ready = health.ready().await;
    assert!(!ready.ready);
    assert!(
        ready.reasons[0].starts_with("loading the model: failed (attempt 4)"),
        "{:?}",
        ready.reasons
    );
}

#[tokio::test(start_paused = true)]
async fn the_layer_waits_for_its_inner_service_to_be_ready() {
    use buttress_test_support::mock::ReadyOnce;
    // ReadyOnce panics when called without being polled ready first.
    let svc = ReadinessLayer::new(Readiness::new()).layer(ReadyOnce::default());
    assert_eq!(svc.get_ref().clone().oneshot(1).await.expect("ready"), 1);
    assert_eq!(svc.oneshot(3).await.expect("answered"), 3);
}
