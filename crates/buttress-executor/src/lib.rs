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
//!   each request, and sheds them when the queue is full. Each request runs
//!   as a task, or in place in its caller's task
//!   ([`in_place`](ExecutorLayer::in_place)).
//!
//! # Tasks or in place
//!
//! The layer runs each request one of two ways, over one executor, one
//! bulkhead and one queue:
//!
//! * **As a task** (the default): the executor owns the request's work.
//!   It runs on a worker of the executor's runtime, goes on if nothing
//!   awaits it any more (until its response future is dropped, which
//!   cancels it), and a shutdown's deadline stops it and waits for it.
//!   This costs a spawn per request.
//! * **In place** (`.in_place()`): the request runs in its caller's task,
//!   holding one of the executor's running slots while it does; no task is
//!   spawned, and a request that finds a slot free takes it without an
//!   allocation, for a fraction of a task's cost. It waits
//!   in the same queue, in the same order, is refused the same way, has
//!   the same timeout, and is counted in the same history and metrics. A
//!   shutdown drains it like a task; at the deadline it takes the slot back
//!   and wakes the request, which answers `ShuttingDown`.
//!
//! Pick in place for a request handler that needs "at most N at once,
//! refuse when the queue is full, higher priority first while waiting";
//! pick tasks for work that must survive its caller, or that the executor
//! itself must stop and account for at shutdown. The [`guide`] has the
//! details and the benchmarks.
//!
//! ```
//! use buttress_executor::{Executor, ExecutorConfig, ExecutorLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! // At most 8 at once; 100 more may wait, interactive requests first.
//! let executor = Executor::new("api", ExecutorConfig::default().max_running(8).max_queued(100))?;
//! let priority = |req: &String| if req.starts_with("chat") { 9 } else { 1 };
//! let handler = service_fn(|req: String| async move { Ok::<_, std::io::Error>(req.len()) });
//! let api = ServiceBuilder::new()
//!     .layer(ExecutorLayer::new(executor.clone(), priority).in_place())
//!     .service(handler);
//! assert_eq!(api.oneshot("chat: hello".to_owned()).await?, 11);
//! assert_eq!(executor.snapshot().counters.ok, 1); // counted like a task
//! # Ok(()) }
//! ```
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
mod in_place;
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
pub use layer::{ExecutorLayer, ExecutorService, mode};

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
