//! HTTP: 5xx and 429 trip the breaker, Retry-After holds it open, and
//! refused calls become a ready 503 with Retry-After.
#![cfg(feature = "http")]

use std::time::Duration;

use buttress_breaker::CircuitBreaker;
use buttress_breaker::error::Rejected;
use http::{Request, Response, StatusCode};
use tower::{Layer, ServiceExt, service_fn};

#[tokio::test(start_paused = true)]
async fn upstream_503_with_retry_after_holds_the_breaker_open() {
    let b = CircuitBreaker::builder("llm")
        .consecutive_failures(5)
        .failure_rate(None)
        .build()
        .expect("valid");
    let upstream = service_fn(|_req: Request<()>| async {
        Ok::<_, std::io::Error>(
            Response::builder()
                .status(503)
                .header("retry-after", "30")
                .body(String::from("busy"))
                .expect("response"),
        )
    });
    let svc = b.layer().http().layer(upstream);

    let r = svc
        .clone()
        .oneshot(Request::new(()))
        .await
        .expect("a response");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body(), "busy", "the upstream's own answer");
    assert_eq!(b.state(), buttress_breaker::State::Open);

    tokio::time::advance(Duration::from_millis(10_500)).await;
    let r = svc
        .clone()
        .oneshot(Request::new(()))
        .await
        .expect("a response");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body(), "", "a ready answer from the breaker");
    assert_eq!(r.headers()["retry-after"], "20");
    assert!(r.extensions().get::<Rejected>().is_some());
}

#[tokio::test(start_paused = true)]
async fn client_errors_do_not_trip() {
    let b = CircuitBreaker::builder("api")
        .consecutive_failures(1)
        .failure_rate(None)
        .build()
        .expect("valid");
    let upstream = service_fn(|_req: Request<()>| async {
        Ok::<_, std::io::Error>(Response::builder().status(404).body(()).expect("response"))
    });
    let svc = b.layer().http().layer(upstream);
    for _ in 0..3 {
        let r = svc
            .clone()
            .oneshot(Request::new(()))
            .await
            .expect("a response");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(b.state(), buttress_breaker::State::Closed);
}
