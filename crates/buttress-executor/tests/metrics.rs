//! The executor's metrics agree with what happened, across threads.

use std::time::Duration;

use buttress_executor::{Executor, ExecutorConfig};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[test]
fn counters_and_the_running_gauge_add_up_after_many_tasks_on_two_threads() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime");
    // The handles are made under the recorder and keep reporting to it.
    let ex = metrics::with_local_recorder(&recorder, || {
        let _in_runtime = rt.enter();
        Executor::new(
            "metered",
            ExecutorConfig::default().max_running(4).max_queued(20_000),
        )
        .expect("valid")
    });
    let total = 10_000u64;
    rt.block_on(async {
        let handles: Vec<_> = (0..total)
            .map(|i| ex.submit(0, async move { i }).expect("room"))
            .collect();
        for h in handles {
            h.await.expect("ran");
        }
        assert!(ex.shutdown(Duration::from_secs(60)).await.drained);
    });
    let mut counters = std::collections::HashMap::new();
    let (mut running, mut waits, mut runs) = (None, 0, 0);
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let name = key.key().name().to_string();
        match value {
            DebugValue::Counter(c) => {
                counters.insert(name, c);
            }
            DebugValue::Gauge(g) if name == "buttress_executor_running" => {
                running = Some(g.into_inner());
            }
            DebugValue::Histogram(h) if name == "buttress_executor_wait_seconds" => {
                waits = h.len();
            }
            DebugValue::Histogram(h) if name == "buttress_executor_run_seconds" => {
                runs = h.len();
            }
            _ => {}
        }
    }
    assert_eq!(
        counters.get("buttress_executor_submitted_total"),
        Some(&total)
    );
    assert_eq!(
        counters.get("buttress_executor_completed_total"),
        Some(&total)
    );
    assert_eq!(running, Some(0.0), "nothing runs once drained");
    assert_eq!((waits, runs), (total as usize, total as usize));
}

#[test]
fn in_place_requests_are_counted_like_tasks_on_two_threads() {
    use buttress_executor::ExecutorLayer;
    use tower::{Layer, ServiceExt, service_fn};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime");
    let ex = metrics::with_local_recorder(&recorder, || {
        let _in_runtime = rt.enter();
        Executor::new(
            "in-place",
            ExecutorConfig::default().max_running(4).max_queued(100),
        )
        .expect("valid")
    });
    // 16 callers, 4 slots: most requests wait their turn in the queue.
    let svc = ExecutorLayer::new(ex.clone(), |req: &u64| (req % 3) as u8)
        .in_place()
        .layer(service_fn(|req: u64| async move {
            tokio::task::yield_now().await;
            Ok::<_, std::io::Error>(req)
        }));
    let (callers, each) = (16u64, 625u64);
    rt.block_on(async {
        let handles: Vec<_> = (0..callers)
            .map(|c| {
                let svc = svc.clone();
                tokio::spawn(async move {
                    for i in 0..each {
                        let req = c * each + i;
                        assert_eq!(svc.clone().oneshot(req).await.expect("answered"), req);
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.expect("caller");
        }
        assert!(ex.shutdown(Duration::from_secs(60)).await.drained);
    });
    let total = callers * each;
    let snap = ex.snapshot();
    assert_eq!((snap.counters.submitted, snap.counters.ok), (total, total));
    let mut counters = std::collections::HashMap::new();
    let (mut running, mut waits, mut runs, mut waited) = (None, 0, 0, 0);
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let name = key.key().name().to_string();
        match value {
            DebugValue::Counter(c) => {
                counters.insert(name, c);
            }
            DebugValue::Gauge(g) if name == "buttress_executor_running" => {
                running = Some(g.into_inner());
            }
            DebugValue::Histogram(h) if name == "buttress_executor_wait_seconds" => {
                waits = h.len();
                waited = h.iter().filter(|w| w.into_inner() > 0.0).count();
            }
            DebugValue::Histogram(h) if name == "buttress_executor_run_seconds" => {
                runs = h.len();
            }
            _ => {}
        }
    }
    assert_eq!(
        counters.get("buttress_executor_submitted_total"),
        Some(&total)
    );
    assert_eq!(
        counters.get("buttress_executor_completed_total"),
        Some(&total)
    );
    assert_eq!(counters.get("buttress_executor_rejected_total"), Some(&0));
    assert_eq!(running, Some(0.0), "every slot came back");
    assert_eq!((waits, runs), (total as usize, total as usize));
    assert!(waited > 0, "some requests waited in the queue");
}
