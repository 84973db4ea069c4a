//! One module per subcommand, each owning its `Args`, its [`Info`] and its [`Spec`]
//! impl; the `commands!` list below declares them. No command imports another: what
//! two commands share lives here (flag groups, `Ctx`) or in the core.

use std::time::Duration;

use clap::Args;

use crate::config::DatabaseConfig;
use crate::db::{self, Db};
use crate::error::Outcome;
use crate::error::Result;
use crate::flags::parse_duration;
use crate::migrations::RunOptions;
use crate::output::Document;
use crate::output::Output;
use crate::spec::{Info, Work};

/// The commands: this list is the one place a new command is added (its module states
/// the rest, [`Spec`]). It declares the modules and makes the clap enum and the
/// dispatch over it.
macro_rules! commands {
    ($( $(#[$m:meta])* $variant:ident($module:ident::$ty:ident), )*) => {
        $( pub mod $module; )*

        #[derive(Debug, clap::Subcommand)]
        pub enum Command {
            $( $(#[$m])* $variant($module::$ty), )*
        }

        impl Command {
            /// What this command states about itself.
            pub fn info(&self) -> &'static Info {
                match self { $( Command::$variant(c) => c.info(), )* }
            }
            /// What this run does to the database.
            pub fn work(&self) -> Work {
                match self { $( Command::$variant(c) => c.work(), )* }
            }
            /// Its lock flags, if it has them.
            pub fn lock(&mut self) -> Option<&mut LockArgs> {
                match self { $( Command::$variant(c) => c.lock(), )* }
            }
            /// Run it.
            pub async fn run(&self, ctx: &Ctx) -> Result<Done> {
                match self { $( Command::$variant(c) => c.run(ctx).await, )* }
            }
            /// The command's name as typed (`migrate up`).
            pub fn name(&self) -> &'static str {
                self.info().name
            }
            /// Every command, in the order of `--help`.
            pub fn all() -> Vec<&'static Info> {
                let mut all = Vec::new();
                $( all.extend_from_slice(<$module::$ty as Spec>::INFOS); )*
                all
            }
        }
    };
}

commands! {
    /// Apply, revert and inspect the schema migrations.
    #[command(subcommand)]
    Migrate(migrate::MigrateCommand),

    /// Adopt an existing database (hand-made or Alembic-managed) after proving which
    /// version its schema is; --undo removes the baseline.
    Baseline(baseline::BaselineArgs),

    /// Create an organization (with an audit_logs row).
    CreateOrg(create_org::CreateOrgArgs),

    /// Create an owner or admin who can log in to the API (with an audit_logs row).
    CreateAdmin(create_admin::CreateAdminArgs),

    /// The API's users: list them, change a role, reset a password.
    #[command(subcommand)]
    Users(users::UsersCommand),

    /// The API's organizations: list them (read-only).
    #[command(subcommand)]
    Orgs(orgs::OrgsCommand),

    /// Security audits (read-only).
    #[command(subcommand)]
    Audit(audit::AuditCommand),

    /// Compare the live schema with the expected schema of its version (exit 1 on drift).
    VerifySchema(verify_schema::VerifySchemaArgs),

    /// Check everything a deploy needs (exit 1 when something blocks it). Read-only.
    Doctor(doctor::DoctorArgs),

    /// Check the deployment at the running API, with the database beside it: the API
    /// answers, routes refuse requests without a token, the default JWT secret and
    /// expired tokens are refused, no owner or admin uses a published password.
    VerifyDeployment(verify_deployment::VerifyDeploymentArgs),

    /// The deployment plan's database steps in one: pre-flight, plan, backup, migrate,
    /// verify-schema, post-deploy audit, report (stops at a failing step, with the
    /// command that restores the backup; a rerun continues).
    Upgrade(upgrade::UpgradeArgs),

    /// Back up the database (pg_dump / a SQLite copy) with a manifest of its row counts;
    /// `backup verify FILE` proves a backup by a restore into a scratch copy.
    Backup(backup::BackupArgs),

    /// Put a backup back: the database's content replaced by the backup's in one
    /// transaction (no `migrate down` first), after showing who is connected and what
    /// it throws away; then checked (destructive: asks, or needs --yes).
    Restore(restore::RestoreArgs),

    /// The deployment plan's monitoring metrics from the database, in the Prometheus
    /// text exposition format (read-only).
    Metrics(metrics::MetricsArgs),

    /// Print the man page (roff) to stdout.
    Man(man::ManArgs),

    /// Print shell completions to stdout.
    Completions(completions::CompletionsArgs),
}

/// What a run hands back: pass or fail, its report (rendered at the top, or taken by a
/// fleet), and the versions a fleet shows and gates on.
pub struct Done {
    pub outcome: Outcome,
    /// The result document (None: the command wrote its result itself, as a stream of
    /// lines, or has none).
    pub report: Option<Box<dyn Document>>,
    /// The version before the run (`none`: nothing applied), when the command moves it.
    pub from: Option<String>,
    /// The version after the run, or the one it found.
    pub to: Option<String>,
    /// The database records versions this build does not know.
    pub ahead: bool,
    /// Why a check failed, printed on stderr after the report (`baseline` refused).
    pub notice: Option<crate::error::Error>,
    /// What to do next, printed on stderr after the report (a failed `upgrade` step).
    pub advice: Option<String>,
    /// The run failed after its report was made: its error (and exit code), returned
    /// once the report and the advice are printed.
    pub failure: Option<crate::error::Error>,
}

impl Done {
    /// A result document and how the run ended.
    pub fn report(report: impl Document + 'static, outcome: Outcome) -> Self {
        Done {
            report: Some(Box::new(report)),
            ..Done::from(outcome)
        }
    }
}

impl From<Outcome> for Done {
    fn from(outcome: Outcome) -> Self {
        Done {
            outcome,
            report: None,
            from: None,
            to: None,
            ahead: false,
            notice: None,
            advice: None,
            failure: None,
        }
    }
}

/// A command: its arguments (clap), what it states about itself ([`Info`]), and how it
/// runs. Implemented once per command module; [`Command`] dispatches to it, and
/// every method must be written (none has a default).
#[allow(async_fn_in_trait)]
pub trait Spec {
    /// Every command this type can be (`migrate`: up, down, current, status).
    const INFOS: &'static [&'static Info];
    /// The one this value is.
    fn info(&self) -> &'static Info;
    /// What this run does to the database (a `--dry-run` reads only).
    fn work(&self) -> Work;
    /// Its lock flags, which the environment's settings fill (None: it takes no lock
    /// that waits).
    fn lock(&mut self) -> Option<&mut LockArgs>;
    /// Run it: arguments in, its report printed, what the caller needs back.
    async fn run(&self, ctx: &Ctx) -> Result<Done>;
}

/// What every command gets, built once in `lib::run`: the output, the resolved
/// database (flag > env > .env > default, `--schema`; None for a command that touches
/// none) and the connect timeout. Each command opens the database the way it needs
/// ([`db::Open`]).
pub struct Ctx {
    pub ui: Output,
    pub database: Option<DatabaseConfig>,
    pub connect_timeout: Duration,
    /// `--allow-newer-schema`: write rows into a database a newer build migrated.
    pub allow_newer_schema: bool,
    /// `--lock-wait`: the longest any statement waits for a lock (PostgreSQL
    /// `lock_timeout` in every transaction; the migration lock's wait).
    pub lock_wait: Duration,
    /// Every command's [`Info`] (for `doctor`'s and `upgrade`'s privilege checks).
    pub catalog: fn() -> Vec<&'static Info>,
    /// The whole command line as clap describes it (for `man` and `completions`).
    pub program: fn() -> clap::Command,
}

impl Ctx {
    /// The database the command works on.
    pub fn config(&self) -> Result<&DatabaseConfig> {
        self.database
            .as_ref()
            .ok_or_else(|| crate::error::Error::internal("this command has no database"))
    }

    /// Connect, and refuse a database that is another application's (tables named like
    /// the API's that are not: [`crate::schema::foreign`]) before the command reads it.
    pub async fn connect(&self, open: db::Open) -> Result<Db> {
        let config = self.config()?;
        let mut db = db::connect(config, self.connect_timeout, &self.ui, open).await?;
        db.lock_wait = self.lock_wait;
        db.watch_lock_waits(config, Box::new(self.ui.clone()));
        if let Err(e) = crate::schema::foreign::refuse_foreign(&db).await {
            db.conn.close().await.ok();
            return Err(e);
        }
        Ok(db)
    }

    /// Open the database the way the command needs, run `work` on it, and close it,
    /// whatever `work` returned: the one place a command's connection ends.
    pub async fn with_db<T>(
        &self,
        open: db::Open,
        work: impl AsyncFnOnce(&Db) -> Result<T>,
    ) -> Result<T> {
        let db = self.connect(open).await?;
        let result = work(&db).await;
        db.conn.close().await.ok();
        result
    }

    /// Before a command writes rows (orgs, users, audit rows): the session may write, and
    /// the database is not ahead of this build (its tables may have changed in ways
    /// this build does not know): refused (exit 4) unless `--allow-newer-schema`.
    pub async fn ensure_writable(&self, db: &Db) -> Result<()> {
        db.ensure_writable().await?;
        let newer = crate::migrations::snapshot_state(db)
            .await?
            .newer_than_build();
        if newer.is_empty() {
            return Ok(());
        }
        let what = format!(
            "the database records migrations this build of ecomind-admin does not know ({})",
            newer.join(", ")
        );
        if self.allow_newer_schema {
            self.ui
                .warn(format!("{what}: writing anyway (--allow-newer-schema)"));
            return Ok(());
        }
        Err(crate::error::Error::refused(
            format!("{what}; nothing was written"),
            "upgrade ecomind-admin, or pass --allow-newer-schema if you know the newer schema accepts these rows",
        ))
    }
}

pub use crate::spec::MIGRATE_GRANTS;

/// How long to wait for locks.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// The global `--lock-wait` (filled in by `lib::run`: flag, else the environment's).
    #[arg(skip)]
    pub lock_wait: Option<Duration>,

    /// lock_timeout for the migration's statements: a migration queued behind a long
    /// transaction fails cleanly (exit 4, nothing changed) instead of blocking the table.
    /// Default: the environment's ddl_lock_timeout, else 10s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub ddl_lock_timeout: Option<Duration>,
}

/// The lock waits when neither a flag nor the environment sets them.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);
pub const DEFAULT_DDL_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

impl LockArgs {
    pub fn options(&self) -> RunOptions {
        RunOptions {
            lock_wait: self.lock_wait.unwrap_or(DEFAULT_LOCK_WAIT),
            ddl_lock_timeout: self.ddl_lock_timeout.unwrap_or(DEFAULT_DDL_LOCK_TIMEOUT),
        }
    }

    /// Fill what no flag set from the environment's settings (flags come first).
    pub fn or_environment(&mut self, env: &crate::environments::Environment) {
        self.lock_wait = self.lock_wait.or(env.lock_wait);
        self.ddl_lock_timeout = self.ddl_lock_timeout.or(env.ddl_lock_timeout);
    }
}

/// The environment variable a CI job can put the password in.
pub const PASSWORD_ENV: &str = "ECOMIND_ADMIN_PASSWORD";

/// Where a new password comes from and how it is hashed (create-admin, users
/// reset-password). There is no password flag: argv is visible to every user of the
/// machine.
#[derive(Debug, Clone, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of stdin (trailing CR/LF stripped).
    /// Otherwise ECOMIND_ADMIN_PASSWORD, otherwise a hidden prompt (asked twice). There
    /// is no password flag: argv is visible to every user of the machine.
    #[arg(long)]
    pub password_stdin: bool,

    /// bcrypt cost factor, 4 to 31 (below 10 only for tests).
    #[arg(long, value_name = "N", default_value_t = 12, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,
}

fn policy_error(msg: String) -> crate::error::Error {
    crate::error::Error::refused(
        msg,
        "choose a password of 12 or more characters and at most 72 bytes",
    )
}

impl PasswordArgs {
    pub fn warn_if_weak(&self, ui: &Output) {
        if self.bcrypt_cost < 10 {
            ui.warn(format!(
                "bcrypt cost {} is weak; use it for tests only (default 12)",
                self.bcrypt_cost
            ));
        }
    }

    /// The password for `email` (stdin, the environment, or a prompt, in that order),
    /// checked against the policy and hashed the way passlib verifies; the password
    /// itself is dropped before this returns.
    pub fn read_and_hash(&self, email: &str, ui: &Output) -> Result<String> {
        let password = self.read(email, ui)?;
        let pb = ui.spinner(format!(
            "hashing the password (bcrypt cost {})",
            self.bcrypt_cost
        ));
        let hash = crate::accounts::hash_password(&password, self.bcrypt_cost);
        drop(password);
        pb.finish_and_clear();
        hash
    }

    fn read(&self, email: &str, ui: &Output) -> Result<String> {
        use crate::accounts::check_password;
        use crate::error::Error;
        if self.password_stdin {
            let pw = password_from_stdin()?;
            check_password(&pw, email).map_err(policy_error)?;
            return Ok(pw);
        }
        if let Ok(pw) = std::env::var(PASSWORD_ENV) {
            ui.note(format!(
                "using the password from the {PASSWORD_ENV} environment variable"
            ));
            check_password(&pw, email).map_err(policy_error)?;
            return Ok(pw);
        }
        if !ui.interactive() {
            return Err(Error::refused(
                "no password: stdin is not a terminal and no password source was given",
                format!("pipe it with --password-stdin, or set {PASSWORD_ENV}"),
            ));
        }
        crate::output::ask(|| {
            let owned = email.to_owned();
            dialoguer::Password::with_theme(&AskAgain)
                .with_prompt(format!("Password for {}", crate::output::shown(email)))
                .with_confirmation("Repeat the password", "the passwords do not match")
                .validate_with(move |pw: &String| check_password(pw, &owned))
                .interact()
        })
        .map_err(|e| {
            Error::refused(
                format!("cannot read the password: {e}"),
                "use --password-stdin",
            )
        })
    }
}

/// The password prompt's theme: a refused entry is not an error of the run (it asks
/// again), so it does not say "error:".
struct AskAgain;

impl dialoguer::theme::Theme for AskAgain {
    fn format_error(&self, f: &mut dyn std::fmt::Write, err: &str) -> std::fmt::Result {
        write!(f, "not accepted: {err}; try again")
    }
}

/// The first line of stdin (at most 64 KiB read), without its CR/LF.
fn password_from_stdin() -> Result<String> {
    use crate::error::Error;
    use std::io::{BufRead, Read};
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .take(64 * 1024)
        .read_until(b'\n', &mut buf)
        .map_err(|e| {
            Error::refused(
                format!("cannot read the password from stdin: {e}"),
                "pipe the password into --password-stdin",
            )
        })?;
    if buf.is_empty() {
        return Err(Error::refused(
            "--password-stdin: stdin is empty",
            "pipe the password into it, e.g. `printf '%s\\n' \"$PW\" | ecomind-admin ... --password-stdin`",
        ));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| {
        Error::refused(
            "--password-stdin: the password is not valid UTF-8",
            "pass the password as UTF-8 text",
        )
    })
}

/// `--fail-on`: the severity of an audit finding that makes the exit code 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Critical,
    Warning,
    Info,
    Never,
}

impl FailOn {
    pub fn threshold(self) -> Option<crate::audit::Risk> {
        use crate::audit::Risk;
        match self {
            FailOn::Critical => Some(Risk::Critical),
            FailOn::Warning => Some(Risk::Warning),
            FailOn::Info => Some(Risk::Info),
            FailOn::Never => None,
        }
    }
}
