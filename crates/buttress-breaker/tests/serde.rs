//! Configuration loaded from JSON with human durations.
#![cfg(feature = "serde")]

use std::time::Duration;

use buttress_breaker::{BreakerConfig, CircuitBreaker, ConfigError, OpenDuration, Window};

#[test]
fn a_whole_policy_loads_from_a_file() {
    let cfg: BreakerConfig = serde_json::from_str(
        r#"{
            "failure_rate_threshold": 0.25,
            "slow_call_rate_threshold": 0.9,
            "slow_call_duration": "1500ms",
            "window": { "kind": "time", "duration": "30s", "buckets": 30 },
            "minimum_calls": 20,
            "open": { "kind": "exponential", "initial": "5s", "multiplier": 2.0, "max": "5m", "jitter": 0.1 },
            "half_open_permits": 2,
            "max_half_open": "1m"
        }"#,
    )
    .expect("parses");
    assert_eq!(cfg.slow_call_duration, Duration::from_millis(1500));
    assert_eq!(
        cfg.window,
        Window::Time {
            duration: Duration::from_secs(30),
            buckets: 30
        }
    );
    assert!(
        matches!(cfg.open, OpenDuration::Exponential { max, .. } if max == Duration::from_secs(300))
    );
    assert_eq!(cfg.max_half_open, Some(Duration::from_secs(60)));
    assert_eq!(
        cfg.retry_after_max,
        BreakerConfig::default().retry_after_max,
        "unset fields keep defaults"
    );
    CircuitBreaker::new("vector-store", cfg).expect("valid");
}

#[test]
fn unknown_fields_and_bad_values_are_refused() {
    let typo = serde_json::from_str::<BreakerConfig>(r#"{ "failure_rate_treshold": 0.5 }"#);
    assert!(
        typo.expect_err("unknown field")
            .to_string()
            .contains("failure_rate_treshold")
    );
    let bad_duration = serde_json::from_str::<BreakerConfig>(r#"{ "slow_call_duration": "soon" }"#);
    assert!(bad_duration.is_err());
    let cfg: BreakerConfig =
        serde_json::from_str(r#"{ "failure_rate_threshold": 2.0 }"#).expect("parses");
    assert!(matches!(cfg.validate(), Err(ConfigError::Threshold { .. })));
}

#[test]
fn snapshots_serialize() {
    let b = CircuitBreaker::new("db", BreakerConfig::embeddings()).expect("valid");
    let json = serde_json::to_value(b.snapshot()).expect("serializes");
    assert_eq!(json["name"], "db");
    assert_eq!(json["state"], "closed");
}
