//! `verify-deployment`: the deployment checked at the running API, with the database
//! beside it (the probes that create nothing; see `crate::deployment`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::Ctx;
use crate::db;
use crate::deployment::{self, Check, Verdict};
use crate::commands::Done;
use crate::spec::{Fleet, Grants, Info, Privilege, Work};
use crate::error::{Error, Outcome, Result};
use crate::flags::parse_duration;
use crate::output::{Output, Report, shown};
use crate::progress::Progress as _;

#[derive(Debug, Args)]
pub struct VerifyDeploymentArgs {
    /// The running API's base URL (http:// or https://).
    #[arg(long, value_name = "URL")]
    pub api_url: String,

    /// Wait this long for the API to answer GET /health (like dbmate's --wait).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub wait: Duration,

    /// A known, accepted failure, by check name (repeatable): listed as accepted in the
    /// report, never dropped; every other check still gates the exit code.
    #[arg(long = "accept", value_name = "CHECK")]
    pub accept: Vec<String>,

    /// Also write the checks as JUnit XML to FILE (for CI systems).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Only the probes that write nothing (no fixtures, so not the plan's Tests 1 to
    /// 5): for a production where the check may not write.
    #[arg(long)]
    pub no_fixtures: bool,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DeploymentReport {
    pub api_url: String,
    pub database: String,
    pub checks: Vec<Check>,
    pub passed: usize,
    pub failed: usize,
    pub accepted: usize,
}

impl Report for DeploymentReport {
    fn render(&self, out: &mut String, ui: &Output) {
        let _ = writeln!(
            out,
            "api: {}   database: {}",
            shown(&self.api_url),
            shown(&self.database)
        );
        let mut t = ui.table(&["check", "result", "detail"]);
        for c in &self.checks {
            let r = match c.result {
                Verdict::Pass => "pass",
                Verdict::Fail => "FAIL",
                Verdict::Accepted => "accepted",
            };
            t.add_row(vec![c.check.clone(), r.to_owned(), c.detail.clone()]);
        }
        let _ = writeln!(out, "{t}");
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} accepted",
            self.passed, self.failed, self.accepted
        );
    }
}

pub const INFO: Info = Info {
    name: "verify-deployment",
    database: true,
    csv: false,
    fleet: Fleet::One,
    // With its fixtures (not with --no-fixtures): an org, an admin and a viewer made
    // and removed, the requests' audit rows read.
    grants: Some(Grants {
        row: "verify-deployment",
        writes: true,
        create_in_schema: false,
        owns_tables: false,
        tables: &[
            ("orgs", Privilege::Insert),
            ("orgs", Privilege::Delete),
            ("users", Privilege::Insert),
            ("users", Privilege::Select),
            ("users", Privilege::Delete),
            ("audit_logs", Privilege::Insert),
            ("audit_logs", Privilege::Select),
        ],
    }),
    fails_when: Some("a deployment check failed under `verify-deployment` (one not waived by `--accept`)"),
    schema: Some(crate::contracts::document::<DeploymentReport>),
};

impl super::Spec for VerifyDeploymentArgs {
    const INFOS: &'static [&'static Info] = &[&INFO];

    fn info(&self) -> &'static Info {
        &INFO
    }

    fn work(&self) -> Work {
        if self.no_fixtures { Work::ReadOnly } else { Work::Fixtures }
    }

    fn lock(&mut self) -> Option<&mut super::LockArgs> {
        None
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        execute(self, ctx).await
    }
}

async fn execute(args: &VerifyDeploymentArgs, ctx: &Ctx) -> Result<Done> {
    let ui = &ctx.ui;
    let api = deployment::Api::new(&args.api_url)?;
    let mut checks = ctx
        .with_db(db::Open::Existing, async |db| {
            let result = checks(&api, db, args, ui).await;
            if !args.no_fixtures {
                // Passed or failed: the fixtures go (their audit rows stay, labelled).
                if let Err(e) = deployment::remove_fixtures(db).await {
                    ui.warn(format!(
                        "the fixtures were not removed ({}); the next run removes them first",
                        e.message()
                    ));
                }
            }
            result
        })
        .await?;
    accept(&mut checks, &args.accept)?;
    let count = |v: Verdict| checks.iter().filter(|c| c.result == v).count();
    let report = DeploymentReport {
        api_url: crate::redact::redact_url(&args.api_url),
        database: ctx.config()?.redacted(),
        passed: count(Verdict::Pass),
        failed: count(Verdict::Fail),
        accepted: count(Verdict::Accepted),
        checks,
    };
    if let Some(file) = &args.junit {
        crate::fsafe::write_private(
            file,
            deployment::junit("verify-deployment", &report.checks).as_bytes(),
        )
        .map_err(|e| {
            Error::new(
                crate::error::Kind::Output,
                format!(
                    "cannot write --junit {}: {e}",
                    shown(&file.display().to_string())
                ),
                Some("check the path".into()),
            )
        })?;
    }
    let outcome = if report.failed > 0 {
        Outcome::CheckFailed
    } else {
        Outcome::Success
    };
    Ok(Done::report(report, outcome))
}

/// Every check, in order: the API answers; the plan's Tests 1 to 5 on fresh fixtures
/// (unless --no-fixtures; a previous run's leftovers removed first); the probes that
/// create nothing.
async fn checks(
    api: &deployment::Api,
    db: &db::Db,
    args: &VerifyDeploymentArgs,
    ui: &Output,
) -> Result<Vec<Check>> {
    let (first_user, privileged) = read_accounts(db).await?;
    let fixtures = if args.no_fixtures {
        None
    } else {
        let left = deployment::remove_fixtures(db).await?;
        if left > 0 {
            ui.note(format!(
                "removed {left} leftover verify-deployment fixture organization(s) of an earlier run"
            ));
        }
        let f = deployment::Fixtures::new();
        deployment::create_fixtures(db, &f).await?;
        Some(f)
    };
    let step = ui.step("waiting for the API");
    api.wait_until_up(args.wait)?;
    drop(step);
    let mut checks = vec![api.health()?];
    if let Some(f) = &fixtures {
        checks.extend(deployment::plan_tests(api, f, db).await?);
    }
    checks.extend(api.open_routes()?);
    checks.extend(api.default_secret(first_user.as_deref())?);
    let step = ui.step("checking the owners' and admins' passwords against the published ones");
    checks.push(deployment::published_passwords(&privileged));
    drop(step);
    Ok(checks)
}

/// `--accept`: each names a check of this run (a typo is a usage error); a failure it
/// names is listed as accepted.
fn accept(checks: &mut [Check], accepted: &[String]) -> Result<()> {
    for name in accepted {
        let Some(c) = checks.iter_mut().find(|c| &c.check == name) else {
            return Err(Error::usage(
                format!("--accept {}: no such check", shown(name)),
                "the check names are the first column of the report (e.g. 'auth-required:GET /v1/audits')",
            ));
        };
        if c.result == Verdict::Fail {
            c.result = Verdict::Accepted;
        }
    }
    Ok(())
}

/// A user id to name in the token probes, and the owners' and admins' (email, hash).
async fn read_accounts(db: &db::Db) -> Result<(Option<String>, Vec<(String, String)>)> {
    let first = db
        .query_one("SELECT id FROM users ORDER BY created_at, id LIMIT 1")
        .await?
        .and_then(|r| r.try_get::<String>("", "id").ok());
    let has_hash = db::read_in(db.snapshot().await?, async |txn| {
        crate::schema::snapshots::has_column(txn, "users", "password_hash").await
    })
    .await?;
    let mut privileged = Vec::new();
    if has_hash {
        for r in db
            .query_all(
                "SELECT email, password_hash FROM users WHERE CAST(role AS TEXT) IN ('owner', 'admin') \
                 AND password_hash IS NOT NULL",
            )
            .await?
        {
            if let (Ok(e), Ok(h)) = (r.try_get::<String>("", "email"), r.try_get::<String>("", "password_hash")) {
                privileged.push((e, h));
            }
        }
    }
    Ok((first, privileged))
}
