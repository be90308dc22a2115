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
//!
//! and the shared pieces of `buttress-core` under [`core`]. The features
//! `http` and `serde` switch on HTTP support and configuration loading in
//! every enabled primitive.
//!
//! ```
//! # #[cfg(feature = "breaker")] {
//! use buttress::breaker::CircuitBreaker;
//! let breaker = CircuitBreaker::builder("llm").build().expect("valid config");
//! assert!(breaker.try_acquire().is_ok());
//! # }
//! ```

pub use buttress_core as core;

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
