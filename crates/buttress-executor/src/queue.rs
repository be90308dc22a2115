//! The priority queue: strict priority, first in first out among equals,
//! and aging. A synchronous structure with no clock reads: time comes in
//! as an argument.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// An entry of the queue.
#[derive(Debug)]
pub(crate) struct Entry<J> {
    pub(crate) id: u64,
    pub(crate) priority: u8,
    pub(crate) enqueued: Instant,
    pub(crate) job: J,
}

/// Tasks waiting to run, by priority.
#[derive(Debug)]
pub(crate) struct Queue<J> {
    /// Priority → its tasks in arrival order (ids rise with arrival).
    levels: BTreeMap<u8, VecDeque<Entry<J>>>,
    len: usize,
    aging: Option<Duration>,
}

impl<J> Queue<J> {
    pub(crate) fn new(aging: Option<Duration>) -> Self {
        Queue {
            levels: BTreeMap::new(),
            len: 0,
            aging,
        }
    }

    /// A new aging bound, for the next pop.
    pub(crate) fn set_aging(&mut self, aging: Option<Duration>) {
        self.aging = aging;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn depth(&self, priority: u8) -> usize {
        self.levels.get(&priority).map_or(0, VecDeque::len)
    }

    /// Every priority with tasks queued, with its depth.
    pub(crate) fn depths(&self) -> impl Iterator<Item = (u8, usize)> + '_ {
        self.levels
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(p, q)| (*p, q.len()))
    }

    /// Adds an entry; its id must be above every id already queued.
    pub(crate) fn push(&mut self, entry: Entry<J>) {
        self.levels
            .entry(entry.priority)
            .or_default()
            .push_back(entry);
        self.len += 1;
    }

    /// The next entry to run at `now`: the oldest task if it has waited at
    /// least the aging bound, otherwise the oldest of the highest priority.
    pub(crate) fn pop(&mut self, now: Instant) -> Option<Entry<J>> {
        let level = self.next_level(now)?;
        // Empty levels stay, with their buffers: a priority in use is
        // pushed to again and again, and at most 256 levels exist.
        let entry = self.levels.get_mut(&level)?.pop_front();
        if entry.is_some() {
            self.len -= 1;
        }
        entry
    }

    fn next_level(&self, now: Instant) -> Option<u8> {
        if let Some(bound) = self.aging {
            // The oldest task overall is at the front of its level.
            let oldest = self
                .levels
                .iter()
                .filter_map(|(p, q)| q.front().map(|e| (e.id, *p, e.enqueued)))
                .min_by_key(|(id, _, _)| *id);
            if let Some((_, level, enqueued)) = oldest
                && now.saturating_duration_since(enqueued) >= bound
            {
                return Some(level);
            }
        }
        self.levels
            .iter()
            .rev()
            .find(|(_, q)| !q.is_empty())
            .map(|(p, _)| *p)
    }

    /// Removes the entry `id` of `priority`, if still queued.
    pub(crate) fn remove(&mut self, priority: u8, id: u64) -> Option<Entry<J>> {
        let queue = self.levels.get_mut(&priority)?;
        // Ids rise along the queue.
        let at = queue.binary_search_by_key(&id, |e| e.id).ok()?;
        let entry = queue.remove(at);
        if entry.is_some() {
            self.len -= 1;
        }
        entry
    }

    /// Removes everything, in the order it would have run (no aging).
    pub(crate) fn drain(&mut self) -> Vec<Entry<J>> {
        let mut out = Vec::with_capacity(self.len);
        for q in self.levels.values_mut().rev() {
            out.extend(q.drain(..));
        }
        self.len = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, priority: u8, at: Instant) -> Entry<()> {
        Entry {
            id,
            priority,
            enqueued: at,
            job: (),
        }
    }

    #[test]
    fn highest_first_fifo_among_equals_and_aging() {
        let t0 = Instant::now();
        let mut q = Queue::new(Some(Duration::from_secs(10)));
        q.push(entry(1, 0, t0));
        q.push(entry(2, 5, t0));
        q.push(entry(3, 5, t0));
        q.push(entry(4, 9, t0));
        assert_eq!(q.pop(t0).map(|e| e.id), Some(4));
        assert_eq!(q.pop(t0).map(|e| e.id), Some(2));
        // Ten seconds on, the low-priority task has aged past the bound.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(q.pop(later).map(|e| e.id), Some(1));
        assert_eq!(q.pop(later).map(|e| e.id), Some(3));
        assert!(q.pop(later).is_none());
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn removal_keeps_order_and_counts() {
        let t0 = Instant::now();
        let mut q = Queue::new(None);
        for id in 1..=5 {
            q.push(entry(id, (id % 2) as u8, t0));
        }
        assert_eq!(q.remove(1, 3).map(|e| e.id), Some(3));
        assert!(q.remove(1, 3).is_none());
        assert_eq!(q.len(), 4);
        assert_eq!(q.depth(1), 2);
        let order: Vec<u64> = q.drain().into_iter().map(|e| e.id).collect();
        assert_eq!(order, vec![1, 5, 2, 4]);
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Push(u8),
            Pop,
            Wait(u64),
            Remove(usize),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0..4u8).prop_map(Op::Push),
                3 => Just(Op::Pop),
                2 => (0..30u64).prop_map(Op::Wait),
                1 => (0..20usize).prop_map(Op::Remove),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Against a model: a list of (id, priority, enqueued) in
            /// arrival order. Pop takes the first entry older than the aging
            /// bound if any, else the first of the highest priority.
            #[test]
            fn pops_what_the_rule_says(ops in prop::collection::vec(op(), 0..150), aging in prop::option::of(5..40u64)) {
                let t0 = Instant::now();
                let mut now = t0;
                let mut q = Queue::new(aging.map(Duration::from_secs));
                let mut model: Vec<(u64, u8, Instant)> = Vec::new();
                let mut next = 0u64;
                for op in ops {
                    match op {
                        Op::Push(p) => {
                            q.push(Entry { id: next, priority: p, enqueued: now, job: () });
                            model.push((next, p, now));
                            next += 1;
                        }
                        Op::Wait(s) => now += Duration::from_secs(s),
                        Op::Remove(i) => {
                            if !model.is_empty() {
                                let (id, p, _) = model.remove(i % model.len());
                                prop_assert!(q.remove(p, id).is_some());
                            }
                        }
                        Op::Pop => {
                            // The model is in arrival order: the oldest is
                            // first, and only it can be the aged pick.
                            let aged = aging.and_then(|a| {
                                model
                                    .first()
                                    .filter(|(_, _, at)| now.duration_since(*at) >= Duration::from_secs(a))
                                    .map(|_| 0)
                            });
                            let expected = aged.or_else(|| {
                                let top = model.iter().map(|(_, p, _)| *p).max()?;
                                model.iter().position(|(_, p, _)| *p == top)
                            });
                            let got = q.pop(now).map(|e| e.id);
                            let want = expected.map(|i| model.remove(i));
                            prop_assert_eq!(got, want.map(|(id, _, _)| id));
                        }
                    }
                    prop_assert_eq!(q.len(), model.len());
                }
            }
        }
    }
}
