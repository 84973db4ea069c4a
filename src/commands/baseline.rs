//! `baseline`: adopt an existing database (hand-made or Alembic-managed) by recording
//! the migrations its schema already has, only after proving which version that is.
//! `--undo` forgets the baseline again (drops seaql_migrations, nothing else).

use std::fmt::Write as _;

use clap::Args;
use sea_orm::DbBackend;
use serde::Serialize;

use migration::MigratorTrait;

use super::Ctx;
use crate::commands::LockArgs;
use crate::db::{self, Db, MIGRATION_LOCK_KEY};
use crate::commands::Done;
use crate::spec::{Fleet, Grants, Info, Work};
use crate::error::Outcome;
use crate::error::{Error, Result};
use crate::migrations::{self, Alembic, TRACKING_TABLE, bookkeeping, known};
use crate::output::{Output, Report, or_dash, plural, shown};
use crate::schema::check::read_live;
use crate::schema::snapshots::expected;
use crate::schema::{Drift, Schema, Severity, diff};

#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// Adopt the database at VERSION (migration name or Alembic revision) instead of the
    /// detected one; its schema must still match VERSION.
    #[arg(long, value_name = "VERSION", value_parser = parse_version, conflicts_with = "undo")]
    pub to: Option<usize>,

    /// Print the plan (version, tables, warnings, statements) and write nothing at all.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Remove the baseline: drop seaql_migrations. Never touches the API's tables or
    /// alembic_version.
    #[arg(long)]
    pub undo: bool,

    #[command(flatten)]
    pub lock: LockArgs,
}

fn parse_version(s: &str) -> std::result::Result<usize, String> {
    migrations::resolve_version(s)
}

/// The version a baseline records, and why.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Detected {
    pub version: String,
    pub alembic_revision: &'static str,
    pub reason: String,
    #[serde(skip)]
    pub index: usize,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TableRows {
    pub table: String,
    /// PostgreSQL: planner statistics (pg_class.reltuples); SQLite: exact.
    pub estimated_rows: Option<i64>,
}

/// What `baseline` was asked to do (JSON: `baseline` or `undo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Baseline,
    Undo,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct BaselineReport {
    pub database: String,
    pub action: Action,
    pub dry_run: bool,
    /// Refused: why (the findings say what does not match).
    pub refused: Option<String>,
    pub detected: Option<Detected>,
    pub alembic_version: Option<Alembic>,
    pub tables: Vec<TableRows>,
    /// Error findings against the version (a refusal), with their fix SQL.
    pub errors: Vec<Drift>,
    /// Warnings against the version: allowed, and listed.
    pub warnings: Vec<Drift>,
    /// The exact statements the baseline runs (or ran).
    pub statements: Vec<String>,
    /// Versions recorded (baseline) or forgotten (undo); empty on a dry run or refusal.
    pub recorded: Vec<String>,
}

impl Report for BaselineReport {
    fn render(&self, out: &mut String, ui: &Output) {
        let _ = writeln!(out, "database: {}", shown(&self.database));
        if let Some(d) = &self.detected {
            let _ = writeln!(
                out,
                "version:  {} ({}): {}",
                d.alembic_revision, d.version, d.reason
            );
        }
        if let Some(Alembic::Revision(r)) = &self.alembic_version {
            let _ = writeln!(out, "alembic_version: {} (left as it is)", shown(r));
        }
        if !self.tables.is_empty() {
            let mut t = ui.table(&["table", "estimated rows"]);
            for r in &self.tables {
                t.add_row(vec![r.table.clone(), or_dash(r.estimated_rows)]);
            }
            let _ = writeln!(out, "{t}");
        }
        for (title, list) in [("errors", &self.errors), ("warnings", &self.warnings)] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{title}:");
            for f in list.iter() {
                let _ = writeln!(
                    out,
                    "  - {} {}: expected {}, found {}",
                    f.kind,
                    shown(&f.object),
                    shown(f.expected.as_deref().unwrap_or("nothing")),
                    shown(f.actual.as_deref().unwrap_or("nothing"))
                );
                if f.severity == Severity::Error {
                    let _ = writeln!(
                        out,
                        "    fix: {}",
                        shown(f.fix_sql.as_deref().unwrap_or("(no safe automatic fix)"))
                    );
                }
            }
        }
        if !self.statements.is_empty() && self.refused.is_none() {
            let _ = writeln!(out, "statements:");
            for s in &self.statements {
                let _ = writeln!(out, "  {};", shown(s));
            }
        }
        let verdict = match (&self.refused, self.dry_run, self.action) {
            (Some(why), _, _) => format!("REFUSED: {why}"),
            (None, true, _) => "dry run: nothing was changed".to_owned(),
            (None, false, _) if self.recorded.is_empty() => {
                "plan: the statements above will run once confirmed".to_owned()
            }
            (None, false, Action::Undo) => format!(
                "Baseline removed: {TRACKING_TABLE} dropped ({} forgotten); the API's tables are untouched.",
                plural(self.recorded.len() as u64, "version", "versions")
            ),
            (None, false, _) => format!(
                "Baselined: recorded {}: {}.",
                plural(self.recorded.len() as u64, "version", "versions"),
                self.recorded.join(", ")
            ),
        };
        let _ = writeln!(out, "{verdict}");
    }
}

pub const INFO: Info = Info {
    name: "baseline",
    database: true,
    csv: false,
    fleet: Fleet::Each,
    grants: Some(Grants {
        row: "baseline",
        writes: true,
        create_in_schema: true,
        owns_tables: false,
        tables: &[],
    }),
    fails_when: Some("`baseline` refused because the schema matches no version (or not the one named)"),
    schema: Some(crate::contracts::document::<BaselineReport>),
};

impl super::Spec for BaselineArgs {
    const INFOS: &'static [&'static Info] = &[&INFO];

    fn info(&self) -> &'static Info {
        &INFO
    }

    fn work(&self) -> Work {
        if self.dry_run { Work::ReadOnly } else { Work::Schema }
    }

    fn lock(&mut self) -> Option<&mut super::LockArgs> {
        Some(&mut self.lock)
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        execute(self, ctx).await
    }
}

async fn execute(args: &BaselineArgs, ctx: &Ctx) -> Result<Done> {
    let ui = &ctx.ui;
    ctx.with_db(db::Open::Existing, async |db| {
        if args.undo {
            undo(db, args, ui).await
        } else {
            baseline(db, args, ui).await
        }
    })
    .await
}

/// Findings of the live schema against every version, newest first.
fn findings_per_version(db: &Db, live: &Schema) -> Vec<(usize, Vec<Drift>)> {
    (0..known().len())
        .rev()
        .map(|v| (v, diff(&expected(v, db.backend), live, db.is_postgres())))
        .collect()
}

fn detected(index: usize, reason: String) -> Detected {
    let k = &known()[index];
    Detected {
        version: k.version.clone(),
        alembic_revision: k.alembic_revision,
        reason,
        index,
    }
}

fn label(index: usize) -> String {
    let k = &known()[index];
    format!("{} ({})", k.alembic_revision, k.version)
}

/// The statements a baseline at `target` runs, as --dry-run shows them.
async fn planned_statements(backend: DbBackend, target: usize) -> Result<Vec<String>> {
    let mut statements = Vec::new();
    if backend == DbBackend::Postgres {
        statements.push("BEGIN".to_owned());
        statements.push(format!(
            "SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK_KEY})"
        ));
    } else {
        statements.push("BEGIN IMMEDIATE".to_owned());
    }
    statements.extend(migrations::capture_install(backend).await?);
    statements.push(bookkeeping::shown(&crate::schema::adopt::baseline_insert(
        backend, target,
    )));
    statements.push("COMMIT".to_owned());
    Ok(statements)
}

/// Which version to record, and why; with the reason to refuse, if any. `to`: the
/// version --to asks for; `alembic`: the one alembic_version records.
fn choose_target(
    to: Option<usize>,
    alembic: Option<usize>,
    per_version: &[(usize, Vec<Drift>)],
) -> Result<(Detected, Option<String>)> {
    let findings_for = |v: usize| {
        per_version
            .iter()
            .find(|(i, _)| *i == v)
            .map(|(_, f)| crate::schema::adopt::errors_of(f))
            .unwrap_or_default()
    };
    let matching: Vec<usize> = per_version
        .iter()
        .filter(|(_, f)| crate::schema::adopt::errors_of(f) == 0)
        .map(|(v, _)| *v)
        .collect();
    let matches_text = || match matching.first() {
        Some(v) => format!("the schema matches {}", label(*v)),
        None => "the schema matches no known version".to_owned(),
    };
    if let Some(to) = to {
        if let Some(a) = alembic
            && a != to
        {
            return Err(Error::refused(
                format!(
                    "--to {} disagrees with alembic_version, which is at {}",
                    label(to),
                    label(a)
                ),
                "baseline at the Alembic revision, or fix alembic_version first",
            ));
        }
        let refusal = (findings_for(to) > 0).then(|| {
            format!(
                "the schema does not match {} ({})",
                label(to),
                matches_text()
            )
        });
        return Ok((detected(to, "chosen with --to".into()), refusal));
    }
    if let Some(a) = alembic {
        let revision = known()[a].alembic_revision;
        let refusal = (findings_for(a) > 0).then(|| {
            format!(
                "alembic_version says {revision} but the schema does not match it ({})",
                matches_text()
            )
        });
        let why = format!("alembic_version is at revision {revision}");
        return Ok((detected(a, why), refusal));
    }
    if let Some(&v) = matching.first() {
        let why = "the schema matches it (the newest matching version)".to_owned();
        return Ok((detected(v, why), None));
    }
    // The closest version: fewest errors, the newest on a tie.
    let (v, _) = per_version
        .iter()
        .min_by_key(|(v, f)| (crate::schema::adopt::errors_of(f), std::cmp::Reverse(*v)))
        .expect("at least one version");
    Ok((
        detected(*v, format!("closest version: {}", label(*v))),
        Some("the schema matches no known version".to_owned()),
    ))
}

async fn baseline(db: &Db, args: &BaselineArgs, ui: &Output) -> Result<Done> {
    let (mut report, target) = plan(db, args).await?;
    if let Some(why) = &report.refused {
        let notice = Error::new(
            crate::error::Kind::CheckFailed,
            format!("baseline refused: {why}; nothing was written"),
            Some("apply the fix SQL above (or see `verify-schema --show-fix`), then run baseline again".into()),
        );
        return Ok(Done {
            notice: Some(notice),
            ..Done::report(report, Outcome::CheckFailed)
        });
    }
    if args.dry_run {
        return Ok(Done::report(report, Outcome::Success));
    }
    db.ensure_writable().await?;
    if !ui.quiet && ui.interactive() && !args.yes {
        // Show the plan before asking.
        let mut plan = String::new();
        report.render(&mut plan, ui);
        ui.stderr_block(&plan);
    }
    ui.confirm_destructive(
        args.yes,
        &format!("baseline {} at {}", db.url, label(target.index)),
        &format!(
            "This records {} in {TRACKING_TABLE}.",
            known()[..=target.index]
                .iter()
                .map(|k| k.version.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "Record these versions?",
        true,
    )?;
    report.recorded = record(db, &target, args, ui).await?;
    Ok(Done::report(report, Outcome::Success))
}

/// Read the live schema, pick the version and build the report (what a dry run shows).
async fn plan(db: &Db, args: &BaselineArgs) -> Result<(BaselineReport, Detected)> {
    let (state, intro) = read_live(db).await?;
    if let Some(e) = crate::schema::adopt::already_managed(&state) {
        return Err(e);
    }
    let alembic_index = match &state.alembic {
        Alembic::Revision(rev) => Some(migrations::resolve_version(rev).map_err(|_| {
            Error::refused(
                format!("alembic_version is at revision '{rev}', which this build of ecomind-admin does not know"),
                "upgrade ecomind-admin to a version that ships that revision",
            )
        })?),
        _ => None,
    };
    let per_version = findings_per_version(db, &intro.schema);
    let (target, refusal) = choose_target(args.to, alembic_index, &per_version)?;
    let findings_for = |v: usize| {
        per_version
            .iter()
            .find(|(i, _)| *i == v)
            .map(|(_, f)| f.clone())
            .unwrap_or_default()
    };
    let findings = findings_for(target.index);
    let (errors, warnings): (Vec<Drift>, Vec<Drift>) = findings
        .into_iter()
        .partition(|f| f.severity == Severity::Error);

    let tables: Vec<String> = expected(target.index, db.backend)
        .tables
        .into_keys()
        .filter(|t| intro.schema.tables.contains_key(t))
        .collect();
    let estimates = migrations::row_estimates(db, &tables).await?;
    let table_rows = tables
        .iter()
        .map(|t| TableRows {
            table: t.clone(),
            estimated_rows: estimates.get(t).copied(),
        })
        .collect();

    let statements = planned_statements(db.backend, target.index).await?;

    let report = BaselineReport {
        database: db.url.clone(),
        action: Action::Baseline,
        dry_run: args.dry_run,
        refused: refusal,
        detected: Some(target.clone()),
        alembic_version: (state.alembic != Alembic::Absent).then(|| state.alembic.clone()),
        tables: table_rows,
        errors,
        warnings,
        statements,
        recorded: Vec::new(),
    };
    Ok((report, target))
}

/// Record versions 0..=target (see [`migrations::record_baseline`]).
async fn record(
    db: &Db,
    target: &Detected,
    args: &BaselineArgs,
    ui: &Output,
) -> Result<Vec<String>> {
    crate::schema::adopt::record_baseline(db, target.index, args.lock.options(), ui).await
}

async fn undo(db: &Db, args: &BaselineArgs, ui: &Output) -> Result<Done> {
    let state = migrations::snapshot_state(db).await?;
    let mut report = BaselineReport {
        database: db.url.clone(),
        action: Action::Undo,
        dry_run: args.dry_run,
        refused: None,
        detected: None,
        alembic_version: (state.alembic != Alembic::Absent).then(|| state.alembic.clone()),
        tables: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        statements: vec![format!("DROP TABLE \"{TRACKING_TABLE}\"")],
        recorded: Vec::new(),
    };
    if !state.tracking_table {
        ui.note(format!(
            "{TRACKING_TABLE} does not exist: there is no baseline to remove"
        ));
        report.statements.clear();
        return Ok(Done::report(report, Outcome::Success));
    }
    let forgotten: Vec<String> = state
        .applied
        .iter()
        .map(|(i, _)| known()[*i].version.clone())
        .chain(state.unknown.iter().cloned())
        .collect();
    if args.dry_run {
        report.recorded = forgotten;
        return Ok(Done::report(report, Outcome::Success));
    }
    db.ensure_writable().await?;
    ui.confirm_destructive(
        args.yes,
        &format!("remove the baseline of {} (drop {TRACKING_TABLE})", db.url),
        &format!(
            "It forgets the recorded versions ({}); the API's tables and alembic_version stay as they are.",
            if forgotten.is_empty() { "none".to_owned() } else { forgotten.join(", ") }
        ),
        "Drop seaql_migrations?",
        true,
    )?;
    let txn = db.begin_locked(args.lock.options().lock_wait, ui).await?;
    db::commit_if_ok(txn, "committing the undo", async |txn| {
        db::set_lock_timeout(txn, args.lock.options().ddl_lock_timeout).await?;
        // sea-orm-migration's own way of removing its bookkeeping table.
        migration::Migrator::uninstall(txn)
            .await
            .map_err(|e| Error::from_db(e, &format!("dropping {TRACKING_TABLE}")))
    })
    .await?;
    report.recorded = forgotten;
    Ok(Done::report(report, Outcome::Success))
}
