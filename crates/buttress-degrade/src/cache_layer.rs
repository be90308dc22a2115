//! The stale cache as a tower layer.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use buttress_core::BoxError;
use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

use crate::cache::StaleCache;
use crate::degraded::Mark;

/// Puts a [`StaleCache`] in front of a service: requests with a key (from
/// a function of the request; `None` passes a request straight through)
/// are answered from the cache, identical concurrent misses make one call,
/// and a stale entry is served, marked degraded, when the upstream fails.
///
/// The inner service is cloned per miss and made ready only then, so a
/// hit never waits on the upstream's readiness (a rate limit, a breaker).
/// Errors are boxed; one shared by coalesced callers is a
/// [`SharedError`] whose `source()` is the upstream's error, so
/// [`reason_of`](crate::reason_of) and [`Problem`](crate::Problem) still
/// see through it.
///
/// ```
/// use std::time::Duration;
/// use buttress_degrade::{CacheLayer, Served, StaleCache};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let cache = StaleCache::builder("search").ttl(Duration::from_secs(300)).build()?;
/// let search = service_fn(|q: String| async move { Ok::<_, std::io::Error>(Served::normal(q.len())) });
/// let svc = CacheLayer::new(cache, |q: &String| Some(q.clone())).layer(search);
/// assert_eq!(svc.oneshot("rust".to_owned()).await?.value, 4);
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(()) }).unwrap();
/// ```
pub struct CacheLayer<K, V, F> {
    cache: StaleCache<K, V>,
    key: Arc<F>,
}

impl<K, V, F> CacheLayer<K, V, F> {
    /// A layer over `cache`, keyed by `key(&request)`.
    pub fn new(cache: StaleCache<K, V>, key: F) -> Self {
        CacheLayer {
            cache,
            key: Arc::new(key),
        }
    }
}

impl<K, V, F> Clone for CacheLayer<K, V, F> {
    fn clone(&self) -> Self {
        CacheLayer {
            cache: self.cache.clone(),
            key: Arc::clone(&self.key),
        }
    }
}

impl<S, K, V, F> Layer<S> for CacheLayer<K, V, F> {
    type Service = CacheService<S, K, V, F>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService {
            inner,
            cache: self.cache.clone(),
            key: Arc::clone(&self.key),
        }
    }
}

impl<K, V, F> fmt::Debug for CacheLayer<K, V, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// The service of a [`CacheLayer`].
pub struct CacheService<S, K, V, F> {
    inner: S,
    cache: StaleCache<K, V>,
    key: Arc<F>,
}

impl<S: Clone, K, V, F> Clone for CacheService<S, K, V, F> {
    fn clone(&self) -> Self {
        CacheService {
            inner: self.inner.clone(),
            cache: self.cache.clone(),
            key: Arc::clone(&self.key),
        }
    }
}

impl<S, K, V, F> fmt::Debug for CacheService<S, K, V, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheService")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// The boxed response future of a [`CacheService`].
pub type CacheFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S, Req, K, V, F> Service<Req> for CacheService<S, K, V, F>
where
    S: Service<Req, Response = V> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    Req: Send + 'static,
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Mark + Send + Sync + 'static,
    F: Fn(&Req) -> Option<K>,
{
    type Response = V;
    type Error = BoxError;
    type Future = CacheFuture<V>;

    /// Always ready: the inner service is made ready on a miss.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let inner = self.inner.clone();
        let Some(key) = (self.key)(&request) else {
            return Box::pin(async move { inner.oneshot(request).await.map_err(Into::into) });
        };
        let cache = self.cache.clone();
        Box::pin(async move {
            let fetch =
                || async move { inner.oneshot(request).await.map_err(Into::<BoxError>::into) };
            match cache.get_or_fetch(key, fetch).await {
                Ok(served) => {
                    let mut value = served.value;
                    if let Some(degraded) = served.degraded {
                        value.mark_degraded(degraded);
                    }
                    Ok(value)
                }
                Err(shared) => Err(match Arc::try_unwrap(shared) {
                    Ok(error) => error,
                    Err(shared) => Box::new(SharedError(shared)) as BoxError,
                }),
            }
        })
    }
}

/// An upstream error that several coalesced callers got: the upstream's
/// error is its `source()`.
#[derive(Debug, Clone)]
pub struct SharedError(Arc<BoxError>);

impl SharedError {
    /// The upstream's error.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &**self.0
    }
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the one upstream call for every waiting caller failed")
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&**self.0)
    }
}
