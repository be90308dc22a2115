//! One limit per key (client IP, API key, tenant), in a sharded store with
//! bounded memory.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use buttress_core::sync::{AtomicU64, Ordering};
use buttress_core::{Clock, Name, SharedClock, Stopwatch};
use hashbrown::DefaultHashBuilder;
use hashbrown::HashMap;
use metrics::Counter;

use crate::error::RateLimited;
use crate::gcra::{Decision, QuotaCell, check_tat, rescale_tat};
use crate::limiter::LimiterError;
use crate::networks::Allowlist;
use crate::quota::Quota;

/// The keys a keyed limiter never limits, behind an `Arc`.
pub type Allow<K> = Arc<dyn Allowlist<K> + Send + Sync>;

/// A rate limiter with one limit per key. Cheap to clone; clones share the
/// store.
///
/// Memory is bounded without a cleanup task: the store holds at most
/// `max_keys` keys. A key whose bucket has refilled completely carries no
/// information (it is the same as a key never seen), so such keys are
/// dropped whenever a shard fills up, and the shard is then brought down to
/// seven eighths by dropping the keys closest to refilled (amortised O(1)
/// per new key). A dropped key that still owed tokens starts afresh: when
/// more distinct clients than `max_keys` are active at once, a client can
/// be admitted early. Size `max_keys` above the clients active within one
/// window. (governor's keyed limiters grow until the user calls
/// `retain_recent`: governor #171.)
///
/// ```
/// use std::net::IpAddr;
/// use buttress_limit::{KeyedRateLimiter, Quota};
///
/// let limiter: KeyedRateLimiter<IpAddr> = KeyedRateLimiter::builder("per-ip", Quota::per_minute(150)?.with_burst(1)?)
///     .allow(buttress_limit::allow_networks(&["127.0.0.0/8", "::1/128"])?)
///     .build()?;
/// let client: IpAddr = "203.0.113.7".parse()?;
/// assert!(limiter.check(&client).is_ok());
/// assert!(limiter.check(&client).is_err());
/// let local: IpAddr = "127.0.0.1".parse()?;
/// for _ in 0..10 { assert!(limiter.check(&local).is_ok()); } // never limited
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct KeyedRateLimiter<K> {
    inner: Arc<Inner<K>>,
}

struct Inner<K> {
    name: Name,
    quota: QuotaCell,
    current: RwLock<Quota>,
    shards: Box<[RwLock<HashMap<K, AtomicU64>>]>,
    per_shard: usize,
    hasher: DefaultHashBuilder,
    allow: Option<Allow<K>>,
    clock: Stopwatch,
    allowed: Counter,
    rejected: Counter,
    evicted: Counter,
}

impl<K> Clone for KeyedRateLimiter<K> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K> fmt::Debug for KeyedRateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("name", &self.inner.name)
            .field("shards", &self.inner.shards.len())
            .field(
                "max_keys",
                &(self.inner.per_shard * self.inner.shards.len()),
            )
            .finish_non_exhaustive()
    }
}

/// Builds a [`KeyedRateLimiter`].
#[must_use]
pub struct KeyedBuilder<K> {
    name: String,
    quota: Quota,
    max_keys: usize,
    shards: usize,
    allow: Option<Allow<K>>,
    clock: Option<SharedClock>,
}

impl<K> fmt::Debug for KeyedBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedBuilder")
            .field("name", &self.name)
            .field("quota", &self.quota)
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedBuilder<K> {
    buttress_core::setters! {
        /// At most this many keys are held (default 100,000; at least one per
        /// shard).
        ///
        /// ```
        /// use buttress_core::ManualClock;
        /// use buttress_limit::{KeyedRateLimiter, Quota};
        ///
        /// let limiter = KeyedRateLimiter::builder("per-user", Quota::per_hour(10)?)
        ///     .max_keys(2)
        ///     .shards(1)
        ///     .clock(ManualClock::new())
        ///     .build()?;
        /// for user in [1_u64, 2, 3] {
        ///     limiter.check(&user)?;
        /// }
        /// assert_eq!(limiter.len(), 2); // the key closest to refilled was dropped
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        max_keys: usize,
        /// The number of shards, rounded up to a power of two (default 64).
        ///
        /// ```
        /// use buttress_limit::{KeyedRateLimiter, Quota};
        ///
        /// let limiter: KeyedRateLimiter<u64> =
        ///     KeyedRateLimiter::builder("per-user", Quota::per_second(5)?).shards(3).build()?;
        /// assert!(format!("{limiter:?}").contains("shards: 4"));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        shards: usize,
    }

    /// Keys on `allow` are never limited: a closure `Fn(&K) -> bool`, or
    /// for IP addresses [`Networks`](crate::Networks).
    ///
    /// ```
    /// use buttress_limit::{KeyedRateLimiter, Quota};
    ///
    /// let limiter = KeyedRateLimiter::builder("per-key", Quota::per_hour(1)?)
    ///     .allow(|key: &String| key.starts_with("internal-"))
    ///     .build()?;
    /// let ops = "internal-ops".to_string();
    /// for _ in 0..100 {
    ///     limiter.check(&ops)?; // never limited
    /// }
    /// assert!(limiter.is_empty()); // and never stored
    /// let guest = "guest".to_string();
    /// limiter.check(&guest)?;
    /// assert!(limiter.check(&guest).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allow(mut self, allow: impl Allowlist<K> + Send + Sync + 'static) -> Self {
        self.allow = Some(Arc::new(allow));
        self
    }

    /// The clock (default: [`default_clock`](buttress_core::default_clock),
    /// the CPU's time-stamp counter, or tokio's clock when the limiter is
    /// built under paused time).
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{KeyedRateLimiter, Quota};
    ///
    /// let clock = ManualClock::new();
    /// let limiter = KeyedRateLimiter::builder("per-key", Quota::per_minute(1)?)
    ///     .clock(clock.clone())
    ///     .build()?;
    /// limiter.check(&"alice")?;
    /// assert!(limiter.check(&"alice").is_err());
    /// clock.advance(Duration::from_secs(60));
    /// assert!(limiter.check(&"alice").is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Builds the limiter.
    ///
    /// ```
    /// use buttress_limit::{KeyedRateLimiter, LimiterError, Quota};
    ///
    /// let limiter = KeyedRateLimiter::<u64>::builder("per-user", Quota::per_second(5)?).build()?;
    /// assert_eq!(limiter.name().as_str(), "per-user");
    /// // The name is checked here, when the limiter is built.
    /// let bad = KeyedRateLimiter::<u64>::builder("", Quota::per_second(5)?).build();
    /// assert!(matches!(bad, Err(LimiterError::Name(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<KeyedRateLimiter<K>, LimiterError> {
        let name = Name::new(&self.name).map_err(LimiterError::Name)?;
        let shards = self.shards.clamp(1, 4096).next_power_of_two();
        let max_keys = self.max_keys.max(shards);
        let per_shard = max_keys / shards;
        let label = name.to_string();
        Ok(KeyedRateLimiter {
            inner: Arc::new(Inner {
                allowed: metrics::counter!("buttress_limit_allowed_total", "name" => label.clone()),
                rejected: metrics::counter!("buttress_limit_rejected_total", "name" => label.clone()),
                evicted: metrics::counter!("buttress_limit_keys_evicted_total", "name" => label),
                name,
                quota: QuotaCell::new(self.quota),
                current: RwLock::new(self.quota),
                shards: (0..shards).map(|_| RwLock::new(HashMap::new())).collect(),
                per_shard,
                hasher: DefaultHashBuilder::default(),
                allow: self.allow,
                clock: self.clock.map_or_else(Stopwatch::default, Stopwatch::new),
            }),
        })
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedRateLimiter<K> {
    /// Starts a builder.
    ///
    /// ```
    /// use buttress_limit::{KeyedRateLimiter, Quota};
    ///
    /// let limiter: KeyedRateLimiter<u64> =
    ///     KeyedRateLimiter::builder("per-user", Quota::per_second(5)?)
    ///         .max_keys(10_000)
    ///         .build()?;
    /// assert_eq!(limiter.quota(), Quota::per_second(5)?);
    /// assert!(limiter.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(name: impl Into<String>, quota: Quota) -> KeyedBuilder<K> {
        KeyedBuilder {
            name: name.into(),
            quota,
            max_keys: 100_000,
            shards: 64,
            allow: None,
            clock: None,
        }
    }

    #[inline]
    fn now(&self) -> u64 {
        self.inner.clock.nanos()
    }

    #[inline]
    fn shard(&self, key: &K) -> &RwLock<HashMap<K, AtomicU64>> {
        // High bits of the mixed hash: the map inside uses the low ones.
        let mixed = spread(self.inner.hasher.hash_one(key));
        let i = (mixed >> 48) as usize & (self.inner.shards.len() - 1);
        &self.inner.shards[i]
    }

    /// Takes one token for `key`, or says when to come back.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{KeyedRateLimiter, Quota};
    ///
    /// let limiter = KeyedRateLimiter::builder("per-key", Quota::per_hour(1)?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// assert!(limiter.check(&"alice").is_ok());
    /// let refused = limiter.check(&"alice").unwrap_err();
    /// assert_eq!(refused.retry_after(), Some(Duration::from_secs(3600)));
    /// assert!(limiter.check(&"bob").is_ok()); // each key has its own limit
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn check(&self, key: &K) -> Result<(), RateLimited> {
        self.check_n(key, 1)
    }

    /// Takes `n` tokens for `key`.
    ///
    /// ```
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{KeyedRateLimiter, Quota};
    ///
    /// let limiter = KeyedRateLimiter::builder("per-key", Quota::per_second(10)?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// assert!(limiter.check_n(&"alice", 10).is_ok());
    /// assert!(limiter.check(&"alice").is_err());
    /// // A cost above the burst can never be admitted.
    /// assert_eq!(limiter.check_n(&"bob", 11).unwrap_err().retry_after(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_n(&self, key: &K, n: u32) -> Result<(), RateLimited> {
        self.decide::<false>(key, n).map(|_| ())
    }

    /// Takes `n` tokens for `key`; returns the whole tokens left after it
    /// (`u32::MAX` for an allowlisted key).
    ///
    /// ```
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{KeyedRateLimiter, Quota};
    ///
    /// let limiter = KeyedRateLimiter::builder("per-key", Quota::per_minute(3)?)
    ///     .allow(|key: &&str| *key == "admin")
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// assert_eq!(limiter.check_remaining(&"alice", 1)?, 2);
    /// assert_eq!(limiter.check_remaining(&"alice", 2)?, 0);
    /// assert!(limiter.check_remaining(&"alice", 1).is_err());
    /// assert_eq!(limiter.check_remaining(&"admin", 1)?, u32::MAX);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_remaining(&self, key: &K, n: u32) -> Result<u32, RateLimited> {
        self.decide::<true>(key, n)
    }

    #[inline]
    fn decide<const REMAINING: bool>(&self, key: &K, n: u32) -> Result<u32, RateLimited> {
        if let Some(allow) = &self.inner.allow
            && allow.allows(key)
        {
            return Ok(u32::MAX);
        }
        let now = self.now();
        let rates = || self.inner.quota.rates();
        let shard = self.shard(key);
        let decision = {
            let map = shard
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.get(key)
                .map(|tat| check_tat::<REMAINING>(tat, rates, now, n))
        };
        let decision = match decision {
            Some(d) => d,
            None => self.insert_and_check::<REMAINING>(shard, key, now, n),
        };
        match decision {
            Decision::Allowed { remaining } => {
                self.inner.allowed.increment(1);
                Ok(remaining)
            }
            Decision::Denied { retry_after } => {
                self.inner.rejected.increment(1);
                Err(RateLimited::new(
                    self.inner.name.clone(),
                    Some(Duration::from_nanos(retry_after)),
                )
                .with_quota(Quota::from_rates(self.inner.quota.rates())))
            }
            Decision::Impossible => {
                self.inner.rejected.increment(1);
                Err(RateLimited::new(self.inner.name.clone(), None)
                    .with_quota(Quota::from_rates(self.inner.quota.rates())))
            }
        }
    }

    /// The limiter's name.
    ///
    /// ```
    /// use buttress_limit::{KeyedRateLimiter, Quota};
    ///
    /// let limiter = KeyedRateLimiter::<u64>::builder("per-tenant", Quota::per_second(5)?).build()?;
    /// assert_eq!(limiter.name().as_str(), "per-tenant");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    #[cold]
    fn insert_and_check<const REMAINING: bool>(
        &self,
        shard: &RwLock<HashMap<K, AtomicU64>>,
        key: &K,
        now: u64,
        n: u32,
    ) -> Decision {
        let mut map = shard
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !map.contains_key(key) && map.len() >= self.inner.per_shard {
            self.make_room(&mut map, now);
        }
        let tat = map.entry(key.clone()).or_insert_with(|| AtomicU64::new(0));
        check_tat::<REMAINING>(tat, || self.inner.quota.rates(), now, n)
    }

    /// Frees room in a full shard: every refilled key, and if that is not
    /// enough, the eighth of the keys closest to refilled (in one pass, so
    /// a flood of new keys costs O(1) amortized per key).
    fn make_room(&self, map: &mut HashMap<K, AtomicU64>, now: u64) {
        let before = map.len();
        // Refilled buckets carry no information: drop them all.
        map.retain(|_, tat| tat.load(Ordering::Acquire) > now);
        // Then bring the shard down to seven eighths, so that the next
        // eighth of new keys inserts without another pass.
        let target = self.inner.per_shard - (self.inner.per_shard / 8).max(1);
        if map.len() > target {
            let mut by_tat: Vec<(u64, K)> = map
                .iter()
                .map(|(k, tat)| (tat.load(Ordering::Acquire), k.clone()))
                .collect();
            let evict = map.len() - target;
            by_tat.select_nth_unstable_by_key(evict - 1, |(tat, _)| *tat);
            for (_, k) in by_tat.iter().take(evict) {
                map.remove(k);
            }
        }
        self.inner.evicted.increment((before - map.len()) as u64);
    }

    /// Drops every key whose bucket has refilled (the same as never seen).
    /// Not needed for bounded memory; useful to shrink after a burst of
    /// distinct keys.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{KeyedRateLimiter, Quota};
    ///
    /// let clock = ManualClock::new();
    /// let limiter = KeyedRateLimiter::builder("per-key", Quota::per_second(1)?)
    ///     .clock(clock.clone())
    ///     .build()?;
    /// limiter.check(&"alice")?;
    /// limiter.check(&"bob")?;
    /// limiter.retain_recent();
    /// assert_eq!(limiter.len(), 2); // both still owe a token
    /// clock.advance(Duration::from_secs(1));
    /// limiter.retain_recent();
    /// assert!(limiter.is_empty()); // both refilled: nothing to remember
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retain_recent(&self) {
        let now = self.now();
        for shard in self.inner.shards.iter() {
            let mut map = shard
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.retain(|_, tat| tat.load(Ordering::Acquire) > now);
        }
    }

    /// Keys held now.
    ///
    /// ```
    /// use buttress_limit::{KeyedRateLimiter, Quota};
    ///
    /// let limiter = KeyedRateLimiter::builder("per-user", Quota::per_second(5)?).build()?;
    /// for user in [7_u64, 8, 7, 9] {
    ///     limiter.check(&user)?;
    /// }
    /// assert_eq!(limiter.len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| {
                s.read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .sum()
    }

    /// Whether no key is held.
    ///
    /// ```
    /// use buttress_limit::{KeyedRateLimiter, Quota};
    ///
    /// let limiter = KeyedRateLimiter::builder("per-user", Quota::per_second(5)?).build()?;
    /// assert!(limiter.is_empty());
    /// limiter.check(&42_u64)?;
    /// assert!(!limiter.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The quota every key gets.
    ///
    /// ```
    /// use buttress_limit::{KeyedRateLimiter, Quota};
    ///
    /// let quota = Quota::per_minute(150)?.with_burst(10)?;
    /// let limiter = KeyedRateLimiter::<u64>::builder("per-user", quota).build()?;
    /// assert_eq!(limiter.quota(), quota);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn quota(&self) -> Quota {
        *self
            .inner
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes every key's quota at run time, keeping what each owes: each
    /// key's debt is re-expressed at the new rate, one shard at a time (a
    /// check on a key not yet rescaled may use the new rate with the old
    /// debt for the moment the walk takes).
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{KeyedRateLimiter, Quota};
    ///
    /// let limiter = KeyedRateLimiter::builder("per-key", Quota::per_second(1)?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// limiter.check(&"alice")?;
    /// let refused = limiter.check(&"alice").unwrap_err();
    /// assert_eq!(refused.retry_after(), Some(Duration::from_secs(1)));
    /// // Ten times faster: alice's one token owed comes back in 100 ms.
    /// limiter.set_quota(Quota::per_second(10)?.with_burst(1)?);
    /// let refused = limiter.check(&"alice").unwrap_err();
    /// assert_eq!(refused.retry_after(), Some(Duration::from_millis(100)));
    /// assert_eq!(limiter.quota(), Quota::per_second(10)?.with_burst(1)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_quota(&self, quota: Quota) {
        let mut q = self
            .inner
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = self.now();
        let mut rates = (0, 0);
        self.inner
            .quota
            .set(quota, |old_t, new_t| rates = (old_t, new_t));
        for shard in self.inner.shards.iter() {
            let map = shard
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for tat in map.values() {
                rescale_tat(tat, now, rates.0, rates.1);
            }
        }
        *q = quota;
    }
}

/// Mixes a hash so that its high bits depend on all of its bits: the
/// hasher's own high bits alone spread sequential keys badly under some
/// seeds (a shard took more than 64 of 1,024 keys in about one run in
/// 300).
#[inline]
fn spread(h: u64) -> u64 {
    // Fibonacci hashing: the product's high bits depend on every bit of
    // `h`, at the cost of one multiplication.
    h.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
