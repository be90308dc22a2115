//! One policy document for a service's whole resilience stack, changed
//! live.
//!
//! * [`PolicyDocument`]: the service's parts (a per-client-IP limit with
//!   exempt networks, backpressure watermarks, a checkpoint interval) and,
//!   per dependency, its timeout, retries with a budget, rate limit,
//!   shed, bulkhead, breaker, attempt timeout, fallback and stale cache. TOML,
//!   YAML and JSON, with human durations and sizes; every problem reported
//!   with its path and line (`dependencies.llm.breaker.failure_rate_threshold:
//!   must be in (0, 1], got 1.5, line 14`); unknown keys refused.
//! * [`Policy`]: the running primitives the document declares.
//!   [`Dependency::service`] puts one dependency's stack in front of a
//!   client, always in the order of [`stack`]'s table.
//! * Live changes: [`Policy::apply`] (and `apply_text`, `apply_file`,
//!   [`Policy::watch_file`], [`Policy::rollback`]) switches each running
//!   primitive in place, keeping its state (an open breaker stays open, a
//!   limiter keeps its debts, queued calls stay queued); a document with
//!   any problem, or a change the running primitives cannot take, is
//!   refused whole. The last versions are kept with when and by whom.
//!
//! The [`guide`] has a whole document, the table of what changes live, and
//! why the stack is in its order.
//!
//! ```
//! use std::time::Duration;
//! use buttress_breaker::State;
//! use buttress_policy::{Format, Policy};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let policy = Policy::from_text(r#"
//! [dependencies.llm]
//! timeout = "30s"
//! breaker = { consecutive_failures = 3, failure_rate_threshold = "off", open = { kind = "fixed", duration = "120s" } }
//! "#, Format::Toml)?;
//! let llm = policy.dependency("llm").expect("declared");
//! let breaker = llm.breaker().expect("declared");
//! for _ in 0..3 {
//!     breaker.try_acquire()?.failure();
//! }
//! assert_eq!(breaker.state(), State::Open);
//!
//! // A shorter open period, live: the breaker stays open meanwhile.
//! policy.apply_text(r#"
//! [dependencies.llm]
//! timeout = "30s"
//! breaker = { consecutive_failures = 3, failure_rate_threshold = "off", open = { kind = "fixed", duration = "30s" } }
//! "#, Format::Toml, "on call")?;
//! assert_eq!(breaker.state(), State::Open);
//! assert_eq!(policy.current().version, 2);
//!
//! // A typo is refused whole, with its path and line.
//! let e = policy.apply_text("[dependencies.llm]\ntimeout = \"30s\"\nbreaker = { consecutive_failures = 0 }\n", Format::Toml, "on call").unwrap_err();
//! assert_eq!(e.problems()[0].to_string(), "dependencies.llm.breaker.consecutive_failures: must be at least 1, line 3");
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(()) }).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("../guide.md")]
pub mod guide {}

mod dependency;
mod document;
mod emit;
mod error;
mod events;
mod file;
mod format;
mod parse;
mod policy;
pub mod stack;
mod timeout;
mod validate;
#[cfg(feature = "watch")]
mod watch;

pub use dependency::Dependency;
pub use document::{
    CachePolicy, CheckpointPolicy, DependencyPolicy, FallbackPolicy, InboundPolicy, PolicyDocument,
    ServicePolicy,
};
pub use error::{DocumentError, Path, Problem, Segment};
pub use events::{EVENTS_BUFFERED, PolicyEvent};
pub use file::FileError;
pub use format::Format;
pub use policy::{Applied, DEFAULT_VERSIONS_KEPT, Policy, RollbackError};
pub use stack::{StackError, Stacked};
pub use timeout::{LiveTimeout, Timeout, TimeoutFuture, TimeoutLayer};
#[cfg(feature = "watch")]
pub use watch::{FileWatch, WatchError, WatchStatus};

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
