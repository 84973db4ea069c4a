//! `upgrade`'s pipeline: the deployment plan's database steps in order. Pre-flight
//! (what `doctor` checks, drift, the client tools), the plan (confirmed), a checked
//! backup, the migrations (everything `migrate up` guarantees), verify-schema, the
//! post-deploy audit; one report. It stops at the first failing step; the report says
//! what was applied and how to restore the backup; a rerun continues where it stopped.
//! The command (`commands::upgrade`) turns its flags into [`Options`], runs [`run`] and
//! prints the report.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

pub use crate::audit::AuditCounts;
use crate::audit::{self, Risk};
use crate::backup::{self, Backup};
use crate::db::Db;
use crate::error::{Error, Kind, Outcome, Result};
use crate::migrations::{self, RunOptions, State, known};
pub use crate::migrations::{Version, version, version_label};
pub use crate::progress::Operator;
use crate::text::plural;

/// What the upgrade is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The version to reach (index into the known migrations); None: the newest.
    pub to: Option<usize>,
    pub backup_dir: PathBuf,
    pub no_backup: bool,
    pub pg_bin_dir: Option<PathBuf>,
    /// Confirmed in advance (`--yes`).
    pub yes: bool,
    pub allow_drift: bool,
    /// The audit severity that fails the upgrade (None: never).
    pub fail_on: Option<Risk>,
    pub run: RunOptions,
    /// The database URL with its password (pg_dump's connection, the restore command).
    pub secret_url: String,
    /// Prove the backup by a restore into a scratch copy (`backup verify`).
    pub verify_backup: bool,
    pub connect_timeout: std::time::Duration,
    /// `--schema` (the backup's copy is read there too).
    pub schema: Option<String>,
}

/// The steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    PreFlight,
    Plan,
    Backup,
    Migrate,
    Verify,
    Audit,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::PreFlight => "pre-flight",
            Step::Plan => "plan",
            Step::Backup => "backup",
            Step::Migrate => "migrate",
            Step::Verify => "verify",
            Step::Audit => "audit",
        }
    }

    /// A failure here wrote nothing: its one error line says it all.
    pub fn before_any_write(self) -> bool {
        matches!(self, Step::PreFlight | Step::Plan)
    }
}

/// How the upgrade ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeStatus {
    /// It applied migrations.
    Upgraded,
    /// Nothing was pending.
    UpToDate,
    /// A step failed (`failed_step`).
    Failed,
}

impl UpgradeStatus {
    pub fn label(self) -> &'static str {
        match self {
            UpgradeStatus::Upgraded => "upgraded",
            UpgradeStatus::UpToDate => "up-to-date",
            UpgradeStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Ok,
    Skipped,
    Warn,
    Failed,
}

/// One step of the upgrade, as the report shows it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct StepResult {
    pub step: Step,
    pub result: StepStatus,
    pub duration_ms: u64,
    pub detail: String,
}

/// A table a migration touches: its size and row estimate (catalog statistics) and the
/// locks the statements take on it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TouchedTable {
    pub table: String,
    pub bytes: Option<i64>,
    pub rows_estimate: Option<i64>,
    pub locks: Vec<&'static str>,
}

/// One migration of the plan, with its SQL.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlannedMigration {
    pub version: String,
    pub alembic_revision: &'static str,
    pub sql: Vec<String>,
}

/// The report: every step's result, the plan, the backup, the versions.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UpgradeReport {
    pub database: String,
    pub status: UpgradeStatus,
    pub from: Option<Version>,
    pub to: Option<Version>,
    pub steps: Vec<StepResult>,
    pub plan: Vec<PlannedMigration>,
    pub tables: Vec<TouchedTable>,
    /// Migrations this run applied.
    pub applied: Vec<String>,
    pub backup: Option<Backup>,
    pub restore_command: Option<String>,
    pub audit: Option<AuditCounts>,
    /// The step that failed, when one did.
    pub failed_step: Option<Step>,
}

/// The upgrade in progress: the report it builds, step by step.
struct Upgrade<'a> {
    db: &'a Db,
    op: &'a dyn Operator,
    args: &'a Options,
    report: UpgradeReport,
}

/// Every step on the open database: the report as far as it got (its status set),
/// and how it ended.
pub async fn run(db: &Db, args: &Options, op: &dyn Operator) -> (UpgradeReport, Result<Outcome>) {
    let mut up = Upgrade {
        db,
        op,
        args,
        report: UpgradeReport {
            database: db.url.clone(),
            status: UpgradeStatus::Failed,
            from: None,
            to: None,
            steps: Vec::new(),
            plan: Vec::new(),
            tables: Vec::new(),
            applied: Vec::new(),
            backup: None,
            restore_command: None,
            audit: None,
            failed_step: None,
        },
    };
    let result = up.all_steps().await;
    let mut report = up.report;
    if result.is_ok() {
        report.status = if report.applied.is_empty() {
            UpgradeStatus::UpToDate
        } else {
            UpgradeStatus::Upgraded
        };
    }
    (report, result)
}

impl Upgrade<'_> {
    /// Run `work` as step `name`: its duration and result go into the report; a failure
    /// stops the upgrade there.
    async fn step<T>(
        &mut self,
        name: Step,
        work: impl AsyncFnOnce(&mut Self) -> Result<(T, StepStatus, String)>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = work(self).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok((value, result, detail)) => {
                self.report.steps.push(StepResult {
                    step: name,
                    result,
                    duration_ms,
                    detail,
                });
                Ok(value)
            }
            Err(e) => {
                self.report.steps.push(StepResult {
                    step: name,
                    result: StepStatus::Failed,
                    duration_ms,
                    detail: e.message().to_owned(),
                });
                self.report.failed_step = Some(name);
                Err(e)
            }
        }
    }

    async fn all_steps(&mut self) -> Result<Outcome> {
        let (state, tools, adopt) = self
            .step(Step::PreFlight, async |up| up.preflight().await)
            .await?;
        let current = adopt.or(state.current());
        self.report.from = version(current);
        self.report.to = version(current);
        let target = self.args.to.unwrap_or(known().len() - 1);
        let to_apply: Vec<usize> = state
            .pending()
            .into_iter()
            .filter(|i| *i <= target && adopt.is_none_or(|a| *i > a))
            .collect();
        self.step(Step::Plan, async |up| up.plan(&state, &to_apply).await)
            .await?;
        if !to_apply.is_empty() {
            self.confirm()?;
        }
        self.step(Step::Backup, async |up| {
            up.backup(&state, &to_apply, tools.as_ref()).await
        })
        .await?;
        self.step(Step::Migrate, async |up| {
            up.migrate(adopt, &to_apply, target).await
        })
        .await?;
        self.step(Step::Verify, async |up| up.verify().await)
            .await?;
        self.step(Step::Audit, async |up| up.audit().await).await
    }
}

/// The version to adopt first: a database that Alembic manages (alembic_version at a
/// known revision) and that seaql_migrations records nothing of. Its schema is then
/// checked against that version like any other.
fn alembic_to_adopt(state: &State) -> Result<Option<usize>> {
    let migrations::Alembic::Revision(rev) = &state.alembic else {
        return Ok(None);
    };
    if state.current().is_some() || !state.unknown.is_empty() {
        return Ok(None);
    }
    migrations::resolve_version(rev).map(Some).map_err(|_| {
        Error::refused(
            format!("alembic_version is at revision '{rev}', which this build of ecomind-admin does not know"),
            "upgrade ecomind-admin to a version that ships that revision",
        )
    })
}

/// The pre-flight and the plan.
impl Upgrade<'_> {
    #[allow(clippy::type_complexity)]
    async fn preflight(
        &mut self,
    ) -> Result<(
        (State, Option<backup::PgTools>, Option<usize>),
        StepStatus,
        String,
    )> {
        let db = self.db;
        let state = migrations::snapshot_state(db).await?;
        // Where the database is, also in the report of a refused pre-flight.
        self.report.from = version(state.current());
        self.report.to = version(state.current());
        let adopt = alembic_to_adopt(&state)?;
        if adopt.is_none() {
            state.check_writable()?;
        }
        db.ensure_writable().await?;
        let may = crate::privileges::per_command(db, true, &[&crate::spec::MIGRATE_GRANTS]).await;
        if may.iter().any(|(_, ok)| !ok) {
            return Err(Error::refused(
                "the role cannot migrate: it needs CREATE on the schema and ownership of the API's tables",
                "run the upgrade as the database owner; `ecomind-admin doctor` shows what each command needs",
            ));
        }
        self.migration_lock_free().await?;
        let current = adopt.or(state.current());
        let mut notes = vec![format!("at {}", version_label(&version(current)))];
        if adopt.is_some() {
            notes.push("managed by Alembic: adopted (baseline) before the migrations".into());
        }
        let mut status = StepStatus::Ok;
        if current.is_some() {
            let (_, check) = crate::schema::check::check(db, current, false).await?;
            if check.failed() {
                let what = format!(
                    "the schema has drifted from {} ({})",
                    version_label(&version(current)),
                    plural(check.findings.len() as i64, "finding", "findings")
                );
                if !self.args.allow_drift {
                    return Err(Error::new(
                        Kind::CheckFailed,
                        format!("{what}; nothing was changed"),
                        Some(
                            "see `ecomind-admin verify-schema --show-fix`; fix it, or pass --allow-drift".into(),
                        ),
                    ));
                }
                status = StepStatus::Warn;
                notes.push(format!("{what}, allowed by --allow-drift"));
            } else {
                notes.push("no drift".into());
            }
        }
        let tools = self.client_tools(&mut notes).await?;
        if !self.args.no_backup {
            // Before anything is asked or written: a directory others can write to may
            // hold planted files.
            backup::ensure_dir(&self.args.backup_dir)?;
        }
        Ok(((state, tools, adopt), status, notes.join("; ")))
    }

    /// Another ecomind-admin migrating this database now: refuse at once.
    async fn migration_lock_free(&self) -> Result<()> {
        if self.db.migration_lock_held().await? {
            return Err(Error::refused(
                "another ecomind-admin holds the migration lock on this database",
                "wait for it to finish (`ecomind-admin migrate status`), then run the upgrade again",
            ));
        }
        Ok(())
    }

    /// pg_dump / pg_restore for the backup (PostgreSQL, unless --no-backup).
    async fn client_tools(&self, notes: &mut Vec<String>) -> Result<Option<backup::PgTools>> {
        if self.args.no_backup || !self.db.is_postgres() {
            return Ok(None);
        }
        let major = backup::verify::server_major(self.db).await?;
        let tools = backup::find_pg_tools(major, self.args.pg_bin_dir.as_deref())?;
        notes.push(format!(
            "PostgreSQL {major}, pg_dump {} ({})",
            tools.major,
            tools.pg_dump.display()
        ));
        Ok(Some(tools))
    }

    async fn plan(
        &mut self,
        state: &State,
        to_apply: &[usize],
    ) -> Result<((), StepStatus, String)> {
        if to_apply.is_empty() {
            return Ok(((), StepStatus::Ok, "nothing pending".into()));
        }
        let steps = migrations::plan_sql(
            self.db.backend,
            state,
            migrations::Direction::Up,
            to_apply,
            self.args.run,
        )
        .await?;
        let mut tables: Vec<TouchedTable> = Vec::new();
        for s in &steps {
            for sql in &s.sql {
                let Some((table, lock)) = migrations::statement_lock(sql) else {
                    continue;
                };
                match tables.iter_mut().find(|t| t.table == table) {
                    Some(t) if !t.locks.contains(&lock) => t.locks.push(lock),
                    Some(_) => {}
                    None => tables.push(TouchedTable {
                        table,
                        bytes: None,
                        rows_estimate: None,
                        locks: vec![lock],
                    }),
                }
            }
        }
        // Sizes of the API's tables that exist (a new table has none; the bookkeeping
        // tables are a few rows).
        let present = migrations::tables_present(&self.db.conn).await?;
        let names: Vec<String> = tables
            .iter()
            .map(|t| t.table.clone())
            .filter(|t| present.contains(t))
            .collect();
        let sizes = migrations::table_sizes(self.db, &names).await?;
        let rows = migrations::row_estimates(self.db, &names).await?;
        for t in &mut tables {
            t.bytes = sizes.get(&t.table).copied();
            t.rows_estimate = rows.get(&t.table).copied();
        }
        self.report.plan = steps
            .into_iter()
            .map(|s| PlannedMigration {
                version: s.version,
                alembic_revision: s.alembic_revision,
                sql: s.sql,
            })
            .collect();
        self.report.tables = tables;
        let detail = format!(
            "{} to apply: {}",
            plural(to_apply.len() as i64, "migration", "migrations"),
            to_apply
                .iter()
                .map(|i| known()[*i].alembic_revision)
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(((), StepStatus::Ok, detail))
    }

    /// Show the plan and ask (default No); `--yes` for pipelines.
    fn confirm(&self) -> Result<()> {
        let mut details = String::from("Migrations:");
        for m in &self.report.plan {
            let _ = write!(details, "\n  - {} ({})", m.alembic_revision, m.version);
        }
        details.push_str("\nTables touched:");
        for t in &self.report.tables {
            let size = match (t.bytes, t.rows_estimate) {
                (Some(b), Some(r)) => format!(
                    "{}, ~{}",
                    backup::human_bytes(b.max(0) as u64),
                    plural(r, "row", "rows")
                ),
                (None, Some(r)) => format!("~{}", plural(r, "row", "rows")),
                _ => "new".to_owned(),
            };
            let _ = write!(
                details,
                "\n  - {} ({size}): {}",
                t.table,
                t.locks.join(", ")
            );
        }
        let backup = if self.args.no_backup {
            "\nNo backup (--no-backup).".to_owned()
        } else {
            format!(
                "\nA backup goes to {} first{}.",
                self.args.backup_dir.display(),
                if self.args.verify_backup {
                    ", proven by a restore into a scratch copy"
                } else {
                    " (not verified: --no-verify-backup)"
                }
            )
        };
        details.push_str(&backup);
        self.op.confirm(
            self.args.yes,
            &format!(
                "upgrade {} to {}",
                self.db.url,
                self.report
                    .plan
                    .last()
                    .map(|m| m.alembic_revision)
                    .unwrap_or("-")
            ),
            &details,
            "Run the upgrade?",
        )
    }
}

/// Backup, migrate, verify, audit.
impl Upgrade<'_> {
    /// The backup (`backup`'s, reused when nothing changed since the last one), then
    /// proven by a restore (`backup verify`) unless `--no-verify-backup`.
    async fn backup(
        &mut self,
        state: &State,
        to_apply: &[usize],
        tools: Option<&backup::PgTools>,
    ) -> Result<((), StepStatus, String)> {
        if to_apply.is_empty() {
            return Ok(((), StepStatus::Skipped, "nothing to apply".into()));
        }
        if self.args.no_backup {
            return Ok(((), StepStatus::Skipped, "--no-backup".into()));
        }
        let target = backup::take::Target {
            dir: &self.args.backup_dir,
            secret_url: &self.args.secret_url,
            tools,
            lock_wait: self.args.run.lock_wait,
        };
        let taken = backup::take::take(self.db, state, &target, self.op, self.op.cancel()).await?;
        let b = taken.backup;
        let mut detail = if taken.reused {
            format!(
                "reused {} (the database has not changed since it was taken; sha256 and {})",
                b.path.display(),
                b.checked
            )
        } else {
            format!(
                "{} ({}, {}; {})",
                b.path.display(),
                backup::human_bytes(b.bytes),
                format_args!("{} ms", b.duration_ms),
                b.checked
            )
        };
        let path = b.path.clone();
        self.keep_backup(b);
        if self.args.verify_backup {
            let opts = backup::verify::Options {
                file: &path,
                scratch_url: None,
                pg_bin_dir: self.args.pg_bin_dir.as_deref(),
                connect_timeout: self.args.connect_timeout,
                schema: self.args.schema.as_deref(),
            };
            let report = backup::verify::verify(
                Some((self.db, &self.args.secret_url)),
                &opts,
                self.op,
                self.op.cancel(),
            )
            .await?;
            if let Some(reason) = report.reason() {
                return Err(Error::new(
                    Kind::CheckFailed,
                    format!("the backup does not verify ({reason}); nothing was migrated"),
                    Some("see `ecomind-admin backup verify FILE`".into()),
                ));
            }
            detail.push_str(&format!(
                "; verified by a restore into a scratch copy ({} ms)",
                report.duration_ms
            ));
        } else {
            detail.push_str("; not verified (--no-verify-backup)");
        }
        Ok(((), StepStatus::Ok, detail))
    }

    fn keep_backup(&mut self, b: Backup) {
        self.report.restore_command = Some(b.restore_command.clone());
        self.report.backup = Some(b);
    }

    async fn migrate(
        &mut self,
        adopt: Option<usize>,
        to_apply: &[usize],
        target: usize,
    ) -> Result<((), StepStatus, String)> {
        if to_apply.is_empty() {
            return Ok(((), StepStatus::Skipped, "nothing pending".into()));
        }
        let ui = self.op;
        let mut adopted = String::new();
        if let Some(index) = adopt {
            crate::schema::adopt::record_baseline(self.db, index, self.args.run, ui).await?;
            adopted = format!("adopted {} (baseline); ", known()[index].alembic_revision);
        }
        let result = migrations::run_up(self.db, target, self.args.run, ui).await;
        // Whatever happened, the report says where the database is now.
        if let Ok(after) = migrations::snapshot_state(self.db).await {
            self.report.to = version(after.current());
            self.report.applied = to_apply
                .iter()
                .filter(|i| after.is_applied(**i))
                .map(|i| known()[*i].alembic_revision.to_owned())
                .collect();
        }
        let steps = result?;
        let done: Vec<String> = steps
            .iter()
            .map(|s| format!("{} ({} ms)", s.alembic_revision, s.duration_ms))
            .collect();
        Ok((
            (),
            StepStatus::Ok,
            format!("{adopted}applied {}", done.join(", ")),
        ))
    }

    async fn verify(&mut self) -> Result<((), StepStatus, String)> {
        let (state, check) = crate::schema::check::check(self.db, None, false).await?;
        self.report.to = version(state.current());
        let at = version_label(&version(state.current()));
        if check.failed() && self.args.allow_drift {
            let detail = format!(
                "the schema still differs from {at} ({}), allowed by --allow-drift",
                plural(check.findings.len() as i64, "finding", "findings")
            );
            return Ok(((), StepStatus::Warn, detail));
        }
        if check.failed() {
            return Err(Error::new(
                Kind::CheckFailed,
                format!(
                    "the schema does not match {at} after the migrations ({})",
                    plural(check.findings.len() as i64, "finding", "findings")
                ),
                Some("see `ecomind-admin verify-schema`".into()),
            ));
        }
        Ok(((), StepStatus::Ok, format!("the schema matches {at}")))
    }

    async fn audit(&mut self) -> Result<(Outcome, StepStatus, String)> {
        // Where the database is now (the verify step read it last).
        if self.report.to.is_none() {
            return Ok((Outcome::Success, StepStatus::Skipped, "no schema".into()));
        }
        let tally = audit::post_deploy(self.db, self.op).await?;
        let counts = AuditCounts::from(&tally);
        let detail = format!(
            "{} critical, {} warning, {} info (last 7 days; `ecomind-admin audit suspicious-accounts` shows them)",
            counts.critical, counts.warning, counts.info
        );
        let failing = self
            .args
            .fail_on
            .is_some_and(|t| tally.worst().is_some_and(|w| w >= t));
        self.report.audit = Some(counts);
        Ok(if failing {
            (Outcome::CheckFailed, StepStatus::Failed, detail)
        } else {
            (Outcome::Success, StepStatus::Ok, detail)
        })
    }
}
