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
