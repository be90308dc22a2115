//! Every layer that refuses work drops straight into an axum `Router` with
//! `.http()`: over an infallible handler the layer is infallible, and a
//! refused request gets the status that fits it.
#![cfg(all(
    feature = "http",
    feature = "breaker",
    feature = "limit",
    feature = "pressure",
    feature = "executor"
))]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use buttress::RejectionKind;
use buttress::breaker::CircuitBreaker;
use buttress::executor::{Executor, ExecutorConfig, ExecutorError, ExecutorLayer};
use buttress::limit::{KeyedRateLimitLayer, KeyedRateLimiter, Quota, RateLimitLayer, RateLimiter};
use buttress::pressure::{AdaptiveLimitLayer, AdaptiveLimiter, Aimd, Gauge, ShedLayer, Watermarks};
use http::{Request, Response, StatusCode};
use tokio::sync::Notify;
use tower::ServiceExt;

fn get_root() -> Request<Body> {
    Request::builder()
        .uri("/")
        .body(Body::empty())
        .expect("request")
}

async fn send(app: &Router) -> Response<Body> {
    // `Router`'s error is `Infallible`: this `expect` can never fire, and
    // it compiles only because every layer kept it so.
    app.clone().oneshot(get_root()).await.expect("infallible")
}

fn hello() -> Router {
    Router::new().route("/", get(|| async { "hello" }))
}

#[tokio::test(start_paused = true)]
async fn breaker_answers_503_with_retry_after() {
    let breaker = CircuitBreaker::builder("llm").build().expect("valid");
    let app = hello().layer(breaker.layer().http());
    assert_eq!(send(&app).await.status(), StatusCode::OK);
    breaker.force_open();
    let r = send(&app).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let rejected = r
        .extensions()
        .get::<buttress::breaker::error::Rejected>()
        .expect("the rejection rides along");
    assert_eq!(rejected.name(), "llm");
}

#[tokio::test(start_paused = true)]
async fn limiter_answers_429_with_retry_after_and_ratelimit_fields() {
    let quota = Quota::per_second(1)
        .expect("valid")
        .with_burst(1)
        .expect("valid");
    let app =
        hello().layer(RateLimitLayer::new(RateLimiter::new("api", quota).expect("valid")).http());
    assert_eq!(send(&app).await.status(), StatusCode::OK);
    let r = send(&app).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.headers()["ratelimit"], "\"api\";r=0;t=1");
    assert_eq!(r.headers()["ratelimit-policy"], "\"api\";q=1;w=1");

    let keyed: KeyedRateLimiter<u8> = KeyedRateLimiter::builder("per-client", quota)
        .build()
        .expect("valid");
    let app = hello().layer(KeyedRateLimitLayer::new(keyed, |_: &Request<Body>| 7u8).http());
    assert_eq!(send(&app).await.status(), StatusCode::OK);
    assert_eq!(send(&app).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(start_paused = true)]
async fn shedding_answers_503() {
    let gauge = Gauge::builder("backlog", Watermarks::new(10, 5).expect("valid"))
        .build()
        .expect("valid");
    let app = hello().layer(ShedLayer::new(gauge.clone()).http());
    assert_eq!(send(&app).await.status(), StatusCode::OK);
    gauge.set(10);
    assert_eq!(send(&app).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The waiting mode goes into a router too.
    let app = hello().layer(ShedLayer::new(gauge).wait(Duration::from_millis(10)).http());
    assert_eq!(send(&app).await.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// A router whose handler waits on `gate`, behind `layer`.
fn gated<L>(gate: Arc<Notify>, layer: L) -> Router
where
    L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service: tower::Service<Request<Body>, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<Request<Body>>>::Response: axum::response::IntoResponse + 'static,
    <L::Service as tower::Service<Request<Body>>>::Future: Send + 'static,
{
    Router::new()
        .route(
            "/",
            get(move || {
                let gate = gate.clone();
                async move {
                    gate.notified().await;
                    "done"
                }
            }),
        )
        .layer(layer)
}

#[tokio::test(start_paused = true)]
async fn adaptive_limit_answers_503() {
    let limiter = AdaptiveLimiter::new("llm", Aimd::new(1, 1, 1).expect("valid")).expect("valid");
    let gate = Arc::new(Notify::new());
    let app = gated(gate.clone(), AdaptiveLimitLayer::new(limiter).http());
    let first = tokio::spawn({
        let app = app.clone();
        async move { send(&app).await }
    });
    tokio::task::yield_now().await;
    assert_eq!(send(&app).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    gate.notify_one();
    assert_eq!(first.await.expect("joined").status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn executor_answers_503_when_full_and_504_on_timeout() {
    let executor = Executor::new(
        "chat",
        ExecutorConfig::default()
            .max_running(1)
            .max_queued(1)
            .timeout(Some(Duration::from_secs(2))),
    )
    .expect("valid");
    let gate = Arc::new(Notify::new());
    let app = gated(
        gate.clone(),
        ExecutorLayer::new(executor, |_: &Request<Body>| 1).http(),
    );
    let running = tokio::spawn({
        let app = app.clone();
        async move { send(&app).await }
    });
    tokio::task::yield_now().await;
    let queued = tokio::spawn({
        let app = app.clone();
        async move { send(&app).await }
    });
    tokio::task::yield_now().await;
    let full = send(&app).await;
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    let err = full.extensions().get::<ExecutorError>().expect("extension");
    assert_eq!(buttress::Rejection::kind(err), RejectionKind::QueueFull);
    // Nobody opens the gate: the running task times out (504), then the
    // queued one does.
    let r = running.await.expect("joined");
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        queued.await.expect("joined").status(),
        StatusCode::GATEWAY_TIMEOUT
    );
}

#[tokio::test(start_paused = true)]
async fn executor_in_place_answers_503_when_full_and_504_on_timeout() {
    let executor = Executor::new(
        "chat",
        ExecutorConfig::default()
            .max_running(1)
            .max_queued(1)
            .timeout(Some(Duration::from_secs(2))),
    )
    .expect("valid");
    let gate = Arc::new(Notify::new());
    let app = gated(
        gate.clone(),
        ExecutorLayer::new(executor, |_: &Request<Body>| 1)
            .in_place()
            .http(),
    );
    let running = tokio::spawn({
        let app = app.clone();
        async move { send(&app).await }
    });
    tokio::task::yield_now().await;
    let queued = tokio::spawn({
        let app = app.clone();
        async move { send(&app).await }
    });
    tokio::task::yield_now().await;
    let full = send(&app).await;
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    let err = full.extensions().get::<ExecutorError>().expect("extension");
    assert_eq!(buttress::Rejection::kind(err), RejectionKind::QueueFull);
    // The running request holds the slot until its timeout (504); the
    // queued one then gets the slot and times out in turn.
    assert_eq!(
        running.await.expect("joined").status(),
        StatusCode::GATEWAY_TIMEOUT
    );
    assert_eq!(
        queued.await.expect("joined").status(),
        StatusCode::GATEWAY_TIMEOUT
    );
}

#[tokio::test(start_paused = true)]
async fn executor_answers_503_to_work_a_shutdown_cancels() {
    let executor = Executor::new("chat", ExecutorConfig::default().max_running(1)).expect("valid");
    let gate = Arc::new(Notify::new());
    let app = gated(
        gate.clone(),
        ExecutorLayer::new(executor.clone(), |_: &Request<Body>| 1).http(),
    );
    let running = tokio::spawn({
        let app = app.clone();
        async move { send(&app).await }
    });
    tokio::task::yield_now().await;
    // Nobody opens the gate: the shutdown's grace period ends and the
    // running request is cancelled, answered as a shutdown.
    let report = executor.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.cancelled_running, 1, "{report:?}");
    assert_eq!(
        running.await.expect("joined").status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // And new work is refused the same way.
    assert_eq!(send(&app).await.status(), StatusCode::SERVICE_UNAVAILABLE);
}
