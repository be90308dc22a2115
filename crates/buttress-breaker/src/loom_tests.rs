//! Model checks of the lock-free parts, under `--cfg loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p buttress-breaker --lib --release loom
//! ```

use std::time::Duration;

use buttress_core::sync::loom_model as model;
use buttress_core::{FixedRandom, Outcome};
use loom::sync::Arc;
use loom::thread;

use crate::config::{BreakerConfig, OpenDuration, Rules, Window};
use crate::machine::{Machine, Verdict};
use crate::state::State;

const S: u64 = 1_000_000_000;

fn machine(c: BreakerConfig) -> Machine {
    Machine::new(
        Rules::new(&c).expect("valid"),
        std::sync::Arc::new(FixedRandom::new([0.0])),
    )
}

fn open_machine(permits: u32) -> Machine {
    let m = machine(
        BreakerConfig::default()
            .consecutive_failures(1)
            .failure_rate_threshold(None)
            .open(OpenDuration::fixed(Duration::from_secs(1)))
            .half_open_permits(permits),
    );
    let t = m.acquire(|| 0).0.expect("closed admits");
    m.record(t, v(Outcome::Failure), || 0);
    assert_eq!(m.state(), State::Open);
    m
}

fn v(outcome: Outcome) -> Verdict {
    Verdict {
        outcome,
        slow: false,
        retry_after: None,
    }
}

/// However three callers race at the end of the open period, exactly
/// `permits` probes are admitted, and dropped probes give every permit back.
#[test]
fn loom_exactly_n_probes_and_no_permit_leaks() {
    model(|| {
        let m = Arc::new(open_machine(2));
        let probe = |m: &Machine| match m.acquire(|| 2 * S).0 {
            Ok(ticket) => {
                // The probe's future is dropped: ignored.
                m.record(ticket, v(Outcome::Ignored), || 2 * S);
                1
            }
            Err(_) => 0,
        };
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let m = Arc::clone(&m);
                thread::spawn(move || probe(&m))
            })
            .collect();
        let mine = probe(&m);
        let admitted: u32 = mine
            + handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .sum::<u32>();
        assert!((2..=3).contains(&admitted), "admitted {admitted}");
        assert_eq!(m.state(), State::HalfOpen);
        // Every permit came back.
        let s = m.snapshot(2 * S);
        assert_eq!(s.probes.map(|p| p.left), Some(2));
    });
}

/// Without give-backs, never more than `permits` probes.
#[test]
fn loom_no_more_than_n_probes() {
    model(|| {
        let m = Arc::new(open_machine(1));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let m = Arc::clone(&m);
                thread::spawn(move || u32::from(m.acquire(|| 2 * S).0.is_ok()))
            })
            .collect();
        let admitted: u32 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
        assert_eq!(admitted, 1);
    });
}

/// Two failures racing past the threshold open the breaker exactly once.
#[test]
fn loom_one_trip_per_generation() {
    model(|| {
        let m = Arc::new(machine(
            BreakerConfig::default()
                .consecutive_failures(1)
                .failure_rate_threshold(None),
        ));
        // Both calls were admitted while closed; their failures race.
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let m = Arc::clone(&m);
                let t = m.acquire(|| 0).0.expect("closed admits");
                thread::spawn(move || {
                    u32::from(m.record(t, v(Outcome::Failure), || 0).change.is_some())
                })
            })
            .collect();
        let trips: u32 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
        assert_eq!(trips, 1);
        assert_eq!(m.state(), State::Open);
        assert_eq!(m.snapshot(0).generation, 1);
    });
}

/// Concurrent records and a clear leave the count window's totals equal to
/// the sum of its slots.
#[test]
fn loom_count_window_totals_stay_exact() {
    model(|| {
        let m = Arc::new(machine(
            BreakerConfig::default()
                .failure_rate_threshold(1.0)
                .window(Window::Count { size: 2 })
                .minimum_calls(2),
        ));
        let writers: Vec<_> = [Outcome::Failure, Outcome::Success]
            .into_iter()
            .map(|o| {
                let m = Arc::clone(&m);
                thread::spawn(move || {
                    let t = m.acquire(|| 0).0.expect("closed admits");
                    m.record(t, v(o), || 0);
                })
            })
            .collect();
        for w in writers {
            w.join().expect("thread");
        }
        let c = m.snapshot(0).counts.expect("window");
        assert_eq!((c.calls, c.failures), (2, 1));
    });
}

/// A record racing a reset: the totals stay the exact sum of the slots, and
/// the window holds at most the one racing record.
#[test]
fn loom_record_racing_reset_keeps_totals_exact() {
    model(|| {
        let m = Arc::new(machine(
            BreakerConfig::default()
                .consecutive_failures(3)
                .failure_rate_threshold(1.0)
                .window(Window::Count { size: 2 })
                .minimum_calls(2),
        ));
        let t = m.acquire(|| 0).0.expect("closed admits");
        let writer = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                m.record(t, v(Outcome::Failure), || 0);
            })
        };
        m.reset();
        writer.join().expect("thread");
        let w = m.window().expect("window");
        let counts = w.counts(None);
        assert_eq!(counts, w.recount());
        assert!(counts.calls <= 1);
        assert_eq!(m.state(), State::Closed);
    });
}

/// A record racing a clear of a time window never leaves a failure without
/// its call, and the totals stay the sum of the buckets.
#[test]
fn loom_time_window_record_racing_clear() {
    model(|| {
        let m = Arc::new(machine(
            BreakerConfig::default()
                .failure_rate_threshold(1.0)
                .window(Window::Time {
                    duration: Duration::from_secs(2),
                    buckets: 2,
                })
                .minimum_calls(5),
        ));
        let t = m.acquire(|| 0).0.expect("closed admits");
        let writer = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                m.record(t, v(Outcome::Failure), || 0);
            })
        };
        m.window().expect("window").clear();
        writer.join().expect("thread");
        let w = m.window().expect("window");
        let raw = w.recount();
        assert!(raw.failures <= raw.calls, "{raw:?}");
        // Reading at the current slice may drop a stranded call; after it
        // the totals and the buckets agree.
        let counts = w.counts(Some(0));
        assert_eq!(counts, w.recount());
        assert!(counts.failures <= counts.calls, "{counts:?}");
    });
}
