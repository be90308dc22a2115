//! The limiter against a model in exact arithmetic: over any interval,
//! admitted ≤ burst + rate × interval; and when demand exceeds supply,
//! admitted ≥ that bound minus one.

use std::time::Duration;

use buttress_core::ManualClock;
use buttress_limit::{Quota, RateLimiter};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random arrivals: no window of time ever admits more than the bound,
    /// computed with the exact rate `count / period`.
    #[test]
    fn never_more_than_burst_plus_rate_times_interval(
        per_second in 1u64..50,
        burst in 1u32..10,
        gaps in prop::collection::vec(0u64..300, 1..300),
        costs in prop::collection::vec(1u32..4, 1..300),
    ) {
        let clock = ManualClock::new();
        let q = Quota::per_second(per_second).expect("valid").with_burst(burst).expect("valid");
        let limiter = RateLimiter::with_clock("model", q, clock.clone()).expect("valid");
        let mut admitted: Vec<(u128, u128)> = Vec::new(); // (time ns, cost)
        let mut now: u128 = 0;
        for (i, gap) in gaps.iter().enumerate() {
            clock.advance(Duration::from_millis(*gap));
            now += u128::from(*gap) * 1_000_000;
            let cost = costs[i % costs.len()];
            if limiter.check_n(cost).is_ok() {
                admitted.push((now, u128::from(cost)));
            }
        }
        // Between any two admissions (inclusive): tokens ≤ burst + span × rate,
        // that is tokens × 1e9 ≤ burst × 1e9 + span × per_second.
        for i in 0..admitted.len() {
            let mut tokens = 0u128;
            for j in i..admitted.len() {
                tokens += admitted[j].1;
                let span = admitted[j].0 - admitted[i].0;
                prop_assert!(
                    tokens * 1_000_000_000 <= u128::from(burst) * 1_000_000_000 + span * u128::from(per_second),
                    "{} tokens in {} ns", tokens, span
                );
            }
        }
    }

    /// Demand that always exceeds supply (a request the moment a token can
    /// be had): over T, at least burst + rate × T − 1 are admitted.
    #[test]
    fn saturating_demand_gets_the_whole_supply(
        per_second in 1u64..200,
        burst in 1u32..20,
        millis in 1u64..5_000,
    ) {
        let clock = ManualClock::new();
        let q = Quota::per_second(per_second).expect("valid").with_burst(burst).expect("valid");
        let limiter = RateLimiter::with_clock("model", q, clock.clone()).expect("valid");
        let horizon = Duration::from_millis(millis);
        let mut admitted = 0u128;
        loop {
            match limiter.check() {
                Ok(()) => admitted += 1,
                Err(e) => {
                    let wait = e.retry_after().expect("a cost of one always fits");
                    if clock.elapsed() + wait > horizon {
                        break;
                    }
                    clock.advance(wait);
                }
            }
        }
        let supply = u128::from(burst) + u128::from(millis) * u128::from(per_second) / 1000;
        prop_assert!(admitted <= supply, "{admitted} > {supply}");
        prop_assert!(admitted + 1 >= supply, "{admitted} < {supply} - 1");
    }
}
