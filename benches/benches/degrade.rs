//! The fallback layer on the success path beside the bare service, and a
//! stale-cache hit beside a bare moka `get`:
//!
//! ```text
//! cargo bench -p buttress-benches --bench degrade
//! ```

use buttress_benches::Routine;
use buttress_benches::cases::degrade as cases;
use criterion::{Criterion, criterion_group, criterion_main};

fn fallback(c: &mut Criterion) {
    let mut g = c.benchmark_group("degrade_fallback_success");
    for (name, make) in [
        ("bare_service", cases::bare_service as fn() -> Routine),
        ("fallback_layer", cases::fallback_success),
    ] {
        let mut routine = make();
        g.bench_function(name, |b| b.iter_custom(&mut routine));
    }
    g.finish();
}

fn cache(c: &mut Criterion) {
    let mut g = c.benchmark_group("degrade_cache_hit");
    for (name, make) in [
        ("moka_get", cases::moka_get as fn() -> Routine),
        ("stale_cache", cases::cache_hit),
        ("cache_layer", cases::cache_layer_hit),
    ] {
        let mut routine = make();
        g.bench_function(name, |b| b.iter_custom(&mut routine));
    }
    g.finish();
}

criterion_group!(benches, fallback, cache);
criterion_main!(benches);
