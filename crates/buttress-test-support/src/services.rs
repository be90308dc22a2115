//! Tests that need PostgreSQL, Redis or NATS: where to find them, and what to
//! do when they are not there (print why and pass, unless
//! `BUTTRESS_REQUIRE_SERVICES=1`, as in CI, makes it a failure).

use std::fmt::Display;

/// The URL in `var` (`DATABASE_URL`, `REDIS_URL`), or `default`.
pub fn url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// PostgreSQL's URL: `DATABASE_URL`, or the local `test` database.
pub fn database_url() -> String {
    url("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
}

/// Redis's URL: `REDIS_URL`, or the local server.
pub fn redis_url() -> String {
    url("REDIS_URL", "redis://127.0.0.1:6379")
}

/// NATS's URL: `NATS_URL`, or the local server.
pub fn nats_url() -> String {
    url("NATS_URL", "nats://127.0.0.1:4222")
}

/// Whether tests must fail, rather than skip, when a service is missing.
pub fn required() -> bool {
    std::env::var("BUTTRESS_REQUIRE_SERVICES").as_deref() == Ok("1")
}

/// `what` (a service) does not answer at `url`, because of `why`: panics
/// when services are [`required`], otherwise says the test is skipped.
/// `var` names the variable that points at the service.
pub fn unavailable(what: &str, var: &str, url: &str, why: impl Display) {
    assert!(
        !required(),
        "no {what} answers at {url} ({why}), and BUTTRESS_REQUIRE_SERVICES=1"
    );
    eprintln!(
        "skipping: no {what} answers at {url} ({why}); set {var}, or BUTTRESS_REQUIRE_SERVICES=1 to fail"
    );
}
