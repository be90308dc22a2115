//! Classification of HTTP responses, and `Retry-After` parsing.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header::RETRY_AFTER};

use crate::classify::{Classification, Classify};
use crate::reject::{RateLimitPolicy, Rejection};

/// Classifies `Result<http::Response<B>, E>`.
///
/// * `Err(_)` (the request never got a response): a failure, retryable when
///   the request is idempotent.
/// * 5xx and 429: failures, retryable (500, 502, 503, 504 and 429) when the
///   request is idempotent; a 503 or 429 carries its `Retry-After` hint.
/// * Every other status, 4xx included: a success. A client error says nothing
///   about the server's health.
///
/// Whether the request is idempotent is known before the call; by default it
/// is assumed to be ([`HttpClassifier::for_method`] decides from the method).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpClassifier {
    idempotent: bool,
}

impl Default for HttpClassifier {
    fn default() -> Self {
        Self { idempotent: true }
    }
}

impl HttpClassifier {
    /// A classifier for idempotent requests.
    ///
    /// ```
    /// use buttress_core::{Classify, HttpClassifier, Outcome};
    ///
    /// let c = HttpClassifier::new();
    /// let busy: Result<http::Response<()>, std::io::Error> =
    ///     Ok(http::Response::builder().status(503).body(()).unwrap());
    /// let verdict = c.classify(&busy);
    /// assert_eq!(verdict.outcome, Outcome::Failure);
    /// assert!(verdict.retryable);
    /// let not_found: Result<http::Response<()>, std::io::Error> =
    ///     Ok(http::Response::builder().status(404).body(()).unwrap());
    /// assert_eq!(c.classify(&not_found).outcome, Outcome::Success); // the client's fault
    /// ```
    pub const fn new() -> Self {
        Self { idempotent: true }
    }

    /// A classifier for a request with `method`: retries are allowed only
    /// for the idempotent methods of RFC 9110 (GET, HEAD, OPTIONS, TRACE,
    /// PUT, DELETE).
    ///
    /// ```
    /// use http::{HeaderMap, Method, StatusCode};
    /// use buttress_core::HttpClassifier;
    ///
    /// let (status, headers) = (StatusCode::BAD_GATEWAY, HeaderMap::new());
    /// let get = HttpClassifier::for_method(&Method::GET);
    /// assert!(get.classify_status(status, &headers).retryable);
    /// let post = HttpClassifier::for_method(&Method::POST);
    /// assert!(!post.classify_status(status, &headers).retryable);
    /// ```
    pub fn for_method(method: &Method) -> Self {
        Self {
            idempotent: method.is_idempotent(),
        }
    }

    /// A classifier that never marks a result retryable.
    ///
    /// ```
    /// use buttress_core::{Classify, HttpClassifier, Outcome};
    ///
    /// let c = HttpClassifier::non_idempotent();
    /// let lost: Result<http::Response<()>, std::io::Error> =
    ///     Err(std::io::ErrorKind::ConnectionReset.into());
    /// let verdict = c.classify(&lost);
    /// assert_eq!(verdict.outcome, Outcome::Failure); // still a failure...
    /// assert!(!verdict.retryable); // ...but the request may have been applied
    /// ```
    pub const fn non_idempotent() -> Self {
        Self { idempotent: false }
    }

    /// The verdict for a status and its headers.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::{HeaderMap, StatusCode};
    /// use buttress_core::{Classification, HttpClassifier};
    ///
    /// let c = HttpClassifier::new();
    /// let mut headers = HeaderMap::new();
    /// headers.insert("retry-after", "30".parse().unwrap());
    /// let verdict = c.classify_status(StatusCode::TOO_MANY_REQUESTS, &headers);
    /// assert!(verdict.retryable);
    /// assert_eq!(verdict.retry_after, Some(Duration::from_secs(30)));
    /// // 501 is a server error, but sending it again will not help.
    /// let verdict = c.classify_status(StatusCode::NOT_IMPLEMENTED, &HeaderMap::new());
    /// assert_eq!(verdict, Classification::FATAL_FAILURE);
    /// ```
    pub fn classify_status(&self, status: StatusCode, headers: &HeaderMap) -> Classification {
        let failure = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
        if !failure {
            return Classification::SUCCESS;
        }
        let transient = matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504);
        let mut c = if transient && self.idempotent {
            Classification::RETRYABLE_FAILURE
        } else {
            Classification::FATAL_FAILURE
        };
        // RFC 9110 gives `Retry-After` a meaning on 503 and 429 only.
        if matches!(status.as_u16(), 429 | 503) {
            c.retry_after = parse_retry_after(headers, SystemTime::now());
        }
        c
    }
}

impl<B, E> Classify<Response<B>, E> for HttpClassifier {
    fn classify(&self, result: &Result<Response<B>, E>) -> Classification {
        match result {
            Ok(resp) => self.classify_status(resp.status(), resp.headers()),
            Err(_) if self.idempotent => Classification::RETRYABLE_FAILURE,
            Err(_) => Classification::FATAL_FAILURE,
        }
    }
}

/// The longest `Retry-After` buttress will believe: one day. A larger value
/// is clamped, so a hostile header cannot overflow a deadline.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Reads a `Retry-After` header: delay-seconds or an HTTP date (relative to
/// `now`). Returns `None` when the header is absent or malformed; a date in
/// the past gives zero; anything above one day is clamped to one day.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use buttress_core::parse_retry_after;
///
/// let mut h = HeaderMap::new();
/// h.insert("retry-after", "120".parse().unwrap());
/// assert_eq!(parse_retry_after(&h, SystemTime::now()), Some(Duration::from_secs(120)));
/// ```
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: delay-seconds. Saturate absurdly long numbers.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// Whole seconds of `d`, rounded up: what `Retry-After` and the IETF
/// RateLimit fields carry (a client told `0` would come back at once).
///
/// ```
/// use std::time::Duration;
/// use buttress_core::ceil_secs;
///
/// assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
/// assert_eq!(ceil_secs(Duration::from_millis(1500)), 2);
/// assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
/// assert_eq!(ceil_secs(Duration::ZERO), 0);
/// ```
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// An empty (`Default`-bodied) `503 Service Unavailable`, with
/// `Retry-After` in whole seconds rounded up when `retry_after` is known:
/// the answer every buttress layer gives for work it refuses.
///
/// ```
/// use std::time::Duration;
/// use buttress_core::service_unavailable;
///
/// let r: http::Response<String> = service_unavailable(Some(Duration::from_millis(1200)));
/// assert_eq!(r.status(), http::StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(r.headers()["retry-after"], "2");
/// assert!(r.body().is_empty());
/// let r: http::Response<String> = service_unavailable(None);
/// assert!(r.headers().get("retry-after").is_none());
/// ```
pub fn service_unavailable<B: Default>(retry_after: Option<Duration>) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(ceil_secs(after)));
    }
    response
}

/// The HTTP answer to a refusal: the status of its kind, `Retry-After`
/// when known, the RateLimit fields on a rate-limit refusal, an empty
/// body, and the refusal and its [`RejectionKind`](crate::RejectionKind)
/// as extensions (the kind for a layer that renders a body without
/// knowing the refusal's type). What [`HttpStatus`](crate::HttpStatus)
/// returns.
pub(crate) fn rejection_response<R, B>(rejection: R) -> Response<B>
where
    R: Rejection + Clone,
    B: Default,
{
    let mut response = Response::new(B::default());
    *response.status_mut() = rejection.kind().status();
    let retry_after = rejection.retry_after();
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(ceil_secs(after)));
    }
    if let Some(policy) = rejection.rate_limit_policy() {
        let name = rejection.instance_name().unwrap_or("limit");
        let reset = retry_after.map_or(0, ceil_secs);
        rate_limit_headers(response.headers_mut(), name, 0, reset, policy);
    }
    response.extensions_mut().insert(rejection.kind());
    response.extensions_mut().insert(rejection);
    response
}

/// Sets the IETF RateLimit header fields:
/// `RateLimit: "<name>";r=<remaining>;t=<reset>` and
/// `RateLimit-Policy: "<name>";q=<burst>;w=<window seconds>`. Quotes and
/// backslashes in the name become `_`.
///
/// ```
/// use std::time::Duration;
/// use buttress_core::{RateLimitPolicy, rate_limit_headers};
///
/// let mut h = http::HeaderMap::new();
/// let policy = RateLimitPolicy { burst: 10, window: Duration::from_secs(4) };
/// rate_limit_headers(&mut h, "api", 3, 2, policy);
/// assert_eq!(h["ratelimit"], "\"api\";r=3;t=2");
/// assert_eq!(h["ratelimit-policy"], "\"api\";q=10;w=4");
/// ```
pub fn rate_limit_headers(
    headers: &mut HeaderMap,
    name: &str,
    remaining: u32,
    reset_secs: u64,
    policy: RateLimitPolicy,
) {
    let window = ceil_secs(policy.window);
    let name = name.replace(['"', '\\'], "_");
    if let Ok(v) = HeaderValue::from_str(&format!("\"{name}\";r={remaining};t={reset_secs}")) {
        headers.insert("ratelimit", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{name}\";q={};w={window}", policy.burst)) {
        headers.insert("ratelimit-policy", v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, retry_after: Option<&str>) -> Result<Response<()>, ()> {
        let mut b = Response::builder().status(status);
        if let Some(v) = retry_after {
            b = b.header(RETRY_AFTER, v);
        }
        Ok(b.body(()).expect("valid response"))
    }

    #[test]
    fn statuses() {
        let c = HttpClassifier::new();
        assert_eq!(c.classify(&resp(200, None)), Classification::SUCCESS);
        assert_eq!(c.classify(&resp(404, None)), Classification::SUCCESS);
        assert_eq!(
            c.classify(&resp(503, None)),
            Classification::RETRYABLE_FAILURE
        );
        assert_eq!(c.classify(&resp(501, None)), Classification::FATAL_FAILURE);
        let r = c.classify(&resp(429, Some("7")));
        assert!(r.retryable);
        assert_eq!(r.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(c.classify(&resp(500, Some("7"))).retry_after, None);
        assert_eq!(
            c.classify(&resp(503, Some("7"))).retry_after,
            Some(Duration::from_secs(7))
        );
        let err: Result<Response<()>, ()> = Err(());
        assert!(c.classify(&err).retryable);
        assert!(
            !HttpClassifier::for_method(&Method::POST)
                .classify(&err)
                .retryable
        );
        assert!(
            !HttpClassifier::non_idempotent()
                .classify(&resp(503, None))
                .retryable
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let mut h = HeaderMap::new();
        let parse = |h: &HeaderMap| parse_retry_after(h, now);
        assert_eq!(parse(&h), None);
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:30 GMT".parse().expect("hv"),
        );
        assert_eq!(parse(&h), Some(Duration::from_secs(30)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:00:00 GMT".parse().expect("hv"),
        );
        assert_eq!(parse(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, "99999999999999999999999".parse().expect("hv"));
        assert_eq!(parse(&h), Some(MAX_RETRY_AFTER));
        for bad in ["-1", "1.5", "soon", "", "0x10"] {
            h.insert(RETRY_AFTER, bad.parse().expect("hv"));
            assert_eq!(parse(&h), None, "{bad:?}");
        }
    }
}
