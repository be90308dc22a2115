//! The budgets against small reference models, for random sequences of
//! deposits, withdrawals, outcomes and clock advances.

use std::time::{Duration, Instant};

use buttress_retry::{RatioBudget, RetryBudget, Throttle};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Deposit,
    Withdraw,
    Advance(u64), // milliseconds
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            5 => Just(Op::Deposit),
            3 => Just(Op::Withdraw),
            2 => prop::sample::select(vec![1u64, 100, 999, 1000, 2500, 9000]).prop_map(Op::Advance),
        ],
        1..300,
    )
}

/// Finagle's budget, written plainly: remember every event, count those
/// whose tenth-of-a-window slice is among the newest ten.
struct Model {
    credit: i64,
    reserve: i64,
    slice_ms: u64,
    events: Vec<(u64, bool)>, // (time in ms, is a withdrawal)
}

impl Model {
    fn balance(&self, now: u64) -> i64 {
        let current = now / self.slice_ms;
        self.events
            .iter()
            .filter(|(t, _)| t / self.slice_ms + 10 > current)
            .map(|(_, w)| if *w { -1_000_000 } else { self.credit })
            .sum::<i64>()
            + self.reserve
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn ratio_budget_agrees_with_the_model(
        ratio in prop::sample::select(vec![0.05, 0.1, 0.2, 1.0 / 3.0, 1.0, 2.5]),
        min_per_second in prop::sample::select(vec![0.0, 0.5, 1.0, 10.0]),
        window_s in 1u64..20,
        ops in ops(),
    ) {
        let window = Duration::from_secs(window_s);
        let budget = RatioBudget::new(ratio, min_per_second, window).expect("valid");
        let mut model = Model {
            credit: (ratio * 1e6).ceil() as i64,
            reserve: (min_per_second * window_s as f64 * 1e6).round() as i64,
            slice_ms: window_s * 100,
            events: Vec::new(),
        };
        let origin = Instant::now();
        let _ = budget.available(origin); // the budget's time starts here
        let mut now = 0u64;
        for op in ops {
            let at = origin + Duration::from_millis(now);
            match op {
                Op::Deposit => {
                    budget.deposit(at);
                    model.events.push((now, false));
                }
                Op::Withdraw => {
                    let want = model.balance(now) >= 1_000_000;
                    prop_assert_eq!(budget.try_withdraw(at), want, "at {} ms", now);
                    if want {
                        model.events.push((now, true));
                    }
                }
                Op::Advance(ms) => now += ms,
            }
            let at = origin + Duration::from_millis(now);
            prop_assert_eq!(budget.available(at) as i64, model.balance(now).max(0) / 1_000_000);
        }
    }

    #[test]
    fn throttle_agrees_with_the_model(
        max in prop::sample::select(vec![1.0, 2.0, 10.0, 100.0]),
        ratio in prop::sample::select(vec![0.1, 0.5, 1.0]),
        outcomes in prop::collection::vec(any::<bool>(), 1..300),
    ) {
        let t = Throttle::new(max, ratio).expect("valid");
        let mut tokens: f64 = max;
        for success in outcomes {
            t.record(success);
            tokens = if success { (tokens + ratio).min(max) } else { (tokens - 1.0).max(0.0) };
            prop_assert!((t.tokens() - tokens).abs() < 1e-6);
            prop_assert_eq!(t.try_withdraw(Instant::now()), tokens > max / 2.0 + 1e-9);
        }
    }
}

#[test]
fn fractional_ratios_are_exact() {
    // tower's TpsBudget grants too many retries for such ratios.
    let now = Instant::now();
    for (ratio, deposits, retries) in [
        (0.1, 100, 10),
        (0.15, 100, 15),
        (0.01, 1000, 10),
        (1.0 / 3.0, 9, 3),
    ] {
        let b = RatioBudget::new(ratio, 0.0, Duration::from_secs(10)).expect("valid");
        for _ in 0..deposits {
            b.deposit(now);
        }
        let granted = (0..deposits).filter(|_| b.try_withdraw(now)).count();
        assert_eq!(granted, retries, "ratio {ratio}");
    }
}

#[test]
fn deposits_and_withdrawals_expire_after_the_window() {
    let b = RatioBudget::new(1.0, 0.0, Duration::from_secs(10)).expect("valid");
    let t0 = Instant::now();
    for _ in 0..5 {
        b.deposit(t0);
    }
    assert!(b.try_withdraw(t0));
    assert_eq!(b.available(t0), 4);
    assert_eq!(b.available(t0 + Duration::from_secs(9)), 4);
    assert_eq!(b.available(t0 + Duration::from_secs(10)), 0, "all expired");
    // The reserve alone allows min_per_second × window retries.
    let b = RatioBudget::new(0.0, 2.0, Duration::from_secs(5)).expect("valid");
    assert_eq!((0..20).filter(|_| b.try_withdraw(t0)).count(), 10);
}

#[test]
fn bad_parameters_are_typed_errors() {
    assert!(RatioBudget::new(-0.1, 0.0, Duration::from_secs(1)).is_err());
    assert!(RatioBudget::new(f64::INFINITY, 0.0, Duration::from_secs(1)).is_err());
    assert!(RatioBudget::new(0.2, f64::NAN, Duration::from_secs(1)).is_err());
    assert!(RatioBudget::new(0.2, 1.0, Duration::ZERO).is_err());
    // Parameters that could overflow the balance are refused.
    assert!(RatioBudget::new(0.1, 200_000.0, Duration::from_secs(86_400)).is_err());
    assert!(RatioBudget::new(1000.0, 0.0, Duration::from_secs(10)).is_err());
    assert!(Throttle::new(0.0, 0.1).is_err());
    assert!(Throttle::new(10.0, 11.0).is_err());
}

#[test]
fn untimed_deposits_land_in_the_newest_slice() {
    let b = RatioBudget::new(1.0, 0.0, Duration::from_secs(10)).expect("valid");
    let t0 = Instant::now();
    b.deposit(t0 + Duration::from_secs(3)); // the budget's time starts here
    for _ in 0..4 {
        assert!(b.deposit_untimed());
    }
    assert_eq!(
        b.available(t0 + Duration::from_secs(12)),
        5,
        "still inside the window"
    );
    assert_eq!(
        b.available(t0 + Duration::from_secs(13)),
        0,
        "expired with that slice"
    );
}
