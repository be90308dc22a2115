//! The store's config and the checkpointer's policy as values: setters,
//! validation into typed errors, and (feature `serde`) loading from a
//! document with human durations and sizes.

use std::sync::Arc;
use std::time::Duration;

use buttress_checkpoint::{ConfigError, FileStore, FileStoreConfig, OpenError, Policy};
use buttress_fs::SimFs;

#[test]
fn validation_names_the_problem_in_a_typed_error() {
    assert_eq!(FileStoreConfig::default().validate(), Ok(()));
    assert_eq!(
        FileStoreConfig::default().keep(0).validate(),
        Err(ConfigError::Keep)
    );
    assert_eq!(
        FileStoreConfig::default().max_bytes(35).validate(),
        Err(ConfigError::MaxBytes {
            max_bytes: 35,
            min: 36
        })
    );
    assert_eq!(FileStoreConfig::default().max_bytes(36).validate(), Ok(()));
    let err = FileStore::open_with(
        Arc::new(SimFs::new()),
        "/ckpt",
        "s",
        FileStoreConfig::default().max_bytes(0),
    )
    .unwrap_err();
    assert!(
        matches!(err, OpenError::Config(ConfigError::MaxBytes { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_bytes"), "{err}");
}

#[test]
fn policies_are_built_from_default_and_chained_setters() {
    let minute = Duration::from_secs(60);
    assert_eq!(
        Policy::every_events(10).or_every(minute),
        Policy::every(minute).or_every_events(10)
    );
    assert_eq!(
        Policy::default().or_every_events(10),
        Policy::every_events(10)
    );
    assert_eq!(Policy::every_events(0), Policy::every_events(1));
    assert_ne!(Policy::default(), Policy::every_events(1));
}

#[cfg(feature = "serde")]
mod serde_config {
    use super::*;

    #[test]
    fn loads_from_json_with_human_durations_and_sizes() {
        let config: FileStoreConfig =
            serde_json::from_str(r#"{"keep": 5, "max_bytes": "64 MiB"}"#).unwrap();
        assert_eq!(
            config,
            FileStoreConfig::default().keep(5).max_bytes(64 << 20)
        );
        let config: FileStoreConfig = serde_json::from_str(r#"{"max_bytes": 4096}"#).unwrap();
        assert_eq!(config, FileStoreConfig::default().max_bytes(4096));
        let config: FileStoreConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, FileStoreConfig::default());

        let policy: Policy =
            serde_json::from_str(r#"{"every_events": 1000, "every": "1m 30s"}"#).unwrap();
        assert_eq!(
            policy,
            Policy::every_events(1000).or_every(Duration::from_secs(90))
        );
        let policy: Policy = serde_json::from_str(r#"{"every": "250ms"}"#).unwrap();
        assert_eq!(policy, Policy::every(Duration::from_millis(250)));
        let policy: Policy = serde_json::from_str("{}").unwrap();
        assert_eq!(policy, Policy::default());

        // What they serialize to loads back the same.
        let config = FileStoreConfig::default().keep(2).max_bytes(1 << 20);
        let text = serde_json::to_string(&config).unwrap();
        assert_eq!(
            serde_json::from_str::<FileStoreConfig>(&text).unwrap(),
            config
        );
        let policy = Policy::every_events(7).or_every(Duration::from_secs(5));
        let text = serde_json::to_string(&policy).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&text).unwrap(), policy);
    }

    fn error_of<T: serde::de::DeserializeOwned + std::fmt::Debug>(document: &str) -> String {
        match serde_json::from_str::<T>(document) {
            Ok(value) => panic!("{document} loaded as {value:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn malformed_documents_say_what_is_wrong() {
        let unknown = error_of::<FileStoreConfig>(r#"{"kept": 3}"#);
        assert!(unknown.contains("unknown field `kept`"), "{unknown}");
        let unknown = error_of::<Policy>(r#"{"every_event": 3}"#);
        assert!(unknown.contains("unknown field `every_event`"), "{unknown}");
        let size = error_of::<FileStoreConfig>(r#"{"max_bytes": "huge"}"#);
        assert!(size.contains("invalid size \"huge\""), "{size}");
        let negative = error_of::<FileStoreConfig>(r#"{"max_bytes": -5}"#);
        assert!(negative.contains("cannot be negative"), "{negative}");
        let duration = error_of::<Policy>(r#"{"every": "soon"}"#);
        assert!(
            duration.contains("soon") || duration.contains("time"),
            "{duration}"
        );
        let zero = error_of::<Policy>(r#"{"every_events": 0}"#);
        assert!(zero.contains("nonzero"), "{zero}");
        let kind = error_of::<FileStoreConfig>(r#"{"keep": "three"}"#);
        assert!(kind.contains("invalid type"), "{kind}");

        // Well-formed but meaningless: loads, and validation (which opening
        // the store runs) refuses it with a typed error.
        let config: FileStoreConfig = serde_json::from_str(r#"{"keep": 0}"#).unwrap();
        assert_eq!(config.validate(), Err(ConfigError::Keep));
        assert!(matches!(
            FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "s", config),
            Err(OpenError::Config(ConfigError::Keep))
        ));
    }
}
