//! HTTP: 5xx and 429 are retried for idempotent requests, honouring
//! `Retry-After`; other methods are sent once.
#![cfg(feature = "http")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use buttress_retry::{Backoff, RetryPolicy};
use http::{Method, Request, Response};
use tower::{Layer, ServiceExt, service_fn};

fn upstream(
    calls: Arc<AtomicUsize>,
) -> impl tower::Service<
    Request<String>,
    Response = Response<String>,
    Error = std::io::Error,
    Future = impl Future<Output = Result<Response<String>, std::io::Error>>,
> + Clone {
    service_fn(move |req: Request<String>| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let r = if n == 0 {
                Response::builder()
                    .status(503)
                    .header("retry-after", "3")
                    .body(String::new())
            } else {
                Response::builder().status(200).body(req.into_body())
            };
            Ok(r.expect("response"))
        }
    })
}

fn policy() -> RetryPolicy {
    RetryPolicy::builder("http")
        .max_attempts(3)
        .backoff(Backoff::Constant {
            delay: Duration::from_millis(10),
        })
        .no_budget()
        .build()
        .expect("valid")
}

#[tokio::test(start_paused = true)]
async fn get_is_retried_after_retry_after() {
    let calls = Arc::new(AtomicUsize::new(0));
    let patient = RetryPolicy::builder("http")
        .max_attempts(3)
        .backoff(Backoff::Constant {
            delay: Duration::from_millis(10),
        })
        .max_retry_after(Duration::from_secs(5))
        .no_budget()
        .build()
        .expect("valid");
    let svc = patient.layer().http().layer(upstream(Arc::clone(&calls)));
    let start = tokio::time::Instant::now();
    let r = svc
        .oneshot(Request::new("body".to_string()))
        .await
        .expect("response");
    assert_eq!(r.status(), 200);
    assert_eq!(r.body(), "body", "the retry sent the same body");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The whole Retry-After (3 s) is waited for, not the backoff's 10 ms.
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_the_policy_waits_returns_the_answer_at_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    // The policy waits at most its backoff's maximum, 10 ms: coming back
    // after 10 ms would ignore the server's 3 s, so it does not retry.
    let svc = policy().layer().http().layer(upstream(Arc::clone(&calls)));
    let start = tokio::time::Instant::now();
    let r = svc
        .oneshot(Request::new("body".to_string()))
        .await
        .expect("response");
    assert_eq!(r.status(), 503, "the upstream's answer, not retried early");
    assert_eq!(r.headers()["retry-after"], "3");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn post_is_sent_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = policy().layer().http().layer(upstream(Arc::clone(&calls)));
    let mut req = Request::new(String::new());
    *req.method_mut() = Method::POST;
    let r = svc.oneshot(req).await.expect("response");
    assert_eq!(r.status(), 503, "the upstream's answer, not retried");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
