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

    /// The refusal, with the quota it was made under (the layers attach it
    /// for the `RateLimit` header fields).
    pub(crate) fn with_quota(mut self, quota: Quota) -> Self {
        self.quota = Some(quota);
        self
    }

    /// The quota the request was refused under, when the refusing layer
    /// attached it (every buttress layer does).
    pub fn quota(&self) -> Option<Quota> {
        self.quota
    }

    /// The limiter's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// When to come back; `None` if the request can never be admitted.
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

    fn source_name(&self) -> Option<&str> {
        Some(self.name())
    }
}
