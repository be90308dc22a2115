//! loom: the core's bulkhead under racing submissions and completions.

use std::time::Instant;

use buttress_core::sync::loom_model;

use crate::core::{Bounds, Core, Now};
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

/// A core with its one slot taken by task 0: the core, the time, task 0's
/// id and slot.
fn task_0_running() -> (std::sync::Arc<Core<u32, ()>>, Instant, u64, usize) {
    let core = std::sync::Arc::new(core());
    let now = Instant::now();
    let (first, _, started) = core.submit(0, 0, now, true, |_| ()).expect("room");
    assert_eq!(started.starts.len(), 1);
    let slot = started.starts.into_iter().next().expect("task 0").slot;
    (core, now, first, slot)
}

#[test]
fn loom_racing_submits_and_a_finish_start_every_task_once_within_the_bulkhead() {
    loom_model(|| {
        let (core, now, first, slot) = task_0_running();
        let c1 = core.clone();
        let submitter = loom::thread::spawn(move || {
            let (_, _, s) = c1.submit(1, 1, now, true, |_| ()).expect("room");
            s.starts.into_iter().map(|s| s.entry.id).collect::<Vec<_>>()
        });
        let c2 = core.clone();
        let finisher = loom::thread::spawn(move || {
            c2.finish(slot, done(first, now), now, |_| ())
                .0
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

#[test]
fn loom_a_start_at_submission_racing_a_finish_and_a_queued_submit_keeps_the_bulkhead() {
    loom_model(|| {
        let (core, now, first, slot) = task_0_running();
        let c1 = core.clone();
        let at_once = loom::thread::spawn(move || match c1.start_now(()) {
            Now::Started { .. } => true,
            Now::Queue => false,
            Now::Closed => panic!("closed"),
        });
        let c2 = core.clone();
        let queued = loom::thread::spawn(move || {
            let (_, _, s) = c2.submit(0, 2, now, true, |_| ()).expect("room");
            s.starts
                .into_iter()
                .map(|s| s.entry.job)
                .collect::<Vec<_>>()
        });
        let c3 = core.clone();
        let finisher = loom::thread::spawn(move || {
            c3.finish(slot, done(first, now), now, |_| ())
                .0
                .starts
                .into_iter()
                .map(|s| s.entry.job)
                .collect::<Vec<_>>()
        });
        let started_at_once = at_once.join().expect("at once");
        let mut from_queue = queued.join().expect("queued");
        from_queue.extend(finisher.join().expect("finisher"));
        // One slot, and task 0 ended: exactly one of the two new tasks
        // runs. A task started at submission takes it only when nothing
        // was queued; then the queued one waits.
        assert_eq!(
            usize::from(started_at_once) + from_queue.len(),
            1,
            "at once: {started_at_once}, from the queue: {from_queue:?}"
        );
        assert_eq!(core.running_count(), 1);
        assert_eq!(core.snapshot().queued, usize::from(started_at_once));
    });
}
