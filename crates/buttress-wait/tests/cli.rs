//! The binary as a startup script runs it: real ports, a real HTTP
//! server, exit codes and messages.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

fn wait(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_buttress-wait"))
        .args(args)
        .output()
        .expect("run buttress-wait")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A listener (keep it alive) and its address.
fn listening() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    (listener, address)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Answers every connection with `body` as JSON, on a thread.
fn json_server(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn an_open_port_is_healthy_at_once() {
    let (_listener, address) = listening();
    let out = wait(&["--tcp", &address, "--timeout", "10s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with(&format!("{address}:healthy (")));
}

#[test]
fn a_dependency_that_never_comes_up_is_named_at_the_timeout() {
    let address = format!("127.0.0.1:{}", closed_port());
    let out = wait(&[
        "--tcp",
        &address,
        "--interval",
        "100ms",
        "--timeout",
        "300ms",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!("{address}:starting (connect to {address}: ")),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "buttress-wait: not healthy after 300ms: {address} (connect to {address}: "
        )),
        "{stderr}"
    );
}

#[test]
fn an_http_dependency_is_healthy_when_its_json_says_so() {
    let port = json_server(r#"{"status":"ok","checks":{"postgres":{"status":"ok"}}}"#);
    let url = format!("http://127.0.0.1:{port}/health");
    let out = wait(&[
        "--http",
        &url,
        "--expect-json",
        "status=ok",
        "--expect-json",
        "checks.postgres.status=ok",
        "--timeout",
        "10s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let port = json_server(r#"{"status":"starting"}"#);
    let url = format!("http://127.0.0.1:{port}/health");
    let out = wait(&[
        "--http",
        &url,
        "--expect-json",
        "status=ok",
        "--interval",
        "100ms",
        "--timeout",
        "300ms",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{url} (GET {url}: status is \"starting\", expected \"ok\")"
        )),
        "{stderr}"
    );
}

#[test]
fn the_command_after_the_dependencies_runs_with_its_exit_status() {
    let (_listener, address) = listening();
    let out = wait(&[
        "--tcp",
        &address,
        "--quiet",
        "--",
        "sh",
        "-c",
        "echo started; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout), "started\n", "--quiet prints no progress");
}

#[test]
fn bad_arguments_exit_2_with_the_usage() {
    let out = wait(&["--tcp"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("buttress-wait: --tcp needs a value\n\nusage: buttress-wait"),
        "{stderr}"
    );
    let out = wait(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("usage: buttress-wait"));
}
