//! The chat backend against upstream-sim's LLM: validation, a whole answer,
//! and every failure of the pipeline (LLM down, LLM slow past its timeout,
//! the task past its deadline, the queue full, PostgreSQL down, the bus
//! down) answered 200 with the right degraded content; 1,000 concurrent
//! chats on 8 running slots keep priorities and arrival order; a shutdown
//! drains the executor.

mod support;

use std::time::Duration;

use buttress_stack::chat::{
    DEFAULT_POLICY, Domain, PRIORITY_CHAT, PRIORITY_SUMMARY, legacy_answer,
};
use buttress_stack::sim::{Faults, Latency, SimConfig, Target, Window};
use serde_json::{Value, json};
use support::{LOCAL, call, chat, closed_port, start_sim, temp_dir};

fn body(message: &str, domain: &str) -> String {
    json!({"message": message, "domain": domain}).to_string()
}

fn outage() -> Faults {
    Faults {
        outage: Some(Window {
            after: Duration::ZERO,
            duration: Duration::from_secs(3600),
        }),
        ..Faults::default()
    }
}

fn slow(by: Duration) -> Faults {
    Faults {
        latency: Latency::Fixed(by),
        ..Faults::default()
    }
}

/// The built-in policy with retries that do not wait, and `edits` applied.
fn policy(edits: &[(&str, &str)]) -> String {
    let mut p = DEFAULT_POLICY.replace(
        "retry = { max_attempts = 2,",
        "retry = { max_attempts = 2, backoff = { kind = \"constant\", delay = \"0s\" },",
    );
    for (from, to) in edits {
        assert!(p.contains(from), "{from}");
        p = p.replace(from, to);
    }
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_field_in_error() {
    let sim = start_sim(SimConfig::default()).await;
    let dir = temp_dir("chat-validation");
    let chat = chat(&sim, &dir, &policy(&[]), &[]);
    let router = chat.router();
    let long = "x".repeat(4001);
    let cases: [(String, &[&str]); 7] = [
        (body("", "general"), &["message"]),
        (body("   ", "general"), &["message"]),
        (body(&long, "general"), &["message"]),
        (body("hi", "cooking"), &["domain"]),
        (json!({"message": "hi"}).to_string(), &["domain"]),
        (
            json!({"domain": 7, "message": ""}).to_string(),
            &["message", "domain"],
        ),
        ("{not json".to_owned(), &["body"]),
    ];
    for (request, fields) in cases {
        support::assert_invalid(&router, "/api/chat", &request, fields).await;
    }
    let huge = "x".repeat(100 << 10);
    let (status, _, problem) =
        call(&router, LOCAL, "POST", "/api/chat", &body(&huge, "general")).await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(
        sim.sim.stats(Target::Llm).requests,
        0,
        "nothing reached the LLM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_answer_writes_the_memory_and_publishes_the_event() {
    let sim = start_sim(SimConfig::default()).await;
    let dir = temp_dir("chat-whole");
    let chat = chat(&sim, &dir, &policy(&[]), &[]);
    let (status, headers, answer) = call(
        &chat.router(),
        LOCAL,
        "POST",
        "/api/chat",
        &body("How do I roll back a deploy?", "engineering"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["degraded"], false);
    assert_eq!(answer["pipeline"], "cognition");
    assert_eq!(answer["domain"], "engineering");
    assert_eq!(answer["skipped"], json!([]));
    let id = answer["request_id"].as_str().unwrap();
    assert_eq!(headers["x-request-id"], id);
    assert!(!answer["answer"].as_str().unwrap().is_empty());
    let memory = chat.memory().local_exchanges();
    assert_eq!(memory.len(), 1);
    assert_eq!(memory[0].id, id);
    let events = chat.bus().local_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].subject, "chat.events.engineering");
    assert_eq!(events[0].id, id);
    // The executor records a task once its output is handed over.
    assert!(
        support::eventually(Duration::from_secs(5), || {
            chat.executor().snapshot().history.len() == 1
        })
        .await
    );
    assert_eq!(
        chat.executor().snapshot().history[0].priority,
        PRIORITY_CHAT
    );
}

async fn ask(router: &axum::Router, domain: &str) -> Value {
    let (status, _, answer) =
        call(router, LOCAL, "POST", "/api/chat", &body("hello?", domain)).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

fn assert_legacy(answer: &Value, step: &str, kind: &str) {
    assert_eq!(answer["degraded"], true, "{answer}");
    assert_eq!(answer["pipeline"], "legacy", "{answer}");
    assert_eq!(
        answer["error"],
        json!({"step": step, "kind": kind}),
        "{answer}"
    );
    assert_eq!(answer["answer"], legacy_answer(Domain::Support), "{answer}");
    assert!(
        answer["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_llm_down_answers_the_legacy_way_then_its_breaker_spares_it() {
    let sim = start_sim(SimConfig::default()).await;
    let dir = temp_dir("chat-llm-down");
    let chat = chat(&sim, &dir, &policy(&[]), &[]);
    let router = chat.router();
    sim.sim.set_faults(Target::Llm, outage());
    // The first fails on its own (its retry included); the breaker opens
    // at the third failed call, which the second chat makes.
    assert_legacy(&ask(&router, "support").await, "llm", "error");
    assert_legacy(&ask(&router, "support").await, "llm", "circuit_open");
    let calls = sim.sim.stats(Target::Llm).requests;
    assert_eq!(calls, 3, "the breaker opens after 3 failed calls");
    for _ in 0..5 {
        assert_legacy(&ask(&router, "support").await, "llm", "circuit_open");
    }
    assert_eq!(
        sim.sim.stats(Target::Llm).requests,
        calls,
        "the open breaker sends nothing"
    );
    assert!(chat.memory().local_exchanges().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_llm_slow_past_its_timeout_answers_the_legacy_way() {
    let sim = start_sim(SimConfig::default()).await;
    let dir = temp_dir("chat-llm-slow");
    // The shortest timeout the report allows an external call: 2 s.
    let p = policy(&[
        ("timeout = \"20s\"", "timeout = \"2s\""),
        ("attempt_timeout = \"15s\"", "attempt_timeout = \"2s\""),
    ]);
    let chat = chat(&sim, &dir, &p, &[]);
    sim.sim
        .set_faults(Target::Llm, slow(Duration::from_secs(8)));
    let began = std::time::Instant::now();
    let answer = ask(&chat.router(), "support").await;
    assert_legacy(&answer, "llm", "timed_out");
    assert!(
        began.elapsed() < Duration::from_secs(6),
        "{:?}",
        began.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_past_its_deadline_or_a_full_queue_answers_the_legacy_way() {
    let sim = start_sim(SimConfig::default()).await;
    let dir = temp_dir("chat-deadline");
    let p = policy(&[(
        "concurrency = { max_running = 8, max_queued = 1000, timeout = \"25s\", history = 1000 }",
        "concurrency = { max_running = 1, max_queued = 1, timeout = \"1s\", history = 1000 }",
    )]);
    let chat = chat(&sim, &dir, &p, &[]);
    let router = chat.router();
    sim.sim
        .set_faults(Target::Llm, slow(Duration::from_millis(1500)));
    assert_legacy(&ask(&router, "support").await, "pipeline", "timed_out");

    // One running, one waiting: the next are refused at once.
    let p = policy(&[(
        "concurrency = { max_running = 8, max_queued = 1000, timeout = \"25s\", history = 1000 }",
        "concurrency = { max_running = 1, max_queued = 1, timeout = \"25s\", history = 1000 }",
    )]);
    let busy = start_sim(SimConfig::default()).await;
    busy.sim
        .set_faults(Target::Llm, slow(Duration::from_secs(20)));
    let chat = support::chat(&busy, &temp_dir("chat-queue-full"), &p, &[]);
    let router = chat.router();
    let held: Vec<_> = (0..2)
        .map(|_| {
            let router = router.clone();
            tokio::spawn(async move { ask(&router, "support").await })
        })
        .collect();
    assert!(
        support::eventually(Duration::from_secs(10), || {
            let s = chat.executor().snapshot();
            s.running == 1 && s.queued == 1
        })
        .await
    );
    for _ in 0..3 {
        assert_legacy(&ask(&router, "support").await, "pipeline", "queue_full");
    }
    for task in held {
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_or_the_bus_down_skips_their_step_and_the_answer_is_whole() {
    let sim = start_sim(SimConfig::default()).await;
    let dir = temp_dir("chat-skips");
    let p = policy(&[("timeout = \"5s\"", "timeout = \"2s\"")]);
    let closed = closed_port();
    let db = format!("postgres://postgres@127.0.0.1:{closed}/test");
    let nats = format!("nats://127.0.0.1:{closed}");
    let chat = chat(
        &sim,
        &dir,
        &p,
        &[("DATABASE_URL", &db), ("NATS_URL", &nats)],
    );
    let began = std::time::Instant::now();
    let answer = ask(&chat.router(), "research").await;
    assert_eq!(answer["degraded"], false, "{answer}");
    assert_eq!(answer["pipeline"], "cognition");
    let skipped = answer["skipped"].as_array().unwrap();
    let steps: Vec<&str> = skipped
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["memory", "bus"], "{answer}");
    for s in skipped {
        assert!(
            ["error", "timed_out"].contains(&s["kind"].as_str().unwrap()),
            "{answer}"
        );
    }
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    let (status, _, health) = call(&chat.router(), LOCAL, "GET", "/health", "").await;
    assert_eq!(status, 200, "degraded, not down: {health}");
    assert_eq!(health["status"], "degraded", "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_chats_on_eight_slots_keep_priorities_and_arrival_order() {
    let sim = start_sim(SimConfig::default()).await;
    let dir = temp_dir("chat-order");
    let p = policy(&[("history = 1000", "history = 2000")]);
    let chat = chat(&sim, &dir, &p, &[]);
    let router = chat.router();
    sim.sim
        .set_faults(Target::Llm, slow(Duration::from_millis(20)));
    // Something for each domain to summarise.
    for d in ["general", "engineering", "research", "support"] {
        ask(&router, d).await;
    }
    let chats = (0..1_000).map(|i| {
        let router = router.clone();
        let domain = Domain::ALL[i % 4].as_str();
        async move { ask(&router, domain).await }
    });
    let summaries = {
        let chat = chat.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            chat.summarise()
        }
    };
    let (answers, queued) = tokio::join!(futures_util::future::join_all(chats), summaries);
    assert_eq!(queued, 4);
    for a in &answers {
        assert_eq!(a["degraded"], false, "{a}");
    }
    assert!(
        support::eventually(Duration::from_secs(30), || chat
            .executor()
            .snapshot()
            .counters
            .ok
            >= 1_008)
        .await
    );
    let snapshot = chat.executor().snapshot();
    let history = snapshot.history;
    assert_eq!(history.len(), 1_008);
    assert!(snapshot.running <= 8);
    let started = |r: &buttress::executor::TaskRecord| r.started_at.expect("started");
    // The executor reads its clock just before it takes the queue's lock,
    // so two tasks dequeued at once by two threads may carry start times
    // that cross by the time between the two (a preempted thread, on a
    // busy machine); a queue out of order would show as tasks starting
    // hundreds of milliseconds out of turn (1,000 chats of 20 ms on 8
    // slots take 2.5 s).
    let jitter = Duration::from_millis(50);
    // Equal priorities start in arrival (submission) order.
    for priority in [PRIORITY_CHAT, PRIORITY_SUMMARY] {
        let mut same: Vec<_> = history.iter().filter(|r| r.priority == priority).collect();
        same.sort_by_key(|r| r.id);
        for pair in same.windows(2) {
            assert!(
                started(pair[0]) <= started(pair[1]) + jitter,
                "task {} started after task {}",
                pair[0].id,
                pair[1].id
            );
        }
    }
    // No chat waited while a summary started.
    let summaries: Vec<_> = history
        .iter()
        .filter(|r| r.priority == PRIORITY_SUMMARY)
        .collect();
    assert_eq!(summaries.len(), 4);
    let mut waited = 0;
    for s in &summaries {
        for c in history.iter().filter(|r| r.priority == PRIORITY_CHAT) {
            if c.queued_at + jitter < started(s) {
                assert!(
                    started(c) <= started(s) + jitter,
                    "chat {} waited behind summary {}",
                    c.id,
                    s.id
                );
                waited += 1;
            }
        }
    }
    assert!(
        waited > 900,
        "the summaries were queued behind the chats ({waited})"
    );
    let memory = chat.memory().local_exchanges();
    assert_eq!(memory.iter().filter(|e| e.kind == "summary").count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_is_capped_and_a_shutdown_drains_the_executor() {
    let sim = start_sim(SimConfig::default()).await;
    let dir = temp_dir("chat-drain");
    let chat = chat(&sim, &dir, &policy(&[]), &[]);
    let router = chat.router();
    for _ in 0..1_005 {
        ask(&router, "general").await;
    }
    assert_eq!(
        chat.executor().snapshot().history.len(),
        1_000,
        "capped at 1000"
    );
    sim.sim
        .set_faults(Target::Llm, slow(Duration::from_millis(300)));
    let in_flight: Vec<_> = (0..12)
        .map(|_| {
            let router = router.clone();
            tokio::spawn(async move { ask(&router, "general").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let shutdown = chat.shutdown();
    shutdown.trigger();
    let outcome = shutdown.run_without_signals(async {}).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    for task in in_flight {
        let answer = task.await.unwrap();
        assert_eq!(
            answer["degraded"], false,
            "drained, not cancelled: {answer}"
        );
    }
    let answer = ask(&router, "support").await;
    assert_legacy(&answer, "pipeline", "shutting_down");
}
