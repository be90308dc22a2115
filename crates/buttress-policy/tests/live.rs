//! Live changes: state carries over, a bad document changes nothing,
//! versions are kept and rolled back, and the running stack follows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use buttress_breaker::State;
use buttress_policy::{Format, Policy, PolicyDocument, RollbackError};
use tower::{ServiceExt, service_fn};

const BASE: &str = r#"
[service]
name = "knowledge-api"
inbound = { rate = { count = 2, per = "1h" } }
backpressure = { watermarks = { high = 100, low = 50 } }

[dependencies.llm]
timeout = "30s"
retry = { max_attempts = 3, budget = { kind = "none" } }
rate_limit = { count = 5, per = "1h" }
concurrency = { max_running = 1, max_queued = 10 }
breaker = { consecutive_failures = 1, failure_rate_threshold = 0.5, open = { kind = "fixed", duration = "120s" } }

[dependencies.embeddings]
critical = false
timeout = "5s"
"#;

fn base() -> Policy {
    Policy::from_text(BASE, Format::Toml).unwrap_or_else(|e| panic!("{e}"))
}

/// The breaker in front of the LLM.
fn llm_breaker(policy: &Policy) -> buttress_breaker::CircuitBreaker {
    let llm = policy.dependency("llm").expect("declared");
    llm.breaker().expect("declared").clone()
}

/// `BASE` with `from` replaced by `to` (once, and it must be there).
fn edited(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from} is not in the base document");
    BASE.replacen(from, to, 1)
}

#[tokio::test]
async fn an_open_breaker_stays_open_and_a_spent_limit_stays_spent() {
    let policy = base();
    let llm = policy.dependency("llm").expect("declared");
    let breaker = llm.breaker().expect("declared").clone();
    breaker.try_acquire().expect("closed").failure();
    assert_eq!(breaker.state(), State::Open);
    let limiter = llm.limiter().expect("declared").clone();
    for _ in 0..5 {
        limiter.check().expect("within the burst");
    }
    limiter.check().expect_err("spent");

    let text = edited("count = 5, per = \"1h\"", "count = 6, per = \"1h\"")
        .replace("duration = \"120s\"", "duration = \"60s\"");
    policy
        .apply_text(&text, Format::Toml, "test")
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(breaker.state(), State::Open, "still open");
    let refused = breaker.try_acquire().expect_err("open");
    assert!(refused.retry_after().expect("a wait") > Duration::from_secs(60));
    // The five tokens taken stay taken: a burst of six leaves one, not a
    // fresh burst.
    limiter.check().expect("the sixth token");
    limiter.check().expect_err("the debt is kept");
    assert_eq!(limiter.quota().burst(), 6);
}

#[tokio::test]
async fn queued_calls_stay_queued_and_more_slots_start_them() {
    let policy = base();
    let llm = policy.dependency("llm").expect("declared");
    let started = Arc::new(AtomicU32::new(0));
    let (release, gate) = tokio::sync::watch::channel(false);
    let svc = llm.service(service_fn({
        let started = started.clone();
        move |_: u32| {
            let started = started.clone();
            let mut gate = gate.clone();
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                let _ = gate.wait_for(|open| *open).await;
                Ok::<_, std::io::Error>(())
            }
        }
    }));
    let calls: Vec<_> = (0..3)
        .map(|i| tokio::spawn(svc.clone().oneshot(i)))
        .collect();
    settle().await;
    let executor = llm.executor().expect("declared");
    assert_eq!(
        (executor.snapshot().running, executor.snapshot().queued),
        (1, 2)
    );

    let text = edited("max_running = 1", "max_running = 3");
    policy
        .apply_text(&text, Format::Toml, "test")
        .unwrap_or_else(|e| panic!("{e}"));
    settle().await;
    assert_eq!(
        started.load(Ordering::SeqCst),
        3,
        "the queued calls started"
    );
    release.send_replace(true);
    for c in calls {
        c.await.expect("joined").expect("served");
    }
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_document_with_any_problem_changes_nothing() {
    let policy = base();
    let before = policy.document();
    // A valid new limit and threshold, next to an invalid retry.
    let text = edited("count = 5, per = \"1h\"", "count = 50, per = \"1h\"")
        .replace("consecutive_failures = 1", "consecutive_failures = 4")
        .replace("max_attempts = 3", "max_attempts = 0");
    let e = policy
        .apply_text(&text, Format::Toml, "test")
        .expect_err("max_attempts = 0");
    assert_eq!(e.problems().len(), 1, "{e}");
    assert_eq!(
        e.problems()[0].path.to_string(),
        "dependencies.llm.retry.max_attempts"
    );
    assert_eq!(e.problems()[0].line, Some(9));
    assert_eq!(policy.document(), before);
    assert_eq!(policy.current().version, 1);
}

#[tokio::test]
async fn changes_the_running_primitives_cannot_take_are_refused_with_their_lines() {
    let policy = base();
    let before = policy.document();
    let text = edited("[dependencies.embeddings]\ncritical = false\ntimeout = \"5s\"\n", "")
        .replace("timeout = \"30s\"\n", "")
        .replace(
            "retry = { max_attempts = 3, budget = { kind = \"none\" } }",
            "retry = { max_attempts = 3 }",
        )
        .replace(
            "consecutive_failures = 1, failure_rate_threshold = 0.5",
            "consecutive_failures = 1, failure_rate_threshold = 0.5, window = { kind = \"count\", size = 20 }, minimum_calls = 10",
        )
        .replace("count = 5, per = \"1h\"", "count = 50, per = \"1h\"");
    let e = policy
        .apply_text(&text, Format::Toml, "test")
        .expect_err("four changes need a restart");
    let seen: Vec<String> = e
        .problems()
        .iter()
        .map(|p| format!("{} @ {:?}", p.path, p.line))
        .collect();
    assert_eq!(
        seen,
        [
            "dependencies.embeddings @ Some(7)",
            "dependencies.llm.timeout @ Some(7)",
            "dependencies.llm.retry.budget @ Some(8)",
            "dependencies.llm.breaker.window @ Some(11)",
        ],
        "{e}"
    );
    assert!(
        e.to_string().contains(
            "dependencies.llm.timeout: removing a layer of a running stack needs a restart, line 7"
        ),
        "{e}"
    );
    assert_eq!(
        policy.document(),
        before,
        "the valid new limit is not applied either"
    );
}

#[tokio::test]
async fn a_new_dependency_is_built_and_a_clone_of_the_policy_sees_it() {
    let policy = base();
    let clone = policy.clone();
    let text = format!(
        "{BASE}\n[dependencies.vector-store]\ntimeout = \"5s\"\nbreaker = {{ consecutive_failures = 5 }}\n"
    );
    policy
        .apply_text(&text, Format::Toml, "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let store = clone.dependency("vector-store").expect("added");
    assert_eq!(store.timeout(), Some(Duration::from_secs(5)));
    assert_eq!(clone.dependencies().len(), 3);
}

#[tokio::test]
async fn versions_are_kept_with_who_applied_them_and_can_be_rolled_back() {
    let doc = PolicyDocument::parse(BASE, Format::Toml).expect("valid");
    let policy = Policy::with_history(doc, 3).expect("valid");
    let mut seen = policy.subscribe();
    for (n, by) in [(6, "alice"), (7, "bob"), (8, "file policy.toml")] {
        let text = edited("count = 5, per", &format!("count = {n}, per"));
        policy
            .apply_text(&text, Format::Toml, by)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(seen.has_changed().expect("open"));
    assert_eq!(seen.borrow_and_update().version, 4);
    let history = policy.history();
    let kept: Vec<(u64, &str)> = history.iter().map(|a| (a.version, a.by.as_str())).collect();
    assert_eq!(kept, [(2, "alice"), (3, "bob"), (4, "file policy.toml")]);
    assert!(matches!(
        policy.rollback(1, "carol"),
        Err(RollbackError::NotKept(1))
    ));
    let back = policy.rollback(2, "carol").expect("kept");
    assert_eq!(
        (back.version, back.by.as_str()),
        (5, "carol (rollback to version 2)")
    );
    let limiter = policy
        .dependency("llm")
        .expect("declared")
        .limiter()
        .expect("declared")
        .clone();
    assert_eq!(limiter.quota().burst(), 6);
}

#[tokio::test]
async fn the_inbound_limit_and_its_exempt_networks_change_live() {
    let policy = base();
    let inbound = policy.inbound().expect("declared").clone();
    let client = "203.0.113.7".parse().expect("an address");
    let office = "198.51.100.20".parse().expect("an address");
    for _ in 0..2 {
        inbound.check(&client).expect("within the burst");
    }
    inbound.check(&client).expect_err("spent");
    inbound.check(&office).expect("a fresh client");
    inbound.check(&office).expect("a fresh client");
    inbound.check(&office).expect_err("spent");

    let text = edited(
        "inbound = { rate = { count = 2, per = \"1h\" } }",
        "inbound = { rate = { count = 3, per = \"1h\" }, exempt = [\"127.0.0.0/8\", \"198.51.100.0/24\"] }",
    );
    policy
        .apply_text(&text, Format::Toml, "test")
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..10 {
        inbound.check(&office).expect("exempt now");
    }
    inbound
        .check(&client)
        .expect("one more token in a burst of 3");
    inbound.check(&client).expect_err("spent again");
    let doc = policy.document();
    let declared = doc.service.inbound.expect("declared");
    assert_eq!(declared.exempt, ["127.0.0.0/8", "198.51.100.0/24"]);
}

#[tokio::test]
async fn new_watermarks_judge_the_current_level() {
    let policy = base();
    let gauge = policy.backpressure().expect("declared").clone();
    gauge.add(80);
    assert!(!gauge.is_paused());
    let text = edited("high = 100, low = 50", "high = 70, low = 30");
    policy
        .apply_text(&text, Format::Toml, "test")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(gauge.is_paused());
}

#[tokio::test(start_paused = true)]
async fn the_running_stack_follows_a_new_timeout() {
    let policy = base();
    let embeddings = policy.dependency("embeddings").expect("declared");
    let hangs = service_fn(|()| std::future::pending::<Result<(), std::io::Error>>());
    let svc = embeddings.service(hangs);
    let started = tokio::time::Instant::now();
    svc.clone().oneshot(()).await.expect_err("timed out");
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    let text = edited("timeout = \"5s\"", "timeout = \"2s\"");
    policy
        .apply_text(&text, Format::Toml, "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let started = tokio::time::Instant::now();
    svc.oneshot(()).await.expect_err("timed out");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

/// Four threads drive a limiter and a breaker while another applies 200
/// documents back to back (the issue's "every 10 ms for 2 s", counted in
/// changes rather than slept). Each version k sets the limiter to
/// `1000 + k` per second with a burst of `k + 1`, and the breaker to
/// `k % 7 + 1` failures in a row with an open period of `k + 1` seconds:
/// every observation must be one whole version, never a mix.
#[test]
fn changes_under_load_are_never_seen_half_applied() {
    const VERSIONS: u64 = 200;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let doc = |k: u64| {
        format!(
            "[dependencies.llm]\nrate_limit = {{ count = {}, per = \"1s\", burst = {} }}\nbreaker = {{ consecutive_failures = {}, failure_rate_threshold = 0.5, open = {{ kind = \"fixed\", duration = \"{}s\" }} }}\n",
            1000 + k,
            k + 1,
            k % 7 + 1,
            k + 1
        )
    };
    let policy = runtime.block_on(async {
        Policy::from_text(&doc(0), Format::Toml).unwrap_or_else(|e| panic!("{e}"))
    });
    let llm = policy.dependency("llm").expect("declared");
    let done = Arc::new(AtomicBool::new(false));
    let observed = Arc::new(AtomicU32::new(0));
    let drivers: Vec<_> = (0..4)
        .map(|t| {
            let (llm, done, observed) = (llm.clone(), done.clone(), observed.clone());
            std::thread::spawn(move || {
                let limiter = llm.limiter().expect("declared");
                let breaker = llm.breaker().expect("declared");
                let mut i = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let q = limiter.quota();
                    let k = u64::from(q.burst()) - 1;
                    let per = Duration::from_secs(1).as_nanos() as u64;
                    let interval = per.div_ceil(1000 + k);
                    assert_eq!(
                        q.interval(),
                        Duration::from_nanos(interval),
                        "quota of version {k} mixed"
                    );
                    let c = breaker.config();
                    let n = u64::from(c.consecutive_failures.expect("set"));
                    let open = match c.open {
                        buttress_breaker::OpenDuration::Fixed { duration } => duration.as_secs(),
                        other => panic!("{other:?}"),
                    };
                    assert_eq!(
                        n,
                        (open - 1) % 7 + 1,
                        "breaker of version {} mixed",
                        open - 1
                    );
                    let _ = limiter.check();
                    if let Ok(p) = breaker.try_acquire() {
                        if (i + t).is_multiple_of(3) {
                            p.failure()
                        } else {
                            p.success()
                        }
                    }
                    i += 1;
                    observed.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for k in 1..=VERSIONS {
        policy
            .apply_text(&doc(k), Format::Toml, "load test")
            .unwrap_or_else(|e| panic!("version {k}: {e}"));
    }
    done.store(true, Ordering::Relaxed);
    for d in drivers {
        d.join().expect("no driver panicked");
    }
    assert!(observed.load(Ordering::Relaxed) > 0);
    assert_eq!(policy.current().version, VERSIONS + 1);
    assert_eq!(
        llm.limiter().expect("declared").quota().burst() as u64,
        VERSIONS + 1
    );
}

#[tokio::test]
async fn breaker_changes_and_new_versions_are_events() {
    use buttress_policy::PolicyEvent;
    let policy = base();
    let mut events = policy.events();
    let breaker = llm_breaker(&policy);
    breaker.try_acquire().expect("closed").success();
    breaker.try_acquire().expect("closed").failure();
    match events.try_recv().expect("an event") {
        PolicyEvent::Breaker { name, from, to, .. } => {
            assert_eq!(
                (name.as_str(), from, to),
                ("llm", State::Closed, State::Open)
            );
        }
        other => panic!("{other:?}"),
    }
    breaker.reset();
    assert!(matches!(
        events.try_recv(),
        Ok(PolicyEvent::Breaker {
            to: State::Closed,
            ..
        })
    ));
    policy
        .apply_text(&edited("count = 5,", "count = 7,"), Format::Toml, "alice")
        .expect("valid");
    assert_eq!(
        events.try_recv().expect("an event"),
        PolicyEvent::Applied {
            version: 2,
            by: "alice".to_owned()
        }
    );
    assert!(events.try_recv().is_err(), "nothing else");
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_loses_the_oldest_and_is_told_how_many() {
    use tokio::sync::broadcast::error::TryRecvError;
    let policy = base();
    let mut slow = policy.events();
    let breaker = llm_breaker(&policy);
    let changes = buttress_policy::EVENTS_BUFFERED + 10;
    for _ in 0..changes / 2 {
        breaker.force_open();
        breaker.reset();
    }
    match slow.try_recv() {
        Err(TryRecvError::Lagged(n)) => assert_eq!(n, 10),
        other => panic!("{other:?}"),
    }
    let mut kept = 0;
    while slow.try_recv().is_ok() {
        kept += 1;
    }
    assert_eq!(kept, buttress_policy::EVENTS_BUFFERED);
}

#[tokio::test]
async fn a_new_fallback_or_cache_needs_a_restart() {
    let text = format!("{BASE}fallback = {{ on = [\"timed_out\"] }}\ncache = {{ ttl = \"1m\" }}\n");
    let policy = Policy::from_text(&text, Format::Toml).unwrap_or_else(|e| panic!("{e}"));
    for (from, to, path) in [
        (
            "on = [\"timed_out\"]",
            "on = [\"error\"]",
            "dependencies.embeddings.fallback",
        ),
        (
            "ttl = \"1m\"",
            "ttl = \"2m\"",
            "dependencies.embeddings.cache",
        ),
    ] {
        let e = policy
            .apply_text(&text.replace(from, to), Format::Toml, "test")
            .expect_err("needs a restart");
        assert_eq!(e.problems()[0].path.to_string(), path, "{e}");
    }
    policy
        .apply_text(&text, Format::Toml, "test")
        .expect("the same fallback and cache");
}

#[tokio::test]
async fn a_dependency_shows_its_primitives() {
    let policy = Policy::from_text(&format!("{BASE}attempt_timeout = \"2s\"\n"), Format::Toml)
        .unwrap_or_else(|e| panic!("{e}"));
    let llm = policy.dependency("llm").expect("declared");
    assert_eq!(llm.name(), "llm");
    assert_eq!(llm.retry().expect("declared").max_attempts(), 3);
    assert_eq!(llm.timeout(), Some(Duration::from_secs(30)));
    assert!(llm.is_critical());
    let embeddings = policy.dependency("embeddings").expect("declared");
    assert_eq!(embeddings.attempt_timeout(), Some(Duration::from_secs(2)));
    assert!(!embeddings.is_critical());
    assert!(embeddings.retry().is_none() && embeddings.breaker().is_none());
}

#[tokio::test]
async fn a_new_shed_needs_a_restart() {
    let text = format!("{BASE}shed = {{ algorithm = \"aimd\", max = 50 }}\n");
    let policy = Policy::from_text(&text, Format::Toml).unwrap_or_else(|e| panic!("{e}"));
    let limit = policy
        .dependency("embeddings")
        .expect("declared")
        .shed()
        .expect("declared")
        .limit();
    assert_eq!(limit, 20, "AIMD starts at 20");
    let e = policy
        .apply_text(&text.replace("max = 50", "max = 60"), Format::Toml, "test")
        .expect_err("needs a restart");
    assert_eq!(
        e.problems()[0].path.to_string(),
        "dependencies.embeddings.shed"
    );
    assert!(
        e.problems()[0].message.contains("the limit it learned"),
        "{e}"
    );
}
