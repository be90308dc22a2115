//! Health, readiness, startup and graceful shutdown for async services.
//!
//! * [`Health`]: a registry of named checks of the service's dependencies,
//!   each an async probe with a criticality, a timeout (default 2 s) and
//!   an interval (default 1 s). A flood of health requests runs at most
//!   one probe per check per interval, concurrent callers share the probe
//!   in flight, and a hung dependency never makes the report slower than
//!   its check's timeout. Breakers, pressure gauges and executors join as
//!   checks of their own (features `breaker`, `pressure`, `executor`).
//! * [`aggregate`]: every critical check up is `healthy` (`200`); a
//!   non-critical one down, or any degraded, is `degraded` (`200`); a
//!   critical one down is `unhealthy` (`503`); `starting` and `draining`
//!   (`503`) come from the readiness gate.
//! * [`HealthEndpoints`]: `/health` (the full report, as JSON), `/livez`
//!   (the process is alive; touches no dependency) and `/readyz` (the gate
//!   and the critical checks), as a tower service or an axum router
//!   (feature `axum`).
//! * [`Readiness`]: a gate that is closed while startup work holds it
//!   (a model loading, a cache warming; [`Readiness::startup`] retries it
//!   with a buttress-retry policy and reports its attempts and last error)
//!   and once the service drains. [`ReadinessLayer`] answers `503` with
//!   `Retry-After` while it is closed; open, it costs one atomic load.
//!
//! * [`Shutdown`]: the first SIGTERM or SIGINT closes the gate, lets the
//!   server finish the requests in flight (axum's
//!   `with_graceful_shutdown`), then drains executors and journals, all
//!   within a grace period (default 10 s); a second signal ends it at
//!   once, with a documented exit code.
//!
//! The [`guide`] shows the report's JSON, the status rules, startup work,
//! and the wiring into an axum service.
//!
//! ```
//! use buttress_health::{CheckOptions, Health, HealthEndpoints, ReadinessLayer, check_fn};
//! use http::Request;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let health = Health::new().version(env!("CARGO_PKG_VERSION"));
//! health.register("postgres", check_fn(|| async { Ok::<_, std::io::Error>(()) }), CheckOptions::critical())?;
//!
//! // The work itself waits behind the gate while the model loads.
//! let loading = health.readiness().hold("loading the model");
//! let work = ReadinessLayer::new(health.readiness().clone())
//!     .layer(service_fn(|q: String| async move { Ok::<_, std::io::Error>(q.len()) }));
//! assert!(work.clone().oneshot("refused".into()).await.is_err());
//!
//! let endpoints = HealthEndpoints::new(health.clone());
//! let response = endpoints.clone().oneshot(Request::get("/health").body(()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), 503); // starting
//!
//! drop(loading);
//! let response = endpoints.oneshot(Request::get("/health").body(()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert_eq!(work.oneshot("answered".into()).await.unwrap(), 8);
//! # Ok::<(), buttress_health::HealthError>(()) }).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("../guide.md")]
pub mod guide {}

mod check;
pub mod checks;
mod endpoints;
pub mod error;
mod gate;
mod health;
pub mod layer;
mod options;
mod probe;
mod report;
mod shutdown;
mod sources;
mod startup;
mod status;
mod wait;

pub use check::{Check, CheckFn, IntoObservation, Observation, check_fn};
pub use endpoints::{Body, Endpoint, EndpointService, HealthEndpoints};
pub use error::{HealthError, NotReady};
pub use gate::{GateSnapshot, Hold, HoldSnapshot, Readiness};
pub use health::Health;
pub use layer::{ReadinessLayer, ReadinessService};
pub use options::CheckOptions;
pub use report::{CheckReport, ReadyReport, Report};
pub use shutdown::{Outcome, Shutdown};
pub use status::{CheckStatus, Criticality, GateStatus, Status, aggregate, is_ready};
pub use wait::{Progress, WaitError, WaitOptions, wait_until_healthy};

pub use buttress_core::{
    BoxError, HttpStatus, OnReject, RejectWithError, Rejection, RejectionKind,
};
