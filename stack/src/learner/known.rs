//! What the learner has learned, without any I/O: its progress (the
//! checkpoint's payload) and the patterns it knows, deduplicated by hash,
//! each with the position of the event that introduced it.
//!
//! The position is what makes a restart exact. After a `kill -9` the
//! learner resumes from its last checkpoint and processes again the events
//! since; the patterns those events introduced are already stored (with
//! their positions), so an event found at its own pattern's position is
//! the one that introduced it, processed again: counted as new, not as a
//! duplicate, and not written twice.

use std::collections::HashMap;

use buttress::journal::Cursor;
use serde::{Deserialize, Serialize};

/// The position of a pattern whose first event came from another source
/// than this learner's: no event it reads is at this position, so each is
/// a duplicate.
pub const ELSEWHERE: Cursor = Cursor {
    file: u64::MAX,
    offset: u64::MAX,
};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The learner's progress: what a checkpoint saves, and what
/// `/learning/stats` counts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Where the next event starts.
    pub cursor: Cursor,
    /// Events processed (every record read, whatever it held).
    pub events: u64,
    /// Events whose pattern was already known.
    pub duplicates: u64,
    /// Patterns learned: events whose pattern was new.
    pub patterns: u64,
    /// Records that were not a query record (counted and passed over).
    pub undecodable: u64,
}

/// One event, as the learner reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The pattern's hash, or `None` when the record was not a query record.
    pub hash: Option<Hash>,
    /// Where the event ends (its record's cursor): its position.
    pub at: Cursor,
    /// When the query was answered, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The record's size, for backpressure.
    pub bytes: u64,
}

/// A pattern to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPattern {
    /// Its hash.
    pub hash: Hash,
    /// The position of the event that introduced it.
    pub at: Cursor,
    /// When that event's query was answered (ms since the Unix epoch).
    pub at_ms: u64,
}

/// What a batch of events taught: the patterns to store, and the progress
/// once they are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lesson {
    /// Patterns not stored yet, in the order they were seen.
    pub new: Vec<NewPattern>,
    /// The progress after the batch.
    pub progress: Progress,
}

/// How an event's pattern was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Never seen: a new pattern, to store.
    New,
    /// This very event introduced it before a restart: new, already stored.
    Again,
    /// Introduced by an earlier event: a duplicate.
    Duplicate,
}

/// The patterns known, by hash, with the position that introduced each.
#[derive(Debug, Default, Clone)]
pub struct Known {
    first: HashMap<Hash, Cursor>,
}

impl Known {
    /// Patterns known so far (those loaded from the store and those seen).
    pub fn len(&self) -> usize {
        self.first.len()
    }

    /// Whether none is known.
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Remembers a stored pattern (loaded at start).
    pub fn insert(&mut self, hash: Hash, at: Cursor) {
        let first = self.first.entry(hash).or_insert(at);
        *first = (*first).min(at);
    }

    /// Looks `hash` up as seen at `at`, and remembers it when new.
    ///
    /// A pattern stored with a position after `at` cannot come from
    /// processing in order; it is counted as a duplicate (it is stored, and
    /// is not stored again).
    pub fn observe(&mut self, hash: Hash, at: Cursor) -> Seen {
        match self.first.get(&hash) {
            None => {
                self.first.insert(hash, at);
                Seen::New
            }
            Some(first) if *first == at => Seen::Again,
            Some(_) => Seen::Duplicate,
        }
    }

    /// Learns from `events`, in order, starting at `progress`.
    pub fn learn(&mut self, progress: Progress, events: &[Event]) -> Lesson {
        let mut progress = progress;
        let mut new = Vec::new();
        for event in events {
            progress.events += 1;
            progress.cursor = event.at;
            let Some(hash) = event.hash else {
                progress.undecodable += 1;
                continue;
            };
            match self.observe(hash, event.at) {
                Seen::New => {
                    progress.patterns += 1;
                    new.push(NewPattern {
                        hash,
                        at: event.at,
                        at_ms: event.at_ms,
                    });
                }
                Seen::Again => progress.patterns += 1,
                Seen::Duplicate => progress.duplicates += 1,
            }
        }
        Lesson { new, progress }
    }
}

/// `hex` (64 hexadecimal digits, either case) as a digest.
pub fn parse_hash(hex: &str) -> Option<Hash> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

/// `hash` as 64 lower-case hexadecimal digits.
pub fn hex(hash: &Hash) -> String {
    use std::fmt::Write;
    hash.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn at(offset: u64) -> Cursor {
        Cursor { file: 1, offset }
    }

    fn event(n: u8, offset: u64) -> Event {
        Event {
            hash: Some([n; 32]),
            at: at(offset),
            at_ms: offset,
            bytes: 10,
        }
    }

    #[test]
    fn hashes_round_trip_and_bad_ones_are_refused() {
        let h = [0xab; 32];
        assert_eq!(parse_hash(&hex(&h)), Some(h));
        assert_eq!(parse_hash(&hex(&h).to_uppercase()), Some(h));
        assert_eq!(parse_hash("ab"), None);
        assert_eq!(parse_hash(&"g".repeat(64)), None);
        assert_eq!(parse_hash(&"é".repeat(32)), None);
    }

    #[test]
    fn a_batch_counts_new_duplicate_and_undecodable_events() {
        let mut known = Known::default();
        let mut odd = event(0, 40);
        odd.hash = None;
        let lesson = known.learn(
            Progress::default(),
            &[event(1, 10), event(2, 20), event(1, 30), odd],
        );
        assert_eq!(
            lesson.new.iter().map(|p| p.hash[0]).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(
            lesson.progress,
            Progress {
                cursor: at(40),
                events: 4,
                duplicates: 1,
                patterns: 2,
                undecodable: 1
            }
        );
    }

    #[test]
    fn an_event_processed_again_after_a_restart_is_new_but_not_stored_again() {
        // Before the kill: the batch was stored, the checkpoint was not.
        let mut before = Known::default();
        let lesson = before.learn(Progress::default(), &[event(1, 10), event(1, 20)]);
        // After: the store's patterns are loaded, the old progress resumed.
        let mut after = Known::default();
        for p in &lesson.new {
            after.insert(p.hash, p.at);
        }
        let again = after.learn(Progress::default(), &[event(1, 10), event(1, 20)]);
        assert!(again.new.is_empty());
        assert_eq!(again.progress, lesson.progress);
    }

    #[test]
    fn a_pattern_stored_from_a_later_position_is_a_duplicate() {
        let mut known = Known::default();
        known.insert([1; 32], at(50));
        known.insert([1; 32], at(70));
        assert_eq!(known.len(), 1);
        assert_eq!(known.observe([1; 32], at(20)), Seen::Duplicate);
        assert_eq!(known.observe([1; 32], at(50)), Seen::Again);
    }

    #[test]
    fn counts_and_patterns_from_elsewhere() {
        let mut known = Known::default();
        assert!(known.is_empty());
        assert_eq!(known.len(), 0);
        known.insert([1; 32], at(50));
        known.insert([2; 32], ELSEWHERE);
        assert!(!known.is_empty());
        assert_eq!(known.len(), 2);
        // First learned from another source: a duplicate wherever it is seen.
        assert_eq!(known.observe([2; 32], at(10)), Seen::Duplicate);
        assert_eq!(known.observe([2; 32], at(90)), Seen::Duplicate);
    }

    proptest! {
        /// Against a model that sees the whole stream once: processing in
        /// batches, with crashes that lose the unsaved progress but keep
        /// whatever was stored, ends with the same counts and stores each
        /// pattern exactly once.
        #[test]
        fn crashes_and_redos_end_as_one_pass(
            hashes in proptest::collection::vec(0u8..20, 0..200),
            batch in 1usize..20,
            crashes in proptest::collection::vec((0usize..200, any::<bool>()), 0..10),
        ) {
            let events: Vec<Event> = hashes
                .iter()
                .enumerate()
                .map(|(i, h)| event(*h, (i as u64 + 1) * 10))
                .collect();
            // The model.
            let mut seen = HashSet::new();
            let mut model = Progress::default();
            for e in &events {
                model.events += 1;
                model.cursor = e.at;
                if seen.insert(e.hash) { model.patterns += 1 } else { model.duplicates += 1 }
            }
            // The learner, with a store and a checkpoint that survive crashes.
            let mut stored: Vec<NewPattern> = Vec::new();
            let mut saved = Progress::default();
            let mut crashes = crashes.into_iter();
            let mut known = Known::default();
            let mut progress = saved;
            let mut steps = 0usize;
            loop {
                let next = events.iter().position(|e| e.at > progress.cursor).unwrap_or(events.len());
                if next == events.len() { break; }
                let end = (next + batch).min(events.len());
                let lesson = known.learn(progress, &events[next..end]);
                stored.extend(lesson.new.iter().cloned());
                steps += 1;
                let crash = crashes.next().filter(|(at, _)| *at % 3 == steps % 3);
                match crash {
                    // Killed after the store, before the checkpoint.
                    Some((_, false)) => {
                        known = Known::default();
                        for p in &stored { known.insert(p.hash, p.at); }
                        progress = saved;
                    }
                    // Killed after the checkpoint.
                    Some((_, true)) => {
                        saved = lesson.progress;
                        known = Known::default();
                        for p in &stored { known.insert(p.hash, p.at); }
                        progress = saved;
                    }
                    None => {
                        progress = lesson.progress;
                        saved = progress;
                    }
                }
            }
            prop_assert_eq!(progress, model);
            let distinct: HashSet<_> = stored.iter().map(|p| p.hash).collect();
            prop_assert_eq!(distinct.len(), stored.len());
            prop_assert_eq!(stored.len() as u64, model.patterns);
        }
    }
}
