//! Live changes of an executor's bounds: nothing queued or running is lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use buttress_executor::{Executor, ExecutorConfig, SubmitError};
use tokio::sync::oneshot;

/// A task that records its label when it starts and ends when released.
fn gated(
    log: &Arc<Mutex<Vec<&'static str>>>,
    label: &'static str,
) -> (
    impl Future<Output = ()> + Send + 'static,
    oneshot::Sender<()>,
) {
    let (release, wait) = oneshot::channel::<()>();
    let log = log.clone();
    let task = async move {
        log.lock().expect("not poisoned").push(label);
        let _ = wait.await;
    };
    (task, release)
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn more_slots_start_queued_tasks_in_their_order() {
    let executor = Executor::new("jobs", ExecutorConfig::default().max_running(1)).expect("valid");
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut releases = Vec::new();
    let mut handles = Vec::new();
    for (priority, label) in [(0, "first"), (1, "low"), (5, "high-a"), (5, "high-b")] {
        let (task, release) = gated(&log, label);
        handles.push(executor.submit(priority, task).expect("room"));
        releases.push(release);
    }
    settle().await;
    assert_eq!(*log.lock().expect("not poisoned"), ["first"]);
    assert_eq!(executor.snapshot().queued, 3);

    executor
        .reconfigure(ExecutorConfig::default().max_running(3))
        .expect("valid");
    settle().await;
    assert_eq!(
        *log.lock().expect("not poisoned"),
        ["first", "high-a", "high-b"],
        "the two high-priority tasks start, in arrival order"
    );
    let s = executor.snapshot();
    assert_eq!((s.running, s.queued), (3, 1));
    for r in releases {
        let _ = r.send(());
    }
    for h in handles {
        h.await.expect("ran");
    }
    assert_eq!(executor.snapshot().counters.ok, 4);
}

#[tokio::test(start_paused = true)]
async fn a_smaller_queue_keeps_what_is_queued_and_refuses_new_work() {
    let config = ExecutorConfig::default().max_running(1).max_queued(10);
    let executor = Executor::new("jobs", config.clone()).expect("valid");
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut releases = Vec::new();
    let mut handles = Vec::new();
    for label in ["a", "b", "c", "d"] {
        let (task, release) = gated(&log, label);
        handles.push(executor.submit(0, task).expect("room"));
        releases.push(release);
    }
    settle().await;
    executor
        .reconfigure(config.clone().max_queued(1).max_running(1))
        .expect("valid");
    assert_eq!(executor.snapshot().queued, 3, "nothing queued is dropped");
    let (task, _never) = gated(&log, "refused");
    assert!(matches!(
        executor.submit(0, task),
        Err(SubmitError::Full(_))
    ));
    for r in releases {
        let _ = r.send(());
    }
    for h in handles {
        h.await.expect("ran");
    }
    assert_eq!(*log.lock().expect("not poisoned"), ["a", "b", "c", "d"]);
    assert_eq!(executor.config(), config.max_queued(1));
}

#[tokio::test(start_paused = true)]
async fn the_new_default_timeout_applies_to_new_tasks() {
    let executor = Executor::new("jobs", ExecutorConfig::default()).expect("valid");
    executor
        .reconfigure(ExecutorConfig::default().timeout(Duration::from_secs(1)))
        .expect("valid");
    let slow = executor
        .submit(0, tokio::time::sleep(Duration::from_secs(5)))
        .expect("room");
    assert!(slow.await.is_err(), "timed out after 1 s");
}

#[tokio::test(start_paused = true)]
async fn an_invalid_config_is_refused_and_nothing_changes() {
    let config = ExecutorConfig::default().max_running(2);
    let executor = Executor::new("jobs", config.clone()).expect("valid");
    assert!(
        executor
            .reconfigure(ExecutorConfig::default().max_running(0))
            .is_err()
    );
    assert!(
        executor
            .reconfigure(ExecutorConfig::default().timeout(Duration::ZERO))
            .is_err()
    );
    assert_eq!(executor.config(), config);
}

#[tokio::test(start_paused = true)]
async fn a_shorter_history_forgets_the_oldest_records() {
    let executor = Executor::new("jobs", ExecutorConfig::default().history(10)).expect("valid");
    for i in 0..5u64 {
        executor
            .submit(0, async move { i })
            .expect("room")
            .await
            .expect("ran");
    }
    executor
        .reconfigure(ExecutorConfig::default().history(5))
        .expect("valid");
    assert_eq!(
        executor.snapshot().history.len(),
        5,
        "as many as kept: none forgotten"
    );
    executor
        .reconfigure(ExecutorConfig::default().history(2))
        .expect("valid");
    let ids: Vec<u64> = executor.snapshot().history.iter().map(|r| r.id).collect();
    assert_eq!(ids, [3, 4], "the newest two");
}

#[tokio::test(start_paused = true)]
async fn aging_set_live_lets_old_low_priority_work_run_first() {
    let executor = Executor::new("jobs", ExecutorConfig::default().max_running(1)).expect("valid");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (first, release) = gated(&log, "first");
    let first = executor.submit(9, first).expect("room");
    let (old, _r1) = gated(&log, "old-low");
    let old = executor.submit(0, old).expect("room");
    tokio::time::advance(Duration::from_secs(30)).await;
    let (new, _r2) = gated(&log, "new-high");
    let _new = executor.submit(9, new).expect("room");
    executor
        .reconfigure(
            ExecutorConfig::default()
                .max_running(1)
                .aging(Some(Duration::from_secs(10))),
        )
        .expect("valid");
    let _ = release.send(());
    first.await.expect("ran");
    settle().await;
    assert_eq!(
        *log.lock().expect("not poisoned"),
        ["first", "old-low"],
        "waited past the aging bound: it runs before newer high-priority work"
    );
    drop(old);
}
