//! The problem mapping in an axum `Router`: handlers that return problems
//! or validation errors, `HandleErrorLayer` over tower layers, a panic.

use std::time::Duration;

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::routing::get;
use axum::{Extension, Router};
use buttress_degrade::{Invalid, Problem, ProblemLayer, handle_error, problem_stack};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::request_id::RequestId;

async fn validate(uri: http::Uri) -> Result<&'static str, Invalid> {
    let mut invalid = Invalid::new();
    let message = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("message=")))
        .unwrap_or("");
    if message.is_empty() {
        invalid.push("message", "must not be empty");
    }
    invalid.into_result().map(|()| "valid")
}

fn app() -> Router {
    let slow = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "late"
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(handle_error))
                .timeout(Duration::from_secs(30)),
        );
    Router::new()
        .route(
            "/missing",
            get(|| async {
                Problem::new(
                    StatusCode::NOT_FOUND,
                    "no_such_document",
                    "No document has that id.",
                )
            }),
        )
        .route("/validate", get(validate))
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("a bug in the handler");
                }
                "unreachable"
            }),
        )
        .route(
            "/id",
            get(|Extension(id): Extension<RequestId>| async move {
                id.header_value().to_str().unwrap_or_default().to_owned()
            }),
        )
        .merge(slow)
        .layer(problem_stack().into_inner())
}

async fn get_json(app: &Router, path: &str) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let response = app
        .clone()
        .oneshot(
            Request::get(path)
                .header("x-request-id", "rid-1")
                .body(Body::empty())
                .expect("valid"),
        )
        .await
        .expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("a body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(
        String::from_utf8_lossy(&bytes).into_owned(),
    ));
    (parts.status, parts.headers, json)
}

#[tokio::test(start_paused = true)]
async fn a_handlers_problem_gets_the_request_id() {
    let (status, headers, body) = get_json(&app(), "/missing").await;
    assert_eq!(status, 404);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["kind"], "no_such_document");
    assert_eq!(body["request_id"], "rid-1");
    assert_eq!(headers["x-request-id"], "rid-1");
}

#[tokio::test(start_paused = true)]
async fn validation_errors_are_422_with_the_fields() {
    let (status, _, body) = get_json(&app(), "/validate?message=").await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "message");
    assert_eq!(body["request_id"], "rid-1");
    let (status, _, body) = get_json(&app(), "/validate?message=hi").await;
    assert_eq!(status, 200);
    assert_eq!(body, "valid");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_under_handle_error_is_504() {
    let (status, _, body) = get_json(&app(), "/slow").await;
    assert_eq!(status, 504);
    assert_eq!(body["kind"], "timed_out");
    assert_eq!(body["request_id"], "rid-1");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_is_a_500_and_the_router_goes_on() {
    let app = app();
    let (status, _, body) = get_json(&app, "/panic").await;
    assert_eq!(status, 500);
    assert_eq!(body["kind"], "internal");
    assert_eq!(body["request_id"], "rid-1");
    let (status, _, body) = get_json(&app, "/id").await;
    assert_eq!(status, 200);
    assert_eq!(body, "rid-1", "handlers see the same id");
}

#[tokio::test(start_paused = true)]
async fn the_layer_alone_makes_an_id() {
    let app = Router::new()
        .route(
            "/missing",
            get(|| async { Problem::new(StatusCode::NOT_FOUND, "gone", "Gone.") }),
        )
        .layer(ProblemLayer::new());
    let response = app
        .oneshot(Request::get("/missing").body(Body::empty()).expect("valid"))
        .await
        .expect("infallible");
    let id = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(body["request_id"], id.as_str());
}

#[tokio::test(start_paused = true)]
async fn an_unknown_path_is_a_problem_too() {
    let (status, headers, body) = get_json(&app(), "/no/such/path").await;
    assert_eq!(status, 404);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["kind"], "not_found");
    assert_eq!(body["request_id"], "rid-1");
}

#[tokio::test(start_paused = true)]
async fn a_body_of_its_own_is_left_alone() {
    let app = Router::new()
        .route(
            "/teapot",
            get(|| async { (StatusCode::IM_A_TEAPOT, "short and stout") }),
        )
        .layer(ProblemLayer::new());
    let (status, headers, body) = get_json(&app, "/teapot").await;
    assert_eq!(status, 418);
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(body, "short and stout");
}
