//! The one place where buttress reads the time.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic source of time.
///
/// State machines in buttress never read a clock: they take `now` as an
/// argument. Only the adapters (tower services, plain async APIs) call
/// [`Clock::now`], through this trait, so that every decision can be tested
/// with a clock the test controls.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant. Must never go backwards.
    fn now(&self) -> Instant;
}

/// A clock shared between clones of a primitive.
pub type SharedClock = Arc<dyn Clock>;

/// The default clock: tokio's `Instant::now()`.
///
/// Under `#[tokio::test(start_paused = true)]` (tokio's `test-util` feature)
/// this clock is paused and moved by `tokio::time::advance`, so adapter tests
/// never sleep in real time. Outside a paused runtime it is the system's
/// monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    #[inline]
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// A clock read from the CPU's time-stamp counter where it is reliable
/// (through `quanta`, which falls back to the OS clock where it is not):
/// a few nanoseconds a read instead of a system call's tens, for hot paths
/// such as a rate limiter's check. It does not follow tokio's paused time;
/// tests use [`ManualClock`] or [`TokioClock`].
#[cfg(feature = "fast-clock")]
#[derive(Debug, Clone)]
pub struct FastClock {
    clock: quanta::Clock,
    anchor_raw: u64,
    anchor: Instant,
}

#[cfg(feature = "fast-clock")]
impl FastClock {
    /// A fast clock, anchored to the system's monotonic clock now.
    ///
    /// ```
    /// use std::time::Instant;
    /// use buttress_core::{Clock, FastClock};
    ///
    /// let before = Instant::now();
    /// let clock = FastClock::new();
    /// // Anchored to the OS clock: its readings are comparable with `Instant`s.
    /// assert!(clock.now() >= before);
    /// ```
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let anchor_raw = clock.raw();
        Self {
            clock,
            anchor_raw,
            anchor: Instant::now(),
        }
    }
}

#[cfg(feature = "fast-clock")]
impl FastClock {
    /// Nanoseconds since this clock was made: the cheapest reading, for
    /// state machines that count in nanoseconds anyway.
    ///
    /// ```
    /// use buttress_core::FastClock;
    ///
    /// let clock = FastClock::new();
    /// let a = clock.nanos();
    /// let b = clock.nanos();
    /// assert!(b >= a); // monotonic
    /// ```
    #[inline]
    pub fn nanos(&self) -> u64 {
        self.clock.delta_as_nanos(self.anchor_raw, self.clock.raw())
    }
}

#[cfg(feature = "fast-clock")]
impl Default for FastClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "fast-clock")]
impl Clock for FastClock {
    #[inline]
    fn now(&self) -> Instant {
        let raw = self.clock.raw();
        self.anchor + Duration::from_nanos(self.clock.delta_as_nanos(self.anchor_raw, raw))
    }
}

/// A clock that moves only when told to. Clones share one time.
///
/// ```
/// use std::time::Duration;
/// use buttress_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let other = clock.clone();
/// let t0 = clock.now();
/// other.advance(Duration::from_millis(250));
/// assert_eq!(clock.now() - t0, Duration::from_millis(250));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    base: Instant,
    offset_nanos: AtomicU64,
}

impl ManualClock {
    /// A clock standing at an arbitrary fixed instant.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let t0 = clock.now();
    /// assert_eq!(clock.now(), t0); // it stands still until told to move
    /// assert_eq!(clock.elapsed(), Duration::ZERO);
    /// ```
    pub fn new() -> Self {
        Self {
            inner: Arc::new(ManualInner {
                base: Instant::now(),
                offset_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Moves the clock forward by `by` (saturating, never backwards).
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let t0 = clock.now();
    /// clock.advance(Duration::from_secs(2));
    /// clock.advance(Duration::from_millis(500));
    /// assert_eq!(clock.now() - t0, Duration::from_millis(2500));
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .inner
            .offset_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                Some(cur.saturating_add(by))
            });
    }

    /// How far the clock has been advanced since it was created.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_secs(3));
    /// assert_eq!(clock.elapsed(), Duration::from_secs(3));
    /// ```
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.inner.offset_nanos.load(Ordering::Acquire))
    }

    /// Moves the clock to `since_start` after its creation; never backwards.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// clock.set_elapsed(Duration::from_secs(10));
    /// assert_eq!(clock.elapsed(), Duration::from_secs(10));
    /// clock.set_elapsed(Duration::from_secs(4)); // earlier: ignored
    /// assert_eq!(clock.elapsed(), Duration::from_secs(10));
    /// ```
    pub fn set_elapsed(&self, since_start: Duration) {
        let target = u64::try_from(since_start.as_nanos()).unwrap_or(u64::MAX);
        self.inner.offset_nanos.fetch_max(target, Ordering::AcqRel);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner.base + self.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time_and_never_go_back() {
        let a = ManualClock::new();
        let b = a.clone();
        let t0 = a.now();
        b.advance(Duration::from_secs(3));
        assert_eq!(a.now() - t0, Duration::from_secs(3));
        a.set_elapsed(Duration::from_secs(1));
        assert_eq!(a.elapsed(), Duration::from_secs(3));
        a.set_elapsed(Duration::from_secs(10));
        assert_eq!(b.elapsed(), Duration::from_secs(10));
        a.advance(Duration::MAX);
        assert_eq!(a.elapsed(), Duration::from_nanos(u64::MAX));
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock;
        let t0 = clock.now();
        tokio::time::advance(Duration::from_secs(42)).await;
        assert_eq!(clock.now() - t0, Duration::from_secs(42));
    }
}
