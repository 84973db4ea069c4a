//! `verify-schema`: exact drift detection against the expected schema of the
//! database's version. Read-only: it never creates or changes anything.

use std::fmt::Write as _;

use clap::Args;
use owo_colors::OwoColorize;
use serde::Serialize;

use super::Ctx;
use crate::db;
use crate::commands::Done;
use crate::spec::{Fleet, Grants, Info, Work};
use crate::error::Outcome;
use crate::error::Result;
use crate::flags::Format;
use crate::migrations::{self, known};
use crate::output::{Output, Report, Styled, plural, shown};
use crate::schema::check::{Against, CheckSummary, Verdict, VerifyReport, VersionSource, check};
use crate::schema::diff::Check;
use crate::schema::{Drift, Severity};

#[derive(Debug, Args)]
pub struct VerifySchemaArgs {
    /// Compare against VERSION (migration name or Alembic revision, e.g. 001) or `head`,
    /// instead of the version the database records.
    #[arg(long, value_name = "VERSION|head", value_parser = parse_against)]
    pub against: Option<usize>,

    /// Count warnings (extra tables, columns, indexes, enum types) as errors.
    #[arg(long)]
    pub strict: bool,

    /// Show the SQL that fixes each finding (always present in --format json).
    #[arg(long)]
    pub show_fix: bool,
}

fn parse_against(s: &str) -> std::result::Result<usize, String> {
    if s.eq_ignore_ascii_case("head") {
        Ok(known().len() - 1)
    } else {
        migrations::resolve_version(s)
    }
}

/// The last line of `--format jsonl`: the report without its findings (each was a
/// line of its own).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct VerifySummaryLine {
    pub database: String,
    pub backend: &'static str,
    pub against: Against,
    pub summary: CheckSummary,
    pub catalog_queries: usize,
}

impl VerifySummaryLine {
    fn of(report: &VerifyReport) -> Self {
        Self {
            database: report.database.clone(),
            backend: report.backend,
            against: report.against.clone(),
            summary: report.summary.clone(),
            catalog_queries: report.catalog_queries,
        }
    }
}

/// Extra tables listed one by one in the human report; the rest are counted.
const MAX_EXTRA_TABLES_SHOWN: usize = 20;

impl Report for VerifyReport {
    fn render(&self, out: &mut String, ui: &Output) {
        let color = ui.color_stdout();
        let source = match self.against.source {
            VersionSource::Flag => "from --against",
            VersionSource::SeaqlMigrations => "recorded in seaql_migrations",
            VersionSource::AlembicVersion => "recorded in alembic_version",
            VersionSource::Unmanaged => {
                "the database records no version (unmanaged): compared with head"
            }
        };
        let _ = writeln!(out, "database: {}", shown(&self.database));
        let _ = writeln!(
            out,
            "expected: revision {} ({}), {source}",
            self.against.alembic_revision, self.against.version
        );
        let _ = writeln!(out, "{}", self.matrix(ui));
        if self.backend == "postgres" {
            let _ = writeln!(out, "{}", self.enum_types(color));
        }
        self.findings_by_check(out, color);
        let _ = writeln!(out, "\n{}", self.verdict(color));
    }
}

/// A check's cell: a mark for the worst finding (none: passed).
fn cell(worst: Option<Severity>, color: bool) -> Styled {
    let (sym, c) = match worst {
        None => ("✓", comfy_table::Color::Green),
        Some(Severity::Error) => ("✗", comfy_table::Color::Red),
        Some(Severity::Warning) => ("⚠", comfy_table::Color::Yellow),
    };
    Styled(sym.to_owned(), color.then_some(c))
}

/// The same mark, outside a table.
fn mark(worst: Option<Severity>, color: bool) -> String {
    let Styled(sym, c) = cell(worst, color);
    match c {
        None => sym,
        Some(comfy_table::Color::Green) => sym.green().to_string(),
        Some(comfy_table::Color::Red) => sym.red().to_string(),
        Some(_) => sym.yellow().to_string(),
    }
}

impl VerifyReport {
    fn worst(&self, pred: impl Fn(&Drift) -> bool) -> Option<Severity> {
        self.findings
            .iter()
            .filter(|f| pred(f))
            .map(|f| f.severity)
            .min()
    }

    /// One row per table the API defines, one column per check. Extra tables are
    /// listed with the findings.
    fn matrix(&self, ui: &Output) -> crate::output::SafeTable {
        let color = ui.color_stdout();
        let checks: Vec<Check> = Check::ALL
            .into_iter()
            .filter(|c| *c != Check::Enums)
            .collect();
        let mut header = vec!["table"];
        header.extend(checks.iter().map(|c| c.title()));
        header.push("enums");
        let mut t = ui.table(&header);
        for row in &self.expected_tables {
            let mut cells = vec![Styled(row.clone(), None)];
            for c in &checks {
                let w = self.worst(|f| f.check == *c && f.table.as_deref() == Some(row));
                cells.push(cell(w, color));
            }
            let has_enums = self.enum_objects.contains(row);
            let enum_worst =
                self.worst(|f| f.check == Check::Enums && f.table.as_deref() == Some(row));
            cells.push(if has_enums || enum_worst.is_some() {
                cell(enum_worst, color)
            } else {
                Styled(String::new(), None)
            });
            t.add_styled_row(cells);
        }
        t
    }

    /// PostgreSQL's enum types have no table: one line of marks.
    fn enum_types(&self, color: bool) -> String {
        let type_findings: Vec<&Drift> =
            self.findings.iter().filter(|f| f.table.is_none()).collect();
        let mut line = String::from("enum types:");
        let mut names: Vec<String> = self.enum_objects.clone();
        for f in &type_findings {
            if !names.contains(&f.object) {
                names.push(f.object.clone());
            }
        }
        for n in names {
            let w = type_findings
                .iter()
                .filter(|f| f.object == n)
                .map(|f| f.severity)
                .min();
            let _ = write!(line, " {} {}", mark(w, color), shown(&n));
        }
        line
    }

    /// Each finding under its check, with its fix under --show-fix.
    fn findings_by_check(&self, out: &mut String, color: bool) {
        for check in Check::ALL {
            let in_check: Vec<&Drift> = self.findings.iter().filter(|f| f.check == check).collect();
            if in_check.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{}:", check.title());
            let total = in_check.len();
            for (n, f) in in_check.into_iter().enumerate() {
                // Thousands of unrelated tables must not bury the errors: list a few.
                if f.kind == "table_extra"
                    && n >= MAX_EXTRA_TABLES_SHOWN
                    && total > MAX_EXTRA_TABLES_SHOWN + 1
                {
                    let _ = writeln!(
                        out,
                        "  {} … and {} more extra tables (all are in --format json)",
                        mark(Some(Severity::Warning), color),
                        total - n
                    );
                    break;
                }
                let sev = match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                let _ = writeln!(
                    out,
                    "  {} {sev}: {} {}: expected {}, found {}",
                    mark(Some(f.severity), color),
                    f.kind,
                    shown(&f.object),
                    shown(f.expected.as_deref().unwrap_or("nothing")),
                    shown(f.actual.as_deref().unwrap_or("nothing"))
                );
                if self.show_fix {
                    let _ = writeln!(
                        out,
                        "      fix: {}",
                        shown(f.fix_sql.as_deref().unwrap_or("(no safe automatic fix)"))
                    );
                }
            }
        }
    }

    /// PASSED / PASSED WITH WARNINGS / FAILED, with the counts.
    fn verdict(&self, color: bool) -> String {
        let s = &self.summary;
        let line = match s.status {
            Verdict::Passed => "PASSED".to_owned(),
            Verdict::PassedWithWarnings => format!("PASSED WITH WARNINGS: {}", s.warnings),
            _ if s.strict && s.warnings > 0 => {
                format!(
                    "FAILED: {}, {} (--strict)",
                    plural(s.errors as u64, "error", "errors"),
                    plural(s.warnings as u64, "warning", "warnings")
                )
            }
            _ => format!("FAILED: {}", plural(s.errors as u64, "error", "errors")),
        };
        if !color {
            return line;
        }
        match s.status {
            Verdict::Passed => line.green().bold().to_string(),
            Verdict::Failed => line.red().bold().to_string(),
            Verdict::PassedWithWarnings => line.yellow().bold().to_string(),
        }
    }
}

pub const INFO: Info = Info {
    name: "verify-schema",
    database: true,
    csv: false,
    fleet: Fleet::Each,
    grants: Some(Grants {
        row: "verify-schema",
        writes: false,
        create_in_schema: false,
        owns_tables: false,
        tables: &[],
    }),
    fails_when: Some("schema drift errors under `verify-schema` (warnings too with `--strict`)"),
    schema: Some(|info| {
        crate::contracts::streamed::<VerifyReport, crate::schema::Drift, VerifySummaryLine>(
            info, "finding",
        )
    }),
};

impl super::Spec for VerifySchemaArgs {
    const INFOS: &'static [&'static Info] = &[&INFO];

    fn info(&self) -> &'static Info {
        &INFO
    }

    fn work(&self) -> Work {
        Work::ReadOnly
    }

    fn lock(&mut self) -> Option<&mut super::LockArgs> {
        None
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        execute(self, ctx).await
    }
}

async fn execute(args: &VerifySchemaArgs, ctx: &Ctx) -> Result<Done> {
    let ui = &ctx.ui;
    let pb = ui.spinner("reading the catalog");
    let result = ctx
        .with_db(db::Open::Existing, async |db| {
            check(db, args.against, args.strict).await
        })
        .await;
    pb.finish_and_clear();
    let (_, mut report) = result?;
    if report.against.source == VersionSource::Unmanaged {
        ui.note("the database records no version (no seaql_migrations or alembic_version): compared with head");
    }
    report.show_fix = args.show_fix;
    let outcome = if report.failed() {
        Outcome::CheckFailed
    } else {
        Outcome::Success
    };
    if ui.format != Format::Jsonl {
        return Ok(Done::report(report, outcome));
    }
    // A line per finding, then the rest of the report.
    for f in &report.findings {
        ui.line("finding", f)?;
    }
    ui.line("summary", &VerifySummaryLine::of(&report))?;
    Ok(Done::from(outcome))
}
