//! Retry budgets: how many retries the whole fleet of callers may make.
//!
//! A retry policy alone multiplies an outage: with 3 retries every failing
//! request becomes 4 calls. A budget shared by every service and clone that
//! holds it caps retries as a share of real traffic, so during a total
//! outage the upstream sees little more than the original requests.

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use buttress_core::sync::{AtomicI64, AtomicU64, Mutex, Ordering};

/// Tokens are counted in millionths. A deposit's credit is rounded *up*,
/// so that `n` deposits at ratio `r` always earn `floor(n × r)` retries
/// (1/3 × 9 = 3, not 2) while the excess stays below one retry per million
/// requests; tower's `TpsBudget` rounds such ratios coarsely and grants too
/// many. With the bounds on the parameters, the balance cannot overflow
/// below a million requests a second sustained over a day-long window.
const MICRO: i64 = 1_000_000;

/// A budget of retries shared by everything that holds it.
///
/// The retry layer calls [`deposit`](RetryBudget::deposit) once per original
/// request, [`record`](RetryBudget::record) after every attempt, and
/// [`try_withdraw`](RetryBudget::try_withdraw) before every retry; a refusal
/// ends the retries and the caller gets the last error.
pub trait RetryBudget: Send + Sync + fmt::Debug + 'static {
    /// An original request was made.
    fn deposit(&self, now: Instant);
    /// Asks for one retry; `true` grants (and spends) it.
    fn try_withdraw(&self, now: Instant) -> bool;
    /// An attempt finished: `true` for a success, `false` for a failure.
    fn record(&self, _success: bool) {}

    /// An original request was made, at about the time of the budget's
    /// most recent timed operation. Reading the clock is the largest cost
    /// of a deposit, so the retry layer reads it for only some deposits and
    /// makes the others with this. Returns `false` if the budget cannot
    /// (the default), and the layer then deposits with the time.
    fn deposit_untimed(&self) -> bool {
        false
    }
}

/// Finagle's and Envoy's budget: retries may be up to `ratio` of the
/// original requests of the last `window`, plus a reserve of
/// `min_per_second` retries per second so that low-traffic callers can
/// still retry. Deposits and withdrawals both expire after `window`.
///
/// A deposit, made once per request, is one atomic addition to the newest
/// bucket and takes no lock. A withdrawal, made only before a retry, sums
/// the buckets under a short lock and takes its credit from the newest;
/// expiry runs once per tenth of the window under the same lock. (A
/// running balance beside the buckets would make withdrawals cheaper and
/// every request pay a second atomic addition: retries are the rare path.)
///
/// ```
/// use std::time::{Duration, Instant};
/// use buttress_retry::{RatioBudget, RetryBudget};
///
/// // 10 % of requests, no reserve.
/// let budget = RatioBudget::new(0.1, 0.0, Duration::from_secs(10)).unwrap();
/// let now = Instant::now();
/// for _ in 0..30 { budget.deposit(now); }
/// let granted = (0..10).filter(|_| budget.try_withdraw(now)).count();
/// assert_eq!(granted, 3);
/// ```
pub struct RatioBudget {
    ratio: f64,
    min_per_second: f64,
    window: Duration,
    credit: i64,
    reserve: i64,
    bucket_nanos: u64,
    /// The newest slice seen: lets most operations find their bucket
    /// without a division, and untimed deposits find theirs at all.
    current: AtomicU64,
    buckets: Box<[Bucket]>,
    rotation: Mutex<()>,
    origin: OnceLock<Instant>,
}

#[derive(Debug)]
struct Bucket {
    /// Slice index + 1; 0 when empty.
    stamp: AtomicU64,
    credits: AtomicI64,
    debits: AtomicI64,
}

#[cfg(not(loom))]
const BUCKETS: u32 = 10;
// Under the model checker every atomic access is a branch point and a
// withdrawal reads every bucket: two buckets keep the same races (a
// deposit into a bucket that is expiring) within reach.
#[cfg(loom)]
const BUCKETS: u32 = 2;

/// Why a budget's parameters were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// `ratio` must be finite and in [0, 100].
    #[error("budget ratio must be in [0, 100], got {0}")]
    Ratio(f64),
    /// `min_per_second` must be finite, at least 0, and allow at most a
    /// billion retries per window.
    #[error(
        "budget min_per_second must be at least 0 and allow at most 1e9 retries per window, got {0}"
    )]
    MinPerSecond(f64),
    /// The window must be 10 ms to 1 day.
    #[error("budget window must be 10ms to 1 day, got {0:?}")]
    Window(Duration),
    /// Throttling needs `max_tokens` in (0, 1,000,000] and `token_ratio` in
    /// (0, max_tokens].
    #[error(
        "throttling needs max_tokens in (0, 1000000] and token_ratio in (0, max_tokens], got {max_tokens} and {token_ratio}"
    )]
    Throttle {
        /// The maximum given.
        max_tokens: f64,
        /// The ratio given.
        token_ratio: f64,
    },
}

impl fmt::Debug for RatioBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RatioBudget")
            .field("ratio", &self.ratio)
            .field("min_per_second", &self.min_per_second)
            .field("window", &self.window)
            .field("balance", &self.balance())
            .finish()
    }
}

impl RatioBudget {
    /// A budget of `ratio` retries per original request (0.2 = 20 %), plus
    /// `min_per_second` retries per second, over a sliding `window`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use buttress_retry::{BudgetError, RatioBudget, RetryBudget};
    ///
    /// // 20 % of requests, plus 1 retry a second, over 10 s.
    /// let budget = RatioBudget::new(0.2, 1.0, Duration::from_secs(10))?;
    /// let now = Instant::now();
    /// assert_eq!(budget.available(now), 10); // the reserve alone: 1 a second for 10 s
    /// for _ in 0..50 {
    ///     budget.deposit(now); // 50 requests
    /// }
    /// assert_eq!(budget.available(now), 20); // + 20 % of them
    ///
    /// let e = RatioBudget::new(0.2, 1.0, Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(e, BudgetError::Window(Duration::from_millis(1))); // 10 ms to 1 day
    /// # Ok::<(), BudgetError>(())
    /// ```
    pub fn new(ratio: f64, min_per_second: f64, window: Duration) -> Result<Self, BudgetError> {
        if !(ratio.is_finite() && (0.0..=100.0).contains(&ratio)) {
            return Err(BudgetError::Ratio(ratio));
        }
        if window < Duration::from_millis(10) || window > Duration::from_secs(86_400) {
            return Err(BudgetError::Window(window));
        }
        if !(min_per_second.is_finite()
            && min_per_second >= 0.0
            && min_per_second * window.as_secs_f64() <= 1e9)
        {
            return Err(BudgetError::MinPerSecond(min_per_second));
        }
        let window_nanos = window.as_nanos() as u64;
        Ok(Self {
            ratio,
            min_per_second,
            window,
            credit: (ratio * MICRO as f64).ceil() as i64,
            reserve: (min_per_second * window.as_secs_f64() * MICRO as f64).round() as i64,
            bucket_nanos: window_nanos / u64::from(BUCKETS),
            current: AtomicU64::new(0),
            buckets: (0..BUCKETS)
                .map(|_| Bucket {
                    stamp: AtomicU64::new(0),
                    credits: AtomicI64::new(0),
                    debits: AtomicI64::new(0),
                })
                .collect(),
            rotation: Mutex::new(()),
            origin: OnceLock::new(),
        })
    }

    /// Finagle's defaults: 20 % of requests plus 10 retries a second, over
    /// 10 seconds.
    ///
    /// ```
    /// use std::time::Instant;
    /// use buttress_retry::{RatioBudget, RetryBudget};
    ///
    /// let budget = RatioBudget::finagle();
    /// let now = Instant::now();
    /// assert_eq!(budget.available(now), 100); // 10 a second for 10 s, before any traffic
    /// for _ in 0..1000 {
    ///     budget.deposit(now);
    /// }
    /// assert_eq!(budget.available(now), 300); // + 20 % of 1000 requests
    /// ```
    pub fn finagle() -> Self {
        Self::new(0.2, 10.0, Duration::from_secs(10)).expect("constant, valid parameters")
    }

    /// Retries still available now, in whole retries.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use buttress_retry::{RatioBudget, RetryBudget};
    ///
    /// let budget = RatioBudget::new(0.5, 0.0, Duration::from_secs(10))?;
    /// let t0 = Instant::now();
    /// for _ in 0..10 {
    ///     budget.deposit(t0);
    /// }
    /// assert_eq!(budget.available(t0), 5);
    /// assert!(budget.try_withdraw(t0));
    /// assert_eq!(budget.available(t0), 4);
    /// // A window later the deposits (and the withdrawal) have expired.
    /// assert_eq!(budget.available(t0 + Duration::from_secs(10)), 0);
    /// # Ok::<(), buttress_retry::BudgetError>(())
    /// ```
    pub fn available(&self, now: Instant) -> u64 {
        self.bucket(now); // expire what has aged out
        let total = self.reserve.saturating_add(self.balance());
        (total.max(0) / MICRO) as u64
    }

    /// Credits minus withdrawals in the buckets, in millionths: the
    /// expired buckets are emptied as they rotate out, so every bucket
    /// counts.
    fn balance(&self) -> i64 {
        self.buckets.iter().fold(0i64, |sum, b| {
            sum.saturating_add(b.credits.load(Ordering::Acquire))
                .saturating_sub(b.debits.load(Ordering::Acquire))
        })
    }

    /// The bucket for `now`, rotating out whatever has expired first.
    #[inline]
    fn bucket(&self, now: Instant) -> &Bucket {
        let origin = *self.origin.get_or_init(|| now);
        let t = now.saturating_duration_since(origin).as_nanos() as u64;
        let current = self.current.load(Ordering::Acquire);
        let start = current.saturating_mul(self.bucket_nanos);
        // Most calls fall in the newest slice: no division needed.
        let slice = match t.checked_sub(start) {
            Some(into) if into < self.bucket_nanos => current,
            _ => t / self.bucket_nanos,
        };
        self.bucket_of(slice)
    }

    #[inline]
    fn bucket_of(&self, slice: u64) -> &Bucket {
        let b = &self.buckets[(slice % u64::from(BUCKETS)) as usize];
        if b.stamp.load(Ordering::Acquire) != slice + 1 {
            self.rotate(slice);
        }
        b
    }

    fn evict(&self, b: &Bucket) {
        b.credits.store(0, Ordering::Release);
        b.debits.store(0, Ordering::Release);
    }

    #[cold]
    fn rotate(&self, slice: u64) {
        let _guard = self.rotation.lock();
        let n = u64::from(BUCKETS);
        // The window is the last `n` slices, up to `slice`: a bucket whose
        // stamp (its slice + 1) is `n` or more below `slice + 1` has aged
        // out. That includes whatever older slice held `slice`'s bucket.
        for b in self.buckets.iter() {
            if b.stamp.load(Ordering::Acquire) + n <= slice + 1 {
                self.evict(b);
                b.stamp.store(0, Ordering::Release);
            }
        }
        // `slice`'s bucket is now empty, unless a caller that got the lock
        // first already started it (or, with a later time, a newer slice).
        let b = &self.buckets[(slice % n) as usize];
        if b.stamp.load(Ordering::Acquire) == 0 {
            // Empty it again: a deposit that found it before it expired
            // may have landed since.
            self.evict(b);
            b.stamp.store(slice + 1, Ordering::Release);
        }
        self.current.fetch_max(slice, Ordering::AcqRel);
    }
}

impl RetryBudget for RatioBudget {
    #[inline]
    fn deposit(&self, now: Instant) {
        if self.credit == 0 {
            return;
        }
        self.bucket(now)
            .credits
            .fetch_add(self.credit, Ordering::AcqRel);
    }

    #[inline]
    fn deposit_untimed(&self) -> bool {
        if self.credit != 0 {
            self.bucket_of(self.current.load(Ordering::Acquire))
                .credits
                .fetch_add(self.credit, Ordering::AcqRel);
        }
        true
    }

    fn try_withdraw(&self, now: Instant) -> bool {
        let b = self.bucket(now);
        // Under the rotation lock no bucket expires and no other withdrawal
        // runs, so the sum can only grow (by deposits) before the debit
        // lands: two callers never spend one credit.
        let _guard = self.rotation.lock();
        let granted = self.reserve.saturating_add(self.balance()) >= MICRO;
        if granted {
            b.debits.fetch_add(MICRO, Ordering::AcqRel);
        }
        granted
    }
}

/// gRPC's retry throttling (A6): a token count that starts full, loses 1
/// for every failed attempt and gains `token_ratio` for every success,
/// between 0 and `max_tokens`; retries are allowed only while more than
/// half the tokens remain. No time window: the count follows the health of
/// the upstream.
///
/// ```
/// use std::time::Instant;
/// use buttress_retry::{RetryBudget, Throttle};
///
/// let t = Throttle::new(10.0, 0.1).unwrap();
/// for _ in 0..5 { t.record(false); } // 5 failures: 5 tokens left
/// assert!(!t.try_withdraw(Instant::now()));
/// for _ in 0..10 { t.record(true); } // +1: 6 tokens
/// assert!(t.try_withdraw(Instant::now()));
/// ```
pub struct Throttle {
    max: i64,
    ratio: i64,
    tokens: AtomicI64,
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("max_tokens", &(self.max as f64 / MICRO as f64))
            .field("token_ratio", &(self.ratio as f64 / MICRO as f64))
            .field(
                "tokens",
                &(self.tokens.load(Ordering::Relaxed) as f64 / MICRO as f64),
            )
            .finish()
    }
}

impl Throttle {
    /// A full throttle of `max_tokens`, refilled by `token_ratio` per
    /// success.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use buttress_retry::{RetryPolicy, Throttle};
    ///
    /// // gRPC's example values; shared by every policy in front of one upstream.
    /// let throttle = Arc::new(Throttle::new(10.0, 0.1)?);
    /// assert_eq!(throttle.tokens(), 10.0); // starts full
    /// let policy = RetryPolicy::builder("grpc").shared_budget(throttle).build()?;
    /// # let _ = policy;
    ///
    /// assert!(Throttle::new(0.0, 0.1).is_err()); // max_tokens must be above 0
    /// assert!(Throttle::new(10.0, 20.0).is_err()); // token_ratio at most max_tokens
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(max_tokens: f64, token_ratio: f64) -> Result<Self, BudgetError> {
        let bad = BudgetError::Throttle {
            max_tokens,
            token_ratio,
        };
        if !(max_tokens.is_finite() && max_tokens > 0.0 && max_tokens <= 1e6) {
            return Err(bad);
        }
        if !(token_ratio.is_finite() && token_ratio > 0.0 && token_ratio <= max_tokens) {
            return Err(bad);
        }
        let max = (max_tokens * MICRO as f64).round() as i64;
        Ok(Self {
            max,
            ratio: ((token_ratio * MICRO as f64).round() as i64).max(1),
            tokens: AtomicI64::new(max),
        })
    }

    /// The tokens left.
    ///
    /// ```
    /// use std::time::Instant;
    /// use buttress_retry::{RetryBudget, Throttle};
    ///
    /// let t = Throttle::new(4.0, 0.5)?;
    /// t.record(false);
    /// t.record(false); // a failed attempt costs 1 token
    /// assert_eq!(t.tokens(), 2.0);
    /// assert!(!t.try_withdraw(Instant::now())); // at half or below: no retries
    /// t.record(true); // a success earns `token_ratio`
    /// assert_eq!(t.tokens(), 2.5);
    /// assert!(t.try_withdraw(Instant::now()));
    /// # Ok::<(), buttress_retry::BudgetError>(())
    /// ```
    pub fn tokens(&self) -> f64 {
        self.tokens.load(Ordering::Acquire) as f64 / MICRO as f64
    }
}

impl RetryBudget for Throttle {
    fn deposit(&self, _now: Instant) {}

    fn deposit_untimed(&self) -> bool {
        true
    }

    fn try_withdraw(&self, _now: Instant) -> bool {
        // Strictly more than half (gRPC: "retries are throttled when the
        // token count is at or below max_tokens / 2").
        2 * self.tokens.load(Ordering::Acquire) > self.max
    }

    fn record(&self, success: bool) {
        let (max, ratio) = (self.max, self.ratio);
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                let next = if success {
                    (t + ratio).min(max)
                } else {
                    (t - MICRO).max(0)
                };
                (next != t).then_some(next)
            });
    }
}
