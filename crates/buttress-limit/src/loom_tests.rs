//! Model checks of the compare-and-swap, under `--cfg loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p buttress-limit --lib --release loom
//! ```

use buttress_core::sync::loom_model as model;
use loom::sync::Arc;
use loom::thread;

use crate::gcra::{Decision, Gcra, QuotaCell};
use crate::quota::Quota;

/// However three callers race for a burst of two, exactly two get through.
#[test]
fn loom_never_more_than_the_burst() {
    model(|| {
        let q = Quota::per_second(1)
            .expect("valid")
            .with_burst(2)
            .expect("valid");
        let g = Arc::new(Gcra::new(q));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let g = Arc::clone(&g);
                thread::spawn(move || u32::from(matches!(g.check(0, 1), Decision::Allowed { .. })))
            })
            .collect();
        let mine = u32::from(matches!(g.check(0, 1), Decision::Allowed { .. }));
        let allowed: u32 = mine
            + handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .sum::<u32>();
        assert_eq!(allowed, 2);
    });
}

/// A quota change racing a check: the check sees the old quota or the new
/// one, never the interval of one with the burst of the other.
#[test]
fn loom_quota_changes_are_never_torn() {
    model(|| {
        let old = Quota::per_second(1000).expect("valid"); // 1 ms × 1000
        let new = Quota::per_second(1)
            .expect("valid")
            .with_burst(1)
            .expect("valid"); // 1 s × 1
        let cell = Arc::new(QuotaCell::new(old));
        let writer = {
            let cell = Arc::clone(&cell);
            thread::spawn(move || cell.set(new, |_, _| {}))
        };
        let (t, cap) = cell.rates();
        writer.join().expect("thread");
        let ms = 1_000_000;
        assert!(
            (t, cap) == (ms, 1000 * ms) || (t, cap) == (1000 * ms, 1000 * ms),
            "torn quota: {t} {cap}"
        );
    });
}
