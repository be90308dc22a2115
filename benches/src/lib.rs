//! Criterion benchmarks of buttress; see `benches/`.
