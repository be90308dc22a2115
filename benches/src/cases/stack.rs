//! The knowledge API's throughput on loopback, with upstream-sim answering
//! at once: the full resilience stack of its built-in policy (inbound
//! limit, and per dependency a timeout, retries with a budget, a bulkhead,
//! a breaker, an attempt timeout and a fallback) against the same handler
//! with a policy that declares no layer. One iteration is 16 queries in
//! flight at once, so the figure is the time per 16 answers at the
//! server's pace.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use buttress_stack::env::Env;
use buttress_stack::knowledge::{DEFAULT_POLICY, KnowledgeApi, KnowledgeConfig};
use buttress_stack::sim::{Sim, SimConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::Routine;

/// Queries in flight in one iteration.
const IN_FLIGHT: usize = 16;

/// The same dependencies with nothing in front of them.
const BARE_POLICY: &str =
    "[dependencies.embeddings]\n[dependencies.vector_store]\n[dependencies.llm]\n";

/// The full resilience stack (the built-in policy).
pub fn query_resilient() -> Routine {
    query_routine(DEFAULT_POLICY, "resilient")
}

/// The same handler without it.
pub fn query_bare() -> Routine {
    query_routine(BARE_POLICY, "bare")
}

/// Removes the bench's files when the routine is dropped.
struct Files(PathBuf);

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn query_routine(policy: &str, name: &str) -> Routine {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The journal's group commit on tmpfs when there is one: the bench
    // measures the service, not the disk.
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!(
        "buttress-bench-stack-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    std::fs::write(dir.join("policy.toml"), policy).expect("policy");
    let files = Files(dir.clone());
    let url = rt.block_on(async move {
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        let sim_addr = sim_listener.local_addr().expect("address");
        tokio::spawn(buttress_stack::sim::serve(
            sim_listener,
            Sim::new(SimConfig::default()),
            std::future::pending(),
        ));
        let sim = |path: &str| format!("http://{sim_addr}{path}");
        let vars = [
            ("EMBEDDINGS_URL", sim("/embeddings")),
            ("QDRANT_URL", sim("/qdrant")),
            ("LLM_URL", sim("/llm")),
            ("POLICY_FILE", dir.join("policy.toml").display().to_string()),
            ("JOURNAL_DIR", dir.join("telemetry").display().to_string()),
        ];
        let env = Env::from_map(vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        let api =
            KnowledgeApi::new(KnowledgeConfig::from_env(&env).expect("settings")).expect("api");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        let addr: SocketAddr = listener.local_addr().expect("address");
        let router = api.router();
        let shutdown = api.shutdown();
        tokio::spawn(
            async move { buttress_stack::serving::serve(listener, router, &shutdown).await },
        );
        format!("http://{addr}/query")
    });
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    Box::new(move |iters| {
        let _files = &files;
        let start = Instant::now();
        rt.block_on(async {
            for _ in 0..iters {
                let mut batch = tokio::task::JoinSet::new();
                for i in 0..IN_FLIGHT {
                    let (client, url) = (client.clone(), url.clone());
                    batch.spawn(async move { query(&client, &url, i).await });
                }
                while let Some(done) = batch.join_next().await {
                    assert!(done.expect("query task"), "a query was not answered");
                }
            }
        });
        start.elapsed()
    })
}

const QUESTIONS: [&str; 4] = [
    "How does a circuit breaker probe?",
    "What is a retry budget?",
    "Why checkpoint atomically?",
    "When does backpressure pause a consumer?",
];

async fn query(client: &Client<HttpConnector, Full<Bytes>>, url: &str, i: usize) -> bool {
    let body = format!("{{\"question\": \"{}\"}}", QUESTIONS[i % QUESTIONS.len()]);
    let request = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    match client.request(request).await {
        Ok(response) => {
            let ok = response.status() == 200;
            let _ = response.into_body().collect().await;
            ok
        }
        Err(_) => false,
    }
}
