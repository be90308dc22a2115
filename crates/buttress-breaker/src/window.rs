//! The sliding windows over which failure and slow-call rates are measured.
//!
//! Both windows are lock-free on the recording path and keep running totals
//! so that reading a rate costs O(1). Every change to a slot or bucket is
//! paired with the same change to the totals, and all changes are additions
//! that commute, so the totals always settle to the exact sum of the slots
//! whatever the interleaving. A reader racing with writers may see a total
//! that is off by the records still in flight; the reads are clamped so that
//! `0 ≤ slow, failures ≤ calls`.

use crate::config::WindowSpec;
use buttress_core::sync::{AtomicI64, AtomicU8, AtomicU64, Mutex, Ordering, Padded};

const PRESENT: u8 = 0b001;
const FAILED: u8 = 0b010;
const SLOW: u8 = 0b100;

/// The counts of one window at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

impl Counts {
    pub(crate) fn failure_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.failures as f64 / self.calls as f64)
    }

    pub(crate) fn slow_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.slow as f64 / self.calls as f64)
    }
}

#[derive(Debug)]
struct Totals {
    calls: AtomicI64,
    failures: AtomicI64,
    slow: AtomicI64,
}

impl Totals {
    fn new() -> Self {
        Self {
            calls: AtomicI64::new(0),
            failures: AtomicI64::new(0),
            slow: AtomicI64::new(0),
        }
    }

    /// Adds `sign` (±1) times the record `bits` to the totals.
    #[inline]
    fn apply(&self, bits: u8, sign: i64) {
        if bits & PRESENT == 0 {
            return;
        }
        self.calls.fetch_add(sign, Ordering::Relaxed);
        if bits & FAILED != 0 {
            self.failures.fetch_add(sign, Ordering::Relaxed);
        }
        if bits & SLOW != 0 {
            self.slow.fetch_add(sign, Ordering::Relaxed);
        }
    }

    fn read(&self) -> Counts {
        let calls = self.calls.load(Ordering::Relaxed).max(0) as u64;
        let clamp = |v: i64| (v.max(0) as u64).min(calls);
        Counts {
            calls,
            failures: clamp(self.failures.load(Ordering::Relaxed)),
            slow: clamp(self.slow.load(Ordering::Relaxed)),
        }
    }
}

fn bits(failed: bool, slow: bool) -> u8 {
    // Distinct bits: adding is or-ing.
    PRESENT + if failed { FAILED } else { 0 } + if slow { SLOW } else { 0 }
}

/// The last N calls: a ring of one byte per call.
#[derive(Debug)]
pub(crate) struct CountWindow {
    /// Written by every call: alone on its cache line.
    cursor: Padded<AtomicU64>,
    slots: Box<[AtomicU8]>,
    totals: Totals,
}

impl CountWindow {
    fn new(size: u32) -> Self {
        Self {
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            cursor: Padded(AtomicU64::new(0)),
            totals: Totals::new(),
        }
    }

    #[inline(always)]
    fn record(&self, failed: bool, slow: bool) {
        // The cursor wraps at the window size itself, which spares a
        // division per call; uncontended, this is one compare-and-swap.
        let n = self.slots.len() as u64;
        let next = |c: u64| Some(if c + 1 >= n { 0 } else { c + 1 });
        let i = match self
            .cursor
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, next)
        {
            Ok(c) | Err(c) => c as usize,
        };
        let new = bits(failed, slow);
        // The steady state of a healthy service: a success replaces a
        // success. Writing the value the slot already holds changes nothing,
        // so a load suffices and the cache line stays shared; a racing writer
        // of a different value is ordered after this no-op write.
        if self.slots[i].load(Ordering::Relaxed) == new {
            return;
        }
        let old = self.slots[i].swap(new, Ordering::Relaxed);
        if old == new {
            return;
        }
        self.totals.apply(new, 1);
        self.totals.apply(old, -1);
    }

    fn clear(&self) {
        // Subtract exactly what is removed, so a racing writer can never
        // leave the totals out of step with the slots.
        for slot in self.slots.iter() {
            let old = slot.swap(0, Ordering::Relaxed);
            self.totals.apply(old, -1);
        }
    }
}

#[derive(Debug)]
struct Bucket {
    /// Index of the time slice this bucket holds, plus one; 0 when empty.
    stamp: AtomicU64,
    calls: AtomicI64,
    failures: AtomicI64,
    slow: AtomicI64,
}

impl Bucket {
    fn new() -> Self {
        Self {
            stamp: AtomicU64::new(0),
            calls: AtomicI64::new(0),
            failures: AtomicI64::new(0),
            slow: AtomicI64::new(0),
        }
    }
}

/// The calls of the last `buckets × bucket_nanos`.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    bucket_nanos: u64,
    buckets: Box<[Bucket]>,
    totals: Totals,
    /// Serialises rotation (once per bucket width at most), never recording.
    rotation: Mutex<()>,
}

impl TimeWindow {
    fn new(bucket_nanos: u64, buckets: u32) -> Self {
        Self {
            bucket_nanos,
            buckets: (0..buckets).map(|_| Bucket::new()).collect(),
            totals: Totals::new(),
            rotation: Mutex::new(()),
        }
    }

    #[inline(always)]
    fn record(&self, failed: bool, slow: bool, now: u64) {
        let slice = now / self.bucket_nanos;
        let stamp = slice + 1;
        let n = self.buckets.len() as u64;
        let b = &self.buckets[(slice % n) as usize];
        match b.stamp.load(Ordering::Acquire).cmp(&stamp) {
            std::cmp::Ordering::Equal => {}
            // A whole window newer: this record is too old to count.
            std::cmp::Ordering::Greater => return,
            std::cmp::Ordering::Less => self.rotate(slice),
        }
        // Failures and slowness first, the call last: an eviction racing
        // between the adds can then only strand a call (a success, which
        // lowers a rate), never a failure without its call.
        if failed {
            b.failures.fetch_add(1, Ordering::Relaxed);
            self.totals.failures.fetch_add(1, Ordering::Relaxed);
        }
        if slow {
            b.slow.fetch_add(1, Ordering::Relaxed);
            self.totals.slow.fetch_add(1, Ordering::Relaxed);
        }
        b.calls.fetch_add(1, Ordering::Relaxed);
        self.totals.calls.fetch_add(1, Ordering::Relaxed);
    }

    fn evict(&self, b: &Bucket) {
        let calls = b.calls.swap(0, Ordering::Relaxed);
        let failures = b.failures.swap(0, Ordering::Relaxed);
        let slow = b.slow.swap(0, Ordering::Relaxed);
        self.totals.calls.fetch_sub(calls, Ordering::Relaxed);
        self.totals.failures.fetch_sub(failures, Ordering::Relaxed);
        self.totals.slow.fetch_sub(slow, Ordering::Relaxed);
    }

    /// Drops every bucket older than the window ending at `slice`, and claims
    /// the bucket of `slice` for it.
    fn rotate(&self, slice: u64) {
        let _guard = self.rotation.lock();
        let n = self.buckets.len() as u64;
        let oldest_kept = (slice + 1).saturating_sub(n - 1); // stamp of the oldest slice still in the window
        for b in self.buckets.iter() {
            // Empty buckets too: a record racing a clear may have landed in
            // one whose stamp was already reset.
            if b.stamp.load(Ordering::Acquire) < oldest_kept {
                self.evict(b);
                b.stamp.store(0, Ordering::Release);
            }
        }
        self.claim(&self.buckets[(slice % n) as usize], slice);
    }

    /// Claims `b` for `slice`, empty, unless it already holds that slice
    /// (claimed by another thread while this one waited for the lock).
    fn claim(&self, b: &Bucket, slice: u64) {
        if b.stamp.load(Ordering::Acquire) < slice + 1 {
            self.evict(b);
            b.stamp.store(slice + 1, Ordering::Release);
        }
    }

    fn clear(&self) {
        let _guard = self.rotation.lock();
        for b in self.buckets.iter() {
            self.evict(b);
            b.stamp.store(0, Ordering::Release);
        }
    }
}

/// A count or time window.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub(crate) fn new(spec: WindowSpec) -> Self {
        match spec {
            WindowSpec::Count(n) => Self::Count(CountWindow::new(n)),
            WindowSpec::Time {
                bucket_nanos,
                buckets,
            } => Self::Time(TimeWindow::new(bucket_nanos, buckets)),
        }
    }

    /// Whether recording needs the current time.
    pub(crate) fn needs_time(&self) -> bool {
        matches!(self, Self::Time(_))
    }

    #[inline(always)]
    pub(crate) fn record(&self, failed: bool, slow: bool, now: u64) {
        match self {
            Self::Count(w) => w.record(failed, slow),
            Self::Time(w) => w.record(failed, slow, now),
        }
    }

    /// The counts as of `now` (a time window first drops what has aged out).
    pub(crate) fn counts(&self, now: Option<u64>) -> Counts {
        match self {
            Self::Count(w) => w.totals.read(),
            Self::Time(w) => {
                if let Some(now) = now {
                    let slice = now / w.bucket_nanos;
                    let n = w.buckets.len() as u64;
                    let b = &w.buckets[(slice % n) as usize];
                    if b.stamp.load(Ordering::Acquire) < slice + 1 {
                        w.rotate(slice);
                    }
                }
                w.totals.read()
            }
        }
    }

    pub(crate) fn clear(&self) {
        match self {
            Self::Count(w) => w.clear(),
            Self::Time(w) => w.clear(),
        }
    }

    /// The counts recomputed from the slots or buckets, for tests that
    /// check the running totals against them.
    #[cfg(test)]
    pub(crate) fn recount(&self) -> Counts {
        let mut c = Counts::default();
        match self {
            Self::Count(w) => {
                for slot in w.slots.iter() {
                    let b = slot.load(Ordering::Relaxed);
                    if b & PRESENT != 0 {
                        c.calls += 1;
                        c.failures += u64::from(b & FAILED != 0);
                        c.slow += u64::from(b & SLOW != 0);
                    }
                }
            }
            Self::Time(w) => {
                for b in w.buckets.iter() {
                    c.calls += b.calls.load(Ordering::Relaxed) as u64;
                    c.failures += b.failures.load(Ordering::Relaxed) as u64;
                    c.slow += b.slow.load(Ordering::Relaxed) as u64;
                }
            }
        }
        c
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn count_window_keeps_the_last_n() {
        let w = Window::new(WindowSpec::Count(3));
        w.record(true, false, 0);
        w.record(false, true, 0);
        assert_eq!(
            w.counts(None),
            Counts {
                calls: 2,
                failures: 1,
                slow: 1
            }
        );
        w.record(false, false, 0);
        w.record(false, false, 0); // evicts the failure
        assert_eq!(
            w.counts(None),
            Counts {
                calls: 3,
                failures: 0,
                slow: 1
            }
        );
        w.record(true, true, 0); // evicts the slow one
        assert_eq!(
            w.counts(None),
            Counts {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        w.clear();
        assert_eq!(w.counts(None), Counts::default());
        w.record(true, false, 0);
        assert_eq!(
            w.counts(None),
            Counts {
                calls: 1,
                failures: 1,
                slow: 0
            }
        );
    }

    #[test]
    fn time_window_drops_whole_buckets_as_they_age() {
        // 4 buckets of 10 ms: a 40 ms window.
        let w = Window::new(WindowSpec::Time {
            bucket_nanos: 10 * MS,
            buckets: 4,
        });
        w.record(true, false, 0);
        w.record(false, false, 15 * MS);
        w.record(false, true, 39 * MS);
        assert_eq!(
            w.counts(Some(39 * MS)),
            Counts {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        // At 40 ms the first bucket [0, 10) has aged out.
        assert_eq!(
            w.counts(Some(40 * MS)),
            Counts {
                calls: 2,
                failures: 0,
                slow: 1
            }
        );
        // A record from a whole window ago is not counted.
        w.record(true, false, 5 * MS);
        assert_eq!(
            w.counts(Some(41 * MS)),
            Counts {
                calls: 2,
                failures: 0,
                slow: 1
            }
        );
        // Long silence empties it.
        assert_eq!(w.counts(Some(1_000 * MS)), Counts::default());
        w.record(true, false, 1_000 * MS);
        assert_eq!(
            w.counts(Some(1_000 * MS)),
            Counts {
                calls: 1,
                failures: 1,
                slow: 0
            }
        );
        w.clear();
        assert_eq!(w.counts(Some(1_000 * MS)), Counts::default());
    }

    #[test]
    fn rates() {
        let c = Counts {
            calls: 4,
            failures: 1,
            slow: 2,
        };
        assert_eq!(c.failure_rate(), Some(0.25));
        assert_eq!(c.slow_rate(), Some(0.5));
        assert_eq!(Counts::default().failure_rate(), None);
    }
}

#[cfg(all(test, not(loom)))]
mod model_tests {
    //! Both windows against plain models, for random records and times.

    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[derive(Debug, Clone)]
    enum Op {
        Record {
            failed: bool,
            slow: bool,
            advance: u64,
        },
        Read {
            advance: u64,
        },
        Clear,
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let advance = prop_oneof![Just(0u64), 1u64..50, 50u64..2_000];
        let op = prop_oneof![
            6 => (any::<bool>(), any::<bool>(), advance.clone())
                .prop_map(|(failed, slow, advance)| Op::Record { failed, slow, advance }),
            2 => advance.prop_map(|advance| Op::Read { advance }),
            1 => Just(Op::Clear),
        ];
        prop::collection::vec(op, 1..200)
    }

    fn counts_of<'a>(it: impl Iterator<Item = &'a (u64, bool, bool)>) -> Counts {
        let mut c = Counts::default();
        for &(_, failed, slow) in it {
            c.calls += 1;
            c.failures += u64::from(failed);
            c.slow += u64::from(slow);
        }
        c
    }

    proptest! {
        #[test]
        fn count_window_is_the_last_n_records(size in 1u32..8, ops in ops()) {
            let w = Window::new(WindowSpec::Count(size));
            let mut model: VecDeque<(u64, bool, bool)> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Record { failed, slow, .. } => {
                        w.record(failed, slow, 0);
                        model.push_back((0, failed, slow));
                        if model.len() > size as usize {
                            model.pop_front();
                        }
                    }
                    Op::Read { .. } => {}
                    Op::Clear => {
                        w.clear();
                        model.clear();
                    }
                }
                prop_assert_eq!(w.counts(None), counts_of(model.iter()));
                prop_assert_eq!(w.recount(), counts_of(model.iter()));
            }
        }

        #[test]
        fn time_window_holds_the_records_of_the_last_buckets(
            buckets in 1u32..6,
            width in 1u64..100,
            ops in ops(),
        ) {
            let w = Window::new(WindowSpec::Time { bucket_nanos: width, buckets });
            let mut model: Vec<(u64, bool, bool)> = Vec::new();
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Record { failed, slow, advance } => {
                        now += advance;
                        w.record(failed, slow, now);
                        model.push((now, failed, slow));
                    }
                    Op::Read { advance } => now += advance,
                    Op::Clear => {
                        w.clear();
                        model.clear();
                    }
                }
                // A record counts while its slice is one of the newest
                // `buckets` slices, the current one included.
                let current = now / width;
                let kept = model
                    .iter()
                    .filter(|(t, _, _)| t / width + u64::from(buckets) > current);
                let want = counts_of(kept);
                prop_assert_eq!(w.counts(Some(now)), want);
                prop_assert_eq!(w.recount(), want);
            }
        }
    }
}
