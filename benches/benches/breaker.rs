//! The breaker side by side with the crates a user would otherwise pick, in
//! one run:
//!
//! ```text
//! cargo bench -p buttress-benches --bench breaker
//! ```
//!
//! Every service here is a no-op that answers at once, so what is measured
//! is the breaker's own cost. Futures are polled once with a no-op waker
//! (they are all ready), inside a tokio runtime context for the crates that
//! need one. The two-thread groups report the time per call on each thread
//! while both threads hammer one shared breaker.

use std::future::ready;
use std::hint::black_box;
use std::time::Duration;

use buttress_benches::{noop, run, through, two_threads};
use buttress_breaker::{BreakerConfig, CircuitBreaker};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::Layer;

fn buttress_default() -> CircuitBreaker {
    // resilience4j defaults: 50 % of a 100-call window.
    CircuitBreaker::new("bench", BreakerConfig::default()).expect("valid")
}

fn buttress_consecutive() -> CircuitBreaker {
    CircuitBreaker::new("bench", BreakerConfig::embeddings()).expect("valid")
}

fn tower_resilience() -> tower_resilience_circuitbreaker::CircuitBreakerLayer {
    tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .build()
        .expect("valid")
}

fn closed_one_thread(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let mut g = c.benchmark_group("breaker_closed_1_thread");

    let mut base = noop();
    g.bench_function("baseline_noop_service", |b| {
        b.iter(|| through(&mut base, black_box(1)))
    });

    let breaker = buttress_default();
    g.bench_function("buttress_permit_rate_window", |b| {
        b.iter(|| breaker.try_acquire().map(|p| p.success()))
    });
    let consecutive = buttress_consecutive();
    g.bench_function("buttress_permit_consecutive", |b| {
        b.iter(|| consecutive.try_acquire().map(|p| p.success()))
    });
    g.bench_function("buttress_call_rate_window", |b| {
        b.iter(|| run(breaker.call(|| ready(Ok::<_, std::io::Error>(black_box(1u64))))))
    });
    let mut svc = breaker.layer().layer(noop());
    g.bench_function("buttress_tower_rate_window", |b| {
        b.iter(|| through(&mut svc, black_box(1)))
    });

    let failsafe_cb = failsafe::Config::new().build();
    g.bench_function("failsafe_sync_call", |b| {
        b.iter(|| {
            failsafe::CircuitBreaker::call(&failsafe_cb, || {
                Ok::<_, std::io::Error>(black_box(1u64))
            })
        })
    });
    g.bench_function("failsafe_future_call", |b| {
        b.iter(|| {
            run(failsafe::futures::CircuitBreaker::call(
                &failsafe_cb,
                ready(Ok::<_, std::io::Error>(black_box(1u64))),
            ))
        })
    });

    let mut tr = tower_resilience().layer(noop());
    g.bench_function("tower_resilience_tower", |b| {
        b.iter(|| through(&mut tr, black_box(1)))
    });
    g.finish();
}

fn rejected(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let mut g = c.benchmark_group("breaker_rejected_open");
    let breaker = CircuitBreaker::builder("bench")
        .consecutive_failures(1)
        .failure_rate(None)
        .open_for(Duration::from_secs(3600))
        .build()
        .expect("valid");
    breaker.try_acquire().expect("closed").failure();
    g.bench_function("buttress_permit", |b| {
        b.iter(|| breaker.try_acquire().is_err())
    });
    let mut svc = breaker.layer().layer(noop());
    g.bench_function("buttress_tower", |b| {
        b.iter(|| through(&mut svc, black_box(1)).is_err())
    });
    g.finish();
}

fn closed_two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("breaker_closed_2_threads");
    g.bench_function("baseline_noop_service", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let mut s = noop();
                move || {
                    let _ = black_box(through(&mut s, black_box(1)));
                }
            })
        })
    });
    let breaker = buttress_default();
    g.bench_function("buttress_permit_rate_window", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let br = breaker.clone();
                move || {
                    let _ = black_box(br.try_acquire().map(|p| p.success()));
                }
            })
        })
    });
    g.bench_function("buttress_tower_rate_window", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let mut s = breaker.layer().layer(noop());
                move || {
                    let _ = black_box(through(&mut s, black_box(1)));
                }
            })
        })
    });
    let consecutive = buttress_consecutive();
    g.bench_function("buttress_tower_consecutive", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let mut s = consecutive.layer().layer(noop());
                move || {
                    let _ = black_box(through(&mut s, black_box(1)));
                }
            })
        })
    });
    let tr = tower_resilience().layer(noop());
    g.bench_function("tower_resilience_tower", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let mut s = tr.clone();
                move || {
                    let _ = black_box(through(&mut s, black_box(1)));
                }
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = closed_one_thread, rejected, closed_two_threads
}
criterion_main!(benches);
