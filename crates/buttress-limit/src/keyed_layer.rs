//! The tower layer for keyed limits.

use std::fmt;
use std::hash::Hash;
use std::task::{Context, Poll};

use buttress_core::{OnReject, RejectWithError};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::RateLimited;
use crate::future::{Admitted, KeyedResponseFuture};
use crate::keyed::KeyedRateLimiter;
use crate::quota::Quota;

/// Decorates admitted responses, for example with the quota left. The
/// keyed layer's second handler beside its [`OnReject`] one: the default,
/// [`NoHeaders`], costs nothing; [`SuccessHeaders`] (feature `http`) adds
/// the IETF RateLimit fields.
pub trait OnAdmitted<Response> {
    /// Whether admitted responses are shown to
    /// [`on_admitted`](OnAdmitted::on_admitted) (it costs a little per
    /// request: the limiter reports the tokens left).
    fn wants_admitted(&self) -> bool;

    /// Decorates an admitted request's response.
    fn on_admitted(&self, response: &mut Response, name: &str, remaining: u32, quota: Quota);
}

/// Admitted responses are left as they are (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHeaders;

impl<Response> OnAdmitted<Response> for NoHeaders {
    #[inline]
    fn wants_admitted(&self) -> bool {
        false
    }

    #[inline]
    fn on_admitted(&self, _: &mut Response, _: &str, _: u32, _: Quota) {}
}

/// Admitted responses carry the IETF `RateLimit` and `RateLimit-Policy`
/// fields with the quota left, as refused ones do under
/// [`HttpStatus`](buttress_core::HttpStatus).
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct SuccessHeaders;

#[cfg(feature = "http")]
impl<B> OnAdmitted<http::Response<B>> for SuccessHeaders {
    fn wants_admitted(&self) -> bool {
        true
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
        let policy = buttress_core::RateLimitPolicy {
            burst: quota.burst(),
            window: quota.interval() * quota.burst(),
        };
        buttress_core::rate_limit_headers(response.headers_mut(), name, remaining, reset, policy);
    }
}

/// Limits each key's requests separately; the key comes from the request.
///
/// Refused requests go to the rejection handler (`R`, default
/// [`RejectWithError`]: tower's `BoxError` holding a [`RateLimited`]);
/// [`http`](KeyedRateLimitLayer::http) answers them `429` instead and keeps
/// the inner service's error, so the layer goes into an axum `Router`.
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
pub struct KeyedRateLimitLayer<K, X, R = RejectWithError, A = NoHeaders> {
    limiter: KeyedRateLimiter<K>,
    key: X,
    on_rejected: R,
    on_admitted: A,
}

impl<K, X, R: fmt::Debug, A: fmt::Debug> fmt::Debug for KeyedRateLimitLayer<K, X, R, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimitLayer")
            .field("limiter", &self.limiter)
            .field("on_rejected", &self.on_rejected)
            .field("on_admitted", &self.on_admitted)
            .finish_non_exhaustive()
    }
}

impl<K, X> KeyedRateLimitLayer<K, X> {
    /// Limits by `key(&request)`.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{KeyedRateLimitLayer, KeyedRateLimiter, Quota, RateLimited};
    ///
    /// let limiter = KeyedRateLimiter::builder("per-tenant", Quota::per_hour(1)?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// let svc = KeyedRateLimitLayer::new(limiter, |(tenant, _): &(&'static str, u32)| *tenant)
    ///     .layer(service_fn(|(_, x): (&str, u32)| async move { Ok::<_, std::io::Error>(x) }));
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// assert_eq!(svc.clone().oneshot(("acme", 1)).await.unwrap(), 1);
    /// let err = svc.clone().oneshot(("acme", 2)).await.unwrap_err();
    /// assert!(err.downcast_ref::<RateLimited>().is_some()); // acme's hour is spent
    /// assert_eq!(svc.clone().oneshot(("globex", 3)).await.unwrap(), 3); // globex has its own
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(limiter: KeyedRateLimiter<K>, key: X) -> Self {
        Self {
            limiter,
            key,
            on_rejected: RejectWithError,
            on_admitted: NoHeaders,
        }
    }
}

impl<K, X, R, A> KeyedRateLimitLayer<K, X, R, A> {
    /// Uses `on_rejected` (any [`OnReject`] handler) to answer refused
    /// requests; it decides the service's error type.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{KeyedRateLimitLayer, KeyedRateLimiter, OnReject, Quota, RateLimited};
    ///
    /// /// Refused requests are told, in the answer, when to come back.
    /// #[derive(Clone)]
    /// struct SlowDown;
    /// impl OnReject<RateLimited, String, Infallible> for SlowDown {
    ///     type Error = Infallible;
    ///     fn on_reject(&self, r: RateLimited) -> Result<String, Infallible> {
    ///         Ok(format!("slow down, {:?}", r.retry_after()))
    ///     }
    /// }
    ///
    /// let limiter = KeyedRateLimiter::builder("per-user", Quota::per_minute(1)?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// let svc = KeyedRateLimitLayer::new(limiter, |user: &u64| *user)
    ///     .on_rejected(SlowDown)
    ///     .layer(service_fn(|user: u64| async move { Ok::<_, Infallible>(format!("hi {user}")) }));
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// assert_eq!(svc.clone().oneshot(7).await, Ok("hi 7".to_string()));
    /// assert_eq!(svc.clone().oneshot(7).await, Ok("slow down, Some(60s)".to_string()));
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_rejected<R2>(self, on_rejected: R2) -> KeyedRateLimitLayer<K, X, R2, A> {
        KeyedRateLimitLayer {
            limiter: self.limiter,
            key: self.key,
            on_rejected,
            on_admitted: self.on_admitted,
        }
    }

    /// Uses `on_admitted` to decorate admitted responses.
    ///
    /// ```
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{KeyedRateLimitLayer, KeyedRateLimiter, OnAdmitted, Quota};
    ///
    /// /// Tells each client how many requests it has left.
    /// #[derive(Clone)]
    /// struct Remaining;
    /// impl OnAdmitted<String> for Remaining {
    ///     fn wants_admitted(&self) -> bool {
    ///         true
    ///     }
    ///     fn on_admitted(&self, response: &mut String, _: &str, remaining: u32, _: Quota) {
    ///         response.push_str(&format!(" ({remaining} left)"));
    ///     }
    /// }
    ///
    /// let limiter = KeyedRateLimiter::builder("per-user", Quota::per_minute(3)?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// let svc = KeyedRateLimitLayer::new(limiter, |user: &u64| *user)
    ///     .on_admitted(Remaining)
    ///     .layer(service_fn(|_: u64| async { Ok::<_, std::io::Error>("ok".to_string()) }));
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// assert_eq!(svc.clone().oneshot(7).await.unwrap(), "ok (2 left)");
    /// assert_eq!(svc.clone().oneshot(7).await.unwrap(), "ok (1 left)");
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_admitted<A2>(self, on_admitted: A2) -> KeyedRateLimitLayer<K, X, R, A2> {
        KeyedRateLimitLayer {
            limiter: self.limiter,
            key: self.key,
            on_rejected: self.on_rejected,
            on_admitted,
        }
    }

    /// Answers refused requests `429` with `Retry-After` and the RateLimit
    /// header fields, keeping the inner service's error.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response, StatusCode};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{KeyedRateLimitLayer, KeyedRateLimiter, Quota};
    ///
    /// let limiter = KeyedRateLimiter::builder("per-path", Quota::per_minute(1)?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// let svc = KeyedRateLimitLayer::new(limiter, |req: &Request<()>| req.uri().path().to_owned())
    ///     .http()
    ///     .layer(service_fn(|_: Request<()>| async {
    ///         Ok::<_, Infallible>(Response::new(String::new()))
    ///     }));
    /// let get = |path: &str| Request::get(path).body(()).unwrap();
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// assert_eq!(svc.clone().oneshot(get("/a")).await?.status(), StatusCode::OK);
    /// let refused = svc.clone().oneshot(get("/a")).await?;
    /// assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    /// assert_eq!(refused.headers()["retry-after"], "60");
    /// assert_eq!(svc.clone().oneshot(get("/b")).await?.status(), StatusCode::OK);
    /// # Ok::<(), Infallible>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn http(self) -> KeyedRateLimitLayer<K, X, buttress_core::HttpStatus, A> {
        self.on_rejected(buttress_core::HttpStatus)
    }

    /// Admitted responses carry the RateLimit header fields with the
    /// quota left. Pair it with [`http`](Self::http) for refusals too, and
    /// for a layer that keeps the inner service's error (what an axum
    /// `Router` needs); on its own it leaves refusals as errors.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{KeyedRateLimitLayer, KeyedRateLimiter, Quota};
    ///
    /// let limiter = KeyedRateLimiter::builder("api", Quota::per_minute(10)?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// let svc = KeyedRateLimitLayer::new(limiter, |_: &Request<()>| "everyone")
    ///     .http() // refusals too: `429` with the same fields
    ///     .success_headers()
    ///     .layer(service_fn(|_: Request<()>| async {
    ///         Ok::<_, Infallible>(Response::new(String::new()))
    ///     }));
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let response = svc.oneshot(Request::new(())).await?;
    /// // 9 of 10 left; the one taken is back in 6 s; the window is 60 s.
    /// assert_eq!(response.headers()["ratelimit"], "\"api\";r=9;t=6");
    /// assert_eq!(response.headers()["ratelimit-policy"], "\"api\";q=10;w=60");
    /// # Ok::<(), Infallible>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn success_headers(self) -> KeyedRateLimitLayer<K, X, R, SuccessHeaders> {
        self.on_admitted(SuccessHeaders)
    }
}

impl<S, K, X: Clone, R: Clone, A: Clone> Layer<S> for KeyedRateLimitLayer<K, X, R, A> {
    type Service = KeyedRateLimitService<S, K, X, R, A>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedRateLimitService {
            inner,
            limiter: self.limiter.clone(),
            key: self.key.clone(),
            on_rejected: self.on_rejected.clone(),
            on_admitted: self.on_admitted.clone(),
        }
    }
}

/// A service limited per key; made by [`KeyedRateLimitLayer`]. The key is
/// known only from the request, so the limit is checked in `call`; a
/// refused request never reaches the inner service.
#[derive(Clone)]
pub struct KeyedRateLimitService<S, K, X, R = RejectWithError, A = NoHeaders> {
    inner: S,
    limiter: KeyedRateLimiter<K>,
    key: X,
    on_rejected: R,
    on_admitted: A,
}

impl<S: fmt::Debug, K, X, R, A> fmt::Debug for KeyedRateLimitService<S, K, X, R, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimitService")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<S, K, X, R, A, Req> Service<Req> for KeyedRateLimitService<S, K, X, R, A>
where
    S: Service<Req>,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    X: Fn(&Req) -> K,
    R: OnReject<RateLimited, S::Response, S::Error>,
    A: OnAdmitted<S::Response> + Clone,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = KeyedResponseFuture<S::Future, S::Response, R::Error, A>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(R::Error::from)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = (self.key)(&req);
        let decorate = self.on_admitted.wants_admitted();
        let decision = if decorate {
            self.limiter.check_remaining(&key, 1)
        } else {
            self.limiter.check_n(&key, 1).map(|()| 0)
        };
        match decision {
            Ok(remaining) => KeyedResponseFuture::called(
                self.inner.call(req),
                decorate.then(|| Admitted {
                    handler: self.on_admitted.clone(),
                    name: self.limiter.name().clone(),
                    remaining,
                    quota: self.limiter.quota(),
                }),
            ),
            Err(e) => KeyedResponseFuture::rejected(self.on_rejected.on_reject(e)),
        }
    }
}
