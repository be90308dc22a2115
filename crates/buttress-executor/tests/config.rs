//! Configuration as data: built in code or loaded from a file, checked
//! into typed errors either way.

use std::error::Error as _;
use std::time::Duration;

use buttress_executor::{BuildError, ConfigError, Executor, ExecutorConfig};

#[test]
fn invalid_settings_are_typed_errors_never_panics() {
    assert_eq!(
        ExecutorConfig::default().max_running(0).validate(),
        Err(ConfigError::ZeroMaxRunning)
    );
    assert_eq!(
        ExecutorConfig::default()
            .timeout(Some(Duration::ZERO))
            .validate(),
        Err(ConfigError::ZeroTimeout)
    );

    // No runtime: the cause is tokio's own error, behind `source`.
    let err = Executor::new("e", ExecutorConfig::default()).expect_err("no runtime");
    assert!(matches!(err, BuildError::NoRuntime(_)));
    assert!(
        err.source()
            .and_then(|s| s.downcast_ref::<tokio::runtime::TryCurrentError>())
            .is_some()
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _inside = rt.enter();
    let err = Executor::new("e", ExecutorConfig::default().max_running(0)).expect_err("bad");
    assert!(matches!(
        err,
        BuildError::Config(ConfigError::ZeroMaxRunning)
    ));
    assert_eq!(err.to_string(), ConfigError::ZeroMaxRunning.to_string());
    let err = Executor::new("", ExecutorConfig::default()).expect_err("no name");
    assert!(matches!(err, BuildError::Name(_)));
    assert_eq!(err.to_string(), "invalid executor name");
    assert!(
        err.source()
            .and_then(|s| s.downcast_ref::<buttress_core::NameError>())
            .is_some()
    );
}

#[cfg(feature = "serde")]
mod serde_config {
    use super::*;

    /// Loads `json` as an `ExecutorConfig`, expecting a data error whose
    /// message starts with `expected`.
    fn refused(json: &str, expected: &str) {
        buttress_test_support::config::refused::<ExecutorConfig>(json, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn a_config_loads_from_json_with_human_durations() {
        let config: ExecutorConfig = serde_json::from_str(
            r#"{
                "max_queued": 2000,
                "max_queued_per_priority": 500,
                "max_running": 2,
                "timeout": "1m 30s",
                "aging": "250ms",
                "history": 10
            }"#,
        )
        .expect("a valid config");
        assert_eq!(
            config,
            ExecutorConfig::default()
                .max_queued(2_000)
                .max_queued_per_priority(Some(500))
                .max_running(2)
                .timeout(Some(Duration::from_secs(90)))
                .aging(Some(Duration::from_millis(250)))
                .history(10)
        );
        // Keys left out keep their defaults.
        let empty: ExecutorConfig = serde_json::from_str("{}").expect("valid");
        assert_eq!(empty, ExecutorConfig::default());

        // What was loaded runs: its timeout applies to each task.
        let executor = Executor::new("loaded", config).expect("valid");
        let stuck = executor
            .submit(0, std::future::pending::<()>())
            .expect("room");
        let start = tokio::time::Instant::now();
        assert_eq!(
            stuck.await,
            Err(buttress_executor::TaskError::TimedOut),
            "the loaded timeout"
        );
        assert_eq!(start.elapsed(), Duration::from_secs(90));
    }

    #[test]
    fn each_malformed_document_names_its_fault() {
        refused(r#"{ "max_runing": 4 }"#, "unknown field `max_runing`");
        refused(
            r#"{ "timeout": "30 parsecs" }"#,
            r#"invalid value: string "30 parsecs", expected a duration"#,
        );
        refused(r#"{ "aging": 10 }"#, "invalid type: integer `10`");
        refused(r#"{ "max_queued": -1 }"#, "invalid value: integer `-1`");
        refused(
            r#"{ "max_running": 0 }"#,
            &ConfigError::ZeroMaxRunning.to_string(),
        );
        refused(
            r#"{ "timeout": "0s" }"#,
            &ConfigError::ZeroTimeout.to_string(),
        );
    }
}
