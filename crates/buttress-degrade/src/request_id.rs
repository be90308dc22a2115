//! The request id every problem body and degraded answer carries: read
//! from `x-request-id` (tower-http's layers set and propagate it), made
//! when absent or unusable.

use http::header::HeaderName;
use http::{HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, MakeRequestUuid, RequestId};

/// `x-request-id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id kept from a client; a longer one is replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a client's request id is kept: 1 to 128 visible ASCII
/// characters. Anything else (empty, huge, control characters, non-ASCII)
/// is replaced by a fresh one, so a hostile header never reaches a body
/// or a log line.
///
/// ```
/// use buttress_degrade::is_usable_request_id;
///
/// assert!(is_usable_request_id(b"4f1c-9a"));
/// assert!(!is_usable_request_id(b""));
/// assert!(!is_usable_request_id(b"a b"));
/// assert!(!is_usable_request_id(&[b'x'; 200]));
/// ```
pub fn is_usable_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}

/// The request's id, from tower-http's [`RequestId`] extension or the
/// `x-request-id` header; a fresh UUID (v4) when there is none or it is
/// not [usable](is_usable_request_id), written back to the request's
/// header and extension so inner services see the same id.
///
/// ```
/// use buttress_degrade::ensure_request_id;
///
/// let mut request = http::Request::builder().header("x-request-id", "abc-1").body(()).unwrap();
/// assert_eq!(ensure_request_id(&mut request), "abc-1");
/// let mut request = http::Request::new(());
/// let made = ensure_request_id(&mut request);
/// assert_eq!(made.len(), 36);
/// assert_eq!(request.headers()["x-request-id"], made.as_str());
/// ```
pub fn ensure_request_id<B>(request: &mut Request<B>) -> String {
    if let Some(id) = request_id_of(request) {
        return id.to_owned();
    }
    let made = MakeRequestUuid
        .make_request_id(request)
        .map(|id| id.into_header_value())
        .unwrap_or_else(|| HeaderValue::from_static("unknown"));
    let id = made.to_str().unwrap_or("unknown").to_owned();
    request.headers_mut().insert(X_REQUEST_ID, made.clone());
    request.extensions_mut().insert(RequestId::new(made));
    id
}

/// The id [`ensure_request_id`] gave a request, for a handler that builds
/// a body of its own (a degraded answer with `"request_id"`).
///
/// ```
/// use buttress_degrade::{ensure_request_id, request_id_of};
///
/// let mut request = http::Request::new(());
/// let id = ensure_request_id(&mut request);
/// assert_eq!(request_id_of(&request), Some(id.as_str()));
/// ```
pub fn request_id_of<B>(request: &Request<B>) -> Option<&str> {
    request
        .extensions()
        .get::<RequestId>()
        .map(RequestId::header_value)
        .or_else(|| request.headers().get(X_REQUEST_ID))
        .filter(|v| is_usable_request_id(v.as_bytes()))
        .and_then(|v| v.to_str().ok())
}
