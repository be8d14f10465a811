//! Figures, the interleaved comparison of repeated runs, and the report files: `report.md`
//! (the table and the details of every figure) and `report.json` (one object per figure with
//! `id`, `value`, `baseline`, `ratio`, `target`, `pass`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Serialize;

/// Min / median / max of repeated runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Smallest run.
    pub min: f64,
    /// Median of the runs (mean of the two middle ones for an even count).
    pub median: f64,
    /// Largest run.
    pub max: f64,
}

impl Spread {
    /// The spread of `runs`; `None` when there is none.
    pub fn of(runs: &[f64]) -> Option<Spread> {
        let mut sorted: Vec<f64> = runs.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread {
            min: sorted[0],
            median,
            max: sorted[n - 1],
        })
    }
}

/// What a figure must meet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "limit", rename_all = "snake_case")]
pub enum Target {
    /// ratio >= limit
    RatioAtLeast(f64),
    /// ratio <= limit
    RatioAtMost(f64),
    /// value < limit (in the figure's unit)
    ValueBelow(f64),
    /// Recorded, no target.
    Tracked,
}

impl Target {
    /// The target as the table shows it.
    pub fn describe(&self, unit: &str) -> String {
        match self {
            Target::RatioAtLeast(l) => format!(">= {l} x"),
            Target::RatioAtMost(l) => format!("<= {l} x"),
            Target::ValueBelow(l) => format!("< {l} {unit}"),
            Target::Tracked => "tracked".into(),
        }
    }

    /// Whether `value` / `ratio` meet the target; `None` when tracked or not measurable.
    pub fn check(&self, value: f64, ratio: Option<f64>) -> Option<bool> {
        match (self, ratio) {
            (Target::RatioAtLeast(l), Some(r)) => Some(r >= *l),
            (Target::RatioAtMost(l), Some(r)) => Some(r <= *l),
            (Target::ValueBelow(l), _) => Some(value < *l),
            _ => None,
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// `R1`, `W2-http`, ...
    pub id: String,
    /// What is measured, in words.
    pub name: String,
    /// Unit of `value` and `baseline`.
    pub unit: String,
    /// The median of the figure's runs.
    pub value: f64,
    /// The median of the baseline's runs (interleaved with the figure's).
    pub baseline: Option<f64>,
    /// What the baseline is.
    pub baseline_name: String,
    /// `value / baseline`.
    pub ratio: Option<f64>,
    /// The target, as text (`<= 1.3 x`).
    pub target: String,
    /// The target, as data.
    pub target_spec: Target,
    /// Whether the target is met (`null` when tracked).
    pub pass: Option<bool>,
    /// Runs of the figure.
    pub runs: Vec<f64>,
    /// Min / median / max of `runs`.
    pub spread: Option<Spread>,
    /// Runs of the baseline.
    pub baseline_runs: Vec<f64>,
    /// Min / median / max of `baseline_runs`.
    pub baseline_spread: Option<Spread>,
    /// Operations per run (figure side).
    pub ops_per_run: u64,
    /// Warm-up operations before the first run.
    pub warmup_ops: u64,
    /// How it was measured (setup, load model, transports), and anything else a reader needs.
    pub notes: Vec<String>,
}

impl Figure {
    /// A figure from interleaved runs: the value and baseline are the medians of their runs.
    #[expect(clippy::too_many_arguments, reason = "a plain constructor of the row")]
    pub fn compared(
        id: &str,
        name: &str,
        unit: &str,
        runs: Vec<f64>,
        baseline_name: &str,
        baseline_runs: Vec<f64>,
        target: Target,
        ops_per_run: u64,
        warmup_ops: u64,
    ) -> Figure {
        let spread = Spread::of(&runs);
        let baseline_spread = Spread::of(&baseline_runs);
        let value = spread.map_or(f64::NAN, |s| s.median);
        let baseline = baseline_spread.map(|s| s.median);
        let ratio = baseline.filter(|b| *b != 0.0).map(|b| value / b);
        Figure {
            id: id.into(),
            name: name.into(),
            unit: unit.into(),
            value,
            baseline,
            baseline_name: baseline_name.into(),
            ratio,
            target: target.describe(unit),
            target_spec: target,
            pass: target.check(value, ratio),
            runs,
            spread,
            baseline_runs,
            baseline_spread,
            ops_per_run,
            warmup_ops,
            notes: Vec::new(),
        }
    }

    /// A figure without a baseline.
    pub fn alone(
        id: &str,
        name: &str,
        unit: &str,
        runs: Vec<f64>,
        target: Target,
        ops_per_run: u64,
    ) -> Figure {
        Figure::compared(
            id,
            name,
            unit,
            runs,
            "-",
            Vec::new(),
            target,
            ops_per_run,
            0,
        )
    }

    /// A figure that could not be measured (the harness records why and goes on).
    pub fn failed(id: &str, name: &str, error: &anyhow::Error) -> Figure {
        let mut f = Figure::alone(id, name, "-", Vec::new(), Target::Tracked, 0);
        f.pass = None;
        f.notes.push(format!("NOT MEASURED: {error:#}"));
        f
    }

    /// Adds a note.
    pub fn note(mut self, note: impl Into<String>) -> Figure {
        self.notes.push(note.into());
        self
    }

    /// Whether the figure was measured.
    pub fn measured(&self) -> bool {
        self.value.is_finite()
    }

    fn verdict(&self) -> &'static str {
        match (self.measured(), self.pass) {
            (false, _) => "NOT MEASURED",
            (true, Some(true)) => "pass",
            (true, Some(false)) => "**MISS**",
            (true, None) => "tracked",
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `quick` or `full`.
    pub mode: String,
    /// Commit of the workspace (`git rev-parse HEAD`), with `-dirty` for local changes.
    pub commit: String,
    /// Date and time (UTC) the run started.
    pub date: String,
    /// CPU model, cores, memory, kernel.
    pub machine: String,
    /// Where the data sets were generated.
    pub scratch: String,
    /// How long the run took (seconds, release build excluded).
    pub elapsed_secs: f64,
    /// The rows.
    pub figures: Vec<Figure>,
    /// Notes on the whole run.
    pub notes: Vec<String>,
    /// Chart files written next to the report.
    pub charts: Vec<String>,
}

/// A number for the table: 3 significant digits, no exponent.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), num)
}

fn spread(s: Option<Spread>) -> String {
    s.map_or_else(
        || "-".into(),
        |s| format!("{} / {} / {}", num(s.min), num(s.median), num(s.max)),
    )
}

impl Report {
    /// The table alone (also printed at the end of a run).
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str("| figure | what | value | baseline | ratio | target | result |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for f in &self.figures {
            let unit = if f.measured() { f.unit.as_str() } else { "" };
            let _ = writeln!(
                out,
                "| {} | {} | {} {} | {} | {} | {} | {} |",
                f.id,
                f.name,
                num(f.value),
                unit,
                f.baseline.map_or_else(
                    || "-".into(),
                    |b| format!("{} {} ({})", num(b), f.unit, f.baseline_name)
                ),
                opt(f.ratio),
                f.target,
                f.verdict()
            );
        }
        out
    }

    /// `report.md`: header, table, and the details of every figure.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmark report ({} run)\n", self.mode);
        let _ = writeln!(out, "- date: {}", self.date);
        let _ = writeln!(out, "- commit: {}", self.commit);
        let _ = writeln!(out, "- machine: {}", self.machine);
        let _ = writeln!(out, "- data sets in: {}", self.scratch);
        let _ = writeln!(
            out,
            "- duration: {:.0} s (release build not counted)",
            self.elapsed_secs
        );
        for n in &self.notes {
            let _ = writeln!(out, "- {n}");
        }
        out.push('\n');
        out.push_str(&self.table());
        let misses: Vec<&str> = self
            .figures
            .iter()
            .filter(|f| f.measured() && f.pass == Some(false))
            .map(|f| f.id.as_str())
            .collect();
        let missing: Vec<&str> = self
            .figures
            .iter()
            .filter(|f| !f.measured())
            .map(|f| f.id.as_str())
            .collect();
        out.push('\n');
        if misses.is_empty() {
            out.push_str("Targets missed: none.\n");
        } else {
            let _ = writeln!(out, "Targets missed: {}.", misses.join(", "));
        }
        if !missing.is_empty() {
            let _ = writeln!(out, "Not measured: {}.", missing.join(", "));
        }
        if !self.charts.is_empty() {
            out.push_str("\n## Charts\n\n");
            for c in &self.charts {
                let _ = writeln!(out, "![{c}]({c})");
            }
        }
        out.push_str("\n## Details\n");
        for f in &self.figures {
            let _ = writeln!(out, "\n### {}: {}\n", f.id, f.name);
            let _ = writeln!(
                out,
                "- runs (min / median / max, {}): {} over {} run(s) of {} op(s), {} warm-up op(s)",
                f.unit,
                spread(f.spread),
                f.runs.len(),
                f.ops_per_run,
                f.warmup_ops
            );
            if f.baseline.is_some() {
                let _ = writeln!(
                    out,
                    "- baseline `{}` (min / median / max, {}): {} over {} run(s), interleaved with the figure's",
                    f.baseline_name,
                    f.unit,
                    spread(f.baseline_spread),
                    f.baseline_runs.len()
                );
            }
            let _ = writeln!(
                out,
                "- ratio of medians: {}; target {}: {}",
                opt(f.ratio),
                f.target,
                f.verdict()
            );
            for n in &f.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }

    /// Writes `report.md` and `report.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        std::fs::write(dir.join("report.md"), self.markdown())
            .with_context(|| format!("write {}", dir.join("report.md").display()))?;
        std::fs::write(dir.join("report.json"), self.json()?)
            .with_context(|| format!("write {}", dir.join("report.json").display()))?;
        Ok(())
    }

    /// `report.json`: the run's metadata and one object per figure.
    pub fn json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let s = Spread::of(&[4.0, 1.0, 3.0, 2.0]).expect("runs");
        assert_eq!((s.min, s.median, s.max), (1.0, 2.5, 4.0));
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[5.0, 1.0, 9.0]).expect("runs").median, 5.0);
    }

    #[test]
    fn targets_pass_and_miss_on_the_ratio_of_medians() {
        let f = Figure::compared(
            "X1",
            "x",
            "ms",
            vec![3.0, 2.0, 4.0],
            "raw",
            vec![1.0, 2.0, 1.5],
            Target::RatioAtMost(1.3),
            10,
            2,
        );
        assert_eq!(f.value, 3.0);
        assert_eq!(f.baseline, Some(1.5));
        assert_eq!(f.ratio, Some(2.0));
        assert_eq!(f.pass, Some(false));
        let g = Figure::alone(
            "M2",
            "growth",
            "MiB",
            vec![3.0],
            Target::ValueBelow(16.0),
            1,
        );
        assert_eq!((g.ratio, g.pass), (None, Some(true)));
        let t = Figure::compared(
            "R1",
            "t",
            "req/s",
            vec![90.0],
            "echo",
            vec![100.0],
            Target::RatioAtLeast(0.8),
            1,
            0,
        );
        assert_eq!(t.pass, Some(true));
    }

    #[test]
    fn the_json_has_one_object_per_figure_with_the_required_fields() {
        let report = Report {
            mode: "quick".into(),
            commit: "abc".into(),
            date: "now".into(),
            machine: "m".into(),
            scratch: "/dev/shm".into(),
            elapsed_secs: 1.0,
            figures: vec![
                Figure::compared(
                    "W1",
                    "write",
                    "ms",
                    vec![2.0],
                    "raw",
                    vec![1.0],
                    Target::RatioAtMost(2.0),
                    5,
                    1,
                ),
                Figure::failed("S1-http", "lag", &anyhow::anyhow!("no git")),
            ],
            notes: vec![],
            charts: vec![],
        };
        let v: serde_json::Value =
            serde_json::from_str(&report.json().expect("json")).expect("parse");
        let figures = v["figures"].as_array().expect("figures");
        assert_eq!(figures.len(), 2);
        for key in ["id", "value", "baseline", "ratio", "target", "pass"] {
            assert!(figures[0].get(key).is_some(), "missing {key}");
        }
        assert_eq!(figures[0]["id"], "W1");
        assert_eq!(figures[0]["ratio"], 2.0);
        assert_eq!(figures[0]["pass"], true);
        assert_eq!(figures[0]["target"], "<= 2 x");
        // A figure that was not measured has no value (NaN is written as null) and no verdict.
        assert!(figures[1]["value"].is_null());
        assert!(figures[1]["pass"].is_null());
        let md = report.markdown();
        assert!(md.contains("| W1 |") && md.contains("NOT MEASURED"), "{md}");
    }
}
