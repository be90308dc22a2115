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

use buttress_benches::cases::breaker as cases;
use buttress_benches::{bench, noop, routine, run, service_routine, through, two_thread_routine};
use buttress_breaker::CircuitBreaker;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::Layer;

fn closed_one_thread(c: &mut Criterion) {
    let breaker = cases::rate_window();
    let consecutive = cases::consecutive();
    let failsafe_cb = failsafe::Config::new().build();
    bench(
        c,
        "breaker_closed_1_thread",
        vec![
            ("baseline_noop_service", service_routine(noop())),
            ("buttress_permit_rate_window", cases::permit()),
            (
                "buttress_permit_consecutive",
                routine(move || {
                    let _ = black_box(consecutive.try_acquire().map(|p| p.success()));
                }),
            ),
            (
                "buttress_call_rate_window",
                routine(move || {
                    let _ = black_box(run(
                        breaker.call(|| ready(Ok::<_, std::io::Error>(black_box(1u64))))
                    ));
                }),
            ),
            ("buttress_tower_rate_window", cases::layer()),
            ("buttress_tower_consecutive", cases::layer_consecutive()),
            ("failsafe_sync_call", cases::failsafe_sync_call()),
            (
                "failsafe_future_call",
                routine(move || {
                    let _ = black_box(run(failsafe::futures::CircuitBreaker::call(
                        &failsafe_cb,
                        ready(Ok::<_, std::io::Error>(black_box(1u64))),
                    )));
                }),
            ),
            ("tower_resilience_tower", cases::tower_resilience_layer()),
        ],
    );
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
    let breaker = cases::rate_window();
    let consecutive = cases::consecutive();
    bench(
        c,
        "breaker_closed_2_threads",
        vec![
            (
                "baseline_noop_service",
                two_thread_routine(|| {
                    let mut s = noop();
                    move || {
                        let _ = black_box(through(&mut s, black_box(1)));
                    }
                }),
            ),
            (
                "buttress_permit_rate_window",
                two_thread_routine(move || {
                    let br = breaker.clone();
                    move || {
                        let _ = black_box(br.try_acquire().map(|p| p.success()));
                    }
                }),
            ),
            ("buttress_tower_rate_window", cases::layer_two_threads()),
            (
                "buttress_tower_consecutive",
                two_thread_routine(move || {
                    let mut s = consecutive.layer().layer(noop());
                    move || {
                        let _ = black_box(through(&mut s, black_box(1)));
                    }
                }),
            ),
            (
                "tower_resilience_tower",
                cases::tower_resilience_two_threads(),
            ),
        ],
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = closed_one_thread, rejected, closed_two_threads
}
criterion_main!(benches);
