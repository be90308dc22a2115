//! The benchmark report: gated figures, each measured beside a same-run
//! anchor, so that CI holds the ratios the guides quote.
//!
//! Every gate compares one of our routines with an anchor (a competitor,
//! or the bare service a layer wraps) measured in the same process,
//! interleaved sample by sample, so that the drift of a shared machine
//! hits both. A gate is a ratio of the two medians, or, where the goal is
//! stated as "the bare service plus N ns", the difference of the two
//! medians. The gate's limit is its goal plus a tolerance for this noisy
//! 2-core machine, or, for a goal not yet met, the figure reached plus that
//! tolerance (so it cannot get worse, and the table shows the goal as
//! missed); a gate that fails is measured once more, and fails the report
//! only if it fails again.

mod gates;
mod measure;
mod output;

use std::time::Duration;

pub use gates::{Check, Gate, gates};
pub use measure::{Figures, Settings, measure};
pub use output::{Outcome, Row};

/// Runs the report as the `report` bench target does; returns the exit
/// code (1 when a gate failed twice).
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench -- --test` runs every bench target with `--test`:
    // then each routine runs once, to prove it works, and nothing is timed.
    let smoke = args.iter().any(|a| a == "--test");
    let filters: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| {
            !a.starts_with('-') && a.parse::<u64>().is_err() && *a != "ours" && *a != "anchor"
        })
        .collect();
    let selected: Vec<Gate> = gates()
        .into_iter()
        .filter(|g| {
            // `=id` selects one gate exactly; anything else, every gate
            // whose id contains it.
            filters.is_empty()
                || filters.iter().any(|f| match f.strip_prefix('=') {
                    Some(exact) => g.id == exact,
                    None => g.id.contains(f),
                })
        })
        .collect();
    // `--probe ours|anchor N`: build the selected gates' routine and run it
    // N times, untimed, for an instruction count under
    // `valgrind --tool=callgrind` (repeatable where timings are not):
    // the difference between two counts of N is N times one operation.
    if let Some(i) = args.iter().position(|a| a == "--probe") {
        let which = args.get(i + 1).map(String::as_str);
        let n = args
            .get(i + 2)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        for g in &selected {
            let mut r = if which == Some("anchor") {
                (g.anchor)()
            } else {
                (g.ours)()
            };
            r(n);
        }
        return 0;
    }
    if smoke {
        for g in &selected {
            (g.ours)()(1);
            (g.anchor)()(1);
            println!("report {}: ok (smoke)", g.id);
        }
        return 0;
    }
    let settings = Settings::from_env();
    println!(
        "benchmark report: {} gates, {} rounds of {:?} samples each, interleaved",
        selected.len(),
        settings.rounds,
        settings.sample
    );
    let mut rows = Vec::new();
    for g in selected {
        let mut figures = measure(&g, &settings);
        let mut outcome = g.check.judge(&figures);
        let mut reruns = 0;
        // A shared machine has bursts of noise longer than one
        // measurement: a gate fails only when MEASUREMENTS in a row are
        // over it (a real regression is over every time).
        while outcome == Outcome::Fail && reruns + 1 < MEASUREMENTS {
            println!(
                "  {}: over its gate ({:.3} against {:.3}, ours {:.1} ns, anchor {:.1} ns); measuring again",
                g.id,
                g.check.value(&figures),
                g.check.limit().unwrap_or(f64::NAN),
                figures.ours,
                figures.anchor
            );
            figures = measure(&g, &settings);
            outcome = g.check.judge(&figures);
            reruns += 1;
        }
        let row = Row::new(&g, figures, outcome, reruns);
        println!("{}", row.line());
        rows.push(row);
    }
    let dir = output::dir();
    match output::write(&dir, &rows) {
        Ok(()) => println!("report written to {}", dir.display()),
        Err(e) => eprintln!("could not write the report to {}: {e}", dir.display()),
    }
    println!();
    println!("{}", output::markdown(&rows));
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.outcome == Outcome::Fail)
        .map(|r| r.id)
        .collect();
    let gated = rows.iter().filter(|r| r.outcome != Outcome::Report).count();
    if failed.is_empty() {
        println!("bench report: {gated} gates passed");
        0
    } else {
        println!(
            "bench report: {} of {gated} gates FAILED: {}",
            failed.len(),
            failed.join(", ")
        );
        1
    }
}

/// How many measurements in a row must be over a gate for it to fail.
pub const MEASUREMENTS: u32 = 3;

/// How long a figure is, for humans: ns, µs or ms with three figures.
pub fn human(ns: f64) -> String {
    let d = Duration::from_secs_f64(ns.max(0.0) / 1e9);
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}
