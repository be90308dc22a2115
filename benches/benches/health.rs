//! The readiness gate, open, beside the bare service it wraps:
//!
//! ```text
//! cargo bench -p buttress-benches --bench health
//! ```

use std::hint::black_box;

use buttress_benches::Routine;
use buttress_benches::cases::health as cases;
use buttress_health::Readiness;
use criterion::{Criterion, criterion_group, criterion_main};

fn gate(c: &mut Criterion) {
    let mut g = c.benchmark_group("health_readiness_open");
    let gate = Readiness::new();
    g.bench_function("is_ready", |b| b.iter(|| black_box(gate.is_ready())));
    for (name, make) in [
        ("bare_service", cases::bare_service as fn() -> Routine),
        ("readiness_layer", cases::readiness_open),
    ] {
        let mut routine = make();
        g.bench_function(name, |b| b.iter_custom(&mut routine));
    }
    g.finish();
}

criterion_group!(benches, gate);
criterion_main!(benches);
