//! The synchronous core: the queue, the bulkhead on running tasks, the
//! counters and the history, under one lock. Every operation returns the
//! tasks that may start now; the async side only spawns them. No clock
//! reads, no tokio: checked with loom.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use buttress_core::sync::{AtomicU64, Mutex, Ordering, Padded};

use crate::error::QueueFull;
use crate::history::{Counters, Status, TaskRecord};
use crate::queue::{Entry, Queue};

/// The bounds of an executor's core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) max_queued: usize,
    pub(crate) max_queued_per_priority: Option<usize>,
    pub(crate) max_running: usize,
    pub(crate) history: usize,
}

/// Why a submission was not queued.
#[derive(Debug)]
pub(crate) enum Refused<J> {
    Full(QueueFull, J),
    Closed(J),
}

#[derive(Debug)]
struct State<J, C> {
    /// Under the lock with what they bound, so a change applies between
    /// two decisions, never within one.
    bounds: Bounds,
    queue: Queue<J>,
    next_id: u64,
    running: Running<C>,
    accepting: bool,
    history: VecDeque<TaskRecord>,
    counters: Counters,
}

#[derive(Debug)]
pub(crate) struct Core<J, C> {
    /// On cache lines of its own: every submit and finish writes it, from
    /// any thread, and nothing else should share its lines.
    state: Padded<Mutex<State<J, C>>>,
    /// The number of queued tasks, stored under the lock after every
    /// change and read without it: whether a new task may be worth
    /// trying to start at once.
    queued_hint: AtomicU64,
}

/// What [`Core::start_now`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Now {
    /// The task runs at once: its id and its slot.
    Started { id: u64, slot: usize },
    /// Tasks are queued, or every slot is taken: queue it.
    Queue,
    /// Not accepting.
    Closed,
}

/// The running tasks, each in a slot it keeps until it finishes: a finish
/// frees its slot without a search, and the freed slot (warm in the
/// cache) is the next one taken.
#[derive(Debug)]
struct Running<C> {
    slots: Vec<Option<(u64, C)>>,
    free: Vec<usize>,
    len: usize,
}

impl<C> Default for Running<C> {
    fn default() -> Self {
        Running {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<C: Clone> Running<C> {
    fn insert(&mut self, id: u64, cancel: C) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some((id, cancel));
                slot
            }
            None => {
                self.slots.push(Some((id, cancel)));
                self.slots.len() - 1
            }
        }
    }

    /// Frees `slot` if task `id` holds it; returns its canceller, to be
    /// dropped outside the lock (it may be the last reference to what the
    /// task left behind).
    fn remove(&mut self, slot: usize, id: u64) -> Option<C> {
        let held = self.slots.get_mut(slot)?;
        if held.as_ref().is_none_or(|(i, _)| *i != id) {
            return None;
        }
        let (_, cancel) = held.take()?;
        self.free.push(slot);
        self.len -= 1;
        Some(cancel)
    }

    fn cancellers(&self) -> impl Iterator<Item = C> + '_ {
        self.slots.iter().flatten().map(|(_, c)| c.clone())
    }
}

/// A task to start now, with what its start needs.
#[derive(Debug)]
pub(crate) struct Start<J> {
    /// Its running slot, given back to [`Core::finish`].
    pub(crate) slot: usize,
    pub(crate) entry: Entry<J>,
    /// Tasks still queued at its priority once it left.
    pub(crate) depth: usize,
}

/// What an operation leaves: the tasks to start.
#[derive(Debug)]
pub(crate) struct Outcome<J> {
    pub(crate) starts: Starts<J>,
}

/// The tasks to start: almost always none or one, kept without an
/// allocation.
#[derive(Debug)]
pub(crate) struct Starts<J> {
    first: Option<Start<J>>,
    rest: Vec<Start<J>>,
}

impl<J> Starts<J> {
    fn push(&mut self, start: Start<J>) {
        if self.first.is_none() {
            self.first = Some(start);
        } else {
            self.rest.push(start);
        }
    }
}

impl<J> IntoIterator for Starts<J> {
    type Item = Start<J>;
    type IntoIter = std::iter::Chain<std::option::IntoIter<Start<J>>, std::vec::IntoIter<Start<J>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.rest)
    }
}

impl<J, C> Core<J, C> {
    pub(crate) fn new(bounds: Bounds, aging: Option<Duration>) -> Self {
        Core {
            state: Padded(Mutex::new(State {
                bounds,
                queue: Queue::new(aging),
                next_id: 0,
                running: Running::default(),
                accepting: true,
                history: VecDeque::new(),
                counters: Counters::default(),
            })),
            queued_hint: AtomicU64::new(0),
        }
    }

    /// Whether tasks were queued lately (read without the lock).
    pub(crate) fn maybe_queued(&self) -> bool {
        self.queued_hint.load(Ordering::Relaxed) > 0
    }

    fn publish(&self, s: &State<J, C>) {
        self.queued_hint
            .store(s.queue.len() as u64, Ordering::Relaxed);
    }

    /// Starts a task at once when nothing is queued and a slot is free,
    /// without queueing it: what the queue would do, in one step. `cancel`
    /// cancels it while it runs.
    pub(crate) fn start_now(&self, cancel: C) -> Now
    where
        C: Clone,
    {
        let mut s = self.state.0.lock();
        if !s.accepting {
            return Now::Closed;
        }
        if s.queue.len() > 0 || s.running.len >= s.bounds.max_running {
            return Now::Queue;
        }
        let id = s.next_id;
        s.next_id += 1;
        s.counters.submitted += 1;
        let slot = s.running.insert(id, cancel);
        Now::Started { id, slot }
    }

    /// Queues a job. On success, its id and the tasks to start now (which
    /// may include it); `cancel` gives what cancels a job once running.
    /// A refusal is counted when `count_refusal` (not for the retries of
    /// a submission that waits for space).
    pub(crate) fn submit(
        &self,
        priority: u8,
        job: J,
        now: Instant,
        count_refusal: bool,
        cancel: impl FnMut(&mut J) -> C,
    ) -> Result<(u64, usize, Outcome<J>), Refused<J>>
    where
        C: Clone,
    {
        let mut s = self.state.0.lock();
        if !s.accepting {
            return Err(Refused::Closed(job));
        }
        let depth = s.queue.depth(priority);
        let level_full = s
            .bounds
            .max_queued_per_priority
            .is_some_and(|max| depth >= max);
        // A task that would start at once is not queued for long: only a
        // full bulkhead makes the queue bounds bite.
        let will_start = s.running.len < s.bounds.max_running && s.queue.len() == 0;
        if !will_start && (s.queue.len() >= s.bounds.max_queued || level_full) {
            if count_refusal {
                s.counters.rejected += 1;
            }
            return Err(Refused::Full(
                QueueFull {
                    priority,
                    depth,
                    total: s.queue.len(),
                },
                job,
            ));
        }
        let id = s.next_id;
        s.next_id += 1;
        s.counters.submitted += 1;
        s.queue.push(Entry {
            id,
            priority,
            enqueued: now,
            job,
        });
        let outcome = Self::startable(&mut s, now, cancel);
        let depth = s.queue.depth(priority);
        self.publish(&s);
        Ok((id, depth, outcome))
    }

    fn startable(
        s: &mut State<J, C>,
        now: Instant,
        mut cancel: impl FnMut(&mut J) -> C,
    ) -> Outcome<J>
    where
        C: Clone,
    {
        let mut starts = Starts {
            first: None,
            rest: Vec::new(),
        };
        while s.running.len < s.bounds.max_running {
            let Some(mut entry) = s.queue.pop(now) else {
                break;
            };
            let slot = s.running.insert(entry.id, cancel(&mut entry.job));
            starts.push(Start {
                slot,
                depth: s.queue.depth(entry.priority),
                entry,
            });
        }
        Outcome { starts }
    }

    /// Puts new bounds and aging in force. Nothing queued or running is
    /// dropped: a smaller queue bound refuses new tasks until the queue
    /// drains below it, fewer running slots start nothing until enough
    /// finish, and more slots start queued tasks now (returned, like
    /// [`Core::finish`]'s). A shorter history forgets its oldest records.
    pub(crate) fn set_bounds(
        &self,
        bounds: Bounds,
        aging: Option<Duration>,
        now: Instant,
        cancel: impl FnMut(&mut J) -> C,
    ) -> Outcome<J>
    where
        C: Clone,
    {
        let mut s = self.state.0.lock();
        s.bounds = bounds;
        s.queue.set_aging(aging);
        while s.history.len() > bounds.history {
            s.history.pop_front();
        }
        let outcome = Self::startable(&mut s, now, cancel);
        self.publish(&s);
        outcome
    }

    /// The task in running `slot` finished as `record` says; returns the
    /// tasks to start now, and the task's canceller (for the caller to
    /// drop outside the lock).
    pub(crate) fn finish(
        &self,
        slot: usize,
        record: TaskRecord,
        now: Instant,
        cancel: impl FnMut(&mut J) -> C,
    ) -> (Outcome<J>, Option<C>)
    where
        C: Clone,
    {
        let mut s = self.state.0.lock();
        let released = s.running.remove(slot, record.id);
        // A task no longer holding its slot was recorded already.
        if released.is_some() {
            Self::record(&mut s, record);
        }
        let outcome = Self::startable(&mut s, now, cancel);
        self.publish(&s);
        (outcome, released)
    }

    fn record(s: &mut State<J, C>, record: TaskRecord) {
        let keep = s.bounds.history;
        s.counters.count(record.status);
        if keep > 0 {
            if s.history.len() == keep {
                s.history.pop_front();
            }
            s.history.push_back(record);
        }
    }

    /// Removes queued task `id`; returns its job and the depth left at its
    /// priority. A running or finished task is not touched.
    pub(crate) fn cancel_queued(&self, priority: u8, id: u64, now: Instant) -> Option<(J, usize)> {
        let mut s = self.state.0.lock();
        let entry = s.queue.remove(priority, id)?;
        let record = TaskRecord {
            id,
            priority,
            status: Status::Cancelled,
            queued_at: entry.enqueued,
            started_at: None,
            finished_at: now,
        };
        Self::record(&mut s, record);
        self.publish(&s);
        Some((entry.job, s.queue.depth(priority)))
    }

    /// Stops accepting; returns whether it was accepting.
    pub(crate) fn close(&self) -> bool {
        std::mem::replace(&mut self.state.0.lock().accepting, false)
    }

    /// Whether nothing is queued or running.
    pub(crate) fn is_idle(&self) -> bool {
        let s = self.state.0.lock();
        s.queue.len() == 0 && s.running.len == 0
    }

    /// Removes every queued task (recorded as cancelled) and returns them
    /// with the cancellers of every running task. A running holder for
    /// which `release` gives a record (one the executor cannot wait for)
    /// leaves its slot now, recorded so; those records come third.
    pub(crate) fn drain(
        &self,
        now: Instant,
        mut release: impl FnMut(u64, &C) -> Option<TaskRecord>,
    ) -> (Vec<Entry<J>>, Vec<C>, Vec<TaskRecord>)
    where
        C: Clone,
    {
        let mut s = self.state.0.lock();
        let queued = s.queue.drain();
        self.publish(&s);
        for e in &queued {
            let record = TaskRecord {
                id: e.id,
                priority: e.priority,
                status: Status::Cancelled,
                queued_at: e.enqueued,
                started_at: None,
                finished_at: now,
            };
            Self::record(&mut s, record);
        }
        let running: Vec<C> = s.running.cancellers().collect();
        let released: Vec<(usize, TaskRecord)> = s
            .running
            .slots
            .iter()
            .enumerate()
            .filter_map(|(slot, held)| {
                let (id, c) = held.as_ref()?;
                release(*id, c).map(|r| (slot, r))
            })
            .collect();
        let mut records = Vec::with_capacity(released.len());
        for (slot, record) in released {
            if s.running.remove(slot, record.id).is_some() {
                Self::record(&mut s, record.clone());
                records.push(record);
            }
        }
        (queued, running, records)
    }

    /// Applies `f` to the canceller of task `id` in running `slot`, if it
    /// still holds it; whether it did.
    pub(crate) fn update_running(&self, slot: usize, id: u64, f: impl FnOnce(&mut C)) -> bool {
        let mut s = self.state.0.lock();
        match s.running.slots.get_mut(slot) {
            Some(Some((held, c))) if *held == id => {
                f(c);
                true
            }
            _ => false,
        }
    }

    /// Counts, depths, history.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let s = self.state.0.lock();
        Snapshot {
            queued: s.queue.len(),
            queued_by_priority: s.queue.depths().collect(),
            running: s.running.len,
            counters: s.counters,
            history: s.history.iter().cloned().collect(),
            accepting: s.accepting,
        }
    }
}

/// What an executor holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Tasks queued.
    pub queued: usize,
    /// Tasks queued per priority, highest last.
    pub queued_by_priority: Vec<(u8, usize)>,
    /// Tasks running.
    pub running: usize,
    /// Counters since the executor was made.
    pub counters: Counters,
    /// The last finished tasks, oldest first.
    pub history: Vec<TaskRecord>,
    /// Whether it accepts new tasks.
    pub accepting: bool,
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn core(max_queued: usize, max_queued_per_priority: Option<usize>) -> Core<u32, ()> {
        let bounds = Bounds {
            max_queued,
            max_queued_per_priority,
            max_running: 1,
            history: 0,
        };
        Core::new(bounds, None)
    }

    /// A slot freed between `start_now`'s "queue it" and `submit`: the
    /// task starts at once, so no queue bound refuses it, not even a queue
    /// of size zero; the next one finds the slot taken and no room.
    #[test]
    fn a_task_that_starts_at_once_is_not_held_to_the_queue_bounds() {
        for (max_queued, per_priority) in [(0, None), (10, Some(0))] {
            let core = core(max_queued, per_priority);
            let now = Instant::now();
            let (_, _, outcome) = core.submit(0, 7, now, true, |_| ()).expect("a free slot");
            let jobs: Vec<u32> = outcome.starts.into_iter().map(|s| s.entry.job).collect();
            assert_eq!(jobs, [7]);
            assert!(matches!(
                core.submit(0, 8, now, true, |_| ()),
                Err(Refused::Full(_, 8))
            ));
        }
    }

    /// Only the task that holds a slot reaches its canceller: a stale id
    /// (the slot's previous holder) changes nothing.
    #[test]
    fn only_the_holder_of_a_slot_updates_it() {
        let core: Core<u32, u32> = Core::new(
            Bounds {
                max_queued: 10,
                max_queued_per_priority: None,
                max_running: 1,
                history: 0,
            },
            None,
        );
        let Now::Started { id, slot } = core.start_now(0) else {
            panic!("a free slot");
        };
        assert!(!core.update_running(slot, id + 1, |c| *c = 7));
        assert!(!core.update_running(slot + 1, id, |c| *c = 7));
        assert!(core.update_running(slot, id, |c| *c += 1));
        let mut seen = 0;
        assert!(core.update_running(slot, id, |c| seen = *c));
        assert_eq!(seen, 1);
    }
}
