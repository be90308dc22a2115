//! The knowledge API against upstream-sim on a loopback socket, with the
//! documents in memory: answers with sources, degraded answers for each
//! upstream down, breakers that open after exactly their thresholds and
//! then spare the upstream, problem+json for bad requests, the inbound
//! limit, health, readiness, and one journal record per answer.
//!
//! Real time (a real socket), but nothing waits: retries do not back off
//! in the test policy, and faults are outages that answer at once.

// Helpers outside #[test] functions panic on failure too: that is the report.
#![allow(clippy::unwrap_used)]

mod support;

use buttress::breaker::State;
use buttress::journal::JournalReader;
use buttress_stack::knowledge::{JOURNAL_NAME, QueryRecord, question_hash};
use buttress_stack::sim::{Faults, SimConfig, Target};
use serde_json::{Value, json};
use support::{LOCAL, REMOTE, call, knowledge, start_sim, temp_dir, test_policy};

const BREAKER_QUESTION: &str = "How does a circuit breaker probe?";

fn ask(question: &str) -> String {
    json!({ "question": question }).to_string()
}

fn outage() -> Faults {
    serde_json::from_value(json!({"outage": {"for": "1h"}})).unwrap()
}

fn degradations(body: &Value) -> Vec<String> {
    body["degradations"].as_array().map_or_else(Vec::new, |a| {
        a.iter().map(|d| d.as_str().unwrap().to_owned()).collect()
    })
}

fn answered_by(body: &Value) -> Vec<&str> {
    body["answered_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn answers_with_sources_and_records_each_query() {
    let sim = start_sim(SimConfig::default()).await;
    let dir = temp_dir("answers");
    let api = knowledge(&sim, &dir, &test_policy(), &[]);
    let routes = api.router();
    let (status, headers, body) =
        call(&routes, LOCAL, "POST", "/query", &ask(BREAKER_QUESTION)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["answer"].as_str().unwrap().ends_with(BREAKER_QUESTION),
        "{body}"
    );
    assert_eq!(body["sources"][0]["id"], 1, "the breaker document first");
    assert_eq!(body["sources"].as_array().unwrap().len(), 4);
    assert_eq!(
        answered_by(&body),
        ["embeddings", "vector_store", "documents", "llm"]
    );
    assert!(body.get("degraded").is_none());
    assert_eq!(
        body["request_id"],
        headers["x-request-id"].to_str().unwrap()
    );

    api.journal().flush().await.unwrap();
    let mut reader = JournalReader::open(dir.join("telemetry"), JOURNAL_NAME).unwrap();
    let record = reader
        .next_record::<QueryRecord>()
        .unwrap()
        .expect("one record")
        .event;
    assert_eq!(record.question_sha256, question_hash(BREAKER_QUESTION));
    assert_eq!(record.request_id, body["request_id"]);
    assert_eq!(
        record.answered_by,
        ["embeddings", "vector_store", "documents", "llm"]
    );
    assert_eq!(record.passages, 4);
    assert!(reader.next_record::<QueryRecord>().unwrap().is_none());
}

#[tokio::test]
async fn the_llm_down_leaves_the_passages_and_its_breaker_opens_after_exactly_three_failures() {
    let sim = start_sim(SimConfig::default()).await;
    sim.sim.set_faults(Target::Llm, outage());
    let api = knowledge(&sim, &temp_dir("llm-down"), &test_policy(), &[]);
    let routes = api.router();
    for i in 0..10 {
        let (status, _, body) = call(
            &routes,
            LOCAL,
            "POST",
            "/query",
            &ask(&format!("breaker question {i}")),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["answer"], Value::Null);
        assert_eq!(degradations(&body), ["no generated answer"]);
        assert!(!body["sources"].as_array().unwrap().is_empty());
    }
    let breaker = api
        .policy()
        .dependency("llm")
        .unwrap()
        .breaker()
        .cloned()
        .unwrap();
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        sim.sim.stats(Target::Llm).requests,
        3,
        "3 failures open it; after that nothing reaches the LLM"
    );
}

#[tokio::test]
async fn the_vector_store_down_falls_back_to_keyword_search() {
    let sim = start_sim(SimConfig::default()).await;
    sim.sim.set_faults(Target::Qdrant, outage());
    let api = knowledge(&sim, &temp_dir("qdrant-down"), &test_policy(), &[]);
    let routes = api.router();
    for _ in 0..8 {
        let (status, _, body) =
            call(&routes, LOCAL, "POST", "/query", &ask(BREAKER_QUESTION)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["degraded"], "no vector search");
        assert_eq!(answered_by(&body), ["embeddings", "keyword_search", "llm"]);
        assert_eq!(body["sources"][0]["id"], 1);
        assert!(body["answer"].is_string());
    }
    assert_eq!(
        sim.sim.stats(Target::Qdrant).requests,
        5,
        "5 failures open its breaker"
    );
}

#[tokio::test]
async fn the_embeddings_down_use_the_cached_embedding_of_a_question_seen_before() {
    let sim = start_sim(SimConfig::default()).await;
    let api = knowledge(&sim, &temp_dir("embeddings-down"), &test_policy(), &[]);
    let routes = api.router();
    let (status, _, fresh) = call(&routes, LOCAL, "POST", "/query", &ask(BREAKER_QUESTION)).await;
    assert_eq!(status, 200);
    // The cache is written off the answer's path: let that task run.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    sim.sim.set_faults(Target::Embeddings, outage());

    // The same question (normalised): its cached embedding, the same passages.
    let (status, _, body) = call(
        &routes,
        LOCAL,
        "POST",
        "/query",
        &ask("  how does a CIRCUIT breaker probe? "),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["degraded"], "cached embedding");
    assert_eq!(
        answered_by(&body),
        ["embedding_cache", "vector_store", "documents", "llm"]
    );
    assert_eq!(body["sources"], fresh["sources"]);

    // A new question: keyword search.
    let (status, _, body) = call(
        &routes,
        LOCAL,
        "POST",
        "/query",
        &ask("What is a retry budget?"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["degraded"], "no vector search");
    assert_eq!(answered_by(&body), ["keyword_search", "llm"]);
    assert_eq!(body["sources"][0]["id"], 3);
}

#[tokio::test]
async fn bad_requests_are_problems_naming_the_field_with_the_request_id() {
    let sim = start_sim(SimConfig::default()).await;
    let api = knowledge(&sim, &temp_dir("bad-requests"), &test_policy(), &[]);
    let routes = api.router();
    for (body, field) in [
        (ask(""), "question"),
        (ask("   "), "question"),
        (ask(&"x".repeat(2001)), "question"),
        ("{\"questions\": \"typo\"}".to_owned(), "body"),
        ("not json".to_owned(), "body"),
        ("{\"question\": 42}".to_owned(), "body"),
    ] {
        support::assert_invalid(&routes, "/query", &body, &[field]).await;
    }
    let (status, _, problem) = call(&routes, LOCAL, "GET", "/nowhere", "").await;
    assert_eq!((status, problem["status"].as_u64()), (404, Some(404)));
    let (status, _, problem) = call(&routes, LOCAL, "GET", "/query", "").await;
    assert_eq!((status, problem["status"].as_u64()), (405, Some(405)));
    assert_eq!(
        sim.sim.stats(Target::Llm).requests,
        0,
        "nothing invalid reaches an upstream"
    );
}

#[tokio::test]
async fn the_inbound_limit_holds_remote_clients_and_passes_loopback() {
    let sim = start_sim(SimConfig::default()).await;
    let policy = test_policy().replace("count = 150, per = \"1m\"", "count = 2, per = \"1m\"");
    let api = knowledge(&sim, &temp_dir("inbound"), &policy, &[]);
    let routes = api.router();
    for _ in 0..2 {
        let (status, _, _) = call(&routes, REMOTE, "POST", "/query", &ask(BREAKER_QUESTION)).await;
        assert_eq!(status, 200);
    }
    let (status, headers, problem) =
        call(&routes, REMOTE, "POST", "/query", &ask(BREAKER_QUESTION)).await;
    assert_eq!(status, 429, "{problem}");
    assert!(headers.contains_key("retry-after"));
    assert!(problem["request_id"].is_string());
    for _ in 0..5 {
        let (status, _, _) = call(&routes, LOCAL, "POST", "/query", &ask(BREAKER_QUESTION)).await;
        assert_eq!(status, 200, "loopback is exempt");
    }
}

#[tokio::test]
async fn health_is_unhealthy_for_the_llm_and_degraded_for_the_vector_store_and_both_stay_ready() {
    let sim = start_sim(SimConfig::default()).await;
    let dir = temp_dir("health");
    let api = knowledge(&sim, &dir, &test_policy(), &[]);
    let (status, _, body) = call(&api.router(), LOCAL, "GET", "/health", "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["breaker:llm"], "ok");

    sim.sim.set_faults(Target::Qdrant, outage());
    let api = knowledge(&sim, &dir, &test_policy(), &[]);
    let (status, _, body) = call(&api.router(), LOCAL, "GET", "/health", "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["vector_store"], "down");
    let (status, _, _) = call(&api.router(), LOCAL, "GET", "/readyz", "").await;
    assert_eq!(
        status, 200,
        "a non-critical dependency down leaves it ready"
    );

    sim.sim.set_faults(Target::Llm, outage());
    let api = knowledge(&sim, &dir, &test_policy(), &[]);
    let (status, _, body) = call(&api.router(), LOCAL, "GET", "/health", "").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["llm"], "down");
    // Unhealthy (an alert), yet ready: every replica shares the LLM, and
    // each still answers with the passages.
    let (status, _, body) = call(&api.router(), LOCAL, "GET", "/readyz", "").await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = call(
        &api.router(),
        LOCAL,
        "POST",
        "/query",
        &ask(BREAKER_QUESTION),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // (The vector store is still down too.)
    assert_eq!(
        degradations(&body),
        ["no vector search", "no generated answer"]
    );
    let (status, _, _) = call(&api.router(), LOCAL, "GET", "/livez", "").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn queries_wait_behind_readiness_while_the_database_is_down() {
    let sim = start_sim(SimConfig::default()).await;
    // Nothing listens on port 1: the first connection is retried for
    // a minute, and readiness stays closed meanwhile.
    let api = knowledge(
        &sim,
        &temp_dir("no-db"),
        &test_policy(),
        &[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/test"),
            ("HEALTH_CHECK_TIMEOUT", "100ms"),
        ],
    );
    let starting = tokio::spawn({
        let api = api.clone();
        async move { api.start_database().await }
    });
    tokio::task::yield_now().await;
    let routes = api.router();
    let (status, headers, problem) =
        call(&routes, LOCAL, "POST", "/query", &ask(BREAKER_QUESTION)).await;
    assert_eq!(status, 503, "{problem}");
    assert!(headers.contains_key("retry-after"));
    let (status, _, body) = call(&routes, LOCAL, "GET", "/readyz", "").await;
    assert_eq!(status, 503);
    assert!(
        body.to_string().contains("connecting to PostgreSQL"),
        "{body}"
    );
    starting.abort();
}

#[tokio::test]
async fn metrics_and_admin_answer() {
    let sim = start_sim(SimConfig::default()).await;
    let api = knowledge(&sim, &temp_dir("metrics"), &test_policy(), &[]);
    let routes = api.router();
    let (status, _, _) = call(&routes, LOCAL, "POST", "/query", &ask(BREAKER_QUESTION)).await;
    assert_eq!(status, 200);
    let (status, _, status_body) = call(&routes, LOCAL, "GET", "/admin/status", "").await;
    assert_eq!(status, 200);
    let text = status_body.to_string();
    for name in ["embeddings", "vector_store", "llm"] {
        assert!(text.contains(name), "{name} missing from the admin status");
    }
    let (status, _, _) = call(&routes, REMOTE, "GET", "/admin/status", "").await;
    assert_eq!(status, 403, "admin is loopback-only without a token");
    let request = http::Request::get("/metrics")
        .extension(axum::extract::ConnectInfo(LOCAL))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(routes, request).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_llm_can_be_an_openai_compatible_chat_server() {
    let sim = start_sim(SimConfig::default()).await;
    let api = knowledge(
        &sim,
        &temp_dir("chat-api"),
        &test_policy(),
        &[("LLM_API", "chat")],
    );
    let (status, _, body) = call(
        &api.router(),
        LOCAL,
        "POST",
        "/query",
        &ask(BREAKER_QUESTION),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["answer"].as_str().unwrap().ends_with(BREAKER_QUESTION),
        "{body}"
    );
    assert_eq!(
        answered_by(&body),
        ["embeddings", "vector_store", "documents", "llm"]
    );
}

#[tokio::test]
async fn an_oversized_body_is_a_problem_not_plain_text() {
    let sim = start_sim(SimConfig::default()).await;
    let api = knowledge(&sim, &temp_dir("oversized"), &test_policy(), &[]);
    let huge = ask(&"x".repeat(3 << 20));
    let (status, headers, problem) = call(&api.router(), LOCAL, "POST", "/query", &huge).await;
    assert_eq!(status, 413);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["kind"], "payload_too_large");
    assert!(problem["request_id"].is_string());
}

#[tokio::test]
async fn a_question_of_common_words_only_finds_nothing_rather_than_anything() {
    let sim = start_sim(SimConfig::default()).await;
    let api = knowledge(&sim, &temp_dir("stop-words"), &test_policy(), &[]);
    let (status, _, body) = call(&api.router(), LOCAL, "POST", "/query", &ask("What is it?")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sources"], json!([]));
}
