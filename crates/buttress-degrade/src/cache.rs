//! A cache that answers stale when the upstream fails, and makes one
//! upstream call for many identical requests: on moka.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use buttress_core::{Name, NameError, SharedClock, default_clock};

use crate::degraded::{Degraded, Served, Source};
use crate::reason::{Reason, Reasons, reason_of};

/// A configuration the cache cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheConfigError {
    /// The name is not a valid [`Name`].
    #[error("invalid cache name")]
    Name(#[from] NameError),
    /// The time to live is zero: nothing would ever be fresh.
    #[error("the time to live must be above zero")]
    ZeroTtl,
    /// The bound is zero: nothing could be kept.
    #[error("the cache must hold at least one entry (or one byte)")]
    ZeroCapacity,
}

/// One cached answer and when it was fetched.
struct Entry<V> {
    value: V,
    fetched: Instant,
    /// Refreshes of this stale entry that have ended: a caller that sees
    /// it move while it waited for `refresh` takes that refresh's outcome.
    refreshes: AtomicU64,
    /// Held by the one caller refreshing this stale entry; holds why the
    /// last refresh failed.
    refresh: tokio::sync::Mutex<Option<Reason>>,
}

impl<V> Entry<V> {
    fn new(value: V, fetched: Instant) -> Arc<Self> {
        Arc::new(Entry {
            value,
            fetched,
            refreshes: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(None),
        })
    }
}

/// A read-through cache with a time to live, a `stale-if-error` window
/// and coalescing, bounded in entries or bytes. The storage is moka.
///
/// * **Fresh** (younger than the TTL, 5 minutes by default): answered
///   from the cache.
/// * **Miss**: concurrent identical requests wait on one upstream call
///   (moka's `try_get_with`), so a cold key under a stampede costs one
///   call. Errors are never cached: every waiter gets the one error, and
///   the next request tries again.
/// * **Stale** (past the TTL, inside `stale_if_error`, 1 hour by
///   default): one caller refreshes while the others wait for it; when the
///   refresh fails for a reason the cache answers for (every failure by
///   default; an open breaker is one), the stale value is served, marked
///   [`Degraded`] with [`Source::Stale`], and the callers that waited get
///   it too without calling again.
/// * **Too old** (past both): a miss.
///
/// Clones share one cache.
///
/// ```
/// use std::time::Duration;
/// use buttress_degrade::StaleCache;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let cache = StaleCache::<String, Vec<f32>>::builder("embeddings")
///     .ttl(Duration::from_secs(300))
///     .stale_if_error(Duration::from_secs(3600))
///     .max_entries(10_000)
///     .build()?;
/// let fresh = cache.get_or_fetch("hello".to_owned(), || async { Ok::<_, std::io::Error>(vec![0.1, 0.2]) }).await?;
/// assert!(!fresh.is_degraded());
///
/// tokio::time::advance(Duration::from_secs(600)).await; // stale now; the embeddings service is down
/// let stale = cache
///     .get_or_fetch("hello".to_owned(), || async { Err(std::io::Error::other("connection refused")) })
///     .await?;
/// assert_eq!(stale.value, vec![0.1, 0.2]);
/// assert!(stale.is_degraded());
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub struct StaleCache<K, V> {
    inner: Arc<Inner<K, V>>,
}

struct Inner<K, V> {
    name: Name,
    store: moka::future::Cache<K, Arc<Entry<V>>>,
    ttl: Duration,
    stale_if_error: Duration,
    reasons: Reasons,
    clock: SharedClock,
}

/// How to weigh an entry for a bound in bytes.
type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u32 + Send + Sync>;

/// Builds a [`StaleCache`].
pub struct StaleCacheBuilder<K, V> {
    name: String,
    ttl: Duration,
    stale_if_error: Duration,
    max_entries: u64,
    weigher: Option<Weigher<K, V>>,
    reasons: Reasons,
    clock: Option<SharedClock>,
}

impl<K, V> StaleCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A builder: TTL 5 minutes, `stale_if_error` 1 hour, at most 10,000
    /// entries, stale answers for every failure.
    pub fn builder(name: impl Into<String>) -> StaleCacheBuilder<K, V> {
        StaleCacheBuilder {
            name: name.into(),
            ttl: Duration::from_secs(300),
            stale_if_error: Duration::from_secs(3600),
            max_entries: 10_000,
            weigher: None,
            reasons: Reasons::ALL,
            clock: None,
        }
    }

    /// The cache's name.
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    /// The cached value for `key`, or `fetch`'s.
    ///
    /// The error is shared by every caller that waited on the same fetch,
    /// hence the `Arc`.
    pub async fn get_or_fetch<F, Fut, E>(&self, key: K, fetch: F) -> Result<Served<V>, Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        let inner = &*self.inner;
        let now = inner.clock.now();
        if let Some(entry) = inner.store.get(&key).await {
            let age = now.saturating_duration_since(entry.fetched);
            if age < inner.ttl {
                return Ok(Served::normal(entry.value.clone()));
            }
            if age < inner.ttl + inner.stale_if_error {
                return self.refresh(key, entry, fetch).await;
            }
            inner.store.remove(&key).await;
        }
        let clock = &inner.clock;
        let entry = inner
            .store
            .try_get_with(key, async move {
                let value = fetch().await?;
                Ok::<_, E>(Entry::new(value, clock.now()))
            })
            .await?;
        Ok(Served::normal(entry.value.clone()))
    }

    /// A stale entry: one caller refreshes it, the others wait and take
    /// what it got.
    async fn refresh<F, Fut, E>(
        &self,
        key: K,
        entry: Arc<Entry<V>>,
        fetch: F,
    ) -> Result<Served<V>, Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        let inner = &*self.inner;
        let seen = entry.refreshes.load(Ordering::Acquire);
        let mut last_failure = entry.refresh.lock().await;
        if let Some(current) = inner.store.get(&key).await
            && !Arc::ptr_eq(&current, &entry)
            && inner.clock.now().saturating_duration_since(current.fetched) < inner.ttl
        {
            // Refreshed while this caller waited.
            return Ok(Served::normal(current.value.clone()));
        }
        if entry.refreshes.load(Ordering::Acquire) != seen
            && let Some(reason) = *last_failure
        {
            // The refresh this caller waited on failed: no second call.
            return Ok(self.stale(&entry, reason));
        }
        let result = fetch().await;
        entry.refreshes.fetch_add(1, Ordering::Release);
        match result {
            Ok(value) => {
                let fresh = Entry::new(value.clone(), inner.clock.now());
                inner.store.insert(key, fresh).await;
                Ok(Served::normal(value))
            }
            Err(error) => {
                let reason = reason_of(&error);
                if !inner.reasons.contains(reason) {
                    *last_failure = None;
                    return Err(Arc::new(error));
                }
                *last_failure = Some(reason);
                Ok(self.stale(&entry, reason))
            }
        }
    }

    fn stale(&self, entry: &Entry<V>, reason: Reason) -> Served<V> {
        let name = &self.inner.name;
        metrics::counter!("buttress_cache_stale_total", "name" => name.to_string(), "reason" => reason.as_str())
            .increment(1);
        tracing::debug!(cache = %name, %reason, "serving a stale entry");
        Served {
            value: entry.value.clone(),
            degraded: Some(Degraded::new(reason, name.clone(), Source::Stale)),
        }
    }

    /// Drops `key`'s entry.
    pub async fn invalidate(&self, key: &K) {
        self.inner.store.invalidate(key).await;
    }

    /// How many entries the cache holds, once moka's pending work (for
    /// example evictions) has run.
    pub async fn entry_count(&self) -> u64 {
        self.inner.store.run_pending_tasks().await;
        self.inner.store.entry_count()
    }

    /// The entries' total weight (their count without a weigher; bytes
    /// with [`max_bytes`](StaleCacheBuilder::max_bytes)), once moka's
    /// pending work has run.
    pub async fn weighted_size(&self) -> u64 {
        self.inner.store.run_pending_tasks().await;
        self.inner.store.weighted_size()
    }
}

impl<K, V> StaleCacheBuilder<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// How long an entry is fresh.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long after its TTL an entry may still be served when the
    /// upstream fails (RFC 5861's `stale-if-error`); zero turns stale
    /// answers off.
    #[must_use]
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.stale_if_error = window;
        self
    }

    /// At most this many entries; the least useful are evicted first
    /// (moka's TinyLFU).
    #[must_use]
    pub fn max_entries(mut self, max: u64) -> Self {
        self.max_entries = max;
        self.weigher = None;
        self
    }

    /// At most this many bytes, as `weigh` counts an entry (its key and
    /// value; saturate at `u32::MAX`).
    #[must_use]
    pub fn max_bytes(
        mut self,
        max: u64,
        weigh: impl Fn(&K, &V) -> u32 + Send + Sync + 'static,
    ) -> Self {
        self.max_entries = max;
        self.weigher = Some(Arc::new(weigh));
        self
    }

    /// Serves stale entries only for failures of these reasons (every
    /// failure by default).
    #[must_use]
    pub fn on(mut self, reasons: impl Into<Reasons>) -> Self {
        self.reasons = reasons.into();
        self
    }

    /// The clock that ages entries (tokio's by default, so paused-time
    /// tests can age them).
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The cache.
    pub fn build(self) -> Result<StaleCache<K, V>, CacheConfigError> {
        let name = Name::new(&self.name)?;
        if self.ttl.is_zero() {
            return Err(CacheConfigError::ZeroTtl);
        }
        if self.max_entries == 0 {
            return Err(CacheConfigError::ZeroCapacity);
        }
        let mut store = moka::future::Cache::builder()
            .name(name.as_str())
            .max_capacity(self.max_entries)
            // A backstop in real time: entries this old are useless
            // whatever the clock says.
            .time_to_live(self.ttl.saturating_add(self.stale_if_error));
        if let Some(weigh) = self.weigher {
            store = store.weigher(move |k: &K, e: &Arc<Entry<V>>| weigh(k, &e.value));
        }
        Ok(StaleCache {
            inner: Arc::new(Inner {
                name,
                store: store.build(),
                ttl: self.ttl,
                stale_if_error: self.stale_if_error,
                reasons: self.reasons,
                clock: self.clock.unwrap_or_else(default_clock),
            }),
        })
    }
}

impl<K, V> Clone for StaleCache<K, V> {
    fn clone(&self) -> Self {
        StaleCache {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V> fmt::Debug for StaleCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaleCache")
            .field("name", &self.inner.name)
            .field("ttl", &self.inner.ttl)
            .field("stale_if_error", &self.inner.stale_if_error)
            .finish_non_exhaustive()
    }
}

impl<K, V> fmt::Debug for StaleCacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaleCacheBuilder")
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .field("stale_if_error", &self.stale_if_error)
            .finish_non_exhaustive()
    }
}
