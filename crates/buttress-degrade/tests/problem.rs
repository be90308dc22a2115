//! Every failure an HTTP service meets, answered as problem+json with the
//! request id: a table of kinds, a panicking handler, hostile ids.

use std::time::Duration;

use buttress_breaker::{CircuitBreaker, CircuitBreakerLayer};
use buttress_core::BoxError;
use buttress_degrade::{Invalid, problem_stack};
use buttress_limit::RateLimitLayer;
use http::{Request, Response};
use tower::util::BoxCloneService;
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};

mod support;

type Svc = BoxCloneService<Request<String>, Response<String>, BoxError>;

fn failing(make: fn() -> BoxError) -> Svc {
    BoxCloneService::new(service_fn(move |_: Request<String>| async move {
        Err::<Response<String>, _>(make())
    }))
}

fn ok() -> Svc {
    BoxCloneService::new(service_fn(|_: Request<String>| async {
        Ok::<_, BoxError>(Response::new("fine".to_owned()))
    }))
}

/// A breaker opened for 30 s around a failing service; the first call
/// opens it.
async fn open_breaker() -> Svc {
    let breaker = CircuitBreaker::builder("llm")
        .consecutive_failures(1)
        .failure_rate(None)
        .open_for(Duration::from_secs(30))
        .build()
        .expect("valid");
    let svc = CircuitBreakerLayer::new(breaker).layer(failing(|| "down".into()));
    let _ = svc.clone().oneshot(Request::new(String::new())).await;
    BoxCloneService::new(svc)
}

struct Expect {
    status: u16,
    kind: &'static str,
    retry_after: Option<&'static str>,
    headers: &'static [&'static str],
}

async fn cases() -> Vec<(&'static str, Svc, Expect)> {
    use buttress_executor::error::{ExecutorError, SubmitError, TaskError};
    use buttress_pressure::{Gauge, ShedLayer, Watermarks};
    let gauge = Gauge::builder("queue", Watermarks::new(10, 5).expect("valid"))
        .build()
        .expect("valid");
    gauge.set(20);
    let full = support::full_queue().await;
    let readiness = buttress_health::Readiness::new();
    std::mem::forget(readiness.hold("loading the model"));
    let hangs = BoxCloneService::new(
        ServiceBuilder::new()
            .timeout(Duration::from_secs(30))
            .service(service_fn(|_: Request<String>| {
                std::future::pending::<Result<Response<String>, BoxError>>()
            })),
    );
    vec![
        (
            "breaker open",
            open_breaker().await,
            Expect {
                status: 503,
                kind: "circuit_open",
                retry_after: Some("30"),
                headers: &[],
            },
        ),
        (
            "rate limited",
            BoxCloneService::new(RateLimitLayer::new(support::spent_limiter()).layer(ok())),
            Expect {
                status: 429,
                kind: "rate_limited",
                retry_after: Some("6"),
                headers: &["ratelimit", "ratelimit-policy"],
            },
        ),
        (
            "rate limited, answered by the layer itself",
            BoxCloneService::new(
                RateLimitLayer::new(support::spent_limiter())
                    .http()
                    .layer(ok())
                    .map_err(|e: BoxError| e),
            ),
            Expect {
                status: 429,
                kind: "rate_limited",
                retry_after: Some("6"),
                headers: &["ratelimit", "ratelimit-policy"],
            },
        ),
        (
            "shed",
            BoxCloneService::new(ShedLayer::new(gauge).layer(ok())),
            Expect {
                status: 503,
                kind: "overloaded",
                retry_after: None,
                headers: &[],
            },
        ),
        (
            "queue full",
            BoxCloneService::new(service_fn(move |_: Request<String>| async move {
                Err::<Response<String>, BoxError>(Box::new(ExecutorError::Submit(full)))
            })),
            Expect {
                status: 503,
                kind: "queue_full",
                retry_after: None,
                headers: &[],
            },
        ),
        (
            "executor closed",
            failing(|| Box::new(ExecutorError::Submit(SubmitError::Closed))),
            Expect {
                status: 503,
                kind: "shutting_down",
                retry_after: None,
                headers: &[],
            },
        ),
        (
            "not ready",
            BoxCloneService::new(buttress_health::ReadinessLayer::new(readiness).layer(ok())),
            Expect {
                status: 503,
                kind: "not_ready",
                retry_after: Some("5"),
                headers: &[],
            },
        ),
        (
            "timeout",
            hangs,
            Expect {
                status: 504,
                kind: "timed_out",
                retry_after: None,
                headers: &[],
            },
        ),
        (
            "executor task timeout",
            failing(|| Box::new(ExecutorError::Task(TaskError::TimedOut))),
            Expect {
                status: 504,
                kind: "timed_out",
                retry_after: None,
                headers: &[],
            },
        ),
        (
            "a task that panicked",
            failing(|| Box::new(ExecutorError::Task(TaskError::Panicked))),
            Expect {
                status: 500,
                kind: "internal",
                retry_after: None,
                headers: &[],
            },
        ),
        (
            "validation",
            failing(|| {
                let mut invalid = Invalid::new();
                invalid.push("message", "must be 1 to 4000 characters; it is 0");
                invalid.push("domain", "must be one of general, code, docs");
                Box::new(invalid)
            }),
            Expect {
                status: 422,
                kind: "validation",
                retry_after: None,
                headers: &[],
            },
        ),
        (
            "anything else",
            failing(|| "SELECT * FROM users: password authentication failed".into()),
            Expect {
                status: 500,
                kind: "internal",
                retry_after: None,
                headers: &[],
            },
        ),
    ]
}

fn body_of(response: &Response<String>) -> serde_json::Value {
    serde_json::from_str(response.body()).expect("the body is JSON")
}

#[tokio::test(start_paused = true)]
async fn every_failure_is_a_problem_with_the_request_id() {
    for (name, svc, expect) in cases().await {
        for given_id in [Some("client-id-7"), None] {
            let mut request = Request::builder();
            if let Some(id) = given_id {
                request = request.header("x-request-id", id);
            }
            let request = request.body(String::new()).expect("valid");
            let response = problem_stack()
                .service(svc.clone())
                .oneshot(request)
                .await
                .expect("infallible");
            assert_eq!(response.status(), expect.status, "{name}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{name}"
            );
            assert_eq!(
                response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().expect("ascii")),
                expect.retry_after,
                "{name}"
            );
            for header in expect.headers {
                assert!(response.headers().contains_key(*header), "{name}: {header}");
            }
            let id = response.headers()["x-request-id"]
                .to_str()
                .expect("ascii")
                .to_owned();
            if let Some(given) = given_id {
                assert_eq!(id, given, "{name}");
            } else {
                assert_eq!(id.len(), 36, "{name}: a UUID is made");
            }
            let body = body_of(&response);
            let keys: Vec<&str> = body
                .as_object()
                .expect("an object")
                .keys()
                .map(String::as_str)
                .collect();
            for key in ["type", "title", "status", "detail", "kind", "request_id"] {
                assert!(keys.contains(&key), "{name}: {key} in {keys:?}");
            }
            assert_eq!(body["type"], "about:blank", "{name}");
            assert_eq!(body["status"], expect.status, "{name}");
            assert_eq!(body["kind"], expect.kind, "{name}");
            assert_eq!(body["request_id"], id.as_str(), "{name}");
            assert_eq!(
                body["title"],
                http::StatusCode::from_u16(expect.status)
                    .expect("valid")
                    .canonical_reason()
                    .expect("known"),
                "{name}"
            );
            match expect.retry_after {
                Some(secs) => assert_eq!(body["retry_after"].to_string(), secs, "{name}"),
                None => assert!(body.get("retry_after").is_none(), "{name}"),
            }
            if expect.status == 500 {
                assert!(
                    !response.body().contains("password"),
                    "{name}: no internal detail"
                );
            }
            if expect.kind == "validation" {
                assert_eq!(
                    body["errors"],
                    serde_json::json!([
                        {"field": "message", "message": "must be 1 to 4000 characters; it is 0"},
                        {"field": "domain", "message": "must be one of general, code, docs"},
                    ])
                );
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_is_a_500_and_the_service_goes_on() {
    let svc = problem_stack().service(service_fn(|request: Request<String>| async move {
        if request.uri().path() == "/boom" {
            panic!("the handler panicked");
        }
        Ok::<_, BoxError>(Response::new("fine".to_owned()))
    }));
    let response = svc
        .clone()
        .oneshot(Request::get("/boom").body(String::new()).expect("valid"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), 500);
    let body = body_of(&response);
    assert_eq!(body["kind"], "internal");
    assert_eq!(
        body["request_id"],
        response.headers()["x-request-id"].to_str().expect("ascii")
    );
    assert!(!response.body().contains("panicked"));

    let response = svc
        .oneshot(Request::get("/fine").body(String::new()).expect("valid"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), "fine");
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_call_itself_is_a_500() {
    let response = problem_stack()
        .service(Misbehaves("call panics"))
        .oneshot(Request::new(String::new()))
        .await
        .expect("infallible");
    assert_eq!(response.status(), 500);
    assert_eq!(body_of(&response)["kind"], "internal");
}

/// The problem stack's answer to a failing request that carries `id`.
async fn answer_with_id(id: &[u8]) -> Response<String> {
    let request = Request::builder()
        .header(
            "x-request-id",
            http::HeaderValue::from_bytes(id).expect("a header value"),
        )
        .body(String::new())
        .expect("valid");
    problem_stack()
        .service(failing(|| "down".into()))
        .oneshot(request)
        .await
        .expect("infallible")
}

#[tokio::test(start_paused = true)]
async fn a_hostile_request_id_is_replaced() {
    let long = "x".repeat(5000);
    for hostile in [long.as_str(), "a b", "", "é", "tab\there"] {
        let response = answer_with_id(hostile.as_bytes()).await;
        let id = response.headers()["x-request-id"].to_str().expect("ascii");
        assert_eq!(id.len(), 36, "{hostile:?} is replaced by a UUID");
        assert_eq!(body_of(&response)["request_id"], id);
    }
    // Quotes are usable characters: they are kept, and escaped in the body.
    let response = answer_with_id(b"\"},{\"admin\":true").await;
    let body = body_of(&response);
    assert_eq!(body["request_id"], "\"},{\"admin\":true");
    assert!(body.get("admin").is_none());
}

#[tokio::test(start_paused = true)]
async fn successes_pass_through_with_the_id() {
    let response = problem_stack()
        .service(ok())
        .oneshot(Request::new(String::new()))
        .await
        .expect("infallible");
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), "fine");
    assert!(response.headers().get("content-type").is_none());
}

#[test]
fn a_problem_says_what_it_holds() {
    let mut invalid = Invalid::new();
    invalid.push("q", "must not be empty");
    let boxed: BoxError = Box::new(invalid.clone());
    let problem = buttress_degrade::Problem::from_error(&*boxed).with_request_id("r-9");
    assert_eq!(problem.status(), 422);
    assert_eq!(problem.kind(), "validation");
    assert_eq!(problem.request_id(), Some("r-9"));
    assert_eq!(problem.errors(), invalid.errors());
    assert_eq!(
        problem.to_string(),
        "422 validation: The request is invalid; `errors` says which fields and why."
    );
    let json: serde_json::Value = serde_json::to_value(&problem).expect("serialises");
    assert_eq!(json["request_id"], "r-9");
    assert_eq!(json["errors"][0]["field"], "q");

    let bare = buttress_degrade::Problem::internal();
    assert_eq!(bare.request_id(), None);
    assert_eq!(bare.status(), 500);
    assert!(bare.errors().is_empty());
    assert!(Invalid::new().into_result().is_ok());
    assert_eq!(
        invalid.to_string(),
        "the request is invalid (1 field errors)"
    );

    let gone = buttress_degrade::Problem::for_status(http::StatusCode::GONE);
    assert_eq!((gone.status().as_u16(), gone.kind()), (410, "gone"));
    let bad_gateway = buttress_degrade::Problem::for_status(http::StatusCode::BAD_GATEWAY);
    assert_eq!(
        (bad_gateway.status().as_u16(), bad_gateway.kind()),
        (502, "internal")
    );
}

/// A service whose readiness fails, panics or pends, or whose call
/// panics, as told.
#[derive(Clone)]
struct Misbehaves(&'static str);

impl tower::Service<Request<String>> for Misbehaves {
    type Response = Response<String>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Response<String>, BoxError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        match self.0 {
            "fails" => std::task::Poll::Ready(Err(Box::new(
                buttress_executor::error::ExecutorError::Submit(
                    buttress_executor::error::SubmitError::Closed,
                ),
            ))),
            "panics" => panic!("poll_ready panicked"),
            "pends" => std::task::Poll::Pending,
            _ => std::task::Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, _: Request<String>) -> Self::Future {
        assert_ne!(self.0, "call panics", "call panicked");
        std::future::ready(Ok(Response::new("called".to_owned())))
    }
}

#[tokio::test(start_paused = true)]
async fn readiness_that_fails_or_panics_answers_the_next_request() {
    use tower::Service;
    for (how, status, kind) in [("fails", 503, "shutting_down"), ("panics", 500, "internal")] {
        let mut svc = buttress_degrade::ProblemLayer::new().layer(Misbehaves(how));
        std::future::poll_fn(|cx| svc.poll_ready(cx))
            .await
            .expect("infallible");
        let response = svc
            .call(
                Request::builder()
                    .header("x-request-id", "r-1")
                    .body(String::new())
                    .expect("valid"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), status, "{how}");
        let body = body_of(&response);
        assert_eq!(body["kind"], kind, "{how}");
        assert_eq!(body["request_id"], "r-1", "{how}");
    }
    // Pending readiness stays pending.
    let mut svc = buttress_degrade::ProblemLayer::new().layer(Misbehaves("pends"));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(tower::Service::poll_ready(&mut svc, &mut cx).is_pending());
}

#[tokio::test(start_paused = true)]
async fn bare_refusals_become_problems_and_bodies_stay() {
    let answer = |status: u16, body: &'static str, kind: Option<buttress_core::RejectionKind>| {
        service_fn(move |_: Request<String>| async move {
            let mut response = Response::builder()
                .status(status)
                .header("retry-after", "7")
                .body(body.to_owned())
                .expect("valid");
            if let Some(kind) = kind {
                response.extensions_mut().insert(kind);
            }
            Ok::<_, BoxError>(response)
        })
    };
    // An error status with a body but no content type is left alone.
    let response = problem_stack()
        .service(answer(418, "short and stout", None))
        .oneshot(Request::new(String::new()))
        .await
        .expect("infallible");
    assert_eq!(response.body(), "short and stout");
    // A refusal that failed inside says nothing of when to come back.
    let response = problem_stack()
        .service(answer(500, "", Some(buttress_core::RejectionKind::Failed)))
        .oneshot(Request::new(String::new()))
        .await
        .expect("infallible");
    let body = body_of(&response);
    assert_eq!(body["kind"], "internal");
    assert!(body.get("retry_after").is_none());
    // One that knows says it in the body too.
    let response = problem_stack()
        .service(answer(
            503,
            "",
            Some(buttress_core::RejectionKind::QueueFull),
        ))
        .oneshot(Request::new(String::new()))
        .await
        .expect("infallible");
    assert_eq!(body_of(&response)["retry_after"], 7);
}

#[test]
fn a_requests_id_is_kept_made_or_refused() {
    use buttress_degrade::{ensure_request_id, request_id_of};
    let mut given = Request::builder()
        .header("x-request-id", "abc-1")
        .body(())
        .expect("valid");
    assert_eq!(request_id_of(&given), Some("abc-1"));
    assert_eq!(ensure_request_id(&mut given), "abc-1");

    let mut hostile = Request::builder()
        .header("x-request-id", "a b")
        .body(())
        .expect("valid");
    assert_eq!(request_id_of(&hostile), None, "an unusable id is not read");
    let made = ensure_request_id(&mut hostile);
    assert_ne!(made, "a b");
    assert_eq!(request_id_of(&hostile), Some(made.as_str()));

    let bare = Request::new(());
    assert_eq!(request_id_of(&bare), None);
}
