//! The tower layer for keyed limits.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{BoxError, RateLimited};
use crate::keyed::KeyedRateLimiter;
use crate::quota::Quota;

/// Turns a refusal into the service's result, and so decides the
/// service's error type: a handler that answers with a response keeps the
/// inner service's error (axum needs `Infallible`), one that fails uses
/// tower's `BoxError`.
pub trait OnLimited<Response, InnerError> {
    /// The service's error type.
    type Error: From<InnerError>;
    /// The result of a refused request.
    fn on_limited(&self, limited: RateLimited, quota: Quota) -> Result<Response, Self::Error>;

    /// Whether admitted responses should be shown to
    /// [`on_admitted`](OnLimited::on_admitted) (costs a little per request).
    fn wants_admitted(&self) -> bool {
        false
    }

    /// Decorates an admitted request's response, for example with the
    /// quota left.
    fn on_admitted(&self, response: &mut Response, name: &str, remaining: u32, quota: Quota) {
        let _ = (response, name, remaining, quota);
    }
}

/// Refused requests fail with a boxed [`RateLimited`] (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectWithError;

impl<Response, E> OnLimited<Response, E> for RejectWithError
where
    BoxError: From<E>,
{
    type Error = BoxError;

    fn on_limited(&self, limited: RateLimited, _: Quota) -> Result<Response, BoxError> {
        Err(Box::new(limited))
    }
}

/// Refused requests are answered `429 Too Many Requests` with `Retry-After`
/// (whole seconds, rounded up) and the IETF RateLimit header fields
/// (`RateLimit-Policy: "<name>";q=<burst>;w=<seconds>` and
/// `RateLimit: "<name>";r=0;t=<seconds>`), and an empty (`Default`) body.
/// With [`Http429::with_success_headers`], admitted responses carry the
/// same fields with the quota left.
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Http429 {
    success_headers: bool,
}

#[cfg(feature = "http")]
impl Http429 {
    /// Also put `RateLimit` and `RateLimit-Policy` on admitted responses.
    pub fn with_success_headers() -> Self {
        Self {
            success_headers: true,
        }
    }
}

#[cfg(feature = "http")]
fn ratelimit_headers(
    h: &mut http::HeaderMap,
    name: &str,
    remaining: u32,
    reset: u64,
    quota: Quota,
) {
    use http::HeaderValue;
    let window = buttress_core::ceil_secs(quota.interval() * quota.burst());
    let name = name.replace(['"', '\\'], "_");
    if let Ok(v) = HeaderValue::from_str(&format!("\"{name}\";r={remaining};t={reset}")) {
        h.insert("ratelimit", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{name}\";q={};w={window}", quota.burst())) {
        h.insert("ratelimit-policy", v);
    }
}

#[cfg(feature = "http")]
impl<B: Default, E> OnLimited<http::Response<B>, E> for Http429 {
    type Error = E;

    fn on_limited(&self, limited: RateLimited, quota: Quota) -> Result<http::Response<B>, E> {
        let mut r = http::Response::new(B::default());
        *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
        let reset = limited.retry_after().map_or(0, buttress_core::ceil_secs);
        if limited.retry_after().is_some() {
            r.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(reset));
        }
        ratelimit_headers(r.headers_mut(), limited.name(), 0, reset, quota);
        r.extensions_mut().insert(limited);
        Ok(r)
    }

    fn wants_admitted(&self) -> bool {
        self.success_headers
    }

    fn on_admitted(
        &self,
        response: &mut http::Response<B>,
        name: &str,
        remaining: u32,
        quota: Quota,
    ) {
        // Time until the bucket is full again, in whole seconds.
        let missing = quota.burst().saturating_sub(remaining);
        let reset = buttress_core::ceil_secs(quota.interval() * missing);
        ratelimit_headers(response.headers_mut(), name, remaining, reset, quota);
    }
}

/// Limits each key's requests separately; the key comes from the request.
///
/// ```
/// use std::net::IpAddr;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use buttress_limit::{KeyedRateLimiter, KeyedRateLimitLayer, Quota};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let limiter: KeyedRateLimiter<String> =
///     KeyedRateLimiter::builder("per-tenant", Quota::per_second(100).unwrap()).build().unwrap();
/// let svc = ServiceBuilder::new()
///     .layer(KeyedRateLimitLayer::new(limiter, |req: &(String, u32)| req.0.clone()))
///     .service(service_fn(|req: (String, u32)| async move { Ok::<_, std::io::Error>(req.1) }));
/// assert_eq!(svc.oneshot(("acme".to_string(), 7)).await.unwrap(), 7);
/// # });
/// ```
#[derive(Clone)]
pub struct KeyedRateLimitLayer<K, X, R = RejectWithError> {
    limiter: KeyedRateLimiter<K>,
    key: X,
    on_limited: R,
}

impl<K, X, R: fmt::Debug> fmt::Debug for KeyedRateLimitLayer<K, X, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimitLayer")
            .field("limiter", &self.limiter)
            .field("on_limited", &self.on_limited)
            .finish_non_exhaustive()
    }
}

impl<K, X> KeyedRateLimitLayer<K, X> {
    /// Limits by `key(&request)`.
    pub fn new(limiter: KeyedRateLimiter<K>, key: X) -> Self {
        Self {
            limiter,
            key,
            on_limited: RejectWithError,
        }
    }
}

impl<K, X, R> KeyedRateLimitLayer<K, X, R> {
    /// Answers refused requests with `on_limited`.
    pub fn on_limited<R2>(self, on_limited: R2) -> KeyedRateLimitLayer<K, X, R2> {
        KeyedRateLimitLayer {
            limiter: self.limiter,
            key: self.key,
            on_limited,
        }
    }

    /// Answers refused requests `429` with `Retry-After` and RateLimit
    /// headers.
    #[cfg(feature = "http")]
    pub fn http(self) -> KeyedRateLimitLayer<K, X, Http429> {
        self.on_limited(Http429::default())
    }
}

impl<S, K, X: Clone, R: Clone> Layer<S> for KeyedRateLimitLayer<K, X, R> {
    type Service = KeyedRateLimitService<S, K, X, R>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedRateLimitService {
            inner,
            limiter: self.limiter.clone(),
            key: self.key.clone(),
            on_limited: self.on_limited.clone(),
        }
    }
}

/// A service limited per key; made by [`KeyedRateLimitLayer`]. The key is
/// known only from the request, so the limit is checked in `call`; a
/// refused request never reaches the inner service.
#[derive(Clone)]
pub struct KeyedRateLimitService<S, K, X, R> {
    inner: S,
    limiter: KeyedRateLimiter<K>,
    key: X,
    on_limited: R,
}

impl<S: fmt::Debug, K, X, R> fmt::Debug for KeyedRateLimitService<S, K, X, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimitService")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<S, K, X, R, Req> Service<Req> for KeyedRateLimitService<S, K, X, R>
where
    S: Service<Req>,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    X: Fn(&Req) -> K,
    R: OnLimited<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = KeyedResponseFuture<S::Future, S::Response, R::Error, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(R::Error::from)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = (self.key)(&req);
        let decision = if self.on_limited.wants_admitted() {
            self.limiter.check_remaining(&key, 1)
        } else {
            self.limiter.check_n(&key, 1).map(|()| 0)
        };
        match decision {
            Ok(remaining) => KeyedResponseFuture {
                kind: Kind::Called {
                    future: self.inner.call(req),
                    admitted: self.on_limited.wants_admitted().then(|| Admitted {
                        handler: self.on_limited.clone(),
                        name: self.limiter.name().clone(),
                        remaining,
                        quota: self.limiter.quota(),
                    }),
                },
            },
            Err(e) => KeyedResponseFuture {
                kind: Kind::Rejected {
                    result: Some(self.on_limited.on_limited(e, self.limiter.quota())),
                },
            },
        }
    }
}

/// What an admitted response is decorated with.
struct Admitted<R> {
    handler: R,
    name: buttress_core::Name,
    remaining: u32,
    quota: Quota,
}

pin_project! {
    /// The response future of [`KeyedRateLimitService`].
    pub struct KeyedResponseFuture<F, T, E, R> {
        #[pin]
        kind: Kind<F, T, E, R>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, T, E, R> {
        Called { #[pin] future: F, admitted: Option<Admitted<R>> },
        Rejected { result: Option<Result<T, E>> },
    }
}

impl<F, T, E, R> fmt::Debug for KeyedResponseFuture<F, T, E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedResponseFuture")
    }
}

impl<F, T, E, E2, R> Future for KeyedResponseFuture<F, T, E2, R>
where
    F: Future<Output = Result<T, E>>,
    E2: From<E>,
    R: OnLimited<T, E>,
{
    type Output = Result<T, E2>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future, admitted } => {
                let mut result = std::task::ready!(future.poll(cx));
                if let (Ok(response), Some(a)) = (&mut result, admitted.take()) {
                    a.handler
                        .on_admitted(response, a.name.as_str(), a.remaining, a.quota);
                }
                Poll::Ready(result.map_err(E2::from))
            }
            // A rejected future is built ready and polled once; polling it
            // again breaks the `Future` contract and pends forever.
            KindProj::Rejected { result } => match result.take() {
                Some(r) => Poll::Ready(r),
                None => Poll::Pending,
            },
        }
    }
}
