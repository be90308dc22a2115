//! Who may use the admin routes, and how often.
//!
//! Without a token, only clients on this machine: a loopback peer address
//! with no proxy header (a request a local reverse proxy forwards carries
//! one, and may come from anywhere). With a token, anyone who presents it
//! as `Authorization: Bearer <token>`. The page itself holds no data and
//! is served to anyone a token could let in; it asks for the token.

use std::net::{IpAddr, SocketAddr};

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use buttress_degrade::Problem;
use buttress_limit::{Quota, RateLimiter};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::admin::Admin;

/// The admin routes' own limit: generous for a person and a page, small
/// enough that a script hammering them cannot take the service down.
pub(crate) fn limiter() -> RateLimiter {
    let quota = Quota::per_second(20)
        .and_then(|q| q.with_burst(40))
        .expect("a valid constant quota");
    RateLimiter::new("admin", quota).expect("a valid constant name")
}

/// Lets a request through, or answers `401`, `403` or `429`.
/// Who a request came from, for the policy's history: the peer's
/// address, and whether it presented the token.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) String);

pub(crate) async fn guard(
    State(admin): State<Admin>,
    mut request: Request,
    next: Next,
) -> Response {
    let page = request.uri().path() == crate::routes::PAGE;
    let allowed = match admin.inner.token.as_deref() {
        Some(token) => page || bearer(request.headers()).is_some_and(|t| same(t, token)),
        None => is_local(&request),
    };
    if !allowed {
        return refusal(&admin, &request);
    }
    if let Err(limited) = admin.inner.limiter.check() {
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many admin requests; try again shortly.",
        );
        if let Some(after) = limited.retry_after() {
            p = p.with_retry_after(after);
        }
        return p.into_response();
    }
    let from = peer(&request).map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
    let caller = match admin.inner.token {
        Some(_) => format!("{from}, with the token"),
        None => from,
    };
    request.extensions_mut().insert(Caller(caller));
    next.run(request).await
}

fn refusal(admin: &Admin, request: &Request) -> Response {
    if admin.inner.token.is_some() {
        let mut response = Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "The admin routes need `Authorization: Bearer <token>`.",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let detail = if peer(request).is_none() {
        "The admin routes answer only clients on this machine, and this server does not say who the client is (serve it with `into_make_service_with_connect_info`), or set a token."
    } else {
        "The admin routes answer only clients on this machine; set a token to allow others."
    };
    Problem::new(StatusCode::FORBIDDEN, "forbidden", detail).into_response()
}

/// The peer's address, as `into_make_service_with_connect_info` (or
/// axum's `MockConnectInfo`, in tests) records it.
fn peer(request: &Request) -> Option<IpAddr> {
    let extensions = request.extensions();
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| {
            extensions
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
}

fn is_local(request: &Request) -> bool {
    let proxied = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| request.headers().contains_key(*h));
    !proxied && peer(request).is_some_and(|ip| ip.is_loopback() || is_mapped_loopback(ip))
}

fn is_mapped_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        IpAddr::V4(_) => false,
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares in time that depends on the length only, not on where the
/// first difference is.
fn same(given: &str, token: &str) -> bool {
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
