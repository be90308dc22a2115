//! Errors a client can read: RFC 9457 `application/problem+json`.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::time::Duration;

use buttress_core::{RateLimitPolicy, RejectionKind, ceil_secs, rate_limit_headers};
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use serde::ser::{SerializeMap, Serializer};

use crate::reason::{Refused, refusal_in};
use crate::request_id::X_REQUEST_ID;

/// The media type of every problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One HTTP answer for an error: an RFC 9457 problem.
///
/// Every body has `type` (`about:blank`), `title` (the status's reason
/// phrase), `status`, `detail` (a sentence for a person; never an internal
/// error's text), `kind` (a snake_case name for a program: `circuit_open`,
/// `rate_limited`, `validation`, `internal`, ...) and `request_id`; a
/// refusal that knows when to come back adds `retry_after` (seconds) and
/// the `Retry-After` header, a rate limit the `RateLimit` fields, a
/// validation error its field `errors`.
///
/// | failure | status |
/// |---|---|
/// | breaker open, shed, queue full, not ready, shutting down | 503 |
/// | rate limited | 429 |
/// | timeout (tower's, tokio's, an executor's) | 504 |
/// | [`Invalid`] | 422, with the field errors |
/// | anything else, a panic included | 500, no internal detail |
///
/// ```
/// use buttress_degrade::Problem;
///
/// let error: Box<dyn std::error::Error + Send + Sync> = "password=hunter2 rejected by db".into();
/// let problem = Problem::from_error(&*error).with_request_id("req-1");
/// let response: http::Response<String> = problem.into_response();
/// assert_eq!(response.status(), 500);
/// assert_eq!(response.headers()["content-type"], "application/problem+json");
/// let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
/// assert_eq!(body["request_id"], "req-1");
/// assert_eq!(body["kind"], "internal");
/// assert!(!response.body().contains("hunter2"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    status: StatusCode,
    kind: Cow<'static, str>,
    detail: Cow<'static, str>,
    retry_after: Option<Duration>,
    rate_limit: Option<(String, RateLimitPolicy)>,
    errors: Vec<FieldError>,
    request_id: Option<String>,
}

impl Problem {
    /// A problem of your own: a status, a snake_case `kind` for programs,
    /// and a `detail` for people.
    ///
    /// ```
    /// use buttress_degrade::Problem;
    ///
    /// let p = Problem::new(http::StatusCode::NOT_FOUND, "no_such_document", "No document has that id.");
    /// assert_eq!(p.status(), 404);
    /// ```
    pub fn new(
        status: StatusCode,
        kind: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Problem {
            status,
            kind: kind.into(),
            detail: detail.into(),
            retry_after: None,
            rate_limit: None,
            errors: Vec::new(),
            request_id: None,
        }
    }

    /// A `500` that says nothing of its cause.
    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The service failed to answer; quote the request id when you report it.",
        )
    }

    /// The problem for a refusal of `kind`: its status and a sentence that
    /// says what to do.
    pub fn refused(kind: RejectionKind) -> Self {
        let detail = match kind {
            RejectionKind::CircuitOpen => {
                "A service this one depends on is failing, so the request was not tried. Try again later."
            }
            RejectionKind::RateLimited => "Too many requests. Slow down and try again later.",
            RejectionKind::Overloaded => "The service is overloaded. Try again later.",
            RejectionKind::QueueFull => "The service's queue is full. Try again later.",
            RejectionKind::ShuttingDown => {
                "The service is shutting down. Try again; another instance will answer."
            }
            RejectionKind::NotReady => {
                "The service is starting and not ready yet. Try again shortly."
            }
            RejectionKind::TimedOut => "The request took too long and was stopped.",
            // Work that failed inside (`Failed`), and any kind added to
            // buttress-core later: nothing to tell the client.
            _ => return Problem::internal(),
        };
        Problem::new(kind.status(), kind.as_str(), detail)
    }

    /// The problem for an error: the first buttress refusal, timeout or
    /// [`Invalid`] in its `source()` chain decides; anything else is a
    /// `500` with no detail of the error (log the error yourself; the body
    /// is for the client).
    pub fn from_error(error: &(dyn Error + 'static)) -> Self {
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(invalid) = e.downcast_ref::<Invalid>() {
                return Problem::invalid(invalid.clone());
            }
            next = e.source();
        }
        match refusal_in(error) {
            Some(refused) => Problem::from_refusal(&refused),
            None => Problem::internal(),
        }
    }

    /// The problem for a refusal found by [`refusal_in`].
    pub fn from_refusal(refused: &Refused<'_>) -> Self {
        let mut problem = Problem::refused(refused.kind());
        if problem.status == StatusCode::INTERNAL_SERVER_ERROR {
            return problem;
        }
        problem.retry_after = refused.retry_after();
        if let Some(policy) = refused.rate_limit_policy() {
            let name = refused.instance_name().unwrap_or("limit").to_owned();
            problem.rate_limit = Some((name, policy));
        }
        problem
    }

    /// The problem for an error status answered with no body (axum's
    /// `404` for an unknown path, a `405`): its kind is the status's
    /// reason in snake_case (`not_found`), its detail the reason itself.
    /// A `5xx` is [`internal`](Self::internal).
    ///
    /// ```
    /// use buttress_degrade::Problem;
    ///
    /// let p = Problem::for_status(http::StatusCode::METHOD_NOT_ALLOWED);
    /// assert_eq!(p.kind(), "method_not_allowed");
    /// ```
    pub fn for_status(status: StatusCode) -> Self {
        if status.is_server_error() {
            let mut problem = Problem::internal();
            problem.status = status;
            return problem;
        }
        let reason = status.canonical_reason().unwrap_or("Error");
        let kind = reason.to_ascii_lowercase().replace([' ', '-'], "_");
        Problem::new(status, kind, format!("{reason}."))
    }

    /// A `422` listing what is wrong with the request.
    pub fn invalid(invalid: Invalid) -> Self {
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "The request is invalid; `errors` says which fields and why.",
        );
        problem.errors = invalid.errors;
        problem
    }

    /// The same problem, with the request id its body and header carry.
    #[must_use]
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// The same problem, telling the client when to come back.
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The snake_case kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The request id, once set.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The field errors of a validation problem.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// The body, as JSON text.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(256);
        let mut ser = serde_json::Serializer::new(&mut out);
        // Writing a map of strings and numbers into a Vec cannot fail.
        let _ = self.write(&mut ser);
        String::from_utf8(out).unwrap_or_default()
    }

    fn write<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(None)?;
        map.serialize_entry("type", "about:blank")?;
        map.serialize_entry("title", self.status.canonical_reason().unwrap_or("Error"))?;
        map.serialize_entry("status", &self.status.as_u16())?;
        map.serialize_entry("detail", &self.detail)?;
        map.serialize_entry("kind", &self.kind)?;
        map.serialize_entry("request_id", &self.request_id)?;
        if let Some(after) = self.retry_after {
            map.serialize_entry("retry_after", &ceil_secs(after))?;
        }
        if !self.errors.is_empty() {
            map.serialize_entry("errors", &self.errors)?;
        }
        map.end()
    }

    /// The HTTP response: the status, `content-type:
    /// application/problem+json`, `Retry-After` and the RateLimit fields
    /// when they apply, `x-request-id` when the id is set, the JSON body,
    /// and the problem itself as an extension (so an outer
    /// [`ProblemLayer`](crate::ProblemLayer) can add a request id).
    pub fn into_response<B: From<String>>(self) -> Response<B> {
        let mut response = Response::new(B::from(self.to_json()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(after) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(ceil_secs(after)));
        }
        if let Some((name, policy)) = &self.rate_limit {
            let reset = self.retry_after.map_or(0, ceil_secs);
            rate_limit_headers(headers, name, 0, reset, *policy);
        }
        if let Some(id) = self
            .request_id
            .as_deref()
            .and_then(|id| HeaderValue::from_str(id).ok())
        {
            headers.insert(X_REQUEST_ID, id);
        }
        response.extensions_mut().insert(self);
        response
    }
}

impl serde::Serialize for Problem {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        self.write(ser)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.kind, self.detail)
    }
}

/// What is wrong with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field's name (a JSON pointer or a dotted path for nested ones).
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

/// A request that fails validation: its field errors. Answered `422` with
/// the list, by [`Problem::from_error`] and the [`ProblemLayer`](crate::ProblemLayer).
///
/// ```
/// use buttress_degrade::Invalid;
///
/// fn validate(message: &str, domain: &str) -> Result<(), Invalid> {
///     let mut invalid = Invalid::new();
///     let chars = message.chars().count();
///     if !(1..=4000).contains(&chars) {
///         invalid.push("message", format!("must be 1 to 4000 characters; it is {chars}"));
///     }
///     if !["general", "code", "docs"].contains(&domain) {
///         invalid.push("domain", "must be one of general, code, docs");
///     }
///     invalid.into_result()
/// }
/// let err = validate("", "cooking").unwrap_err();
/// assert_eq!(err.errors().len(), 2);
/// assert!(validate("hello", "code").is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("the request is invalid ({} field errors)", .errors.len())]
pub struct Invalid {
    errors: Vec<FieldError>,
}

impl Invalid {
    /// No errors yet.
    pub fn new() -> Self {
        Invalid::default()
    }

    /// Adds an error for `field`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// The errors so far.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// `Ok` when nothing was pushed, else this error.
    pub fn into_result(self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}
