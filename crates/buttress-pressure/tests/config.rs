//! Configuration as data: built in code or loaded from a file, checked
//! into typed errors either way.

use std::error::Error as _;
use std::time::Duration;

use buttress_pressure::{
    AdaptiveConfig, AdaptiveConfigError, AimdConfig, Gauge, GaugeError, Gradient2Config, MAX_LEVEL,
    VegasConfig, WatermarkError, Watermarks,
};

#[test]
fn invalid_settings_are_typed_errors_never_panics() {
    assert_eq!(
        Watermarks::new(10, 10),
        Err(WatermarkError::LowNotBelowHigh { high: 10, low: 10 })
    );
    assert_eq!(
        Watermarks::new(MAX_LEVEL + 1, 1),
        Err(WatermarkError::HighAboveMax {
            high: MAX_LEVEL + 1
        })
    );

    let normal = Watermarks::new(100, 50).expect("valid");
    let above = Watermarks::new(100, 60).expect("valid");
    let err = Gauge::builder("g", normal)
        .low_priority(above)
        .build()
        .expect_err("low band above the normal one");
    assert_eq!(
        err,
        GaugeError::LowPriorityAbove {
            normal,
            low_priority: above
        }
    );
    // The cause of a bad name stays typed, behind `source`, and is not
    // repeated in the message.
    let err = Gauge::builder(" ", normal).build().expect_err("blank name");
    assert!(matches!(err, GaugeError::Name(_)));
    assert_eq!(err.to_string(), "invalid gauge name");
    let source = err.source().expect("a source");
    assert!(source.downcast_ref::<buttress_core::NameError>().is_some());

    assert_eq!(
        AimdConfig::default().min(0).build().map(|_| ()),
        Err(AdaptiveConfigError::ZeroMin)
    );
    assert_eq!(
        VegasConfig::default()
            .initial(5)
            .min(10)
            .build()
            .map(|_| ()),
        Err(AdaptiveConfigError::InitialOutOfBounds {
            initial: 5,
            min: 10,
            max: 1_000
        })
    );
    assert_eq!(
        AimdConfig::default()
            .timeout(Duration::ZERO)
            .build()
            .map(|_| ()),
        Err(AdaptiveConfigError::Zero {
            parameter: "timeout"
        })
    );
    assert!(matches!(
        AimdConfig::default().backoff(f64::NAN).build(),
        Err(AdaptiveConfigError::OutOfRange {
            parameter: "backoff",
            ..
        })
    ));
    assert!(matches!(
        Gradient2Config::default().tolerance(f64::INFINITY).build(),
        Err(AdaptiveConfigError::TooSmall {
            parameter: "tolerance",
            ..
        })
    ));
    assert_eq!(
        Gradient2Config::default().window(0).build().map(|_| ()),
        Err(AdaptiveConfigError::Zero {
            parameter: "window"
        })
    );
    let config = AdaptiveConfig::from(VegasConfig::default().max(0));
    assert_eq!(
        config.build().map(|_| ()),
        Err(AdaptiveConfigError::MinAboveMax { min: 1, max: 0 })
    );
}

#[cfg(feature = "serde")]
mod serde_config {
    use super::*;
    use buttress_pressure::{AdaptiveLimiter, Algorithm, GaugeConfig, Priority};
    use buttress_test_support::config::refused;

    /// The policy document of a service, as the stack would load it.
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Policy {
        backlog: GaugeConfig,
        memory: Watermarks,
        limits: Vec<AdaptiveConfig>,
    }

    #[test]
    fn a_policy_loads_from_json_with_human_durations_and_sizes() {
        let policy: Policy = serde_json::from_str(
            r#"{
                "backlog": {
                    "watermarks": { "high": "100MB", "low": "50 MiB" },
                    "low_priority": { "high": 60000000, "low": "30MB" },
                    "retry_after": "2s 500ms"
                },
                "memory": { "high": "64 KiB", "low": 4096 },
                "limits": [
                    { "algorithm": "aimd", "initial": 20, "min": 2, "max": 200, "backoff": 0.8, "timeout": "250ms" },
                    { "algorithm": "vegas", "max": 300, "smoothing": 1.0, "probe_multiplier": 10 },
                    { "algorithm": "gradient2", "initial": 10, "tolerance": 2.0, "queue_size": 8, "window": 100 },
                    { "algorithm": "aimd" }
                ]
            }"#,
        )
        .expect("a valid policy");

        let expected = GaugeConfig::new(Watermarks::new(100_000_000, 50 << 20).expect("valid"))
            .low_priority(Watermarks::new(60_000_000, 30_000_000).expect("valid"))
            .retry_after(Duration::from_millis(2_500));
        assert_eq!(policy.backlog, expected);
        assert_eq!(
            policy.memory,
            Watermarks::new(64 * 1024, 4096).expect("valid")
        );
        assert_eq!(
            policy.limits,
            vec![
                AdaptiveConfig::Aimd(
                    AimdConfig::default()
                        .initial(20)
                        .min(2)
                        .max(200)
                        .backoff(0.8)
                        .timeout(Duration::from_millis(250))
                ),
                AdaptiveConfig::Vegas(
                    VegasConfig::default()
                        .max(300)
                        .smoothing(1.0)
                        .probe_multiplier(10)
                ),
                AdaptiveConfig::Gradient2(
                    Gradient2Config::default()
                        .initial(10)
                        .tolerance(2.0)
                        .queue_size(8)
                        .window(100)
                ),
                AdaptiveConfig::Aimd(AimdConfig::default()),
            ]
        );

        // What was loaded builds what the code would.
        let gauge = Gauge::builder("backlog", policy.backlog)
            .build()
            .expect("valid");
        gauge.set(60_000_000);
        assert!(gauge.is_paused_for(Priority::Low) && !gauge.is_paused());
        let refused = gauge.check(Priority::Low).expect_err("paused");
        assert_eq!(refused.retry_after(), Some(Duration::from_millis(2_500)));
        for (config, initial) in policy.limits.iter().zip([20u32, 20, 10, 20]) {
            let algorithm = config.build().expect("valid");
            assert_eq!(algorithm.limit(), f64::from(initial));
            let limiter = AdaptiveLimiter::new("limit", algorithm).expect("name");
            assert_eq!(limiter.limit(), u64::from(initial));
        }
    }

    #[test]
    fn each_malformed_document_names_its_fault() {
        // Unknown keys, everywhere.
        refused::<Watermarks>(
            r#"{ "high": 10, "low": 5, "medium": 7 }"#,
            "unknown field `medium`",
        );
        refused::<GaugeConfig>(
            r#"{ "watermarks": { "high": 10, "low": 5 }, "retry": "2s" }"#,
            "unknown field `retry`",
        );
        refused::<AdaptiveConfig>(
            r#"{ "algorithm": "aimd", "backof": 0.5 }"#,
            "unknown field `backof`",
        );
        refused::<AdaptiveConfig>(
            r#"{ "algorithm": "vegas", "tolerance": 2.0 }"#,
            "unknown field `tolerance`",
        );
        refused::<AdaptiveConfig>(r#"{ "algorithm": "bbr" }"#, "unknown variant `bbr`");
        refused::<AdaptiveConfig>(r#"{ "max": 10 }"#, "missing field `algorithm`");
        // Bad durations and sizes.
        refused::<GaugeConfig>(
            r#"{ "watermarks": { "high": 10, "low": 5 }, "retry_after": "2 fortnights" }"#,
            r#"invalid value: string "2 fortnights", expected a duration"#,
        );
        refused::<AdaptiveConfig>(
            r#"{ "algorithm": "aimd", "timeout": 250 }"#,
            "invalid type: integer `250`",
        );
        refused::<Watermarks>(r#"{ "high": "lots", "low": 5 }"#, "invalid size \"lots\"");
        refused::<Watermarks>(r#"{ "high": 10, "low": -5 }"#, "a size cannot be negative");
        // Values that make no sense: the typed error's own message.
        refused::<Watermarks>(
            r#"{ "high": "1KB", "low": 1000 }"#,
            &WatermarkError::LowNotBelowHigh {
                high: 1000,
                low: 1000,
            }
            .to_string(),
        );
        refused::<Watermarks>(
            &format!(r#"{{ "high": {}, "low": 5 }}"#, MAX_LEVEL + 1),
            &WatermarkError::HighAboveMax {
                high: MAX_LEVEL + 1,
            }
            .to_string(),
        );
        let normal = Watermarks::new(100, 50).expect("valid");
        let above = Watermarks::new(120, 50).expect("valid");
        refused::<GaugeConfig>(
            r#"{ "watermarks": { "high": 100, "low": 50 }, "low_priority": { "high": 120, "low": 50 } }"#,
            &GaugeError::LowPriorityAbove {
                normal,
                low_priority: above,
            }
            .to_string(),
        );
        refused::<AdaptiveConfig>(
            r#"{ "algorithm": "aimd", "min": 0 }"#,
            &AdaptiveConfigError::ZeroMin.to_string(),
        );
        refused::<AdaptiveConfig>(
            r#"{ "algorithm": "gradient2", "min": 50, "max": 10 }"#,
            &AdaptiveConfigError::MinAboveMax { min: 50, max: 10 }.to_string(),
        );
        refused::<AdaptiveConfig>(
            r#"{ "algorithm": "vegas", "initial": 2000 }"#,
            &AdaptiveConfigError::InitialOutOfBounds {
                initial: 2000,
                min: 1,
                max: 1000,
            }
            .to_string(),
        );
        refused::<AdaptiveConfig>(
            r#"{ "algorithm": "aimd", "backoff": 1.5 }"#,
            &AdaptiveConfigError::OutOfRange {
                parameter: "backoff",
                value: 1.5,
                min: 0.5,
                max: 0.99,
            }
            .to_string(),
        );
        refused::<AdaptiveConfig>(
            r#"{ "algorithm": "aimd", "timeout": "0s" }"#,
            &AdaptiveConfigError::Zero {
                parameter: "timeout",
            }
            .to_string(),
        );
        refused::<AdaptiveConfig>(
            r#"{ "algorithm": "vegas", "probe_multiplier": 0 }"#,
            &AdaptiveConfigError::Zero {
                parameter: "probe_multiplier",
            }
            .to_string(),
        );
        refused::<AdaptiveConfig>(
            r#"{ "algorithm": "gradient2", "tolerance": 0.9 }"#,
            &AdaptiveConfigError::TooSmall {
                parameter: "tolerance",
                value: 0.9,
                min: 1.0,
            }
            .to_string(),
        );
        refused::<AimdConfig>(
            r#"{ "initial": 0 }"#,
            &AdaptiveConfigError::InitialOutOfBounds {
                initial: 0,
                min: 1,
                max: 200,
            }
            .to_string(),
        );
    }
}
