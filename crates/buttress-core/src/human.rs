//! Human-readable sizes in configuration files: `"100MB"`, `"64 KiB"`, or
//! a plain number of bytes. Use with `#[serde(with = "...")]`; durations use
//! `humantime_serde` (`"250ms"`, `"2s"`).
//!
//! ```
//! #[derive(serde::Deserialize)]
//! struct Limits {
//!     #[serde(with = "buttress_core::human::size")]
//!     max_file: u64,
//!     #[serde(default, with = "buttress_core::human::option_size")]
//!     max_total: Option<u64>,
//! }
//!
//! let l: Limits = serde_json::from_str(r#"{"max_file": "64 KiB", "max_total": "1GB"}"#).unwrap();
//! assert_eq!(l.max_file, 64 * 1024);
//! assert_eq!(l.max_total, Some(1_000_000_000));
//! let l: Limits = serde_json::from_str(r#"{"max_file": 4096}"#).unwrap();
//! assert_eq!((l.max_file, l.max_total), (4096, None));
//! ```

use std::fmt;

use serde::de::{self, Visitor};

/// Parses a size: digits with an optional unit (`B`, `KB`/`MB`/`GB`/`TB`
/// in powers of 1000, `KiB`/`MiB`/`GiB`/`TiB` in powers of 1024; case and
/// a space before the unit do not matter).
///
/// ```
/// assert_eq!(buttress_core::human::parse_size("100MB"), Ok(100_000_000));
/// assert_eq!(buttress_core::human::parse_size("100 MiB"), Ok(100 << 20));
/// assert!(buttress_core::human::parse_size("lots").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map_err(|_| format!("size {text:?} is too large"));
    }
    text.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| {
            format!("invalid size {text:?}: {e} (expected for example \"100MB\" or \"64KiB\")")
        })
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size: a number of bytes, or a string such as \"100MB\" or \"64KiB\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("a size cannot be negative: {v}")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse_size(v).map_err(E::custom)
    }
}

/// `#[serde(with = "buttress_core::human::size")]` for a `u64` of bytes.
pub mod size {
    use serde::{Deserializer, Serializer};

    /// Reads a number of bytes or a string such as `"100MB"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(super::SizeVisitor)
    }

    /// Writes the number of bytes.
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }
}

/// `#[serde(default, with = "buttress_core::human::option_size")]` for an
/// `Option<u64>` of bytes (absent or `null` is `None`).
pub mod option_size {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Reads `null`, a number of bytes or a string such as `"100MB"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::size")] u64);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(v)| v))
    }

    /// Writes the number of bytes, or `null`.
    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(v),
            None => s.serialize_none(),
        }
    }
}
