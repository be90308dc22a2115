//! Graceful shutdown with real signals sent to a real server process:
//! in-flight requests finish, new ones are refused, a journal's
//! acknowledged records are all on disk, and a second signal exits at
//! once.
//!
//! The test binary plays the server too: the parent runs itself with
//! `BUTTRESS_HEALTH_CHILD` set, which makes the `child` test serve
//! instead.
#![cfg(all(unix, feature = "axum"))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use buttress_test_support::process;

const CHILD: &str = "BUTTRESS_HEALTH_CHILD";

/// The server: `/work` appends a record to the journal and answers once
/// it is durable; `/slow` does the same once the shutdown has begun (so it
/// is in flight when the signal comes); `/hang` never answers.
#[test]
fn child() {
    let Some(work) = process::child_work(CHILD) else {
        return;
    };
    let (mode, dir) = work.split_once(' ').expect("mode and directory");
    let grace = if mode == "force" { 60 } else { 10 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = rt.block_on(serve(dir.to_owned(), Duration::from_secs(grace)));
    std::process::exit(outcome.exit_code());
}

async fn serve(dir: String, grace: Duration) -> buttress_health::Outcome {
    use axum::routing::get;
    use buttress_health::{Health, HealthEndpoints, ReadinessLayer, Shutdown};
    use buttress_journal::{Journal, JournalConfig};

    let health = Health::new();
    let shutdown = Shutdown::new(health.readiness().clone()).grace(grace);
    let journal = Journal::open(&dir, "requests", JournalConfig::default()).expect("journal");
    let flush = journal.clone();
    shutdown.on_drain("journal", move || async move { flush.flush().await });

    let (j1, j2) = (journal.clone(), journal.clone());
    let stop = shutdown.clone();
    let app = axum::Router::new()
        .route(
            "/work",
            get(move || async move {
                j1.append(&"work").await.expect("append");
                "ok"
            }),
        )
        .route(
            "/slow",
            get(move || async move {
                say("in flight");
                stop.signalled().await;
                j2.append(&"slow").await.expect("append");
                "done"
            }),
        )
        .route(
            "/hang",
            get(|| async {
                say("in flight");
                std::future::pending::<&str>().await
            }),
        )
        .layer(ReadinessLayer::new(health.readiness().clone()).http())
        .merge(HealthEndpoints::new(health.clone()).router());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    say(&format!(
        "port {}",
        listener.local_addr().expect("addr").port()
    ));
    let draining = shutdown.signalled();
    tokio::spawn(async move {
        draining.await;
        say("draining");
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.signalled());
    let outcome = shutdown.run(server).await;
    say(&format!("outcome {outcome:?}"));
    outcome
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("stdout");
}

/// How long the parent waits for anything the child should do at once:
/// long enough for a loaded machine, short enough that a child that hangs
/// fails the test instead of holding it.
const PATIENCE: Duration = Duration::from_secs(10);

/// The child's report lines, read on a thread of their own so that a
/// child that stops talking fails the test after [`PATIENCE`].
struct Lines(mpsc::Receiver<String>);

impl Lines {
    fn new(stdout: ChildStdout) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self(rx)
    }

    fn wait_for(&mut self, prefix: &str) -> String {
        loop {
            let line = self
                .0
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|e| panic!("the child did not say {prefix:?}: {e}"));
            if let Some(rest) = line.trim_end().strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }
}

/// Waits for the child to exit, at most [`PATIENCE`] (then kills it).
fn exit_status(child: Child) -> std::process::ExitStatus {
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let mut child = child;
        let _ = tx.send(child.wait().expect("wait"));
    });
    rx.recv_timeout(PATIENCE).unwrap_or_else(|_| {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
        panic!("the child did not exit");
    })
}

fn start(mode: &str, dir: &std::path::Path) -> (Child, Lines, u16) {
    let mut child = process::spawn_child(CHILD, &format!("{mode} {}", dir.display()));
    let mut lines = Lines::new(child.stdout.take().expect("stdout"));
    let port = lines.wait_for("port").parse().expect("a port");
    (child, lines, port)
}

/// Sends a GET and leaves the connection open for the answer.
fn send(port: u16, path: &str) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    Ok(stream)
}

/// The status line and body of the answer on `stream`.
fn answer(mut stream: TcpStream) -> (u16, String) {
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read the answer");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[test]
fn the_first_signal_drains_and_the_journal_keeps_every_acknowledged_record() {
    if process::is_child(CHILD) {
        return;
    }
    let _serial = process::serial();
    let dir = buttress_test_support::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "health", "drain");
    let (child, mut lines, port) = start("drain", &dir);
    for _ in 0..20 {
        let (status, body) = answer(send(port, "/work").expect("connect"));
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
    let (status, _) = answer(send(port, "/readyz").expect("connect"));
    assert_eq!(status, 200);
    let slow = send(port, "/slow").expect("connect");
    lines.wait_for("in flight");

    process::signal(&child, "TERM");
    lines.wait_for("draining");
    // The request in flight finishes.
    assert_eq!(answer(slow), (200, "done".to_owned()));
    // New work is refused: no connection, or a 503 if one got in first.
    if let Ok(stream) = send(port, "/work") {
        let mut text = String::new();
        let mut stream = stream;
        if stream.read_to_string(&mut text).is_ok() && !text.is_empty() {
            assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        }
    }
    assert_eq!(lines.wait_for("outcome"), "Drained");
    let status = exit_status(child);
    assert_eq!(status.code(), Some(0));

    let mut reader = buttress_journal::JournalReader::open(&dir, "requests").expect("reader");
    let mut records = Vec::new();
    while let Some(r) = reader.next_record::<String>().expect("read") {
        records.push(r.event);
    }
    assert_eq!(records.iter().filter(|r| *r == "work").count(), 20);
    assert_eq!(records.iter().filter(|r| *r == "slow").count(), 1);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_second_signal_exits_at_once() {
    if process::is_child(CHILD) {
        return;
    }
    let _serial = process::serial();
    let dir = buttress_test_support::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "health", "force");
    let (child, mut lines, port) = start("force", &dir);
    let _hung = send(port, "/hang").expect("connect");
    lines.wait_for("in flight");
    process::signal(&child, "TERM");
    lines.wait_for("draining");
    // The hung request would hold the drain for its whole 60 s grace.
    let sent = Instant::now();
    process::signal(&child, "INT");
    let status = exit_status(child);
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(130));
    assert!(
        took < Duration::from_millis(100),
        "exited {took:?} after the second signal"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}
