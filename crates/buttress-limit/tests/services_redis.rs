//! Against the real Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`).
//! Skipped, saying why, when no Redis answers, unless
//! `BUTTRESS_REQUIRE_SERVICES=1` (as in CI), which makes that a failure.
#![cfg(feature = "redis")]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Command;
use std::time::Duration;

use buttress_breaker::State;
use buttress_limit::{OnRedisFailure, Quota, RedisRateLimiter};

use buttress_test_support::services;

fn redis_url() -> Option<String> {
    let url = services::redis_url();
    let reachable = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    match reachable {
        Ok(_) => Some(url),
        Err(e) => {
            services::unavailable("Redis", "REDIS_URL", &url, e);
            None
        }
    }
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{name}-{}-{nanos}", std::process::id())
}

const CHILD: &str = "BUTTRESS_LIMIT_CHILD";

/// 50 tokens an hour, 50 at once: over a test's few seconds, exactly 50.
fn quota() -> Quota {
    Quota::per_hour(50).expect("valid")
}

/// Connects (a check of a key of its own), calls `start` (which returns
/// when the other instance is connected too), then makes `n` checks of the
/// shared key; returns how many were admitted.
async fn hammer(url: &str, name: &str, n: usize, start: impl FnOnce()) -> usize {
    let l = RedisRateLimiter::with_options(
        url,
        name,
        quota(),
        Duration::from_secs(2),
        OnRedisFailure::FailClosed,
    )
    .expect("valid");
    l.check(&format!("warm-up-{}", std::process::id()))
        .await
        .expect("connected");
    start();
    let mut admitted = 0;
    for _ in 0..n {
        if l.check("shared-key").await.is_ok() {
            admitted += 1;
        }
    }
    admitted
}

/// Run as a child process by `two_processes_share_one_quota`; does nothing
/// otherwise.
#[tokio::test]
async fn child_process_checks() {
    let Ok(name) = std::env::var(CHILD) else {
        return;
    };
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    // Connected: say so, and start when the parent says go.
    let admitted = hammer(&url, &name, 100, || {
        println!("ready");
        let mut go = String::new();
        std::io::stdin().read_line(&mut go).expect("read go");
    })
    .await;
    println!("admitted={admitted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_quota() {
    let Some(url) = redis_url() else { return };
    let name = unique("two-procs");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_process_checks",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &name)
        .env("REDIS_URL", &url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the second instance");
    // Both connected before either checks the shared key: a child still
    // starting while the parent spends the whole quota proves nothing.
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mine = hammer(&url, &name, 100, || {
        // libtest's "test child_process_checks ... " may begin the line.
        let mut line = String::new();
        while !line.trim_end().ends_with("ready") {
            line.clear();
            let n = stdout.read_line(&mut line).expect("read the child");
            assert!(n > 0, "the child ended before it was ready");
        }
        writeln!(stdin, "go").expect("tell the child to go");
    })
    .await;
    let mut text = String::new();
    stdout.read_to_string(&mut text).expect("read the child");
    assert!(
        child.wait().expect("child finished").success(),
        "child failed"
    );
    let theirs: usize = text
        .lines()
        .find_map(|l| l.split("admitted=").nth(1))
        .and_then(|n| n.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("child printed no count: {text}"));
    let total = mine + theirs;
    assert!(
        (49..=51).contains(&total),
        "admitted {mine} + {theirs} = {total}, want 50 ± 1"
    );
    assert!(
        theirs > 0 && mine > 0,
        "both instances drew from the quota: {mine} and {theirs}"
    );
}

#[tokio::test]
async fn keys_expire_once_their_bucket_is_full_again() {
    let Some(url) = redis_url() else { return };
    let name = unique("ttl");
    let l =
        RedisRateLimiter::new(&url, &name, Quota::per_second(10).expect("valid")).expect("valid");
    l.check("k").await.expect("allowed");
    let mut c = redis::Client::open(url.as_str())
        .expect("url")
        .get_connection()
        .expect("connect");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("buttress:limit:{name}:k"))
        .query(&mut c)
        .expect("pttl");
    assert!((1..=200).contains(&ttl), "ttl {ttl} ms");
    // A cost above the burst can never be admitted.
    let e = l.check_n("k", 11).await.expect_err("above the burst");
    assert_eq!(e.retry_after(), None);
}

#[tokio::test]
async fn an_unreachable_redis_fails_open_or_closed_and_trips_the_breaker() {
    // Port 1 on loopback: connection refused at once.
    let url = "redis://127.0.0.1:1";
    let open = RedisRateLimiter::with_options(
        url,
        "down-open",
        quota(),
        Duration::from_millis(200),
        OnRedisFailure::FailOpen,
    )
    .expect("valid");
    let closed = RedisRateLimiter::with_options(
        url,
        "down-closed",
        quota(),
        Duration::from_millis(200),
        OnRedisFailure::FailClosed,
    )
    .expect("valid");
    for _ in 0..5 {
        assert!(open.check("k").await.is_ok(), "fail open admits");
        assert!(closed.check("k").await.is_err(), "fail closed refuses");
    }
    assert_eq!(
        open.breaker().state(),
        State::Open,
        "five failures open the breaker"
    );
    // While open, checks do not touch Redis: they answer at once.
    let start = std::time::Instant::now();
    for _ in 0..1000 {
        assert!(open.check("k").await.is_ok());
    }
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_bad_url_is_a_typed_error() {
    let e = RedisRateLimiter::new("not a url", "x", quota()).expect_err("refused");
    assert!(e.to_string().contains("invalid Redis URL"));
}

#[tokio::test]
async fn a_redis_that_never_answers_times_out_into_the_configured_behaviour() {
    // A listener that takes connections and never replies: a hung Redis.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("redis://{}", listener.local_addr().expect("addr"));
    let closed = RedisRateLimiter::with_options(
        &url,
        "hung",
        quota(),
        Duration::from_millis(50),
        OnRedisFailure::FailClosed,
    )
    .expect("valid");
    let start = std::time::Instant::now();
    let e = closed.check("k").await.expect_err("fail closed");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "bounded by the timeout: {:?}",
        start.elapsed()
    );
    drop(listener);
}
