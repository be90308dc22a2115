//! A policy file named without a directory is watched in the current one.
//! Alone in its binary: it changes the process's current directory.

#![cfg(feature = "watch")]

use std::time::Duration;

use buttress_policy::Policy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_file_name_is_watched_in_the_current_directory() {
    let dir = buttress_test_support::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "policy", "relative");
    std::env::set_current_dir(&dir).expect("a directory");
    std::fs::write("policy.toml", "[dependencies.db]\ntimeout = \"5s\"\n").expect("written");
    let policy = Policy::load("policy.toml").expect("valid");
    let watch = policy.watch_file("policy.toml").expect("watched in .");
    let mut status = watch.subscribe();
    std::fs::write("policy.toml.new", "[dependencies.db]\ntimeout = \"2s\"\n").expect("written");
    std::fs::rename("policy.toml.new", "policy.toml").expect("renamed");
    tokio::time::timeout(Duration::from_secs(20), status.changed())
        .await
        .expect("read within 20 s")
        .expect("the watch runs");
    assert_eq!(policy.current().version, 2);
    assert_eq!(policy.current().by, "file policy.toml");
}
