//! The admin surface of a buttress service.
//!
//! * [`Admin`] follows the primitives a [`Policy`](buttress_policy::Policy)
//!   runs and any others a program registers (breakers, limiters, gauges,
//!   executors, journals, lag gauges, health).
//! * [`Admin::snapshot`] is their [`Status`], as JSON for programs.
//! * [`Admin::router`] serves `/admin` (a live status page, one
//!   self-contained HTML file), `/admin/status`, `/admin/events`
//!   (server-sent events), `/admin/config` (read and replace the policy,
//!   with its history and rollback) and `/admin/breakers/{name}/{action}`
//!   (force open, disable, reset). Only clients on this machine are let in
//!   unless a bearer token is set; the routes have their own rate limit.
//!
//! ```
//! use buttress_admin::Admin;
//! use buttress_policy::{Format, Policy};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let policy = Policy::from_text("[dependencies.llm]\nbreaker = { consecutive_failures = 3 }\n", Format::Toml)?;
//! let admin = Admin::new(policy);
//! let app: axum::Router = axum::Router::new().merge(admin.router());
//! // axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
//! # let _ = app;
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

mod admin;
mod events;
mod guard;
mod routes;
mod status;

pub use admin::Admin;
pub use events::STATUS_EVERY;
pub use status::{
    BreakerStatus, ExecutorStatus, Finished, GaugeStatus, JournalStatus, KindStatus, LagStatus,
    LimiterStatus, PriorityDepth, RecentTask, Status,
};

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
