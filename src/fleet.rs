//! Fleet runs: one command over every database of the selected environment, at most
//! `--parallel` at once, each with its own connection and lock; `--canary K` runs the
//! first K alone first, `--fail-fast` starts no new database after a failure. Each
//! database's result is captured as JSON; one summary (table or JSON) follows, and the
//! exit code is the highest of the databases'.

use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::Value;

use crate::cli::{Cli, Command};
use crate::config::DatabaseConfig;
use crate::environments::Selected;
use crate::error::{Error, Kind, Outcome, Result};
use crate::fleet_report::{
    DatabaseResult, FleetReport, FleetResult, FleetSummary, FleetSummaryLine,
};
use crate::output::{Output, shown};
use crate::spec::{Fleet, Work};

pub async fn run(cli: &Cli, env: &Selected, ui: &Output) -> Result<Outcome> {
    if cli.command.info().fleet == Fleet::One {
        let fleet: Vec<&str> = Command::all()
            .into_iter()
            .filter(|i| i.fleet != Fleet::One)
            .map(|i| i.name)
            .collect();
        return Err(Error::usage(
            format!(
                "environment '{}' names {} databases, and this command runs on one",
                shown(&env.name),
                env.urls.len()
            ),
            format!(
                "fleet runs: {}; pick one database with --database-url",
                fleet.join(", ")
            ),
        ));
    }
    if ui.format == crate::cli::Format::Csv {
        return Err(Error::usage(
            "--format csv is for one database; a fleet run writes a table, json or jsonl",
            "use --format jsonl, or pick one database with --database-url",
        ));
    }
    crate::signals::install_fleet(ui.cancel.clone());
    let parallel = cli
        .global
        .parallel
        .or(env.settings.parallel)
        .unwrap_or(4)
        .max(1) as usize;
    let canary = cli.global.canary.map(|k| (k as usize).min(env.urls.len()));
    let mut results: Vec<Option<FleetResult>> = (0..env.urls.len()).map(|_| None).collect();
    let first = canary.unwrap_or(env.urls.len());
    let stopped = run_batch(cli, env, ui, 0..first, parallel, &mut results).await
        || ui.cancel.signal().is_some();
    if canary.is_some()
        && cli.command.info().fleet == Fleet::Migrate
        && cli.command.work() == Work::Schema
    {
        verify_canaries(cli, env, &mut results[..first]).await;
    }
    let canary_failed = canary.is_some()
        && results
            .iter()
            .flatten()
            .any(|r| r.result != DatabaseResult::Ok);
    if !stopped && !canary_failed {
        run_batch(cli, env, ui, first..env.urls.len(), parallel, &mut results).await;
    }
    let databases: Vec<FleetResult> = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| skipped(&env.urls[i])))
        .collect();
    finish(ui, env, &cli.command, databases)
}

/// Run databases `range`, `parallel` at once; true when --fail-fast stopped it.
async fn run_batch(
    cli: &Cli,
    env: &Selected,
    ui: &Output,
    range: std::ops::Range<usize>,
    parallel: usize,
    results: &mut [Option<FleetResult>],
) -> bool {
    let mut next = range.start;
    let mut running = FuturesUnordered::new();
    let mut started: Vec<usize> = Vec::new();
    let mut stop = false;
    let mut cancelled = false;
    loop {
        while !stop && next < range.end && running.len() < parallel {
            let i = next;
            next += 1;
            started.push(i);
            running.push(async move { (i, one(cli, &env.urls[i], ui).await) });
        }
        // Wait for the next database, looking at the signal flag every 100 ms.
        let done =
            tokio::time::timeout(std::time::Duration::from_millis(100), running.next()).await;
        if ui.cancel.signal().is_some() {
            stop = true;
            if !cancelled {
                cancelled = true;
                let running_now: Vec<usize> = started
                    .iter()
                    .copied()
                    .filter(|i| results[*i].is_none())
                    .collect();
                cancel(cli, env, &running_now).await;
            }
        }
        let Ok(done) = done else {
            continue;
        };
        let Some((i, result)) = done else {
            break;
        };
        if result.result != DatabaseResult::Ok && cli.global.fail_fast {
            stop = true;
        }
        if ui.format == crate::cli::Format::Jsonl {
            // A line per database as it finishes: a pipeline follows a long fleet run.
            let _ = ui.line("database", &result);
        }
        results[i] = Some(result);
    }
    stop
}

/// After `migrate up` on the canaries: each must also pass verify-schema, or the rest
/// of the fleet does not start (the canary is marked failed, exit 1).
async fn verify_canaries(cli: &Cli, env: &Selected, canaries: &mut [Option<FleetResult>]) {
    for (i, slot) in canaries.iter_mut().enumerate() {
        let Some(r) = slot.as_mut().filter(|r| r.result == DatabaseResult::Ok) else {
            continue;
        };
        let verdict = async {
            let config = database(cli, &env.urls[i])?;
            let timeout = cli.global.connect_timeout();
            let silent = crate::progress::Silent;
            let db =
                crate::db::connect(&config, timeout, &silent, crate::db::Open::Existing).await?;
            let checked = crate::schema::check::check(&db, None, false).await;
            db.conn.close().await.ok();
            checked.map(|(_, report)| (report.failed(), report.findings.len()))
        }
        .await;
        let failure = match verdict {
            Ok((false, _)) => continue,
            Ok((true, n)) => (1, format!("verify-schema after migrate up: {n} findings")),
            Err(e) => (
                e.code(),
                format!("verify-schema after migrate up: {}", e.message()),
            ),
        };
        r.result = DatabaseResult::Failed;
        r.exit_code = Some(failure.0);
        r.error = Some(failure.1);
    }
}

/// Cancel the running statements of ours on each of `running` (PostgreSQL; SQLite
/// statements run in this process and end with it).
async fn cancel(cli: &Cli, env: &Selected, running: &[usize]) {
    for i in running {
        let Ok(config) = database(cli, &env.urls[*i]) else {
            continue;
        };
        if config.backend != sea_orm::DbBackend::Postgres {
            continue;
        }
        let open = crate::db::connect(
            &config,
            std::time::Duration::from_secs(2),
            &crate::progress::Silent,
            crate::db::Open::Existing,
        );
        if let Ok(Ok(db)) = tokio::time::timeout(std::time::Duration::from_secs(3), open).await {
            let _ = db.cancel_session_statements().await;
            db.conn.close().await.ok();
        }
    }
}

fn skipped(url: &str) -> FleetResult {
    FleetResult {
        database: crate::config::redact_url(url),
        result: DatabaseResult::Skipped,
        exit_code: None,
        duration_ms: 0,
        from: None,
        to: None,
        error: None,
        report: Value::Null,
        ahead: false,
    }
}

/// The command on one database: its output captured (the database's own document in
/// the fleet's), its typed result read.
async fn one(cli: &Cli, url: &str, ui: &Output) -> FleetResult {
    let started = Instant::now();
    let line = ui.fleet_line(&format!("{}: running", crate::config::redact_url(url)));
    // Quiet, and nothing of the command's own output reaches stdout: its typed report
    // goes into the fleet's document.
    let captured = ui.captured();
    let result = match database(cli, url) {
        Ok(config) => {
            let ctx = cli.context(captured.clone(), Some(config));
            cli.command.run(&ctx).await
        }
        Err(e) => Err(e),
    };
    line.finish_and_clear();
    let mut db = FleetResult {
        database: crate::config::redact_url(url),
        result: DatabaseResult::Failed,
        exit_code: None,
        duration_ms: started.elapsed().as_millis() as u64,
        from: None,
        to: None,
        error: None,
        ahead: false,
        report: Value::Null,
    };
    let done = match result {
        Ok(done) => done,
        Err(e) => {
            db.exit_code = Some(e.code());
            db.error = Some(e.message().to_owned());
            return db;
        }
    };
    // What a single run prints on stderr after its report, here too.
    if let Some(advice) = &done.advice {
        captured.stderr_block(advice);
    }
    if let Some(notice) = &done.notice {
        captured.error(notice);
    }
    // The database's own document: the typed report the command handed back.
    db.report = done
        .report
        .as_ref()
        .and_then(|r| r.to_json(cli.command.name()).ok())
        .unwrap_or(Value::Null);
    (db.from, db.to, db.ahead) = (done.from, done.to, done.ahead);
    match done.failure {
        Some(e) => {
            db.exit_code = Some(e.code());
            db.error = Some(e.message().to_owned());
        }
        None => {
            db.exit_code = Some(done.outcome.code());
            if done.outcome == Outcome::Success {
                db.result = DatabaseResult::Ok;
            }
        }
    }
    db
}

fn database(cli: &Cli, url: &str) -> Result<DatabaseConfig> {
    DatabaseConfig::from_environment(url, cli.global.schema.as_deref())
}

/// `migrate status` / `current` on a fleet: each database's version against this
/// build's head; true when any is behind or ahead (the gate exits 1).
fn version_skew(command: &Command, databases: &mut [FleetResult]) -> bool {
    if command.info().fleet != Fleet::VersionGate {
        return false;
    }
    let head = crate::migrations::head().alembic_revision;
    let mut skew = false;
    for d in databases
        .iter_mut()
        .filter(|d| d.result == DatabaseResult::Ok)
    {
        let why = if d.ahead {
            Some(format!(
                "ahead of this build's head {head} (versions it does not know)"
            ))
        } else if d.to.as_deref() != Some(head) {
            Some(format!(
                "behind this build's head {head} (at {})",
                d.to.as_deref().unwrap_or("no version")
            ))
        } else {
            None
        };
        if let Some(why) = why {
            // It failed the gate: counted as failed, with the gate's exit code.
            d.error = Some(why);
            d.result = DatabaseResult::Failed;
            d.exit_code = Some(crate::error::exit::CHECK_FAILED);
            skew = true;
        }
    }
    skew
}

fn finish(
    ui: &Output,
    env: &Selected,
    command: &Command,
    mut databases: Vec<FleetResult>,
) -> Result<Outcome> {
    let skew = version_skew(command, &mut databases);
    let count = |r: DatabaseResult| databases.iter().filter(|d| d.result == r).count();
    let exit_code = databases
        .iter()
        .filter_map(|d| d.exit_code)
        .max()
        .unwrap_or(0)
        .max(u8::from(skew));
    let report = FleetReport {
        environment: env.name.clone(),
        ok: count(DatabaseResult::Ok),
        failed: count(DatabaseResult::Failed),
        skipped: count(DatabaseResult::Skipped),
        exit_code,
        databases,
    };
    if ui.format == crate::cli::Format::Jsonl {
        for d in report
            .databases
            .iter()
            .filter(|d| d.result == DatabaseResult::Skipped)
        {
            ui.line("database", d)?;
        }
        let summary = FleetSummary {
            environment: report.environment.clone(),
            ok: report.ok,
            failed: report.failed,
            skipped: report.skipped,
            exit_code: report.exit_code,
        };
        ui.line("summary", &FleetSummaryLine { summary })?;
    } else {
        ui.emit(&report)?;
    }
    if let Some(code) = ui.cancel.signal() {
        let kind = Kind::from_code(code);
        return Err(Error::new(
            kind,
            format!(
                "interrupted by {}: {} databases finished, {} were not started; the running statements were cancelled and each database is at a recorded version",
                if kind == Kind::Terminated {
                    "SIGTERM"
                } else {
                    "SIGINT"
                },
                report.ok + report.failed,
                report.skipped
            ),
            Some("run the same command again to go on".into()),
        ));
    }
    match exit_code {
        0 => Ok(Outcome::Success),
        1 => Ok(Outcome::CheckFailed),
        code => Err(Error::new(
            Kind::from_code(code),
            format!(
                "{} of {} databases failed (the highest exit code: {code})",
                report.failed,
                report.databases.len()
            ),
            Some("the summary above says which and why".into()),
        )),
    }
}
