//! The knowledge API against the PostgreSQL at `DATABASE_URL` and the
//! Redis at `REDIS_URL` (defaults: the local servers). Without them these
//! tests print why and pass, unless `BUTTRESS_REQUIRE_SERVICES=1` (as in
//! CI) makes that a failure.

// Helpers outside #[test] functions panic on failure too: that is the report.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use buttress_stack::knowledge::{KnowledgeApi, question_hash};
use buttress_stack::sim::{Faults, SimConfig, Target};
use buttress_test_support::services;
use serde_json::json;
use support::{
    LOCAL, SimServer, call, kill_api_connections, knowledge, postgres, redis, start_sim, temp_dir,
    test_policy,
};

fn ask(question: &str) -> String {
    json!({ "question": question }).to_string()
}

fn outage() -> Faults {
    serde_json::from_value(json!({"outage": {"for": "1h"}})).unwrap()
}

/// Held by every test whose API uses PostgreSQL: one of them kills the
/// knowledge API's connections (found by their application name), which
/// would kill the other's mid-query too.
static POSTGRES_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn with_postgres(sim: &SimServer, name: &str, extra: &[(&str, &str)]) -> KnowledgeApi {
    let url = services::database_url();
    let mut vars = vec![("DATABASE_URL", url.as_str())];
    vars.extend_from_slice(extra);
    let api = knowledge(sim, &temp_dir(name), &test_policy(), &vars);
    api.start_database().await.expect("the database comes up");
    assert!(api.health().readiness().is_ready());
    api
}

#[tokio::test]
async fn documents_and_keyword_search_come_from_postgres() {
    let Some(_) = postgres().await else { return };
    let _alone = POSTGRES_TESTS.lock().await;
    let sim = start_sim(SimConfig::default()).await;
    let api = with_postgres(&sim, "pg-docs", &[]).await;
    let routes = api.router();
    let (status, _, body) = call(
        &routes,
        LOCAL,
        "POST",
        "/query",
        &ask("How does a circuit breaker probe?"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sources"][0]["title"], "Circuit breakers");
    assert!(body["answered_by"].to_string().contains("documents"));

    sim.sim.set_faults(Target::Qdrant, outage());
    let (status, _, body) = call(
        &routes,
        LOCAL,
        "POST",
        "/query",
        &ask("What does a retry budget allow?"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["degraded"], "no vector search");
    assert_eq!(
        body["sources"][0]["title"], "Retry budgets",
        "PostgreSQL's full-text search: {body}"
    );
    // Hostile text is only words to the query: no syntax error, no injection.
    let (status, _, body) = call(
        &routes,
        LOCAL,
        "POST",
        "/query",
        &ask("breaker'); DROP TABLE knowledge_documents; -- & | !"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = call(&routes, LOCAL, "GET", "/health", "").await;
    assert_eq!(status, 200);
    assert_eq!(body["postgres"], "ok");
}

#[tokio::test]
async fn killed_database_connections_are_replaced() {
    let Some(admin) = postgres().await else {
        return;
    };
    let _alone = POSTGRES_TESTS.lock().await;
    let sim = start_sim(SimConfig::default()).await;
    let api = with_postgres(&sim, "pg-kill", &[]).await;
    let routes = api.router();
    let (status, _, _) = call(
        &routes,
        LOCAL,
        "POST",
        "/query",
        &ask("What is a half-open probe?"),
    )
    .await;
    assert_eq!(status, 200);
    let killed = kill_api_connections(&admin).await;
    assert!(killed > 0, "the API had connections to kill");
    for _ in 0..3 {
        let (status, _, body) = call(
            &routes,
            LOCAL,
            "POST",
            "/query",
            &ask("What is a half-open probe?"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn replicas_share_cached_embeddings_and_the_inbound_limit_through_redis() {
    if !redis().await {
        return;
    }
    let sim = start_sim(SimConfig::default()).await;
    let url = services::redis_url();
    let policy = test_policy().replace("count = 150, per = \"1m\"", "count = 2, per = \"1m\"");
    let replica = |name: &str| {
        knowledge(
            &sim,
            &temp_dir(name),
            &policy,
            &[("REDIS_URL", url.as_str())],
        )
    };
    let (a, b) = (replica("redis-a").router(), replica("redis-b").router());

    // One replica embeds a question; with the embeddings down, the other
    // finds its embedding in Redis.
    let question = format!("How does a breaker probe, run {}?", fastrand::u64(..));
    let (status, _, _) = call(&a, LOCAL, "POST", "/query", &ask(&question)).await;
    assert_eq!(status, 200);
    // The cache is written off the answer's path: wait (bounded) for it.
    let key = format!("knowledge:embedding:{}", question_hash(&question));
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for _ in 0..200 {
        let cached: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if cached {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    sim.sim.set_faults(Target::Embeddings, outage());
    let (status, _, body) = call(&b, LOCAL, "POST", "/query", &ask(&question)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["degraded"], "cached embedding");
    sim.sim.clear_faults();

    // One client, two replicas, one limit of 2 a minute.
    let client = SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, 9, fastrand::u8(..), fastrand::u8(1..))),
        50000,
    );
    let (first, _, _) = call(&a, client, "POST", "/query", &ask("first")).await;
    let (second, _, _) = call(&b, client, "POST", "/query", &ask("second")).await;
    let (third, headers, _) = call(&a, client, "POST", "/query", &ask("third")).await;
    assert_eq!((first, second, third), (200, 200, 429));
    assert!(headers.contains_key("retry-after"));
}
