//! Model checks of the compare-and-swap, under `--cfg loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p buttress-limit --lib --release loom
//! ```

use loom::sync::Arc;
use loom::thread;

use crate::gcra::{Decision, Gcra};
use crate::quota::Quota;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

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
