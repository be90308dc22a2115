//! [`Gauge`]: a level with watermarks and hysteresis.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use buttress_core::sync::{AtomicU64, Ordering};
use buttress_core::{Name, SharedClock};

use crate::Priority;
use crate::config::GaugeConfig;
use crate::error::{GaugeError, Overloaded};
use crate::metrics::GaugeMetrics;
use crate::waiters::Waiters;
use crate::watermarks::{MAX_LEVEL, Watermarks};

const LEVEL: u64 = MAX_LEVEL;
const PAUSED_LOW: u64 = 1 << 62;
const PAUSED: u64 = 1 << 63;
/// Both pause bits (distinct bits: adding is or-ing).
const BANDS: u64 = PAUSED + PAUSED_LOW;

/// Whether a band paused or flowed between two words. (A yes when
/// neither did only costs a `publish` that finds nothing new.)
#[inline]
const fn band_changed(old: u64, new: u64) -> bool {
    (old ^ new) & BANDS != 0
}

/// Whether a band paused in `old` flows in `new`. (A yes when none did
/// only wakes waiters that find their band still paused.)
#[inline]
const fn band_flowed(old: u64, new: u64) -> bool {
    old & BANDS & !new != 0
}

/// The level a state word holds.
#[inline]
const fn level_of(word: u64) -> u64 {
    word & LEVEL
}

/// A level (bytes, items, seconds: whatever the service measures) with a
/// high and a low watermark, and the hysteresis between them: paused from
/// the moment the level reaches `high` until it falls to `low`.
///
/// Optionally a second, lower pair of watermarks for low-priority work, so
/// that it is shed first.
///
/// The level and both states live in one atomic word, and every change is
/// one compare-and-swap that applies the rule: `is_paused` is one load,
/// `add`/`sub` a CAS (a few nanoseconds), and the state is always the one
/// the rule gives for the sequence of changes, whatever the threads do.
/// Clones share the gauge.
///
/// ```
/// use buttress_pressure::{Gauge, Watermarks};
///
/// // The learner: pause above 100 MB unprocessed, resume at 50 MB.
/// let unprocessed = Gauge::builder("telemetry-backlog", Watermarks::new(100 << 20, 50 << 20)?).build()?;
/// unprocessed.set(120 << 20);
/// assert!(unprocessed.is_paused());
/// unprocessed.set(70 << 20);
/// assert!(unprocessed.is_paused()); // between the marks: still paused
/// unprocessed.set(50 << 20);
/// assert!(!unprocessed.is_paused());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Its settings can come from a configuration file (a [`GaugeConfig`],
/// under the `serde` feature):
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use buttress_pressure::{Gauge, GaugeConfig};
///
/// let config: GaugeConfig = serde_json::from_str(r#"{
///     "watermarks": { "high": "100MB", "low": "50MB" },
///     "retry_after": "2s"
/// }"#).unwrap();
/// let backlog = Gauge::builder("telemetry-backlog", config).build().unwrap();
/// backlog.set(100_000_000);
/// assert!(backlog.is_paused());
/// # }
/// ```
#[derive(Clone)]
pub struct Gauge {
    inner: Arc<Inner>,
}

struct Inner {
    word: AtomicU64,
    /// The watermarks and hint in force; swapped whole by
    /// [`Gauge::reconfigure`], so a decision reads one set or the other.
    config: ArcSwap<GaugeConfig>,
    name: Name,
    waiters: Waiters,
    metrics: GaugeMetrics,
    clock: SharedClock,
    /// What the metrics and logs last said, per band (normal, low).
    published: std::sync::Mutex<Published>,
}

/// The state as last published, and when each band last turned paused.
#[derive(Default)]
struct Published {
    paused: [bool; 2],
    since: [Option<Instant>; 2],
}

impl fmt::Debug for Gauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gauge")
            .field("name", &self.inner.name)
            .field("level", &self.level())
            .field("paused", &self.is_paused())
            .field("config", &**self.inner.config.load())
            .finish()
    }
}

/// Builds a [`Gauge`]: its name, its [`GaugeConfig`] (watermarks, the
/// low-priority band, the retry hint) and its clock. From
/// [`Gauge::builder`].
#[derive(Debug)]
pub struct GaugeBuilder {
    name: String,
    config: GaugeConfig,
    clock: SharedClock,
}

impl GaugeBuilder {
    /// Low-priority work is paused by these (lower) watermarks instead:
    /// shed first, resumed last (see [`GaugeConfig::low_priority`]).
    ///
    /// ```
    /// use buttress_pressure::{Gauge, Priority, Watermarks};
    ///
    /// let queue = Gauge::builder("queue", Watermarks::new(100, 50)?)
    ///     .low_priority(Watermarks::new(60, 30)?)
    ///     .build()?;
    /// queue.set(70);
    /// assert!(queue.is_paused_for(Priority::Low) && !queue.is_paused());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn low_priority(mut self, watermarks: Watermarks) -> Self {
        self.config = self.config.low_priority(watermarks);
        self
    }

    /// The hint [`Overloaded::retry_after`] carries (and `Retry-After`
    /// under `http`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_pressure::{Gauge, Priority, Watermarks};
    ///
    /// let queue = Gauge::builder("queue", Watermarks::new(10, 5)?)
    ///     .retry_after(Duration::from_secs(2))
    ///     .build()?;
    /// queue.set(10);
    /// let refused = queue.check(Priority::Normal).unwrap_err();
    /// assert_eq!(refused.retry_after(), Some(Duration::from_secs(2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.config = self.config.retry_after(after);
        self
    }

    buttress_core::setters! {
        /// Reads time (for `…_paused_seconds_total`) from `clock`.
        ///
        /// ```
        /// use std::sync::Arc;
        /// use buttress_core::ManualClock;
        /// use buttress_pressure::{Gauge, Watermarks};
        ///
        /// let clock = ManualClock::new();
        /// let queue = Gauge::builder("queue", Watermarks::new(10, 5)?)
        ///     .clock(Arc::new(clock.clone()))
        ///     .build()?;
        /// # let _ = queue;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        clock: SharedClock,
    }

    /// The gauge, at level 0; or why it cannot be built (an invalid name,
    /// low-priority watermarks above the normal ones).
    ///
    /// ```
    /// use buttress_pressure::{Gauge, GaugeError, Watermarks};
    ///
    /// let queue = Gauge::builder("queue", Watermarks::new(10, 5)?).build()?;
    /// assert_eq!(queue.level(), 0);
    /// let unnamed = Gauge::builder("", Watermarks::new(10, 5)?).build();
    /// assert!(matches!(unnamed, Err(GaugeError::Name(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<Gauge, GaugeError> {
        let name = Name::new(&self.name)?;
        self.config.validate()?;
        let metrics = GaugeMetrics::new(name.as_str());
        Ok(Gauge {
            inner: Arc::new(Inner {
                word: AtomicU64::new(0),
                config: ArcSwap::from_pointee(self.config),
                name,
                waiters: Waiters::default(),
                metrics,
                clock: self.clock,
                published: std::sync::Mutex::new(Published::default()),
            }),
        })
    }
}

#[inline]
fn band(priority: Priority) -> u64 {
    match priority {
        Priority::Normal => PAUSED,
        Priority::Low => PAUSED_LOW,
    }
}

impl Inner {
    /// The word after the level becomes `level`, from word `old`.
    #[inline]
    fn next(&self, old: u64, level: u64) -> u64 {
        let level = level.min(LEVEL);
        let mut word = level;
        let config = self.config.load();
        if config.watermarks.next(old & PAUSED != 0, level) {
            word |= PAUSED;
        }
        let low = config.low_priority.unwrap_or(config.watermarks);
        if low.next(old & PAUSED_LOW != 0, level) {
            word |= PAUSED_LOW;
        }
        word
    }

    #[inline]
    fn update(&self, f: impl Fn(u64) -> u64) -> u64 {
        let mut old = self.word.load(Ordering::Acquire);
        loop {
            let new = self.next(old, f(level_of(old)));
            if new == old {
                return new;
            }
            match self
                .word
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if band_changed(old, new) {
                        // Waiters are woken on the strength of this CAS:
                        // a waiter registered before it must hear of it.
                        let flowed = band_flowed(old, new);
                        self.publish();
                        if flowed {
                            self.waiters.wake_all();
                        }
                    }
                    self.metrics.level.set(level_of(new) as f64);
                    return new;
                }
                Err(actual) => old = actual,
            }
        }
    }

    /// Metrics and logs for changes of state; rare, so it may take a lock.
    /// Under the lock it publishes the *current* state, so that racing
    /// transitions can never leave the metrics saying the opposite of the
    /// gauge.
    #[cold]
    fn publish(&self) {
        let now = self.clock.now();
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let word = self.word.load(Ordering::Acquire);
        let bands: &[(u64, Priority)] = if self.config.load().low_priority.is_some() {
            &[(PAUSED, Priority::Normal), (PAUSED_LOW, Priority::Low)]
        } else {
            // Without a band of its own, low priority follows normal: one
            // state, published once.
            &[(PAUSED, Priority::Normal)]
        };
        for (i, &(bit, priority)) in bands.iter().enumerate() {
            let paused = word & bit != 0;
            if paused == published.paused[i] {
                continue;
            }
            published.paused[i] = paused;
            self.metrics.transition(priority, paused);
            if paused {
                published.since[i] = Some(now);
                tracing::info!(gauge = %self.name, level = level_of(word), priority = priority.as_str(), "paused");
            } else {
                if let Some(start) = published.since[i].take() {
                    self.metrics
                        .paused_seconds(priority, now.saturating_duration_since(start));
                }
                tracing::info!(gauge = %self.name, level = level_of(word), priority = priority.as_str(), "flowing");
            }
        }
    }
}

impl Gauge {
    /// A gauge named `name` (the `name` label of its metrics) with
    /// `config`: its [`Watermarks`], or a whole [`GaugeConfig`] (for
    /// example one loaded from a file). Finish it with
    /// [`build`](GaugeBuilder::build).
    ///
    /// ```
    /// use buttress_pressure::{Gauge, GaugeConfig, Watermarks};
    ///
    /// let a = Gauge::builder("a", Watermarks::new(10, 5)?).build()?;
    /// let b = Gauge::builder("b", GaugeConfig::new(Watermarks::new(10, 5)?)).build()?;
    /// # let _ = (a, b);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(name: impl Into<String>, config: impl Into<GaugeConfig>) -> GaugeBuilder {
        GaugeBuilder {
            name: name.into(),
            config: config.into(),
            clock: buttress_core::default_clock(),
        }
    }

    /// The name.
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Watermarks};
    /// let gauge = Gauge::builder("outbox", Watermarks::new(10, 5)?).build()?;
    /// assert_eq!(gauge.name(), "outbox");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    /// The watermarks and hint in force: those it was built with, or the
    /// last ones [`reconfigure`](Self::reconfigure) accepted.
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Watermarks};
    /// let gauge = Gauge::builder("outbox", Watermarks::new(10, 5)?).build()?;
    /// assert_eq!(gauge.config().watermarks, Watermarks::new(10, 5)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn config(&self) -> GaugeConfig {
        **self.inner.config.load()
    }

    /// Puts new watermarks (and hint) in force, keeping the level: the
    /// current level is judged again at once, so lowering `high` below it
    /// pauses the gauge, and raising `low` above it lets work flow (and
    /// wakes the waiters). Between the watermarks the state is kept, as
    /// hysteresis demands. Refused whole when `config` is invalid.
    ///
    /// ```
    /// use buttress_pressure::{Gauge, GaugeConfig, Watermarks};
    ///
    /// let gauge = Gauge::builder("backlog", Watermarks::new(100, 50)?).build()?;
    /// gauge.add(80);
    /// assert!(!gauge.is_paused());
    /// gauge.reconfigure(GaugeConfig::new(Watermarks::new(60, 30)?))?;
    /// assert!(gauge.is_paused()); // 80 is over the new high watermark
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reconfigure(&self, config: GaugeConfig) -> Result<(), GaugeError> {
        config.validate()?;
        self.inner.config.store(Arc::new(config));
        self.inner.update(|level| level);
        tracing::info!(gauge = %self.inner.name, high = config.watermarks.high(), low = config.watermarks.low(), "watermarks changed");
        Ok(())
    }

    /// The current level.
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Watermarks};
    /// let gauge = Gauge::builder("outbox", Watermarks::new(10, 5)?).build()?;
    /// gauge.add(3);
    /// assert_eq!(gauge.level(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn level(&self) -> u64 {
        level_of(self.inner.word.load(Ordering::Acquire))
    }

    /// Raises the level by `n` (saturating at [`MAX_LEVEL`]).
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Watermarks};
    /// let gauge = Gauge::builder("outbox", Watermarks::new(10, 5)?).build()?;
    /// gauge.add(6);
    /// gauge.add(4);
    /// assert!(gauge.is_paused()); // reached high
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn add(&self, n: u64) {
        self.inner.update(|level| level.saturating_add(n));
    }

    /// Lowers the level by `n` (saturating at 0).
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Watermarks};
    /// let gauge = Gauge::builder("outbox", Watermarks::new(10, 5)?).build()?;
    /// gauge.add(10);
    /// gauge.sub(4);
    /// assert!(gauge.is_paused()); // 6: above low, still paused
    /// gauge.sub(100);
    /// assert_eq!(gauge.level(), 0);
    /// assert!(!gauge.is_paused());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn sub(&self, n: u64) {
        self.inner.update(|level| level.saturating_sub(n));
    }

    /// Sets the level (for a measured source, such as bytes unprocessed).
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Watermarks};
    /// let gauge = Gauge::builder("backlog", Watermarks::new(100, 50)?).build()?;
    /// gauge.set(120);
    /// assert_eq!(gauge.level(), 120);
    /// assert!(gauge.is_paused());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn set(&self, level: u64) {
        self.inner.update(|_| level);
    }

    /// Whether normal-priority work should wait.
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Watermarks};
    /// let gauge = Gauge::builder("backlog", Watermarks::new(100, 50)?).build()?;
    /// assert!(!gauge.is_paused());
    /// gauge.set(100);
    /// assert!(gauge.is_paused());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn is_paused(&self) -> bool {
        self.inner.word.load(Ordering::Acquire) & PAUSED != 0
    }

    /// Whether work of `priority` should wait.
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Priority, Watermarks};
    /// let gauge = Gauge::builder("backlog", Watermarks::new(100, 50)?)
    ///     .low_priority(Watermarks::new(80, 20)?)
    ///     .build()?;
    /// gauge.set(80);
    /// assert!(gauge.is_paused_for(Priority::Low));
    /// assert!(!gauge.is_paused_for(Priority::Normal));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn is_paused_for(&self, priority: Priority) -> bool {
        self.inner.word.load(Ordering::Acquire) & band(priority) != 0
    }

    /// `Err(Overloaded)` when work of `priority` should wait.
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Priority, Watermarks};
    /// let gauge = Gauge::builder("backlog", Watermarks::new(100, 50)?).build()?;
    /// assert!(gauge.check(Priority::Normal).is_ok());
    /// gauge.set(100);
    /// let refused = gauge.check(Priority::Normal).unwrap_err();
    /// assert_eq!(refused.priority(), Priority::Normal);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn check(&self, priority: Priority) -> Result<(), Overloaded> {
        if self.is_paused_for(priority) {
            return Err(self.overloaded(priority));
        }
        Ok(())
    }

    pub(crate) fn overloaded(&self, priority: Priority) -> Overloaded {
        Overloaded::paused(self.name(), priority, self.inner.config.load().retry_after)
    }

    pub(crate) fn metrics(&self) -> &GaugeMetrics {
        &self.inner.metrics
    }

    /// Adds `n` now and subtracts it when the guard drops: for in-flight
    /// work.
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Watermarks};
    /// let inflight = Gauge::builder("inflight-bytes", Watermarks::new(1 << 20, 1 << 19)?).build()?;
    /// {
    ///     let _request = inflight.enter(4096);
    ///     assert_eq!(inflight.level(), 4096);
    /// }
    /// assert_eq!(inflight.level(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn enter(&self, n: u64) -> LevelGuard {
        self.add(n);
        LevelGuard {
            gauge: self.clone(),
            n,
        }
    }

    /// Resolves once the gauge is flowing for normal-priority work.
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Watermarks};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let backlog = Gauge::builder("backlog", Watermarks::new(100, 50)?).build()?;
    /// backlog.set(120);
    /// let consumer = backlog.clone();
    /// tokio::spawn(async move { consumer.set(40) });
    /// backlog.wait_flowing().await; // until the level falls to 50
    /// assert!(!backlog.is_paused());
    /// # Ok(()) }
    /// ```
    pub fn wait_flowing(&self) -> WaitFlowing {
        self.wait_flowing_for(Priority::Normal)
    }

    /// Resolves once the gauge is flowing for `priority`.
    ///
    /// ```
    /// # use buttress_pressure::{Gauge, Priority, Watermarks};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let backlog = Gauge::builder("backlog", Watermarks::new(100, 50)?)
    ///     .low_priority(Watermarks::new(80, 20)?)
    ///     .build()?;
    /// backlog.set(90);
    /// let consumer = backlog.clone();
    /// tokio::spawn(async move { consumer.set(20) });
    /// backlog.wait_flowing_for(Priority::Low).await; // until 20
    /// assert_eq!(backlog.level(), 20);
    /// # Ok(()) }
    /// ```
    pub fn wait_flowing_for(&self, priority: Priority) -> WaitFlowing {
        WaitFlowing {
            gauge: self.clone(),
            priority,
            id: None,
        }
    }

    /// [`wait_flowing_for`](Gauge::wait_flowing_for), blocking the thread,
    /// for at most `timeout` (`None`: as long as it takes). Returns whether
    /// it is flowing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_pressure::{Gauge, Priority, Watermarks};
    ///
    /// let backlog = Gauge::builder("backlog", Watermarks::new(100, 50)?).build()?;
    /// backlog.set(100);
    /// // Still paused when the (zero) timeout ends.
    /// assert!(!backlog.wait_flowing_blocking(Priority::Normal, Some(Duration::ZERO)));
    /// let consumer = backlog.clone();
    /// let drain = std::thread::spawn(move || consumer.set(0));
    /// assert!(backlog.wait_flowing_blocking(Priority::Normal, None));
    /// # drain.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(not(loom))]
    pub fn wait_flowing_blocking(&self, priority: Priority, timeout: Option<Duration>) -> bool {
        crate::block::block_on_timeout(self.wait_flowing_for(priority), timeout).is_some()
    }
}

/// Subtracts what it added when dropped; see [`Gauge::enter`].
#[derive(Debug)]
#[must_use = "the level falls back as soon as the guard is dropped"]
pub struct LevelGuard {
    gauge: Gauge,
    n: u64,
}

impl Drop for LevelGuard {
    fn drop(&mut self) {
        self.gauge.sub(self.n);
    }
}

/// The future of [`Gauge::wait_flowing`]. Dropping it unregisters it.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct WaitFlowing {
    gauge: Gauge,
    priority: Priority,
    id: Option<u64>,
}

impl Future for WaitFlowing {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.gauge.is_paused_for(self.priority) {
            if let Some(id) = self.id.take() {
                self.gauge.inner.waiters.cancel(id);
            }
            return Poll::Ready(());
        }
        let inner = self.gauge.inner.clone();
        let id = *self.id.get_or_insert_with(|| inner.waiters.id());
        let bit = band(self.priority);
        let ready = inner.waiters.poll(id, cx.waker(), || {
            inner.word.load(Ordering::Acquire) & bit == 0
        });
        if ready {
            self.id = None;
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for WaitFlowing {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.gauge.inner.waiters.cancel(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge() -> Gauge {
        Gauge::builder("g", Watermarks::new(100, 50).expect("valid"))
            .low_priority(Watermarks::new(80, 20).expect("valid"))
            .build()
            .expect("valid")
    }

    #[test]
    fn low_priority_pauses_first_and_flows_last() {
        let g = gauge();
        g.add(80);
        assert!(g.is_paused_for(Priority::Low) && !g.is_paused());
        g.add(20);
        assert!(g.is_paused());
        g.sub(50);
        assert!(!g.is_paused() && g.is_paused_for(Priority::Low));
        g.sub(30);
        assert!(!g.is_paused_for(Priority::Low));
        assert!(g.check(Priority::Low).is_ok());
    }

    #[test]
    fn guards_give_back_and_levels_saturate() {
        let g = gauge();
        {
            let _a = g.enter(60);
            let _b = g.enter(60);
            assert!(g.is_paused());
        }
        assert_eq!(g.level(), 0);
        assert!(!g.is_paused());
        g.sub(5);
        assert_eq!(g.level(), 0);
        g.add(u64::MAX);
        assert_eq!(g.level(), MAX_LEVEL);
    }

    #[test]
    fn a_dropped_waiter_leaves_no_registration() {
        let g = gauge();
        g.set(200);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut w = Box::pin(g.wait_flowing());
        assert!(w.as_mut().poll(&mut cx).is_pending());
        assert_eq!(g.inner.waiters.len(), 1);
        drop(w);
        assert_eq!(g.inner.waiters.len(), 0);
        let mut w = Box::pin(g.wait_flowing());
        assert!(w.as_mut().poll(&mut cx).is_pending());
        g.set(0);
        assert!(w.as_mut().poll(&mut cx).is_ready());
        assert_eq!(g.inner.waiters.len(), 0);
    }
}
