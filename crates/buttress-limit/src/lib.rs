//! A GCRA rate limiter for async Rust services.
//!
//! * One atomic word per limit (the theoretical arrival time), updated by
//!   compare-and-swap: a check is a clock read, a load and a CAS.
//! * [`Quota`] constructors that cannot be misread: `per_minute(150)` is 150
//!   each minute. Zero, overflow and absurd values are typed errors.
//! * Weighted costs ([`RateLimiter::check_n`]), a check that does not
//!   consume ([`RateLimiter::peek_n`]), the current state
//!   ([`RateLimiter::state`]), and quota changes at run time that keep the
//!   tokens already taken ([`RateLimiter::set_quota`]).
//! * Reject at once with [`RateLimited`] (carrying `retry_after`), or wait up
//!   to a maximum, first come first served, failing fast when the wait
//!   would be longer ([`RateLimiter::until_ready`], [`Mode::Wait`]).
//! * Clones share one limit; a tower [`RateLimitLayer`].
//! * Keyed limits ([`KeyedRateLimiter`]): one per client IP, API key or
//!   tenant, in a sharded store whose memory is bounded without a cleanup
//!   task, with an allowlist of keys or networks ([`allow_networks`]), and
//!   a tower [`KeyedRateLimitLayer`].
//! * HTTP (feature `http`): `client_ip` reads `Forwarded` or
//!   `X-Forwarded-For` only from trusted proxies; `HttpStatus` answers `429`
//!   with `Retry-After` and the IETF RateLimit header fields.
//! * Shared across replicas (feature `redis`): `RedisRateLimiter` runs the
//!   same algorithm in one Redis script call, with a timeout, fail-open or
//!   fail-closed behaviour, and a circuit breaker in front of Redis.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use buttress_core::ManualClock;
//! use buttress_limit::{Quota, RateLimiter};
//!
//! let clock = ManualClock::new();
//! let limiter = RateLimiter::with_clock("api", Quota::per_second(10)?.with_burst(1)?, clock.clone())?;
//! limiter.check()?;
//! let refused = limiter.check().unwrap_err();
//! assert_eq!(refused.retry_after(), Some(Duration::from_millis(100)));
//! clock.advance(Duration::from_millis(100));
//! limiter.check()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "http")]
mod client_ip;
pub mod error;
pub mod future;
mod gcra;
#[doc = include_str!("../guide.md")]
pub mod guide {}
mod keyed;
mod keyed_layer;
mod layer;
mod limiter;
mod networks;
mod quota;
#[cfg(feature = "redis")]
mod redis;

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(feature = "http")]
pub use buttress_core::HttpStatus;
pub use buttress_core::{OnReject, RejectWithError, Rejection, RejectionKind};
#[cfg(feature = "http")]
pub use client_ip::{ProxyHeader, client_ip};
pub use error::RateLimited;
pub use keyed::{Allow, KeyedBuilder, KeyedRateLimiter};
#[cfg(feature = "http")]
pub use keyed_layer::SuccessHeaders;
pub use keyed_layer::{KeyedRateLimitLayer, KeyedRateLimitService, NoHeaders, OnAdmitted};
pub use layer::{Mode, RateLimitLayer, RateLimitService};
pub use limiter::{LimitState, LimiterError, RateLimiter};
pub use networks::{Allowlist, NetworkError, Networks, allow_networks};
#[cfg(feature = "serde")]
pub use quota::QuotaConfig;
pub use quota::{Quota, QuotaError};
#[cfg(feature = "redis")]
pub use redis::{OnRedisFailure, RedisLimiterError, RedisRateLimiter};

// The README's example is compiled and run as a doctest.
#[cfg(all(doctest, feature = "http"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
