//! Gated routines for buttress-limit, beside governor's and
//! tower-resilience's. Every limiter admits a billion requests a second,
//! so every measured check is admitted: what is measured is the cost of an
//! admitted check.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use buttress_core::TokioClock;
use buttress_limit::{KeyedRateLimiter, Quota, RateLimitLayer, RateLimiter};
use tower::Layer;

use crate::{Routine, noop, routine, service_routine, two_thread_routine};

const RATE: u32 = 1_000_000_000;
/// Keys the keyed cases spread over (all present before measuring).
pub const KEYS: u64 = 10_000;

fn quota() -> Quota {
    Quota::per_second(u64::from(RATE)).expect("valid")
}

/// A limiter as a user gets it from `RateLimiter::new`.
pub fn limiter() -> RateLimiter {
    RateLimiter::new("bench", quota()).expect("valid")
}

fn gov_quota() -> governor::Quota {
    governor::Quota::per_second(NonZeroU32::new(RATE).expect("non-zero"))
}

/// governor's direct limiter with its defaults.
pub fn governor() -> governor::DefaultDirectRateLimiter {
    governor::RateLimiter::direct(gov_quota())
}

fn keyed() -> KeyedRateLimiter<u64> {
    let l = KeyedRateLimiter::builder("bench", quota())
        .max_keys(100_000)
        .build()
        .expect("valid");
    for k in 0..KEYS {
        let _ = l.check(&k);
    }
    l
}

fn governor_keyed() -> governor::DefaultKeyedRateLimiter<u64> {
    let l = governor::RateLimiter::keyed(gov_quota());
    for k in 0..KEYS {
        let _ = l.check_key(&k);
    }
    l
}

/// The next key of a walk over all [`KEYS`] that defeats the prefetcher.
fn next_key(k: &mut u64) -> u64 {
    *k = (*k + 7919) % KEYS;
    *k
}

/// `RateLimiter::check` with the default clock.
pub fn check() -> Routine {
    let l = limiter();
    routine(move || {
        black_box(l.check().is_ok());
    })
}

/// `RateLimiter::check` reading tokio's clock (what paused-time tests get).
pub fn check_tokio_clock() -> Routine {
    let l = RateLimiter::with_clock("bench", quota(), TokioClock).expect("valid");
    routine(move || {
        black_box(l.check().is_ok());
    })
}

/// governor's `check`.
pub fn governor_check() -> Routine {
    let g = governor();
    routine(move || {
        black_box(g.check().is_ok());
    })
}

/// Two threads checking one shared limiter at once; time per check on a thread.
pub fn check_two_threads() -> Routine {
    let l = limiter();
    two_thread_routine(move || {
        let l = l.clone();
        move || {
            black_box(l.check().is_ok());
        }
    })
}

/// governor, two threads on one limiter.
pub fn governor_check_two_threads() -> Routine {
    let g = Arc::new(governor());
    two_thread_routine(move || {
        let g = Arc::clone(&g);
        move || {
            black_box(g.check().is_ok());
        }
    })
}

/// The keyed limiter's check over 10,000 keys, default clock.
pub fn keyed_check() -> Routine {
    let l = keyed();
    let mut k = 0;
    routine(move || {
        black_box(l.check(&next_key(&mut k)).is_ok());
    })
}

/// governor's keyed check over the same keys.
pub fn governor_keyed_check() -> Routine {
    let l = governor_keyed();
    let mut k = 0;
    routine(move || {
        black_box(l.check_key(&next_key(&mut k)).is_ok());
    })
}

/// Two threads checking one keyed limiter, each walking all the keys
/// from a different start.
pub fn keyed_check_two_threads() -> Routine {
    let l = keyed();
    let start = std::cell::Cell::new(0);
    two_thread_routine(move || {
        let l = l.clone();
        let mut k = start.replace(start.get() + KEYS / 2);
        move || {
            black_box(l.check(&next_key(&mut k)).is_ok());
        }
    })
}

/// governor keyed, two threads.
pub fn governor_keyed_check_two_threads() -> Routine {
    let l = Arc::new(governor_keyed());
    let start = std::cell::Cell::new(0);
    two_thread_routine(move || {
        let l = Arc::clone(&l);
        let mut k = start.replace(start.get() + KEYS / 2);
        move || {
            black_box(l.check_key(&next_key(&mut k)).is_ok());
        }
    })
}

/// One request through `RateLimitLayer` over the no-op service.
pub fn layer() -> Routine {
    service_routine(RateLimitLayer::new(limiter()).layer(noop()))
}

/// One request through tower-resilience's rate limiter.
pub fn tower_resilience_layer() -> Routine {
    let layer = tower_resilience_ratelimiter::RateLimiterLayer::builder()
        .limit_for_period(RATE as usize)
        .refresh_period(Duration::from_secs(1))
        .timeout_duration(Duration::from_millis(1))
        .build()
        .expect("valid");
    service_routine(layer.layer(noop()))
}

/// One request through the bare no-op service: the baseline of every layer.
pub fn noop_service() -> Routine {
    service_routine(noop())
}
