//! `verify-schema`: exact drift detection against the expected schema of the
//! database's version. Read-only: it never creates or changes anything.

use std::fmt::Write as _;

use clap::Args;
use owo_colors::OwoColorize;
use serde::Serialize;

use crate::Outcome;
use crate::cli::GlobalArgs;
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::migrations::{self, Alembic, State, known};
use crate::output::{Output, Report, Styled, plural, shown};
use crate::schema::diff::{BOOKKEEPING_TABLES, Check};
use crate::schema::introspect::{Introspection, introspect};
use crate::schema::{Finding, Severity, diff, snapshots::expected};

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

/// Where the version compared against came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionSource {
    /// `--against`.
    Flag,
    SeaqlMigrations,
    AlembicVersion,
    /// Nothing recorded: compared with head.
    Unmanaged,
}

/// The version a check compares against, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Against {
    pub version: String,
    pub alembic_revision: &'static str,
    pub source: VersionSource,
    #[serde(skip)]
    pub index: usize,
}

/// Decide which version's schema to expect.
pub fn choose_version(state: &State, flag: Option<usize>) -> Result<Against> {
    let make = |index: usize, source| {
        let k = &known()[index];
        Against {
            version: k.version.clone(),
            alembic_revision: k.alembic_revision,
            source,
            index,
        }
    };
    if let Some(i) = flag {
        return Ok(make(i, VersionSource::Flag));
    }
    if !state.unknown.is_empty() {
        return Err(Error::refused(
            format!(
                "seaql_migrations records migrations this build of ecomind-admin does not know: {}",
                state.unknown.join(", ")
            ),
            "upgrade ecomind-admin, or pass --against VERSION",
        ));
    }
    if let Some(i) = state.current() {
        return Ok(make(i, VersionSource::SeaqlMigrations));
    }
    match &state.alembic {
        Alembic::Revision(rev) => match migrations::resolve_version(rev) {
            Ok(i) => Ok(make(i, VersionSource::AlembicVersion)),
            Err(_) => Err(Error::refused(
                format!(
                    "alembic_version is at revision '{rev}', which this build of ecomind-admin does not know"
                ),
                "upgrade ecomind-admin, or pass --against VERSION",
            )),
        },
        _ => Ok(make(known().len() - 1, VersionSource::Unmanaged)),
    }
}

/// Extra tables listed one by one in the human report; the rest are counted.
const MAX_EXTRA_TABLES_SHOWN: usize = 20;

#[derive(Debug, Serialize)]
pub struct Summary {
    /// `PASSED`, `PASSED WITH WARNINGS` or `FAILED`.
    pub status: &'static str,
    pub errors: usize,
    pub warnings: usize,
    pub strict: bool,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub database: String,
    pub backend: &'static str,
    pub against: Against,
    pub findings: Vec<Finding>,
    pub summary: Summary,
    /// Catalog queries the introspection sent (constant, whatever the table count).
    pub catalog_queries: usize,
    #[serde(skip)]
    pub show_fix: bool,
    #[serde(skip)]
    pub expected_tables: Vec<String>,
    #[serde(skip)]
    pub enum_objects: Vec<String>,
}

impl VerifyReport {
    pub fn failed(&self) -> bool {
        self.summary.status == "FAILED"
    }
}

pub fn summarize(findings: &[Finding], strict: bool) -> Summary {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    let status = if errors > 0 || (strict && warnings > 0) {
        "FAILED"
    } else if warnings > 0 {
        "PASSED WITH WARNINGS"
    } else {
        "PASSED"
    };
    Summary {
        status,
        errors,
        warnings,
        strict,
    }
}

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
        let cell = |worst: Option<Severity>| -> Styled {
            let (sym, c) = match worst {
                None => ("✓", comfy_table::Color::Green),
                Some(Severity::Error) => ("✗", comfy_table::Color::Red),
                Some(Severity::Warning) => ("⚠", comfy_table::Color::Yellow),
            };
            Styled(sym.to_owned(), color.then_some(c))
        };
        let mark = |worst: Option<Severity>| -> String {
            let Styled(sym, c) = cell(worst);
            match c {
                None => sym,
                Some(comfy_table::Color::Green) => sym.green().to_string(),
                Some(comfy_table::Color::Red) => sym.red().to_string(),
                Some(_) => sym.yellow().to_string(),
            }
        };
        // The matrix: one row per table the API defines, one column per check. Extra
        // tables are listed with the findings below.
        let rows: Vec<String> = self.expected_tables.clone();
        let checks: Vec<Check> = Check::ALL
            .into_iter()
            .filter(|c| *c != Check::Enums)
            .collect();
        let mut header = vec!["table"];
        header.extend(checks.iter().map(|c| c.title()));
        header.push("enums");
        let mut t = ui.table(&header);
        let worst = |pred: &dyn Fn(&Finding) -> bool| {
            self.findings
                .iter()
                .filter(|f| pred(f))
                .map(|f| f.severity)
                .min()
        };
        for row in &rows {
            let mut cells = vec![Styled(row.clone(), None)];
            let known_table = self.expected_tables.contains(row);
            for c in &checks {
                let w = worst(&|f: &Finding| f.check == *c && f.table.as_deref() == Some(row));
                // An extra table is only checked for being there.
                cells.push(if known_table || w.is_some() {
                    cell(w)
                } else {
                    Styled(String::new(), None)
                });
            }
            let has_enums = self.enum_objects.contains(row);
            let enum_worst =
                worst(&|f: &Finding| f.check == Check::Enums && f.table.as_deref() == Some(row));
            cells.push(if has_enums || enum_worst.is_some() {
                cell(enum_worst)
            } else {
                Styled(String::new(), None)
            });
            t.add_styled_row(cells);
        }
        let _ = writeln!(out, "{t}");
        // Enum types (PostgreSQL) have no table.
        let type_findings: Vec<&Finding> =
            self.findings.iter().filter(|f| f.table.is_none()).collect();
        if self.backend == "postgres" {
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
                let _ = write!(line, " {} {}", mark(w), shown(&n));
            }
            let _ = writeln!(out, "{line}");
        }
        for check in Check::ALL {
            let in_check: Vec<&Finding> =
                self.findings.iter().filter(|f| f.check == check).collect();
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
                        mark(Some(Severity::Warning)),
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
                    mark(Some(f.severity)),
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
        let s = &self.summary;
        let line = match s.status {
            "PASSED" => "PASSED".to_owned(),
            "PASSED WITH WARNINGS" => format!("PASSED WITH WARNINGS: {}", s.warnings),
            _ if s.strict && s.warnings > 0 => {
                format!(
                    "FAILED: {}, {} (--strict)",
                    plural(s.errors as u64, "error", "errors"),
                    plural(s.warnings as u64, "warning", "warnings")
                )
            }
            _ => format!("FAILED: {}", plural(s.errors as u64, "error", "errors")),
        };
        let line = if color {
            match s.status {
                "PASSED" => line.green().bold().to_string(),
                "FAILED" => line.red().bold().to_string(),
                _ => line.yellow().bold().to_string(),
            }
        } else {
            line
        };
        let _ = writeln!(out, "\n{line}");
    }
}

/// The bookkeeping state and the live schema, from one read-only snapshot.
pub async fn read_live(db: &Db) -> Result<(State, Introspection)> {
    let txn = db.snapshot().await?;
    let result = async {
        let state = migrations::read_state(&txn).await?;
        let intro = introspect(&txn, &api_tables(db)).await?;
        Ok::<_, Error>((state, intro))
    }
    .await;
    let _ = txn.rollback().await;
    result
}

/// The tables read in detail: every version's tables are a subset of head's.
pub fn api_tables(db: &Db) -> Vec<String> {
    expected(known().len() - 1, db.backend)
        .tables
        .into_keys()
        .collect()
}

/// Introspect and diff against the version the database records (or `against`).
pub async fn check(db: &Db, against: Option<usize>, strict: bool) -> Result<(State, VerifyReport)> {
    let (state, intro) = read_live(db).await?;
    let against = choose_version(&state, against)?;
    let report = build_report(db, against, &intro.schema, intro.queries, strict);
    Ok((state, report))
}

pub fn build_report(
    db: &Db,
    against: Against,
    live: &crate::schema::Schema,
    catalog_queries: usize,
    strict: bool,
) -> VerifyReport {
    let exp = expected(against.index, db.backend);
    let mut findings = diff(&exp, live, db.is_postgres());
    findings.sort_by(|a, b| {
        (a.check, &a.table, a.severity, &a.object).cmp(&(b.check, &b.table, b.severity, &b.object))
    });
    let enum_objects = if db.is_postgres() {
        exp.enums.keys().cloned().collect()
    } else {
        exp.tables
            .values()
            .filter(|t| !t.checks.is_empty())
            .map(|t| t.name.clone())
            .collect()
    };
    let summary = summarize(&findings, strict);
    VerifyReport {
        database: db.url.clone(),
        backend: if db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        },
        against,
        findings,
        summary,
        catalog_queries,
        show_fix: false,
        expected_tables: exp
            .tables
            .keys()
            .filter(|t| !BOOKKEEPING_TABLES.contains(&t.as_str()))
            .cloned()
            .collect(),
        enum_objects,
    }
}

pub async fn run(args: &VerifySchemaArgs, global: &GlobalArgs, ui: &Output) -> Result<Outcome> {
    let config = global.database()?;
    let db = db::connect(&config, global.connect_timeout, ui, db::Open::Existing).await?;
    let pb = ui.spinner("reading the catalog");
    let result = check(&db, args.against, args.strict).await;
    pb.finish_and_clear();
    db.conn.close().await.ok();
    let (_, mut report) = result?;
    if report.against.source == VersionSource::Unmanaged {
        ui.note("the database records no version (no seaql_migrations or alembic_version): compared with head");
    }
    report.show_fix = args.show_fix;
    ui.emit(&report)?;
    Ok(if report.failed() {
        Outcome::CheckFailed
    } else {
        Outcome::Success
    })
}
