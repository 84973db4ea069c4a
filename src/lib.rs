//! ecomind-admin: the operator CLI for the EcoMind API database.
//!
//! `main.rs` only parses, runs [`run`], prints the error once and exits with its code.

#![warn(clippy::too_many_lines)]

pub mod accounts;
pub mod audit;
pub mod backup;
pub mod cancel;
pub mod cli;
pub mod commands;
pub mod config;
pub mod contracts;
pub mod db;
pub mod deployment;
pub mod docs;
pub mod emails;
pub mod entities;
pub mod environments;
pub mod error;
pub mod flags;
mod fleet;
pub mod fleet_report;
pub mod fsafe;
pub mod metrics;
pub mod migrations;
pub mod output;
pub mod privileges;
pub mod progress;
pub mod provenance;
pub mod records;
pub mod redact;
pub mod schema;
pub mod signals;
pub mod spec;
pub mod terminal;
pub mod text;
pub mod upgrade;

use cli::{Cli, Command};
pub use error::Outcome;
use error::Result;
use output::Output;

/// Run a parsed command line; `cancel` is the token the signal thread and the command
/// share (made by `main`, which owns how the process ends).
pub async fn run(mut cli: Cli, cancel: cancel::Cancel) -> Result<Outcome> {
    // A failpoint for the tests of the internal-error path (debug builds only).
    #[cfg(debug_assertions)]
    if std::env::var_os("ECOMIND_TEST_PANIC").is_some() {
        panic!("ECOMIND_TEST_PANIC is set");
    }
    let ui = Output::new(&cli.global, cancel.clone()).with_command(cli.command.name());
    let ui = match output_file(&mut cli).map(|path| ui.clone().with_output_file(&path)) {
        Some(Ok(with_file)) => with_file,
        Some(Err(e)) => {
            ui.emit_error(&e);
            return Err(e);
        }
        None => ui,
    };
    if ui.format == cli::Format::Csv && !cli.command.info().csv {
        let csv: Vec<String> = Command::all()
            .into_iter()
            .filter(|i| i.csv)
            .map(|i| format!("`{}`", i.name))
            .collect();
        return Err(error::Error::usage(
            format!("--format csv is only supported by {}", text::join_and(&csv)),
            "use --format table or --format json",
        ));
    }
    let result = match environment(&mut cli) {
        Ok(env) => {
            // `--lock-wait` (or the environment's) for the commands with lock flags.
            let lock_wait = cli.global.lock_wait;
            if let Some(lock) = cli.command.lock() {
                lock.lock_wait = lock_wait;
            }
            init_logging(&ui, &cli.global, env.as_ref());
            dispatch(&cli, env.as_ref(), &ui).await
        }
        Err(e) => Err(e),
    };
    // After a signal the command came back (its statement cancelled): the signal's line
    // is its error. When the signal thread has the line, it prints it and ends the
    // process: nothing more from here.
    let result = match cancel.interrupted_error(std::time::Duration::from_secs(5)) {
        Some(err) => Err(err),
        None if cancel.silenced() => loop {
            std::thread::park();
        },
        None => result,
    };
    if let Err(err) = &result {
        ui.emit_error(err);
    }
    let finished = ui.finish_output(result.is_ok());
    match (result, finished) {
        (Ok(_), Err(e)) => Err(e),
        (result, _) => result,
    }
}

/// `--output FILE`, or upgrade's `--report FILE` (the same, by its older name).
fn output_file(cli: &mut Cli) -> Option<std::path::PathBuf> {
    if let Command::Upgrade(a) = &mut cli.command
        && let Some(report) = a.report.take()
    {
        return Some(cli.global.output.take().unwrap_or(report));
    }
    cli.global.output.clone()
}

/// The environment `--env` selects in the config file, with its settings filled into
/// the flags no one set (flags and environment variables come first).
fn environment(cli: &mut Cli) -> Result<Option<environments::Selected>> {
    let Some(name) = cli.global.environment.clone() else {
        return Ok(None);
    };
    let Some(file) = environments::locate(cli.global.config.as_deref())? else {
        return Err(error::Error::usage(
            format!(
                "--env {}: no config file (--config, {}, or ./{})",
                text::shown(&name),
                environments::FILE_ENV,
                environments::FILE_NAME
            ),
            "see docs/configuration.md \"Environments and fleets\"",
        ));
    };
    let env = environments::select(&file, &name)?;
    if let Some(lock) = cli.command.lock() {
        lock.or_environment(&env.settings);
    }
    cli.global.connect_timeout = cli.global.connect_timeout.or(env.settings.connect_timeout);
    cli.global.lock_wait = cli.global.lock_wait.or(env.settings.lock_wait);
    cli.global.schema = cli.global.schema.take().or(env.settings.schema.clone());
    Ok(Some(env))
}

async fn dispatch(cli: &Cli, env: Option<&environments::Selected>, ui: &Output) -> Result<Outcome> {
    let work = cli.command.work();
    if work == spec::Work::Offline {
        let ctx = cli.context(ui.clone(), None);
        return render(cli.command.run(&ctx).await?, ui);
    }
    if cli.global.database_url.len() > 1 {
        let listed = environments::Selected {
            name: "--database-url".into(),
            file: std::path::PathBuf::new(),
            urls: cli.global.database_url.clone(),
            settings: env.map(|e| e.settings.clone()).unwrap_or_default(),
        };
        return fleet::run(cli, &listed, ui).await;
    }
    if let Some(env) = env
        && env.urls.len() > 1
        && cli.global.database_url.is_empty()
    {
        return fleet::run(cli, env, ui).await;
    }
    let config = database(cli, env, ui)?;
    signals::install(ui.cancel.clone(), config.clone(), work, ui.clone());
    let ctx = cli.context(ui.clone(), Some(config));
    render(cli.command.run(&ctx).await?, ui)
}

/// The one place a command's result document is rendered (table, JSON, JSON Lines,
/// `--output`).
fn render(done: commands::Done, ui: &Output) -> Result<Outcome> {
    if let Some(report) = &done.report {
        report.emit(ui)?;
    }
    if let Some(advice) = &done.advice {
        ui.stderr_block(advice);
    }
    if let Some(notice) = &done.notice {
        ui.error(notice);
    }
    match done.failure {
        Some(err) => Err(err),
        None => Ok(done.outcome),
    }
}

/// The database: `--database-url` / `DATABASE_URL` first (even with `--env`, which it
/// overrides, saying so), then the selected environment's, then `.env` and the default.
fn database(
    cli: &Cli,
    env: Option<&environments::Selected>,
    ui: &Output,
) -> Result<config::DatabaseConfig> {
    let Some(env) = env else {
        return cli.global.database();
    };
    if !cli.global.database_url.is_empty() {
        ui.warn(format!(
            "--database-url / DATABASE_URL overrides the database of environment '{}'",
            text::shown(&env.name)
        ));
        return cli.global.database();
    }
    // Several databases never reach here: `dispatch` runs them as a fleet.
    config::DatabaseConfig::from_environment(&env.urls[0], cli.global.schema.as_deref())
}

/// `-v` logs SQL statements (sqlx's statement log), `-vv` the driver's debug logs; to
/// stderr, each record with the URL's secrets masked and through [`output::escape`].
fn init_logging(ui: &Output, global: &cli::GlobalArgs, env: Option<&environments::Selected>) {
    if ui.verbose == 0 {
        return;
    }
    // The URL the driver will see: the one given (even when it does not parse as a
    // configuration), else the one from .env or the default.
    let mut urls: Vec<String> = global.database_url.clone();
    urls.extend(env.map(|e| e.urls.clone()).unwrap_or_default());
    if urls.is_empty()
        && let Ok(c) = global.database()
    {
        urls.push(c.secret_url().to_owned());
    }
    let mut secrets: Vec<String> = urls
        .iter()
        .flat_map(|u| config::secrets_in_url(u))
        .collect();
    if let Ok(pw) = std::env::var("PGPASSWORD")
        && pw.chars().count() >= 3
    {
        secrets.push(pw);
        // Longest first, so that a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
    let sink = output::LogSink::new(secrets, ui.color_stderr());
    let filter = if ui.verbose == 1 {
        "sqlx::query=info,sea_orm=info"
    } else {
        "debug"
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(sink)
        .with_target(false)
        .with_ansi(ui.color_stderr())
        .without_time()
        .try_init();
}
