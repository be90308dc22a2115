//! One configuration document holds a policy for every primitive, in TOML
//! or JSON, with human durations and sizes; each part builds its
//! primitive; a typo anywhere is refused with its name.
#![cfg(all(
    feature = "serde",
    feature = "breaker",
    feature = "retry",
    feature = "limit",
    feature = "journal",
    feature = "checkpoint",
    feature = "pressure",
    feature = "executor"
))]

use std::time::Duration;

use buttress::breaker::{BreakerConfig, CircuitBreaker};
use buttress::checkpoint::{FileStoreConfig, Policy};
use buttress::executor::{Executor, ExecutorConfig};
use buttress::journal::{Durability, JournalConfig};
use buttress::limit::{KeyedRateLimiter, Networks, Quota, QuotaConfig};
use buttress::pressure::{AdaptiveConfig, AdaptiveLimiter, Gauge, GaugeConfig, Watermarks};
use buttress::retry::{RetryConfig, RetryPolicy};
use serde::Deserialize;

/// A service's whole resilience policy, as a user would declare it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServicePolicy {
    llm_breaker: BreakerConfig,
    llm_retry: RetryConfig,
    per_ip: QuotaConfig,
    allow: Networks,
    telemetry: JournalConfig,
    checkpoint_store: FileStoreConfig,
    checkpoint_every: Policy,
    backlog: GaugeConfig,
    llm_concurrency: AdaptiveConfig,
    tasks: ExecutorConfig,
}

const TOML: &str = r#"
allow = ["127.0.0.0/8", "::1"]

[llm_breaker]
consecutive_failures = 3
failure_rate_threshold = 0.5
open = { kind = "fixed", duration = "120s" }
half_open_permits = 1

[llm_retry]
max_attempts = 3
deadline = "30s"
max_retry_after = "2m"
backoff = { kind = "full_jitter", base = "100ms", factor = 2.0, max = "10s" }
budget = { kind = "ratio", ratio = 0.1, min_per_second = 10.0, window = "10s" }

[per_ip]
count = 150
per = "1m"
burst = 10

[telemetry]
durability = "group_commit"
rotate_bytes = "100MB"
keep_bytes = "2GiB"

[checkpoint_store]
keep = 3
max_bytes = "64 MiB"

[checkpoint_every]
every_events = 100

[backlog]
watermarks = { high = "100MB", low = "50MB" }

[llm_concurrency]
algorithm = "vegas"
initial = 20
min = 2
max = 200

[tasks]
max_running = 8
max_queued = 1000
timeout = "30s"
aging = "10s"
"#;

const JSON: &str = r#"{
    "allow": ["127.0.0.0/8", "::1"],
    "llm_breaker": {
        "consecutive_failures": 3,
        "failure_rate_threshold": 0.5,
        "open": { "kind": "fixed", "duration": "120s" },
        "half_open_permits": 1
    },
    "llm_retry": {
        "max_attempts": 3,
        "deadline": "30s",
        "max_retry_after": "2m",
        "backoff": { "kind": "full_jitter", "base": "100ms", "factor": 2.0, "max": "10s" },
        "budget": { "kind": "ratio", "ratio": 0.1, "min_per_second": 10.0, "window": "10s" }
    },
    "per_ip": { "count": 150, "per": "1m", "burst": 10 },
    "telemetry": { "durability": "group_commit", "rotate_bytes": "100MB", "keep_bytes": "2GiB" },
    "checkpoint_store": { "keep": 3, "max_bytes": "64 MiB" },
    "checkpoint_every": { "every_events": 100 },
    "backlog": { "watermarks": { "high": "100MB", "low": "50MB" } },
    "llm_concurrency": { "algorithm": "vegas", "initial": 20, "min": 2, "max": 200 },
    "tasks": { "max_running": 8, "max_queued": 1000, "timeout": "30s", "aging": "10s" }
}"#;

/// Every part says what the document says, and builds its primitive.
fn check(policy: ServicePolicy) {
    let breaker = &policy.llm_breaker;
    assert_eq!(breaker.consecutive_failures, Some(3));
    assert_eq!(breaker.half_open_permits, 1);
    CircuitBreaker::new("llm", policy.llm_breaker).expect("a valid breaker");

    assert_eq!(policy.llm_retry.deadline, Some(Duration::from_secs(30)));
    assert_eq!(
        policy.llm_retry.max_retry_after,
        Some(Duration::from_secs(120))
    );
    RetryPolicy::new("llm", policy.llm_retry).expect("a valid retry policy");

    let quota = Quota::try_from(policy.per_ip).expect("a valid quota");
    assert_eq!(
        quota,
        Quota::per_minute(150)
            .expect("valid")
            .with_burst(10)
            .expect("valid")
    );
    assert!(policy.allow.contains(&"127.0.0.1".parse().expect("ip")));
    let _: KeyedRateLimiter<std::net::IpAddr> = KeyedRateLimiter::builder("per-ip", quota)
        .allow(policy.allow)
        .build()
        .expect("a valid keyed limiter");

    assert_eq!(
        policy.telemetry,
        JournalConfig::default()
            .durability(Durability::GroupCommit)
            .rotate_bytes(Some(100_000_000))
            .keep_bytes(Some(2 << 30))
    );
    policy.telemetry.validate().expect("a valid journal config");

    assert_eq!(
        policy.checkpoint_store,
        FileStoreConfig::default().keep(3).max_bytes(64 << 20)
    );
    policy
        .checkpoint_store
        .validate()
        .expect("a valid store config");
    assert_eq!(policy.checkpoint_every, Policy::every_events(100));

    assert_eq!(
        policy.backlog,
        GaugeConfig::new(Watermarks::new(100_000_000, 50_000_000).expect("valid"))
    );
    Gauge::builder("backlog", policy.backlog)
        .build()
        .expect("a valid gauge");
    let algorithm = policy.llm_concurrency.build().expect("a valid algorithm");
    let llm = AdaptiveLimiter::new("llm", algorithm).expect("a valid limiter");
    assert_eq!(llm.limit(), 20);

    assert_eq!(
        policy.tasks,
        ExecutorConfig::default()
            .max_running(8)
            .max_queued(1000)
            .timeout(Some(Duration::from_secs(30)))
            .aging(Some(Duration::from_secs(10)))
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _in_runtime = runtime.enter();
    Executor::new("tasks", policy.tasks).expect("a valid executor");
}

#[test]
fn one_toml_document_configures_every_primitive() {
    check(toml::from_str(TOML).expect("the TOML document loads"));
}

#[test]
fn one_json_document_configures_every_primitive() {
    check(serde_json::from_str(JSON).expect("the JSON document loads"));
}

#[test]
fn a_typo_anywhere_is_refused_by_name() {
    for (typo, field) in [
        ("consecutive_failures = 3", "consecutive_failurs = 3"),
        ("max_attempts = 3", "max_attemps = 3"),
        ("count = 150", "cuont = 150"),
        ("rotate_bytes = \"100MB\"", "rotate_byte = \"100MB\""),
        ("keep = 3", "kep = 3"),
        ("every_events = 100", "every_event = 100"),
        (
            "algorithm = \"vegas\"\n",
            "algorithm = \"vegas\"\nsmothing = 1.0\n",
        ),
        ("max_running = 8", "max_runing = 8"),
    ] {
        let document = TOML.replacen(typo, field, 1);
        assert_ne!(document, TOML, "{typo} is in the document");
        let err = toml::from_str::<ServicePolicy>(&document)
            .expect_err(field)
            .to_string();
        let last_line = field.trim_end().rsplit('\n').next().expect("a line");
        let name = last_line.split([' ', '=']).next().expect("a key");
        assert!(err.contains(name), "{field}: {err}");
    }
    // A bad size and a bad duration name themselves.
    let err = toml::from_str::<ServicePolicy>(&TOML.replacen("\"100MB\"", "\"lots\"", 1))
        .expect_err("bad size")
        .to_string();
    assert!(err.contains("invalid size \"lots\""), "{err}");
    let err = toml::from_str::<ServicePolicy>(&TOML.replacen("\"30s\"", "\"soon\"", 1))
        .expect_err("bad duration")
        .to_string();
    assert!(err.contains("soon"), "{err}");
}
