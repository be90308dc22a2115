//! Backpressure for async services.
//!
//! * [`Gauge`]: a level with a high and a low watermark and hysteresis
//!   between them: paused at `high`, flowing again only at `low`, never
//!   flapping in between. Check it (`is_paused`, one load), wait for it
//!   (`wait_flowing().await`), or get an [`Overloaded`] error. Feed it by
//!   hand (`add`, `sub`, `set`, a guard that subtracts on drop), from a
//!   value read on an interval ([`PolledGauge`]), or combine several
//!   ([`AnyGauge`]). A second, lower pair of watermarks pauses low-priority
//!   work first.
//! * [`LagGauge`]: pending items and the age of the oldest, per kind, for
//!   outboxes.
//! * [`ShedLayer`]: sheds requests while a gauge is paused, by priority,
//!   rejecting at once or waiting up to a limit.
//! * [`AdaptiveLimitLayer`]: an adaptive concurrency limit ([`Aimd`],
//!   [`Gradient2`], [`Vegas`]), which tower lacks.
//!
//! # Configuration
//!
//! Every setting is data, checked into a typed error before it is used:
//! [`Watermarks`] (valid by construction), [`GaugeConfig`] (a gauge's
//! watermarks, low-priority band and retry hint), and the algorithms'
//! parameters ([`AimdConfig`], [`VegasConfig`], [`Gradient2Config`], or
//! [`AdaptiveConfig`] to choose the algorithm in a file), each built with
//! `Default` or a constructor and chainable setters. Under the `serde`
//! feature each loads from a configuration file, checked as it loads, with
//! no unknown keys, durations such as `"2s"` and levels as numbers or sizes
//! (`"100MB"`):
//!
//! ```
//! # #[cfg(feature = "serde")] {
//! use buttress_pressure::{AdaptiveConfig, AdaptiveLimiter, Gauge, GaugeConfig};
//!
//! #[derive(serde::Deserialize)]
//! struct Policy {
//!     backlog: GaugeConfig,
//!     llm: AdaptiveConfig,
//! }
//!
//! let policy: Policy = serde_json::from_str(r#"{
//!     "backlog": { "watermarks": { "high": "100MB", "low": "50MB" }, "retry_after": "2s" },
//!     "llm": { "algorithm": "vegas", "initial": 20, "min": 2, "max": 200 }
//! }"#).unwrap();
//! let backlog = Gauge::builder("backlog", policy.backlog).build().unwrap();
//! let llm = AdaptiveLimiter::new("llm", policy.llm.build().unwrap()).unwrap();
//! # let _ = (backlog, llm);
//! # }
//! ```
//!
//! See the [`guide`] for choosing watermarks and algorithms, and the
//! simulation (`cargo run --release --example pressure_sim`).

#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("../guide.md")]
pub mod guide {}
mod adaptive;
#[cfg(not(loom))]
mod block;
mod combined;
mod config;
pub mod error;
mod gauge;
mod lag;
mod metrics;
mod polled;
mod shed;
mod waiters;
mod watermarks;

#[cfg(all(test, loom))]
mod loom_tests;

pub use adaptive::{
    AdaptiveConfig, AdaptiveLimitLayer, AdaptiveLimitService, AdaptiveLimiter, Aimd, AimdConfig,
    Algorithm, Gradient2, Gradient2Config, LimitPermit, Sample, Vegas, VegasConfig,
};
#[cfg(feature = "http")]
pub use buttress_core::HttpStatus;
pub use buttress_core::{OnReject, RejectWithError, Rejection, RejectionKind};
pub use combined::{AnyGauge, Pressure};
pub use config::GaugeConfig;
pub use error::{AdaptiveConfigError, BoxError, GaugeError, Overloaded, WatermarkError};
pub use gauge::{Gauge, GaugeBuilder, LevelGuard, WaitFlowing};
pub use lag::{KindLag, LagGauge, MAX_KINDS, Pending};
pub use polled::PolledGauge;
pub use shed::{AllNormal, Immediate, PriorityOf, ShedLayer, ShedService, WaitUpTo};
pub use watermarks::{MAX_LEVEL, Watermarks};

/// The response futures of the layers.
pub mod future {
    pub use crate::adaptive::future::ResponseFuture as AdaptiveLimitFuture;
    pub use crate::shed::future::ResponseFuture as ShedFuture;
}

/// How urgent a piece of work is: low-priority work is shed first, at the
/// gauge's lower watermarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Priority {
    /// Ordinary work.
    #[default]
    Normal,
    /// Work that can wait: batch jobs, prefetches, retries.
    Low,
}

impl Priority {
    /// `"normal"` or `"low"`: the `priority` label of the metrics.
    ///
    /// ```
    /// use buttress_pressure::Priority;
    /// assert_eq!(Priority::Low.as_str(), "low");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
