//! Real processes for `kill -9` tests: the test binary runs itself as the
//! child, with an environment variable that tells its `child` test what to
//! do (every other test returns at once in a child).

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};

/// The parents take turns: each already loads both cores, and they kill
/// children of their own.
static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the lock that makes process tests run one at a time (a panicked
/// test does not poison it for the others).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The work this process was started for, when it is a child: the value
/// of `var`. `None` in the parent.
pub fn child_work(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// Whether this process is a child started by [`spawn_child`].
pub fn is_child(var: &str) -> bool {
    std::env::var_os(var).is_some()
}

/// Runs this test binary again as a child that runs only its test named
/// `child`, with `var` set to `work`; its standard output is piped to the
/// parent (the child reports there), its standard error inherited.
pub fn spawn_child(var: &str, work: &str) -> Child {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "child", "--nocapture", "--test-threads=1", "-q"])
        .env(var, work)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child process")
}

/// Sends `signal` (a name such as `TERM` or `INT`) to `child`, with the
/// system's `kill` command.
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -s {signal} failed: {status}");
}
