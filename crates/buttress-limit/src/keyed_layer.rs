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
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Http429;

#[cfg(feature = "http")]
impl<B: Default, E> OnLimited<http::Response<B>, E> for Http429 {
    type Error = E;

    fn on_limited(&self, limited: RateLimited, quota: Quota) -> Result<http::Response<B>, E> {
        use http::HeaderValue;
        let mut r = http::Response::new(B::default());
        *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
        let secs = |d: std::time::Duration| d.as_secs() + u64::from(d.subsec_nanos() > 0);
        let window = secs(quota.interval() * quota.burst());
        let name = limited.name().replace(['"', '\\'], "_");
        let h = r.headers_mut();
        if let Some(after) = limited.retry_after() {
            h.insert(http::header::RETRY_AFTER, HeaderValue::from(secs(after)));
            if let Ok(v) = HeaderValue::from_str(&format!("\"{name}\";r=0;t={}", secs(after))) {
                h.insert("ratelimit", v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&format!("\"{name}\";q={};w={window}", quota.burst()))
        {
            h.insert("ratelimit-policy", v);
        }
        r.extensions_mut().insert(limited);
        Ok(r)
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
        self.on_limited(Http429)
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
    R: OnLimited<S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = KeyedResponseFuture<S::Future, S::Response, R::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(R::Error::from)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = (self.key)(&req);
        match self.limiter.check(&key) {
            Ok(()) => KeyedResponseFuture {
                kind: Kind::Called {
                    future: self.inner.call(req),
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

pin_project! {
    /// The response future of [`KeyedRateLimitService`].
    pub struct KeyedResponseFuture<F, T, E> {
        #[pin]
        kind: Kind<F, T, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, T, E> {
        Called { #[pin] future: F },
        Rejected { result: Option<Result<T, E>> },
    }
}

impl<F, T, E> fmt::Debug for KeyedResponseFuture<F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedResponseFuture")
    }
}

impl<F, T, E, E2> Future for KeyedResponseFuture<F, T, E2>
where
    F: Future<Output = Result<T, E>>,
    E2: From<E>,
{
    type Output = Result<T, E2>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future } => future.poll(cx).map_err(E2::from),
            // A rejected future is built ready and polled once; polling it
            // again breaks the `Future` contract and pends forever.
            KindProj::Rejected { result } => match result.take() {
                Some(r) => Poll::Ready(r),
                None => Poll::Pending,
            },
        }
    }
}
