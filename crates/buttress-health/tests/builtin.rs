//! The built-in checks against an unreachable port and a server that
//! accepts and never answers: down with the error, or cut at the timeout,
//! and the report still answers. (PostgreSQL and Redis are in
//! `services.rs`, which CI runs with every feature.) Paused time: when every task waits on a socket, tokio
//! moves the clock to the next timer, so a timeout costs no real time.

mod support;

use std::time::Duration;

use buttress_health::{Status, checks};
use support::{closed_port, one, silent};

#[tokio::test]
async fn tcp_is_up_when_it_connects_and_down_with_the_error_when_refused() {
    let (_listener, address) = silent();
    let (status, _, _) = one("db", checks::tcp(address), Duration::from_secs(2)).await;
    assert_eq!(status, Status::Healthy);
    let address = format!("127.0.0.1:{}", closed_port());
    let (status, message, _) =
        one("db", checks::tcp(address.clone()), Duration::from_secs(2)).await;
    assert_eq!(status, Status::Unhealthy);
    let message = message.expect("an error");
    assert!(
        message.starts_with(&format!("connect to {address}: ")),
        "{message}"
    );
    assert!(message.contains("refused"), "{message}");
}

#[cfg(feature = "http-check")]
#[tokio::test(start_paused = true)]
async fn http_to_a_server_that_never_answers_is_cut_at_its_timeout() {
    let (_listener, address) = silent();
    let check = checks::http(&format!("http://{address}/health")).expect("valid");
    let started = tokio::time::Instant::now();
    let (status, message, took) = one("llm", check, Duration::from_secs(2)).await;
    assert_eq!(status, Status::Unhealthy);
    assert_eq!(message.as_deref(), Some("no answer within 2s"));
    assert_eq!(took, Duration::from_secs(2));
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[cfg(feature = "http-check")]
#[tokio::test]
async fn http_to_an_unreachable_port_is_down_with_the_error() {
    let url = format!("http://127.0.0.1:{}/health", closed_port());
    let (_, message, _) = one(
        "llm",
        checks::http(&url).expect("valid"),
        Duration::from_secs(2),
    )
    .await;
    let message = message.expect("an error");
    assert!(message.starts_with(&format!("GET {url}: ")), "{message}");
}

#[cfg(feature = "http-check")]
#[tokio::test]
async fn http_judges_the_status_and_the_body() {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/ok",
            get(|| async { r#"{"status":"ok","model":{"loaded":true}}"# }),
        )
        .route(
            "/loading",
            get(|| async { (http::StatusCode::SERVICE_UNAVAILABLE, "loading") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let ok = format!("{base}/ok");
    let cases = [
        (checks::http(&ok).expect("valid"), None),
        (
            checks::http(&ok)
                .expect("valid")
                .expect_json("status", "ok")
                .expect_json("model.loaded", "true"),
            None,
        ),
        (
            checks::http(&ok)
                .expect("valid")
                .body_contains("\"loaded\""),
            None,
        ),
        // Every body contains the empty text.
        (checks::http(&ok).expect("valid").body_contains(""), None),
        (
            checks::http(&ok)
                .expect("valid")
                .expect_json("status", "healthy"),
            Some(format!("GET {ok}: status is \"ok\", expected \"healthy\"")),
        ),
        (
            checks::http(&ok)
                .expect("valid")
                .expect_json("version", "1"),
            Some(format!("GET {ok}: the body has no field \"version\"")),
        ),
        (
            checks::http(&ok)
                .expect("valid")
                .expect_status(http::StatusCode::NO_CONTENT),
            Some(format!("GET {ok}: status 200 OK, expected 204 No Content")),
        ),
        (
            checks::http(&format!("{base}/loading")).expect("valid"),
            Some(format!(
                "GET {base}/loading: status 503 Service Unavailable, expected 2xx"
            )),
        ),
        (
            checks::http(&format!("{base}/loading"))
                .expect("valid")
                .expect_status(http::StatusCode::SERVICE_UNAVAILABLE)
                .expect_json("status", "ok"),
            Some(format!(
                "GET {base}/loading: the body is not JSON: expected value at line 1 column 1"
            )),
        ),
    ];
    for (check, error) in cases {
        let (status, message, _) = one("svc", check, Duration::from_secs(2)).await;
        assert_eq!(message, error);
        assert_eq!(status == Status::Healthy, error.is_none());
    }
}

#[cfg(feature = "http-check")]
#[test]
fn urls_an_http_check_cannot_use_are_typed_errors() {
    use buttress_health::checks::HttpCheckError;
    assert!(matches!(
        checks::http("not a url"),
        Err(HttpCheckError::Url { .. })
    ));
    assert!(matches!(
        checks::http("/health"),
        Err(HttpCheckError::Url { .. })
    ));
    assert_eq!(
        checks::http("https://api.example.com/health")
            .err()
            .map(|e| e.to_string()),
        Some(
            "\"https://api.example.com/health\": only http:// URLs can be checked, not https://"
                .into()
        )
    );
}
