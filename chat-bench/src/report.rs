//! What a run reports: per scenario, a table of results (one row per level, e.g. per
//! connection count), the correctness checks it made, and notes. Printed as aligned
//! tables or as one JSON document. It formats; it measures nothing.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::stats::Summary;

/// A table cell.
#[derive(Debug, Clone)]
pub(crate) enum Cell {
    Int(u64),
    /// A number shown with this many decimals in tables (full precision in JSON).
    Num(f64, usize),
    Text(String),
}

impl Cell {
    fn display(&self) -> String {
        match self {
            Cell::Int(v) => v.to_string(),
            Cell::Num(v, decimals) => format!("{v:.decimals$}"),
            Cell::Text(s) => s.clone(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Int(v) => json!(v),
            // Rounded to the microsecond (or a thousandth of whatever unit), enough for
            // every figure reported here.
            Cell::Num(v, _) => json!((v * 1000.0).round() / 1000.0),
            Cell::Text(s) => json!(s),
        }
    }

    fn is_text(&self) -> bool {
        matches!(self, Cell::Text(_))
    }
}

/// A correctness check and its outcome.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) passed: bool,
    pub(crate) detail: String,
}

/// One scenario's results.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) title: String,
    /// (JSON key, table header).
    columns: Vec<(&'static str, &'static str)>,
    rows: Vec<Vec<Cell>>,
    pub(crate) checks: Vec<Check>,
    pub(crate) notes: Vec<String>,
    /// Why it did not run, when it did not.
    pub(crate) skipped: Option<String>,
    /// Extra figures for the JSON document only.
    pub(crate) extra: Map<String, Value>,
}

impl Scenario {
    pub(crate) fn new(
        name: &'static str,
        title: impl Into<String>,
        columns: &[(&'static str, &'static str)],
    ) -> Self {
        Self {
            name,
            title: title.into(),
            columns: columns.to_vec(),
            rows: Vec::new(),
            checks: Vec::new(),
            notes: Vec::new(),
            skipped: None,
            extra: Map::new(),
        }
    }

    pub(crate) fn skipped(name: &'static str, title: &str, why: impl Into<String>) -> Self {
        let mut s = Self::new(name, title, &[]);
        s.skipped = Some(why.into());
        s
    }

    /// Adds a row; it must have one cell per column.
    pub(crate) fn row(&mut self, cells: Vec<Cell>) {
        debug_assert_eq!(
            cells.len(),
            self.columns.len(),
            "row width of {}",
            self.name
        );
        self.rows.push(cells);
    }

    pub(crate) fn check(
        &mut self,
        name: impl Into<String>,
        passed: bool,
        detail: impl Into<String>,
    ) {
        self.checks.push(Check {
            name: name.into(),
            passed,
            detail: detail.into(),
        });
    }

    pub(crate) fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub(crate) fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                let mut object = Map::new();
                for ((key, _), cell) in self.columns.iter().zip(row) {
                    object.insert((*key).to_string(), cell.json());
                }
                Value::Object(object)
            })
            .collect();
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|c| json!({ "name": c.name, "passed": c.passed, "detail": c.detail }))
            .collect();
        let mut value = json!({
            "name": self.name,
            "title": self.title,
            "passed": self.passed(),
            "skipped": self.skipped,
            "rows": rows,
            "checks": checks,
            "notes": self.notes,
        });
        if !self.extra.is_empty() {
            value["extra"] = Value::Object(self.extra.clone());
        }
        value
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "== {}: {}", self.name, self.title);
        if let Some(why) = &self.skipped {
            let _ = writeln!(out, "   skipped: {why}");
            out.push('\n');
            return;
        }
        if !self.rows.is_empty() {
            let cells: Vec<Vec<String>> = self
                .rows
                .iter()
                .map(|r| r.iter().map(Cell::display).collect())
                .collect();
            let widths: Vec<usize> = self
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, header))| {
                    cells
                        .iter()
                        .map(|r| r[i].len())
                        .chain([header.len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let mut line = String::from("  ");
            for (i, ((_, header), width)) in self.columns.iter().zip(&widths).enumerate() {
                if self.rows[0][i].is_text() {
                    let _ = write!(line, " {header:<width$}");
                } else {
                    let _ = write!(line, " {header:>width$}");
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
            for (row, shown) in self.rows.iter().zip(&cells) {
                let mut line = String::from("  ");
                for ((cell, text), width) in row.iter().zip(shown).zip(&widths) {
                    if cell.is_text() {
                        let _ = write!(line, " {text:<width$}");
                    } else {
                        let _ = write!(line, " {text:>width$}");
                    }
                }
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
        for check in &self.checks {
            let mark = if check.passed { "ok  " } else { "FAIL" };
            let _ = writeln!(out, "   [{mark}] {}: {}", check.name, check.detail);
        }
        for note in &self.notes {
            let _ = writeln!(out, "   note: {note}");
        }
        out.push('\n');
    }
}

/// The latency columns every scenario shows, as (JSON key, header).
pub(crate) const LATENCY_COLUMNS: [(&str, &str); 5] = [
    ("p50Ms", "p50 ms"),
    ("p90Ms", "p90 ms"),
    ("p99Ms", "p99 ms"),
    ("maxMs", "max ms"),
    ("samples", "samples"),
];

/// The cells of [`LATENCY_COLUMNS`].
pub(crate) fn latency_cells(s: &Summary) -> Vec<Cell> {
    vec![
        Cell::Num(s.p50_ms, 3),
        Cell::Num(s.p90_ms, 3),
        Cell::Num(s.p99_ms, 3),
        Cell::Num(s.max_ms, 3),
        Cell::Int(s.count),
    ]
}

/// A whole run.
pub(crate) struct Report {
    pub(crate) server: String,
    pub(crate) spawned: bool,
    pub(crate) scenarios: Vec<Scenario>,
}

impl Report {
    pub(crate) fn passed(&self) -> bool {
        self.scenarios.iter().all(Scenario::passed)
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "tool": "chat-bench",
            "version": env!("CARGO_PKG_VERSION"),
            "server": self.server,
            "spawned": self.spawned,
            "passed": self.passed(),
            "scenarios": self.scenarios.iter().map(Scenario::to_json).collect::<Vec<_>>(),
        })
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "chat-bench against {}{}\n",
            self.server,
            if self.spawned { " (spawned)" } else { "" }
        );
        for scenario in &self.scenarios {
            scenario.render(&mut out);
        }
        let verdict = if self.passed() {
            "all correctness checks passed"
        } else {
            "SOME CORRECTNESS CHECKS FAILED"
        };
        let _ = writeln!(out, "{verdict}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_json_keeps_keys() {
        let mut s = Scenario::new("demo", "a demo", &[("level", "level"), ("rate", "req/s")]);
        s.row(vec![Cell::Text("a".into()), Cell::Num(1234.5678, 1)]);
        s.row(vec![Cell::Text("longer".into()), Cell::Num(2.0, 1)]);
        s.check("ids distinct", true, "2 of 2");
        let mut text = String::new();
        s.render(&mut text);
        assert!(text.contains("   level   req/s\n"), "{text}");
        assert!(text.contains("   a      1234.6"), "{text}");
        assert!(text.contains("[ok  ] ids distinct"), "{text}");
        let v = s.to_json();
        assert_eq!(v["rows"][0]["rate"], json!(1234.568));
        assert_eq!(v["passed"], json!(true));
    }

    #[test]
    fn a_failed_check_fails_the_report() {
        let mut s = Scenario::new("demo", "a demo", &[]);
        s.check("one winner", false, "chat x had 2");
        let report = Report {
            server: "http://x".into(),
            spawned: false,
            scenarios: vec![s],
        };
        assert!(!report.passed());
        assert_eq!(report.to_json()["passed"], json!(false));
        assert!(report.render().contains("[FAIL] one winner"));
    }
}
