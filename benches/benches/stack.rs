//! The knowledge API's throughput on loopback against upstream-sim at zero
//! latency: the built-in policy's full resilience stack beside the same
//! handler with no layers (16 queries in flight per iteration):
//!
//! ```text
//! cargo bench -p buttress-benches --bench stack
//! ```

use buttress_benches::cases::stack;
use criterion::{Criterion, criterion_group, criterion_main};

fn throughput(c: &mut Criterion) {
    buttress_benches::bench(
        c,
        "stack_knowledge_query_16_in_flight",
        vec![
            ("resilient", stack::query_resilient()),
            ("bare", stack::query_bare()),
        ],
    );
}

criterion_group!(benches, throughput);
criterion_main!(benches);
