//! What every buttress primitive shares, and nothing more.
//!
//! * [`Clock`]: the only place a buttress crate reads the time. The default,
//!   [`TokioClock`], reads tokio's `Instant`, so tests can pause and advance
//!   time with `#[tokio::test(start_paused = true)]`; [`ManualClock`] is a
//!   clock for synchronous tests whose clones share one time.
//! * [`Classify`]: whether the result of a call is a success, a failure or to
//!   be ignored, and whether it may be retried. The circuit breaker, retry
//!   and adaptive limits all read the same classification, so a service
//!   states its policy once.
//! * [`Random`]: the injectable source of randomness for jitter.
//! * [`Listeners`]: user callbacks for events, isolated so that a panicking
//!   callback cannot break the primitive that calls it.
//! * [`OnReject`] and [`Rejection`]: what every layer does with work it
//!   refuses, in one place: fail with a [`BoxError`] ([`RejectWithError`],
//!   the default) or answer with an HTTP status (`HttpStatus`, feature
//!   `http`).
//! * [`Name`]: the cheap, validated name of one primitive instance, used as
//!   the `name` label of every metric.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use buttress_core::{Classify, Clock, DefaultClassifier, ManualClock, Outcome};
//!
//! let clock = ManualClock::new();
//! let start = clock.now();
//! clock.advance(Duration::from_secs(5));
//! assert_eq!(clock.now() - start, Duration::from_secs(5));
//!
//! let result: Result<u32, std::io::Error> = Ok(7);
//! assert_eq!(DefaultClassifier.classify(&result).outcome, Outcome::Success);
//! ```
//!
//! # Metric names
//!
//! Every buttress metric is named `buttress_<primitive>_<what>`, counters end
//! in `_total`, durations in `_seconds`, and each carries a `name` label with
//! the instance's [`Name`].

#![cfg_attr(docsrs, feature(doc_cfg))]

mod answer;
mod classify;
mod clock;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod human;
mod listener;
mod name;
mod random;
mod reject;
mod setters;
#[doc(hidden)]
pub mod sync;

pub use answer::{Answer, CalledOrAnswered};
pub use classify::{
    Classification, Classify, DefaultClassifier, FnClassifier, Outcome, classify_fn,
};
pub use clock::{Clock, FastClock, ManualClock, SharedClock, Stopwatch, TokioClock, default_clock};
#[cfg(feature = "http")]
pub use http::{
    HttpClassifier, ceil_secs, parse_retry_after, rate_limit_headers, service_unavailable,
};
pub use listener::{Listener, Listeners};
pub use name::{Name, NameError};
pub use random::{FastRandom, FixedRandom, Random, SharedRandom};
#[cfg(feature = "http")]
pub use reject::HttpStatus;
pub use reject::{BoxError, OnReject, RateLimitPolicy, RejectWithError, Rejection, RejectionKind};

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
