//! The gauge and the pressure layers, beside tower's own, in one run:
//!
//! ```text
//! cargo bench -p buttress-benches --bench pressure
//! ```

use std::hint::black_box;
use std::time::Instant;

use buttress_benches::{noop, through, two_threads};
use buttress_pressure::{
    AdaptiveLimitLayer, AdaptiveLimiter, Aimd, Gauge, Priority, ShedLayer, Watermarks,
};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::Layer;

fn gauge() -> Gauge {
    Gauge::builder("bench", Watermarks::new(1 << 40, 1 << 39).expect("valid"))
        .build()
        .expect("valid")
}

fn gauge_ops(c: &mut Criterion) {
    let mut g = c.benchmark_group("pressure_gauge_1_thread");
    let gauge = gauge();
    g.bench_function("is_paused", |b| b.iter(|| black_box(gauge.is_paused())));
    g.bench_function("check", |b| {
        b.iter(|| black_box(gauge.check(Priority::Normal).is_ok()))
    });
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
    g.bench_function("add_then_sub", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let gauge = gauge.clone();
                move || {
                    gauge.add(black_box(3));
                    gauge.sub(black_box(3));
                }
            })
        })
    });
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let mut g = c.benchmark_group("pressure_shed_layer_not_paused");
    let mut bare = noop();
    g.bench_function("bare_service", |b| {
        b.iter(|| black_box(through(&mut bare, 1)))
    });
    let mut ours = ShedLayer::new(gauge()).layer(noop());
    g.bench_function("buttress_shed", |b| {
        b.iter(|| black_box(through(&mut ours, 1)))
    });
    let mut tower_shed = tower::load_shed::LoadShedLayer::new().layer(noop());
    g.bench_function("tower_load_shed", |b| {
        b.iter(|| black_box(through(&mut tower_shed, 1)))
    });
    g.finish();

    let mut g = c.benchmark_group("pressure_shed_layer_shedding");
    let paused = gauge();
    paused.set(1 << 41);
    let mut ours = ShedLayer::new(paused).layer(noop());
    g.bench_function("buttress_shed_refuses", |b| {
        b.iter(|| black_box(through(&mut ours, 1).is_err()))
    });
    g.finish();

    let mut g = c.benchmark_group("pressure_concurrency_limit");
    let aimd = Aimd::new(1000, 1000, 1000).expect("valid");
    let limiter = AdaptiveLimiter::new("bench", aimd).expect("name");
    let mut adaptive = AdaptiveLimitLayer::new(limiter.clone()).layer(noop());
    g.bench_function("buttress_adaptive_aimd", |b| {
        b.iter(|| black_box(through(&mut adaptive, 1)))
    });
    let mut tower_limit = tower::limit::ConcurrencyLimitLayer::new(1000).layer(noop());
    g.bench_function("tower_concurrency_limit", |b| {
        b.iter(|| black_box(through(&mut tower_limit, 1)))
    });
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
