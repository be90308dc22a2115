//! Health, readiness and graceful shutdown wired into an axum service.
//!
//! ```text
//! cargo run --example health            # then, in another terminal:
//! curl -i localhost:8080/health         # 503 "starting" while the model loads (3 s), then 200 "degraded"
//! curl -i localhost:8080/ask            # 503 + Retry-After while loading, then an answer
//! ```
//!
//! Ctrl-C drains (the gate closes, requests in flight finish); a second
//! Ctrl-C exits at once. `PORT` changes the port.

use std::time::Duration;

use axum::{Router, routing::get};
use buttress::health::{
    CheckOptions, Health, HealthEndpoints, ReadinessLayer, Shutdown, check_fn, checks,
};
use buttress::retry::RetryPolicy;

#[tokio::main]
async fn main() -> Result<(), buttress::BoxError> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let health = Health::new().version(env!("CARGO_PKG_VERSION"));
    // A critical dependency that is up (this very server's port), and a
    // non-critical one that is not (no LLM listens on port 9): degraded.
    health.register(
        "self",
        checks::tcp(listener.local_addr()?.to_string()),
        CheckOptions::critical(),
    )?;
    health.register(
        "llm",
        checks::tcp("127.0.0.1:9"),
        CheckOptions::non_critical(),
    )?;
    health.register(
        "disk",
        check_fn(|| async { Ok::<_, std::io::Error>(()) }),
        CheckOptions::critical(),
    )?;
    // The model loads in the background while the server answers.
    let gate = health.readiness().clone();
    let policy = RetryPolicy::builder("model").max_attempts(3).build()?;
    tokio::spawn(async move {
        let load = || async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok::<_, std::io::Error>(())
        };
        gate.startup("loading the model", &policy, load).await
    });
    let shutdown = Shutdown::new(health.readiness().clone());
    let app = Router::new()
        .route("/ask", get(|| async { "42\n" }))
        .layer(ReadinessLayer::new(health.readiness().clone()).http())
        .merge(HealthEndpoints::new(health.clone()).router());
    println!(
        "listening on http://{}: try /health, /readyz, /livez and /ask",
        listener.local_addr()?
    );
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.signalled());
    let outcome = shutdown.run(server).await;
    println!("shutdown: {outcome:?}");
    std::process::exit(outcome.exit_code());
}
