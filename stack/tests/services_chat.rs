//! The chat backend against the machine's PostgreSQL and NATS JetStream
//! (`DATABASE_URL`, `NATS_URL`): every whole answer is one row of memory
//! and one event in the stream, counted by id, and a repeat of an event's
//! id is dropped by the stream. Without the services it says why and
//! passes, unless `BUTTRESS_REQUIRE_SERVICES=1`.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use buttress_stack::chat::{DEFAULT_POLICY, STREAM};
use buttress_stack::nats::JetStream;
use buttress_stack::sim::SimConfig;
use serde_json::json;
use support::{LOCAL, call, chat, start_sim, temp_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_whole_answer_is_one_memory_row_and_one_event() {
    let Some(pg) = support::postgres().await else {
        return;
    };
    let nats = buttress_test_support::services::nats_url();
    let js = JetStream::new(
        &nats,
        STREAM,
        &[buttress_stack::chat::SUBJECTS],
        Duration::from_secs(2),
    );
    let context = match js.context().await {
        Ok(c) => c.clone(),
        Err(e) => {
            buttress_test_support::services::unavailable("NATS", "NATS_URL", &nats, e);
            return;
        }
    };
    let messages = async || {
        let mut stream = context.get_stream(STREAM).await.unwrap();
        stream.info().await.unwrap().state.messages
    };
    let before = messages().await;

    let sim = start_sim(SimConfig::default()).await;
    let dir = temp_dir("chat-services");
    let db = buttress_test_support::services::database_url();
    let chat = chat(
        &sim,
        &dir,
        DEFAULT_POLICY,
        &[("DATABASE_URL", &db), ("NATS_URL", &nats)],
    );
    let router = chat.router();
    let mut ids = Vec::new();
    for i in 0..20 {
        let domain = ["general", "engineering", "research", "support"][i % 4];
        let (status, _, answer) = call(
            &router,
            LOCAL,
            "POST",
            "/api/chat",
            &json!({"message": format!("question {i}"), "domain": domain}).to_string(),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["degraded"], false, "{answer}");
        assert_eq!(answer["skipped"], json!([]), "{answer}");
        ids.push(answer["request_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(messages().await - before, 20, "one event a chat");
    // A repeat of an id inside the duplicate window is dropped.
    let repeat = js
        .publish("chat.events.general", &ids[0], "again".into())
        .await
        .unwrap();
    assert!(repeat, "the stream saw the id before");
    assert_eq!(messages().await - before, 20);

    let rows = pg
        .query("SELECT id FROM chat_memory WHERE id = ANY($1)", &[&ids])
        .await
        .unwrap();
    let stored: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(stored, ids.iter().cloned().collect::<HashSet<_>>());
    pg.execute("DELETE FROM chat_memory WHERE id = ANY($1)", &[&ids])
        .await
        .unwrap();
    let (status, _, health) = call(&router, LOCAL, "GET", "/health", "").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["checks"]["nats"]["status"], "ok", "{health}");
    assert_eq!(health["checks"]["postgres"]["status"], "ok", "{health}");
}
