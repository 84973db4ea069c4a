//! Fleet runs: one command over every database of the selected environment, at most
//! `--parallel` at once, each with its own connection and lock; `--canary K` runs the
//! first K alone first, `--fail-fast` starts no new database after a failure. Each
//! database's result is captured as JSON; one summary (table or JSON) follows, and the
//! exit code is the highest of the databases'.

use std::fmt::Write as _;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;
use serde_json::Value;

use crate::cli::{Cli, Command};
use crate::commands::{self, migrate::MigrateCommand};
use crate::config::DatabaseConfig;
use crate::environments::Selected;
use crate::error::{Error, Kind, Outcome, Result};
use crate::output::{Output, Report, shown};

/// One database of a fleet run.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FleetResult {
    pub database: String,
    /// `ok`, `failed` (its exit code says how), or `skipped` (not started).
    pub result: &'static str,
    pub exit_code: Option<u8>,
    pub duration_ms: u64,
    /// The version before and after, when the command reports them.
    pub from: Option<String>,
    pub to: Option<String>,
    pub error: Option<String>,
    /// The command's own JSON document for this database.
    pub report: Value,
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
                ("failed", Some(c)) => format!("FAILED ({c})"),
                (r, _) => r.to_owned(),
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

/// The commands a fleet runs: those that act on one database's schema or read it.
fn supported(command: &Command) -> bool {
    matches!(
        command,
        Command::Migrate(
            MigrateCommand::Up(_)
                | MigrateCommand::Down(_)
                | MigrateCommand::Status
                | MigrateCommand::Current(_)
        ) | Command::VerifySchema(_)
            | Command::Audit(_)
            | Command::Doctor(_)
            | Command::Baseline(_)
            | Command::Upgrade(_)
    )
}

pub async fn run(cli: &Cli, env: &Selected, ui: &Output) -> Result<Outcome> {
    if !supported(&cli.command) {
        return Err(Error::usage(
            format!(
                "environment '{}' names {} databases, and this command runs on one",
                shown(&env.name),
                env.urls.len()
            ),
            "fleet runs: migrate, verify-schema, audit, doctor, baseline, upgrade; pick one database with --database-url",
        ));
    }
    if ui.format == crate::cli::Format::Csv {
        return Err(Error::usage(
            "--format csv is for one database; a fleet run writes a table, json or jsonl",
            "use --format jsonl, or pick one database with --database-url",
        ));
    }
    crate::signals::install_fleet();
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
        || crate::signals::fleet_stop().is_some();
    if canary.is_some()
        && matches!(&cli.command, Command::Migrate(MigrateCommand::Up(a)) if !a.dry_run)
    {
        verify_canaries(cli, env, &mut results[..first]).await;
    }
    let canary_failed = canary.is_some() && results.iter().flatten().any(|r| r.result != "ok");
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
        if crate::signals::fleet_stop().is_some() {
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
        if result.result != "ok" && cli.global.fail_fast {
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
        let Some(r) = slot.as_mut().filter(|r| r.result == "ok") else {
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
        r.result = "failed";
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
        result: "skipped",
        exit_code: None,
        duration_ms: 0,
        from: None,
        to: None,
        error: None,
        report: Value::Null,
    }
}

/// The version a report names under `key` (`from`, `to`, `current`): its Alembic
/// revision.
fn revision(report: &Value, key: &str) -> Option<String> {
    let v = report.get(key)?;
    v.get("alembic_revision")
        .or_else(|| v.get("seaorm").and_then(|s| s.get("alembic_revision")))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The command on one database, its output captured.
async fn one(cli: &Cli, url: &str, ui: &Output) -> FleetResult {
    let started = Instant::now();
    let line = ui.fleet_line(&format!("{}: running", crate::config::redact_url(url)));
    let (captured, sink) = ui.captured();
    let result = match database(cli, url) {
        Ok(config) => {
            let ctx = commands::Ctx {
                ui: captured,
                config,
                connect_timeout: cli.global.connect_timeout(),
                allow_newer_schema: cli.global.allow_newer_schema,
                lock_wait: cli.global.lock_wait.unwrap_or(commands::DEFAULT_LOCK_WAIT),
            };
            crate::run_command(&cli.command, &ctx).await
        }
        Err(e) => Err(e),
    };
    line.finish_and_clear();
    let text = sink.lock().map(|b| b.clone()).unwrap_or_default();
    let report: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
    let (result, exit_code, error) = match result {
        Ok(Outcome::Success) => ("ok", 0, None),
        Ok(Outcome::CheckFailed) => ("failed", 1, None),
        Err(e) => ("failed", e.code(), Some(e.message().to_owned())),
    };
    FleetResult {
        database: crate::config::redact_url(url),
        result,
        exit_code: Some(exit_code),
        duration_ms: started.elapsed().as_millis() as u64,
        // A report with `from: null` started from an empty database: say so.
        from: revision(&report, "from").or_else(|| {
            report
                .get("from")
                .filter(|v| v.is_null() && report.get("to").is_some())
                .map(|_| "none".to_owned())
        }),
        to: revision(&report, "to").or_else(|| revision(&report, "current")),
        error,
        report,
    }
}

fn database(cli: &Cli, url: &str) -> Result<DatabaseConfig> {
    DatabaseConfig::from_environment(url, cli.global.schema.as_deref())
}

/// The version a `migrate status` or `migrate current` report says the database is at.
fn status_version(report: &Value) -> Option<String> {
    revision(report, "current").or_else(|| {
        report["migrations"]
            .as_array()?
            .iter()
            .rev()
            .find(|m| m["status"] == "applied")
            .and_then(|m| m["alembic_revision"].as_str())
            .map(str::to_owned)
    })
}

/// `migrate status` / `current` on a fleet: each database's version against this
/// build's head; true when any is behind or ahead (the gate exits 1).
fn version_skew(command: &Command, databases: &mut [FleetResult]) -> bool {
    if !matches!(
        command,
        Command::Migrate(MigrateCommand::Status | MigrateCommand::Current(_))
    ) {
        return false;
    }
    let known = crate::migrations::known();
    let head = known.last().map(|k| k.alembic_revision).unwrap_or("-");
    let mut skew = false;
    for d in databases.iter_mut().filter(|d| d.result == "ok") {
        let at = status_version(&d.report);
        d.to = at.clone();
        let unknown = d.report["unknown_applied"]
            .as_array()
            .is_some_and(|u| !u.is_empty());
        let why = if unknown {
            Some(format!(
                "ahead of this build's head {head} (versions it does not know)"
            ))
        } else if at.as_deref() != Some(head) {
            Some(format!(
                "behind this build's head {head} (at {})",
                at.as_deref().unwrap_or("no version")
            ))
        } else {
            None
        };
        if let Some(why) = why {
            // It failed the gate: counted as failed, with the gate's exit code.
            d.error = Some(why);
            d.result = "failed";
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
    let count = |r: &str| databases.iter().filter(|d| d.result == r).count();
    let exit_code = databases
        .iter()
        .filter_map(|d| d.exit_code)
        .max()
        .unwrap_or(0)
        .max(u8::from(skew));
    let report = FleetReport {
        environment: env.name.clone(),
        ok: count("ok"),
        failed: count("failed"),
        skipped: count("skipped"),
        exit_code,
        databases,
    };
    if ui.format == crate::cli::Format::Jsonl {
        for d in report.databases.iter().filter(|d| d.result == "skipped") {
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
    if let Some(code) = crate::signals::fleet_stop() {
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
