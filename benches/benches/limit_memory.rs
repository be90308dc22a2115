//! Memory per key of keyed limiters, ours beside governor's:
//!
//! ```text
//! cargo bench -p buttress-benches --bench limit_memory
//! ```
//!
//! Counts the bytes still allocated after 100,000 distinct `u64` keys have
//! each been checked once.

use std::num::NonZeroU32;

use buttress_limit::{KeyedRateLimiter, Quota};

const KEYS: u64 = 100_000;

fn main() {
    let quota = Quota::per_second(10).expect("valid");
    let ours = allocation_counter::measure(|| {
        let l: KeyedRateLimiter<u64> = KeyedRateLimiter::builder("memory", quota)
            .max_keys(KEYS as usize * 2)
            .build()
            .expect("valid");
        for k in 0..KEYS {
            let _ = l.check(&k);
        }
        std::mem::forget(l); // keep it allocated for the count
    });
    let governor = allocation_counter::measure(|| {
        let l: governor::DefaultKeyedRateLimiter<u64> = governor::RateLimiter::keyed(
            governor::Quota::per_second(NonZeroU32::new(10).expect("non-zero")),
        );
        for k in 0..KEYS {
            let _ = l.check_key(&k);
        }
        std::mem::forget(l);
    });
    println!("keyed limiter memory, {KEYS} u64 keys:");
    println!("| limiter | bytes allocated | bytes per key |");
    println!("|---|---|---|");
    for (name, info) in [
        ("buttress KeyedRateLimiter", ours),
        ("governor keyed (dashmap)", governor),
    ] {
        println!(
            "| {name} | {} | {:.1} |",
            info.bytes_current,
            info.bytes_current as f64 / KEYS as f64
        );
    }
}
