//! The gauge against the hysteresis rule, for any sequence of changes.

use buttress_pressure::{Gauge, MAX_LEVEL, Priority, Watermarks};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Change {
    Add(u64),
    Sub(u64),
    Set(u64),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0..60u64).prop_map(Change::Add),
        (0..60u64).prop_map(Change::Sub),
        (0..150u64).prop_map(Change::Set),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn paused_exactly_when_the_rule_says(
        high in 2..120u64,
        gap in 1..100u64,
        low_shift in 0..40u64,
        own_low_band in any::<bool>(),
        changes in prop::collection::vec(change(), 0..200),
    ) {
        let low = high.saturating_sub(gap).min(high - 1);
        let normal = Watermarks::new(high, low).unwrap();
        let lp_high = high.saturating_sub(low_shift).max(1);
        let lp_low = low.saturating_sub(low_shift).min(lp_high - 1);
        let lp = Watermarks::new(lp_high, lp_low).unwrap();
        let mut builder = Gauge::builder("m", normal);
        if own_low_band {
            builder = builder.low_priority(lp);
        }
        let g = builder.build().unwrap();
        // Without a band of its own, low priority follows the normal one.
        let (lp_high, lp_low) = if own_low_band { (lp_high, lp_low) } else { (high, low) };
        let (mut level, mut paused, mut paused_low) = (0u64, false, false);
        for c in &changes {
            let before = (paused, paused_low);
            level = match *c {
                Change::Add(n) => (level + n).min(MAX_LEVEL),
                Change::Sub(n) => level.saturating_sub(n),
                Change::Set(n) => n,
            };
            match *c {
                Change::Add(n) => g.add(n),
                Change::Sub(n) => g.sub(n),
                Change::Set(n) => g.set(n),
            }
            // The rule, written out.
            paused = if paused { level > low } else { level >= high };
            paused_low = if paused_low { level > lp_low } else { level >= lp_high };
            prop_assert_eq!(g.level(), level);
            prop_assert_eq!(g.is_paused(), paused, "level {} after {:?}", level, c);
            prop_assert_eq!(g.is_paused_for(Priority::Low), paused_low);
            // Strictly between the watermarks, the state never flips.
            if level > low && level < high {
                prop_assert_eq!(paused, before.0);
            }
            prop_assert_eq!(g.check(Priority::Normal).is_err(), paused);
        }
    }
}
