//! Configuration documents that must be refused.

/// Loads `json` as a `T`, expecting a data error (not a syntax error)
/// whose message starts with `expected`.
pub fn refused<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str, expected: &str) {
    let err = serde_json::from_str::<T>(json).expect_err(json);
    assert!(err.is_data(), "{json}: {err}");
    assert!(
        err.to_string().starts_with(expected),
        "{json}:\n  got      {err}\n  expected {expected}…"
    );
}
