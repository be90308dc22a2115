//! The outage drill: the knowledge API as its own process (the binary a
//! user runs) against the real PostgreSQL and Redis and an upstream-sim,
//! under a steady load from this test (200 queries a second by default,
//! `DRILL_RATE` to change it, all on 127.0.0.1), through five faults one
//! after another:
//!
//! 1. the LLM down for 10 s;
//! 2. the vector store answering in 2 s for 10 s;
//! 3. the embeddings service restarting (503 "loading" for 5 s);
//! 4. the API's PostgreSQL connections killed (`pg_terminate_backend`);
//! 5. `kill -9` of the API, and a restart.
//!
//! Beside it run the learner (reading the API's journal into PostgreSQL)
//! and the chat backend (ten chats a second, its LLM on a simulator of
//! its own with the same outage): the learner must keep up with the API's
//! load, and chat must answer the legacy way through the LLM outage.
//!
//! It asserts what the stack promises (see `stack/README.md`), prints a
//! table of each stage and writes it to `target/outage-drill.md`.
//!
//! It takes about a minute, so it runs only when asked:
//! `BUTTRESS_DRILL=1` (CI's services step sets it). Without PostgreSQL and
//! Redis it then prints why and passes, unless
//! `BUTTRESS_REQUIRE_SERVICES=1` (as in CI) makes that a failure.

// Helpers outside #[test] functions panic on failure too: that is the report.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use buttress::journal::JournalReader;
use buttress_stack::knowledge::{JOURNAL_NAME, QueryRecord};
use buttress_stack::sim::{Faults, SimConfig, Stats, Target};
use buttress_test_support::services;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use support::{SimServer, kill_api_connections, postgres, redis, start_sim, temp_dir};

/// The probe period of every breaker in the drill's policy: how long one
/// stays open before its one probe.
const OPEN_FOR: Duration = Duration::from_secs(3);
/// How long a health check may take (the API's `HEALTH_CHECK_TIMEOUT`).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// The health report's own slack: it is cached for up to a second.
const HEALTH_LAG: Duration = Duration::from_millis(1500);

// ---------------------------------------------------------------- the API process

/// One of the stack's binaries (the knowledge API, the learner, the chat
/// backend), as a child process.
struct Api {
    bin: &'static str,
    child: Option<Child>,
    port: u16,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Api {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(self.bin)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", self.bin));
        self.child = Some(child);
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// SIGTERM, then the exit status (bounded).
    fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        for _ in 0..300 {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        None
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.kill_9();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------- one request

/// What one query got.
#[derive(Debug, Clone)]
enum Outcome {
    /// 200 with an answer (and the request id in body and header).
    Answer {
        degraded: Vec<String>,
        request_id: String,
    },
    /// A documented refusal: problem+json with the request id.
    Problem { status: u16 },
    /// Anything else: what the stack promises never to send.
    Raw { status: u16, what: String },
    /// No connection (the API was down).
    Refused,
    /// The connection broke mid-request (the API was killed).
    Broken,
}

#[derive(Debug, Clone)]
struct Sample {
    sent: Duration,
    stage: &'static str,
    latency: Duration,
    outcome: Outcome,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(5))
        .build(connector)
}

async fn send(
    client: &HttpClient,
    method: http::Method,
    url: &str,
    body: String,
) -> Result<(u16, http::HeaderMap, Bytes), bool> {
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.map_err(|e| e.is_connect())?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|_| false)?
        .to_bytes();
    Ok((status, headers, body))
}

async fn query(client: &HttpClient, url: &str, question: &str) -> Outcome {
    let body = json!({ "question": question }).to_string();
    let (status, headers, bytes) = match send(client, http::Method::POST, url, body).await {
        Ok(r) => r,
        Err(true) => return Outcome::Refused,
        Err(false) => return Outcome::Broken,
    };
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let header_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let body_id = json["request_id"].as_str().unwrap_or("");
    let raw = |what: &str| Outcome::Raw {
        status,
        what: format!(
            "{what}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ),
    };
    if header_id.is_empty() || body_id != header_id {
        return raw("no request id in both header and body");
    }
    match status {
        200 if content_type == "application/json" && json.get("sources").is_some() => {
            Outcome::Answer {
                degraded: json["degradations"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|d| d.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                request_id: header_id,
            }
        }
        400..=499 | 503 | 504
            if content_type == "application/problem+json" && json["status"] == status =>
        {
            Outcome::Problem { status }
        }
        _ => raw("not an answer nor a documented problem"),
    }
}

// ---------------------------------------------------------------- the companions

/// The most the learner may have read and not processed, or not read,
/// at any moment of the drill: 256 kB, about 4 s of the load's records.
const MAX_LEARNER_BACKLOG: u64 = 256_000;

/// What one chat got.
#[derive(Debug, Clone)]
struct ChatSample {
    sent: Duration,
    stage: &'static str,
    latency: Duration,
    status: Option<u16>,
    degraded: bool,
    kind: String,
}

/// Ten chats a second to the chat backend until the drill stops.
async fn chat_load(drill: Arc<Drill>, url: String, out: Arc<Mutex<Vec<ChatSample>>>) {
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    let mut tasks = tokio::task::JoinSet::new();
    let mut i = 0u64;
    while !drill.stop.load(Ordering::SeqCst) {
        ticks.tick().await;
        i += 1;
        let (drill, url, out) = (drill.clone(), url.clone(), out.clone());
        tasks.spawn(async move {
            let (sent, stage) = (drill.now(), drill.stage());
            let began = Instant::now();
            let body = json!({"message": question(i), "domain": "engineering"}).to_string();
            let got = send(&drill.client, http::Method::POST, &url, body).await;
            let (status, json) = match got {
                Ok((status, _, bytes)) => (
                    Some(status),
                    serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
                ),
                Err(_) => (None, Value::Null),
            };
            out.lock().unwrap().push(ChatSample {
                sent,
                stage,
                latency: began.elapsed(),
                status,
                degraded: json["degraded"] == true,
                kind: json["error"]["kind"].as_str().unwrap_or("").to_owned(),
            });
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// The learner's backlog (bytes not read plus read and not processed),
/// every half second until the drill stops.
async fn poll_learner(drill: Arc<Drill>, url: String, out: Arc<Mutex<Vec<(Duration, u64)>>>) {
    while !drill.stop.load(Ordering::SeqCst) {
        if let Ok((200, _, bytes)) =
            send(&drill.client, http::Method::GET, &url, String::new()).await
        {
            let stats: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let b = &stats["backpressure"];
            let backlog = b["journal_unread_bytes"].as_u64().unwrap_or(0)
                + b["unprocessed_bytes"].as_u64().unwrap_or(0);
            out.lock().unwrap().push((drill.now(), backlog));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The machine's NATS, when it answers.
async fn nats_reachable() -> Option<String> {
    let url = services::nats_url();
    let host = url.trim_start_matches("nats://").to_owned();
    tokio::net::TcpStream::connect(&host)
        .await
        .ok()
        .map(|_| url)
}

/// The outbox after the drill: every event sent (within 20 s of the load
/// stopping), each in the stream exactly once, one per pattern stored.
#[allow(clippy::too_many_arguments)]
async fn check_outbox(
    admin: &tokio_postgres::Client,
    nats: &str,
    table: &str,
    stream: &str,
    patterns: i64,
    relay: &mut Api,
    notes: &mut Vec<String>,
    failures: &mut Vec<String>,
) {
    let unsent = async || -> i64 {
        admin
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE sent_at IS NULL"),
                &[],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(-1)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while unsent().await != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = unsent().await;
    if left != 0 {
        failures.push(format!(
            "outbox: {left} events unsent 20 s after the load stopped"
        ));
    }
    let ids: Vec<i64> = admin
        .query(&format!("SELECT id FROM {table}"), &[])
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default();
    let Ok(client) = async_nats::connect(nats).await else {
        failures.push("outbox: NATS not reachable after the drill".to_owned());
        return;
    };
    let context = async_nats::jetstream::new(client);
    let in_stream = support::ids_in_stream(&context, stream).await;
    let expected: std::collections::BTreeSet<String> =
        ids.iter().map(|id| format!("{table}:{id}")).collect();
    let once = in_stream.values().all(|n| *n == 1);
    let same = in_stream
        .keys()
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        == expected;
    if ids.len() as i64 != patterns || !once || !same {
        failures.push(format!(
            "outbox: {} events for {patterns} patterns; {} ids in the stream, each once: {once}, the same ids: {same}",
            ids.len(),
            in_stream.len()
        ));
    }
    let exit = relay.stop();
    if exit != Some(0) {
        failures.push(format!(
            "outbox relay: exit {exit:?}; see {}",
            relay.log.display()
        ));
    }
    notes.push(format!(
        "outbox: {} pattern.learned events, each once in the stream (the relay killed with -9 and restarted in stage 5)",
        ids.len()
    ));
    let _ = context.delete_stream(stream).await;
    let _ = admin
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
        .await;
}

/// The journal relay after the drill: every record of the API's journal
/// in the stream (within 20 s of the load stopping), each exactly once,
/// in journal order.
async fn check_shipped(
    http: &HttpClient,
    nats: &str,
    stream: &str,
    journal_dir: &Path,
    shipper: &mut Api,
    notes: &mut Vec<String>,
    failures: &mut Vec<String>,
) {
    let mut expected = Vec::new();
    let mut reader = JournalReader::open(journal_dir, JOURNAL_NAME).expect("the journal");
    while let Ok(Some((_, at))) = reader.next_raw() {
        expected.push(buttress_stack::journal_relay::message_id("drill", at));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shipped = match send(
            http,
            http::Method::GET,
            &shipper.url("/relay/stats"),
            String::new(),
        )
        .await
        {
            Ok((200, _, body)) => serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["shipped"]["records"].as_u64())
                .unwrap_or(0),
            _ => 0,
        };
        if shipped >= expected.len() as u64 {
            break;
        }
        if Instant::now() > deadline {
            failures.push(format!(
                "journal relay: {shipped} of {} records shipped 20 s after the load stopped",
                expected.len()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Ok(client) = async_nats::connect(nats).await else {
        failures.push("journal relay: NATS not reachable after the drill".to_owned());
        return;
    };
    let context = async_nats::jetstream::new(client);
    let ids: Vec<String> = support::messages_in_stream(&context, stream)
        .await
        .into_iter()
        .map(|(_, id, _)| id)
        .collect();
    if ids != expected {
        failures.push(format!(
            "journal relay: the stream holds {} messages for {} records, or not in journal order",
            ids.len(),
            expected.len()
        ));
    }
    let exit = shipper.stop();
    if exit != Some(0) {
        failures.push(format!(
            "journal relay: exit {exit:?}; see {}",
            shipper.log.display()
        ));
    }
    notes.push(format!(
        "journal relay: {} records, each once in the stream in journal order (killed with -9 and restarted in stage 5)",
        expected.len()
    ));
    let _ = context.delete_stream(stream).await;
}

// ---------------------------------------------------------------- the load

/// The load generator and what it saw.
struct Drill {
    client: HttpClient,
    url: String,
    start: Instant,
    stage: Mutex<&'static str>,
    samples: Mutex<Vec<Sample>>,
    paused: AtomicBool,
    in_flight: AtomicU64,
    skipped: AtomicU64,
    stop: AtomicBool,
}

/// The questions asked, round robin: a small set, so each is asked
/// again and its embedding is cached.
fn question(i: u64) -> String {
    const TOPICS: [&str; 10] = [
        "circuit breaker",
        "half-open probe",
        "retry budget",
        "backoff with jitter",
        "rate limit",
        "telemetry journal",
        "atomic checkpoint",
        "backpressure watermark",
        "priority executor",
        "graceful shutdown",
    ];
    format!(
        "How does a {} work? ({})",
        TOPICS[(i % 10) as usize],
        i % 40
    )
}

impl Drill {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn enter(&self, stage: &'static str) {
        *self.stage.lock().unwrap() = stage;
        eprintln!("drill {:>6.1}s  {stage}", self.now().as_secs_f64());
    }

    fn stage(&self) -> &'static str {
        *self.stage.lock().unwrap()
    }

    async fn one(self: &Arc<Self>, i: u64) {
        let (sent, stage) = (self.now(), self.stage());
        let began = Instant::now();
        let outcome = query(&self.client, &self.url, &question(i)).await;
        let sample = Sample {
            sent,
            stage,
            latency: began.elapsed(),
            outcome,
        };
        self.samples.lock().unwrap().push(sample);
    }

    /// `rate` queries a second until told to stop, at most 1000 in flight.
    async fn run(self: Arc<Self>, rate: f64) {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut i = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            ticks.tick().await;
            if self.paused.load(Ordering::SeqCst) {
                continue;
            }
            if self.in_flight.load(Ordering::SeqCst) >= 1000 {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            i += 1;
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let me = self.clone();
            tokio::spawn(async move {
                me.one(i).await;
                me.in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }

    /// Stops sending and waits (bounded) for what is in flight.
    async fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        for _ in 0..2000 {
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("queries still in flight after 10 s");
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------- the API's metrics and health

/// `name{labels} value` lines of the Prometheus text, for one metric.
async fn metric(client: &HttpClient, url: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let Ok((200, _, body)) = send(client, http::Method::GET, url, String::new()).await else {
        return f64::NAN;
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn breaker_state(client: &HttpClient, api: &str, name: &str) -> f64 {
    metric(
        client,
        &format!("{api}/metrics"),
        "buttress_breaker_state",
        &[("name", name)],
    )
    .await
}

async fn transitions(client: &HttpClient, api: &str, name: &str, from: &str, to: &str) -> f64 {
    metric(
        client,
        &format!("{api}/metrics"),
        "buttress_breaker_transitions_total",
        &[("name", name), ("from", from), ("to", to)],
    )
    .await
}

#[derive(Debug, Clone)]
struct HealthSample {
    at: Duration,
    status: Option<u16>,
    says: String,
    took: Duration,
}

async fn poll_health(drill: Arc<Drill>, url: String, out: Arc<Mutex<Vec<HealthSample>>>) {
    let client = client();
    while !drill.stop.load(Ordering::SeqCst) {
        let at = drill.now();
        let began = Instant::now();
        let got = tokio::time::timeout(
            Duration::from_secs(10),
            send(&client, http::Method::GET, &url, String::new()),
        )
        .await;
        let took = began.elapsed();
        let (status, says) = match got {
            Ok(Ok((status, _, body))) => {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                (Some(status), v["status"].as_str().unwrap_or("").to_owned())
            }
            _ => (None, String::new()),
        };
        out.lock().unwrap().push(HealthSample {
            at,
            status,
            says,
            took,
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------- the drill

fn faults(v: Value) -> Faults {
    serde_json::from_value(v).expect("valid faults")
}

async fn wait_ready(client: &HttpClient, api: &Api) -> Duration {
    let began = Instant::now();
    for _ in 0..600 {
        if let Ok((200, _, _)) = send(
            client,
            http::Method::GET,
            &api.url("/readyz"),
            String::new(),
        )
        .await
        {
            return began.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{} was not ready within 30 s; see {}",
        api.bin,
        api.log.display()
    );
}

/// Sends queries one at a time until `breaker` opens; returns how many
/// calls reached the upstream by then.
async fn calls_until_open(
    drill: &Arc<Drill>,
    sim: &SimServer,
    target: Target,
    breaker: &str,
) -> u64 {
    let before = sim.sim.stats(target).requests;
    let api = drill.url.trim_end_matches("/query").to_owned();
    for i in 0..50u64 {
        drill.one(1_000_000 + i).await;
        if breaker_state(&drill.client, &api, breaker).await == 2.0 {
            return sim.sim.stats(target).requests - before;
        }
    }
    panic!("the {breaker} breaker did not open after 50 failing queries");
}

/// Waits (bounded) until `breaker` is closed again; how long it took.
async fn until_closed(drill: &Arc<Drill>, breaker: &str, limit: Duration) -> Duration {
    let api = drill.url.trim_end_matches("/query").to_owned();
    let began = Instant::now();
    while began.elapsed() < limit {
        if breaker_state(&drill.client, &api, breaker).await == 0.0 {
            return began.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the {breaker} breaker was not closed {limit:?} after its upstream came back");
}

fn delta(after: Stats, before: Stats) -> u64 {
    after.requests - before.requests
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// One row of the table.
struct Row {
    stage: &'static str,
    sent: usize,
    answered: usize,
    degraded: usize,
    problems: BTreeMap<u16, usize>,
    refused: usize,
    p50: Duration,
    p99: Duration,
    upstream: String,
    health: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_drill() {
    if std::env::var("BUTTRESS_DRILL").as_deref() != Ok("1") {
        eprintln!("skipping the outage drill (about a minute): set BUTTRESS_DRILL=1 to run it");
        return;
    }
    // The services, or why not.
    let Some(admin) = postgres().await else {
        return;
    };
    if !redis().await {
        return;
    }
    let (db_url, redis_url) = (services::database_url(), services::redis_url());

    let rate: f64 = std::env::var("DRILL_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200.0);
    let sim = start_sim(SimConfig::default()).await;
    let dir = temp_dir("drill");
    let policy = dir.join("policy.toml");
    // The demo's policy: the built-in one with breakers that probe every
    // 3 s, so the drill sees them close.
    std::fs::write(&policy, buttress_stack::demo::demo_policy()).unwrap();
    let journal_dir = dir.join("telemetry");
    let port = free_port();
    let env: Vec<(String, String)> = [
        ("BIND", "127.0.0.1".to_owned()),
        ("PORT", port.to_string()),
        ("DATABASE_URL", db_url.clone()),
        ("REDIS_URL", redis_url.clone()),
        ("EMBEDDINGS_URL", sim.url("/embeddings")),
        ("QDRANT_URL", sim.url("/qdrant")),
        ("LLM_URL", sim.url("/llm")),
        ("POLICY_FILE", policy.display().to_string()),
        ("JOURNAL_DIR", journal_dir.display().to_string()),
        ("HEALTH_CHECK_TIMEOUT", "2s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut api = Api {
        bin: env!("CARGO_BIN_EXE_knowledge-api"),
        child: None,
        port,
        env,
        log: dir.join("knowledge-api.log"),
    };
    api.spawn();
    let http = client();
    wait_ready(&http, &api).await;
    let api_url = api.url("");

    // The learner, reading the API's journal into PostgreSQL.
    let tag = std::process::id();
    let (patterns_table, checkpoint_table) = (
        format!("learned_patterns_drill_{tag}"),
        format!("learner_checkpoints_drill_{tag}"),
    );
    let mut learner = Api {
        bin: env!("CARGO_BIN_EXE_learner"),
        child: None,
        port: free_port(),
        env: Vec::new(),
        log: dir.join("learner.log"),
    };
    learner.env = [
        ("BIND", "127.0.0.1".to_owned()),
        ("PORT", learner.port.to_string()),
        ("DATABASE_URL", db_url.clone()),
        ("JOURNAL_DIR", journal_dir.display().to_string()),
        ("LEARNER_NAME", format!("drill-{tag}")),
        ("PATTERNS_TABLE", patterns_table.clone()),
        ("CHECKPOINT_TABLE", checkpoint_table.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // With NATS: each new pattern adds an event to an outbox table in the
    // statement that stores it, and the outbox relay publishes them to a
    // stream of the drill's own (killed with -9 and restarted beside the
    // API in stage 5).
    let nats = nats_reachable().await;
    let outbox = nats.as_ref().map(|_| {
        (
            format!("outbox_drill_{tag}"),
            format!("OUTBOX_DRILL_{tag}"),
            format!("drill.{tag}"),
        )
    });
    let mut relay = Api {
        bin: env!("CARGO_BIN_EXE_outbox-relay"),
        child: None,
        port: free_port(),
        env: Vec::new(),
        log: dir.join("outbox-relay.log"),
    };
    if let (Some(nats), Some((table, stream, prefix))) = (&nats, &outbox) {
        learner.env.push(("OUTBOX_TABLE".to_owned(), table.clone()));
        relay.env = [
            ("BIND", "127.0.0.1".to_owned()),
            ("PORT", relay.port.to_string()),
            ("DATABASE_URL", db_url.clone()),
            ("NATS_URL", nats.clone()),
            ("OUTBOX_TABLE", table.clone()),
            ("OUTBOX_STREAM", stream.clone()),
            ("OUTBOX_SUBJECT_PREFIX", prefix.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    }
    learner.spawn();
    wait_ready(&http, &learner).await;
    if outbox.is_some() {
        relay.spawn();
        wait_ready(&http, &relay).await;
    }
    // With NATS: the journal relay ships the API's journal to a stream of
    // the drill's own (killed with -9 and restarted in stage 5 too).
    let telemetry_stream = format!("TELEMETRY_DRILL_{tag}");
    let mut shipper = Api {
        bin: env!("CARGO_BIN_EXE_journal-relay"),
        child: None,
        port: free_port(),
        env: Vec::new(),
        log: dir.join("journal-relay.log"),
    };
    if let Some(nats) = &nats {
        shipper.env = [
            ("BIND", "127.0.0.1".to_owned()),
            ("PORT", shipper.port.to_string()),
            ("NATS_URL", nats.clone()),
            ("JOURNAL_DIR", journal_dir.display().to_string()),
            (
                "CHECKPOINT_DIR",
                dir.join("journal-relay").display().to_string(),
            ),
            ("MACHINE_ID", "drill".to_owned()),
            ("TELEMETRY_STREAM", telemetry_stream.clone()),
            ("TELEMETRY_SUBJECT_PREFIX", format!("telemetry.drill{tag}")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        shipper.spawn();
        wait_ready(&http, &shipper).await;
    }

    // The chat backend, on a simulator of its own (so the API's LLM
    // counts stay the API's), with the same LLM outage staged on it.
    let chat_sim = start_sim(SimConfig::default()).await;
    let chat_policy = dir.join("chat.toml");
    std::fs::write(
        &chat_policy,
        buttress_stack::chat::DEFAULT_POLICY.replace("duration = \"30s\"", "duration = \"3s\""),
    )
    .unwrap();
    let mut chat = Api {
        bin: env!("CARGO_BIN_EXE_chat"),
        child: None,
        port: free_port(),
        env: Vec::new(),
        log: dir.join("chat.log"),
    };
    chat.env = [
        ("BIND", "127.0.0.1".to_owned()),
        ("PORT", chat.port.to_string()),
        ("LLM_URL", chat_sim.url("/llm")),
        ("DATABASE_URL", db_url.clone()),
        ("POLICY_FILE", chat_policy.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(nats) = &nats {
        chat.env.push(("NATS_URL".to_owned(), nats.clone()));
    }
    chat.spawn();
    wait_ready(&http, &chat).await;

    let drill = Arc::new(Drill {
        client: http.clone(),
        url: api.url("/query"),
        start: Instant::now(),
        stage: Mutex::new("warm-up"),
        samples: Mutex::new(Vec::new()),
        paused: AtomicBool::new(false),
        in_flight: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let health = Arc::new(Mutex::new(Vec::new()));
    let load = tokio::spawn(drill.clone().run(rate));
    let chats = Arc::new(Mutex::new(Vec::new()));
    let chat_load = tokio::spawn(chat_load(
        drill.clone(),
        chat.url("/api/chat"),
        chats.clone(),
    ));
    let backlog = Arc::new(Mutex::new(Vec::new()));
    let learner_poll = tokio::spawn(poll_learner(
        drill.clone(),
        learner.url("/learning/stats"),
        backlog.clone(),
    ));
    let poller = tokio::spawn(poll_health(
        drill.clone(),
        api.url("/health"),
        health.clone(),
    ));
    let sleep = tokio::time::sleep;
    let mut notes: Vec<String> = Vec::new();
    // (stage, fault start, fault end) for the recovery checks.
    let mut windows: Vec<(&'static str, Duration, Duration)> = Vec::new();
    let mut upstream: HashMap<&'static str, (Target, Stats, Stats)> = HashMap::new();

    drill.enter("warm-up");
    sleep(Duration::from_secs(3)).await;

    // 1. The LLM down for 10 s: 3 failures open its breaker, which then
    //    spares it but for one probe every 3 s, and closes on the first
    //    probe after the outage.
    drill.pause().await;
    let failed_probes_before = transitions(&http, &api_url, "llm", "half_open", "open").await;
    let closings_before = transitions(&http, &api_url, "llm", "half_open", "closed").await;
    let llm_before = sim.sim.stats(Target::Llm);
    drill.enter("llm down");
    let began = drill.now();
    sim.sim
        .set_faults(Target::Llm, faults(json!({"outage": {"for": "10s"}})));
    chat_sim
        .sim
        .set_faults(Target::Llm, faults(json!({"outage": {"for": "10s"}})));
    let chat_llm_before = chat_sim.sim.stats(Target::Llm);
    let opened_after = calls_until_open(&drill, &sim, Target::Llm, "llm").await;
    assert_eq!(
        opened_after, 3,
        "the LLM breaker opens after exactly 3 failures"
    );
    drill.resume();
    sleep(Duration::from_secs(10).saturating_sub(drill.now() - began)).await;
    let ended = drill.now();
    upstream.insert(
        "llm down",
        (Target::Llm, llm_before, sim.sim.stats(Target::Llm)),
    );
    windows.push(("llm down", began, ended));
    let chat_llm_calls = delta(chat_sim.sim.stats(Target::Llm), chat_llm_before);
    drill.enter("llm recovery");
    let closed_in = until_closed(&drill, "llm", OPEN_FOR + Duration::from_secs(2)).await;
    // Every failed call of the LLM was one of the 3 that opened it or a
    // probe that failed; one successful probe closed it.
    let failed_probes =
        transitions(&http, &api_url, "llm", "half_open", "open").await - failed_probes_before;
    let closings =
        transitions(&http, &api_url, "llm", "half_open", "closed").await - closings_before;
    let failed_calls = sim.sim.stats(Target::Llm).failed - llm_before.failed;
    assert_eq!(
        failed_calls as f64,
        3.0 + failed_probes,
        "the LLM saw 3 failures, then only the probes ({failed_probes} failed)"
    );
    assert_eq!(closings, 1.0, "one successful probe closed it");
    // One probe per open period: a breaker probing more often would pass
    // the count above.
    let periods = (Duration::from_secs(10).as_secs_f64() / OPEN_FOR.as_secs_f64()).ceil();
    assert!(
        failed_probes <= periods,
        "{failed_probes} failed probes in a 10 s outage, one per {OPEN_FOR:?} at most"
    );
    notes.push(format!(
        "llm: opened after exactly 3 failed calls; then {failed_probes} failed probes (one per {OPEN_FOR:?}) and nothing else reached it; one probe closed it {closed_in:.1?} after the outage"
    ));
    sleep(Duration::from_secs(3)).await;

    // 2. The vector store answering in 2 s for 10 s: slow, not failing;
    //    its breaker stays closed and answers wait, under its 5 s timeout.
    let qdrant_before = sim.sim.stats(Target::Qdrant);
    drill.enter("vector store slow");
    let began = drill.now();
    sim.sim
        .set_faults(Target::Qdrant, faults(json!({"latency": {"fixed": "2s"}})));
    sleep(Duration::from_secs(10)).await;
    sim.sim.set_faults(Target::Qdrant, Faults::default());
    let ended = drill.now();
    upstream.insert(
        "vector store slow",
        (Target::Qdrant, qdrant_before, sim.sim.stats(Target::Qdrant)),
    );
    windows.push(("vector store slow", began, ended));
    assert_eq!(
        breaker_state(&http, &api_url, "vector_store").await,
        0.0,
        "slow is not failing: the vector store's breaker stays closed"
    );
    drill.enter("vector store recovery");
    sleep(Duration::from_secs(3)).await;

    // 3. The embeddings service restarting: 503 "loading" for 5 s. Its
    //    breaker opens after exactly 5; cached embeddings answer.
    drill.pause().await;
    let failed_probes_before =
        transitions(&http, &api_url, "embeddings", "half_open", "open").await;
    let embeddings_before = sim.sim.stats(Target::Embeddings);
    drill.enter("embeddings restarting");
    let began = drill.now();
    sim.sim
        .set_faults(Target::Embeddings, faults(json!({"loading": "5s"})));
    let opened_after = calls_until_open(&drill, &sim, Target::Embeddings, "embeddings").await;
    assert_eq!(
        opened_after, 5,
        "the embeddings breaker opens after exactly 5 failures"
    );
    drill.resume();
    sleep(Duration::from_secs(5).saturating_sub(drill.now() - began)).await;
    let ended = drill.now();
    upstream.insert(
        "embeddings restarting",
        (
            Target::Embeddings,
            embeddings_before,
            sim.sim.stats(Target::Embeddings),
        ),
    );
    windows.push(("embeddings restarting", began, ended));
    drill.enter("embeddings recovery");
    let closed_in = until_closed(&drill, "embeddings", OPEN_FOR + Duration::from_secs(2)).await;
    let failed_probes = transitions(&http, &api_url, "embeddings", "half_open", "open").await
        - failed_probes_before;
    let refused_calls = sim.sim.stats(Target::Embeddings).loading - embeddings_before.loading;
    assert_eq!(
        refused_calls as f64,
        5.0 + failed_probes,
        "the embeddings saw 5 failures, then only the probes ({failed_probes} failed)"
    );
    assert!(
        failed_probes <= 2.0,
        "{failed_probes} failed probes in a 5 s restart, one per {OPEN_FOR:?} at most"
    );
    notes.push(format!(
        "embeddings: opened after exactly 5 failed calls; then {failed_probes} failed probes and nothing else reached it; one probe closed it {closed_in:.1?} after the restart ended"
    ));
    sleep(Duration::from_secs(3)).await;

    // 4. PostgreSQL connections killed under load.
    drill.enter("postgres connections killed");
    let began = drill.now();
    let killed = kill_api_connections(&admin).await;
    assert!(killed > 0, "the API had connections to kill");
    notes.push(format!(
        "postgres: {killed} connections of the API terminated"
    ));
    sleep(Duration::from_secs(1)).await;
    windows.push(("postgres connections killed", began, drill.now()));
    drill.enter("postgres recovery");
    sleep(Duration::from_secs(3)).await;

    // 5. kill -9 of the API, and a restart.
    drill.enter("kill -9");
    let began = drill.now();
    let killed_at = drill.now();
    api.kill_9();
    if outbox.is_some() {
        relay.kill_9();
        relay.spawn();
    }
    if nats.is_some() {
        shipper.kill_9();
        shipper.spawn();
    }
    sleep(Duration::from_secs(1)).await;
    api.spawn();
    let ready_in = wait_ready(&http, &api).await;
    let ready_at = drill.now();
    windows.push(("kill -9", began, ready_at));
    notes.push(format!(
        "kill -9: the restarted API was ready {ready_in:.1?} after it started"
    ));
    drill.enter("after restart");
    sleep(Duration::from_secs(4)).await;

    drill.stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    poller.await.unwrap();
    chat_load.await.unwrap();
    learner_poll.await.unwrap();
    drill.pause().await;
    let load_stopped = Instant::now();
    let exit = api.stop();
    assert_eq!(
        exit,
        Some(0),
        "a graceful stop after the drill; see {}",
        api.log.display()
    );
    let chat_exit = chat.stop();
    assert_eq!(
        chat_exit,
        Some(0),
        "chat stops gracefully; see {}",
        chat.log.display()
    );

    // ------------------------------------------------------------ the verdict
    let samples = drill.samples.lock().unwrap().clone();
    let health = health.lock().unwrap().clone();
    let mut failures: Vec<String> = Vec::new();

    // No raw errors, ever; no refused or broken connection but for the
    // queries in flight or sent while the API was down.
    for s in &samples {
        let while_down = s.sent + s.latency >= killed_at && s.sent <= ready_at;
        match &s.outcome {
            Outcome::Raw { status, what } => {
                failures.push(format!("{}: a raw {status}: {what}", s.stage))
            }
            Outcome::Refused | Outcome::Broken if !while_down => {
                failures.push(format!(
                    "{}: no answer at all ({:?}) at {:?}",
                    s.stage, s.outcome, s.sent
                ));
            }
            _ => {}
        }
    }

    // p99 of answered queries under each dependency's timeout + 100 ms.
    let timeouts: HashMap<&str, Duration> = HashMap::from([
        ("llm down", Duration::from_secs(30)),
        ("vector store slow", Duration::from_secs(5)),
        ("embeddings restarting", Duration::from_secs(5)),
        ("postgres connections killed", Duration::from_secs(30)),
    ]);

    // Health: 503 while the LLM (critical) is down, 200 degraded while
    // only the embeddings are; never slower than its check timeout.
    for h in &health {
        let api_down = h.at + h.took >= killed_at && h.at <= ready_at;
        if h.status.is_none() && !api_down {
            failures.push(format!(
                "/health did not answer at {:?} (waited {:?})",
                h.at, h.took
            ));
        }
        if h.status.is_some() && h.took > CHECK_TIMEOUT + Duration::from_millis(500) {
            failures.push(format!("/health took {:?} at {:?}", h.took, h.at));
        }
    }
    let within = |stage: &str| {
        let (_, b, e) = windows.iter().find(|w| w.0 == stage).copied().unwrap();
        move |at: Duration| at >= b + HEALTH_LAG && at + HEALTH_LAG <= e
    };
    let llm_window = within("llm down");
    let llm_health: Vec<_> = health.iter().filter(|h| llm_window(h.at)).collect();
    if llm_health.is_empty() || llm_health.iter().any(|h| h.status != Some(503)) {
        failures.push(format!(
            "/health during the LLM outage: {:?}",
            llm_health
                .iter()
                .map(|h| (h.status, h.says.as_str()))
                .collect::<Vec<_>>()
        ));
    }
    let emb_window = within("embeddings restarting");
    let emb_health: Vec<_> = health.iter().filter(|h| emb_window(h.at)).collect();
    if emb_health.is_empty()
        || emb_health
            .iter()
            .any(|h| h.status != Some(200) || h.says != "degraded")
    {
        failures.push(format!(
            "/health while the embeddings restart: {:?}",
            emb_health
                .iter()
                .map(|h| (h.status, h.says.as_str()))
                .collect::<Vec<_>>()
        ));
    }

    // Recovery within one probe period after each fault: every query sent
    // later than that is a whole answer.
    let settle = OPEN_FOR + Duration::from_millis(500);
    for (stage, _, end) in &windows {
        let late: Vec<&Sample> = samples
            .iter()
            .filter(|s| {
                // Its whole life (sent to answered) clear of every fault
                // and of the settling after each: a query in flight when
                // the next fault began is that fault's, not this one's.
                let done = s.sent + s.latency;
                s.sent > *end + settle
                    && windows
                        .iter()
                        .all(|(_, b, e)| done < *b || s.sent > *e + settle)
            })
            .filter(
                |s| !matches!(&s.outcome, Outcome::Answer { degraded, .. } if degraded.is_empty()),
            )
            .collect();
        if let Some(first) = late.first() {
            failures.push(format!("not recovered {settle:?} after {stage}: {} queries after it were not whole answers, first at {:?}: {:?}", late.len(), first.sent, first.outcome));
        }
    }

    // The table.
    let stages: Vec<&'static str> = {
        let mut seen = Vec::new();
        for s in &samples {
            if !seen.contains(&s.stage) {
                seen.push(s.stage);
            }
        }
        seen
    };
    let mut rows = Vec::new();
    for stage in stages {
        let of: Vec<&Sample> = samples.iter().filter(|s| s.stage == stage).collect();
        let answered: Vec<&&Sample> = of
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Answer { .. }))
            .collect();
        let latencies: Vec<Duration> = answered.iter().map(|s| s.latency).collect();
        let (p50, p99) = (
            percentile(latencies.clone(), 0.5),
            percentile(latencies, 0.99),
        );
        if let Some(limit) = timeouts.get(stage)
            && p99 > *limit + Duration::from_millis(100)
        {
            failures.push(format!(
                "{stage}: p99 {p99:?} is over the timeout {limit:?} + 100 ms"
            ));
        }
        let mut problems = BTreeMap::new();
        for s in &of {
            if let Outcome::Problem { status } = s.outcome {
                *problems.entry(status).or_insert(0) += 1;
            }
        }
        let upstream_text = match upstream.get(stage) {
            Some((target, before, after)) => {
                let per = delta(*after, *before) as f64 / of.len().max(1) as f64;
                if stage == "llm down" && per > 1.25 {
                    failures.push(format!("{stage}: {per:.3} LLM calls per query, over 1.25"));
                }
                format!(
                    "{}: {} calls, {per:.3}/query",
                    target.name(),
                    delta(*after, *before)
                )
            }
            None => String::new(),
        };
        let mut codes: BTreeMap<String, usize> = BTreeMap::new();
        let (b, e) = (
            of.first().map_or(Duration::ZERO, |s| s.sent),
            of.last().map_or(Duration::ZERO, |s| s.sent),
        );
        for h in health.iter().filter(|h| h.at >= b && h.at <= e) {
            let key = match h.status {
                Some(code) => format!("{code} {}", h.says),
                None => "no answer".to_owned(),
            };
            *codes.entry(key).or_insert(0) += 1;
        }
        rows.push(Row {
            stage,
            sent: of.len(),
            answered: answered.len(),
            degraded: answered.iter().filter(|s| matches!(&s.outcome, Outcome::Answer { degraded, .. } if !degraded.is_empty())).count(),
            problems,
            refused: of.iter().filter(|s| matches!(s.outcome, Outcome::Refused | Outcome::Broken)).count(),
            p50,
            p99,
            upstream: upstream_text,
            health: codes.iter().map(|(k, n)| format!("{k} ×{n}")).collect::<Vec<_>>().join(", "),
        });
    }

    // The journal: exactly one whole record per acknowledged query.
    let mut reader = JournalReader::open(&journal_dir, JOURNAL_NAME).expect("the journal");
    let mut recorded: HashMap<String, usize> = HashMap::new();
    while let Some(record) = reader.next_record::<QueryRecord>().expect("readable") {
        *recorded.entry(record.event.request_id).or_insert(0) += 1;
    }
    let stats = reader.stats();
    let acknowledged: Vec<&String> = samples
        .iter()
        .filter_map(|s| match &s.outcome {
            Outcome::Answer { request_id, .. } => Some(request_id),
            _ => None,
        })
        .collect();
    let missing = acknowledged
        .iter()
        .filter(|id| !recorded.contains_key(**id))
        .count();
    let doubled = recorded.values().filter(|n| **n > 1).count();
    let unacknowledged = recorded.len()
        - acknowledged
            .iter()
            .filter(|id| recorded.contains_key(**id))
            .count();
    // At most the one record being written at the kill can be torn; the
    // restarted writer seals it, and the reader skips it.
    if stats.corrupt_records > 1 {
        failures.push(format!(
            "journal: {} torn or corrupt records",
            stats.corrupt_records
        ));
    }
    if missing > 0 || doubled > 0 {
        failures.push(format!(
            "journal: {missing} acknowledged queries without a record, {doubled} recorded twice"
        ));
    }
    notes.push(format!(
        "journal: {} records for {} acknowledged queries; {unacknowledged} recorded but not acknowledged (in flight at the kill); skipped while reading: {stats:?}",
        recorded.values().sum::<usize>(),
        acknowledged.len()
    ));
    notes.push(format!(
        "load: {rate} queries/s; {} not sent (1000 in flight)",
        drill.skipped.load(Ordering::Relaxed)
    ));

    // The chat backend: always 200; the legacy answer through the LLM
    // outage, whole answers again one probe period after it.
    let chats = chats.lock().unwrap().clone();
    let (llm_began, llm_ended) = windows
        .iter()
        .find(|w| w.0 == "llm down")
        .map(|w| (w.1, w.2))
        .unwrap();
    let mut during = (0usize, 0usize);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for c in &chats {
        if c.status != Some(200) {
            failures.push(format!(
                "chat: {:?} at {:?} ({})",
                c.status, c.sent, c.stage
            ));
            continue;
        }
        if c.sent > llm_began + Duration::from_millis(200) && c.sent + c.latency < llm_ended {
            during.0 += 1;
            if c.degraded {
                during.1 += 1;
                *kinds.entry(c.kind.clone()).or_insert(0) += 1;
            }
        } else if c.sent > llm_ended + settle && c.degraded {
            failures.push(format!(
                "chat: degraded ({}) at {:?}, after the LLM came back",
                c.kind, c.sent
            ));
        }
    }
    if during.0 == 0 || during.1 != during.0 {
        failures.push(format!(
            "chat: {} of {} chats during the LLM outage answered the legacy way",
            during.1, during.0
        ));
    }
    notes.push(format!(
        "chat: {} chats, all 200; during the LLM outage {} of {} answered the legacy way ({kinds:?}), {chat_llm_calls} LLM calls for them",
        chats.len(),
        during.1,
        during.0
    ));

    // The learner keeps up: it has every record of the journal soon after
    // the load stops, and its backlog stayed small all along.
    let records = recorded.values().sum::<usize>() as u64;
    let learner_client = buttress_stack::client::JsonClient::new("learner", &learner.url(""));
    let caught_up = loop {
        let stats: Value = learner_client
            .get("/learning/stats")
            .await
            .unwrap_or(Value::Null);
        let events = stats["journal"]["events"].as_u64().unwrap_or(0);
        if events == records {
            break Some(load_stopped.elapsed());
        }
        if load_stopped.elapsed() > Duration::from_secs(20) {
            failures.push(format!(
                "learner: {events} of {records} journal records after 20 s"
            ));
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let backlog = backlog.lock().unwrap().clone();
    let worst = backlog.iter().map(|b| b.1).max().unwrap_or(0);
    if backlog.is_empty() || worst > MAX_LEARNER_BACKLOG {
        failures.push(format!(
            "learner: backlog up to {worst} bytes ({} samples), over {MAX_LEARNER_BACKLOG}",
            backlog.len()
        ));
    }
    let distinct = {
        let mut reader = JournalReader::open(&journal_dir, JOURNAL_NAME).expect("the journal");
        let mut hashes = std::collections::HashSet::new();
        while let Some(r) = reader.next_record::<QueryRecord>().expect("readable") {
            hashes.insert(r.event.question_sha256);
        }
        hashes.len() as i64
    };
    let rows_stored: i64 = admin
        .query_one(&format!("SELECT count(*) FROM {patterns_table}"), &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(-1);
    if rows_stored != distinct {
        failures.push(format!(
            "learner: {rows_stored} patterns stored for {distinct} distinct questions"
        ));
    }
    let learner_exit = learner.stop();
    if learner_exit != Some(0) {
        failures.push(format!(
            "learner: exit {learner_exit:?}; see {}",
            learner.log.display()
        ));
    }
    notes.push(format!(
        "learner: {records} records, {distinct} patterns stored once each; backlog at most {worst} bytes; caught up {:.1?} after the load stopped",
        caught_up.unwrap_or_default()
    ));
    if let (Some(nats), Some((table, stream, _))) = (&nats, &outbox) {
        check_outbox(
            &admin,
            nats,
            table,
            stream,
            rows_stored,
            &mut relay,
            &mut notes,
            &mut failures,
        )
        .await;
    }
    if let Some(nats) = &nats {
        check_shipped(
            &http,
            nats,
            &telemetry_stream,
            &journal_dir,
            &mut shipper,
            &mut notes,
            &mut failures,
        )
        .await;
    }
    for table in [&patterns_table, &checkpoint_table] {
        let _ = admin
            .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
            .await;
    }

    let report = table(&rows, &notes, &failures);
    println!("{report}");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("outage-drill.md");
    std::fs::write(&out, &report).unwrap();
    println!("written to {}", out.display());
    assert!(
        failures.is_empty(),
        "the drill failed:\n{}",
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn table(rows: &[Row], notes: &[String], failures: &[String]) -> String {
    let mut out = String::from("# Outage drill\n\n");
    out.push_str("| stage | sent | answered | degraded | problems | no answer | p50 | p99 | upstream calls | /health |\n");
    out.push_str("|---|---:|---:|---:|---|---:|---:|---:|---|---|\n");
    for r in rows {
        let problems = r
            .problems
            .iter()
            .map(|(s, n)| format!("{s} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.1} ms | {:.1} ms | {} | {} |",
            r.stage,
            r.sent,
            r.answered,
            r.degraded,
            problems,
            r.refused,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.upstream,
            r.health
        );
    }
    out.push('\n');
    for n in notes {
        let _ = writeln!(out, "- {n}");
    }
    if failures.is_empty() {
        out.push_str("\nEvery promise held.\n");
    } else {
        out.push_str("\nFailed:\n");
        for f in failures {
            let _ = writeln!(out, "- {f}");
        }
    }
    out
}
