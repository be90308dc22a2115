//! A status snapshot of 100 breakers, 20 limiters, 10 gauges and 5
//! executors; and a breaker's closed path while ten status-page clients
//! follow it, beside the same breaker followed by nobody:
//!
//! ```text
//! cargo bench -p buttress-benches --bench admin
//! ```

use buttress_benches::Routine;
use buttress_benches::cases::{admin as cases, breaker};
use criterion::{Criterion, criterion_group, criterion_main};

fn snapshot(c: &mut Criterion) {
    let mut g = c.benchmark_group("admin_status_snapshot");
    let mut routine = cases::status_snapshot();
    g.bench_function("100_breakers_20_limiters_10_gauges_5_executors", |b| {
        b.iter_custom(&mut routine)
    });
    g.finish();
}

fn followed(c: &mut Criterion) {
    let mut g = c.benchmark_group("admin_breaker_followed");
    for (name, make) in [
        ("permit_not_followed", breaker::permit as fn() -> Routine),
        ("permit_followed_by_10_clients", cases::permit_followed),
    ] {
        let mut routine = make();
        g.bench_function(name, |b| b.iter_custom(&mut routine));
    }
    g.finish();
}

criterion_group!(benches, snapshot, followed);
criterion_main!(benches);
