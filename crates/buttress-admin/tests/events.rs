//! `GET /admin/events`: the status at once, each breaker change the
//! moment it happens, other changes within half a second, and a client
//! that falls behind told what it lost.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use buttress_admin::Admin;
use buttress_policy::{Format, Policy};
use http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::time::Instant;
use tower::ServiceExt;

const POLICY: &str = r#"
[service]
backpressure = { watermarks = { high = 100, low = 50 } }

[dependencies.llm]
breaker = { consecutive_failures = 3, failure_rate_threshold = "off" }
"#;

/// Reads server-sent events from a response body.
struct Events {
    body: Body,
    buffer: String,
}

impl Events {
    async fn open(admin: &Admin) -> Events {
        let app = admin
            .router()
            .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 1))));
        let response = app
            .oneshot(
                Request::get("/admin/events")
                    .body(Body::empty())
                    .expect("a request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events {
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    /// The next event's name and data.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return (name, serde_json::from_str(&data).expect("JSON data"));
            }
            let frame = self.body.frame().await.expect("open").expect("a frame");
            if let Ok(data) = frame.into_data() {
                self.buffer
                    .push_str(std::str::from_utf8(&data).expect("utf-8"));
            }
        }
    }

    /// Skips events until one named `name`.
    async fn until(&mut self, name: &str) -> Value {
        loop {
            let (n, data) = self.next().await;
            if n == name {
                return data;
            }
        }
    }
}

fn admin() -> Admin {
    Admin::new(Policy::from_text(POLICY, Format::Toml).unwrap_or_else(|e| panic!("{e}")))
}

#[tokio::test(start_paused = true)]
async fn a_breaker_change_is_sent_the_moment_it_happens() {
    let admin = admin();
    let mut events = Events::open(&admin).await;
    let (name, status) = events.next().await;
    assert_eq!(name, "status");
    assert_eq!(status["open_breakers"], 0);

    let breaker = admin.find_breaker("llm").expect("declared");
    let before = Instant::now();
    for _ in 0..3 {
        breaker.try_acquire().expect("closed").failure();
    }
    let (name, change) = events.next().await;
    assert_eq!(name, "breaker");
    assert_eq!(
        (change["name"].as_str(), change["state"].as_str()),
        (Some("llm"), Some("open"))
    );
    assert_eq!(change["from"], "closed");
    assert_eq!(change["reason"], "consecutive_failures");
    let (name, status) = events.next().await;
    assert_eq!(name, "status");
    assert_eq!(status["open_breakers"], 1);
    assert_eq!(before.elapsed(), Duration::ZERO, "no tick was waited for");
}

#[tokio::test(start_paused = true)]
async fn other_changes_are_sent_within_half_a_second() {
    let admin = admin();
    let mut events = Events::open(&admin).await;
    events.until("status").await;
    let gauge = admin
        .policy()
        .expect("a policy")
        .backpressure()
        .expect("declared")
        .clone();
    let before = Instant::now();
    gauge.add(120);
    let status = events.until("status").await;
    assert!(before.elapsed() <= buttress_admin::STATUS_EVERY);
    assert_eq!(status["gauges"][0]["level"], 120);
    assert_eq!(status["gauges"][0]["paused"], true);
}

#[tokio::test(start_paused = true)]
async fn a_new_policy_version_is_an_event() {
    let admin = admin();
    let mut events = Events::open(&admin).await;
    events.until("status").await;
    admin
        .policy()
        .expect("a policy")
        .apply_text(&POLICY.replace("= 3", "= 4"), Format::Toml, "bob")
        .expect("valid");
    let applied = events.until("applied").await;
    assert_eq!(applied["version"], 2);
    assert_eq!(applied["by"], "bob");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_falls_behind_loses_the_oldest_and_is_told() {
    let admin = admin();
    let mut events = Events::open(&admin).await;
    let breaker = admin.find_breaker("llm").expect("declared");
    // The client reads nothing while 2,000 changes happen.
    for _ in 0..1000 {
        breaker.force_open();
        breaker.reset();
    }
    let dropped = events.until("dropped").await;
    assert_eq!(
        dropped["count"],
        2000 - buttress_policy::EVENTS_BUFFERED as u64
    );
    let status = events.until("status").await;
    assert_eq!(
        status["breakers"][0]["state"], "closed",
        "the status catches up"
    );
}

#[tokio::test(start_paused = true)]
async fn the_status_carries_each_health_check_and_its_changes() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use buttress_health::{CheckOptions, Health, check_fn};

    let up = Arc::new(AtomicBool::new(true));
    let health = Health::new();
    let probe = up.clone();
    health
        .register(
            "postgres",
            check_fn(move || {
                let up = probe.load(Ordering::SeqCst);
                async move { if up { Ok(()) } else { Err("refused") } }
            }),
            CheckOptions::critical(),
        )
        .expect("registered");
    let admin = admin().health(health);
    let mut events = Events::open(&admin).await;
    let status = events.until("status").await;
    assert_eq!(status["health"]["status"], "healthy", "{status}");
    assert_eq!(status["health"]["postgres"], "ok", "{status}");
    assert!(
        status["health"].get("uptime_seconds").is_none()
            && status["health"].get("checks").is_none(),
        "timings and details stay on /admin/status: {status}"
    );
    up.store(false, Ordering::SeqCst);
    let status = events.until("status").await;
    assert_eq!(status["health"]["status"], "unhealthy", "{status}");
    assert_eq!(status["health"]["postgres"], "down", "{status}");
}
