//! `/health`, `/livez` and `/readyz`: the JSON, the status codes, and
//! what each endpoint touches.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use buttress_health::{CheckOptions, Health, HealthEndpoints, check_fn};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get(
    endpoints: &HealthEndpoints,
    method: Method,
    path: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(())
        .expect("request");
    let response = endpoints
        .clone()
        .oneshot(request)
        .await
        .expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("infallible").to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).expect("utf-8"),
    )
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).expect("JSON")
}

/// Postgres (critical), and the LLM (non-critical), down when `llm_down`
/// is 1; counts the probes of both.
fn stack() -> (Health, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let health = Health::new().version("1.4.0");
    let probes = Arc::new(AtomicUsize::new(0));
    let llm_down = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&probes);
    health
        .register(
            "postgres",
            check_fn(move || {
                p.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, std::io::Error>(()) }
            }),
            CheckOptions::critical(),
        )
        .expect("valid");
    let p = Arc::clone(&probes);
    let down = Arc::clone(&llm_down);
    health
        .register(
            "ollama",
            check_fn(move || {
                p.fetch_add(1, Ordering::SeqCst);
                let down = down.load(Ordering::SeqCst) == 1;
                async move {
                    if down {
                        Err(std::io::Error::other("connection refused"))
                    } else {
                        Ok(())
                    }
                }
            }),
            CheckOptions::non_critical(),
        )
        .expect("valid");
    (health, probes, llm_down)
}

#[tokio::test(start_paused = true)]
async fn health_keeps_the_reports_shape_and_adds_the_detail() {
    let (health, _, llm_down) = stack();
    let endpoints = HealthEndpoints::new(health);
    let (status, headers, body) = get(&endpoints, Method::GET, "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    // The top level first: the status, then one entry per dependency.
    assert!(
        body.starts_with(r#"{"status":"healthy","postgres":"ok","ollama":"ok","ready":true,"#),
        "{body}"
    );
    let v = json(&body);
    assert_eq!(v["version"], "1.4.0");
    assert!(v["uptime_seconds"].as_f64().is_some());
    let pg = &v["checks"]["postgres"];
    assert_eq!(pg["status"], "ok");
    assert_eq!(pg["critical"], true);
    assert!(pg["duration_ms"].as_f64().is_some());
    assert!(pg["since"].as_str().expect("since").ends_with('Z'));
    assert!(pg.get("error").is_none());

    llm_down.store(1, Ordering::SeqCst);
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    let (status, _, body) = get(&endpoints, Method::GET, "/health").await;
    assert_eq!(status, StatusCode::OK, "the LLM is not critical");
    let v = json(&body);
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["ollama"], "down");
    assert_eq!(v["checks"]["ollama"]["error"], "connection refused");
    assert_eq!(v["checks"]["ollama"]["critical"], false);
}

#[tokio::test(start_paused = true)]
async fn livez_touches_no_dependency() {
    let (health, probes, _) = stack();
    let endpoints = HealthEndpoints::new(health.clone());
    let _loading = health.readiness().hold("loading the model");
    let (status, _, body) = get(&endpoints, Method::GET, "/livez").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body), serde_json::json!({ "status": "alive" }));
    assert_eq!(probes.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn readyz_runs_only_critical_checks_and_says_why_not() {
    let (health, probes, _) = stack();
    let endpoints = HealthEndpoints::new(health.clone());
    let (status, _, body) = get(&endpoints, Method::GET, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body), serde_json::json!({ "ready": true }));
    assert_eq!(probes.load(Ordering::SeqCst), 1, "postgres alone");

    let loading = health.readiness().hold("loading the model");
    let (status, headers, body) = get(&endpoints, Method::GET, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "5");
    assert_eq!(
        json(&body),
        serde_json::json!({ "ready": false, "reasons": ["loading the model"] })
    );
    let (status, _, body) = get(&endpoints, Method::GET, "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&body)["status"], "starting");
    drop(loading);

    health.readiness().drain();
    let (status, _, body) = get(&endpoints, Method::GET, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json(&body)["reasons"][0],
        "draining: the service is shutting down"
    );
}

#[tokio::test(start_paused = true)]
async fn a_critical_dependency_down_is_503_and_not_ready() {
    let health = Health::new();
    health
        .register(
            "postgres",
            check_fn(|| async {
                Err::<(), _>(std::io::Error::other("password authentication failed"))
            }),
            CheckOptions::critical(),
        )
        .expect("valid");
    let endpoints = HealthEndpoints::new(health);
    let (status, headers, body) = get(&endpoints, Method::GET, "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(json(&body)["status"], "unhealthy");
    let (status, _, body) = get(&endpoints, Method::GET, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json(&body)["reasons"][0],
        "postgres: password authentication failed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_critical_check_can_leave_readiness_alone() {
    // The LLM every replica shares: its outage is unhealthy (an alert),
    // but the replicas stay ready to answer without it; the database
    // still closes readiness.
    let health = Health::new();
    let llm_probes = Arc::new(AtomicUsize::new(0));
    let counted = llm_probes.clone();
    health
        .register(
            "llm",
            check_fn(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(std::io::Error::other("connection refused")) }
            }),
            CheckOptions::critical().readiness(false),
        )
        .expect("valid");
    let endpoints = HealthEndpoints::new(health.clone());
    let (status, _, body) = get(&endpoints, Method::GET, "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&body)["status"], "unhealthy");
    let probes_for_health = llm_probes.load(Ordering::SeqCst);
    let (status, _, body) = get(&endpoints, Method::GET, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body), serde_json::json!({ "ready": true }));
    assert_eq!(
        llm_probes.load(Ordering::SeqCst),
        probes_for_health,
        "/readyz does not probe it"
    );

    health
        .register(
            "postgres",
            check_fn(|| async { Err::<(), _>(std::io::Error::other("too many connections")) }),
            CheckOptions::critical(),
        )
        .expect("valid");
    let (status, _, body) = get(&endpoints, Method::GET, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json(&body),
        serde_json::json!({ "ready": false, "reasons": ["postgres: too many connections"] })
    );
}

#[tokio::test(start_paused = true)]
async fn head_other_methods_and_other_paths() {
    let (health, _, _) = stack();
    let endpoints = HealthEndpoints::new(health);
    let (status, _, body) = get(&endpoints, Method::HEAD, "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    let (status, headers, _) = get(&endpoints, Method::POST, "/health").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "GET, HEAD");
    let (status, _, body) = get(&endpoints, Method::GET, "/healthz").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["error"], "not found");
}

#[cfg(feature = "axum")]
#[tokio::test(start_paused = true)]
async fn the_endpoints_merge_into_an_axum_router() {
    let (health, _, _) = stack();
    let app: axum::Router = axum::Router::new()
        .route("/", axum::routing::get(|| async { "hello" }))
        .merge(HealthEndpoints::new(health).router());
    for (path, status) in [
        ("/", 200),
        ("/health", 200),
        ("/livez", 200),
        ("/readyz", 200),
        ("/nope", 404),
    ] {
        let response = app
            .clone()
            .oneshot(
                Request::get(path)
                    .body(axum::body::Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), status, "{path}");
    }
}
