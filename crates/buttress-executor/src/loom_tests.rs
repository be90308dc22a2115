//! loom: the core's bulkhead under racing submissions and completions.

use std::time::Instant;

use buttress_core::sync::loom_model;

use crate::core::{Bounds, Core};
use crate::history::{Status, TaskRecord};

fn core() -> Core<u32, ()> {
    Core::new(
        Bounds {
            max_queued: 10,
            max_queued_per_priority: None,
            max_running: 1,
            history: 4,
        },
        None,
    )
}

fn done(id: u64, now: Instant) -> TaskRecord {
    TaskRecord {
        id,
        priority: 0,
        status: Status::Ok,
        queued_at: now,
        started_at: Some(now),
        finished_at: now,
    }
}

#[test]
fn loom_racing_submits_and_a_finish_start_every_task_once_within_the_bulkhead() {
    loom_model(|| {
        let core = std::sync::Arc::new(core());
        let now = Instant::now();
        // Task 0 runs.
        let (first, _, started) = core.submit(0, 0, now, true, |_| ()).expect("room");
        assert_eq!(started.starts.len(), 1);
        let c1 = core.clone();
        let submitter = loom::thread::spawn(move || {
            let (_, _, s) = c1.submit(1, 1, now, true, |_| ()).expect("room");
            s.starts.into_iter().map(|s| s.entry.id).collect::<Vec<_>>()
        });
        let c2 = core.clone();
        let finisher = loom::thread::spawn(move || {
            c2.finish(done(first, now), now, |_| ())
                .starts
                .into_iter()
                .map(|s| s.entry.id)
                .collect::<Vec<_>>()
        });
        let mut started: Vec<u64> = submitter.join().expect("submitter");
        started.extend(finisher.join().expect("finisher"));
        // Task 1 starts exactly once, whichever thread saw room.
        assert_eq!(started, vec![1]);
        assert_eq!(core.running_count(), 1);
        assert!(!core.is_idle());
    });
}
