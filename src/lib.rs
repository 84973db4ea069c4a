//! ecomind-admin: the operator CLI for the EcoMind API database.
//!
//! `main.rs` only parses, runs [`run`], prints the error once and exits with its code.

pub mod accounts;
pub mod audit;
pub mod backup;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod docs;
pub mod entities;
pub mod error;
pub mod flags;
pub mod migrations;
pub mod output;
pub mod privileges;
pub mod progress;
pub mod records;
pub mod redact;
pub mod schema;
pub mod signals;
pub mod text;

use cli::{Cli, Command};
pub use error::Outcome;
use error::Result;
use output::Output;

/// Run a parsed command line.
pub async fn run(cli: Cli) -> Result<Outcome> {
    // A failpoint for the tests of the internal-error path (debug builds only).
    #[cfg(debug_assertions)]
    if std::env::var_os("ECOMIND_TEST_PANIC").is_some() {
        panic!("ECOMIND_TEST_PANIC is set");
    }
    let ui = Output::new(&cli.global);
    if ui.format == cli::Format::Csv
        && !matches!(
            cli.command,
            Command::Audit(_) | Command::Users(_) | Command::Orgs(_)
        )
    {
        return Err(error::Error::usage(
            "--format csv is only supported by `audit suspicious-accounts`, `users list` and `orgs list`",
            "use --format table or --format json",
        ));
    }
    init_logging(&ui, &cli.global);
    let result = dispatch(&cli, &ui).await;
    if let Err(err) = &result
        && !signals::interrupted()
    {
        ui.emit_error(err);
    }
    result
}

async fn dispatch(cli: &Cli, ui: &Output) -> Result<Outcome> {
    let ctx = || context(cli, ui);
    match &cli.command {
        Command::Migrate(cmd) => commands::migrate::run(cmd, &ctx()?).await,
        Command::Audit(cmd) => commands::audit::run(cmd, &ctx()?).await,
        Command::CreateOrg(args) => commands::create_org::run(args, &ctx()?).await,
        Command::CreateAdmin(args) => commands::create_admin::run(args, &ctx()?).await,
        Command::Baseline(args) => commands::baseline::run(args, &ctx()?).await,
        Command::VerifySchema(args) => commands::verify_schema::run(args, &ctx()?).await,
        Command::Doctor(args) => commands::doctor::run(args, &ctx()?).await,
        Command::Users(cmd) => commands::users::run(cmd, &ctx()?).await,
        Command::Orgs(cmd) => commands::orgs::run(cmd, &ctx()?).await,
        Command::Upgrade(args) => commands::upgrade::run(args, &ctx()?).await,
        Command::Man => docs::man(ui).map(|_| Outcome::Success),
        Command::Completions(args) => docs::completions(args.shell, ui).map(|_| Outcome::Success),
    }
}

/// The context of a command that touches a database: the database is resolved once,
/// here, for the command and for the signal handler.
fn context(cli: &Cli, ui: &Output) -> Result<commands::Ctx> {
    let config = cli.global.database()?;
    if let Some(work) = signal_work(&cli.command) {
        signals::install(config.clone(), work, ui.clone());
    }
    Ok(commands::Ctx {
        ui: ui.clone(),
        config,
        connect_timeout: cli.global.connect_timeout,
    })
}

/// What a command does to the database, for the line a signal prints (None: it does
/// not touch one).
fn signal_work(command: &Command) -> Option<signals::Work> {
    use commands::migrate::MigrateCommand;
    use commands::users::UsersCommand;
    use signals::Work;
    Some(match command {
        Command::Migrate(MigrateCommand::Up(a)) if !a.dry_run => Work::Schema,
        Command::Migrate(MigrateCommand::Down(a)) if !a.dry_run => Work::Schema,
        Command::Baseline(a) if !a.dry_run => Work::Schema,
        Command::CreateOrg(_) | Command::CreateAdmin(_) => Work::Create,
        Command::Users(UsersCommand::SetRole(a)) if !a.dry_run => Work::Create,
        Command::Users(UsersCommand::ResetPassword(_)) => Work::Create,
        Command::Upgrade(_) => Work::Schema,
        Command::Man | Command::Completions(_) => return None,
        _ => Work::ReadOnly,
    })
}

/// `-v` logs SQL statements (sqlx's statement log), `-vv` the driver's debug logs; to
/// stderr, each record with the URL's secrets masked and through [`output::escape`].
fn init_logging(ui: &Output, global: &cli::GlobalArgs) {
    if ui.verbose == 0 {
        return;
    }
    // The URL the driver will see: the one given (even when it does not parse as a
    // configuration), else the one from .env or the default.
    let url = global
        .database_url
        .clone()
        .or_else(|| global.database().ok().map(|c| c.secret_url().to_owned()));
    let mut secrets = url.map(|u| config::secrets_in_url(&u)).unwrap_or_default();
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
