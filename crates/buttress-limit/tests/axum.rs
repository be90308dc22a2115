//! Per-client limits in an axum router: the client's key from the peer
//! address, or from `X-Forwarded-For` only behind a trusted proxy; 429 with
//! `Retry-After` and RateLimit headers.
#![cfg(feature = "http")]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use buttress_limit::{
    KeyedRateLimitLayer, KeyedRateLimiter, ProxyHeader, Quota, allow_networks, client_ip,
};
use http::{Request, StatusCode};
use tower::ServiceExt;

fn app() -> Router {
    let limiter: KeyedRateLimiter<IpAddr> = KeyedRateLimiter::builder(
        "api",
        Quota::per_minute(60)
            .expect("valid")
            .with_burst(2)
            .expect("valid"),
    )
    .allow(allow_networks(&["127.0.0.0/8"]).expect("valid"))
    .build()
    .expect("valid");
    let proxies = allow_networks(&["10.0.0.0/8"]).expect("valid");
    let key = move |req: &Request<Body>| {
        // With a real server this is axum's `ConnectInfo<SocketAddr>`.
        let peer = req
            .extensions()
            .get::<SocketAddr>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), SocketAddr::ip);
        client_ip(peer, req.headers(), ProxyHeader::XForwardedFor, &proxies)
    };
    Router::new()
        .route("/", get(|| async { "hello" }))
        .layer(KeyedRateLimitLayer::new(limiter, key).http())
}

fn request(peer: &str, forwarded_for: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().uri("/");
    if let Some(f) = forwarded_for {
        b = b.header("x-forwarded-for", f);
    }
    let mut req = b.body(Body::empty()).expect("request");
    let addr: SocketAddr = format!("{peer}:4000").parse().expect("addr");
    req.extensions_mut().insert(addr);
    req
}

#[tokio::test(start_paused = true)]
async fn each_client_gets_its_own_limit_and_a_429() {
    let app = app();
    for _ in 0..2 {
        let r = app
            .clone()
            .oneshot(request("198.51.100.1", None))
            .await
            .expect("response");
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = app
        .clone()
        .oneshot(request("198.51.100.1", None))
        .await
        .expect("response");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.headers()["ratelimit-policy"], "\"api\";q=2;w=2");
    assert_eq!(r.headers()["ratelimit"], "\"api\";r=0;t=1");
    // Another client is not affected; localhost is never limited.
    let r = app
        .clone()
        .oneshot(request("198.51.100.2", None))
        .await
        .expect("response");
    assert_eq!(r.status(), StatusCode::OK);
    for _ in 0..5 {
        let r = app
            .clone()
            .oneshot(request("127.0.0.1", None))
            .await
            .expect("response");
        assert_eq!(r.status(), StatusCode::OK);
    }
}

#[tokio::test(start_paused = true)]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let app = app();
    // A client spoofing X-Forwarded-For directly is still keyed by its peer.
    for spoof in ["1.1.1.1", "2.2.2.2", "127.0.0.1"] {
        let _ = app
            .clone()
            .oneshot(request("198.51.100.9", Some(spoof)))
            .await;
    }
    let r = app
        .clone()
        .oneshot(request("198.51.100.9", Some("3.3.3.3")))
        .await
        .expect("response");
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "spoofing does not buy new keys"
    );
    // Behind the proxy, each forwarded client has its own key.
    for client in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..2 {
            let r = app
                .clone()
                .oneshot(request("10.0.0.5", Some(client)))
                .await
                .expect("response");
            assert_eq!(r.status(), StatusCode::OK, "{client}");
        }
    }
    let r = app
        .clone()
        .oneshot(request("10.0.0.5", Some("203.0.113.1")))
        .await
        .expect("response");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(start_paused = true)]
async fn admitted_responses_can_carry_the_quota_left() {
    let limiter: KeyedRateLimiter<IpAddr> = KeyedRateLimiter::builder(
        "api",
        Quota::per_minute(60)
            .expect("valid")
            .with_burst(2)
            .expect("valid"),
    )
    .build()
    .expect("valid");
    let key = |req: &Request<Body>| {
        req.extensions()
            .get::<SocketAddr>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), SocketAddr::ip)
    };
    let app = Router::new().route("/", get(|| async { "hello" })).layer(
        KeyedRateLimitLayer::new(limiter, key)
            .http()
            .success_headers(),
    );
    let r = app
        .clone()
        .oneshot(request("198.51.100.1", None))
        .await
        .expect("response");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["ratelimit"], "\"api\";r=1;t=1");
    assert_eq!(r.headers()["ratelimit-policy"], "\"api\";q=2;w=2");
    let r = app
        .clone()
        .oneshot(request("198.51.100.1", None))
        .await
        .expect("response");
    assert_eq!(r.headers()["ratelimit"], "\"api\";r=0;t=2");
}
