//! The executor under paused tokio time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use buttress_executor::{
    Executor, ExecutorConfig, ExecutorError, ExecutorLayer, QueueFull, Status, SubmitError,
    TaskError,
};
use tokio::sync::Notify;
use tokio::time::sleep;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

fn executor(config: ExecutorConfig) -> Executor {
    Executor::new("test", config).expect("valid")
}

/// A gate the first task waits on, so that the others queue behind it.
async fn gate_task(gate: Arc<Notify>) {
    gate.notified().await;
}

#[tokio::test(start_paused = true)]
async fn strict_priority_and_fifo_among_equals() {
    let ex = executor(ExecutorConfig::default().max_running(1));
    let gate = Arc::new(Notify::new());
    let first = ex.submit(0, gate_task(gate.clone())).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for (name, p) in [("a", 1), ("b", 5), ("c", 1), ("d", 5), ("e", 9), ("f", 1)] {
        let order = order.clone();
        handles.push(
            ex.submit(p, async move { order.lock().unwrap().push(name) })
                .unwrap(),
        );
    }
    tokio::task::yield_now().await;
    gate.notify_one();
    first.await.unwrap();
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec!["e", "b", "d", "a", "c", "f"]);
}

#[tokio::test(start_paused = true)]
async fn aging_bounds_how_long_low_priority_work_waits() {
    let ex = executor(
        ExecutorConfig::default()
            .max_running(1)
            .aging(Some(Duration::from_secs(5))),
    );
    // A stream of high-priority work, each 1 s, would starve priority 0.
    let low_started = Arc::new(Mutex::new(None));
    let start = tokio::time::Instant::now();
    let mut handles = Vec::new();
    let ls = low_started.clone();
    // Lazy: a Sleep made now would end one second from now, not from when
    // the task starts.
    let second = || async { sleep(Duration::from_secs(1)).await };
    handles.push(ex.submit(9, second()).unwrap());
    let low = ex
        .submit(0, async move {
            *ls.lock().unwrap() = Some(start.elapsed());
        })
        .unwrap();
    for _ in 0..20 {
        handles.push(ex.submit(9, second()).unwrap());
    }
    low.await.unwrap();
    let waited = low_started.lock().unwrap().unwrap();
    // It runs at the first free slot after 5 s of waiting.
    assert!(
        waited >= Duration::from_secs(5) && waited <= Duration::from_secs(6),
        "{waited:?}"
    );
    for h in handles {
        h.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn bounded_queue_names_the_priority_and_waits_for_space() {
    let ex = executor(
        ExecutorConfig::default()
            .max_running(1)
            .max_queued(3)
            .max_queued_per_priority(Some(2)),
    );
    let gate = Arc::new(Notify::new());
    let first = ex.submit(0, gate_task(gate.clone())).unwrap();
    let _a = ex.submit(1, async {}).unwrap();
    let _b = ex.submit(1, async {}).unwrap();
    match ex.submit(1, async {}) {
        Err(SubmitError::Full(full)) => {
            assert_eq!((full.priority(), full.depth(), full.total()), (1, 2, 2));
        }
        other => panic!("{other:?}"),
    }
    let _c = ex.submit(2, async {}).unwrap();
    assert!(matches!(
        ex.submit(3, async {}),
        Err(SubmitError::Full(QueueFull { .. }))
    ));
    // Waiting for space: admitted once the gate opens and the queue moves.
    let ex2 = ex.clone();
    let waiter = tokio::spawn(async move { ex2.submit_wait(3, async { 7 }).await.unwrap().await });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    gate.notify_one();
    first.await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), 7);
    assert_eq!(ex.snapshot().counters.rejected, 2);
}

#[tokio::test(start_paused = true)]
async fn the_bulkhead_caps_running_tasks() {
    let ex = executor(ExecutorConfig::default().max_running(3).max_queued(100));
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..30 {
        let (now, peak) = (now.clone(), peak.clone());
        handles.push(
            ex.submit(0, async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                sleep(Duration::from_millis(10)).await;
                now.fetch_sub(1, Ordering::SeqCst);
            })
            .unwrap(),
        );
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn timeouts_and_panics_are_reported_and_the_executor_carries_on() {
    let ex = executor(
        ExecutorConfig::default()
            .max_running(1)
            .timeout(Some(Duration::from_secs(1))),
    );
    let slow = ex.submit(0, sleep(Duration::from_secs(10))).unwrap();
    let boom = ex.submit(0, async { panic!("boom") }).unwrap();
    let fine = ex
        .submit_with(0, None, async {
            sleep(Duration::from_secs(3)).await;
            1
        })
        .unwrap();
    let failing = ex.submit_try(0, async { Err::<(), _>("no") }).unwrap();
    assert_eq!(slow.await, Err(TaskError::TimedOut));
    assert_eq!(boom.await, Err(TaskError::Panicked));
    assert_eq!(fine.await, Ok(1));
    assert_eq!(failing.await, Ok(Err("no")));
    let snap = ex.snapshot();
    let statuses: Vec<Status> = snap.history.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![
            Status::TimedOut,
            Status::Panicked,
            Status::Ok,
            Status::Failed
        ]
    );
    assert_eq!(snap.history[0].ran(), Duration::from_secs(1));
    assert_eq!(snap.history[2].waited(), Duration::from_secs(1));
    assert_eq!(
        (
            snap.counters.timed_out,
            snap.counters.panicked,
            snap.counters.failed
        ),
        (1, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn cancelling_removes_a_queued_task_at_once_and_stops_a_running_one() {
    let ex = executor(ExecutorConfig::default().max_running(1));
    let running = ex.submit(0, sleep(Duration::from_secs(100))).unwrap();
    let queued = ex.submit(0, async { 1 }).unwrap();
    tokio::task::yield_now().await;
    assert_eq!(ex.snapshot().queued, 1);
    assert!(queued.cancel());
    assert_eq!(ex.snapshot().queued, 0, "removed at once");
    assert_eq!(queued.await, Err(TaskError::Cancelled));
    assert!(running.cancel());
    assert_eq!(running.await, Err(TaskError::Cancelled));
    tokio::task::yield_now().await;
    let snap = ex.snapshot();
    assert_eq!(snap.running, 0);
    assert_eq!(snap.counters.cancelled, 2);
    // A task that ended is neither queued nor running: cancel says so,
    // and changes nothing.
    let done = ex.submit(0, async { 2 }).unwrap();
    tokio::task::yield_now().await;
    assert!(!done.cancel());
    assert_eq!(done.await, Ok(2));
    assert_eq!(ex.snapshot().counters.cancelled, 2);
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_then_cancels_at_the_deadline_and_a_second_call_forces() {
    let ex = executor(ExecutorConfig::default().max_running(1));
    let quick = ex.submit(0, sleep(Duration::from_secs(1))).unwrap();
    let report = ex.shutdown(Duration::from_secs(5)).await;
    assert!(report.drained);
    assert_eq!(quick.await, Ok(()));
    assert!(matches!(ex.submit(0, async {}), Err(SubmitError::Closed)));

    let ex = executor(ExecutorConfig::default().max_running(1));
    let long = ex.submit(0, sleep(Duration::from_secs(100))).unwrap();
    let waiting = ex.submit(0, async {}).unwrap();
    let start = tokio::time::Instant::now();
    let report = ex.shutdown(Duration::from_secs(5)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(
        (
            report.dropped_queued,
            report.cancelled_running,
            report.drained
        ),
        (1, 1, false)
    );
    assert_eq!(long.await, Err(TaskError::Cancelled));
    assert_eq!(waiting.await, Err(TaskError::Cancelled));

    let ex = executor(ExecutorConfig::default().max_running(1));
    let _long = ex.submit(0, sleep(Duration::from_secs(100))).unwrap();
    let ex2 = ex.clone();
    let first = tokio::spawn(async move { ex2.shutdown(Duration::from_secs(3600)).await });
    sleep(Duration::from_secs(1)).await;
    let forced = ex.shutdown(Duration::from_secs(3600)).await;
    assert_eq!(forced.cancelled_running, 1);
    let first = first.await.unwrap();
    // The first call did not wait out its hour, and did not drain.
    assert!(!first.drained);
    assert!(tokio::time::Instant::now() - start < Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn history_stays_bounded() {
    let ex = executor(ExecutorConfig::default().history(10).max_running(4));
    for i in 0..100u64 {
        ex.submit(0, async move { i }).unwrap().await.unwrap();
    }
    let snap = ex.snapshot();
    assert_eq!(snap.history.len(), 10);
    assert_eq!(snap.history.last().map(|r| r.id), Some(99));
    assert_eq!(snap.counters.ok, 100);
}

#[tokio::test(start_paused = true)]
async fn a_history_of_zero_keeps_no_records_and_still_counts() {
    let ex = executor(ExecutorConfig::default().history(0));
    for i in 0..3u64 {
        ex.submit(0, async move { i }).unwrap().await.unwrap();
    }
    let snap = ex.snapshot();
    assert!(snap.history.is_empty());
    assert_eq!(snap.counters.ok, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_submissions_leave_nothing_behind() {
    let ex = executor(
        ExecutorConfig::default()
            .max_running(64)
            .max_queued(10_000)
            .history(100),
    );
    let done = Arc::new(AtomicUsize::new(0));
    let total = 1_000_000;
    for _ in 0..total {
        let d = done.clone();
        let handle = ex
            .submit_wait(0, async move {
                d.fetch_add(1, Ordering::Relaxed);
            })
            .await
            .unwrap();
        drop(handle); // detached
    }
    let report = ex.shutdown(Duration::from_secs(600)).await;
    assert!(report.drained);
    assert_eq!(done.load(Ordering::Relaxed), total);
    let snap = ex.snapshot();
    assert_eq!((snap.queued, snap.running, snap.history.len()), (0, 0, 100));
    assert_eq!(snap.counters.ok, total as u64);
}

#[tokio::test(start_paused = true)]
async fn the_layer_queues_by_priority_and_sheds_when_full() {
    let ex = executor(ExecutorConfig::default().max_running(1).max_queued(1));
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    let svc = ServiceBuilder::new()
        .layer(ExecutorLayer::new(ex.clone(), |req: &u32| {
            (*req % 10) as u8
        }))
        .service(service_fn(move |req: u32| {
            let g = g.clone();
            async move {
                if req == 100 {
                    g.notified().await;
                }
                Ok::<_, std::io::Error>(req * 2)
            }
        }));
    let blocker = tokio::spawn(svc.clone().oneshot(100));
    tokio::task::yield_now().await;
    let queued = tokio::spawn(svc.clone().oneshot(3));
    tokio::task::yield_now().await;
    let shed = svc.clone().oneshot(5).await.unwrap_err();
    let shed = shed
        .downcast_ref::<ExecutorError>()
        .expect("an executor error");
    assert!(shed.queue_full().is_some());
    gate.notify_one();
    assert_eq!(blocker.await.unwrap().unwrap(), 200);
    assert_eq!(queued.await.unwrap().unwrap(), 6);
}

/// A caller that gives up (drops the layer's response future) while its
/// request is queued takes the request out of the queue: it never runs,
/// and it is counted as cancelled.
#[tokio::test(start_paused = true)]
async fn a_dropped_response_future_cancels_its_queued_request() {
    let ex = executor(ExecutorConfig::default().max_running(1));
    let gate = Arc::new(Notify::new());
    let ran = Arc::new(AtomicUsize::new(0));
    let (g, r) = (gate.clone(), ran.clone());
    let mut svc = ServiceBuilder::new()
        .layer(ExecutorLayer::new(ex.clone(), |_: &u32| 0))
        .service(service_fn(move |req: u32| {
            let (g, r) = (g.clone(), r.clone());
            async move {
                if req == 100 {
                    g.notified().await;
                } else {
                    r.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<_, std::io::Error>(req)
            }
        }));
    let blocker = tokio::spawn(svc.clone().oneshot(100));
    tokio::task::yield_now().await;
    let queued = svc.ready().await.unwrap().call(3);
    assert_eq!(ex.snapshot().queued, 1);
    drop(queued);
    let snap = ex.snapshot();
    assert_eq!((snap.queued, snap.counters.cancelled), (0, 1));
    gate.notify_one();
    assert_eq!(blocker.await.unwrap().unwrap(), 100);
    tokio::task::yield_now().await;
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_future_that_panics_when_dropped_is_contained() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("boom in drop");
        }
    }
    let ex = executor(
        ExecutorConfig::default()
            .max_running(1)
            .timeout(Some(Duration::from_secs(1))),
    );
    let h = ex
        .submit(0, async {
            let _bomb = Bomb;
            sleep(Duration::from_secs(10)).await;
        })
        .unwrap();
    assert_eq!(h.await, Err(TaskError::Panicked));
    // The slot came back: the executor goes on.
    assert_eq!(ex.submit(0, async { 5 }).unwrap().await, Ok(5));
    assert_eq!(ex.snapshot().running, 0);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_submission_hears_of_the_shutdown_at_once() {
    let ex = executor(ExecutorConfig::default().max_running(1).max_queued(0));
    let _long = ex.submit(0, sleep(Duration::from_secs(100))).unwrap();
    let ex2 = ex.clone();
    let waiter = tokio::spawn(async move { ex2.submit_wait(0, async {}).await.map(|_| ()) });
    tokio::task::yield_now().await;
    let ex3 = ex.clone();
    tokio::spawn(async move { ex3.shutdown(Duration::from_secs(50)).await });
    let start = tokio::time::Instant::now();
    assert_eq!(waiter.await.unwrap(), Err(SubmitError::Closed));
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_runtime_that_drops_running_tasks_frees_their_slots() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let ex = rt.block_on(async { executor(ExecutorConfig::default().max_running(1)) });
    let handle = {
        let _in_runtime = rt.enter();
        ex.submit(0, sleep(Duration::from_secs(1000))).unwrap()
    };
    // Let it start.
    rt.block_on(tokio::task::yield_now());
    // The runtime goes away with the task still running (never finished).
    drop(rt);
    let snap = ex.snapshot();
    assert_eq!(snap.running, 0, "the slot was given back");
    assert_eq!(snap.counters.cancelled, 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(handle), Err(TaskError::Cancelled));
}
