//! Built-in checks of common dependencies: a TCP connect, and behind
//! features an HTTP GET (`http-check`), PostgreSQL (`postgres`) and Redis
//! (`redis`).
//!
//! Each is a [`Check`](crate::Check) to [`register`](crate::Health::register)
//! or to wait for ([`wait_until_healthy`](crate::wait_until_healthy)); the
//! registry bounds each probe by the check's timeout.

#[cfg(feature = "http-check")]
mod http;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
mod tcp;

/// The status an [`HttpCheck`] may expect.
#[cfg(feature = "http-check")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-check")))]
pub use ::http::StatusCode;
#[cfg(feature = "http-check")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-check")))]
pub use http::{HttpCheck, HttpCheckError, http};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresCheck, postgres};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisCheck, redis};
pub use tcp::{TcpCheck, tcp};
