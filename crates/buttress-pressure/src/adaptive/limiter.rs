//! [`AdaptiveLimiter`]: the in-flight count and the limit an algorithm
//! moves.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use buttress_core::sync::{AtomicU64, Mutex, Ordering};
use buttress_core::{Name, NameError};

use super::{Algorithm, Sample};
use crate::error::Overloaded;

/// Admits at most `limit` requests at once, and moves the limit with each
/// completed request's latency and outcome through an [`Algorithm`].
///
/// Admission is a compare-and-swap on the in-flight count against the
/// limit (both atomics); the algorithm runs under a mutex once per
/// completed request. Clones share the limiter.
///
/// ```
/// use std::time::{Duration, Instant};
/// use buttress_pressure::{AdaptiveLimiter, Aimd};
///
/// let limiter = AdaptiveLimiter::new("db", Aimd::new(2, 1, 10)?)?;
/// let start = Instant::now();
/// let a = limiter.try_acquire(start)?;
/// let b = limiter.try_acquire(start)?;
/// assert!(limiter.try_acquire(start).unwrap_err().is_limit()); // 2 in flight
/// a.record(start + Duration::from_millis(20), false); // a success at full use: +1
/// drop(b); // cancelled: frees its slot, moves nothing
/// assert_eq!((limiter.limit(), limiter.inflight()), (3, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct AdaptiveLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    name: Name,
    inflight: AtomicU64,
    limit: AtomicU64,
    algorithm: Mutex<Box<dyn Algorithm>>,
    retry_after: Option<Duration>,
    metrics: LimitMetrics,
}

struct LimitMetrics {
    limit: metrics::Gauge,
    rejected: metrics::Counter,
}

impl fmt::Debug for AdaptiveLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimiter")
            .field("name", &self.inner.name)
            .field("limit", &self.limit())
            .field("inflight", &self.inflight())
            .finish()
    }
}

impl AdaptiveLimiter {
    /// A limiter named `name` (the `name` label of its metrics) moved by
    /// `algorithm`, starting at the algorithm's initial limit.
    ///
    /// ```
    /// use buttress_pressure::{AdaptiveLimiter, Vegas};
    ///
    /// let limiter = AdaptiveLimiter::new("llm", Vegas::new(20, 2, 200)?)?;
    /// assert_eq!(limiter.limit(), 20);
    /// assert!(AdaptiveLimiter::new("", Vegas::new(20, 2, 200)?).is_err()); // no name
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(name: &str, algorithm: impl Algorithm) -> Result<AdaptiveLimiter, NameError> {
        let name = Name::new(name)?;
        let limit = algorithm.limit().max(1.0) as u64;
        let n = name.as_str().to_owned();
        let metrics = LimitMetrics {
            limit: metrics::gauge!("buttress_pressure_limit", "name" => n.clone()),
            rejected: metrics::counter!("buttress_pressure_limit_rejected_total", "name" => n),
        };
        metrics.limit.set(limit as f64);
        Ok(AdaptiveLimiter {
            inner: Arc::new(Inner {
                name,
                inflight: AtomicU64::new(0),
                limit: AtomicU64::new(limit),
                algorithm: Mutex::new(Box::new(algorithm)),
                retry_after: None,
                metrics,
            }),
        })
    }

    /// The name.
    ///
    /// ```
    /// # use buttress_pressure::{AdaptiveLimiter, Aimd};
    /// let limiter = AdaptiveLimiter::new("llm", Aimd::new(20, 2, 200)?)?;
    /// assert_eq!(limiter.name(), "llm");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    /// The current limit.
    ///
    /// ```
    /// use std::time::Instant;
    /// # use buttress_pressure::{AdaptiveLimiter, Aimd};
    /// let limiter = AdaptiveLimiter::new("llm", Aimd::new(20, 2, 200)?)?;
    /// assert_eq!(limiter.limit(), 20);
    /// let now = Instant::now();
    /// limiter.try_acquire(now)?.record(now, true); // a drop: ⌊20 · 0.9⌋
    /// assert_eq!(limiter.limit(), 18);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn limit(&self) -> u64 {
        self.inner.limit.load(Ordering::Acquire)
    }

    /// Requests in flight.
    ///
    /// ```
    /// use std::time::Instant;
    /// # use buttress_pressure::{AdaptiveLimiter, Aimd};
    /// let limiter = AdaptiveLimiter::new("llm", Aimd::new(20, 2, 200)?)?;
    /// let permit = limiter.try_acquire(Instant::now())?;
    /// assert_eq!(limiter.inflight(), 1);
    /// drop(permit);
    /// assert_eq!(limiter.inflight(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn inflight(&self) -> u64 {
        self.inner.inflight.load(Ordering::Acquire)
    }

    /// Admits a request if fewer than the limit are in flight. `now` is
    /// when it starts (for its latency). Refuses it at once with
    /// [`Overloaded`] otherwise.
    ///
    /// ```
    /// use std::time::Instant;
    /// # use buttress_pressure::{AdaptiveLimiter, Aimd};
    /// let limiter = AdaptiveLimiter::new("llm", Aimd::new(1, 1, 1)?)?;
    /// let now = Instant::now();
    /// let permit = limiter.try_acquire(now)?;
    /// let refused = limiter.try_acquire(now).unwrap_err();
    /// assert!(refused.is_limit());
    /// assert_eq!(refused.name(), "llm");
    /// # drop(permit);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire(&self, now: Instant) -> Result<LimitPermit, Overloaded> {
        let inner = &self.inner;
        let mut current = inner.inflight.load(Ordering::Acquire);
        loop {
            if current >= inner.limit.load(Ordering::Acquire) {
                inner.metrics.rejected.increment(1);
                return Err(Overloaded::limit(inner.name.as_str(), inner.retry_after));
            }
            match inner.inflight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Ok(LimitPermit {
                        limiter: Some(self.clone()),
                        started: now,
                        inflight: current + 1,
                    });
                }
                Err(actual) => current = actual,
            }
        }
    }

    fn release(&self, sample: Option<Sample>) {
        let inner = &self.inner;
        // The slot first: a panicking algorithm must not leak it.
        inner.inflight.fetch_sub(1, Ordering::AcqRel);
        if let Some(sample) = sample {
            // Published under the algorithm's lock, so limits land in the
            // order they were computed.
            let mut algorithm = inner.algorithm.lock();
            let limit = algorithm.update(sample);
            let limit = if limit.is_finite() {
                limit.max(1.0) as u64
            } else {
                1
            };
            let old = inner.limit.swap(limit, Ordering::AcqRel);
            drop(algorithm);
            if old != limit {
                inner.metrics.limit.set(limit as f64);
                tracing::debug!(limiter = %inner.name, limit, "limit moved");
            }
        }
    }
}

/// One admitted request. Report how it went with
/// [`record`](LimitPermit::record); dropping it unrecorded (a cancelled
/// request) frees the slot without moving the limit.
#[derive(Debug)]
#[must_use = "a permit holds a slot until it is recorded or dropped"]
pub struct LimitPermit {
    limiter: Option<AdaptiveLimiter>,
    started: Instant,
    inflight: u64,
}

impl LimitPermit {
    /// Frees the slot and feeds the algorithm: finished at `now`, `dropped`
    /// if it failed in a way that signals overload.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// # use buttress_pressure::{AdaptiveLimiter, Aimd};
    /// let limiter = AdaptiveLimiter::new("llm", Aimd::new(1, 1, 10)?)?;
    /// let start = Instant::now();
    /// let permit = limiter.try_acquire(start)?;
    /// permit.record(start + Duration::from_millis(30), false); // a success at full use
    /// assert_eq!(limiter.limit(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn record(mut self, now: Instant, dropped: bool) {
        if let Some(limiter) = self.limiter.take() {
            limiter.release(Some(Sample {
                rtt: now.saturating_duration_since(self.started),
                inflight: self.inflight,
                dropped,
            }));
        }
    }
}

impl Drop for LimitPermit {
    fn drop(&mut self) {
        if let Some(limiter) = self.limiter.take() {
            limiter.release(None);
        }
    }
}
