//! A gauge's metrics: its level, whether each band is paused, how often it
//! changed, and for how long it was paused.

use std::sync::Arc;
use std::time::Duration;

use buttress_core::ManualClock;
use buttress_pressure::{Gauge, Priority, Watermarks};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// Every metric of the recorder, as (name, its `priority` label, value);
/// reading the recorder takes what it holds, so it is read once.
fn read(recorder: &DebuggingRecorder) -> Vec<(String, Option<String>, f64)> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(k, _, _, v)| {
            let key = k.key();
            let priority = key
                .labels()
                .find(|l| l.key() == "priority")
                .map(|l| l.value().to_string());
            let v = match v {
                DebugValue::Counter(c) => c as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(_) => f64::NAN,
            };
            (key.name().to_string(), priority, v)
        })
        .collect()
}

fn value(metrics: &[(String, Option<String>, f64)], name: &str, priority: Option<&str>) -> f64 {
    metrics
        .iter()
        .find(|(n, p, _)| n == name && p.as_deref() == priority)
        .map_or(f64::NAN, |m| m.2)
}

/// Low priority pauses at 70 (3 s), normal too at 120 (2 s), both flow at
/// 10: two transitions each, the seconds each was paused, the last level.
#[test]
fn each_band_publishes_its_pauses_and_how_long_they_lasted() {
    let recorder = DebuggingRecorder::new();
    let clock = ManualClock::new();
    let gauge = metrics::with_local_recorder(&recorder, || {
        Gauge::builder("backlog", Watermarks::new(100, 50).unwrap())
            .low_priority(Watermarks::new(60, 30).unwrap())
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap()
    });
    assert_eq!(gauge.name(), "backlog");
    gauge.set(70);
    assert!(gauge.is_paused_for(Priority::Low) && !gauge.is_paused());
    clock.advance(Duration::from_secs(3));
    gauge.set(120);
    assert!(gauge.is_paused());
    clock.advance(Duration::from_secs(2));
    gauge.set(10);
    assert!(!gauge.is_paused_for(Priority::Low));

    let m = read(&recorder);
    assert_eq!(value(&m, "buttress_pressure_level", None), 10.0);
    for (priority, seconds) in [("low", 5.0), ("normal", 2.0)] {
        let of = |name| value(&m, name, Some(priority));
        assert_eq!(of("buttress_pressure_paused"), 0.0, "{priority}");
        assert_eq!(of("buttress_pressure_transitions_total"), 2.0, "{priority}");
        assert_eq!(
            of("buttress_pressure_paused_seconds_total"),
            seconds,
            "{priority}"
        );
    }
}

/// Without a band of its own, low priority follows normal, and one state
/// is published: the normal band's.
#[test]
fn one_band_publishes_once() {
    let recorder = DebuggingRecorder::new();
    let gauge = metrics::with_local_recorder(&recorder, || {
        Gauge::builder("backlog", Watermarks::new(100, 50).unwrap())
            .build()
            .unwrap()
    });
    gauge.set(150);
    assert!(gauge.is_paused_for(Priority::Low));
    let m = read(&recorder);
    assert_eq!(value(&m, "buttress_pressure_level", None), 150.0);
    assert_eq!(value(&m, "buttress_pressure_paused", Some("normal")), 1.0);
    assert_eq!(
        value(&m, "buttress_pressure_transitions_total", Some("normal")),
        1.0
    );
    assert_eq!(
        value(&m, "buttress_pressure_transitions_total", Some("low")),
        0.0
    );
}
