//! `stack --demo`: the stack on its own, through a scripted outage of
//! each upstream, in about 15 seconds, printing what a client sees.

use std::time::{Duration, Instant};

use buttress::BoxError;
use serde_json::{Value, json};

use crate::client::JsonClient;
use crate::sim::{Faults, Target};
use crate::stack::Running;

/// The built-in policy with breakers that probe every 3 s instead of
/// every 60 or 120, so the demo sees them close.
pub fn demo_policy() -> String {
    crate::knowledge::DEFAULT_POLICY
        .replace("duration = \"60s\"", "duration = \"3s\"")
        .replace("duration = \"120s\"", "duration = \"3s\"")
}

fn outage() -> Faults {
    Faults {
        outage: Some(crate::sim::Window {
            after: Duration::ZERO,
            duration: Duration::from_secs(3600),
        }),
        ..Faults::default()
    }
}

/// Runs the script against `running`; prints each step, and fails when
/// the stack does not do what a step says.
pub async fn run(running: &Running) -> Result<(), BoxError> {
    let api = JsonClient::new(
        "knowledge-api",
        &format!("http://127.0.0.1:{}", running.addresses.knowledge.port()),
    );
    let sim = &running.sim;
    wait_ready(&api).await?;
    let asked = "How does a circuit breaker probe?";

    step("All up: a whole answer from every dependency.");
    ask(&api, asked).await?;
    health(&api).await?;

    step(
        "The LLM goes down. Queries still answer, with the passages alone; its breaker opens after 3 failed calls and spares it.",
    );
    sim.set_faults(Target::Llm, outage());
    let before = sim.stats(Target::Llm).requests;
    for _ in 0..5 {
        ask(&api, asked).await?;
    }
    let calls = sim.stats(Target::Llm).requests - before;
    println!("    the LLM got {calls} calls for those 5 queries");
    expect(
        calls == 3,
        "the LLM's breaker opens after exactly 3 failed calls",
    )?;
    health(&api).await?;

    step("The LLM comes back. After its 3 s open period, one probe closes the breaker.");
    sim.clear_faults();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    ask(&api, asked).await?;
    ask(&api, asked).await?;

    step("The vector store goes down: keyword search in the documents instead.");
    sim.set_faults(Target::Qdrant, outage());
    let answer = ask(&api, "What does a retry budget allow?").await?;
    expect(
        answer["degraded"] == "no vector search",
        "keyword search answers",
    )?;
    health(&api).await?;
    sim.clear_faults();

    step(
        "The embeddings service restarts; its model takes 4 s to load. A question asked before uses its cached embedding; a new one falls back to keyword search; after 5 failures its breaker opens.",
    );
    running.restart_embeddings(Duration::from_secs(4)).await?;
    let answer = ask(&api, asked).await?;
    expect(
        answer["degraded"] == "cached embedding",
        "the cached embedding answers",
    )?;
    ask(&api, "Why write checkpoints atomically?").await?;
    for _ in 0..4 {
        ask(&api, asked).await?;
    }
    health(&api).await?;

    step("Loaded again: after the breaker's 3 s, a probe closes it and answers are whole.");
    tokio::time::sleep(Duration::from_millis(5000)).await;
    let answer = ask(&api, "Why write checkpoints atomically?").await?;
    expect(answer.get("degraded").is_none(), "whole answers again")?;

    step(
        "The learner has read every answered query's telemetry record, and stored each question's pattern once.",
    );
    let stats = learned(running).await?;
    println!(
        "    {} events, {} patterns, {} duplicates ({:.0} %), {} checkpoints saved",
        stats.journal.events,
        stats.patterns.learned,
        stats.deduplication.duplicates,
        stats.deduplication.ratio * 100.0,
        stats.checkpointing.saves,
    );
    expect(
        stats.deduplication.duplicates > 0 && stats.patterns.learned >= 2,
        "the repeated question is one pattern",
    )?;

    step("A bad request is a problem+json naming the field, with the request id.");
    let (status, problem) = api.post_any("/query", &json!({"question": ""})).await?;
    println!("    {status} {problem}");
    expect(status == 422, "an empty question is refused")?;
    Ok(())
}

/// The learner's statistics once it has caught up with the journal.
async fn learned(running: &Running) -> Result<crate::learner::LearningStats, BoxError> {
    let began = Instant::now();
    loop {
        let stats = running.learner.stats();
        let b = &stats.backpressure;
        if stats.journal.events > 0 && b.journal_unread_bytes == 0 && b.unprocessed_bytes == 0 {
            return Ok(stats);
        }
        if began.elapsed() > Duration::from_secs(10) {
            return Err(format!("the learner did not catch up within 10 s: {stats:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn expect(held: bool, what: &str) -> Result<(), BoxError> {
    if held {
        Ok(())
    } else {
        Err(format!("expected: {what}").into())
    }
}

fn step(text: &str) {
    println!("\n• {text}");
}

async fn wait_ready(api: &JsonClient) -> Result<(), BoxError> {
    let began = Instant::now();
    while api.get::<Value>("/readyz").await.is_err() {
        if began.elapsed() > Duration::from_secs(90) {
            return Err("the knowledge API was not ready within 90 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn ask(api: &JsonClient, question: &str) -> Result<Value, BoxError> {
    let began = Instant::now();
    let answer: Value = api.post("/query", &json!({ "question": question })).await?;
    let took = began.elapsed();
    let sources: Vec<&str> = answer["sources"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|p| p["title"].as_str())
                .take(2)
                .collect()
        })
        .unwrap_or_default();
    let degraded = answer["degraded"]
        .as_str()
        .map_or(String::new(), |d| format!("  degraded: {d}"));
    println!(
        "    {question:<40} {:>5.1} ms  answer: {:<4} from {}  sources: {}{degraded}",
        took.as_secs_f64() * 1e3,
        if answer["answer"].is_string() {
            "yes"
        } else {
            "none"
        },
        answer["answered_by"]
            .as_array()
            .map(|a| a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("+"))
            .unwrap_or_default(),
        sources.join(", "),
    );
    Ok(answer)
}

async fn health(api: &JsonClient) -> Result<(), BoxError> {
    // Past the checks' one-second cache, so the report is of now.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, report) = api.get_any("/health").await?;
    let down: Vec<&str> = report["checks"]
        .as_object()
        .map(|checks| {
            checks
                .iter()
                .filter(|(_, c)| c["status"] != "ok")
                .map(|(name, _)| name.as_str())
                .collect()
        })
        .unwrap_or_default();
    let down = if down.is_empty() {
        String::new()
    } else {
        format!(" (down: {})", down.join(", "))
    };
    println!(
        "    /health {}: {}{down}",
        status.as_u16(),
        report["status"].as_str().unwrap_or("?")
    );
    Ok(())
}
