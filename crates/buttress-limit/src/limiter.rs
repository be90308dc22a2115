//! The limiter handle: the plain API, shared by every clone and service.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use buttress_core::{Clock, Name, Stopwatch};
use metrics::Counter;

use crate::error::RateLimited;
use crate::gcra::{Decision, Gcra, Reservation};
use crate::quota::{Quota, QuotaError};

/// A rate limiter. Cheap to clone; every clone shares one limit (tower's
/// `RateLimit` is not `Clone`-shared, so each clone counted separately:
/// tower #794).
///
/// ```
/// use buttress_limit::{Quota, RateLimiter};
///
/// let limiter = RateLimiter::new("api", Quota::per_minute(150)?.with_burst(2)?)?;
/// assert!(limiter.check().is_ok());
/// assert!(limiter.check().is_ok());
/// let refused = limiter.check().unwrap_err();
/// assert!(refused.retry_after().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    name: Name,
    gcra: Gcra,
    quota: std::sync::RwLock<Quota>,
    clock: Stopwatch,
    allowed: Counter,
    rejected: Counter,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.inner.name)
            .field("quota", &self.quota())
            .finish_non_exhaustive()
    }
}

/// The state of a limiter at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitState {
    /// Whole tokens available now.
    pub remaining: u32,
    /// Time until one more token (zero when the bucket is full).
    pub next_token_in: Duration,
    /// The quota in force.
    pub quota: Quota,
}

/// Why a limiter could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimiterError {
    /// The name is not valid.
    #[error("invalid limiter name")]
    Name(#[source] buttress_core::NameError),
    /// The quota is not valid.
    #[error("invalid quota")]
    Quota(#[from] QuotaError),
}

impl RateLimiter {
    /// A limiter with `quota`, reading
    /// [`default_clock`](buttress_core::default_clock): the CPU's
    /// time-stamp counter (a few nanoseconds a read), or tokio's clock when
    /// it is built inside a runtime whose time is paused, so tests that
    /// `tokio::time::advance` need no setup.
    ///
    /// ```
    /// use buttress_limit::{LimiterError, Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::new("api", Quota::per_second(10)?)?;
    /// assert_eq!(limiter.quota(), Quota::per_second(10)?);
    /// // The name becomes a metric label, so it is validated.
    /// let bad = RateLimiter::new("", Quota::per_second(10)?);
    /// assert!(matches!(bad, Err(LimiterError::Name(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(name: impl AsRef<str>, quota: Quota) -> Result<Self, LimiterError> {
        Self::build(name, quota, Stopwatch::default())
    }

    /// A limiter with `quota` reading `clock`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{Quota, RateLimiter};
    ///
    /// let clock = ManualClock::new();
    /// let limiter = RateLimiter::with_clock("api", Quota::per_second(2)?, clock.clone())?;
    /// assert!(limiter.check_n(2).is_ok());
    /// assert!(limiter.check().is_err());
    /// clock.advance(Duration::from_millis(500)); // one token comes back
    /// assert!(limiter.check().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_clock(
        name: impl AsRef<str>,
        quota: Quota,
        clock: impl Clock,
    ) -> Result<Self, LimiterError> {
        Self::build(name, quota, Stopwatch::new(Arc::new(clock)))
    }

    fn build(name: impl AsRef<str>, quota: Quota, clock: Stopwatch) -> Result<Self, LimiterError> {
        let name = Name::new(name).map_err(LimiterError::Name)?;
        let label = name.to_string();
        Ok(Self {
            inner: Arc::new(Inner {
                allowed: metrics::counter!("buttress_limit_allowed_total", "name" => label.clone()),
                rejected: metrics::counter!("buttress_limit_rejected_total", "name" => label),
                name,
                gcra: Gcra::new(quota),
                quota: std::sync::RwLock::new(quota),
                clock,
            }),
        })
    }

    /// The limiter's name.
    ///
    /// ```
    /// use buttress_limit::{Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::new("embeddings", Quota::per_second(10)?)?;
    /// assert_eq!(limiter.name().as_str(), "embeddings");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    #[inline]
    fn now(&self) -> u64 {
        self.inner.clock.nanos()
    }

    /// Takes one token, or says when to come back.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{Quota, RateLimiter};
    ///
    /// let clock = ManualClock::new();
    /// let quota = Quota::per_second(4)?.with_burst(1)?;
    /// let limiter = RateLimiter::with_clock("api", quota, clock.clone())?;
    /// assert!(limiter.check().is_ok());
    /// let refused = limiter.check().unwrap_err();
    /// assert_eq!(refused.retry_after(), Some(Duration::from_millis(250)));
    /// clock.advance(Duration::from_millis(250));
    /// assert!(limiter.check().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn check(&self) -> Result<(), RateLimited> {
        self.check_n(1)
    }

    /// Takes `n` tokens at once (a weighted request), or says when to come
    /// back. A cost above the burst can never be admitted: the error's
    /// `retry_after` is then `None`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{Quota, RateLimiter};
    ///
    /// let clock = ManualClock::new();
    /// let limiter = RateLimiter::with_clock("search", Quota::per_second(10)?, clock)?;
    /// assert!(limiter.check_n(8).is_ok()); // an expensive query costs 8
    /// let refused = limiter.check_n(5).unwrap_err(); // only 2 left
    /// assert_eq!(refused.retry_after(), Some(Duration::from_millis(300)));
    /// let never = limiter.check_n(11).unwrap_err(); // above the burst of 10
    /// assert_eq!(never.retry_after(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn check_n(&self, n: u32) -> Result<(), RateLimited> {
        match self.inner.gcra.take(self.now(), n) {
            Decision::Allowed { .. } => {
                self.inner.allowed.increment(1);
                Ok(())
            }
            d => Err(self.refuse(d)),
        }
    }

    /// Whether `n` tokens are available, without taking them.
    ///
    /// ```
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::with_clock("api", Quota::per_minute(3)?, ManualClock::new())?;
    /// assert!(limiter.peek_n(3).is_ok());
    /// assert!(limiter.peek_n(3).is_ok()); // peeking takes nothing
    /// limiter.check()?;
    /// assert!(limiter.peek_n(3).is_err());
    /// assert!(limiter.peek_n(2).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn peek_n(&self, n: u32) -> Result<(), RateLimited> {
        match self.inner.gcra.peek(self.now(), n) {
            Decision::Allowed { .. } => Ok(()),
            Decision::Denied { retry_after } => Err(RateLimited::new(
                self.inner.name.clone(),
                Some(Duration::from_nanos(retry_after)),
            )
            .with_quota(self.inner.gcra.current_quota())),
            Decision::Impossible => Err(RateLimited::new(self.inner.name.clone(), None)
                .with_quota(self.inner.gcra.current_quota())),
        }
    }

    /// Takes one token if it is there now, counting only an admission:
    /// for a request whose refusal was already counted, asked again.
    pub(crate) fn retake(&self) -> bool {
        let admitted = matches!(
            self.inner.gcra.take(self.now(), 1),
            Decision::Allowed { .. }
        );
        if admitted {
            self.inner.allowed.increment(1);
        }
        admitted
    }

    #[cold]
    fn refuse(&self, d: Decision) -> RateLimited {
        self.inner.rejected.increment(1);
        let retry_after = match d {
            Decision::Denied { retry_after } => Some(Duration::from_nanos(retry_after)),
            _ => None,
        };
        tracing::trace!(limiter = %self.inner.name, ?retry_after, "rate limited");
        RateLimited::new(self.inner.name.clone(), retry_after)
            .with_quota(self.inner.gcra.current_quota())
    }

    /// Tokens available now and the time until the next one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::with_clock("api", Quota::per_second(5)?, ManualClock::new())?;
    /// assert_eq!(limiter.state().remaining, 5);
    /// assert_eq!(limiter.state().next_token_in, Duration::ZERO); // full
    /// limiter.check_n(2)?;
    /// let state = limiter.state();
    /// assert_eq!(state.remaining, 3);
    /// assert_eq!(state.next_token_in, Duration::from_millis(200));
    /// assert_eq!(state.quota, Quota::per_second(5)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn state(&self) -> LimitState {
        let s = self.inner.gcra.state(self.now());
        LimitState {
            remaining: s.remaining,
            next_token_in: Duration::from_nanos(s.next_token_in),
            quota: self.quota(),
        }
    }

    /// The quota in force.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_limit::{Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::new("api", Quota::per_minute(150)?.with_burst(10)?)?;
    /// assert_eq!(limiter.quota().interval(), Duration::from_millis(400));
    /// assert_eq!(limiter.quota().burst(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn quota(&self) -> Quota {
        *self
            .inner
            .quota
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the quota at run time, keeping the tokens already taken: the
    /// debt is re-expressed at the new rate (2 tokens owed stay 2 tokens
    /// owed), so tightening a quota cannot admit a second burst and
    /// loosening it does not keep clients waiting at the old rate.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::with_clock("api", Quota::per_second(1)?, ManualClock::new())?;
    /// limiter.check()?;
    /// let refused = limiter.check().unwrap_err();
    /// assert_eq!(refused.retry_after(), Some(Duration::from_secs(1)));
    /// // Ten times faster: the token owed now comes back in a tenth of the time.
    /// limiter.set_quota(Quota::per_second(10)?.with_burst(1)?);
    /// let refused = limiter.check().unwrap_err();
    /// assert_eq!(refused.retry_after(), Some(Duration::from_millis(100)));
    /// assert_eq!(limiter.quota(), Quota::per_second(10)?.with_burst(1)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_quota(&self, quota: Quota) {
        let mut q = self
            .inner
            .quota
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.inner.gcra.set_quota(quota, self.now());
        *q = quota;
        tracing::info!(limiter = %self.inner.name, interval = ?quota.interval(), burst = quota.burst(), "quota changed");
    }

    /// Waits until one token is ours, at most `max_wait`; fails at once,
    /// without waiting, when the token would come later than that (or
    /// never). Waiters are served first come, first served; a waiter that
    /// is dropped before its turn gives its token back if nobody queued
    /// behind it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_limit::{Quota, RateLimiter};
    /// use tokio::time::Instant;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let limiter = RateLimiter::new("api", Quota::per_second(10)?.with_burst(1)?)?;
    /// let start = Instant::now();
    /// limiter.until_ready(Duration::from_secs(1)).await?; // at once
    /// limiter.until_ready(Duration::from_secs(1)).await?; // after 100 ms
    /// assert!(start.elapsed() >= Duration::from_millis(100));
    /// // The next token is 100 ms away: too long for a 50 ms budget.
    /// let refused = limiter.until_ready(Duration::from_millis(50)).await.unwrap_err();
    /// assert_eq!(refused.retry_after(), Some(Duration::from_millis(100)));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn until_ready(&self, max_wait: Duration) -> Result<(), RateLimited> {
        self.until_n_ready(1, max_wait).await
    }

    /// Like [`until_ready`](Self::until_ready) for `n` tokens.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_limit::{Quota, RateLimiter};
    /// use tokio::time::Instant;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let limiter = RateLimiter::new("batch", Quota::per_second(10)?)?;
    /// let start = Instant::now();
    /// limiter.until_n_ready(10, Duration::from_secs(5)).await?; // the whole burst
    /// limiter.until_n_ready(5, Duration::from_secs(5)).await?; // 5 more: 500 ms
    /// assert!(start.elapsed() >= Duration::from_millis(500));
    /// // 11 tokens can never be had at once: refused without waiting.
    /// let never = limiter.until_n_ready(11, Duration::from_secs(60)).await.unwrap_err();
    /// assert_eq!(never.retry_after(), None);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn until_n_ready(&self, n: u32, max_wait: Duration) -> Result<(), RateLimited> {
        let (wait, tat, cost) = self.reserve(n, max_wait)?;
        if !wait.is_zero() {
            let guard = GiveBack {
                limiter: self,
                tat,
                cost,
                armed: true,
            };
            tokio::time::sleep(wait).await;
            guard.disarm();
        }
        Ok(())
    }

    pub(crate) fn reserve(
        &self,
        n: u32,
        max_wait: Duration,
    ) -> Result<(Duration, u64, u64), RateLimited> {
        let max = u64::try_from(max_wait.as_nanos()).unwrap_or(u64::MAX);
        match self.inner.gcra.reserve(self.now(), n, max) {
            Reservation::Reserved { wait, tat, cost } => {
                self.inner.allowed.increment(1);
                Ok((Duration::from_nanos(wait), tat, cost))
            }
            Reservation::TooLong { retry_after } => {
                Err(self.refuse(Decision::Denied { retry_after }))
            }
            Reservation::Impossible => Err(self.refuse(Decision::Impossible)),
        }
    }

    pub(crate) fn cancel(&self, tat: u64, cost: u64) {
        let _ = self.inner.gcra.cancel(tat, cost);
    }
}

/// Gives a reservation back when a waiter is dropped before its turn.
struct GiveBack<'a> {
    limiter: &'a RateLimiter,
    tat: u64,
    cost: u64,
    armed: bool,
}

impl GiveBack<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.limiter.cancel(self.tat, self.cost);
        }
    }
}
