//! Degraded answers instead of errors.
//!
//! * [`Fallback`] and [`FallbackLayer`]: when a call fails (an error, a
//!   timeout, an open breaker, a spent rate limit, a shed, a full queue, or
//!   whatever a [`Classify`](buttress_core::Classify) calls a failure),
//!   answer with a [`backup`] instead: a value, a function of the request
//!   and the failure, or another service. The answer is marked
//!   [`Degraded`]: a response extension and an `x-degraded: <reason>`
//!   header on HTTP, [`Served::degraded`] in the plain API, and
//!   [`Degraded::mark_json`] for a JSON body. A backup that fails too
//!   returns the original error. Metrics: `buttress_fallback_total{name,reason}`
//!   and `buttress_fallback_failed_total{name,reason}`.
//! * `StaleCache` and `CacheLayer` (feature `cache`): a TTL cache on moka
//!   that serves a stale entry, marked degraded, while the upstream fails
//!   (RFC 5861's `stale-if-error`), makes one upstream call for many
//!   identical requests, never caches an error, and holds a bound in
//!   entries or bytes.
//! * [`reason_of`] and [`refusal_in`]: why a call failed, read from its
//!   error. tower's and tokio's timeout errors are recognised as timeouts
//!   beside every buttress refusal, so a timeout is one line
//!   (`ServiceBuilder::timeout`) and reads as a timeout in the fallback,
//!   the cache, the metrics and the HTTP mapping.
//! * [`Problem`], [`ProblemLayer`] and [`problem_stack`]: every error,
//!   refusal and panic of an HTTP service as RFC 9457
//!   `application/problem+json` (`503`, `429`, `504`, `422` with field
//!   errors, a bare `500`), with the request id (tower-http's
//!   `x-request-id` layers; made when absent) in the body and the header.
//!   Under feature `axum`, `IntoResponse` for [`Problem`] and [`Invalid`],
//!   and `handle_error` for `HandleErrorLayer`.
//!
//! The [`guide`] has the runnable example (an LLM call with a 30 s
//! budget, retries, a breaker, a stale cache and a canned answer), the
//! order of the layers, the tables of reasons and statuses, and the
//! benchmarks.
//!
//! ```
//! use std::time::Duration;
//! use buttress_degrade::{Fallback, FallbackLayer, Reason, Served, backup};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! // The LLM hangs; after 30 s the timeout gives up and the canned answer is served.
//! let llm = service_fn(|_prompt: String| std::future::pending::<Result<Served<String>, buttress_core::BoxError>>());
//! let svc = ServiceBuilder::new()
//!     .layer(FallbackLayer::new(Fallback::new("llm")?, backup::value(Served::normal("busy, try later".to_owned()))))
//!     .timeout(Duration::from_secs(30))
//!     .service(llm);
//! let answer = svc.oneshot("hello".to_owned()).await?;
//! assert_eq!(answer.value, "busy, try later");
//! assert_eq!(answer.degraded.unwrap().reason(), Reason::TIMED_OUT);
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(()) }).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("../guide.md")]
pub mod guide {}

#[cfg(feature = "axum")]
mod axum;
pub mod backup;
#[cfg(feature = "cache")]
mod cache;
#[cfg(feature = "cache")]
mod cache_layer;
mod degraded;
mod fallback;
pub mod future;
mod layer;
mod problem;
mod problem_layer;
mod reason;
mod request_id;
mod service;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use axum::handle_error;
pub use backup::Backup;
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use cache::{CacheConfigError, StaleCache, StaleCacheBuilder};
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use cache_layer::{CacheFuture, CacheLayer, CacheService, SharedError};
pub use degraded::{Degraded, Mark, Served, Source, X_DEGRADED};
pub use fallback::{Caught, Fallback};
pub use layer::FallbackLayer;
pub use problem::{FieldError, Invalid, PROBLEM_JSON, Problem};
pub use problem_layer::{ProblemFuture, ProblemLayer, ProblemService, ProblemStack, problem_stack};
pub use reason::{Reason, Reasons, Refused, as_error, reason_of, refusal_in};
pub use request_id::{
    MAX_REQUEST_ID_LEN, X_REQUEST_ID, ensure_request_id, is_usable_request_id, request_id_of,
};
pub use service::FallbackService;
/// tower-http's request id, as the [`ProblemLayer`] leaves it in each
/// request's extensions (`axum::Extension<RequestId>` in a handler).
pub use tower_http::request_id::RequestId;

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
