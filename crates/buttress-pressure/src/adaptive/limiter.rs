//! [`AdaptiveLimiter`]: the in-flight count and the limit an algorithm
//! moves.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use buttress_core::sync::{AtomicU64, Mutex, Ordering};
use buttress_core::{Name, NameError};

use super::{Algorithm, Sample, seconds};
use crate::error::Overloaded;

/// Admits at most `limit` requests at once, and moves the limit with each
/// completed request's latency and outcome through an [`Algorithm`].
///
/// Admission is a compare-and-swap on a count of admitted requests,
/// against the limit (atomics, no lock); a completion takes the
/// algorithm's lock once, frees its slot and feeds the algorithm under it.
/// Clones share the limiter.
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

/// The in-flight count is `started − finished`, two counters instead of one
/// so that a completion, which takes the algorithm's lock anyway, frees its
/// slot with a plain store under that lock rather than one more atomic
/// read-modify-write on a word admissions contend for: a completion costs
/// the lock and its release, nothing else. (Counters wrap; the difference
/// is exact while fewer than 2⁶⁴ requests are in flight.)
struct Inner {
    /// Requests admitted: written only by admission's compare-and-swap.
    started: AtomicU64,
    /// Requests finished or cancelled: written only under `state`'s lock,
    /// always before the limit that request's sample gives, so whoever
    /// sees that limit counts the slot as free.
    finished: AtomicU64,
    /// The limit in force: written only under `state`'s lock, and only
    /// when it changes.
    limit: AtomicU64,
    state: Mutex<State>,
    /// Whether the algorithm reads a sample's latency in seconds: then it
    /// is worked out before the lock is taken (a division fewer inside).
    uses_seconds: bool,
    name: Name,
    retry_after: Option<Duration>,
    metrics: LimitMetrics,
}

/// What the algorithm's lock guards.
struct State {
    algorithm: Box<dyn Algorithm>,
    /// The limit last stored in `Inner::limit`. Kept here, under the lock,
    /// so that a completion that leaves the limit where it was (nearly
    /// every one) writes no limit.
    published: u64,
    /// The bits of the value the algorithm returned last (`None` before
    /// its first sample): the same value again gives the same limit,
    /// without converting it.
    last: Option<u64>,
    /// What `Inner::finished` holds (its only writer is the lock's holder).
    finished: u64,
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
        let uses_seconds = algorithm.uses_seconds();
        let n = name.as_str().to_owned();
        let metrics = LimitMetrics {
            limit: metrics::gauge!("buttress_pressure_limit", "name" => n.clone()),
            rejected: metrics::counter!("buttress_pressure_limit_rejected_total", "name" => n),
        };
        metrics.limit.set(limit as f64);
        Ok(AdaptiveLimiter {
            inner: Arc::new(Inner {
                name,
                started: AtomicU64::new(0),
                finished: AtomicU64::new(0),
                limit: AtomicU64::new(limit),
                state: Mutex::new(State {
                    algorithm: Box::new(algorithm),
                    published: limit,
                    last: None,
                    finished: 0,
                }),
                uses_seconds,
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
        let inner = &*self.inner;
        // A snapshot: `finished` read on both sides of `started` and
        // unchanged, so the count is exact at the moment `started` was read.
        for _ in 0..64 {
            let finished = inner.finished.load(Ordering::Acquire);
            let started = inner.started.load(Ordering::Acquire);
            if inner.finished.load(Ordering::Acquire) == finished {
                return started.wrapping_sub(finished);
            }
        }
        // Completions without pause: read it where none can happen.
        let state = inner.state.lock();
        inner
            .started
            .load(Ordering::Acquire)
            .wrapping_sub(state.finished)
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
        let inflight = self.admit()?;
        Ok(LimitPermit {
            limiter: Some(self.clone()),
            started: now,
            inflight,
        })
    }

    /// Takes a slot if fewer than the limit are in flight: the in-flight
    /// count with this request, or the refusal (counted). The caller owes
    /// exactly one [`complete`](Self::complete) for each slot.
    ///
    /// The limit is read first, then `finished`, then `started`: a limit
    /// set by a completion is stored after that completion's slot is
    /// freed, so a request never sees a limit without the slot freed
    /// before it. The compare-and-swap on `started` makes the count exact
    /// when it succeeds, or at most high by requests that finished in the
    /// few nanoseconds since `finished` was read (never low: it never
    /// admits beyond the limit). A refusal is taken only on a consistent
    /// count: `finished` unchanged across the read of `started`.
    #[inline]
    pub(crate) fn admit(&self) -> Result<u64, Overloaded> {
        let inner = &*self.inner;
        let mut limit = inner.limit.load(Ordering::Acquire);
        let mut finished = inner.finished.load(Ordering::Acquire);
        let mut started = inner.started.load(Ordering::Acquire);
        loop {
            let inflight = started.wrapping_sub(finished);
            if inflight >= limit {
                let now_finished = inner.finished.load(Ordering::Acquire);
                if now_finished == finished {
                    return Err(self.refuse());
                }
                // A request finished meanwhile: look again.
                limit = inner.limit.load(Ordering::Acquire);
                finished = inner.finished.load(Ordering::Acquire);
                started = inner.started.load(Ordering::Acquire);
                continue;
            }
            match inner.started.compare_exchange_weak(
                started,
                started.wrapping_add(1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(inflight + 1),
                Err(actual) => started = actual,
            }
        }
    }

    #[cold]
    fn refuse(&self) -> Overloaded {
        let inner = &*self.inner;
        inner.metrics.rejected.increment(1);
        Overloaded::limit(inner.name.as_str(), inner.retry_after)
    }

    /// Frees a slot taken by [`admit`](Self::admit) and, with a sample,
    /// feeds the algorithm and publishes the limit it gives.
    ///
    /// Two atomic operations when the limit stays where it was (nearly
    /// always): the lock and its release. The slot is freed and the limit
    /// stored (only when it changes, and the metric with it) under the
    /// lock, so that limits computed by racing completions land in the
    /// order they were computed and the metric always ends at the limit in
    /// force.
    pub(crate) fn complete(&self, sample: Option<Sample>) {
        let inner = &*self.inner;
        let seconds = match &sample {
            Some(sample) if inner.uses_seconds => seconds(sample),
            _ => 0.0,
        };
        let mut state = inner.state.lock();
        // The slot first: a panicking algorithm must not leak it.
        state.finished = state.finished.wrapping_add(1);
        inner.finished.store(state.finished, Ordering::Release);
        let Some(sample) = sample else {
            return;
        };
        let value = state.algorithm.update_timed(sample, seconds);
        if state.last == Some(value.to_bits()) {
            return;
        }
        state.last = Some(value.to_bits());
        let limit = as_limit(value);
        if limit == state.published {
            return;
        }
        state.published = limit;
        inner.limit.store(limit, Ordering::Release);
        inner.metrics.limit.set(limit as f64);
        drop(state);
        tracing::debug!(limiter = %inner.name, limit, "limit moved");
    }
}

/// The whole limit an algorithm's value gives: at least 1, and 1 for a
/// value that is not a number (a custom algorithm's bug must not stop
/// every request, nor admit them all).
fn as_limit(value: f64) -> u64 {
    if value.is_finite() {
        value.max(1.0) as u64
    } else {
        1
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
            limiter.complete(Some(Sample {
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
            limiter.complete(None);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Returns the values it is given, one per sample, and counts samples.
    struct Script(Vec<f64>, Arc<AtomicUsize>);

    impl Algorithm for Script {
        fn limit(&self) -> f64 {
            2.0
        }
        fn update(&mut self, _: Sample) -> f64 {
            let n = self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.get(n).copied().unwrap_or(2.0)
        }
    }

    fn script(values: &[f64]) -> (AdaptiveLimiter, Arc<AtomicUsize>) {
        let samples = Arc::new(AtomicUsize::new(0));
        let limiter =
            AdaptiveLimiter::new("t", Script(values.to_vec(), samples.clone())).expect("name");
        (limiter, samples)
    }

    #[test]
    fn limits_that_are_not_whole_numbers_become_whole_and_at_least_one() {
        let (limiter, _) = script(&[7.9, 0.2, f64::NAN, f64::INFINITY, -3.0, 1e12]);
        let now = Instant::now();
        for expected in [7, 1, 1, 1, 1, 1_000_000_000_000] {
            limiter
                .try_acquire(now)
                .expect("admitted")
                .record(now, false);
            assert_eq!(limiter.limit(), expected);
        }
    }

    #[test]
    fn a_cancelled_permit_frees_its_slot_without_a_sample() {
        let (limiter, samples) = script(&[]);
        let now = Instant::now();
        let a = limiter.try_acquire(now).expect("admitted");
        let b = limiter.try_acquire(now).expect("admitted");
        assert!(limiter.try_acquire(now).is_err());
        assert_eq!(limiter.inflight(), 2);
        drop(a);
        assert_eq!(
            (
                limiter.inflight(),
                samples.load(std::sync::atomic::Ordering::SeqCst)
            ),
            (1, 0)
        );
        b.record(now, true);
        assert_eq!(
            (
                limiter.inflight(),
                samples.load(std::sync::atomic::Ordering::SeqCst)
            ),
            (0, 1)
        );
    }

    /// Panics on its first sample.
    struct Panics;

    impl Algorithm for Panics {
        fn limit(&self) -> f64 {
            1.0
        }
        fn update(&mut self, _: Sample) -> f64 {
            panic!("a custom algorithm's bug");
        }
    }

    #[test]
    fn a_panicking_algorithm_leaks_no_slot_and_the_limiter_goes_on() {
        let limiter = AdaptiveLimiter::new("t", Panics).expect("name");
        let now = Instant::now();
        let permit = limiter.try_acquire(now).expect("admitted");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            permit.record(now, false);
        }));
        assert!(panicked.is_err());
        // The slot was freed before the algorithm ran; the poisoned lock is
        // recovered.
        assert_eq!(limiter.inflight(), 0);
        let again = limiter.try_acquire(now).expect("admitted again");
        drop(again);
        assert_eq!((limiter.inflight(), limiter.limit()), (0, 1));
    }

    #[test]
    fn the_counts_wrap_without_losing_the_difference() {
        let (limiter, _) = script(&[]);
        // As if 2⁶⁴ − 1 requests had come and gone.
        limiter.inner.started.store(u64::MAX, Ordering::SeqCst);
        limiter.inner.finished.store(u64::MAX, Ordering::SeqCst);
        limiter.inner.state.lock().finished = u64::MAX;
        let now = Instant::now();
        let a = limiter.try_acquire(now).expect("admitted");
        let b = limiter.try_acquire(now).expect("admitted");
        assert!(limiter.try_acquire(now).is_err());
        assert_eq!(limiter.inflight(), 2);
        drop(a);
        b.record(now, false);
        assert_eq!(limiter.inflight(), 0);
    }
}
