//! `restore FILE`: the rollback plan as one command (the core:
//! [`crate::backup::restore`]). Destructive: asks on a terminal, refuses without `--yes`
//! otherwise.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;

use super::{Ctx, Done};
use crate::backup::restore::{self, RestoreReport, RestoreStatus};
use crate::backup::verify::CheckStatus;
use crate::db;
use crate::error::{Error, Kind, Outcome, Result};
use crate::output::{Output, Report, shown};
use crate::spec::{Fleet, Info, Work};
use crate::upgrade::version_label;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup (`.dump` or `.db`) that `backup` or `upgrade` took, with its
    /// `.manifest.json` beside it.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// The directory of pg_restore and psql (default: PATH, then
    /// /usr/lib/postgresql/<N>/bin, newest first).
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<PathBuf>,
}

pub const INFO: Info = Info {
    name: "restore",
    database: true,
    csv: false,
    fleet: Fleet::One,
    // It drops and makes the API's tables, as `migrate` does.
    grants: Some(crate::spec::MIGRATE_GRANTS),
    fails_when: Some(
        "`restore`: the database after the restore does not pass verify-schema at the backup's version, or its row counts differ from the backup's",
    ),
    schema: Some(crate::contracts::document::<RestoreReport>),
};

impl super::Spec for RestoreArgs {
    const INFOS: &'static [&'static Info] = &[&INFO];

    fn info(&self) -> &'static Info {
        &INFO
    }

    fn work(&self) -> Work {
        Work::Restore
    }

    fn lock(&mut self) -> Option<&mut super::LockArgs> {
        None
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        let secret = ctx.config()?.secret_url().to_owned();
        let opts = restore::Options {
            file: &self.file,
            secret_url: &secret,
            pg_bin_dir: self.pg_bin_dir.as_deref(),
            yes: self.yes,
            lock_wait: ctx.lock_wait,
        };
        let report = ctx
            .with_db(db::Open::Existing, async |db| {
                db.ensure_writable().await?;
                restore::restore(db, &opts, &ctx.ui).await
            })
            .await?;
        let failed = report.status != RestoreStatus::Restored;
        let notice = failed.then(|| {
            Error::new(
                Kind::CheckFailed,
                "the restore went through, but the database does not check out against the backup",
                Some("see the checks above; `ecomind-admin verify-schema` shows the drift".into()),
            )
        });
        let to = report.to.as_ref().map(|v| v.alembic_revision.to_owned());
        let from = Some(
            report
                .from
                .as_ref()
                .map(|v| v.alembic_revision.to_owned())
                .unwrap_or_else(|| "none".into()),
        );
        Ok(Done {
            notice,
            from,
            to,
            ..Done::report(
                report,
                if failed {
                    Outcome::CheckFailed
                } else {
                    Outcome::Success
                },
            )
        })
    }
}

impl Report for RestoreReport {
    fn render(&self, out: &mut String, ui: &Output) {
        let _ = writeln!(out, "database: {}", shown(&self.database));
        let _ = writeln!(
            out,
            "backup: {} (taken {})",
            shown(&self.file.display().to_string()),
            shown(&self.taken_at)
        );
        let lost: Vec<_> = self.writes_since.iter().filter(|t| t.changed()).collect();
        if lost.is_empty() {
            let _ = writeln!(out, "thrown away: nothing was written since the backup");
        } else {
            let mut t = ui.table(&[
                "table",
                "rows in backup",
                "rows before",
                "inserted",
                "updated",
                "deleted",
            ]);
            let n = crate::output::or_dash;
            for c in lost {
                t.add_row(vec![
                    c.table.clone(),
                    n(c.rows_in_backup),
                    n(c.rows_now),
                    n(c.inserted),
                    n(c.updated),
                    n(c.deleted),
                ]);
            }
            let _ = writeln!(out, "thrown away (writes since the backup):\n{t}");
        }
        for s in &self.sessions {
            let _ = writeln!(out, "connected during the restore: {}", restore::session_line(s));
        }
        let mut t = ui.table(&["check", "result", "detail"]);
        for c in &self.checks {
            t.add_row(vec![
                c.check.label().to_owned(),
                if c.result == CheckStatus::Ok {
                    "ok"
                } else {
                    "FAILED"
                }
                .to_owned(),
                c.detail.clone(),
            ]);
        }
        let _ = writeln!(out, "{t}");
        let _ = writeln!(
            out,
            "{}: {} -> {} in {} ms",
            match self.status {
                RestoreStatus::Restored => "restored",
                RestoreStatus::CheckFailed => "restored, checks FAILED",
            },
            version_label(&self.from),
            version_label(&self.to),
            self.duration_ms
        );
        let _ = writeln!(out, "next: {}", self.next);
    }
}
