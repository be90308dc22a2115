//! Listeners, metrics, snapshots, the registry, and bad configuration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use buttress_breaker::{
    BreakerConfig, BreakerEvent, CircuitBreaker, ConfigError, Reason, Registry, State,
};
use buttress_core::{ManualClock, Outcome};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

fn tripping(clock: &ManualClock) -> buttress_breaker::Builder {
    CircuitBreaker::builder("llm")
        .config(BreakerConfig::llm())
        .clock(clock.clone())
}

#[test]
fn listeners_see_every_transition_and_a_panicking_one_breaks_nothing() {
    let clock = ManualClock::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let b = tripping(&clock)
        .on_event(|_| panic!("a buggy listener"))
        .on_event(move |e| s.lock().expect("lock").push(e.clone()))
        .build()
        .expect("valid");
    for _ in 0..3 {
        b.try_acquire().expect("closed").failure();
    }
    assert!(b.try_acquire().is_err());
    clock.advance(Duration::from_secs(120));
    b.try_acquire().expect("probe").success();
    assert_eq!(b.state(), State::Closed);

    let events = seen.lock().expect("lock");
    let transitions: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            BreakerEvent::StateChanged {
                from, to, reason, ..
            } => Some((*from, *to, *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        transitions,
        vec![
            (State::Closed, State::Open, Reason::ConsecutiveFailures),
            (State::Open, State::HalfOpen, Reason::OpenElapsed),
            (State::HalfOpen, State::Closed, Reason::ProbesSucceeded),
        ]
    );
    assert!(events.iter().any(|e| matches!(
        e,
        BreakerEvent::Rejected {
            state: State::Open,
            ..
        }
    )));
    let recorded = events
        .iter()
        .filter(|e| matches!(e, BreakerEvent::Recorded { .. }))
        .count();
    assert_eq!(recorded, 4);
}

#[test]
fn a_result_after_a_reset_is_reported_stale() {
    let clock = ManualClock::new();
    let stale = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&stale);
    let b = tripping(&clock)
        .on_event(move |e| {
            if let BreakerEvent::Recorded { stale, .. } = e {
                s.lock().expect("lock").push(*stale);
            }
        })
        .build()
        .expect("valid");
    let early = b.try_acquire().expect("closed");
    b.reset();
    early.failure();
    b.try_acquire().expect("closed").failure();
    assert_eq!(*stale.lock().expect("lock"), vec![true, false]);
    assert_eq!(b.snapshot().consecutive_failures, 1);
}

/// One metric: name, labels, value.
type Metric = (String, Vec<(String, String)>, Val);

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Counter(u64),
    Gauge(f64),
    Other,
}

fn value(snapshot: &[Metric], name: &str, labels: &[(&str, &str)]) -> Option<Val> {
    snapshot
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v.clone())
}

#[test]
fn metrics_are_named_and_labelled() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let clock = ManualClock::new();
    let b = metrics::with_local_recorder(&recorder, || tripping(&clock).build().expect("valid"));
    b.try_acquire().expect("closed").success();
    for _ in 0..3 {
        b.try_acquire().expect("closed").failure();
    }
    let _ = b.try_acquire();
    metrics::with_local_recorder(&recorder, || b.reset());
    drop(b.try_acquire().expect("closed")); // ignored

    let snap: Vec<Metric> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(k, _, _, v)| {
            let key = k.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            let v = match v {
                DebugValue::Counter(c) => Val::Counter(c),
                DebugValue::Gauge(g) => Val::Gauge(g.into_inner()),
                _ => Val::Other,
            };
            (key.name().to_string(), labels, v)
        })
        .collect();
    let calls = |o: &str| {
        value(
            &snap,
            "buttress_breaker_calls_total",
            &[("name", "llm"), ("outcome", o)],
        )
    };
    assert_eq!(calls("success"), Some(Val::Counter(1)));
    assert_eq!(calls("failure"), Some(Val::Counter(3)));
    assert_eq!(calls("ignored"), Some(Val::Counter(1)));
    assert_eq!(
        value(&snap, "buttress_breaker_rejected_total", &[("name", "llm")]),
        Some(Val::Counter(1))
    );
    assert_eq!(
        value(
            &snap,
            "buttress_breaker_transitions_total",
            &[("name", "llm"), ("from", "open"), ("to", "closed")]
        ),
        Some(Val::Counter(1))
    );
    assert_eq!(
        value(&snap, "buttress_breaker_state", &[("name", "llm")]),
        Some(Val::Gauge(0.0))
    );
}

#[test]
fn snapshots_and_the_registry() {
    let clock = ManualClock::new();
    let registry = Registry::new();
    let llm = tripping(&clock).registry(&registry).build().expect("valid");
    CircuitBreaker::builder("embeddings")
        .config(BreakerConfig::embeddings())
        .clock(clock.clone())
        .registry(&registry)
        .build()
        .expect("valid");
    let dup = CircuitBreaker::builder("llm").registry(&registry).build();
    assert_eq!(dup.err(), Some(ConfigError::DuplicateName("llm".into())));
    assert_eq!(
        registry.names(),
        vec!["embeddings".to_string(), "llm".to_string()]
    );

    for _ in 0..3 {
        llm.try_acquire().expect("closed").failure();
    }
    clock.advance(Duration::from_secs(20));
    let snaps = registry.snapshots();
    let s = snaps.iter().find(|s| s.name == "llm").expect("listed");
    assert_eq!(s.state, State::Open);
    assert_eq!(s.time_until_half_open, Some(Duration::from_secs(100)));
    assert_eq!(s.openings, 1);
    assert_eq!(
        registry.get("embeddings").map(|b| b.state()),
        Some(State::Closed)
    );
    assert!(registry.remove("embeddings").is_some());
    assert_eq!(registry.len(), 1);
}

#[test]
fn bad_configuration_is_a_typed_error_never_a_panic() {
    let bad = [
        CircuitBreaker::builder("").build().err(),
        CircuitBreaker::builder("x").failure_rate(1.5).build().err(),
        CircuitBreaker::builder("x")
            .failure_rate(None)
            .build()
            .err(),
        CircuitBreaker::builder("x").count_window(0).build().err(),
        CircuitBreaker::builder("x")
            .count_window(10)
            .minimum_calls(20)
            .build()
            .err(),
        CircuitBreaker::builder("x")
            .time_window(Duration::ZERO, 10)
            .build()
            .err(),
        CircuitBreaker::builder("x")
            .half_open_permits(0)
            .build()
            .err(),
        CircuitBreaker::builder("x")
            .open_for(Duration::ZERO)
            .build()
            .err(),
        CircuitBreaker::builder("x")
            .open_for(Duration::MAX)
            .build()
            .err(),
        CircuitBreaker::builder("x")
            .open_exponential(
                Duration::from_secs(1),
                f64::NAN,
                Duration::from_secs(2),
                0.0,
            )
            .build()
            .err(),
        CircuitBreaker::builder("x")
            .open_exponential(Duration::from_secs(1), 2.0, Duration::from_secs(2), 1.5)
            .build()
            .err(),
        CircuitBreaker::builder("x")
            .slow_calls(0.5, Duration::ZERO)
            .build()
            .err(),
    ];
    for (i, e) in bad.iter().enumerate() {
        let e = e
            .as_ref()
            .unwrap_or_else(|| panic!("case {i} should be refused"));
        assert!(!e.to_string().is_empty());
    }
    assert!(matches!(bad[0], Some(ConfigError::Name(_))));
}

#[test]
fn outcome_is_shared_with_core() {
    let b = CircuitBreaker::builder("x")
        .consecutive_failures(1)
        .build()
        .expect("valid");
    b.try_acquire().expect("closed").record(Outcome::Ignored);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn the_two_step_api_reports_durations_for_the_slow_call_rule() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder("slow")
        .failure_rate(None)
        .slow_calls(1.0, Duration::from_secs(2))
        .count_window(2)
        .minimum_calls(2)
        .clock(clock.clone())
        .build()
        .expect("valid");
    clock.advance(Duration::from_secs(10));
    b.try_acquire()
        .expect("closed")
        .record_elapsed(Outcome::Success, Duration::from_secs(1));
    assert_eq!(b.snapshot().slow_calls, 0);
    for _ in 0..2 {
        b.try_acquire()
            .expect("closed")
            .record_elapsed(Outcome::Success, Duration::from_secs(3));
    }
    assert_eq!(b.state(), State::Open);
}

/// A duration the caller measured counts as it is, even when it is longer
/// than the breaker has existed (it used to be cut to the breaker's age).
#[test]
fn a_measured_duration_counts_whole() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder("measured")
        .failure_rate(None)
        .count_window(1)
        .minimum_calls(1)
        .slow_calls(1.0, Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .expect("valid");
    // A fresh breaker (age zero) told of a 3 s call: slow, and it trips.
    b.try_acquire()
        .expect("closed")
        .record_elapsed(Outcome::Success, Duration::from_secs(3));
    assert_eq!(b.snapshot().slow_calls, 1);
    assert_eq!(b.state(), buttress_breaker::State::Open);
    // Ignored outcomes are never slow.
    let fast = CircuitBreaker::builder("ignored")
        .failure_rate(None)
        .slow_calls(1.0, Duration::from_secs(1))
        .clock(clock)
        .build()
        .expect("valid");
    fast.try_acquire()
        .expect("closed")
        .record_elapsed(Outcome::Ignored, Duration::from_secs(3));
    assert_eq!(fast.snapshot().slow_calls, 0);
}

/// A clock that counts its reads.
#[derive(Debug, Clone, Default)]
struct CountingClock {
    reads: Arc<std::sync::atomic::AtomicUsize>,
    inner: ManualClock,
}

impl buttress_core::Clock for CountingClock {
    fn now(&self) -> std::time::Instant {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.now()
    }
}

/// With a count window and no slow-call rule, a call through a closed
/// breaker reads no clock, success or failure: the promise behind the
/// `breaker.layer_untimed` benchmark.
#[test]
fn a_count_window_without_a_slow_call_rule_reads_no_clock() {
    let clock = CountingClock::default();
    let b = CircuitBreaker::builder("untimed")
        .consecutive_failures(1_000)
        .failure_rate(0.9)
        .count_window(100)
        .minimum_calls(100)
        .clock(clock.clone())
        .build()
        .expect("valid");
    let before = clock.reads.load(std::sync::atomic::Ordering::SeqCst);
    for i in 0..200 {
        let permit = b.try_acquire().expect("closed");
        if i % 2 == 0 {
            permit.success();
        } else {
            permit.failure();
        }
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        clock.reads.load(std::sync::atomic::Ordering::SeqCst),
        before
    );
}

/// A fresh breaker has no rates to report (not a rate of zero, not NaN).
#[test]
fn a_breaker_with_no_calls_reports_no_rates() {
    let b = CircuitBreaker::builder("fresh")
        .slow_calls(0.5, Duration::from_secs(1))
        .clock(ManualClock::new())
        .build()
        .expect("valid");
    let snap = b.snapshot();
    assert_eq!(snap.calls, 0);
    assert_eq!((snap.failure_rate, snap.slow_call_rate), (None, None));
}

/// `Retry-After: 0` is no reason to open the breaker: only a hint of a
/// wait holds it open; the failure still counts toward the other rules.
#[test]
fn a_retry_after_of_zero_does_not_open_the_breaker() {
    let b = CircuitBreaker::builder("zero")
        .consecutive_failures(2)
        .retry_after_max(Some(Duration::from_secs(60)))
        .clock(ManualClock::new())
        .build()
        .expect("valid");
    let now =
        buttress_core::Classification::RETRYABLE_FAILURE.with_retry_after(Some(Duration::ZERO));
    b.try_acquire().expect("closed").record_classified(now);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().consecutive_failures, 1);
}

/// Without a slow-call rule no call is slow, however long it took: the
/// window's slow count stays at zero.
#[test]
fn without_a_slow_call_rule_no_call_is_slow() {
    let b = CircuitBreaker::builder("untimed")
        .count_window(2)
        .minimum_calls(2)
        .clock(ManualClock::new())
        .build()
        .expect("valid");
    b.try_acquire()
        .expect("closed")
        .record_elapsed(Outcome::Success, Duration::from_secs(24 * 3600));
    let snap = b.snapshot();
    assert_eq!((snap.calls, snap.slow_calls), (1, 0));
}
