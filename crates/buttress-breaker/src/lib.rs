//! A circuit breaker for async Rust services, as a tower layer and as a
//! plain API.
//!
//! A breaker watches the outcomes of calls to one dependency. When the
//! dependency is failing it **opens** and refuses calls at once, so that
//! callers fail fast instead of piling onto a sick service; after an open
//! period it goes **half-open** and lets exactly a fixed number of probe
//! calls through; their outcomes **close** it again or reopen it.
//!
//! * Trip rules, combinable: failures in a row; the failure rate over the
//!   last N calls or the last T seconds (once a minimum number of calls is
//!   seen); the rate of slow calls.
//! * Open periods that are fixed, grow with each reopening (capped and
//!   jittered), or are set by the upstream's own `Retry-After`.
//! * Exactly N probes in half-open; a probe that is dropped gives its permit
//!   back, and an optional maximum time in half-open, so a breaker never
//!   sticks there.
//! * Generations: an outcome of a call admitted before a change of state is
//!   dropped, never counted in the new state.
//! * By hand: force open, disable (admit all but keep counting), reset.
//! * Lock-free on the closed path: admitting and recording a call costs a
//!   few atomic operations, no lock and no allocation.
//! * Metrics `buttress_breaker_*`, `tracing` at every transition, listener
//!   callbacks, snapshots and a [`Registry`] for health endpoints.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use buttress_breaker::{BreakerConfig, CircuitBreaker, State};
//! use buttress_core::ManualClock;
//!
//! let clock = ManualClock::new();
//! let breaker = CircuitBreaker::builder("llm")
//!     .config(BreakerConfig::llm()) // 3 failures in a row, open 120 s, 1 probe
//!     .clock(clock.clone())
//!     .build()?;
//!
//! for _ in 0..3 {
//!     breaker.try_acquire()?.failure();
//! }
//! assert_eq!(breaker.state(), State::Open);
//! let rejected = breaker.try_acquire().unwrap_err();
//! assert_eq!(rejected.retry_after(), Some(Duration::from_secs(120)));
//!
//! clock.advance(Duration::from_secs(120));
//! let probe = breaker.try_acquire()?; // the single probe
//! assert!(breaker.try_acquire().is_err()); // everyone else waits
//! probe.success();
//! assert_eq!(breaker.state(), State::Closed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With tower, [`CircuitBreaker::layer`] gives a [`CircuitBreakerLayer`];
//! refused calls fail with [`error::Rejected`] inside tower's `BoxError`, or,
//! under the `http` feature, become a ready `503` with `Retry-After`.
//!
//! # Features
//!
//! * `http`: [`HttpStatus`] and [`CircuitBreakerLayer::http`].
//! * `serde`: load [`BreakerConfig`] from a file; serialize [`Snapshot`]s.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("../guide.md")]
pub mod guide {}
mod breaker;
mod config;
pub mod error;
mod event;
pub mod future;
mod layer;
mod machine;
mod metrics;
#[cfg(feature = "serde")]
mod off;
mod registry;
mod service;
mod snapshot;
mod state;
mod window;

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod machine_tests;

pub use breaker::{Builder, CircuitBreaker, Permit};
#[cfg(feature = "http")]
pub use buttress_core::HttpStatus;
pub use buttress_core::{OnReject, RejectWithError, Rejection, RejectionKind};
pub use config::{BreakerConfig, ConfigError, OpenDuration, Window};
pub use event::BreakerEvent;
pub use layer::CircuitBreakerLayer;
pub use registry::Registry;
pub use service::CircuitBreakerService;
pub use snapshot::Snapshot;
pub use state::{Reason, State};

pub use buttress_core::{Classification, Classify, Outcome};

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
