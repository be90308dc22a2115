//! Helpers shared by the health tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use buttress_health::{Check, CheckOptions, Health, Status};

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A listener that accepts connections (the kernel does) and never
/// answers; keep it alive for the test.
pub fn silent() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    (listener, address)
}

/// One critical check with `timeout`, probed once: the report's status,
/// the check's message and how long its probe took.
pub async fn one(
    name: &str,
    check: impl Check,
    timeout: Duration,
) -> (Status, Option<String>, Duration) {
    let health = Health::new();
    health
        .register(name, check, CheckOptions::critical().timeout(timeout))
        .expect("valid");
    let report = health.report().await;
    let check = &report.checks[0];
    (report.status, check.message.clone(), check.took)
}
