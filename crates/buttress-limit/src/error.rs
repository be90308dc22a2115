//! Errors the limiter adds.

use std::fmt;
use std::time::Duration;

use buttress_core::{Name, RateLimitPolicy, Rejection, RejectionKind};

pub use buttress_core::BoxError;

use crate::quota::Quota;

/// A request refused by a rate limiter.
///
/// Through tower it arrives inside a [`BoxError`]; recover it with
/// `downcast_ref`. `retry_after` says when the tokens will be there; it is
/// `None` only when the request costs more than the burst and can never be
/// admitted.
#[derive(Debug, Clone)]
pub struct RateLimited {
    name: Name,
    retry_after: Option<Duration>,
    quota: Option<Quota>,
}

impl RateLimited {
    pub(crate) fn new(name: Name, retry_after: Option<Duration>) -> Self {
        Self {
            name,
            retry_after,
            quota: None,
        }
    }

    /// The refusal, with the quota it was made under (for the
    /// `RateLimit` header fields).
    pub(crate) fn with_quota(mut self, quota: Quota) -> Self {
        self.quota = Some(quota);
        self
    }

    /// The quota the request was refused under. Every limiter attaches
    /// it (direct, keyed, and Redis, even when it fails closed).
    ///
    /// ```
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{Quota, RateLimiter};
    ///
    /// let quota = Quota::per_hour(1)?;
    /// let limiter = RateLimiter::with_clock("api", quota, ManualClock::new())?;
    /// limiter.check()?;
    /// assert_eq!(limiter.check().unwrap_err().quota(), Some(quota));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn quota(&self) -> Option<Quota> {
        self.quota
    }

    /// The limiter's name.
    ///
    /// ```
    /// use buttress_limit::{Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::new("llm", Quota::per_hour(1)?)?;
    /// limiter.check()?;
    /// let refused = limiter.check().unwrap_err();
    /// assert_eq!(refused.name(), "llm");
    /// assert!(refused.to_string().starts_with("rate limit 'llm' reached"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// When to come back; `None` if the request can never be admitted.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_limit::{Quota, RateLimiter};
    ///
    /// let limiter = RateLimiter::with_clock("api", Quota::per_second(2)?, ManualClock::new())?;
    /// limiter.check_n(2)?;
    /// let later = limiter.check().unwrap_err();
    /// assert_eq!(later.retry_after(), Some(Duration::from_millis(500)));
    /// let never = limiter.check_n(3).unwrap_err(); // more than the burst of 2
    /// assert_eq!(never.retry_after(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retry_after {
            Some(d) => write!(
                f,
                "rate limit '{}' reached; retry in {:.3}s",
                self.name,
                d.as_secs_f64()
            ),
            None => write!(
                f,
                "request exceeds the burst of rate limit '{}' and can never be admitted",
                self.name
            ),
        }
    }
}

// A refusal has no cause of its own: `Display` above is the whole story.
impl std::error::Error for RateLimited {}

impl Rejection for RateLimited {
    fn kind(&self) -> RejectionKind {
        RejectionKind::RateLimited
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    fn rate_limit_policy(&self) -> Option<RateLimitPolicy> {
        self.quota.map(|q| RateLimitPolicy {
            burst: q.burst(),
            window: q.interval() * q.burst(),
        })
    }

    fn instance_name(&self) -> Option<&str> {
        Some(self.name())
    }
}
