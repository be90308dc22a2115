//! A knowledge API's resilience policy in one file, changed live, and the
//! admin page that shows it holding up.
//!
//! ```text
//! cargo run --example admin                 # serves http://127.0.0.1:8080/admin (PORT changes it)
//! ```
//!
//! Traffic runs through three dependencies whose upstreams fail in turns:
//! the vector store goes down for 20 s of every minute, the LLM for 15 s
//! of every 40. Open the page and watch their breakers open and close.
//! Then, while it runs:
//!
//! ```text
//! $EDITOR <the policy file it prints>       # e.g. open_for 120s -> 10s: applied on save
//! curl -s localhost:8080/admin/status       # the same as JSON
//! curl -s localhost:8080/admin/config       # the policy in force (TOML; ?format=yaml|json)
//! curl -s -X POST localhost:8080/admin/breakers/embeddings/force-open
//! curl -s localhost:8080/admin/config/history
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use buttress::BoxError;
use buttress::admin::Admin;
use buttress::policy::{Dependency, Policy};
use tower::ServiceExt;

const POLICY: &str = r#"# The knowledge API's resilience policy. Save this file to change it live.
[service]
name = "knowledge-api"
inbound = { rate = { count = 150, per = "1m" } }
backpressure = { watermarks = { high = "100MB", low = "50MB" } }

[dependencies.embeddings]
critical = false
timeout = "5s"
breaker = { consecutive_failures = 5, failure_rate_threshold = "off", open = { kind = "fixed", duration = "60s" }, half_open_permits = 1 }

[dependencies.vector-store]
critical = false
timeout = "5s"
retry = { max_attempts = 2, budget = { kind = "ratio", ratio = 0.1, min_per_second = 1.0, window = "10s" } }
breaker = { consecutive_failures = 5, failure_rate_threshold = "off", open = { kind = "fixed", duration = "10s" }, half_open_permits = 1 }

[dependencies.llm]
timeout = "30s"
rate_limit = { count = 20, per = "1s" }
concurrency = { max_running = 4, max_queued = 100 }
breaker = { consecutive_failures = 3, failure_rate_threshold = "off", open = { kind = "fixed", duration = "8s" }, half_open_permits = 1 }
"#;

/// An upstream that is down for `down` of every `period`, from `start`.
fn upstream(
    start: Instant,
    period: Duration,
    down: Duration,
    latency: Duration,
) -> impl tower::Service<u64, Response = u64, Error = BoxError, Future = impl Send + 'static>
+ Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |x: u64| async move {
        let phase = start.elapsed().as_millis() % period.as_millis();
        if phase >= (period - down).as_millis() {
            return Err::<u64, BoxError>("connection refused".into());
        }
        tokio::time::sleep(latency).await;
        Ok(x)
    })
}

/// Sends `per_second` requests a second through `dependency`'s stack.
fn traffic(
    dependency: Dependency,
    per_second: u64,
    client: impl tower::Service<u64, Response = u64, Error = BoxError, Future = impl Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static,
    served: Arc<AtomicU64>,
) {
    let svc = dependency.service(client);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / per_second));
        for i in 0.. {
            tick.tick().await;
            let svc = svc.clone();
            let served = served.clone();
            tokio::spawn(async move {
                if svc.oneshot(i).await.is_ok() {
                    served.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(format!("buttress-admin-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path: PathBuf = dir.join("policy.toml");
    std::fs::write(&path, POLICY)?;
    let policy = Policy::load(&path)?;
    let watch = policy.watch_file(&path)?;
    // Say what became of each save (the library logs it through `tracing`
    // too, for a service with a subscriber).
    let mut saves = watch.subscribe();
    let applied = policy.clone();
    tokio::spawn(async move {
        while saves.changed().await.is_ok() {
            let status = saves.borrow_and_update().clone();
            match (
                &status.last_error,
                status.last_error.as_ref().and_then(|e| e.document()),
            ) {
                (None, _) => println!(
                    "policy file saved: version {} in force",
                    applied.current().version
                ),
                (Some(_), Some(problems)) => {
                    println!("policy file refused, nothing changed: {problems}")
                }
                (Some(e), None) => println!("policy file refused, nothing changed: {e}"),
            }
        }
    });

    let start = Instant::now();
    let served = Arc::new(AtomicU64::new(0));
    let get = |name: &str| {
        policy
            .dependency(name)
            .ok_or_else(|| format!("{name} is not in the policy"))
    };
    traffic(
        get("embeddings")?,
        20,
        upstream(
            start,
            Duration::from_secs(90),
            Duration::from_secs(10),
            Duration::from_millis(20),
        ),
        served.clone(),
    );
    traffic(
        get("vector-store")?,
        20,
        upstream(
            start,
            Duration::from_secs(60),
            Duration::from_secs(20),
            Duration::from_millis(30),
        ),
        served.clone(),
    );
    traffic(
        get("llm")?,
        10,
        upstream(
            start,
            Duration::from_secs(40),
            Duration::from_secs(15),
            Duration::from_millis(400),
        ),
        served.clone(),
    );

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let app: axum::Router = Admin::new(policy.clone()).router();
    println!("the status page:  http://127.0.0.1:{port}/admin");
    println!(
        "the policy file:  {} (save it to change the policy live)",
        path.display()
    );
    println!("Ctrl-C stops.");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    println!("{} requests served", served.load(Ordering::Relaxed));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
