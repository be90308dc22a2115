//! Copying a request for another attempt.

/// Makes the copy of a request that another attempt will send. `None`
/// means the request cannot be sent again: it is sent once and not retried,
/// and that is counted (`buttress_retry_not_cloneable_total`) and logged,
/// never silent.
pub trait CloneRequest<Req> {
    /// A copy of `req` for another attempt, if one can be made.
    fn clone_request(&self, req: &Req) -> Option<Req>;
}

/// Clones every request with `Clone` (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct CloneAll;

impl<Req: Clone> CloneRequest<Req> for CloneAll {
    #[inline]
    fn clone_request(&self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

/// Copies requests with a closure; see [`clone_with`].
#[derive(Clone, Copy)]
pub struct CloneWith<F>(F);

impl<F> std::fmt::Debug for CloneWith<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CloneWith(..)")
    }
}

/// Copies requests with `f`, which returns `None` for a request that must
/// not be sent twice (a streamed body, a non-idempotent call).
///
/// ```
/// use buttress_retry::{CloneRequest, clone_with};
///
/// enum Request {
///     Get(String),
///     Upload(Box<dyn std::io::Read>), // a one-shot body
/// }
///
/// let cloner = clone_with(|r: &Request| match r {
///     Request::Get(key) => Some(Request::Get(key.clone())),
///     Request::Upload(_) => None, // sent once, never retried
/// });
/// assert!(cloner.clone_request(&Request::Get("a".into())).is_some());
/// assert!(cloner.clone_request(&Request::Upload(Box::new(std::io::empty()))).is_none());
/// // Give it to a layer with `RetryLayer::cloner`.
/// ```
pub fn clone_with<Req, F: Fn(&Req) -> Option<Req>>(f: F) -> CloneWith<F> {
    CloneWith(f)
}

impl<Req, F: Fn(&Req) -> Option<Req>> CloneRequest<Req> for CloneWith<F> {
    fn clone_request(&self, req: &Req) -> Option<Req> {
        (self.0)(req)
    }
}

/// Copies `http::Request`s of the idempotent methods (GET, HEAD, OPTIONS,
/// TRACE, PUT, DELETE) whose body is `Clone`: method, URI, version, headers
/// and body. Extensions cannot be cloned and are not copied. Requests of
/// other methods are sent once.
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy, Default)]
pub struct IdempotentHttp;

#[cfg(feature = "http")]
impl<B: Clone> CloneRequest<http::Request<B>> for IdempotentHttp {
    fn clone_request(&self, req: &http::Request<B>) -> Option<http::Request<B>> {
        if !req.method().is_idempotent() {
            return None;
        }
        let mut copy = http::Request::new(req.body().clone());
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.version_mut() = req.version();
        *copy.headers_mut() = req.headers().clone();
        Some(copy)
    }
}
