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

    /// This clock as a [`FastClock`], if it is one: a [`Stopwatch`] then
    /// reads its nanoseconds directly instead of through `Instant`s.
    #[doc(hidden)]
    fn as_fast(&self) -> Option<&FastClock> {
        None
    }
}

/// A clock shared between clones of a primitive.
pub type SharedClock = Arc<dyn Clock>;

/// Tokio's clock: `tokio::time::Instant::now()`.
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
/// a few nanoseconds a read instead of the OS clock's 20 to 40, which is
/// most of a rate limiter's check. It does not follow tokio's paused time;
/// tests use [`ManualClock`] or [`TokioClock`] (and [`default_clock`]
/// picks tokio's by itself under paused time).
#[derive(Debug, Clone)]
pub struct FastClock {
    clock: quanta::Clock,
    anchor_raw: u64,
    anchor: Instant,
}

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

impl FastClock {
    /// The same clock, anchored now: it reads the same instants, and its
    /// [`nanos`](Self::nanos) count from now.
    fn restarted(&self) -> Self {
        let raw = self.clock.raw();
        let since = self.clock.delta_as_nanos(self.anchor_raw, raw);
        Self {
            clock: self.clock.clone(),
            anchor_raw: raw,
            anchor: self.anchor + Duration::from_nanos(since),
        }
    }

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

impl Default for FastClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FastClock {
    #[inline]
    fn now(&self) -> Instant {
        let raw = self.clock.raw();
        self.anchor + Duration::from_nanos(self.clock.delta_as_nanos(self.anchor_raw, raw))
    }

    fn as_fast(&self) -> Option<&FastClock> {
        Some(self)
    }
}

/// The clock a primitive reads when it is given none: a [`FastClock`],
/// except inside a tokio runtime whose time is paused
/// (`#[tokio::test(start_paused = true)]`, or `tokio::time::pause()`
/// called before the primitive is built), where it is a [`TokioClock`], so
/// tests that move time with `tokio::time::advance` need no setup.
///
/// Production gets the fast path without asking; a test that pauses time
/// *after* building a primitive, or builds it outside the runtime, should
/// give it a [`TokioClock`] or a [`ManualClock`] explicitly.
///
/// ```
/// use buttress_core::default_clock;
///
/// let clock = default_clock();
/// assert!(clock.as_fast().is_some()); // no paused runtime here
/// ```
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use buttress_core::default_clock;
///
/// // Inside a paused runtime: tokio's clock, moved by `advance`.
/// let clock = default_clock();
/// let t0 = clock.now();
/// tokio::time::advance(Duration::from_secs(5)).await;
/// assert_eq!(clock.now() - t0, Duration::from_secs(5));
/// # }
/// ```
pub fn default_clock() -> SharedClock {
    if tokio_time_is_paused() {
        Arc::new(TokioClock)
    } else {
        Arc::new(FastClock::new())
    }
}

/// Whether tokio's clock stands still on this thread: it does not move
/// while a microsecond of real time passes. (Auto-advance under paused
/// time happens only while the runtime is idle, never during this.)
fn tokio_time_is_paused() -> bool {
    let frozen = tokio::time::Instant::now();
    let real = Instant::now();
    while real.elapsed() < Duration::from_micros(1) {
        std::hint::spin_loop();
    }
    tokio::time::Instant::now() == frozen
}

/// Nanoseconds since a primitive was made, read the cheapest way its clock
/// allows: a [`FastClock`] directly (a few nanoseconds), any other clock
/// through `Instant` arithmetic. State machines count in these.
///
/// ```
/// use std::time::Duration;
/// use buttress_core::{ManualClock, Stopwatch};
///
/// let clock = ManualClock::new();
/// let watch = Stopwatch::new(std::sync::Arc::new(clock.clone()));
/// assert_eq!(watch.nanos(), 0);
/// clock.advance(Duration::from_micros(3));
/// assert_eq!(watch.nanos(), 3_000);
/// ```
#[derive(Debug, Clone)]
pub struct Stopwatch {
    read: Reading,
    clock: SharedClock,
    origin: Instant,
}

/// How a [`Stopwatch`] reads its clock.
#[derive(Debug, Clone)]
enum Reading {
    /// A fast clock re-anchored at the start: its nanoseconds are ours.
    Fast(FastClock),
    /// Any other clock, through `Instant`s.
    Instants,
}

impl Stopwatch {
    /// A stopwatch reading `clock`, started now.
    pub fn new(clock: SharedClock) -> Self {
        match clock.as_fast().map(FastClock::restarted) {
            Some(fast) => Self {
                origin: fast.anchor,
                read: Reading::Fast(fast),
                clock,
            },
            None => Self {
                origin: clock.now(),
                read: Reading::Instants,
                clock,
            },
        }
    }

    /// Nanoseconds since the stopwatch started (saturating).
    #[inline]
    pub fn nanos(&self) -> u64 {
        match &self.read {
            Reading::Fast(fast) => fast.nanos(),
            Reading::Instants => self.nanos_at(self.clock.now()),
        }
    }

    /// Nanoseconds from the start to `t` (zero before it).
    #[inline]
    pub fn nanos_at(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant the stopwatch started.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// The clock it reads.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }
}

impl Default for Stopwatch {
    /// A stopwatch on [`default_clock`].
    fn default() -> Self {
        Self::new(default_clock())
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

    #[test]
    fn default_clock_is_fast_outside_paused_time() {
        assert!(default_clock().as_fast().is_some());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        // A running, unpaused runtime: still the fast clock.
        rt.block_on(async { assert!(default_clock().as_fast().is_some()) });
    }

    #[tokio::test(start_paused = true)]
    async fn default_clock_follows_paused_time() {
        let clock = default_clock();
        assert!(clock.as_fast().is_none());
        let watch = Stopwatch::new(clock);
        tokio::time::advance(Duration::from_millis(7)).await;
        assert_eq!(watch.nanos(), 7_000_000);
    }

    #[test]
    fn stopwatch_on_a_fast_clock_counts_from_its_start() {
        let fast = FastClock::new();
        let watch = Stopwatch::new(Arc::new(fast.clone()));
        let a = watch.nanos();
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_micros(50) {
            std::hint::spin_loop();
        }
        let b = watch.nanos();
        assert!(b >= a + 40_000, "{a} then {b}");
        // It started when it was made, not when the clock was.
        assert!(a < fast.nanos());
        let t = watch.clock().now();
        assert!(watch.nanos_at(t) >= b);
        assert_eq!(watch.nanos_at(watch.origin()), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock;
        let t0 = clock.now();
        tokio::time::advance(Duration::from_secs(42)).await;
        assert_eq!(clock.now() - t0, Duration::from_secs(42));
    }
}
