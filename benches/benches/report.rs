//! The benchmark report CI runs: every gated figure beside its anchor in
//! one process, in a short fixed-time mode, written as a table (markdown
//! and JSON under `target/bench-report/`), failing when a gate is passed.
//!
//! ```text
//! cargo bench -p buttress-benches --bench report            # measure and gate
//! cargo bench -p buttress-benches --bench report -- limit   # only gates whose id contains "limit"
//! cargo bench -p buttress-benches --bench report -- --test  # run each routine once (no timing)
//! ```
//!
//! Gates and the measuring method are in `buttress_benches::report`; the
//! list is documented in docs/benchmarks.md.

fn main() {
    std::process::exit(buttress_benches::report::main());
}
