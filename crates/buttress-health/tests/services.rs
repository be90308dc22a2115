//! The PostgreSQL and Redis checks against the real servers at
//! `DATABASE_URL` and `REDIS_URL`. Skipped, saying why, when none answers,
//! unless `BUTTRESS_REQUIRE_SERVICES=1` (as in CI), which makes that a
//! failure.
#![cfg(all(feature = "postgres", feature = "redis"))]

mod support;

use std::time::Duration;

use buttress_health::{CheckOptions, CheckStatus, Health, Status, checks};
use buttress_test_support::services;
use support::{closed_port, one, silent};

async fn postgres_url() -> Option<String> {
    let url = services::database_url();
    match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok(_) => Some(url),
        Err(e) => {
            services::unavailable("PostgreSQL", "DATABASE_URL", &url, e);
            None
        }
    }
}

async fn redis_url() -> Option<String> {
    let url = services::redis_url();
    let reachable = async {
        let client = redis::Client::open(url.as_str())?;
        let mut c = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut c).await
    };
    match reachable.await {
        Ok(_) => Some(url),
        Err(e) => {
            services::unavailable("Redis", "REDIS_URL", &url, e);
            None
        }
    }
}

#[tokio::test]
async fn postgres_is_up_and_one_connection_serves_every_probe() {
    let Some(url) = postgres_url().await else {
        return;
    };
    // A name of its own, so that other tests' checks are not counted.
    let name = format!("buttress-health-test-{}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    let check = checks::postgres(&format!("{url}{sep}application_name={name}")).expect("valid");
    let health = Health::new();
    health
        .register(
            "postgres",
            check,
            CheckOptions::critical().interval(Duration::ZERO),
        )
        .expect("valid");
    for _ in 0..5 {
        let report = health.report().await;
        assert_eq!(
            report.status,
            Status::Healthy,
            "{:?}",
            report.checks[0].message
        );
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&name],
        )
        .await
        .expect("query");
    assert_eq!(row.get::<_, i64>(0), 1, "one connection for five probes");
}

#[tokio::test]
async fn redis_is_up() {
    let Some(url) = redis_url().await else {
        return;
    };
    let health = Health::new();
    health
        .register(
            "redis",
            checks::redis(&url).expect("valid"),
            CheckOptions::non_critical().interval(Duration::ZERO),
        )
        .expect("valid");
    for _ in 0..3 {
        let report = health.report().await;
        assert_eq!(
            report.checks[0].status,
            CheckStatus::Up,
            "{:?}",
            report.checks[0].message
        );
    }
}

#[tokio::test]
async fn a_wrong_database_is_down_with_the_servers_message() {
    let Some(url) = postgres_url().await else {
        return;
    };
    let Some(base) = url.rsplit_once('/').map(|(b, _)| b.to_owned()) else {
        return;
    };
    let check = checks::postgres(&format!("{base}/no_such_database_here")).expect("valid");
    let health = Health::new();
    health
        .register("postgres", check, CheckOptions::critical())
        .expect("valid");
    let report = health.report().await;
    assert_eq!(report.status, Status::Unhealthy);
    let message = report.checks[0].message.clone().expect("an error");
    assert!(message.contains("no_such_database_here"), "{message}");
}

// These need no server: a port nothing listens on, and a listener that
// accepts and never answers. Paused time: when every task waits on a
// socket, tokio moves the clock to the next timer, so a timeout costs no
// real time.

#[tokio::test(start_paused = true)]
async fn postgres_that_never_answers_is_cut_at_its_timeout() {
    let (_listener, address) = silent();
    let check = checks::postgres(&format!("postgres://postgres@{address}/test")).expect("valid");
    let (status, message, took) = one("postgres", check, Duration::from_millis(500)).await;
    assert_eq!(status, Status::Unhealthy);
    assert_eq!(message.as_deref(), Some("no answer within 500ms"));
    assert_eq!(took, Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn redis_that_never_answers_is_cut_at_its_timeout() {
    let (_listener, address) = silent();
    let check = checks::redis(&format!("redis://{address}")).expect("valid");
    let (status, message, _) = one("redis", check, Duration::from_millis(500)).await;
    assert_eq!(status, Status::Unhealthy);
    assert_eq!(message.as_deref(), Some("no answer within 500ms"));
}

#[tokio::test]
async fn unreachable_postgres_and_redis_are_down_with_their_errors() {
    let port = closed_port();
    let health = Health::new();
    health
        .register(
            "postgres",
            checks::postgres(&format!("postgres://postgres@127.0.0.1:{port}/test")).expect("valid"),
            CheckOptions::critical(),
        )
        .expect("valid");
    health
        .register(
            "redis",
            checks::redis(&format!("redis://127.0.0.1:{port}")).expect("valid"),
            CheckOptions::non_critical(),
        )
        .expect("valid");
    let report = health.report().await;
    assert_eq!(report.status, Status::Unhealthy);
    for check in &report.checks {
        assert_eq!(check.status, CheckStatus::Down);
        let message = check.message.as_deref().expect("an error");
        assert!(
            message.to_lowercase().contains("refused"),
            "{}: {message}",
            check.name
        );
    }
}
