//! A bounded priority executor.
//!
//! * **Priority**: higher runs first; equal priorities run first in,
//!   first out (each task has a sequence number, so equal priorities never
//!   compare equal and never panic a heap); optional **aging**: a task that
//!   has waited `aging` runs before anything that arrived after it, so
//!   low-priority work cannot starve.
//! * **Bounded**: a maximum of queued tasks, in all and per priority
//!   (`submit` fails with [`QueueFull`], naming the priority and the depth;
//!   `submit_wait` waits for space), and a maximum of running tasks (a
//!   bulkhead).
//! * **Contained**: a per-task timeout cancels the task and reports it; a
//!   panicking task is reported and the executor carries on.
//! * **Handles**: await a [`TaskHandle`] for the output, or cancel it; a
//!   queued task leaves the queue at once.
//! * **History**: the last N finished tasks with status and timings, and
//!   counters ([`Snapshot`]).
//! * **Shutdown**: stop accepting, drain until a deadline, then cancel the
//!   rest and report it; a second call forces it.
//! * **Tower**: [`ExecutorLayer`] queues requests by a priority read from
//!   each request, and sheds them when the queue is full.
//!
//! # Configuration
//!
//! [`ExecutorConfig`] holds the bounds and timeouts: `Default` and
//! chainable setters, checked into a [`ConfigError`] (making an executor
//! fails with [`BuildError`], never panics). Under the `serde` feature it
//! loads from a configuration file, checked as it loads, with durations
//! such as `"30s"` and no unknown keys:
//!
//! ```
//! # #[cfg(feature = "serde")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use buttress_executor::{Executor, ExecutorConfig};
//!
//! let config: ExecutorConfig = serde_json::from_str(
//!     r#"{ "max_running": 8, "max_queued": 1000, "timeout": "30s", "aging": "10s" }"#,
//! ).unwrap();
//! let executor = Executor::new("chat", config).unwrap();
//! # let _ = executor;
//! # }
//! # #[cfg(not(feature = "serde"))] fn main() {}
//! ```
//!
//! See the [`guide`].

#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("../guide.md")]
pub mod guide {}
mod config;
mod core;
pub mod error;
mod executor;
pub mod future;
mod history;
mod job;
mod layer;
mod metrics;
mod queue;
mod task;
mod worker;

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(feature = "http")]
pub use buttress_core::HttpStatus;
pub use buttress_core::{BoxError, OnReject, RejectWithError, Rejection, RejectionKind};
pub use config::ExecutorConfig;
pub use core::Snapshot;
pub use error::{BuildError, ConfigError, ExecutorError, QueueFull, SubmitError, TaskError};
pub use executor::{Executor, ShutdownReport, TaskHandle};
pub use history::{Counters, Status, TaskRecord};
pub use layer::{ExecutorLayer, ExecutorService};

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
