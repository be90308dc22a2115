//! loom: the core's bulkhead under racing submissions and completions,
//! and a request run in place racing its grant.

use std::sync::Arc;
use std::time::Instant;

use buttress_core::sync::loom_model;

use crate::core::{Bounds, Core, Now};
use crate::history::{Status, TaskRecord};
use crate::in_place::{Ticket, WaiterCell};
use crate::worker::Meta;

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
fn task_0_running() -> (Arc<Core<u32, ()>>, Instant, u64, usize) {
    let core = Arc::new(core());
    let now = Instant::now();
    let (first, _, started) = core.submit(0, 0, now, true, |_| ()).expect("room");
    let mut starts = started.starts.into_iter();
    let slot = starts.next().expect("task 0").slot;
    assert!(starts.next().is_none());
    (core, now, first, slot)
}

type Started = loom::thread::JoinHandle<Vec<u32>>;

/// Submits job `job` at `priority` on a new thread; joins to the jobs
/// that submission started.
fn submit_on_a_thread(core: &Arc<Core<u32, ()>>, priority: u8, job: u32, now: Instant) -> Started {
    let core = core.clone();
    loom::thread::spawn(move || {
        let (_, _, s) = core.submit(priority, job, now, true, |_| ()).expect("room");
        s.starts.into_iter().map(|s| s.entry.job).collect()
    })
}

/// Finishes task `id` in `slot` on a new thread; joins to the jobs that
/// finish started.
fn finish_on_a_thread(core: &Arc<Core<u32, ()>>, slot: usize, id: u64, now: Instant) -> Started {
    let core = core.clone();
    loom::thread::spawn(move || {
        let (outcome, _) = core.finish(slot, done(id, now), now, |_| ());
        outcome.starts.into_iter().map(|s| s.entry.job).collect()
    })
}

#[test]
fn loom_racing_submits_and_a_finish_start_every_task_once_within_the_bulkhead() {
    loom_model(|| {
        let (core, now, first, slot) = task_0_running();
        let submitter = submit_on_a_thread(&core, 1, 1, now);
        let finisher = finish_on_a_thread(&core, slot, first, now);
        let mut started = submitter.join().expect("submitter");
        started.extend(finisher.join().expect("finisher"));
        // Task 1 starts exactly once, whichever thread saw room.
        assert_eq!(started, vec![1]);
        assert_eq!(core.snapshot().running, 1);
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
        let queued = submit_on_a_thread(&core, 0, 2, now);
        let finisher = finish_on_a_thread(&core, slot, first, now);
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
        assert_eq!(core.snapshot().running, 1);
        assert_eq!(core.snapshot().queued, usize::from(started_at_once));
    });
}

/// A request run in place, queued behind task 0 in a core of one slot:
/// the core, the time, task 0's id and slot, the request's id and cell.
fn request_queued_behind_task_0() -> (
    Arc<Core<Ticket, ()>>,
    Instant,
    (u64, usize),
    (u64, Arc<WaiterCell>),
) {
    let core = Arc::new(Core::new(
        Bounds {
            max_queued: 10,
            max_queued_per_priority: None,
            max_running: 1,
            history: 4,
        },
        None,
    ));
    let now = Instant::now();
    let Now::Started { id, slot } = core.start_now(()) else {
        panic!("a free slot");
    };
    let cell = Arc::new(WaiterCell::queued());
    let ticket = Ticket::new(cell.clone(), 0, now);
    let (request, _, started) = core.submit(0, ticket, now, true, |_| ()).expect("room");
    assert!(started.starts.into_iter().next().is_none());
    (core, now, (id, slot), (request, cell))
}

#[test]
fn loom_a_grant_racing_its_request_going_away_gives_the_slot_back_exactly_once() {
    loom_model(|| {
        let (core, now, (task, slot), (request, cell)) = request_queued_behind_task_0();
        // Task 0 finishes: the queue gives its slot to the request, as
        // `dispatch` does; a grant its future is no longer there to take
        // is given back.
        let c = core.clone();
        let finisher = loom::thread::spawn(move || {
            let (outcome, _) = c.finish(slot, done(task, now), now, |_| ());
            let mut gave_back = 0;
            for start in outcome.starts {
                let meta = Meta {
                    slot: start.slot,
                    id: start.entry.id,
                    priority: 0,
                    queued_at: now,
                    started: now,
                };
                if !start.entry.job.grant(meta) {
                    let _ = c.finish(meta.slot, done(meta.id, now), now, |_| ());
                    gave_back += 1;
                }
            }
            gave_back
        });
        // Meanwhile the request's future goes away, as `leave_queue` does:
        // out of the queue, or else the slot it was granted goes back.
        let gave_back_here = if core.cancel_queued(0, request, now).is_some() {
            0
        } else if let Some(meta) = cell.abandon() {
            let _ = core.finish(meta.slot, done(meta.id, now), now, |_| ());
            1
        } else {
            0
        };
        let gave_back_there = finisher.join().expect("finisher");
        // Whatever the interleaving: at most one side gave the slot back,
        // and nothing is left running or queued.
        assert!(gave_back_here + gave_back_there <= 1);
        assert_eq!(core.snapshot().running, 0);
        assert!(core.is_idle());
    });
}
