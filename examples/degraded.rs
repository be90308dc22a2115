//! An LLM endpoint that answers even when the LLM is down: a 30 s budget,
//! retries, a breaker, a stale cache and a canned fallback, with every
//! error as problem+json carrying the request id.
//!
//! ```text
//! cargo run --example degraded            # a scripted outage, in simulated time (no waiting)
//! cargo run --example degraded -- --serve # the same app on http://127.0.0.1:8080 (PORT changes it); then:
//! curl -s 'localhost:8080/ask?q=hello'    # {"answer":"...","degraded":false,"request_id":"..."}
//! curl -s -X POST localhost:8080/llm/down # the LLM refuses connections ("hang" makes it hang; "up")
//! curl -s 'localhost:8080/ask?q=hello'    # the cached answer, once stale: "degraded":true
//! curl -s 'localhost:8080/ask?q=other'    # the canned answer: "degraded":true
//! curl -si 'localhost:8080/ask?q='        # 422 problem+json naming the field
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use buttress::BoxError;
use buttress::breaker::CircuitBreaker;
use buttress::degrade::{
    CacheLayer, Caught, Fallback, FallbackLayer, Invalid, Problem, RequestId, Served, StaleCache,
    backup, problem_stack,
};
use buttress::retry::{RetryConfig, RetryPolicy};
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

/// What the stand-in LLM does: answer, refuse connections, or hang.
#[derive(Clone, Default)]
struct Llm(Arc<AtomicU8>);

const UP: u8 = 0;
const DOWN: u8 = 1;
const HANGING: u8 = 2;

impl Llm {
    async fn complete(self, prompt: String) -> Result<Served<String>, BoxError> {
        match self.0.load(Ordering::SeqCst) {
            UP => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(Served::normal(format!(
                    "A thoughtful answer to {prompt:?}."
                )))
            }
            DOWN => Err("connection refused (llm:11434)".into()),
            _ => std::future::pending().await,
        }
    }
}

type LlmClient = BoxCloneSyncService<String, Served<String>, BoxError>;

/// Fallback outermost, so it sees what the cache, the retries and the
/// breaker could not fix; the 30 s budget covers every attempt.
fn client(llm: Llm) -> Result<LlmClient, BoxError> {
    let breaker = CircuitBreaker::builder("llm")
        .consecutive_failures(3)
        .failure_rate(None)
        .open_for(Duration::from_secs(60))
        .build()?;
    let retry = RetryPolicy::new("llm", RetryConfig::llm().deadline(Duration::from_secs(30)))?;
    let cache = StaleCache::builder("llm-answers")
        .ttl(Duration::from_secs(300))
        .stale_if_error(Duration::from_secs(3600))
        .max_entries(10_000)
        .build()?;
    let canned = backup::from_fn(|_prompt: String, caught: Caught<'_, BoxError>| {
        note(&format!("fallback: {}", caught.reason));
        Served::normal("The assistant is busy right now; please try again in a minute.".to_owned())
    });
    let svc = ServiceBuilder::new()
        .layer(FallbackLayer::new(Fallback::new("llm")?, canned))
        .layer(CacheLayer::new(cache, |prompt: &String| {
            Some(prompt.trim().to_lowercase())
        }))
        .timeout(Duration::from_secs(30))
        .layer(retry.layer())
        .layer(breaker.layer())
        .timeout(Duration::from_secs(10))
        .service_fn(move |prompt| llm.clone().complete(prompt));
    Ok(BoxCloneSyncService::new(svc))
}

/// What the service would log.
fn note(line: &str) {
    println!("  log: {line}");
}

#[derive(serde::Deserialize)]
struct Ask {
    #[serde(default)]
    q: String,
}

async fn ask(
    State(client): State<LlmClient>,
    Extension(id): Extension<RequestId>,
    Query(ask): Query<Ask>,
) -> Result<Json<serde_json::Value>, Problem> {
    let mut invalid = Invalid::new();
    let chars = ask.q.chars().count();
    if !(1..=4000).contains(&chars) {
        invalid.push("q", format!("must be 1 to 4000 characters; it is {chars}"));
    }
    invalid.into_result().map_err(Problem::invalid)?;
    let served = client
        .oneshot(ask.q)
        .await
        .map_err(|e| Problem::from_error(&*e))?;
    let mut body = serde_json::json!({
        "answer": served.value,
        "degraded": false,
        "request_id": id.header_value().to_str().unwrap_or_default(),
    });
    if let Some(degraded) = &served.degraded {
        degraded.mark_json(&mut body);
    }
    Ok(Json(body))
}

async fn set_llm(State(llm): State<Llm>, Path(mode): Path<String>) -> Result<String, Problem> {
    let value = match mode.as_str() {
        "up" => UP,
        "down" => DOWN,
        "hang" => HANGING,
        _ => {
            let mut invalid = Invalid::new();
            invalid.push("mode", "must be up, down or hang");
            return Err(Problem::invalid(invalid));
        }
    };
    llm.0.store(value, Ordering::SeqCst);
    Ok(format!("the LLM is {mode}\n"))
}

fn app(llm: Llm) -> Result<Router, BoxError> {
    Ok(Router::new()
        .route("/ask", get(ask).with_state(client(llm.clone())?))
        .route("/llm/{mode}", post(set_llm).with_state(llm))
        .layer(problem_stack().into_inner()))
}

async fn show(app: &Router, what: &str, uri: &str) -> Result<(), BoxError> {
    println!("{what}");
    let request = http::Request::get(uri).body(axum::body::Body::empty())?;
    let started = tokio::time::Instant::now();
    let response = app.clone().oneshot(request).await?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await?;
    println!(
        "  GET {uri} -> {status} in {:.1} s\n  {}\n",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&bytes)
    );
    Ok(())
}

async fn scripted() -> Result<(), BoxError> {
    let llm = Llm::default();
    let app = app(llm.clone())?;
    show(
        &app,
        "1. The LLM is up: a normal answer, now cached for 5 minutes.",
        "/ask?q=hello",
    )
    .await?;
    llm.0.store(DOWN, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(301)).await;
    show(
        &app,
        "2. Five minutes later the answer is stale and the LLM refuses connections: three attempts fail (the breaker opens), and the stale answer is served, marked degraded.",
        "/ask?q=hello",
    )
    .await?;
    show(
        &app,
        "3. A question never asked before, with the breaker open: the canned answer at once, marked degraded.",
        "/ask?q=what%20is%20a%20breaker",
    )
    .await?;
    llm.0.store(HANGING, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(120)).await;
    show(
        &app,
        "4. Two minutes on, the LLM hangs: the breaker lets one probe through, it times out after 10 s, and the canned answer comes.",
        "/ask?q=still%20there",
    )
    .await?;
    show(
        &app,
        "5. An empty question: 422 problem+json naming the field.",
        "/ask?q=",
    )
    .await?;
    llm.0.store(UP, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(60)).await;
    show(
        &app,
        "6. The LLM is back: the breaker's probe succeeds and the stale entry is refreshed.",
        "/ask?q=hello",
    )
    .await?;
    Ok(())
}

fn main() -> Result<(), BoxError> {
    if std::env::args().any(|a| a == "--serve") {
        return tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(async {
                let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
                let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
                println!(
                    "listening on http://{}: try /ask?q=hello, POST /llm/down",
                    listener.local_addr()?
                );
                axum::serve(listener, app(Llm::default())?).await?;
                Ok(())
            });
    }
    // Simulated time: the 30 s timeouts and the 5 minute TTL pass at once.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?
        .block_on(scripted())
}
