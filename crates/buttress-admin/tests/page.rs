//! The status page in a real browser: headless Chromium from Debian's
//! `chromium` and `chromium-driver` packages, driven over WebDriver.
//!
//! Without them the test says so and passes, unless
//! `BUTTRESS_REQUIRE_SERVICES=1` (as `.ci/run` sets, after installing
//! them). The screenshots land in `target/admin-page*.png`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use buttress_admin::Admin;
use buttress_policy::{Format, Policy};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const DRIVER: &str = "/usr/bin/chromedriver";
const BROWSERS: [&str; 2] = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"];

mod support;
use support::POLICY;

/// Chromedriver, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits for a process to listen on `port`: an external program's start,
/// bounded, not a timing the test relies on.
fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn browser() -> Option<&'static str> {
    if !Path::new(DRIVER).exists() {
        return None;
    }
    BROWSERS.into_iter().find(|b| Path::new(b).exists())
}

fn shots() -> PathBuf {
    // CARGO_TARGET_TMPDIR is target/tmp: the screenshots go beside it.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/")
        .to_owned()
}

async fn post(addr: SocketAddr, path: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the server");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.expect("sent");
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("its text")
}

/// Waits at most `within` for the element `xpath` names.
async fn shows(client: &Client, xpath: &str, within: Duration) {
    client
        .wait()
        .at_most(within)
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("the page did not show {xpath} within {within:?}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_a_breaker_opened_through_the_api_within_a_second() {
    let Some(chromium) = browser() else {
        assert!(
            !buttress_test_support::services::required(),
            "{DRIVER} and chromium are required (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no {DRIVER} or chromium (apt-get install chromium chromium-driver)");
        return;
    };
    let policy = Policy::from_text(POLICY, Format::Toml).unwrap_or_else(|e| panic!("{e}"));
    let admin = Admin::new(policy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    let app = admin.router();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serves");
    });

    let port = free_port();
    let profile =
        buttress_test_support::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "admin", "chromium");
    let _driver = Driver(
        Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    assert!(
        wait_for_port(port, Duration::from_secs(20)),
        "chromedriver listens"
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session");

    client
        .goto(&format!("http://{addr}/admin"))
        .await
        .expect("the page");
    shows(
        &client,
        "//span[@id='conn' and text()='live']",
        Duration::from_secs(10),
    )
    .await;
    shows(
        &client,
        "//article[@data-breaker='llm']//div[@data-state='closed']",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(text_of(&client, "#open-count").await, "0");
    assert_eq!(text_of(&client, "#service").await, "knowledge-api");

    // Forced open through the API: the grid and the badge follow, live.
    let forced = Instant::now();
    post(addr, "/admin/breakers/llm/force-open").await;
    shows(
        &client,
        "//article[@data-breaker='llm']//div[@data-state='forced_open' and text()='FORCED OPEN']",
        Duration::from_secs(1),
    )
    .await;
    shows(
        &client,
        "//span[@id='open-count' and text()='1']",
        Duration::from_secs(1),
    )
    .await;
    let seen_in = forced.elapsed();
    assert!(seen_in < Duration::from_secs(1), "seen after {seen_in:?}");
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(shots().join("admin-page.png"), &png).expect("saved");

    // With the keyboard: Tab to the embeddings breaker's "Force open", Enter.
    let button = client
        .find(Locator::Css(
            "[data-breaker='embeddings'] [data-action='force-open']",
        ))
        .await
        .expect("the button");
    button.send_keys("\u{E007}").await.expect("Enter");
    shows(
        &client,
        "//span[@id='open-count' and text()='2']",
        Duration::from_secs(2),
    )
    .await;

    // Reset both through the API: back to closed, badge at 0, no reload.
    post(addr, "/admin/breakers/llm/reset").await;
    post(addr, "/admin/breakers/embeddings/reset").await;
    shows(
        &client,
        "//article[@data-breaker='llm']//div[@data-state='closed']",
        Duration::from_secs(1),
    )
    .await;
    shows(
        &client,
        "//span[@id='open-count' and text()='0']",
        Duration::from_secs(1),
    )
    .await;

    // On a phone's width, nothing scrolls sideways.
    client.set_window_size(390, 844).await.expect("resized");
    let fits = client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .expect("a script");
    assert_eq!(fits, json!(true), "the page scrolls sideways on a phone");
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(shots().join("admin-page-phone.png"), &png).expect("saved");
    client.close().await.expect("closed");
}
