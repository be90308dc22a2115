//! Shared by the stack's tests: a simulator on a loopback port, and a
//! knowledge API configured against it.

// Helpers outside #[test] functions panic on failure too: that is the report.
#![allow(clippy::unwrap_used)]
#![allow(dead_code, unreachable_pub)]

pub mod learner_runs;
pub mod process;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use buttress_stack::env::Env;
use buttress_stack::knowledge::{DEFAULT_POLICY, KnowledgeApi, KnowledgeConfig};
use buttress_stack::sim::{Sim, SimConfig};
use http::Request;
use tower::ServiceExt;

/// A running simulator.
pub struct SimServer {
    pub sim: Sim,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl SimServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub async fn start_sim(config: SimConfig) -> SimServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("its address");
    let sim = Sim::new(config);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(buttress_stack::sim::serve(
        listener,
        sim.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    SimServer {
        sim,
        addr,
        stop: Some(tx),
    }
}

/// The built-in policy with retries that do not wait (these tests run in
/// real time against a real socket).
pub fn test_policy() -> String {
    DEFAULT_POLICY.replace(
        "retry = { max_attempts = 2,",
        "retry = { max_attempts = 2, backoff = { kind = \"constant\", delay = \"0s\" },",
    )
}

/// A knowledge API against `sim`, its policy `policy` written to `dir`,
/// its journal in `dir`; `extra` adds variables.
pub fn knowledge(
    sim: &SimServer,
    dir: &Path,
    policy: &str,
    extra: &[(&str, &str)],
) -> KnowledgeApi {
    let policy_file = dir.join("policy.toml");
    std::fs::write(&policy_file, policy).expect("policy written");
    let mut vars: BTreeMap<String, String> = [
        ("PORT", "0".to_owned()),
        ("EMBEDDINGS_URL", sim.url("/embeddings")),
        ("QDRANT_URL", sim.url("/qdrant")),
        ("LLM_URL", sim.url("/llm")),
        ("POLICY_FILE", policy_file.display().to_string()),
        ("JOURNAL_DIR", dir.join("telemetry").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = KnowledgeConfig::from_env(&Env::from_map(vars)).expect("valid settings");
    KnowledgeApi::new(config).expect("the API builds")
}

/// A fresh directory under the target directory's temp.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("buttress-stack-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// One request through `router` from `peer`; the status, headers and JSON body.
pub async fn call(
    router: &axum::Router,
    peer: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, http::HeaderMap, serde_json::Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .extension(axum::extract::ConnectInfo(peer))
        .body(axum::body::Body::from(body.to_owned()))
        .expect("a request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("a body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

pub const LOCAL: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);
pub const REMOTE: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3)),
    40000,
);

/// A client of the PostgreSQL at `DATABASE_URL`, or `None` (having said
/// why: a failure with `BUTTRESS_REQUIRE_SERVICES=1`).
pub async fn postgres() -> Option<tokio_postgres::Client> {
    let url = buttress_test_support::services::database_url();
    match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            Some(client)
        }
        Err(e) => {
            buttress_test_support::services::unavailable("PostgreSQL", "DATABASE_URL", &url, e);
            None
        }
    }
}

/// Whether the Redis at `REDIS_URL` answers `PING` (having said why not).
pub async fn redis() -> bool {
    let url = buttress_test_support::services::redis_url();
    let reached = async {
        let client = redis::Client::open(url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match reached.await {
        Ok(_) => true,
        Err(e) => {
            buttress_test_support::services::unavailable("Redis", "REDIS_URL", &url, e);
            false
        }
    }
}

/// Terminates every PostgreSQL connection of the knowledge API (found by
/// its `application_name`); how many there were.
pub async fn kill_api_connections(admin: &tokio_postgres::Client) -> usize {
    admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&buttress_stack::knowledge::APPLICATION_NAME],
        )
        .await
        .unwrap()
        .len()
}

/// A query record of `question`, as the knowledge API writes one, with
/// `pad` more characters in its request id (to make backlogs quickly).
pub fn query_record(n: u64, question: &str, pad: usize) -> buttress_stack::knowledge::QueryRecord {
    buttress_stack::knowledge::QueryRecord {
        at_ms: 1_700_000_000_000 + n,
        request_id: format!("req-{n}-{}", "x".repeat(pad)),
        question_sha256: buttress_stack::knowledge::question_hash(question),
        latency_ms: 12,
        answered_by: vec!["embeddings".into(), "vector_store".into(), "llm".into()],
        degraded: Vec::new(),
        passages: 3,
    }
}

/// `count` questions of which about `duplicates` (a fraction) repeat an
/// earlier one, from a fixed seed.
pub fn questions(count: usize, duplicates: f64, seed: u64) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out: Vec<String> = Vec::with_capacity(count);
    let mut distinct = 0usize;
    for _ in 0..count {
        if distinct > 0 && rng.f64() < duplicates {
            let again = out[rng.usize(..out.len())].clone();
            // Written differently, the same pattern once normalised.
            out.push(format!("  {}  ", again.to_uppercase()));
        } else {
            out.push(format!("what is question {distinct}?"));
            distinct += 1;
        }
    }
    out
}

/// A learner reading `dir/telemetry`, checkpointing in `dir/learner`, with
/// `policy` and `extra` variables.
pub fn learner(
    dir: &Path,
    policy: &str,
    extra: &[(&str, &str)],
) -> buttress_stack::learner::Learner {
    use buttress_stack::learner::{Learner, LearnerConfig};
    let policy_file = dir.join("learner.toml");
    std::fs::write(&policy_file, policy).expect("policy written");
    let mut vars: BTreeMap<String, String> = [
        ("PORT", "0".to_owned()),
        ("POLICY_FILE", policy_file.display().to_string()),
        ("JOURNAL_DIR", dir.join("telemetry").display().to_string()),
        ("CHECKPOINT_DIR", dir.join("learner").display().to_string()),
        ("POLL_INTERVAL", "20ms".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = LearnerConfig::from_env(&Env::from_map(vars)).expect("valid settings");
    Learner::new(config).expect("the learner builds")
}

/// Polls `done` every 10 ms for at most `limit`; whether it came true.
pub async fn eventually(limit: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    done()
}

/// A chat backend against `sim`'s LLM, its policy `policy` written to
/// `dir`; `extra` adds variables.
pub fn chat(
    sim: &SimServer,
    dir: &Path,
    policy: &str,
    extra: &[(&str, &str)],
) -> buttress_stack::chat::Chat {
    use buttress_stack::chat::{Chat, ChatConfig};
    let policy_file = dir.join("chat.toml");
    std::fs::write(&policy_file, policy).expect("policy written");
    let mut vars: BTreeMap<String, String> = [
        ("PORT", "0".to_owned()),
        ("LLM_URL", sim.url("/llm")),
        ("POLICY_FILE", policy_file.display().to_string()),
        ("SUMMARY_INTERVAL", "0s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = ChatConfig::from_env(&Env::from_map(vars)).expect("valid settings");
    Chat::new(config).expect("the chat backend builds")
}

/// `POST body` to `path` answers 422 problem+json naming exactly
/// `fields` (in order) as in error, with the request id of the response.
pub async fn assert_invalid(router: &axum::Router, path: &str, body: &str, fields: &[&str]) {
    let (status, headers, problem) = call(router, LOCAL, "POST", path, body).await;
    assert_eq!(status, 422, "{body}: {problem}");
    assert_eq!(headers["content-type"], "application/problem+json");
    let named: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(named, fields, "{body}: {problem}");
    assert_eq!(
        problem["request_id"],
        headers["x-request-id"].to_str().unwrap(),
        "{problem}"
    );
}

/// A port on loopback that nothing listens on (bound, then closed).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.local_addr().expect("its address").port()
}

/// Every message in the JetStream stream `stream`: message id (the
/// `Nats-Msg-Id` header) → how many times it is there.
pub async fn ids_in_stream(
    context: &async_nats::jetstream::Context,
    stream: &str,
) -> BTreeMap<String, u32> {
    let mut ids = BTreeMap::new();
    for (_, id, _) in messages_in_stream(context, stream).await {
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

/// Every message in the JetStream stream `stream`, in stream order: its
/// sequence, its message id and its payload.
pub async fn messages_in_stream(
    context: &async_nats::jetstream::Context,
    stream: &str,
) -> Vec<(u64, String, bytes::Bytes)> {
    use async_nats::jetstream::consumer;
    use futures_util::StreamExt;
    let mut stream = context.get_stream(stream).await.unwrap();
    let total = stream.info().await.unwrap().state.messages;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: std::time::Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    while (out.len() as u64) < total {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(std::time::Duration::from_secs(2))
            .messages()
            .await
            .unwrap();
        let before = out.len();
        while let Some(m) = batch.next().await {
            let m = m.unwrap();
            let id = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_owned())
                .expect("every message has an id");
            let seq = m.info().unwrap().stream_sequence;
            out.push((seq, id, m.payload.clone()));
        }
        assert!(
            out.len() > before,
            "the stream holds {total}, read {}",
            out.len()
        );
    }
    out
}
