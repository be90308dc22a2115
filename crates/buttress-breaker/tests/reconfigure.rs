//! Live changes of configuration: state carries over, bad changes are
//! refused whole.

use std::time::Duration;

use buttress_breaker::{BreakerConfig, CircuitBreaker, ConfigError, OpenDuration, State, Window};
use buttress_core::ManualClock;

fn breaker(clock: &ManualClock, config: BreakerConfig) -> CircuitBreaker {
    CircuitBreaker::builder("db")
        .config(config)
        .clock(clock.clone())
        .build()
        .expect("valid config")
}

/// `BreakerConfig` is non-exhaustive: start from the default and edit.
fn with(base: &BreakerConfig, edit: impl FnOnce(&mut BreakerConfig)) -> BreakerConfig {
    let mut c = base.clone();
    edit(&mut c);
    c
}

fn consecutive(n: u32, open: Duration) -> BreakerConfig {
    with(&BreakerConfig::default(), |c| {
        c.consecutive_failures = Some(n);
        c.failure_rate_threshold = None;
        c.slow_call_rate_threshold = None;
        c.open = OpenDuration::Fixed { duration: open };
    })
}

fn rate(threshold: f64, size: u32, minimum: u32) -> BreakerConfig {
    with(&BreakerConfig::default(), |c| {
        c.consecutive_failures = None;
        c.failure_rate_threshold = Some(threshold);
        c.window = Window::Count { size };
        c.minimum_calls = minimum;
    })
}

#[test]
fn an_open_breaker_stays_open_for_the_period_it_drew() {
    let clock = ManualClock::new();
    let b = breaker(&clock, consecutive(1, Duration::from_secs(60)));
    b.try_acquire().expect("closed").failure();
    assert_eq!(b.state(), State::Open);
    b.reconfigure(consecutive(3, Duration::from_secs(5)))
        .expect("valid change");
    clock.advance(Duration::from_secs(30));
    let refused = b.try_acquire().expect_err("still open");
    assert_eq!(refused.retry_after(), Some(Duration::from_secs(30)));
    clock.advance(Duration::from_secs(30));
    b.try_acquire().expect("the probe").failure();
    // The next opening draws the new period.
    let refused = b.try_acquire().expect_err("open again");
    assert_eq!(refused.retry_after(), Some(Duration::from_secs(5)));
    assert_eq!(b.config(), consecutive(3, Duration::from_secs(5)));
}

#[test]
fn counts_carry_over_and_the_new_threshold_judges_the_next_outcome() {
    let clock = ManualClock::new();
    let b = breaker(&clock, consecutive(5, Duration::from_secs(60)));
    for _ in 0..3 {
        b.try_acquire().expect("closed").failure();
    }
    b.reconfigure(consecutive(4, Duration::from_secs(60)))
        .expect("valid change");
    assert_eq!(b.snapshot().consecutive_failures, 3);
    b.try_acquire().expect("closed").failure();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_rate_threshold_changes_over_the_same_window() {
    let clock = ManualClock::new();
    let cfg = rate(0.9, 10, 10);
    let b = breaker(&clock, cfg.clone());
    for i in 0..9 {
        let p = b.try_acquire().expect("closed");
        if i % 2 == 1 { p.failure() } else { p.success() }
    }
    b.reconfigure(with(&cfg, |c| c.failure_rate_threshold = Some(0.5)))
        .expect("same window");
    // 4 failures of 9, then a fifth: 5 of 10 reaches the new 50 %, not
    // the old 90 %.
    b.try_acquire().expect("closed").failure();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn an_invalid_change_is_refused_and_nothing_changes() {
    let clock = ManualClock::new();
    let before = consecutive(2, Duration::from_secs(60));
    let b = breaker(&clock, before.clone());
    let bad = with(&before, |c| c.failure_rate_threshold = Some(1.5));
    let e = b.reconfigure(bad).expect_err("out of range");
    assert_eq!(e.field(), Some("failure_rate_threshold"));
    assert_eq!(b.config(), before);
    b.try_acquire().expect("closed").failure();
    b.try_acquire().expect("closed").failure();
    assert_eq!(b.state(), State::Open, "the old rules still hold");
}

#[test]
fn a_new_window_shape_is_refused() {
    let clock = ManualClock::new();
    let rate = rate(0.5, 10, 5);
    let b = breaker(&clock, rate.clone());
    let bigger = with(&rate, |c| c.window = Window::Count { size: 20 });
    assert_eq!(b.reconfigure(bigger), Err(ConfigError::WindowChanged));
    let no_window = consecutive(3, Duration::from_secs(60));
    assert_eq!(b.reconfigure(no_window), Err(ConfigError::WindowChanged));
    assert_eq!(ConfigError::WindowChanged.field(), Some("window"));
    assert_eq!(b.config(), rate);
}

#[test]
fn adding_a_slow_call_rule_starts_timing_calls() {
    let clock = ManualClock::new();
    let fail = with(&rate(1.0, 4, 4), |c| {
        c.slow_call_duration = Duration::from_secs(1)
    });
    let b = breaker(&clock, fail.clone());
    b.reconfigure(with(&fail, |c| c.slow_call_rate_threshold = Some(1.0)))
        .expect("same window");
    for _ in 0..4 {
        let p = b.try_acquire().expect("closed");
        p.record_elapsed(buttress_core::Outcome::Success, Duration::from_secs(2));
    }
    assert_eq!(b.state(), State::Open, "four slow calls of four");
}
