//! Unit tests of every transition of the state machine, with explicit time.

use std::sync::Arc;
use std::time::Duration;

use buttress_core::{FixedRandom, Outcome};

use crate::config::{BreakerConfig, OpenDuration, Rules, Window};
use crate::machine::{Machine, Recorded, Ticket, TicketKind, Verdict};
use crate::state::{Reason, State};

const S: u64 = 1_000_000_000;

fn machine(c: BreakerConfig) -> Machine {
    Machine::new(
        Rules::new(&c).expect("valid"),
        Arc::new(FixedRandom::new([0.0])),
    )
}

fn consecutive(n: u32, open_secs: u64, permits: u32) -> Machine {
    machine(
        BreakerConfig::default()
            .consecutive_failures(n)
            .failure_rate_threshold(None)
            .open(OpenDuration::fixed(Duration::from_secs(open_secs)))
            .half_open_permits(permits),
    )
}

fn admit(m: &Machine, now: u64) -> Ticket {
    m.acquire(|| now).0.expect("should be admitted")
}

fn refused(m: &Machine, now: u64) -> (State, Option<Duration>) {
    let r = m.acquire(|| now).0.expect_err("should be refused");
    (r.state, r.retry_after)
}

fn verdict(outcome: Outcome) -> Verdict {
    Verdict {
        outcome,
        slow: false,
        retry_after: None,
    }
}

fn rec(m: &Machine, t: Ticket, outcome: Outcome, now: u64) -> Recorded {
    m.record(t, verdict(outcome), || now)
}

fn fail(m: &Machine, now: u64) -> Recorded {
    let t = admit(m, now);
    rec(m, t, Outcome::Failure, now)
}

fn succeed(m: &Machine, now: u64) -> Recorded {
    let t = admit(m, now);
    rec(m, t, Outcome::Success, now)
}

fn reason(r: Recorded) -> Option<(State, State, Reason)> {
    r.change.map(|t| (t.from, t.to, t.reason))
}

#[test]
fn closed_admits_without_reading_the_clock() {
    let m = consecutive(3, 10, 1);
    let (admission, change) = m.acquire(|| panic!("closed path must not read the clock"));
    assert!(admission.is_ok() && change.is_none());
    let t = admission.expect("admitted");
    assert_eq!(t.kind(), TicketKind::Closed);
    // Recording a success in a count-only configuration needs no time either.
    let r = m.record(t, verdict(Outcome::Success), || {
        panic!("no clock on success")
    });
    assert!(r.counted && r.change.is_none());
}

#[test]
fn consecutive_failures_trip_and_a_success_resets_the_run() {
    let m = consecutive(3, 10, 1);
    fail(&m, 0);
    fail(&m, 0);
    succeed(&m, 0);
    fail(&m, 0);
    assert_eq!(reason(fail(&m, 0)), None);
    assert_eq!(
        reason(fail(&m, 0)),
        Some((State::Closed, State::Open, Reason::ConsecutiveFailures))
    );
    assert_eq!(m.state(), State::Open);
    assert_eq!(
        refused(&m, 4 * S),
        (State::Open, Some(Duration::from_secs(6)))
    );
}

#[test]
fn ignored_outcomes_do_not_count() {
    let m = consecutive(2, 10, 1);
    fail(&m, 0);
    let t = admit(&m, 0);
    assert_eq!(reason(rec(&m, t, Outcome::Ignored, 0)), None);
    assert!(
        reason(fail(&m, 0)).is_some(),
        "ignored must not break the run"
    );
}

#[test]
fn open_becomes_half_open_after_the_period_and_lets_exactly_n_probes() {
    let m = consecutive(1, 10, 2);
    fail(&m, 0);
    assert_eq!(refused(&m, 10 * S - 1).0, State::Open);
    let (a, change) = m.acquire(|| 10 * S);
    let p1 = a.expect("first probe");
    assert_eq!(p1.kind(), TicketKind::Probe);
    assert_eq!(
        change.map(|t| (t.to, t.reason)),
        Some((State::HalfOpen, Reason::OpenElapsed))
    );
    let p2 = admit(&m, 10 * S);
    assert_eq!(refused(&m, 10 * S), (State::HalfOpen, None));
    assert_eq!(reason(rec(&m, p1, Outcome::Success, 11 * S)), None);
    assert_eq!(m.state(), State::HalfOpen);
    assert_eq!(
        reason(rec(&m, p2, Outcome::Success, 11 * S)),
        Some((State::HalfOpen, State::Closed, Reason::ProbesSucceeded))
    );
    // Closed again with empty counts: one failure trips (n = 1).
    assert!(reason(fail(&m, 12 * S)).is_some());
}

#[test]
fn a_failed_probe_reopens_and_an_ignored_probe_gives_its_permit_back() {
    let m = consecutive(1, 10, 1);
    fail(&m, 0);
    let p = admit(&m, 10 * S);
    assert_eq!(refused(&m, 10 * S).0, State::HalfOpen);
    rec(&m, p, Outcome::Ignored, 10 * S); // e.g. its future was dropped
    let p = admit(&m, 10 * S);
    assert_eq!(
        reason(rec(&m, p, Outcome::Failure, 11 * S)),
        Some((State::HalfOpen, State::Open, Reason::ProbesFailed))
    );
    assert_eq!(
        refused(&m, 11 * S),
        (State::Open, Some(Duration::from_secs(10)))
    );
}

#[test]
fn failure_rate_over_a_count_window_waits_for_the_minimum() {
    let m = machine(
        BreakerConfig::default()
            .failure_rate_threshold(0.5)
            .window(Window::Count { size: 4 })
            .minimum_calls(4),
    );
    fail(&m, 0);
    fail(&m, 0);
    fail(&m, 0); // 3 of 3 failed, but only 3 calls: not judged yet
    assert_eq!(m.state(), State::Closed);
    succeed(&m, 0);
    assert_eq!(m.state(), State::Closed, "successes never trip");
    // Window: F F F S → next F evicts an F: F F S F = 3/4.
    assert_eq!(
        reason(fail(&m, 0)),
        Some((State::Closed, State::Open, Reason::FailureRate))
    );
}

#[test]
fn failure_rate_below_threshold_does_not_trip() {
    let m = machine(
        BreakerConfig::default()
            .failure_rate_threshold(0.5)
            .window(Window::Count { size: 10 })
            .minimum_calls(10),
    );
    for i in 0..100 {
        if i % 3 == 0 {
            fail(&m, 0);
        } else {
            succeed(&m, 0);
        }
    }
    assert_eq!(m.state(), State::Closed);
    let s = m.snapshot(0);
    assert_eq!(s.counts.map(|c| c.calls), Some(10));
}

#[test]
fn time_window_forgets_old_failures() {
    let m = machine(
        BreakerConfig::default()
            .failure_rate_threshold(0.5)
            .window(Window::Time {
                duration: Duration::from_secs(10),
                buckets: 10,
            })
            .minimum_calls(3),
    );
    fail(&m, 0);
    fail(&m, S);
    // Ten seconds later both have aged out: 1 failure in 1 call, below the minimum.
    fail(&m, 12 * S);
    assert_eq!(m.state(), State::Closed);
    succeed(&m, 13 * S);
    assert_eq!(
        reason(fail(&m, 13 * S)).map(|r| r.2),
        Some(Reason::FailureRate)
    );
}

#[test]
fn slow_calls_trip_on_their_own_rate() {
    let m = machine(
        BreakerConfig::default()
            .failure_rate_threshold(None)
            .slow_call_rate_threshold(0.5)
            .window(Window::Count { size: 2 })
            .minimum_calls(2),
    );
    let t = admit(&m, 0);
    m.record(
        t,
        Verdict {
            outcome: Outcome::Success,
            slow: true,
            retry_after: None,
        },
        || 0,
    );
    let t = admit(&m, 0);
    let r = m.record(
        t,
        Verdict {
            outcome: Outcome::Success,
            slow: true,
            retry_after: None,
        },
        || 0,
    );
    assert_eq!(reason(r).map(|r| r.2), Some(Reason::SlowCallRate));
}

#[test]
fn slow_probes_reopen() {
    let m = machine(
        BreakerConfig::default()
            .consecutive_failures(1)
            .failure_rate_threshold(None)
            .slow_call_rate_threshold(1.0)
            .window(Window::Count { size: 10 })
            .minimum_calls(10)
            .half_open_permits(2),
    );
    fail(&m, 0);
    let p1 = admit(&m, 60 * S);
    let p2 = admit(&m, 60 * S);
    let slow = Verdict {
        outcome: Outcome::Success,
        slow: true,
        retry_after: None,
    };
    assert!(m.record(p1, slow, || 61 * S).change.is_none());
    assert_eq!(
        reason(m.record(p2, slow, || 61 * S)).map(|r| r.2),
        Some(Reason::ProbesSlow)
    );
}

#[test]
fn results_from_an_earlier_generation_are_dropped() {
    let m = consecutive(2, 10, 1);
    let old = admit(&m, 0); // admitted while closed
    fail(&m, 0);
    fail(&m, 0); // trips
    let p = admit(&m, 10 * S);
    rec(&m, p, Outcome::Success, 10 * S); // closes: a new generation
    assert_eq!(m.state(), State::Closed);
    let r = rec(&m, old, Outcome::Failure, 11 * S);
    assert!(!r.counted && r.change.is_none());
    assert_eq!(m.snapshot(11 * S).consecutive_failures, 0);
    // A late probe result after reopening is dropped too.
    fail(&m, 12 * S);
    fail(&m, 12 * S);
    let p = admit(&m, 22 * S);
    m.force_open();
    assert!(!rec(&m, p, Outcome::Success, 22 * S).counted);
    assert_eq!(m.state(), State::ForcedOpen);
}

#[test]
fn exponential_open_periods_grow_and_reset_after_a_healthy_close() {
    let m = machine(
        BreakerConfig::default()
            .consecutive_failures(1)
            .failure_rate_threshold(None)
            .open(OpenDuration::Exponential {
                initial: Duration::from_secs(1),
                multiplier: 2.0,
                max: Duration::from_secs(3),
                jitter: 0.5,
            })
            .half_open_permits(1),
    );
    let open_for = |r: Recorded| r.change.and_then(|t| t.open_for);
    let mut now = 0;
    assert_eq!(open_for(fail(&m, now)), Some(Duration::from_secs(1)));
    for expect in [2, 3, 3] {
        now += 10 * S;
        let p = admit(&m, now);
        assert_eq!(
            open_for(rec(&m, p, Outcome::Failure, now)),
            Some(Duration::from_secs(expect))
        );
    }
    now += 10 * S;
    let p = admit(&m, now);
    rec(&m, p, Outcome::Success, now);
    assert_eq!(open_for(fail(&m, now)), Some(Duration::from_secs(1)));
}

#[test]
fn retry_after_hint_opens_for_that_long_clamped() {
    let m = machine(BreakerConfig::default().retry_after_max(Some(Duration::from_secs(30))));
    let t = admit(&m, 0);
    let r = m.record(
        t,
        Verdict {
            outcome: Outcome::Failure,
            slow: false,
            retry_after: Some(Duration::from_secs(7)),
        },
        || 0,
    );
    assert_eq!(
        r.change.map(|t| (t.reason, t.open_for)),
        Some((Reason::RetryAfter, Some(Duration::from_secs(7))))
    );
    assert_eq!(
        refused(&m, 2 * S),
        (State::Open, Some(Duration::from_secs(5)))
    );
    let p = admit(&m, 7 * S);
    let r = m.record(
        p,
        Verdict {
            outcome: Outcome::Failure,
            slow: false,
            retry_after: Some(Duration::from_secs(3600)),
        },
        || 7 * S,
    );
    assert_eq!(
        r.change.and_then(|t| t.open_for),
        Some(Duration::from_secs(30))
    );
    // Hints are ignored when switched off, and on successes.
    let m = machine(BreakerConfig::default().retry_after_max(None));
    let t = admit(&m, 0);
    let hint = Some(Duration::from_secs(7));
    assert!(
        m.record(
            t,
            Verdict {
                outcome: Outcome::Failure,
                slow: false,
                retry_after: hint
            },
            || 0
        )
        .change
        .is_none()
    );
}

#[test]
fn half_open_times_out_into_open() {
    let m = machine(
        BreakerConfig::default()
            .consecutive_failures(1)
            .failure_rate_threshold(None)
            .open(OpenDuration::fixed(Duration::from_secs(10)))
            .half_open_permits(1)
            .max_half_open(Some(Duration::from_secs(5))),
    );
    fail(&m, 0);
    let hung = admit(&m, 10 * S); // a probe that never reports
    assert_eq!(refused(&m, 14 * S).0, State::HalfOpen);
    let (a, change) = m.acquire(|| 15 * S);
    assert_eq!(a.map_err(|r| r.state), Err(State::Open));
    assert_eq!(change.map(|t| t.reason), Some(Reason::HalfOpenTimeout));
    assert!(!rec(&m, hung, Outcome::Success, 16 * S).counted);
    // The next half-open starts fresh.
    let p = admit(&m, 25 * S);
    assert_eq!(
        reason(rec(&m, p, Outcome::Success, 25 * S)).map(|r| r.1),
        Some(State::Closed)
    );
}

#[test]
fn manual_controls() {
    let m = consecutive(1, 10, 1);
    let change = m.force_open().expect("a transition");
    assert_eq!((change.from, change.to), (State::Closed, State::ForcedOpen));
    assert!(m.force_open().is_none(), "idempotent");
    assert_eq!(refused(&m, 1_000 * S), (State::ForcedOpen, None));

    let change = m.disable().expect("a transition");
    assert_eq!(change.to, State::Disabled);
    for _ in 0..10 {
        let t = admit(&m, 0);
        assert_eq!(t.kind(), TicketKind::Disabled);
        assert!(
            rec(&m, t, Outcome::Failure, 0).change.is_none(),
            "disabled never trips"
        );
    }
    assert_eq!(m.snapshot(0).consecutive_failures, 10, "but still counts");

    let t = m.reset();
    assert_eq!(
        (t.from, t.to, t.reason),
        (State::Disabled, State::Closed, Reason::Reset)
    );
    assert_eq!(m.snapshot(0).consecutive_failures, 0);
    let before = admit(&m, 0);
    m.reset(); // a reset while closed still starts a new generation
    assert!(!rec(&m, before, Outcome::Failure, 0).counted);
    assert_eq!(m.state(), State::Closed);
}

#[test]
fn snapshot_reports_time_until_half_open_and_probes() {
    let m = consecutive(1, 10, 3);
    fail(&m, 0);
    let s = m.snapshot(4 * S);
    assert_eq!(s.state, State::Open);
    assert_eq!(s.open_remaining, Some(Duration::from_secs(6)));
    assert_eq!(s.openings, 1);
    let _p = admit(&m, 10 * S);
    let s = m.snapshot(10 * S);
    assert_eq!(s.probes.map(|p| p.left), Some(2));
    assert_eq!(s.open_remaining, None);
}

#[test]
fn rate_thresholds_decide_probes() {
    // 50 % of 4 probes: the second failure reopens; one failure and three
    // successes close.
    let m = machine(
        BreakerConfig::default()
            .failure_rate_threshold(0.5)
            .window(Window::Count { size: 2 })
            .minimum_calls(2)
            .half_open_permits(4),
    );
    fail(&m, 0);
    fail(&m, 0);
    assert_eq!(m.state(), State::Open);
    let t = 60 * S;
    let p: Vec<_> = (0..4).map(|_| admit(&m, t)).collect();
    assert!(rec(&m, p[0], Outcome::Failure, t).change.is_none());
    assert!(rec(&m, p[1], Outcome::Success, t).change.is_none());
    assert!(rec(&m, p[2], Outcome::Success, t).change.is_none());
    assert_eq!(
        reason(rec(&m, p[3], Outcome::Success, t)).map(|r| r.1),
        Some(State::Closed)
    );
}
