//! The report's table, printed and written as markdown and JSON.

use std::path::{Path, PathBuf};

use super::{Check, Figures, Gate, human};

/// How a gate came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Within its limit.
    Pass,
    /// Over its limit, twice.
    Fail,
    /// Not gated.
    Report,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Row {
    /// The gate's id.
    pub id: &'static str,
    what: &'static str,
    versus: &'static str,
    check: Check,
    figures: Figures,
    /// How it came out.
    pub outcome: Outcome,
    reruns: u32,
}

impl Row {
    /// A row for `gate`, measured as `figures`.
    pub fn new(gate: &Gate, figures: Figures, outcome: Outcome, reruns: u32) -> Self {
        Self {
            id: gate.id,
            what: gate.what,
            versus: gate.versus,
            check: gate.check,
            figures,
            outcome,
            reruns,
        }
    }

    fn value(&self) -> String {
        let v = self.check.value(&self.figures);
        match self.check {
            Check::Overhead { .. } => format!("+{v:.1} ns"),
            _ => format!("{v:.2}×"),
        }
    }

    fn gate_text(&self) -> String {
        match (self.check, self.check.limit()) {
            (Check::Overhead { goal_ns, .. }, Some(l)) => {
                format!("goal ≤ +{goal_ns:.0} ns, fails above +{l:.0} ns")
            }
            (Check::Ratio { goal, .. }, Some(l)) => {
                format!("goal ≤ {goal:.2}×, fails above {l:.2}×")
            }
            _ => "reported".to_string(),
        }
    }

    fn verdict(&self) -> &'static str {
        let met = self
            .check
            .goal()
            .map(|g| self.check.value(&self.figures) <= g);
        match (self.outcome, met) {
            (Outcome::Report, _) => "report",
            (Outcome::Fail, _) => "FAIL",
            (Outcome::Pass, Some(false)) => "pass, goal missed",
            (Outcome::Pass, _) => "pass",
        }
    }

    /// The one-line summary printed as the gate finishes.
    pub fn line(&self) -> String {
        format!(
            "{:<36} {:>10} vs {:>10}  {:>10}  {}  [{}]{}",
            self.id,
            human(self.figures.ours),
            human(self.figures.anchor),
            self.value(),
            self.verdict(),
            self.gate_text(),
            match self.reruns {
                0 => String::new(),
                n => format!(" (measured {} times)", n + 1),
            },
        )
    }
}

/// Where the report goes: `$CARGO_TARGET_DIR/bench-report`, or the
/// workspace's `target/bench-report`.
pub(crate) fn dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench-report")
}

/// The markdown table.
pub(crate) fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| gate | what | ours | anchor | same-run anchor | figure | gate | result |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |\n",
            r.id,
            r.what,
            human(r.figures.ours),
            human(r.figures.anchor),
            r.versus,
            r.value(),
            r.gate_text(),
            r.verdict(),
        ));
    }
    s
}

fn json(rows: &[Row]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "what": r.what,
                "versus": r.versus,
                "ours_ns": r.figures.ours,
                "anchor_ns": r.figures.anchor,
                "kind": match r.check {
                    Check::Ratio { .. } => "ratio",
                    Check::Overhead { .. } => "overhead_ns",
                    Check::Report => "report",
                },
                "value": r.check.value(&r.figures),
                "goal": r.check.goal(),
                "limit": r.check.limit(),
                "outcome": match r.outcome {
                    Outcome::Pass => "pass",
                    Outcome::Fail => "fail",
                    Outcome::Report => "report",
                },
                "measurements": r.reruns + 1,
            })
        })
        .collect();
    serde_json::json!({ "gates": rows })
}

/// Writes `report.md` and `report.json` into `dir`.
pub(crate) fn write(dir: &Path, rows: &[Row]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.md"), markdown(rows))?;
    let text = serde_json::to_string_pretty(&json(rows)).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("report.json"), text)
}
