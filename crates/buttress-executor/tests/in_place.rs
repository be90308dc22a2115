//! The layer run in place (`ExecutorLayer::in_place`), under paused tokio
//! time: the same bulkhead, queue, priorities, refusals, timeout, history
//! and shutdown as tasks, in the caller's task.

use std::cell::Cell;
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use buttress_executor::{
    BoxError, Executor, ExecutorConfig, ExecutorError, ExecutorLayer, Rejection, RejectionKind,
    Status, SubmitError, TaskError,
};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep};
use tower::{Layer, Service, ServiceExt, service_fn};

fn executor(config: ExecutorConfig) -> Executor {
    Executor::new("in-place", config).expect("valid")
}

/// The executor's refusal inside a failed call.
fn refusal(e: &BoxError) -> ExecutorError {
    *e.downcast_ref::<ExecutorError>()
        .expect("an executor error")
}

/// Polls `f` once, with a waker that does nothing.
fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(Waker::noop()))
}

/// Tasks alive on this runtime (the executor's workers among them).
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// A service whose request `(name, priority, gated)` records `name` when
/// it starts, and waits for `gate` first when `gated`.
type Order = Arc<Mutex<Vec<&'static str>>>;

fn recording(
    order: Order,
    gate: Arc<Notify>,
) -> impl Service<
    (&'static str, u8, bool),
    Response = &'static str,
    Error = std::io::Error,
    Future: Send,
> + Clone
+ Send
+ 'static {
    service_fn(move |(name, _, gated): (&'static str, u8, bool)| {
        let (order, gate) = (order.clone(), gate.clone());
        async move {
            order.lock().expect("order").push(name);
            if gated {
                gate.notified().await;
            }
            Ok::<_, std::io::Error>(name)
        }
    })
}

#[tokio::test(start_paused = true)]
async fn in_place_requests_run_in_the_callers_task_by_priority_and_are_shed_when_full() {
    let ex = executor(ExecutorConfig::default().max_running(1).max_queued(2));
    let order: Order = Arc::default();
    let gate = Arc::new(Notify::new());
    let mut svc = ExecutorLayer::new(ex.clone(), |req: &(&str, u8, bool)| req.1)
        .in_place()
        .layer(recording(order.clone(), gate.clone()));
    let before = alive_tasks();

    let mut blocker = Box::pin(svc.call(("blocker", 0, true)));
    assert!(poll_once(blocker.as_mut()).is_pending());
    assert_eq!(*order.lock().unwrap(), vec!["blocker"]);
    // Nothing was spawned: the request runs in this test's own task.
    assert_eq!(alive_tasks(), before);

    let mut a = Box::pin(svc.call(("a", 1, false)));
    let mut b = Box::pin(svc.call(("b", 5, false)));
    let c = svc.call(("c", 5, false));
    // The queue holds two: the third is shed at once, naming its priority.
    let shed = c.await.unwrap_err();
    let full = *refusal(&shed).queue_full().expect("queue full");
    assert_eq!((full.priority(), full.depth(), full.total()), (5, 1, 2));
    assert_eq!(refusal(&shed).kind(), RejectionKind::QueueFull);
    let snap = ex.snapshot();
    assert_eq!((snap.running, snap.queued), (1, 2));
    assert_eq!(snap.queued_by_priority, vec![(1, 1), (5, 1)]);
    assert!(poll_once(a.as_mut()).is_pending());
    assert!(poll_once(b.as_mut()).is_pending());

    // The slot frees: priority 5 goes before priority 1.
    gate.notify_one();
    assert_eq!(blocker.await.unwrap(), "blocker");
    assert_eq!(b.await.unwrap(), "b");
    assert_eq!(a.await.unwrap(), "a");
    assert_eq!(*order.lock().unwrap(), vec!["blocker", "b", "a"]);
    let snap = ex.snapshot();
    assert_eq!((snap.running, snap.queued), (0, 0));
    assert_eq!(
        (
            snap.counters.submitted,
            snap.counters.rejected,
            snap.counters.ok
        ),
        (3, 1, 3)
    );
    // In history like tasks, ids in submission order.
    let ids: Vec<u64> = snap.history.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![0, 2, 1]);
}

#[tokio::test(start_paused = true)]
async fn in_place_requests_and_tasks_share_one_bulkhead_and_one_queue() {
    let ex = executor(ExecutorConfig::default().max_running(2).max_queued(10));
    let order: Order = Arc::default();
    let gate = Arc::new(Notify::new());
    let svc = ExecutorLayer::new(ex.clone(), |req: &(&str, u8, bool)| req.1)
        .in_place()
        .layer(recording(order.clone(), gate.clone()));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let task = |name: &'static str, priority: u8| {
        let (order, running, peak) = (order.clone(), running.clone(), peak.clone());
        ex.submit(priority, async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            order.lock().unwrap().push(name);
            sleep(Duration::from_secs(1)).await;
            running.fetch_sub(1, Ordering::SeqCst);
        })
        .unwrap()
    };
    // One slot to a task, one to a request in place.
    let t1 = task("t1", 0);
    let r1 = tokio::spawn(svc.clone().oneshot(("r1", 0, true)));
    tokio::task::yield_now().await;
    assert_eq!(ex.snapshot().running, 2);
    // Both kinds wait in one queue, in one order.
    let r2 = tokio::spawn(svc.clone().oneshot(("r2", 3, false)));
    tokio::task::yield_now().await;
    let t2 = task("t2", 9);
    let t3 = task("t3", 3);
    let r3 = tokio::spawn(svc.clone().oneshot(("r3", 9, false)));
    tokio::task::yield_now().await;
    assert_eq!(ex.snapshot().queued, 4);
    // t1 ends after a second, r1 when the gate opens.
    t1.await.unwrap();
    gate.notify_one();
    r1.await.unwrap().unwrap();
    for t in [t2, t3] {
        t.await.unwrap();
    }
    for r in [r2, r3] {
        r.await.unwrap().unwrap();
    }
    // Priority 9 (first t2, then r3), then priority 3 in arrival order.
    assert_eq!(
        *order.lock().unwrap(),
        vec!["t1", "r1", "t2", "r3", "r2", "t3"]
    );
    assert_eq!(ex.snapshot().counters.ok, 6);
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn the_timeout_panics_and_errors_are_answered_like_a_tasks() {
    let ex = executor(
        ExecutorConfig::default()
            .max_running(1)
            .timeout(Some(Duration::from_secs(1))),
    );
    let layer = ExecutorLayer::new(ex.clone(), |_: &u32| 0).in_place();
    let svc = layer.layer(service_fn(|req: u32| async move {
        match req {
            0 => sleep(Duration::from_secs(10)).await,
            1 => panic!("boom"),
            2 => return Err(std::io::Error::other("upstream down")),
            _ => {}
        }
        Ok::<_, std::io::Error>(req)
    }));
    let started = Instant::now();
    let slow = svc.clone().oneshot(0).await.unwrap_err();
    assert_eq!(refusal(&slow), ExecutorError::Task(TaskError::TimedOut));
    assert_eq!(refusal(&slow).kind(), RejectionKind::TimedOut);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    let boom = svc.clone().oneshot(1).await.unwrap_err();
    assert_eq!(refusal(&boom), ExecutorError::Task(TaskError::Panicked));
    // The inner service's own error passes through as itself.
    let failed = svc.clone().oneshot(2).await.unwrap_err();
    assert!(failed.downcast_ref::<ExecutorError>().is_none());
    assert_eq!(failed.to_string(), "upstream down");
    assert_eq!(svc.clone().oneshot(3).await.unwrap(), 3);

    let snap = ex.snapshot();
    let statuses: Vec<Status> = snap.history.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![
            Status::TimedOut,
            Status::Panicked,
            Status::Failed,
            Status::Ok
        ]
    );
    assert_eq!(snap.history[0].ran(), Duration::from_secs(1));
    assert_eq!(snap.running, 0, "every slot came back");
}

#[tokio::test(start_paused = true)]
async fn dropping_a_request_gives_its_slot_back_or_takes_it_out_of_the_queue_at_once() {
    let ex = executor(ExecutorConfig::default().max_running(1).max_queued(5));
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let mut svc = ExecutorLayer::new(ex.clone(), |_: &u32| 0)
        .in_place()
        .layer(service_fn(move |req: u32| {
            c.fetch_add(1, Ordering::SeqCst);
            async move {
                if req == 0 {
                    std::future::pending::<()>().await;
                }
                Ok::<_, std::io::Error>(req)
            }
        }));

    // A running request, dropped: its slot comes back at once.
    let mut running = Box::pin(svc.call(0));
    assert!(poll_once(running.as_mut()).is_pending());
    let mut queued = Box::pin(svc.call(1));
    assert!(poll_once(queued.as_mut()).is_pending());
    assert_eq!((ex.snapshot().running, ex.snapshot().queued), (1, 1));
    drop(running);
    // The queue gave the slot to the next request: granted, not yet run.
    assert_eq!((ex.snapshot().running, ex.snapshot().queued), (1, 0));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Dropped before it ever ran: the slot comes back again.
    drop(queued);
    assert_eq!((ex.snapshot().running, ex.snapshot().queued), (0, 0));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "it never ran");

    // A queued request, dropped: out of the queue at once.
    let mut first = Box::pin(svc.call(0));
    assert!(poll_once(first.as_mut()).is_pending());
    let waiting = svc.call(7);
    assert_eq!(ex.snapshot().queued, 1);
    drop(waiting);
    assert_eq!(ex.snapshot().queued, 0);
    drop(first);
    let snap = ex.snapshot();
    assert_eq!(snap.running, 0);
    assert_eq!(snap.counters.cancelled, 4);
    let statuses: Vec<Status> = snap.history.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|s| *s == Status::Cancelled),
        "{statuses:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_refuses_new_requests_and_drains_those_in_place() {
    let ex = executor(ExecutorConfig::default().max_running(1));
    let svc = ExecutorLayer::new(ex.clone(), |_: &u64| 0)
        .in_place()
        .layer(service_fn(|secs: u64| async move {
            sleep(Duration::from_secs(secs)).await;
            Ok::<_, std::io::Error>(secs)
        }));
    let running = tokio::spawn(svc.clone().oneshot(1));
    let queued = tokio::spawn(svc.clone().oneshot(2));
    tokio::task::yield_now().await;
    let started = Instant::now();
    let report = ex.shutdown(Duration::from_secs(5)).await;
    // Both ran to the end: a shutdown waits for requests in place.
    assert!(report.drained);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(running.await.unwrap().unwrap(), 1);
    assert_eq!(queued.await.unwrap().unwrap(), 2);
    let refused = svc.clone().oneshot(0).await.unwrap_err();
    assert_eq!(
        refusal(&refused),
        ExecutorError::Submit(SubmitError::Closed)
    );
    assert_eq!(refusal(&refused).kind(), RejectionKind::ShuttingDown);
}

#[tokio::test(start_paused = true)]
async fn at_the_deadline_a_shutdown_takes_the_slots_back_and_wakes_the_requests() {
    let ex = executor(ExecutorConfig::default().max_running(2));
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let mut svc = ExecutorLayer::new(ex.clone(), |_: &u64| 0)
        .in_place()
        .layer(service_fn(move |secs: u64| {
            c.fetch_add(1, Ordering::SeqCst);
            async move {
                sleep(Duration::from_secs(secs)).await;
                Ok::<_, std::io::Error>(secs)
            }
        }));
    // Running, and waiting on its inner service.
    let stuck = tokio::spawn(svc.clone().oneshot(100));
    tokio::task::yield_now().await;
    // Holding a slot, never polled (its caller is busy elsewhere).
    let mut never_polled = Box::pin(svc.call(100));
    // Queued behind them.
    let queued = tokio::spawn(svc.clone().oneshot(1));
    tokio::task::yield_now().await;
    assert_eq!((ex.snapshot().running, ex.snapshot().queued), (2, 1));

    let started = Instant::now();
    let report = ex.shutdown(Duration::from_secs(5)).await;
    // The shutdown does not wait for callers it cannot stop.
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(
        (
            report.cancelled_running,
            report.dropped_queued,
            report.drained
        ),
        (2, 1, false)
    );
    let snap = ex.snapshot();
    assert_eq!(
        (snap.running, snap.queued, snap.counters.cancelled),
        (0, 0, 3)
    );
    // Woken, each answers that the executor is shutting down.
    for answer in [stuck.await.unwrap(), queued.await.unwrap()] {
        let e = answer.unwrap_err();
        assert_eq!(refusal(&e), ExecutorError::Task(TaskError::Cancelled));
        assert_eq!(refusal(&e).kind(), RejectionKind::ShuttingDown);
    }
    // Polled after the deadline, the other never starts its work.
    let late = poll_once(never_polled.as_mut());
    let Poll::Ready(Err(e)) = late else {
        panic!("answered at once");
    };
    assert_eq!(refusal(&e).kind(), RejectionKind::ShuttingDown);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "only the first ever called in"
    );
    // Recorded once each.
    assert_eq!(ex.snapshot().counters.cancelled, 3);
    assert_eq!(ex.snapshot().history.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_service_that_is_not_send_runs_in_place() {
    let ex = executor(ExecutorConfig::default().max_running(1));
    // `Rc`: neither `Send` nor usable by a task of the executor.
    let seen = Rc::new(Cell::new(0));
    let s = seen.clone();
    let svc = ExecutorLayer::new(ex, |_: &u32| 0)
        .in_place()
        .layer(service_fn(move |req: u32| {
            s.set(s.get() + req);
            let local = Rc::new(req);
            async move {
                tokio::task::yield_now().await;
                Ok::<_, std::io::Error>(*local)
            }
        }));
    assert_eq!(svc.clone().oneshot(4).await.unwrap(), 4);
    assert_eq!(svc.oneshot(3).await.unwrap(), 3);
    assert_eq!(seen.get(), 7);
}

#[test]
fn a_runtime_that_goes_away_gives_a_queued_request_its_slot() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let ex = rt.block_on(async { executor(ExecutorConfig::default().max_running(1)) });
    let svc = ExecutorLayer::new(ex.clone(), |_: &u32| 0)
        .in_place()
        .layer(service_fn(|req: u32| async move {
            Ok::<_, std::io::Error>(req)
        }));
    let task = {
        let _in_runtime = rt.enter();
        ex.submit(0, sleep(Duration::from_secs(1000))).unwrap()
    };
    rt.block_on(tokio::task::yield_now());
    // Queued behind the task, whose worker the runtime drops.
    let mut request = Box::pin(svc.clone().oneshot(7));
    assert!(poll_once(request.as_mut()).is_pending());
    assert_eq!(ex.snapshot().queued, 1);
    drop(rt);
    // The slot went to the request, which runs in its caller's task.
    let snap = ex.snapshot();
    assert_eq!((snap.running, snap.queued), (1, 0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(request).unwrap(), 7);
    assert_eq!(rt.block_on(task), Err(TaskError::Cancelled));
    assert_eq!(ex.snapshot().running, 0);
}

#[cfg(feature = "http")]
#[tokio::test(start_paused = true)]
async fn with_http_the_refusals_are_statuses() {
    use http::{Request, Response, StatusCode};

    let ex = executor(
        ExecutorConfig::default()
            .max_running(1)
            .max_queued(0)
            .timeout(Some(Duration::from_secs(1))),
    );
    let svc = ExecutorLayer::new(ex.clone(), |_: &Request<u64>| 0)
        .in_place()
        .http()
        .layer(service_fn(|req: Request<u64>| async move {
            sleep(Duration::from_secs(*req.body())).await;
            Ok::<_, std::convert::Infallible>(Response::new(()))
        }));
    let busy = tokio::spawn(svc.clone().oneshot(Request::new(100)));
    tokio::task::yield_now().await;
    // Full (no queue at all), then timed out.
    let full = svc.clone().oneshot(Request::new(0)).await.unwrap();
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(full.extensions().get::<ExecutorError>().is_some());
    assert_eq!(
        busy.await.unwrap().unwrap().status(),
        StatusCode::GATEWAY_TIMEOUT
    );
    let fine = svc.oneshot(Request::new(0)).await.unwrap();
    assert_eq!(fine.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_for_its_slot_wakes_when_granted() {
    let ex = executor(ExecutorConfig::default().max_running(1));
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    let svc = ExecutorLayer::new(ex.clone(), |_: &u32| 0)
        .in_place()
        .layer(service_fn(move |req: u32| {
            let g = g.clone();
            async move {
                if req == 0 {
                    g.notified().await;
                }
                Ok::<_, std::io::Error>(req)
            }
        }));
    let first = tokio::spawn(svc.clone().oneshot(0));
    tokio::task::yield_now().await;
    let second = svc.clone().oneshot(1);
    let mut second = pin!(second);
    assert!(poll_once(second.as_mut()).is_pending());
    // Another task frees the slot: the waiting request is woken by it
    // (the test's own task awaits it with a real waker).
    let opener = tokio::spawn(async move {
        sleep(Duration::from_secs(1)).await;
        gate.notify_one();
    });
    assert_eq!(second.await.unwrap(), 1);
    first.await.unwrap().unwrap();
    opener.await.unwrap();
}

#[test]
fn the_in_place_service_is_send_and_sync_and_its_future_is_send() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _in_runtime = rt.enter();
    let layer = ExecutorLayer::new(executor(ExecutorConfig::default()), |_: &u32| 0).in_place();
    send_sync(&layer);
    let mut svc = layer.layer(service_fn(|req: u32| async move {
        tokio::task::yield_now().await;
        Ok::<_, std::io::Error>(req)
    }));
    send_sync(&svc);
    // Held (a free slot), queued and refused futures are one type.
    let held = svc.call(1);
    send(&held);
    assert_eq!(rt.block_on(held).unwrap(), 1);
}
