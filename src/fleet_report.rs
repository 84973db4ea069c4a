//! What a fleet run reports: one result per database, the summary. Its own module so
//! that the contracts can describe it without the fleet's runner.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::output::{Output, Report, shown};

/// How one database of a fleet run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseResult {
    /// The command succeeded (exit 0).
    Ok,
    /// Its exit code says how.
    Failed,
    /// Not started (`--fail-fast`, a failed canary, a signal).
    Skipped,
}

/// One database of a fleet run.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FleetResult {
    pub database: String,
    pub result: DatabaseResult,
    pub exit_code: Option<u8>,
    pub duration_ms: u64,
    /// The version before and after, when the command reports them.
    pub from: Option<String>,
    pub to: Option<String>,
    pub error: Option<String>,
    /// The command's own JSON document for this database.
    pub report: Value,
    /// It records versions this build does not know (the version gate's "ahead").
    #[serde(skip)]
    pub ahead: bool,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FleetReport {
    pub environment: String,
    pub databases: Vec<FleetResult>,
    pub ok: usize,
    pub failed: usize,
    pub skipped: usize,
    /// The highest exit code of the databases (0 when all succeeded; at least 1 when
    /// `migrate status` / `current` find versions that differ from this build's head).
    pub exit_code: u8,
}

/// The last line of a fleet run in `--format jsonl`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FleetSummaryLine {
    pub summary: FleetSummary,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FleetSummary {
    pub environment: String,
    pub ok: usize,
    pub failed: usize,
    pub skipped: usize,
    pub exit_code: u8,
}

impl Report for FleetReport {
    fn render(&self, out: &mut String, ui: &Output) {
        let mut t = ui.table(&["database", "result", "version", "time", "detail"]);
        for d in &self.databases {
            let version = match (&d.from, &d.to) {
                (Some(a), Some(b)) if a != b => format!("{a} -> {b}"),
                (_, Some(b)) => b.clone(),
                (Some(a), None) => a.clone(),
                _ => "-".into(),
            };
            let result = match (d.result, d.exit_code) {
                (DatabaseResult::Failed, Some(c)) => format!("FAILED ({c})"),
                (DatabaseResult::Failed, None) => "failed".to_owned(),
                (DatabaseResult::Ok, _) => "ok".to_owned(),
                (DatabaseResult::Skipped, _) => "skipped".to_owned(),
            };
            t.add_row(vec![
                d.database.clone(),
                result,
                version,
                format!("{} ms", d.duration_ms),
                d.error.clone().unwrap_or_default(),
            ]);
        }
        let _ = writeln!(out, "{t}");
        let _ = writeln!(
            out,
            "environment {}: {} ok, {} failed, {} skipped",
            shown(&self.environment),
            self.ok,
            self.failed,
            self.skipped
        );
    }
}
