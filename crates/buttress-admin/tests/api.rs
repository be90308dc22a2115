//! The admin routes: status, access, the policy, breakers by hand.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use buttress_admin::Admin;
use buttress_limit::{Quota, RateLimiter};
use buttress_policy::{Format, Policy};
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

mod support;
use support::POLICY;

fn policy() -> Policy {
    Policy::from_text(POLICY, Format::Toml).unwrap_or_else(|e| panic!("{e}"))
}

fn local(admin: &Admin) -> Router {
    admin
        .router()
        .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))))
}

fn remote(admin: &Admin) -> Router {
    admin
        .router()
        .layer(MockConnectInfo(SocketAddr::from(([203, 0, 113, 9], 40000))))
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let response: Response<Body> = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (
        status,
        headers,
        String::from_utf8(body.to_vec()).expect("utf-8"),
    )
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("a request")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn the_status_lists_every_primitive_the_policy_runs_and_the_ones_registered() {
    let extra =
        RateLimiter::new("search-api", Quota::per_second(5).expect("valid")).expect("valid");
    let admin = Admin::new(policy()).limiter(extra);
    let (status, _, body) = send(&local(&admin), get("/admin/status")).await;
    assert_eq!(status, StatusCode::OK);
    let s = json(&body);
    assert_eq!(s["service"], "knowledge-api");
    assert_eq!(s["policy_version"], 1);
    assert_eq!(s["open_breakers"], 0);
    let names = |key: &str| -> Vec<String> {
        s[key]
            .as_array()
            .expect("a list")
            .iter()
            .map(|x| x["name"].as_str().expect("a name").to_owned())
            .collect()
    };
    assert_eq!(names("breakers"), ["embeddings", "llm", "vector-store"]);
    assert_eq!(
        names("limiters"),
        ["knowledge-api-inbound", "llm", "search-api"]
    );
    assert_eq!(names("gauges"), ["knowledge-api"]);
    assert_eq!(names("executors"), ["llm"]);
    assert_eq!(names("shed"), ["llm"]);
    assert_eq!(s["shed"][0]["limit"], 8);
    assert_eq!(s["shed"][0]["inflight"], 0);
    assert_eq!(s["breakers"][1]["critical"], true);
    assert_eq!(s["breakers"][0]["critical"], false);
    assert_eq!(s["limiters"][1]["remaining"], 10);
    assert_eq!(s["limiters"][1]["per_second"], 10.0);
    assert_eq!(s["limiters"][0]["per_second"], 2.5, "150 a minute");
    assert_eq!(s["gauges"][0]["high"], 100_000_000);
    assert_eq!(s["executors"][0]["max_running"], 4);
}

#[tokio::test]
async fn only_this_machine_is_let_in_without_a_token() {
    let admin = Admin::new(policy());
    let (status, _, body) = send(&remote(&admin), get("/admin/status")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("only clients on this machine"), "{body}");

    let proxied = Request::get("/admin/status")
        .header("x-forwarded-for", "198.51.100.7")
        .body(Body::empty())
        .expect("a request");
    let (status, _, _) = send(&local(&admin), proxied).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a local proxy may forward anyone"
    );

    // Without the peer address the server cannot tell: refused, saying why.
    let (status, _, body) = send(&admin.router(), get("/admin/status")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body.contains("into_make_service_with_connect_info"),
        "{body}"
    );
}

#[tokio::test]
async fn a_token_lets_anyone_in_who_presents_it() {
    let admin = Admin::new(policy()).token("s3cret-token");
    let app = remote(&admin);
    let (status, headers, _) = send(&app, get("/admin/status")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    let wrong = Request::get("/admin/status")
        .header(header::AUTHORIZATION, "Bearer s3cret-tokeN")
        .body(Body::empty())
        .expect("a request");
    assert_eq!(send(&app, wrong).await.0, StatusCode::UNAUTHORIZED);
    let right = Request::get("/admin/status")
        .header(header::AUTHORIZATION, "bearer s3cret-token")
        .body(Body::empty())
        .expect("a request");
    assert_eq!(send(&app, right).await.0, StatusCode::OK);
    let put = Request::put("/admin/config")
        .header(header::AUTHORIZATION, "Bearer s3cret-token")
        .header(header::CONTENT_TYPE, "application/toml")
        .body(Body::from(POLICY.replace("count = 10,", "count = 11,")))
        .expect("a request");
    let (status, _, body) = send(&app, put).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["by"], "admin api (203.0.113.9, with the token)");
    // The page holds no data: it is served, and asks for the token.
    let (status, headers, body) = send(&app, get("/admin")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(body.contains("Open breakers"));
}

#[tokio::test]
async fn the_admin_routes_have_their_own_rate_limit() {
    let admin = Admin::new(policy());
    let app = local(&admin);
    let mut refused = None;
    for i in 0..100 {
        let (status, headers, _) = send(&app, get("/admin/status")).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((i, headers));
            break;
        }
    }
    let (i, headers) = refused.expect("limited within 100 requests");
    assert!(i >= 40, "a burst of 40 is allowed, refused at {i}");
    assert!(headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn the_policy_is_read_in_every_format_and_replaced_whole() {
    let admin = Admin::new(policy());
    let app = local(&admin);
    let (status, headers, toml) = send(&app, get("/admin/config")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/toml");
    assert!(toml.contains("[dependencies.llm.breaker]"), "{toml}");
    let (_, headers, yaml) = send(&app, get("/admin/config?format=yaml")).await;
    assert_eq!(headers[header::CONTENT_TYPE], "application/yaml");
    assert!(yaml.contains("consecutive_failures: 3"), "{yaml}");
    let (status, _, body) = send(&app, get("/admin/config?format=ini")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("use toml, yaml or json"));

    let put = |body: String, media: &str| {
        Request::put("/admin/config")
            .header(header::CONTENT_TYPE, media)
            .body(Body::from(body))
            .expect("a request")
    };
    let changed = POLICY.replace("consecutive_failures = 3", "consecutive_failures = 4");
    let (status, _, body) = send(&app, put(changed, "application/toml")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["version"], 2);
    assert_eq!(json(&body)["by"], "admin api (127.0.0.1)");
    let b = admin.find_breaker("llm").expect("declared");
    assert_eq!(b.config().consecutive_failures, Some(4));

    let bad = POLICY.replace("consecutive_failures = 3", "consecutive_failures = 0");
    let (status, headers, body) = send(&app, put(bad, "application/toml")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let p = json(&body);
    assert_eq!(
        p["errors"][0]["field"],
        "dependencies.llm.breaker.consecutive_failures"
    );
    assert_eq!(p["errors"][0]["message"], "must be at least 1, line 12");
    assert_eq!(b.config().consecutive_failures, Some(4), "nothing applied");

    let (status, _, _) = send(&app, put(POLICY.to_owned(), "text/plain")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = format!("# {}\n{POLICY}", "x".repeat(2 << 20));
    let (status, _, _) = send(&app, put(huge, "application/toml")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn versions_are_listed_and_rolled_back() {
    let admin = Admin::new(policy());
    let app = local(&admin);
    admin
        .policy()
        .expect("a policy")
        .apply_text(
            &POLICY.replace("count = 10,", "count = 20,"),
            Format::Toml,
            "alice",
        )
        .expect("valid");
    let (_, _, body) = send(&app, get("/admin/config/history")).await;
    let h = json(&body);
    assert_eq!(h[0]["by"], "startup");
    assert_eq!(h[1]["by"], "alice");
    assert!(h[1]["at"].as_u64().expect("seconds") > 1_700_000_000);
    let post = |uri: &str| Request::post(uri).body(Body::empty()).expect("a request");
    let (status, _, body) = send(&app, post("/admin/config/rollback/1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["version"], 3);
    assert_eq!(
        json(&body)["by"],
        "admin api (127.0.0.1) (rollback to version 1)"
    );
    let (status, _, _) = send(&app, post("/admin/config/rollback/99")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn breakers_are_forced_open_disabled_and_reset_by_name() {
    let admin = Admin::new(policy());
    let app = local(&admin);
    let post = |uri: &str| Request::post(uri).body(Body::empty()).expect("a request");
    let (status, _, body) = send(&app, post("/admin/breakers/llm/force-open")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["state"], "forced_open");
    let (_, _, body) = send(&app, get("/admin/status")).await;
    assert_eq!(json(&body)["open_breakers"], 1);
    let (_, _, body) = send(&app, post("/admin/breakers/llm/disable")).await;
    assert_eq!(json(&body)["state"], "disabled");
    let (_, _, body) = send(&app, post("/admin/breakers/llm/reset")).await;
    assert_eq!(json(&body)["state"], "closed");
    let (status, _, body) = send(&app, post("/admin/breakers/nope/reset")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("No breaker is named `nope`"));
    let (status, _, _) = send(&app, post("/admin/breakers/llm/explode")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_a_policy_the_config_routes_say_so() {
    let admin = Admin::without_policy();
    let (status, _, body) = send(&local(&admin), get("/admin/config")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("without a policy"));
    let (status, _, body) = send(&local(&admin), get("/admin/status")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["breakers"], Value::Array(vec![]));
}

#[tokio::test]
async fn a_loopback_address_mapped_into_ipv6_is_local() {
    let admin = Admin::new(policy());
    let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().expect("an address");
    let app = admin
        .router()
        .layer(MockConnectInfo(SocketAddr::new(mapped, 40000)));
    assert_eq!(send(&app, get("/admin/status")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_token_with_the_right_bytes_in_the_wrong_order_is_refused() {
    let admin = Admin::new(policy()).token("ab");
    let swapped = Request::get("/admin/status")
        .header(header::AUTHORIZATION, "Bearer ba")
        .body(Body::empty())
        .expect("a request");
    assert_eq!(
        send(&remote(&admin), swapped).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_open_breaker_says_when_it_will_probe() {
    let admin = Admin::new(policy());
    let llm = admin.find_breaker("llm").expect("declared");
    for _ in 0..3 {
        llm.try_acquire().expect("closed").failure();
    }
    let (_, _, body) = send(&local(&admin), get("/admin/status")).await;
    let s = json(&body);
    let llm = s["breakers"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|b| b["name"] == "llm")
        .expect("listed");
    assert_eq!(llm["state"], "open");
    let ms = llm["half_open_in_ms"].as_u64().expect("a time");
    assert!(
        (100_000..=120_000).contains(&ms),
        "{ms} ms of a 120 s open period"
    );
    assert_eq!(s["open_breakers"], 1);
}
