//! The rate limiter side by side, in one run:
//!
//! ```text
//! cargo bench -p buttress-benches --bench limit
//! ```
//!
//! Every limiter is configured so that the checks measured are admitted
//! (a billion tokens a second): what is measured is the cost of an
//! admitted check, on one thread and on two threads sharing one limiter,
//! and through each tower layer.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use buttress_benches::{noop, through, two_threads};
use buttress_limit::{Quota, RateLimitLayer, RateLimiter};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::{Layer, ServiceBuilder};

const RATE: u32 = 1_000_000_000;

fn ours() -> RateLimiter {
    RateLimiter::new("bench", Quota::per_second(u64::from(RATE)).expect("valid")).expect("valid")
}

fn fast() -> RateLimiter {
    RateLimiter::with_fast_clock("bench", Quota::per_second(u64::from(RATE)).expect("valid"))
        .expect("valid")
}

fn governor() -> governor::DefaultDirectRateLimiter {
    governor::RateLimiter::direct(governor::Quota::per_second(
        NonZeroU32::new(RATE).expect("non-zero"),
    ))
}

fn direct(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let mut g = c.benchmark_group("limit_direct_1_thread");
    let l = ours();
    g.bench_function("buttress_check", |b| {
        b.iter(|| black_box(l.check().is_ok()))
    });
    let fast_limiter = fast();
    g.bench_function("buttress_check_fast_clock", |b| {
        b.iter(|| black_box(fast_limiter.check().is_ok()))
    });
    let gov = governor();
    g.bench_function("governor_check", |b| {
        b.iter(|| black_box(gov.check().is_ok()))
    });
    g.finish();

    let mut g = c.benchmark_group("limit_layer");
    let mut base = noop();
    g.bench_function("baseline_noop_service", |b| {
        b.iter(|| through(&mut base, black_box(1)))
    });
    let mut svc = RateLimitLayer::new(ours()).layer(noop());
    g.bench_function("buttress_layer", |b| {
        b.iter(|| through(&mut svc, black_box(1)))
    });
    let mut svc_fast = RateLimitLayer::new(fast()).layer(noop());
    g.bench_function("buttress_layer_fast_clock", |b| {
        b.iter(|| through(&mut svc_fast, black_box(1)))
    });
    let mut tower_rl = ServiceBuilder::new()
        .rate_limit(u64::from(RATE), Duration::from_secs(1))
        .service(noop());
    g.bench_function("tower_rate_limit", |b| {
        b.iter(|| through(&mut tower_rl, black_box(1)))
    });
    let tr = tower_resilience_ratelimiter::RateLimiterLayer::builder()
        .limit_for_period(RATE as usize)
        .refresh_period(Duration::from_secs(1))
        .timeout_duration(Duration::from_millis(1))
        .build()
        .expect("valid");
    let mut tr_svc = tr.layer(noop());
    g.bench_function("tower_resilience_rate_limiter", |b| {
        b.iter(|| through(&mut tr_svc, black_box(1)))
    });
    g.finish();
}

fn direct_two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("limit_direct_2_threads");
    let l = ours();
    g.bench_function("buttress_check", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let l = l.clone();
                move || {
                    black_box(l.check().is_ok());
                }
            })
        })
    });
    let f = fast();
    g.bench_function("buttress_check_fast_clock", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let f = f.clone();
                move || {
                    black_box(f.check().is_ok());
                }
            })
        })
    });
    let gov = Arc::new(governor());
    g.bench_function("governor_check", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let gov = Arc::clone(&gov);
                move || {
                    black_box(gov.check().is_ok());
                }
            })
        })
    });
    g.finish();
}

fn keyed(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let mut g = c.benchmark_group("limit_keyed_10k_keys");
    let quota = Quota::per_second(u64::from(RATE)).expect("valid");
    let ours: buttress_limit::KeyedRateLimiter<u64> =
        buttress_limit::KeyedRateLimiter::builder("bench", quota)
            .max_keys(100_000)
            .build()
            .expect("valid");
    let fast: buttress_limit::KeyedRateLimiter<u64> =
        buttress_limit::KeyedRateLimiter::builder("bench", quota)
            .max_keys(100_000)
            .fast_clock()
            .build()
            .expect("valid");
    let gov: governor::DefaultKeyedRateLimiter<u64> = governor::RateLimiter::keyed(
        governor::Quota::per_second(NonZeroU32::new(RATE).expect("non-zero")),
    );
    for k in 0..10_000u64 {
        let _ = ours.check(&k);
        let _ = fast.check(&k);
        let _ = gov.check_key(&k);
    }
    let mut k = 0u64;
    g.bench_function("buttress_check_key", |b| {
        b.iter(|| {
            k = (k + 7919) % 10_000;
            black_box(ours.check(&k).is_ok())
        })
    });
    let mut k = 0u64;
    g.bench_function("buttress_check_key_fast_clock", |b| {
        b.iter(|| {
            k = (k + 7919) % 10_000;
            black_box(fast.check(&k).is_ok())
        })
    });
    let mut k = 0u64;
    g.bench_function("governor_check_key", |b| {
        b.iter(|| {
            k = (k + 7919) % 10_000;
            black_box(gov.check_key(&k).is_ok())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = direct, direct_two_threads, keyed
}
criterion_main!(benches);
