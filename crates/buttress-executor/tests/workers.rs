//! The workers that run tasks: one per running slot, running queued
//! tasks one after another without a spawn each, yet yielding to the
//! other tasks of their thread, and cancelling what is left when their
//! runtime goes away.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use buttress_core::ManualClock;
use buttress_executor::{Executor, ExecutorConfig, TaskError};
use tokio::sync::Notify;

/// Runs `ready` queued tasks on one slot; the second of them spawns an
/// observer task, which records how many had run when it got the thread.
/// Each task runs `each` (given the clock) first.
async fn observed_chain(
    ex: &Executor,
    ready: usize,
    each: impl Fn() + Send + Sync + 'static,
) -> usize {
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    let first = ex
        .submit(0, async move { g.notified().await })
        .expect("room");
    let ran = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(usize::MAX));
    let each = Arc::new(each);
    let mut handles = Vec::new();
    for i in 0..ready {
        let (ran, seen, each) = (ran.clone(), seen.clone(), each.clone());
        handles.push(
            ex.submit(0, async move {
                each();
                ran.fetch_add(1, Ordering::SeqCst);
                if i == 1 {
                    let (ran, seen) = (ran.clone(), seen.clone());
                    tokio::spawn(async move {
                        seen.store(ran.load(Ordering::SeqCst), Ordering::SeqCst)
                    });
                }
            })
            .expect("room"),
        );
    }
    // The first task holds the only slot; the others queue.
    tokio::task::yield_now().await;
    gate.notify_one();
    first.await.expect("ran");
    for h in handles {
        h.await.expect("ran");
    }
    assert_eq!(ran.load(Ordering::SeqCst), ready);
    seen.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "current_thread")]
async fn a_worker_yields_to_its_thread_after_a_budget_of_tasks() {
    let ex = Executor::new("chain", ExecutorConfig::default().max_running(1)).unwrap();
    let seen = observed_chain(&ex, 100, || {}).await;
    // Without a budget the worker would run all 100 ready tasks in one
    // poll, and the observer would see 100.
    assert!((2..=16).contains(&seen), "observer saw {seen}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_worker_yields_after_a_millisecond_of_tasks() {
    let clock = ManualClock::new();
    let ex = Executor::with_runtime(
        "slow-chain",
        ExecutorConfig::default().max_running(1),
        tokio::runtime::Handle::current(),
        Arc::new(clock.clone()),
    )
    .unwrap();
    // Each task takes 2 ms (of the executor's clock): the worker stops
    // starting tasks 1 ms after the first one of its poll ended.
    let seen = observed_chain(&ex, 100, move || clock.advance(Duration::from_millis(2))).await;
    assert!((2..=3).contains(&seen), "observer saw {seen}");
}

#[test]
fn a_dropped_runtime_cancels_the_queue_behind_a_running_task_without_recursion() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let queued = 100_000;
    let ex = rt.block_on(async {
        Executor::new(
            "dropped",
            ExecutorConfig::default()
                .max_running(1)
                .max_queued(queued)
                .history(10),
        )
        .unwrap()
    });
    let (running, handles) = {
        let _in_runtime = rt.enter();
        let running = ex
            .submit(0, tokio::time::sleep(Duration::from_secs(1000)))
            .unwrap();
        let handles: Vec<_> = (0..queued)
            .map(|_| ex.submit(0, async {}).unwrap())
            .collect();
        (running, handles)
    };
    rt.block_on(tokio::task::yield_now());
    assert_eq!(ex.snapshot().queued, queued);
    // The worker is dropped with its task unfinished: it cancels that one
    // and, one by one in a loop, every task the queue then gives it (a
    // spawn for each into a runtime that is going away would recurse).
    drop(rt);
    let snap = ex.snapshot();
    assert_eq!((snap.running, snap.queued), (0, 0));
    assert_eq!(snap.counters.cancelled, queued as u64 + 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(running), Err(TaskError::Cancelled));
    for h in handles {
        assert_eq!(rt.block_on(h), Err(TaskError::Cancelled));
    }
}

/// An output that panics when dropped.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("output dropped");
    }
}

#[tokio::test(start_paused = true)]
async fn an_output_that_panics_when_dropped_with_its_handle_gone_leaks_no_slot() {
    let ex = Executor::new("outputs", ExecutorConfig::default().max_running(1)).expect("valid");
    // Started at submission (its worker holds it unboxed), then one from
    // the queue (boxed); both detached, so the executor drops the outputs.
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    drop(ex.submit(0, async move {
        g.notified().await;
        PanicsOnDrop
    }));
    drop(ex.submit(0, async { PanicsOnDrop }));
    let after = ex.submit(0, async { 42 }).expect("room");
    tokio::task::yield_now().await;
    gate.notify_one();
    let answer = tokio::time::timeout(Duration::from_secs(60), after).await;
    assert_eq!(answer, Ok(Ok(42)), "the slot went on to the next task");
    let snap = ex.snapshot();
    assert_eq!((snap.running, snap.queued), (0, 0));
    assert_eq!(snap.counters.ok, 3, "each task recorded once");
    assert_eq!(snap.history.len(), 3);
}

#[test]
fn a_timeout_on_a_runtime_without_a_time_driver_fails_that_task_only() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let ex =
            Executor::new("no-timer", ExecutorConfig::default().max_running(1)).expect("valid");
        let gate = Arc::new(Notify::new());
        let g = gate.clone();
        let first = ex
            .submit(0, async move { g.notified().await })
            .expect("room");
        let timed = ex
            .submit_with(0, Some(Duration::from_secs(1)), async { 1 })
            .expect("room");
        let untimed = ex.submit(0, async { 2 }).expect("room");
        tokio::task::yield_now().await;
        gate.notify_one();
        first.await.expect("ran");
        assert_eq!(timed.await, Err(TaskError::Panicked));
        assert_eq!(untimed.await, Ok(2), "the queue behind it still runs");
        let snap = ex.snapshot();
        assert_eq!(
            (snap.running, snap.counters.panicked, snap.counters.ok),
            (0, 1, 2)
        );
    });
}

#[test]
fn a_dropped_runtime_cancels_a_task_from_the_queue_mid_run_and_the_rest() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let ex = rt.block_on(async {
        Executor::new("dropped-chain", ExecutorConfig::default().max_running(1)).expect("valid")
    });
    let (first, mid_run, rest) = {
        let _in_runtime = rt.enter();
        // The first ends at once; its worker then takes the sleeping one
        // from the queue (boxed), which is running when the runtime goes.
        let first = ex.submit(0, async { 1 }).expect("room");
        let mid_run = ex
            .submit(0, tokio::time::sleep(Duration::from_secs(1000)))
            .expect("room");
        let rest: Vec<_> = (0..100)
            .map(|_| ex.submit(0, async {}).expect("room"))
            .collect();
        (first, mid_run, rest)
    };
    rt.block_on(tokio::task::yield_now());
    let snap = ex.snapshot();
    assert_eq!((snap.running, snap.queued, snap.counters.ok), (1, 100, 1));
    drop(rt);
    let snap = ex.snapshot();
    assert_eq!((snap.running, snap.queued), (0, 0));
    assert_eq!(snap.counters.cancelled, 101);
    // Recorded once each; only the one caught mid-run ever started.
    assert_eq!(snap.history.len(), 102);
    let started: Vec<u64> = snap
        .history
        .iter()
        .filter(|r| r.started_at.is_some())
        .map(|r| r.id)
        .collect();
    assert_eq!(started, vec![0, 1]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    assert_eq!(rt.block_on(first), Ok(1));
    assert_eq!(rt.block_on(mid_run), Err(TaskError::Cancelled));
    for h in rest {
        assert_eq!(rt.block_on(h), Err(TaskError::Cancelled));
    }
}
