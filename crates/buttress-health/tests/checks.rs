//! The registry: cached results, one shared probe, timeouts, failures
//! with their causes, and names that cannot be registered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use buttress_health::{
    CheckOptions, CheckStatus, Health, HealthError, Observation, Status, check_fn,
};

/// A check that counts its probes, each taking `took`, up or down as
/// `down` says at the time.
fn counted(took: Duration) -> (impl buttress_health::Check, Arc<AtomicUsize>) {
    let probes = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&probes);
    let check = check_fn(move || {
        n.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(took).await;
            Ok::<_, std::io::Error>(())
        }
    });
    (check, probes)
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_health_requests_runs_one_probe_per_check_per_interval() {
    let health = Health::new();
    let (db, db_probes) = counted(Duration::from_millis(30));
    let (cache, cache_probes) = counted(Duration::from_millis(5));
    health
        .register("postgres", db, CheckOptions::critical())
        .unwrap();
    health
        .register("redis", cache, CheckOptions::non_critical())
        .unwrap();
    let endpoints = buttress_health::HealthEndpoints::new(health.clone());
    for round in 1..=3 {
        let requests: Vec<_> = (0..10_000)
            .map(|_| {
                let endpoints = endpoints.clone();
                tokio::spawn(async move {
                    let request = http::Request::get("/health").body(()).unwrap();
                    tower::ServiceExt::oneshot(endpoints, request)
                        .await
                        .unwrap()
                        .status()
                })
            })
            .collect();
        for r in requests {
            assert_eq!(r.await.unwrap(), http::StatusCode::OK);
        }
        assert_eq!(db_probes.load(Ordering::SeqCst), round);
        assert_eq!(cache_probes.load(Ordering::SeqCst), round);
        // Within the interval, still from the cache.
        health.report().await;
        assert_eq!(db_probes.load(Ordering::SeqCst), round);
        tokio::time::advance(Duration::from_secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_dependency_costs_its_timeout_and_no_more() {
    let health = Health::new();
    health
        .register(
            "graph",
            check_fn(|| async {
                std::future::pending::<()>().await;
                Ok::<_, std::io::Error>(())
            }),
            CheckOptions::critical().timeout(Duration::from_millis(500)),
        )
        .unwrap();
    let start = tokio::time::Instant::now();
    let report = health.report().await;
    assert_eq!(start.elapsed(), Duration::from_millis(500));
    assert_eq!(report.status, Status::Unhealthy);
    assert_eq!(report.http_status(), 503);
    let graph = &report.checks[0];
    assert_eq!(graph.status, CheckStatus::Down);
    assert_eq!(graph.message.as_deref(), Some("no answer within 500ms"));
    assert_eq!(graph.took, Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_does_not_cancel_the_probe_for_the_others() {
    let health = Health::new();
    let (slow, probes) = counted(Duration::from_secs(1));
    health
        .register("llm", slow, CheckOptions::non_critical())
        .unwrap();
    // The first caller leaves before the probe answers.
    let first = tokio::time::timeout(Duration::from_millis(100), health.report()).await;
    assert!(first.is_err());
    let report = health.report().await;
    assert_eq!(report.checks[0].status, CheckStatus::Up);
    assert_eq!(probes.load(Ordering::SeqCst), 1);
}

#[derive(Debug, thiserror::Error)]
#[error("cannot reach the database")]
struct Unreachable(#[source] std::io::Error);

#[tokio::test(start_paused = true)]
async fn a_failed_check_reports_its_error_with_its_causes() {
    let health = Health::new();
    health
        .register(
            "postgres",
            check_fn(|| async {
                Err::<(), _>(Unreachable(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connection refused",
                )))
            }),
            CheckOptions::critical(),
        )
        .unwrap();
    let report = health.report().await;
    assert_eq!(
        report.checks[0].message.as_deref(),
        Some("cannot reach the database: connection refused")
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_check_is_down_and_the_next_probe_runs() {
    let health = Health::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    health
        .register(
            "flaky",
            check_fn(move || {
                let n = c.fetch_add(1, Ordering::SeqCst);
                async move {
                    assert!(n > 0, "first probe panics");
                    Ok::<_, std::io::Error>(())
                }
            }),
            CheckOptions::critical(),
        )
        .unwrap();
    let report = health.report().await;
    assert_eq!(report.checks[0].status, CheckStatus::Down);
    assert_eq!(
        report.checks[0].message.as_deref(),
        Some("the check panicked")
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(health.report().await.status, Status::Healthy);
}

#[tokio::test(start_paused = true)]
async fn since_is_when_the_status_last_changed() {
    let health = Health::new();
    let down = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&down);
    health
        .register(
            "redis",
            check_fn(move || {
                let is_down = d.load(Ordering::SeqCst) == 1;
                async move {
                    if is_down {
                        Ok(Observation::down("PING timed out"))
                    } else {
                        Ok::<_, std::io::Error>(Observation::up())
                    }
                }
            }),
            CheckOptions::non_critical().interval(Duration::ZERO),
        )
        .unwrap();
    let first = health.report().await.checks[0].clone();
    let again = health.report().await.checks[0].clone();
    assert_eq!(again.since, first.since, "still up: the same since");
    assert!(again.checked_at >= first.checked_at);
    assert_eq!(first.since, first.checked_at, "up since its first probe");
    down.store(1, Ordering::SeqCst);
    let changed = health.report().await;
    assert_eq!(changed.status, Status::Degraded);
    let redis = &changed.checks[0];
    assert_eq!(redis.since, redis.checked_at, "down since this probe");
    assert!(redis.since >= again.checked_at);
    let still = health.report().await.checks[0].clone();
    assert_eq!(still.since, redis.since);
}

#[test]
fn names_that_cannot_be_registered_are_typed_errors() {
    let health = Health::new();
    let ok = || check_fn(|| async { Ok::<_, std::io::Error>(()) });
    for bad in ["", "has space", "quote\"", &"x".repeat(101)] {
        assert_eq!(
            health.register(bad, ok(), CheckOptions::critical()),
            Err(HealthError::Name(bad.to_owned()))
        );
    }
    for reserved in [
        "status",
        "checks",
        "ready",
        "uptime_seconds",
        "version",
        "startup",
    ] {
        assert_eq!(
            health.register(reserved, ok(), CheckOptions::critical()),
            Err(HealthError::Reserved(reserved.to_owned()))
        );
    }
    health
        .register("breaker:llm", ok(), CheckOptions::critical())
        .unwrap();
    assert_eq!(
        health.register("breaker:llm", ok(), CheckOptions::critical()),
        Err(HealthError::Duplicate("breaker:llm".into()))
    );
    assert_eq!(
        health.register("db", ok(), CheckOptions::critical().timeout(Duration::ZERO)),
        Err(HealthError::ZeroTimeout("db".into()))
    );
    let e = HealthError::Reserved("status".into());
    assert_eq!(
        e.to_string(),
        "check name \"status\" is a key of the report itself; choose another"
    );
    assert_eq!(health.names(), ["breaker:llm"]);
}

#[tokio::test(start_paused = true)]
async fn each_check_publishes_its_status_and_probe_time() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let health = Health::new();
    metrics::with_local_recorder(&recorder, || {
        for (name, status) in [("postgres", 0), ("ollama", 1), ("redis", 2)] {
            let check = check_fn(move || async move {
                Ok::<_, std::io::Error>(match status {
                    0 => Observation::up(),
                    1 => Observation::degraded("slow"),
                    _ => Observation::down("refused"),
                })
            });
            health
                .register(name, check, CheckOptions::non_critical())
                .unwrap();
        }
    });
    health.report().await;
    let mut gauges = Vec::new();
    let mut histograms = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let check = key
            .key()
            .labels()
            .find(|l| l.key() == "check")
            .map(|l| l.value().to_owned())
            .expect("a check label");
        match (key.key().name(), value) {
            ("buttress_health_status", DebugValue::Gauge(g)) => {
                gauges.push((check, g.into_inner()))
            }
            ("buttress_health_probe_seconds", DebugValue::Histogram(h)) => histograms += h.len(),
            other => panic!("unexpected metric {other:?}"),
        }
    }
    gauges.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        gauges,
        [
            ("ollama".to_owned(), 0.5),
            ("postgres".to_owned(), 1.0),
            ("redis".to_owned(), 0.0)
        ]
    );
    assert_eq!(histograms, 3);
}
