//! upstream-sim over a real loopback socket: each API answers in its
//! upstream's format, faults set through `PUT /faults` take effect at
//! once, bad faults are refused, and a reset closes the connection
//! without an answer.

// Helpers outside #[test] functions panic on failure too: that is the report.
#![allow(clippy::unwrap_used)]

mod support;

use buttress_stack::client::{JsonClient, UpstreamError};
use buttress_stack::model::{DIMENSIONS, HashedModel};
use buttress_stack::sim::{SimConfig, Stats, Target};
use buttress_stack::wire::{
    CompletionRequest, CompletionResponse, EmbeddingsRequest, EmbeddingsResponse, Input,
    SearchRequest, SearchResponse,
};
use serde_json::{Value, json};
use support::start_sim;

#[tokio::test]
async fn every_api_answers_in_its_format() {
    let server = start_sim(SimConfig::default()).await;
    let client = JsonClient::new("sim", &server.url(""));
    let done: CompletionResponse = client
        .post(
            "/completion",
            &CompletionRequest {
                prompt: "Why?\nbecause".into(),
                n_predict: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(done.content, "From the 2 words given: Why?");
    let embedded: EmbeddingsResponse = client
        .post(
            "/v1/embeddings",
            &EmbeddingsRequest {
                input: Input::Many(vec!["a b".into(), "c".into()]),
                model: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(embedded.data.len(), 2);
    assert_eq!(embedded.data[0].embedding.len(), DIMENSIONS);
    let vector = HashedModel.embed("retry budget outage");
    let found: SearchResponse = client
        .post(
            "/qdrant/collections/documents/points/search",
            &SearchRequest {
                vector,
                limit: 3,
                with_payload: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(found.result.len(), 3);
    assert_eq!(
        found.result[0].id, 3,
        "the retry-budget document first: {found:?}"
    );
    assert_eq!(
        found.result[0].payload.as_ref().unwrap()["title"],
        "Retry budgets"
    );
    let missing = client
        .post::<_, Value>(
            "/collections/nope/points/search",
            &json!({"vector": [0.0], "limit": 1}),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.status().map(|s| s.as_u16()), Some(404));
    let chat: Value = client
        .post(
            "/llm/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await
        .unwrap();
    assert_eq!(
        chat["choices"][0]["message"]["content"],
        "From the 1 words given: hi"
    );
    for path in [
        "/health",
        "/llm/health",
        "/embeddings/health",
        "/qdrant/readyz",
        "/healthz",
    ] {
        let ok: Value = client.get(path).await.unwrap();
        assert_eq!(ok["status"], "ok", "{path}");
    }
}

#[tokio::test]
async fn faults_apply_at_once_and_are_counted() {
    let server = start_sim(SimConfig::default()).await;
    let client = JsonClient::new("sim", &server.url(""));
    let set: Value = client
        .send_json("PUT", "/faults", &json!({"llm": {"error_rate": 1.0, "error_status": 502}, "embeddings": {"loading": "1h"}}))
        .await
        .unwrap();
    assert_eq!(set["llm"]["error_status"], 502);
    let failed = client.get::<Value>("/llm/health").await.unwrap_err();
    assert_eq!(failed.status().map(|s| s.as_u16()), Some(502));
    let loading = client.get::<Value>("/embeddings/health").await.unwrap_err();
    match loading {
        UpstreamError::Status {
            status,
            retry_after,
            body,
            ..
        } => {
            assert_eq!(status, 503);
            assert!(
                retry_after.is_some_and(|d| d.as_secs() > 3500),
                "{retry_after:?}"
            );
            assert!(body.contains("Loading model"), "{body}");
        }
        other => panic!("{other}"),
    }
    // The vector store has no faults.
    let _: Value = client.get("/qdrant/readyz").await.unwrap();
    // Health checks are counted apart from the work.
    assert_eq!(
        server.sim.stats(Target::Llm),
        Stats {
            health_checks: 1,
            ..Stats::default()
        }
    );
    let failed = client
        .post::<_, Value>("/completion", &json!({"prompt": "x"}))
        .await
        .unwrap_err();
    assert_eq!(failed.status().map(|s| s.as_u16()), Some(502));
    assert_eq!(
        server.sim.stats(Target::Llm),
        Stats {
            requests: 1,
            failed: 1,
            health_checks: 1,
            ..Stats::default()
        }
    );
    let _ = client
        .post::<_, Value>("/v1/embeddings", &json!({"input": "x"}))
        .await
        .unwrap_err();
    assert_eq!(server.sim.stats(Target::Embeddings).loading, 1);
    let stats: Value = client.get("/stats").await.unwrap();
    assert_eq!(stats["qdrant"]["health_checks"], 1);
    assert_eq!(stats["embeddings"]["health_checks"], 1);
    // Cleared, everything answers.
    let cleared: Value = client
        .send_json("DELETE", "/faults", &json!({}))
        .await
        .unwrap();
    assert_eq!(cleared, json!({}));
    let _: Value = client.get("/llm/health").await.unwrap();
}

#[tokio::test]
async fn bad_faults_are_refused_whole() {
    let server = start_sim(SimConfig::default()).await;
    let client = JsonClient::new("sim", &server.url(""));
    for (body, says) in [
        (
            json!({"llm": {"error_rate": 2.0}}),
            "llm: error_rate must be between 0 and 1",
        ),
        (json!({"gpu": {}}), "gpu: not an API"),
        (json!({"llm": {"latency": {"fixed": "soon"}}}), "llm: "),
        (
            json!({"llm": {"hang": true}, "qdrant": {"error_status": 200}}),
            "qdrant: error_status",
        ),
    ] {
        let refused = client
            .send_json::<Value>("PUT", "/faults", &body)
            .await
            .unwrap_err();
        match refused {
            UpstreamError::Status {
                status, body: text, ..
            } => {
                assert_eq!(status, 422);
                assert!(text.contains(says), "{text} should say {says}");
            }
            other => panic!("{other}"),
        }
    }
    assert!(
        server.sim.faults().is_empty(),
        "nothing of a refused body applies"
    );
}

#[tokio::test]
async fn a_reset_closes_without_an_answer() {
    let server = start_sim(SimConfig::default()).await;
    server.sim.set_faults(
        Target::Qdrant,
        serde_json::from_value(json!({"reset_rate": 1.0})).unwrap(),
    );
    let client = JsonClient::new("sim", &server.url(""));
    let reset = client
        .post::<_, Value>(
            "/qdrant/collections/documents/points/search",
            &json!({"vector": [0.0], "limit": 1}),
        )
        .await
        .unwrap_err();
    assert!(matches!(reset, UpstreamError::Transport { .. }), "{reset}");
    assert_eq!(server.sim.stats(Target::Qdrant).resets, 1);
}

#[tokio::test]
async fn a_hang_never_answers() {
    let server = start_sim(SimConfig::default()).await;
    server.sim.set_faults(
        Target::Llm,
        serde_json::from_value(json!({"hang": true})).unwrap(),
    );
    let client = JsonClient::new("sim", &server.url(""));
    let call = tokio::spawn(async move {
        client
            .post::<_, Value>("/completion", &json!({"prompt": "x"}))
            .await
    });
    // Wait (bounded) until the simulator has the request, then see that
    // it has not answered.
    for _ in 0..5000 {
        if server.sim.stats(Target::Llm).hangs == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(server.sim.stats(Target::Llm).hangs, 1);
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!call.is_finished(), "a hung request was answered");
    call.abort();
}
