//! The configuration as a value: setters, validation into typed errors,
//! and (feature `serde`) loading from a document with human durations and
//! sizes.

use std::time::Duration;

use buttress_journal::{ConfigError, JournalConfig};

#[test]
fn validation_names_the_problem_in_a_typed_error() {
    assert_eq!(JournalConfig::default().validate(), Ok(()));
    assert!(matches!(
        JournalConfig::default().max_record_bytes(5).validate(),
        Err(ConfigError::RecordTooSmall {
            max_record_bytes: 5,
            ..
        })
    ));
    assert_eq!(
        JournalConfig::default()
            .queue_bytes(10)
            .max_record_bytes(100)
            .validate(),
        Err(ConfigError::QueueTooSmall {
            queue_bytes: 10,
            max_record_bytes: 100
        })
    );
    for (config, field) in [
        (JournalConfig::default().batch_bytes(0), "batch_bytes"),
        (
            JournalConfig::default().rotate_bytes(Some(0)),
            "rotate_bytes",
        ),
        (
            JournalConfig::default().rotate_age(Some(Duration::ZERO)),
            "rotate_age",
        ),
    ] {
        let err = config.validate().unwrap_err();
        assert_eq!(err, ConfigError::Zero { field });
        assert!(err.to_string().contains(field), "{err}");
    }
    let err = JournalConfig::default()
        .keep_files(Some(0))
        .validate()
        .unwrap_err();
    assert_eq!(err, ConfigError::KeepFiles);
    assert!(err.to_string().contains("keep_files"), "{err}");
}

#[cfg(feature = "serde")]
mod serde_config {
    use super::*;
    use buttress_journal::{Compression, Durability, Overflow};

    #[test]
    fn loads_from_json_with_human_durations_and_sizes() {
        let config: JournalConfig = serde_json::from_str(
            r#"{
                "durability": "buffered",
                "overflow": "drop",
                "queue_bytes": "16 MiB",
                "max_record_bytes": "64KiB",
                "batch_bytes": 262144,
                "rotate_bytes": "100MB",
                "rotate_age": "1h 30m",
                "keep_files": 20,
                "keep_bytes": "2GiB",
                "compression": "gzip"
            }"#,
        )
        .unwrap();
        let expected = JournalConfig::default()
            .durability(Durability::Buffered)
            .overflow(Overflow::Drop)
            .queue_bytes(16 << 20)
            .max_record_bytes(64 << 10)
            .batch_bytes(256 << 10)
            .rotate_bytes(Some(100_000_000))
            .rotate_age(Some(Duration::from_secs(90 * 60)))
            .keep_files(Some(20))
            .keep_bytes(Some(2 << 30))
            .compression(Compression::Gzip);
        assert_eq!(config, expected);
        assert_eq!(config.validate(), Ok(()));

        // Missing fields keep their defaults; `null` turns an option off.
        let config: JournalConfig = serde_json::from_str(r#"{"rotate_bytes": null}"#).unwrap();
        assert_eq!(config, JournalConfig::default().rotate_bytes(None));
        let config: JournalConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, JournalConfig::default());

        // What it serializes to loads back to the same config.
        let text = serde_json::to_string(&expected).unwrap();
        assert_eq!(
            serde_json::from_str::<JournalConfig>(&text).unwrap(),
            expected
        );
    }

    fn error_of(document: &str) -> String {
        match serde_json::from_str::<JournalConfig>(document) {
            Ok(config) => panic!("{document} loaded as {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn malformed_documents_say_what_is_wrong() {
        let unknown = error_of(r#"{"rotate_bytez": "1MB"}"#);
        assert!(
            unknown.contains("unknown field `rotate_bytez`"),
            "{unknown}"
        );
        let size = error_of(r#"{"rotate_bytes": "lots"}"#);
        assert!(size.contains("invalid size \"lots\""), "{size}");
        let negative = error_of(r#"{"queue_bytes": -1}"#);
        assert!(negative.contains("cannot be negative"), "{negative}");
        let duration = error_of(r#"{"rotate_age": "15 parsecs"}"#);
        assert!(duration.contains("parsecs"), "{duration}");
        let variant = error_of(r#"{"durability": "sometimes"}"#);
        assert!(
            variant.contains("unknown variant `sometimes`") && variant.contains("group_commit"),
            "{variant}"
        );
        let kind = error_of(r#"{"keep_files": "many"}"#);
        assert!(kind.contains("invalid type"), "{kind}");

        // Well-formed but meaningless: loads, and validation (which
        // `Journal::open` runs) refuses it with a typed error.
        let config: JournalConfig = serde_json::from_str(r#"{"keep_files": 0}"#).unwrap();
        assert_eq!(config.validate(), Err(ConfigError::KeepFiles));
        let config: JournalConfig =
            serde_json::from_str(r#"{"queue_bytes": "1KiB", "max_record_bytes": "1MiB"}"#).unwrap();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::QueueTooSmall {
                queue_bytes: 1024,
                ..
            })
        ));
    }
}
