//! The embeddings service, in process and in paused time: it answers at
//! once, refuses work with 503 and Retry-After while the model loads,
//! retries a failed load 5, 10 and 20 s later, and refuses oversized
//! batches with 422 naming each input.

// Helpers outside #[test] functions panic on failure too: that is the report.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use buttress_stack::embeddings::{Embedder, Embeddings, EmbeddingsConfig, router};
use buttress_stack::model::{DIMENSIONS, HashedModel};
use serde_json::json;
use support::{LOCAL, call};

fn input(texts: Vec<String>) -> String {
    json!({"input": texts, "model": "any"}).to_string()
}

#[tokio::test(start_paused = true)]
async fn answers_at_once_and_works_once_loaded() {
    let app = Embeddings::new(EmbeddingsConfig {
        load_delay: Duration::from_secs(30),
        ..Default::default()
    });
    let routes = router(app.clone());
    let loading = tokio::spawn({
        let app = app.clone();
        async move { app.load().await }
    });
    tokio::task::yield_now().await;
    let (status, headers, body) = call(
        &routes,
        LOCAL,
        "POST",
        "/v1/embeddings",
        &input(vec!["hello".into()]),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(body["status"], 503);
    let (status, _, body) = call(&routes, LOCAL, "GET", "/health", "").await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "starting", "{body}");
    let (status, _, _) = call(&routes, LOCAL, "GET", "/livez", "").await;
    assert_eq!(status, 200);

    loading.await.unwrap().unwrap();
    assert!(app.is_loaded());
    let (status, _, body) = call(
        &routes,
        LOCAL,
        "POST",
        "/v1/embeddings",
        &input(vec!["hello world".into(), "again".into()]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "buttress-hashed-384");
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(
        body["data"][0]["embedding"].as_array().unwrap().len(),
        DIMENSIONS
    );
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    // One text, not a list, is taken too.
    let (status, _, body) = call(
        &routes,
        LOCAL,
        "POST",
        "/v1/embeddings",
        &json!({"input": "one"}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let first = body["data"][0]["embedding"][0].as_f64().unwrap() as f32;
    assert_eq!(first, HashedModel.embed("one")[0]);
    let (status, _, _) = call(&routes, LOCAL, "GET", "/readyz", "").await;
    assert_eq!(status, 200);
}

#[derive(Debug, thiserror::Error)]
#[error("weights file truncated")]
struct Truncated;

#[tokio::test(start_paused = true)]
async fn a_failed_load_is_retried_5_10_and_20_seconds_later() {
    let app = Embeddings::new(EmbeddingsConfig::default());
    let attempts = Arc::new(AtomicU32::new(0));
    let started = tokio::time::Instant::now();
    let at = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (a, t) = (attempts.clone(), at.clone());
    app.load_with(move || {
        let n = a.fetch_add(1, Ordering::SeqCst);
        t.lock().unwrap().push(started.elapsed());
        async move {
            if n < 2 {
                Err(Truncated)
            } else {
                Ok(Arc::new(HashedModel) as Arc<dyn Embedder>)
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    let at = at.lock().unwrap().clone();
    assert_eq!(
        at,
        [
            Duration::ZERO,
            Duration::from_secs(5),
            Duration::from_secs(15)
        ]
    );
    assert!(app.health().readiness().is_ready());
}

#[tokio::test(start_paused = true)]
async fn four_failed_loads_leave_the_gate_closed_with_the_reason() {
    let app = Embeddings::new(EmbeddingsConfig::default());
    let routes = router(app.clone());
    let result = app
        .load_with(|| async { Err::<Arc<dyn Embedder>, _>(Truncated) })
        .await;
    assert!(result.is_err());
    assert!(!app.is_loaded());
    let (status, _, body) = call(&routes, LOCAL, "GET", "/health", "").await;
    assert_eq!(status, 503);
    assert!(
        body.to_string().contains("weights file truncated"),
        "{body}"
    );
    let (status, _, _) = call(
        &routes,
        LOCAL,
        "POST",
        "/v1/embeddings",
        &input(vec!["x".into()]),
    )
    .await;
    assert_eq!(status, 503);
}

#[tokio::test(start_paused = true)]
async fn oversized_and_malformed_batches_are_refused_with_the_field() {
    let app = Embeddings::new(EmbeddingsConfig::default());
    app.load().await.unwrap();
    let routes = router(app);
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            input((0..33).map(|i| format!("text {i}")).collect()),
            vec!["input"],
        ),
        (
            input(vec!["ok".into(), "x".repeat(10_001), " ".into()]),
            vec!["input[1]", "input[2]"],
        ),
        (input(vec![]), vec!["input"]),
        ("{\"inputs\": [\"typo\"]}".to_owned(), vec!["body"]),
        ("not json".to_owned(), vec!["body"]),
    ];
    for (body, fields) in cases {
        support::assert_invalid(&routes, "/v1/embeddings", &body, &fields).await;
    }
    // 32 inputs of 10,000 characters are fine.
    let (status, _, _) = call(
        &routes,
        LOCAL,
        "POST",
        "/v1/embeddings",
        &input(vec!["word ".repeat(2000); 32]),
    )
    .await;
    assert_eq!(status, 200);
}

/// A model that holds each call until the test lets it go.
struct Held(std::sync::Mutex<std::sync::mpsc::Receiver<()>>);

impl Embedder for Held {
    fn name(&self) -> &str {
        "held"
    }
    fn embed(&self, _: &str) -> Vec<f32> {
        // Bounded: a test that forgets to let go still ends.
        let _ = self.0.lock().unwrap().recv_timeout(Duration::from_secs(10));
        vec![0.0]
    }
    fn tokens(&self, _: &str) -> usize {
        1
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_past_its_timeout_is_a_504() {
    let app = Embeddings::new(EmbeddingsConfig::default());
    let (release, held) = std::sync::mpsc::channel();
    let model: Arc<dyn Embedder> = Arc::new(Held(std::sync::Mutex::new(held)));
    app.load_with(move || {
        let model = model.clone();
        async move { Ok::<_, Truncated>(model) }
    })
    .await
    .unwrap();
    let routes = router(app);
    let call = tokio::spawn(async move {
        call(
            &routes,
            LOCAL,
            "POST",
            "/v1/embeddings",
            &input(vec!["x".into()]),
        )
        .await
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    let (status, _, body) = call.await.unwrap();
    release.send(()).unwrap();
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["status"], 504);
}

#[tokio::test(start_paused = true)]
async fn the_largest_batch_escaped_at_worst_fits_and_more_is_a_413_problem() {
    let app = Embeddings::new(EmbeddingsConfig::default());
    app.load().await.unwrap();
    let routes = router(app);
    // 32 inputs of 10,000 characters outside the basic plane, each written
    // as a \u pair (12 bytes): about 3.8 MB of JSON, a valid request.
    let text = "\\ud83d\\ude00".repeat(10_000);
    let inputs = vec![format!("\"{text}\""); 32].join(",");
    let (status, _, _) = call(
        &routes,
        LOCAL,
        "POST",
        "/v1/embeddings",
        &format!("{{\"input\": [{inputs}]}}"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, headers, problem) = call(
        &routes,
        LOCAL,
        "POST",
        "/v1/embeddings",
        &"x".repeat(5 << 20),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["kind"], "payload_too_large");
}
