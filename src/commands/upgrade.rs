//! `upgrade`: the deployment plan's database steps as one command (the pipeline is the
//! core's [`crate::upgrade`]). Here: the flags, the report as a table, and after a
//! failed step what to do next (what was applied, the `restore` command that puts the
//! backup back).

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;

use super::{Ctx, FailOn, LockArgs};
use crate::db;
use crate::error::{Outcome, Result};
use crate::migrations;
use crate::output::{Output, Report, shown};
use crate::commands::Done;
use crate::spec::{Fleet, Info, Work};
use crate::upgrade::{Options, StepStatus, UpgradeReport, Version, version_label};

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Upgrade to this version (migration name or Alembic revision); default: the newest.
    #[arg(long, value_name = "VERSION", value_parser = migrations::resolve_version)]
    pub to: Option<usize>,

    /// Where the backup goes (created, mode 0700, when missing).
    #[arg(long, value_name = "DIR", default_value = "ecomind-backups")]
    pub backup_dir: PathBuf,

    /// Take no backup. Never implied: without it, no backup means no upgrade.
    #[arg(long, conflicts_with = "backup_dir")]
    pub no_backup: bool,

    /// Do not prove the backup by a restore into a scratch copy (`backup verify`): for
    /// databases too large to restore twice. The plan says so.
    #[arg(long, conflicts_with = "no_backup")]
    pub no_verify_backup: bool,

    /// The directory of pg_dump and pg_restore (default: PATH, then
    /// /usr/lib/postgresql/<N>/bin, newest first).
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<PathBuf>,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Go on when the schema has drifted from its version (the drift is still reported).
    #[arg(long)]
    pub allow_drift: bool,

    /// Exit 1 when the post-deploy audit finds something at or above this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Critical)]
    pub fail_on: FailOn,

    /// Also write the JSON report to FILE (for the change record): the global
    /// `--output FILE`, by its older name.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    #[command(flatten)]
    pub lock: LockArgs,
}

impl Report for UpgradeReport {
    fn render(&self, out: &mut String, ui: &Output) {
        let _ = writeln!(out, "database: {}", shown(&self.database));
        let mut t = ui.table(&["step", "result", "time", "detail"]);
        for s in &self.steps {
            let result = match s.result {
                StepStatus::Ok => "ok",
                StepStatus::Skipped => "skipped",
                StepStatus::Warn => "warn",
                StepStatus::Failed => "FAILED",
            };
            t.add_row(vec![
                s.step.name().to_owned(),
                result.to_owned(),
                format!("{} ms", s.duration_ms),
                s.detail.clone(),
            ]);
        }
        let _ = writeln!(out, "{t}");
        if let Some(b) = &self.backup {
            let _ = writeln!(out, "backup: {}", b.path.display());
        }
        let _ = writeln!(
            out,
            "{}: {} -> {}",
            self.status.label(),
            version_label(&self.from),
            version_label(&self.to)
        );
    }
}

pub const INFO: Info = Info {
    name: "upgrade",
    database: true,
    csv: false,
    fleet: Fleet::Each,
    // What `migrate up` needs (its pre-flight asks for that row).
    grants: Some(crate::spec::MIGRATE_GRANTS),
    fails_when: Some("`upgrade` stopped by drift, a schema that does not verify, or audit findings at or above `--fail-on`"),
    schema: Some(crate::contracts::document::<UpgradeReport>),
};

impl super::Spec for UpgradeArgs {
    const INFOS: &'static [&'static Info] = &[&INFO];

    fn info(&self) -> &'static Info {
        &INFO
    }

    fn work(&self) -> Work {
        Work::Schema
    }

    fn lock(&mut self) -> Option<&mut super::LockArgs> {
        Some(&mut self.lock)
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        execute(self, ctx).await
    }
}

async fn execute(args: &UpgradeArgs, ctx: &Ctx) -> Result<Done> {
    let options = Options {
        to: args.to,
        backup_dir: args.backup_dir.clone(),
        no_backup: args.no_backup,
        pg_bin_dir: args.pg_bin_dir.clone(),
        yes: args.yes,
        allow_drift: args.allow_drift,
        fail_on: args.fail_on.threshold(),
        run: args.lock.options(),
        secret_url: ctx.config()?.secret_url().to_owned(),
        verify_backup: !args.no_verify_backup,
        connect_timeout: ctx.connect_timeout,
        schema: {
            let config = ctx.config()?;
            config.schema.clone().filter(|_| config.set_search_path)
        },
    };
    let (report, result) = ctx
        .with_db(db::Open::MayCreate, async |db| {
            Ok(crate::upgrade::run(db, &options, &ctx.ui).await)
        })
        .await?;
    finish(ctx, report, result)
}

/// The report (`--report` / `--output` is the global `--output`) and, after a failed
/// step, what to do next and its error: all rendered at the top, in that order.
fn finish(ctx: &Ctx, report: UpgradeReport, result: Result<Outcome>) -> Result<Done> {
    let revision = |v: &Option<Version>| v.as_ref().map(|v| v.alembic_revision.to_owned());
    let from = Some(revision(&report.from).unwrap_or_else(|| "none".to_owned()));
    let to = revision(&report.to);
    let err = match result {
        Ok(outcome) => {
            return Ok(Done {
                from,
                to,
                ..Done::report(report, outcome)
            });
        }
        // Nothing ran (a refused pre-flight before any step): only the error.
        Err(e) if report.steps.is_empty() => return Err(e),
        Err(e) => e,
    };
    // A failed step: its report (a fleet shows where it left this database), then what
    // to do next, then the error. A refusal before anything was written needs no advice.
    let advice = match report.failed_step {
        Some(step) if !step.before_any_write() => Some(advice(ctx, &report, step)?),
        _ => None,
    };
    Ok(Done {
        from,
        to,
        advice,
        failure: Some(err),
        ..Done::report(report, Outcome::CheckFailed)
    })
}

/// What to do after a failed step: where the database is, what this run applied, how
/// to restore the backup.
fn advice(ctx: &Ctx, report: &UpgradeReport, step: crate::upgrade::Step) -> Result<String> {
    let mut block = format!(
        "the upgrade stopped at step {}; the database is at {}; applied by this run: {}\n",
        step.name(),
        version_label(&report.to),
        if report.applied.is_empty() {
            "nothing".to_owned()
        } else {
            report.applied.join(", ")
        }
    );
    if let Some(cmd) = &report.restore_command {
        let how = if ctx.config()?.backend == sea_orm::DbBackend::Postgres {
            ""
        } else {
            " (stop the API first)"
        };
        let _ = writeln!(
            block,
            "to put back the database as it was before this upgrade{how} (no `migrate down` needed; it shows what it would throw away and asks):\n{cmd}"
        );
    }
    Ok(block)
}

