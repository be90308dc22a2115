//! The two times every request reads (the deadline and the attempt
//! timeout), kept apart from the rest of the settings so that reading
//! them costs plain loads, not a reference-counted snapshot.
//!
//! A sequence lock: a writer (rare: a change of configuration, under the
//! policy's write lock) makes the sequence odd, stores, and makes it even
//! again; a reader that saw an odd sequence, or a different one after its
//! loads, reads again. So a reader always gets both times of one
//! configuration.

use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::Duration;

/// The stored word for "none".
const NONE: u64 = u64::MAX;

fn encode(d: Option<Duration>) -> u64 {
    d.map_or(NONE, |d| u64::try_from(d.as_nanos()).unwrap_or(NONE - 1))
}

fn decode(v: u64) -> Option<Duration> {
    (v != NONE).then(|| Duration::from_nanos(v))
}

#[derive(Debug)]
pub(crate) struct Times {
    seq: AtomicU64,
    deadline: AtomicU64,
    attempt_timeout: AtomicU64,
}

impl Times {
    pub(crate) fn new(deadline: Option<Duration>, attempt_timeout: Option<Duration>) -> Self {
        Self {
            seq: AtomicU64::new(0),
            deadline: AtomicU64::new(encode(deadline)),
            attempt_timeout: AtomicU64::new(encode(attempt_timeout)),
        }
    }

    /// The deadline and the attempt timeout, of one configuration.
    #[inline]
    pub(crate) fn read(&self) -> (Option<Duration>, Option<Duration>) {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            let deadline = self.deadline.load(Ordering::Relaxed);
            let attempt = self.attempt_timeout.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if before & 1 == 0 && self.seq.load(Ordering::Relaxed) == before {
                return (decode(deadline), decode(attempt));
            }
            std::hint::spin_loop();
        }
    }

    /// The deadline alone.
    #[inline]
    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.read().0
    }

    /// Stores new times. Callers must not write concurrently (they hold
    /// the policy's write lock).
    pub(crate) fn write(&self, deadline: Option<Duration>, attempt_timeout: Option<Duration>) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.deadline.store(encode(deadline), Ordering::Relaxed);
        self.attempt_timeout
            .store(encode(attempt_timeout), Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_was_written() {
        let t = Times::new(None, Some(Duration::from_secs(1)));
        assert_eq!(t.read(), (None, Some(Duration::from_secs(1))));
        t.write(Some(Duration::from_secs(30)), None);
        assert_eq!(t.read(), (Some(Duration::from_secs(30)), None));
        assert_eq!(t.deadline(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn the_longest_duration_is_a_duration_not_none() {
        let t = Times::new(Some(Duration::MAX), None);
        assert_eq!(t.read().0, Some(Duration::from_nanos(u64::MAX - 1)));
    }

    #[test]
    fn a_reader_never_sees_two_configurations_at_once() {
        let t = std::sync::Arc::new(Times::new(
            Some(Duration::from_nanos(0)),
            Some(Duration::from_nanos(0)),
        ));
        let writer = {
            let t = t.clone();
            std::thread::spawn(move || {
                for k in 1..20_000u64 {
                    t.write(Some(Duration::from_nanos(k)), Some(Duration::from_nanos(k)));
                }
            })
        };
        for _ in 0..200_000 {
            let (d, a) = t.read();
            assert_eq!(d, a, "both times come from one write");
        }
        writer.join().expect("the writer");
    }
}
