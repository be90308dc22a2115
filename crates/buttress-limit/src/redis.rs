//! The GCRA run atomically inside Redis, so that replicas share one limit.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use buttress_breaker::CircuitBreaker;
use buttress_core::Name;
use redis::aio::MultiplexedConnection;

use crate::error::RateLimited;
use crate::limiter::LimiterError;
use crate::quota::Quota;

/// The limit as one script call: Redis's own clock (`TIME`, in
/// microseconds) so that replicas with skewed clocks agree, one key per
/// limited key with a TTL of the time until its bucket is full again (a
/// refilled key carries no information, so it may vanish).
///
/// Returns `{1, remaining}` when allowed, `{0, retry_after_us}` when not,
/// `{-1, 0}` when the cost exceeds the burst.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local cap = interval * tonumber(ARGV[2])
local inc = interval * tonumber(ARGV[3])
if inc > cap then return {-1, 0} end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + inc
local ahead = new_tat - now
if ahead > cap then return {0, ahead - cap} end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', math.ceil(ahead / 1000) + 1))
return {1, math.floor((cap - ahead) / interval)}
";

/// What to do when Redis cannot answer in time (down, slow, or the breaker
/// around it open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRedisFailure {
    /// Admit the request: availability over strictness.
    FailOpen,
    /// Refuse the request (`retry_after` of one second).
    FailClosed,
}

/// A rate limiter whose state lives in Redis, shared by every replica that
/// uses the same Redis and prefix.
///
/// Every check is one `EVALSHA` of a GCRA script, bounded by a timeout. A
/// buttress-breaker circuit breaker stands in front of Redis: once Redis
/// fails or times out repeatedly, checks stop calling it (so a dead Redis
/// costs nothing per request) and get the configured [`OnRedisFailure`]
/// until a probe finds it healthy again.
pub struct RedisRateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    name: Name,
    client: redis::Client,
    connection: Mutex<Option<MultiplexedConnection>>,
    script: redis::Script,
    quota: Mutex<Quota>,
    prefix: String,
    timeout: Duration,
    on_failure: OnRedisFailure,
    breaker: CircuitBreaker,
}

impl Clone for RedisRateLimiter {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("name", &self.inner.name)
            .field("prefix", &self.inner.prefix)
            .field("on_failure", &self.inner.on_failure)
            .field("breaker", &self.inner.breaker)
            .finish_non_exhaustive()
    }
}

/// Why a Redis limiter could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisLimiterError {
    /// The name or quota.
    #[error(transparent)]
    Limiter(#[from] LimiterError),
    /// The Redis URL does not parse.
    #[error("invalid Redis URL")]
    Url(#[source] redis::RedisError),
    /// The breaker's configuration.
    #[error("invalid breaker for Redis")]
    Breaker(#[source] buttress_breaker::ConfigError),
}

impl RedisRateLimiter {
    /// A limiter named `name` (also the key prefix, `buttress:limit:<name>:`)
    /// on the Redis at `url`. Nothing connects until the first check, so a
    /// service starts even while Redis is down.
    ///
    /// Defaults: 50 ms timeout, fail open, and a breaker that opens after 5
    /// failures in a row for 5 s.
    ///
    /// ```
    /// use buttress_limit::{Quota, RedisLimiterError, RedisRateLimiter};
    ///
    /// // Nothing connects yet: this runs without a Redis server.
    /// let limiter = RedisRateLimiter::new("redis://127.0.0.1:6379/", "api", Quota::per_second(100)?)?;
    /// assert_eq!(limiter.breaker().name().as_str(), "redis:api");
    /// let bad = RedisRateLimiter::new("not a url", "api", Quota::per_second(100)?);
    /// assert!(matches!(bad, Err(RedisLimiterError::Url(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(url: &str, name: &str, quota: Quota) -> Result<Self, RedisLimiterError> {
        Self::with_options(
            url,
            name,
            quota,
            Duration::from_millis(50),
            OnRedisFailure::FailOpen,
        )
    }

    /// Like [`RedisRateLimiter::new`] with a timeout per call and a failure
    /// behaviour.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_limit::{OnRedisFailure, Quota, RedisRateLimiter};
    ///
    /// // Strict: when Redis cannot answer within 20 ms, refuse.
    /// let limiter = RedisRateLimiter::with_options(
    ///     "redis://127.0.0.1:1/", // nothing listens here
    ///     "payments",
    ///     Quota::per_second(10)?,
    ///     Duration::from_millis(20),
    ///     OnRedisFailure::FailClosed,
    /// )?;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let refused = limiter.check("card-4242").await.unwrap_err();
    /// assert_eq!(refused.retry_after(), Some(Duration::from_secs(1)));
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_options(
        url: &str,
        name: &str,
        quota: Quota,
        timeout: Duration,
        on_failure: OnRedisFailure,
    ) -> Result<Self, RedisLimiterError> {
        let checked =
            Name::new(name).map_err(|e| RedisLimiterError::Limiter(LimiterError::Name(e)))?;
        let client = redis::Client::open(url).map_err(RedisLimiterError::Url)?;
        let breaker = CircuitBreaker::builder(format!("redis:{name}"))
            .consecutive_failures(5)
            .failure_rate(None)
            .open_for(Duration::from_secs(5))
            .half_open_permits(1)
            .build()
            .map_err(RedisLimiterError::Breaker)?;
        Ok(Self {
            inner: Arc::new(Inner {
                prefix: format!("buttress:limit:{name}:"),
                name: checked,
                client,
                connection: Mutex::new(None),
                script: redis::Script::new(GCRA),
                quota: Mutex::new(quota),
                timeout,
                on_failure,
                breaker,
            }),
        })
    }

    /// The breaker in front of Redis (to read its state in a health check).
    ///
    /// ```
    /// use buttress_limit::{Quota, RedisRateLimiter};
    ///
    /// let limiter = RedisRateLimiter::new("redis://127.0.0.1:6379/", "api", Quota::per_second(100)?)?;
    /// // Closed until Redis fails 5 times in a row.
    /// assert_eq!(limiter.breaker().state().as_str(), "closed");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.inner.breaker
    }

    /// Changes the quota for every replica's next checks of this limiter
    /// (each replica sets its own; the state in Redis is kept).
    ///
    /// ```no_run
    /// use buttress_limit::{Quota, RedisRateLimiter};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let limiter = RedisRateLimiter::new("redis://127.0.0.1:6379/", "api", Quota::per_second(1)?)?;
    /// limiter.check("alice").await?;
    /// assert!(limiter.check("alice").await.is_err());
    /// // A burst of 5: alice's debt in Redis is kept, but now 4 more fit.
    /// limiter.set_quota(Quota::per_second(1)?.with_burst(5)?);
    /// assert!(limiter.check_n("alice", 4).await.is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_quota(&self, quota: Quota) {
        *self
            .inner
            .quota
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = quota;
    }

    /// Takes one token for `key`.
    ///
    /// ```no_run
    /// use buttress_limit::{Quota, RedisRateLimiter};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let limiter = RedisRateLimiter::new("redis://127.0.0.1:6379/", "api", Quota::per_minute(1)?)?;
    /// // Every replica that shares this Redis shares alice's one request a minute.
    /// limiter.check("alice").await?;
    /// let refused = limiter.check("alice").await.unwrap_err();
    /// assert!(refused.retry_after().is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn check(&self, key: &str) -> Result<(), RateLimited> {
        self.check_n(key, 1).await
    }

    /// Takes `n` tokens for `key`.
    ///
    /// ```no_run
    /// use buttress_limit::{Quota, RedisRateLimiter};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let limiter = RedisRateLimiter::new("redis://127.0.0.1:6379/", "search", Quota::per_second(10)?)?;
    /// limiter.check_n("alice", 8).await?; // an expensive query
    /// assert!(limiter.check_n("alice", 5).await.is_err()); // only 2 left
    /// // Above the burst: never admitted.
    /// assert_eq!(limiter.check_n("bob", 11).await.unwrap_err().retry_after(), None);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn check_n(&self, key: &str, n: u32) -> Result<(), RateLimited> {
        let inner = &*self.inner;
        let Ok(permit) = inner.breaker.try_acquire() else {
            return self.failed();
        };
        let quota = *inner
            .quota
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Whole microseconds, rounded up: never faster than asked.
        let interval_us = quota.interval().as_nanos().div_ceil(1000).max(1);
        match tokio::time::timeout(inner.timeout, self.eval(key, interval_us, quota.burst(), n))
            .await
        {
            Ok(Ok((code, value))) => {
                permit.success();
                match code {
                    1 => Ok(()),
                    0 => Err(RateLimited::new(
                        inner.name.clone(),
                        Some(Duration::from_micros(u64::try_from(value).unwrap_or(0))),
                    )
                    .with_quota(quota)),
                    _ => Err(RateLimited::new(inner.name.clone(), None).with_quota(quota)),
                }
            }
            Ok(Err(e)) => {
                permit.failure();
                // A broken connection is dropped and made again next time.
                *inner
                    .connection
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                tracing::warn!(limiter = %inner.name, error = %e, "redis rate limit check failed");
                self.failed()
            }
            Err(_) => {
                permit.failure();
                tracing::warn!(limiter = %inner.name, timeout = ?inner.timeout, "redis rate limit check timed out");
                self.failed()
            }
        }
    }

    async fn eval(
        &self,
        key: &str,
        interval_us: u128,
        burst: u32,
        n: u32,
    ) -> redis::RedisResult<(i64, i64)> {
        let inner = &*self.inner;
        let cached = inner
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut conn = match cached {
            Some(c) => c,
            None => {
                let c = inner.client.get_multiplexed_async_connection().await?;
                *inner
                    .connection
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c.clone());
                c
            }
        };
        inner
            .script
            .key(format!("{}{key}", inner.prefix))
            .arg(interval_us.to_string())
            .arg(burst)
            .arg(n)
            .invoke_async(&mut conn)
            .await
    }

    fn failed(&self) -> Result<(), RateLimited> {
        match self.inner.on_failure {
            OnRedisFailure::FailOpen => Ok(()),
            OnRedisFailure::FailClosed => {
                let quota = *self
                    .inner
                    .quota
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                Err(
                    RateLimited::new(self.inner.name.clone(), Some(Duration::from_secs(1)))
                        .with_quota(quota),
                )
            }
        }
    }
}
