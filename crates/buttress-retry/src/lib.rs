//! Retry that heals transient faults without multiplying an outage.
//!
//! * **Backoff** ([`Backoff`]): constant, linear, exponential, and the three
//!   jitters of AWS's "Exponential Backoff and Jitter" (full, equal,
//!   decorrelated). Every delay is capped, jitter included; the random
//!   source is injectable.
//! * **Limits**: a maximum number of attempts; a total deadline (no sleep is
//!   started that would end past it, and each attempt is cut to what is
//!   left); an optional per-attempt timeout.
//! * **What is retried**: the shared classification of `buttress-core` —
//!   by default every `Err`; for HTTP, 5xx and 429 of idempotent requests.
//!   `Retry-After` (and a `buttress-breaker` rejection's `retry_after`,
//!   under the `breaker` feature) sets a floor on the wait, clamped to the
//!   maximum delay; one past the deadline ends the retries at once. A
//!   request that cannot be cloned is sent once, and that is counted and
//!   logged.
//! * **Budgets** shared by every clone that holds them: [`RatioBudget`]
//!   (Finagle and Envoy: a share of requests plus a floor per second, over
//!   a sliding window, exact for fractional ratios) and [`Throttle`] (gRPC).
//!   When the budget says no, the caller gets the original error.
//! * **APIs**: [`retry`] and [`retry_blocking`]; [`RetryLayer`] for tower;
//!   under the `tower` feature, `TowerPolicy` for tower's own `Retry`.
//! * **Observability**: `tracing` per retry with the delay and why;
//!   metrics `buttress_retry_attempts` (histogram),
//!   `buttress_retry_retries_total{name,reason}`,
//!   `buttress_retry_budget_exhausted_total{name}`,
//!   `buttress_retry_gave_up_total{name}`,
//!   `buttress_retry_not_cloneable_total{name}`; listeners.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use buttress_retry::{retry, Backoff, RetryPolicy};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let policy = RetryPolicy::builder("db")
//!     .max_attempts(5)
//!     .backoff(Backoff::Exponential { base: Duration::from_secs(2), factor: 2.0, max: Duration::from_secs(30) })
//!     .build()?;
//! let mut failures_left = 2;
//! let value = retry(&policy, || {
//!     let fail = failures_left > 0;
//!     failures_left -= 1;
//!     async move { if fail { Err(std::io::Error::other("connection refused")) } else { Ok(42) } }
//! })
//! .await?;
//! assert_eq!(value, 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("../guide.md")]
pub mod guide {}
mod attempts;
mod backoff;
mod budget;
mod classify;
mod config;
pub mod error;
mod event;
pub mod future;
mod layer;
mod metrics;
mod policy;
mod request;
mod retry;
mod service;
mod times;
#[cfg(feature = "tower")]
mod tower_policy;

#[cfg(all(test, loom))]
mod loom_tests;

pub use attempts::{RetryReason, Stop};
pub use backoff::Backoff;
pub use budget::{BudgetError, RatioBudget, RetryBudget, Throttle};
pub use classify::RetryClassifier;
pub use config::{BudgetConfig, ConfigError, RetryConfig};
pub use event::RetryEvent;
pub use layer::RetryLayer;
pub use policy::{Builder, RetryPolicy};
#[cfg(feature = "http")]
pub use request::IdempotentHttp;
pub use request::{CloneAll, CloneRequest, CloneWith, clone_with};
pub use retry::{LastError, RetryError, retry, retry_blocking, retry_blocking_with, retry_with};
pub use service::RetryService;
#[cfg(feature = "tower")]
pub use tower_policy::TowerPolicy;

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
