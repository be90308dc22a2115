//! The gauge and the pressure layers, beside tower's own and a tokio
//! semaphore, in one run:
//!
//! ```text
//! cargo bench -p buttress-benches --bench pressure
//! ```
//!
//! The gated rows measure the routines of `buttress_benches::cases::pressure`
//! (the ones the CI report gates), each beside its anchor in one group.

use std::hint::black_box;
use std::time::Instant;

use buttress_benches::cases::pressure as cases;
use buttress_benches::{Routine, two_threads};
use buttress_pressure::{AdaptiveLimiter, Aimd, Gauge, ShedLayer, Watermarks};
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use tower::Layer;

fn gauge() -> Gauge {
    Gauge::builder("bench", Watermarks::new(1 << 40, 1 << 39).expect("valid"))
        .build()
        .expect("valid")
}

/// Measures a gated routine under `name`.
fn routine(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, make: fn() -> Routine) {
    let mut routine = make();
    g.bench_function(name, |b| b.iter_custom(&mut routine));
}

fn gauge_ops(c: &mut Criterion) {
    let mut g = c.benchmark_group("pressure_gauge_1_thread");
    let gauge = gauge();
    g.bench_function("is_paused", |b| b.iter(|| black_box(gauge.is_paused())));
    routine(&mut g, "check", cases::gauge_check);
    g.bench_function("add_then_sub", |b| {
        b.iter(|| {
            gauge.add(black_box(3));
            gauge.sub(black_box(3));
        })
    });
    g.bench_function("enter_guard", |b| {
        b.iter(|| drop(black_box(gauge.enter(1))))
    });
    g.finish();

    let mut g = c.benchmark_group("pressure_gauge_2_threads");
    routine(&mut g, "check", cases::gauge_check_two_threads);
    routine(&mut g, "add_then_sub", cases::gauge_add_sub_two_threads);
    routine(
        &mut g,
        "tokio_semaphore_try_acquire_release",
        cases::semaphore_two_threads,
    );
    g.bench_function("is_paused", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let gauge = gauge.clone();
                move || {
                    black_box(gauge.is_paused());
                }
            })
        })
    });
    g.finish();
}

fn layers(c: &mut Criterion) {
    let mut g = c.benchmark_group("pressure_shed_layer_not_paused");
    routine(&mut g, "bare_service", cases::noop_service);
    routine(&mut g, "buttress_shed", cases::shed_layer);
    routine(&mut g, "tower_load_shed", cases::tower_load_shed);
    g.finish();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let mut g = c.benchmark_group("pressure_shed_layer_shedding");
    let paused = gauge();
    paused.set(1 << 41);
    let mut ours = ShedLayer::new(paused).layer(buttress_benches::noop());
    g.bench_function("buttress_shed_refuses", |b| {
        b.iter(|| black_box(buttress_benches::through(&mut ours, 1).is_err()))
    });
    g.finish();

    let mut g = c.benchmark_group("pressure_concurrency_limit");
    routine(&mut g, "buttress_adaptive_aimd", cases::adaptive_aimd);
    routine(&mut g, "buttress_adaptive_vegas", cases::adaptive_vegas);
    routine(
        &mut g,
        "tower_concurrency_limit",
        cases::tower_concurrency_limit,
    );
    let limiter =
        AdaptiveLimiter::new("bench", Aimd::new(1000, 1000, 1000).expect("valid")).expect("name");
    g.bench_function("buttress_permit_only", |b| {
        b.iter(|| {
            let now = Instant::now();
            if let Ok(p) = limiter.try_acquire(now) {
                p.record(now, false);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, gauge_ops, layers);
criterion_main!(benches);
