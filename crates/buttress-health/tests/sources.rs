//! Breakers, gauges and executors as checks: what each state reports, and
//! breakers that join the report as they are added to a registry.
#![cfg(all(feature = "breaker", feature = "pressure", feature = "executor"))]

use std::time::Duration;

use buttress_breaker::{CircuitBreaker, Registry};
use buttress_health::{CheckOptions, CheckStatus, Health, Status};

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

#[test]
fn breakers_added_to_a_registry_join_the_report_once() {
    paused().block_on(async {
        {
            let registry = Registry::new();
            let db = CircuitBreaker::builder("postgres")
                .registry(&registry)
                .build()
                .expect("valid");
            let health = Health::new();
            health.register_breakers(&registry, |name| match name {
                "postgres" => CheckOptions::critical(),
                _ => CheckOptions::non_critical(),
            });
            assert_eq!(health.names(), ["breaker:postgres"]);
            let llm = CircuitBreaker::builder("llm")
                .consecutive_failures(1)
                .registry(&registry)
                .build()
                .expect("valid");
            for _ in 0..3 {
                assert_eq!(health.report().await.status, Status::Healthy);
                tokio::time::advance(Duration::from_secs(1)).await;
            }
            assert_eq!(health.names(), ["breaker:postgres", "breaker:llm"]);

            llm.try_acquire().expect("closed").failure();
            let report = health.report().await;
            assert_eq!(report.status, Status::Degraded, "the LLM is not critical");
            let entry = &report.to_json()["checks"]["breaker:llm"];
            assert_eq!(entry["detail"]["state"], "open");
            assert_eq!(entry["error"], "open: calls are refused");
            tokio::time::advance(Duration::from_secs(1)).await;
            db.force_open();
            assert_eq!(health.report().await.status, Status::Unhealthy);
        }
    });
}

#[tokio::test(start_paused = true)]
async fn a_half_open_breaker_is_degraded_and_a_disabled_one_up() {
    let breaker = CircuitBreaker::builder("embeddings")
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .build()
        .expect("valid");
    let health = Health::new();
    health
        .register_breaker(&breaker, CheckOptions::critical().interval(Duration::ZERO))
        .expect("valid");
    breaker.try_acquire().expect("closed").failure();
    assert_eq!(health.report().await.status, Status::Unhealthy);
    tokio::time::advance(Duration::from_secs(10)).await;
    // The open period is over: the next call will probe.
    let report = health.report().await;
    assert_eq!(report.checks[0].status, CheckStatus::Degraded);
    assert_eq!(
        report.checks[0].message.as_deref(),
        Some("open period over: the next call probes the dependency")
    );
    let probe = breaker.try_acquire().expect("the probe");
    let report = health.report().await;
    assert_eq!(report.checks[0].status, CheckStatus::Degraded);
    assert_eq!(
        report.checks[0].message.as_deref(),
        Some("half-open: probing the dependency again")
    );
    assert_eq!(report.status, Status::Degraded, "probing is not down");
    probe.success();
    breaker.disable();
    assert_eq!(health.report().await.checks[0].status, CheckStatus::Up);
}

#[tokio::test(start_paused = true)]
async fn a_paused_gauge_is_degraded_with_its_level() {
    let gauge = buttress_pressure::Gauge::builder(
        "telemetry",
        buttress_pressure::Watermarks::new(100, 50).expect("valid"),
    )
    .build()
    .expect("valid");
    let health = Health::new();
    health.register_gauge(&gauge).expect("valid");
    gauge.set(120);
    let report = health.report().await;
    assert_eq!(report.status, Status::Degraded);
    let entry = &report.to_json()["checks"]["gauge:telemetry"];
    assert_eq!(entry["critical"], false);
    assert_eq!(entry["detail"]["level"], 120);
    assert_eq!(entry["detail"]["paused"], true);
    tokio::time::advance(Duration::from_secs(1)).await;
    gauge.set(40);
    assert_eq!(health.report().await.status, Status::Healthy);
}

#[tokio::test(start_paused = true)]
async fn an_executor_reports_its_queue_and_is_degraded_once_shut_down() {
    use buttress_executor::{Executor, ExecutorConfig};
    let executor = Executor::new("chat", ExecutorConfig::default().max_running(1)).expect("valid");
    let health = Health::new();
    health.register_executor(&executor).expect("valid");
    let _running = executor
        .submit(0, std::future::pending::<()>())
        .expect("room");
    let _queued = executor.submit(0, async {}).expect("room");
    tokio::task::yield_now().await;
    let report = health.report().await;
    assert_eq!(report.status, Status::Healthy);
    let detail = &report.to_json()["checks"]["executor:chat"]["detail"];
    assert_eq!(
        (detail["running"].as_u64(), detail["queued"].as_u64()),
        (Some(1), Some(1))
    );
    executor.shutdown(Duration::ZERO).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    let report = health.report().await;
    assert_eq!(report.checks[0].status, CheckStatus::Degraded);
    assert_eq!(report.status, Status::Degraded);
}
