//! Policies in files: loaded, applied on request, and followed as they
//! are saved.

use std::path::{Path, PathBuf};
use std::time::Duration;

use buttress_policy::{FileError, Policy};

fn dir(name: &str) -> PathBuf {
    buttress_test_support::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "policy", name)
}

/// Saves `text` the way editors do: a new file renamed over the old one.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

const V1: &str = "dependencies:\n  db:\n    timeout: 5s\n    retry:\n      max_attempts: 3\n";

#[test]
fn a_file_loads_and_a_bad_one_names_file_path_and_line() {
    let dir = dir("load");
    let path = dir.join("policy.yaml");
    save(&path, V1);
    let policy = Policy::load(&path).expect("valid");
    assert_eq!(
        policy.dependency("db").expect("declared").timeout(),
        Some(Duration::from_secs(5))
    );

    let bad = dir.join("bad.yaml");
    save(&bad, &V1.replace("max_attempts: 3", "max_attempts: 3000"));
    let e = Policy::load(&bad).expect_err("too many attempts");
    assert_eq!(
        e.to_string(),
        format!("the policy file {} was refused", bad.display())
    );
    let problem = &e.document().expect("a document problem").problems()[0];
    assert_eq!(
        problem.to_string(),
        "dependencies.db.retry.max_attempts: must be 1 to 1000, got 3000, line 5"
    );

    let missing = dir.join("missing.toml");
    assert!(matches!(
        Policy::load(&missing),
        Err(FileError::Read { .. })
    ));
}

#[test]
fn apply_file_applies_the_saved_version() {
    let dir = dir("apply");
    let path = dir.join("policy.yaml");
    save(&path, V1);
    let policy = Policy::load(&path).expect("valid");
    save(&path, &V1.replace("timeout: 5s", "timeout: 2s"));
    let applied = policy.apply_file(&path).expect("valid change");
    assert_eq!(applied.version, 2);
    assert_eq!(applied.by, format!("file {}", path.display()));
    assert_eq!(
        policy.dependency("db").expect("declared").timeout(),
        Some(Duration::from_secs(2))
    );
}

#[cfg(feature = "watch")]
mod watching {
    use super::*;

    /// Waits for the watcher to read the file once more; the wait is for an
    /// event, bounded, never a fixed sleep.
    async fn next_read(
        status: &mut tokio::sync::watch::Receiver<buttress_policy::WatchStatus>,
    ) -> buttress_policy::WatchStatus {
        tokio::time::timeout(Duration::from_secs(20), status.changed())
            .await
            .expect("the watcher read the file within 20 s")
            .expect("the watcher runs");
        status.borrow_and_update().clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_saved_version_is_applied_and_a_bad_one_is_refused_whole() {
        let dir = dir("watch");
        let path = dir.join("policy.yaml");
        save(&path, V1);
        let policy = Policy::load(&path).expect("valid");
        let watch = policy.watch_file(&path).expect("watchable");
        let mut status = watch.subscribe();

        save(&path, &V1.replace("timeout: 5s", "timeout: 2s"));
        let s = next_read(&mut status).await;
        assert!(s.last_error.is_none(), "{:?}", s.last_error);
        assert_eq!(policy.current().version, 2);
        assert_eq!(
            policy.dependency("db").expect("declared").timeout(),
            Some(Duration::from_secs(2))
        );

        save(&path, &V1.replace("max_attempts: 3", "max_attempts: 0"));
        let s = next_read(&mut status).await;
        let e = s.last_error.expect("refused");
        assert!(
            e.document().expect("a document problem").problems()[0]
                .to_string()
                .ends_with("line 5"),
            "{e:?}"
        );
        assert_eq!(policy.current().version, 2, "nothing applied");
        assert_eq!(
            watch.last_error().map(|e| e.to_string()),
            Some(e.to_string())
        );

        save(&path, &V1.replace("timeout: 5s", "timeout: 3s"));
        let s = next_read(&mut status).await;
        assert!(s.last_error.is_none());
        assert_eq!(policy.current().version, 3);
        assert_eq!(s.reads, 3, "one read per save");
        // Neither another file's change nor the reading of this one is a
        // change of the policy: the watcher stays quiet. (This
        // test follows a real file system, so proving a silence takes a
        // bounded wait: three times the watcher's settling time.)
        std::fs::write(dir.join("notes.txt"), "not the policy").expect("written");
        let quiet = tokio::time::timeout(Duration::from_millis(300), status.changed()).await;
        assert!(
            quiet.is_err(),
            "the watcher read the file again with no change"
        );
        drop(watch);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_watch_stops_it() {
        let dir = dir("watch-drop");
        let path = dir.join("policy.yaml");
        save(&path, V1);
        let policy = Policy::load(&path).expect("valid");
        let watch = policy.watch_file(&path).expect("watchable");
        let mut status = watch.subscribe();
        drop(watch);
        let ended = tokio::time::timeout(Duration::from_secs(20), status.changed())
            .await
            .expect("the watch ended at once");
        assert!(ended.is_err(), "nothing more will be read");
    }

    #[tokio::test]
    async fn only_known_formats_are_watched() {
        let policy = Policy::new(Default::default()).expect("empty");
        assert!(matches!(
            policy.watch_file("policy.ini"),
            Err(buttress_policy::WatchError::Format(_))
        ));
    }
}
