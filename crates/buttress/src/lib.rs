//! buttress: small, fast, proven resilience primitives for async services.
//!
//! This umbrella crate re-exports each primitive behind a feature:
//!
//! | feature   | module               | crate              |
//! |-----------|----------------------|--------------------|
//! | `breaker` | [`breaker`] (default) | `buttress-breaker` |
//! | `retry`   | [`retry`] (default)   | `buttress-retry`   |
//! | `limit`   | [`limit`] (default)   | `buttress-limit`   |
//! | `journal` | `journal`, `fs`       | `buttress-journal`, `buttress-fs` |
//! | `checkpoint` | `checkpoint`      | `buttress-checkpoint` |
//! | `pressure` | `pressure`          | `buttress-pressure` |
//! | `executor` | `executor`          | `buttress-executor` |
//! | `health`  | `health`             | `buttress-health`  |
//! | `degrade` | `degrade`            | `buttress-degrade` |
//! | `policy`  | `policy`             | `buttress-policy`  |
//! | `admin`   | `admin`              | `buttress-admin`   |
//!
//! and the shared pieces of `buttress-core` under [`common`]: the clock,
//! outcome classification, and the rejection handlers every layer takes
//! ([`RejectWithError`], the default, and `HttpStatus` under `http`), also
//! re-exported here.
//!
//! Integrations pass through to every enabled primitive:
//!
//! | feature | what |
//! |---------|------|
//! | `http` | HTTP classification, `Retry-After`, and `.http()` on every layer that refuses work: the layer answers `429`/`503`/`504` itself and keeps the inner service's error, so it goes straight into an axum `Router` |
//! | `serde` | `Deserialize` for every configuration: breaker, retry, limiter, journal, checkpoint store and checkpointer, gauges and adaptive limits, executor; human durations (`"2s"`) and sizes (`"100MB"`) |
//! | `redis` | `buttress::limit::RedisRateLimiter`, one limit shared by replicas (enables `limit`) |
//! | `postgres` | `buttress::checkpoint::PgStore` (enables `checkpoint`) |
//! | `axum` | `buttress::health::HealthEndpoints::router` (enables `health`); `IntoResponse` for problems and `buttress::degrade::handle_error` |
//! | `cache` | `buttress::degrade::StaleCache` and `CacheLayer`, on moka (enables `degrade`) |
//! | `watch` | `buttress::policy::Policy::watch_file`, on notify (enables `policy`) |
//! | `full` | all of the above |
//!
//! ```
//! # #[cfg(feature = "breaker")] {
//! use buttress::breaker::CircuitBreaker;
//! let breaker = CircuitBreaker::builder("llm").build().expect("valid config");
//! assert!(breaker.try_acquire().is_ok());
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

/// The pieces every primitive shares (`buttress-core`): the clock,
/// outcome classification, rejection handling, names.
pub use buttress_core as common;

#[cfg(feature = "http")]
pub use buttress_core::HttpStatus;
pub use buttress_core::{BoxError, OnReject, RejectWithError, Rejection, RejectionKind};

#[cfg(feature = "breaker")]
pub use buttress_breaker as breaker;

#[cfg(feature = "retry")]
pub use buttress_retry as retry;

#[cfg(feature = "limit")]
pub use buttress_limit as limit;

#[cfg(feature = "journal")]
pub use buttress_fs as fs;
#[cfg(feature = "journal")]
pub use buttress_journal as journal;

#[cfg(feature = "checkpoint")]
pub use buttress_checkpoint as checkpoint;

#[cfg(feature = "pressure")]
pub use buttress_pressure as pressure;

#[cfg(feature = "executor")]
pub use buttress_executor as executor;

#[cfg(feature = "health")]
pub use buttress_health as health;

#[cfg(feature = "degrade")]
pub use buttress_degrade as degrade;

#[cfg(feature = "policy")]
pub use buttress_policy as policy;

#[cfg(feature = "admin")]
pub use buttress_admin as admin;

// The README's examples are compiled as doctests (they need every
// primitive, `http` and `axum`, which `cargo test --workspace` enables).
#[cfg(all(
    doctest,
    feature = "breaker",
    feature = "retry",
    feature = "limit",
    feature = "journal",
    feature = "pressure",
    feature = "executor",
    feature = "health",
    feature = "degrade",
    feature = "cache",
    feature = "policy",
    feature = "axum",
    feature = "http"
))]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
