//! `backup [--dir DIR]`: the backup `upgrade` takes, as a command (the deployment plan's
//! "Backup current state"), with its manifest; and `backup verify FILE`: a backup
//! proven by a restore into a scratch copy (the core: [`crate::backup`]).

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Ctx, Done};
use crate::backup::take::{self, Taken};
use crate::backup::verify::{self, CheckStatus, VerifyReport};
use crate::db;
use crate::error::{Error, Kind, Outcome, Result};
use crate::output::{Output, Report, shown};
use crate::spec::{Fleet, Info, Work};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub verify: Option<BackupCommand>,

    /// Where the backup goes (created, mode 0700, when missing).
    #[arg(long, value_name = "DIR", default_value = "ecomind-backups")]
    pub dir: PathBuf,

    /// The directory of pg_dump and pg_restore (default: PATH, then
    /// /usr/lib/postgresql/<N>/bin, newest first).
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Prove a backup by a restore: into a scratch database made and dropped here (or
    /// --scratch-url), then verify-schema, the row counts against its manifest, and the
    /// audit on the copy (exit 1 unless the copy is faithful).
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The backup (`.dump` or `.db`, with its `.manifest.json` beside it).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Restore into this empty PostgreSQL database instead of making one (emptied
    /// again afterwards). Refused when it is the source database or not empty. Prefer
    /// the ECOMIND_SCRATCH_URL variable to a password on the command line (argv is
    /// visible to every user of the machine).
    #[arg(long, value_name = "URL", env = "ECOMIND_SCRATCH_URL", hide_env_values = true)]
    pub scratch_url: Option<String>,

    /// The directory of pg_restore.
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<PathBuf>,
}

pub const BACKUP: Info = Info {
    name: "backup",
    database: true,
    csv: false,
    fleet: Fleet::Each,
    grants: None,
    fails_when: None,
    schema: Some(crate::contracts::document::<Taken>),
};

pub const VERIFY: Info = Info {
    name: "backup verify",
    database: true,
    csv: false,
    // One file, one proof: a fleet would restore the same file once per database.
    fleet: Fleet::One,
    grants: None,
    fails_when: Some(
        "`backup verify`: the backup does not restore, its file changed since, or its copy fails verify-schema or its row counts",
    ),
    schema: Some(crate::contracts::document::<VerifyReport>),
};

impl super::Spec for BackupArgs {
    const INFOS: &'static [&'static Info] = &[&BACKUP, &VERIFY];

    fn info(&self) -> &'static Info {
        match self.verify {
            None => &BACKUP,
            Some(BackupCommand::Verify(_)) => &VERIFY,
        }
    }

    fn work(&self) -> Work {
        // Files and a scratch database; the database itself is only read.
        match self.verify {
            None | Some(BackupCommand::Verify(_)) => Work::ReadOnly,
        }
    }

    fn lock(&mut self) -> Option<&mut super::LockArgs> {
        None
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        match &self.verify {
            None => backup(self, ctx).await,
            Some(BackupCommand::Verify(v)) => verify_backup(v, ctx).await,
        }
    }
}

async fn backup(args: &BackupArgs, ctx: &Ctx) -> Result<Done> {
    let secret = ctx.config()?.secret_url().to_owned();
    let taken = ctx
        .with_db(db::Open::Existing, async |db| {
            let state = crate::migrations::snapshot_state(db).await?;
            let tools = if db.is_postgres() {
                let major = verify::server_major(db).await?;
                Some(crate::backup::find_pg_tools(
                    major,
                    args.pg_bin_dir.as_deref(),
                )?)
            } else {
                None
            };
            let target = take::Target {
                dir: &args.dir,
                secret_url: &secret,
                tools: tools.as_ref(),
                lock_wait: ctx.lock_wait,
            };
            take::take(db, &state, &target, &ctx.ui, &ctx.ui.cancel).await
        })
        .await?;
    Ok(Done::report(taken, Outcome::Success))
}

impl Report for Taken {
    fn render(&self, out: &mut String, ui: &Output) {
        let m = &self.manifest;
        let mut t = ui.table(&["table", "rows"]);
        for table in &m.tables {
            t.add_row(vec![table.table.clone(), table.rows.to_string()]);
        }
        let _ = writeln!(out, "{t}");
        let _ = writeln!(
            out,
            "{} {} ({}, {}; {})",
            if self.reused {
                "reused (nothing written since):"
            } else {
                "backup:"
            },
            shown(&self.backup.path.display().to_string()),
            crate::backup::human_bytes(self.backup.bytes),
            shown(m.alembic_revision.as_deref().unwrap_or("no version")),
            self.backup.checked
        );
        let _ = writeln!(
            out,
            "manifest: {}",
            shown(&self.manifest_path.display().to_string())
        );
        let _ = writeln!(out, "sha256: {}", self.backup.sha256);
        let _ = writeln!(
            out,
            "prove it: ecomind-admin backup verify {}",
            crate::backup::shell_quote(&self.backup.path.display().to_string())
        );
    }
}

async fn verify_backup(args: &VerifyArgs, ctx: &Ctx) -> Result<Done> {
    let config = ctx.config()?;
    let opts = verify::Options {
        file: &args.file,
        scratch_url: args.scratch_url.as_deref(),
        pg_bin_dir: args.pg_bin_dir.as_deref(),
        connect_timeout: ctx.connect_timeout,
        schema: config
            .schema
            .as_deref()
            .filter(|_| config.set_search_path),
    };
    // A PostgreSQL dump is restored on the configured server (unless --scratch-url);
    // a SQLite copy needs no server.
    let needs_source = verify::sniff(&args.file)? == verify::Kind::PgDump
        && config.backend == sea_orm::DbBackend::Postgres;
    let report = if needs_source {
        let secret = config.secret_url().to_owned();
        ctx.with_db(db::Open::Existing, async |db| {
            verify::verify(Some((db, &secret)), &opts, &ctx.ui, &ctx.ui.cancel).await
        })
        .await?
    } else {
        verify::verify(None, &opts, &ctx.ui, &ctx.ui.cancel).await?
    };
    let failure = report.reason().map(|reason| {
        Error::new(
            Kind::CheckFailed,
            format!("the backup does not verify: {reason}"),
            Some("take a new backup (`ecomind-admin backup`); do not rely on this one".into()),
        )
    });
    let outcome = if failure.is_some() {
        Outcome::CheckFailed
    } else {
        Outcome::Success
    };
    Ok(Done {
        notice: failure,
        ..Done::report(report, outcome)
    })
}

impl Report for VerifyReport {
    fn render(&self, out: &mut String, ui: &Output) {
        let _ = writeln!(
            out,
            "backup: {}",
            shown(&self.file.display().to_string())
        );
        let _ = writeln!(out, "restored into: {}", shown(&self.scratch));
        let mut t = ui.table(&["check", "result", "detail"]);
        for c in &self.checks {
            t.add_row(vec![
                c.check.label().to_owned(),
                match c.result {
                    CheckStatus::Ok => "ok",
                    CheckStatus::Failed => "FAILED",
                    CheckStatus::Skipped => "skipped",
                }
                .to_owned(),
                c.detail.clone(),
            ]);
        }
        let _ = writeln!(out, "{t}");
        if self.tables.iter().any(|t| !t.ok) {
            let mut t = ui.table(&["table", "in the backup", "in the copy"]);
            for r in self.tables.iter().filter(|r| !r.ok) {
                t.add_row(vec![
                    r.table.clone(),
                    crate::output::or_dash(r.expected),
                    crate::output::or_dash(r.found),
                ]);
            }
            let _ = writeln!(out, "{t}");
        }
        let _ = writeln!(
            out,
            "{} ({} ms)",
            if self.verified {
                "verified: the copy is a faithful, verified database"
            } else {
                "NOT verified"
            },
            self.duration_ms
        );
    }
}
