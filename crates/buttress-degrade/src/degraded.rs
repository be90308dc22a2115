//! The mark a degraded answer carries, so a caller can tell it from a
//! normal one without parsing it.

use std::fmt;

use buttress_core::Name;
use http::HeaderValue;
use http::header::HeaderName;

use crate::reason::Reason;

/// The header a degraded HTTP answer carries: `x-degraded: <reason>`.
pub const X_DEGRADED: HeaderName = HeaderName::from_static("x-degraded");

/// What made an answer degraded, and who gave it instead.
///
/// On an HTTP response it is a response extension (and the `x-degraded`
/// header); [`Served`] carries it for other answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degraded {
    reason: Reason,
    by: Name,
    source: Source,
}

/// Which kind of stand-in gave a degraded answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// A fallback: a value, a function, or another service.
    Fallback,
    /// A cache entry past its time to live, served because the upstream
    /// failed.
    Stale,
}

impl Source {
    /// `fallback` or `stale`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Fallback => "fallback",
            Source::Stale => "stale",
        }
    }
}

impl Degraded {
    /// A degraded answer given by `by` (a fallback's or a cache's name)
    /// because of `reason`.
    pub fn new(reason: Reason, by: Name, source: Source) -> Self {
        Degraded { reason, by, source }
    }

    /// Why the normal answer could not be given.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The name of the fallback or cache that answered instead.
    pub fn by(&self) -> &Name {
        &self.by
    }

    /// Whether a fallback or a stale cache entry answered.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Adds `"degraded": true` and `"degraded_reason": "<reason>"` to a
    /// JSON object (anything else is left as it is), so a client reading
    /// only the body can tell.
    ///
    /// ```
    /// use buttress_core::{Name, RejectionKind};
    /// use buttress_degrade::{Degraded, Reason, Source};
    ///
    /// let d = Degraded::new(Reason::Refused(RejectionKind::CircuitOpen), Name::new("llm").unwrap(), Source::Fallback);
    /// let mut body = serde_json::json!({"answer": "try again later"});
    /// d.mark_json(&mut body);
    /// assert_eq!(body["degraded"], true);
    /// assert_eq!(body["degraded_reason"], "circuit_open");
    /// ```
    pub fn mark_json(&self, body: &mut serde_json::Value) {
        if let Some(object) = body.as_object_mut() {
            object.insert("degraded".into(), true.into());
            object.insert("degraded_reason".into(), self.reason.as_str().into());
        }
    }
}

impl fmt::Display for Degraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "degraded answer from {} {:?}: {}",
            self.source.as_str(),
            self.by.as_str(),
            self.reason
        )
    }
}

/// An answer that can carry a [`Degraded`] mark: what the fallback and the
/// cache layers need of their response type.
///
/// Implemented for `http::Response<B>` (an extension and the
/// `x-degraded` header) and for [`Served<T>`]; implement it for a response
/// type of your own with a field that holds the mark.
pub trait Mark {
    /// Marks this answer as degraded.
    fn mark_degraded(&mut self, degraded: Degraded);
}

impl<B> Mark for http::Response<B> {
    fn mark_degraded(&mut self, degraded: Degraded) {
        self.headers_mut().insert(
            X_DEGRADED,
            HeaderValue::from_static(degraded.reason.as_str()),
        );
        self.extensions_mut().insert(degraded);
    }
}

impl<T> Mark for Served<T> {
    fn mark_degraded(&mut self, degraded: Degraded) {
        self.degraded = Some(degraded);
    }
}

/// A value and, when it is not the normal answer, why: what the plain
/// fallback and cache APIs return.
///
/// ```
/// use buttress_degrade::Served;
///
/// let s = Served::normal(42);
/// assert!(!s.is_degraded());
/// assert_eq!(s.into_inner(), 42);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served<T> {
    /// The answer.
    pub value: T,
    /// Why it is degraded, if it is.
    pub degraded: Option<Degraded>,
}

impl<T> Served<T> {
    /// The normal answer.
    pub fn normal(value: T) -> Self {
        Served {
            value,
            degraded: None,
        }
    }

    /// Whether a stand-in gave this answer.
    pub fn is_degraded(&self) -> bool {
        self.degraded.is_some()
    }

    /// The answer, whatever gave it.
    pub fn into_inner(self) -> T {
        self.value
    }
}
