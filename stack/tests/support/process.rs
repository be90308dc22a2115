//! A binary run as a child process, its log read line by line: for the
//! tests that kill one with `kill -9` or signal it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One run of a binary, its log lines (stderr) read on a thread.
pub struct Run {
    /// The process.
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub log: Vec<String>,
}

impl Run {
    /// Starts `bin` with `vars` and `RUST_LOG=debug`.
    pub fn start(bin: &str, vars: &[(String, String)]) -> Run {
        let mut child = Command::new(bin)
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} starts: {e}"));
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Run {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// The next log line, waiting at most `limit`.
    pub fn next(&mut self, limit: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(limit).ok()?;
        self.log.push(line.clone());
        Some(line)
    }

    /// Reads lines until one satisfies `f`; panics with the log after 60 s.
    pub fn until(&mut self, what: &str, mut f: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(line) = self.next(Duration::from_millis(100)) {
                if f(&line) {
                    return line;
                }
            } else if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the process exited ({status}) before {what}:\n{}",
                    self.log.join("\n")
                );
            }
        }
        panic!("no {what} within 60 s:\n{}", self.log.join("\n"));
    }

    /// Every line left, once the process has ended.
    pub fn drain(&mut self) {
        while self.next(Duration::from_secs(5)).is_some() {}
    }

    pub fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
        self.drain();
    }
    /// The address it logged as `address=` on its "listening" line.
    pub fn address(&mut self) -> String {
        let listening = |l: &str| l.contains("listening") && l.contains(" address=");
        let logged = self.log.iter().find(|l| listening(l)).cloned();
        let line = logged.unwrap_or_else(|| self.until("the listening address", listening));
        line.split("address=")
            .nth(1)
            .and_then(|a| a.split_whitespace().next())
            .expect("an address")
            .to_owned()
    }

    /// Waits at most `limit` for the process to exit, reading its log.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain();
                return Some(status);
            }
            self.next(Duration::from_millis(20));
        }
        None
    }
}

/// `name=<number>` in a log line.
pub fn field(line: &str, name: &str) -> Option<u64> {
    let at = line.find(&format!(" {name}="))? + name.len() + 2;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}
