//! Model checks of the budgets under `--cfg loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p buttress-retry --lib --release loom
//! ```

use std::time::{Duration, Instant};

use buttress_core::sync::loom_model as model;
use loom::sync::Arc;
use loom::thread;

use crate::budget::{RatioBudget, RetryBudget, Throttle};

/// One retry's worth of credit, two threads asking: exactly one gets it.
#[test]
fn loom_ratio_budget_never_overspends() {
    model(|| {
        let now = Instant::now();
        let b = Arc::new(RatioBudget::new(1.0, 0.0, Duration::from_secs(10)).expect("valid"));
        b.deposit(now);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let b = Arc::clone(&b);
                thread::spawn(move || u32::from(b.try_withdraw(now)))
            })
            .collect();
        let granted: u32 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
        assert_eq!(granted, 1);
        assert_eq!(b.available(now), 0);
    });
}

/// A deposit racing an expiry: once both are done, what is available is
/// exactly what the surviving buckets hold.
#[test]
fn loom_deposit_racing_expiry_settles() {
    model(|| {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(10);
        let b = Arc::new(RatioBudget::new(1.0, 0.0, Duration::from_secs(10)).expect("valid"));
        b.deposit(t0);
        let d = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.deposit(later))
        };
        // Expires the first deposit.
        let _ = b.available(later);
        d.join().expect("thread");
        assert_eq!(b.available(later), 1);
    });
}

/// A deposit (lock-free) racing two withdrawals (under the lock): whatever
/// the order, no more is granted than was deposited, and what is left adds
/// up.
#[test]
fn loom_withdrawals_racing_a_deposit_never_overspend() {
    model(|| {
        let now = Instant::now();
        let b = Arc::new(RatioBudget::new(1.0, 0.0, Duration::from_secs(10)).expect("valid"));
        b.deposit(now);
        let d = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.deposit(now))
        };
        let w = {
            let b = Arc::clone(&b);
            thread::spawn(move || u64::from(b.try_withdraw(now)))
        };
        let mine = u64::from(b.try_withdraw(now));
        d.join().expect("thread");
        let granted = mine + w.join().expect("thread");
        assert!(granted >= 1, "one credit was there from the start");
        assert_eq!(b.available(now), 2 - granted);
    });
}

/// Concurrent outcomes never push the throttle outside [0, max].
#[test]
fn loom_throttle_stays_in_bounds() {
    model(|| {
        let t = Arc::new(Throttle::new(1.0, 1.0).expect("valid"));
        let handles: Vec<_> = [false, false, true]
            .into_iter()
            .map(|s| {
                let t = Arc::clone(&t);
                thread::spawn(move || t.record(s))
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        let tokens = t.tokens();
        assert!((0.0..=1.0).contains(&tokens), "{tokens}");
    });
}
