//! Live changes of a gauge's watermarks: the level is kept and judged again.

use buttress_pressure::{Gauge, GaugeConfig, Priority, Watermarks};

fn marks(high: u64, low: u64) -> GaugeConfig {
    GaugeConfig::new(Watermarks::new(high, low).expect("valid"))
}

#[test]
fn the_level_is_judged_again_against_the_new_watermarks() {
    let gauge = Gauge::builder("backlog", marks(100, 50))
        .build()
        .expect("valid");
    gauge.add(80);
    assert!(!gauge.is_paused());
    gauge.reconfigure(marks(60, 30)).expect("valid");
    assert!(gauge.is_paused(), "80 reaches the new high watermark");
    assert_eq!(gauge.level(), 80);
    // Between the new watermarks the state holds (hysteresis).
    gauge.reconfigure(marks(90, 40)).expect("valid");
    assert!(gauge.is_paused());
    gauge.reconfigure(marks(200, 100)).expect("valid");
    assert!(
        !gauge.is_paused(),
        "80 is at or below the new low watermark"
    );
    assert_eq!(gauge.config(), marks(200, 100));
}

#[tokio::test(start_paused = true)]
async fn raising_the_low_watermark_wakes_the_waiters() {
    let gauge = Gauge::builder("backlog", marks(10, 5))
        .build()
        .expect("valid");
    gauge.add(10);
    let waiting = tokio::spawn({
        let gauge = gauge.clone();
        async move { gauge.wait_flowing().await }
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    gauge.reconfigure(marks(20, 15)).expect("valid");
    waiting.await.expect("woken, not panicked");
}

#[test]
fn an_invalid_config_is_refused_and_nothing_changes() {
    let gauge = Gauge::builder("backlog", marks(100, 50))
        .build()
        .expect("valid");
    let bad = marks(100, 50).low_priority(Watermarks::new(200, 10).expect("valid pair"));
    gauge
        .reconfigure(bad)
        .expect_err("the low band is above the normal one");
    assert_eq!(gauge.config(), marks(100, 50));
    gauge.add(100);
    assert!(gauge.is_paused_for(Priority::Low));
}
