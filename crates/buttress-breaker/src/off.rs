//! `"off"` for a rule or limit that is not set: TOML has no `null`, so a
//! file needs a word to turn off a rule that is on by default (the failure
//! rate, the `Retry-After` cap). `null` is read the same way.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};

const OFF: &str = "off";

/// A rate in (0, 1], or `"off"`.
pub(crate) mod rate {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_f64(*v),
            None => s.serialize_str(OFF),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        d.deserialize_any(Number::<f64>::new("a rate in (0, 1]"))
    }
}

/// A count, or `"off"`.
pub(crate) mod count {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_u32(*v),
            None => s.serialize_str(OFF),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        d.deserialize_any(Number::<u32>::new("a count"))
    }
}

/// A duration such as `"60s"`, or `"off"`.
pub(crate) mod duration {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(&humantime::format_duration(*v)),
            None => s.serialize_str(OFF),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) if s == OFF => Ok(None),
            Some(s) => humantime::parse_duration(&s).map(Some).map_err(|e| {
                de::Error::custom(format!(
                    "expected a duration such as \"60s\" or \"off\": {e}"
                ))
            }),
        }
    }
}

/// Reads a number of type `T`, `null` or `"off"`.
struct Number<T> {
    what: &'static str,
    kind: std::marker::PhantomData<T>,
}

impl<T> Number<T> {
    fn new(what: &'static str) -> Self {
        Number {
            what,
            kind: std::marker::PhantomData,
        }
    }
}

/// The numbers a [`Number`] reads.
trait FromNumber: Sized {
    fn from_f64(v: f64) -> Option<Self>;
    fn from_i128(v: i128) -> Option<Self>;
}

impl FromNumber for f64 {
    fn from_f64(v: f64) -> Option<Self> {
        Some(v)
    }
    fn from_i128(v: i128) -> Option<Self> {
        Some(v as f64)
    }
}

impl FromNumber for u32 {
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_i128(v: i128) -> Option<Self> {
        u32::try_from(v).ok()
    }
}

impl<'de, T: FromNumber> Visitor<'de> for Number<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} or \"off\"", self.what)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v == OFF {
            Ok(None)
        } else {
            Err(E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        T::from_f64(v)
            .map(Some)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        T::from_i128(v.into())
            .map(Some)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        T::from_i128(v.into())
            .map(Some)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
}
