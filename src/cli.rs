//! The command line: clap derive types only, no database work.

use clap::{Parser, Subcommand};

pub use crate::flags::{ColorChoice, Format, GlobalArgs, parse_duration};

use crate::commands::{self, Spec};
use crate::contracts::Contract;
use crate::spec::{Done, Info, Work};

/// The exit codes and their reasons, for `--help` and the man page (the README's table
/// says the same, word for word; a test keeps them equal).
pub fn exit_codes_help() -> String {
    let mut s = String::from("Exit codes:\n");
    for (code, reason) in crate::error::exit::REASONS {
        s.push_str(&format!("  {code:>3}  {reason}\n"));
    }
    s
}

/// Operator CLI for the EcoMind API database.
///
/// Runs the API's schema migrations (mirroring its Alembic revisions) on PostgreSQL or
/// SQLite, safely under concurrent pipelines and crashes.
#[derive(Debug, Parser)]
#[command(name = "ecomind-admin", version, about, long_about, after_long_help = exit_codes_help())]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The context a command runs in: `ui`, the database (None: it touches none), and
    /// the global flags that shape every connection.
    pub fn context(
        &self,
        ui: crate::output::Output,
        database: Option<crate::config::DatabaseConfig>,
    ) -> commands::Ctx {
        commands::Ctx {
            ui,
            database,
            connect_timeout: self.global.connect_timeout(),
            allow_newer_schema: self.global.allow_newer_schema,
            lock_wait: self.global.lock_wait.unwrap_or(commands::DEFAULT_LOCK_WAIT),
            catalog: Command::all,
            program: <Cli as clap::CommandFactory>::command,
        }
    }
}

/// The commands: this list is the one place a new command is added (its module states
/// the rest, [`commands::Spec`]). It makes the clap enum and the dispatch over it.
macro_rules! commands {
    ($( $(#[$m:meta])* $variant:ident($ty:ty), )*) => {
        #[derive(Debug, Subcommand)]
        pub enum Command {
            $( $(#[$m])* $variant($ty), )*
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
            pub fn lock(&mut self) -> Option<&mut commands::LockArgs> {
                match self { $( Command::$variant(c) => c.lock(), )* }
            }
            /// Run it.
            pub async fn run(&self, ctx: &commands::Ctx) -> crate::error::Result<Done> {
                match self { $( Command::$variant(c) => c.run(ctx).await, )* }
            }
            /// Every command, in the order of `--help`.
            pub fn all() -> Vec<&'static Info> {
                let mut all = Vec::new();
                $( all.extend_from_slice(<$ty as Spec>::INFOS); )*
                all
            }
        }
    };
}

commands! {
    /// Apply, revert and inspect the schema migrations.
    #[command(subcommand)]
    Migrate(commands::migrate::MigrateCommand),

    /// Adopt an existing database (hand-made or Alembic-managed) after proving which
    /// version its schema is; --undo removes the baseline.
    Baseline(commands::baseline::BaselineArgs),

    /// Create an organization (with an audit_logs row).
    CreateOrg(commands::create_org::CreateOrgArgs),

    /// Create an owner or admin who can log in to the API (with an audit_logs row).
    CreateAdmin(commands::create_admin::CreateAdminArgs),

    /// The API's users: list them, change a role, reset a password.
    #[command(subcommand)]
    Users(commands::users::UsersCommand),

    /// The API's organizations: list them (read-only).
    #[command(subcommand)]
    Orgs(commands::orgs::OrgsCommand),

    /// Security audits (read-only).
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),

    /// Compare the live schema with the expected schema of its version (exit 1 on drift).
    VerifySchema(commands::verify_schema::VerifySchemaArgs),

    /// Check everything a deploy needs (exit 1 when something blocks it). Read-only.
    Doctor(commands::doctor::DoctorArgs),

    /// Check the deployment at the running API, with the database beside it: the API
    /// answers, routes refuse requests without a token, the default JWT secret and
    /// expired tokens are refused, no owner or admin uses a published password.
    VerifyDeployment(commands::verify_deployment::VerifyDeploymentArgs),

    /// The deployment plan's database steps in one: pre-flight, plan, backup, migrate,
    /// verify-schema, post-deploy audit, report (stops at a failing step, with the
    /// command that restores the backup; a rerun continues).
    Upgrade(commands::upgrade::UpgradeArgs),

    /// Print the man page (roff) to stdout.
    Man(crate::docs::ManArgs),

    /// Print shell completions to stdout.
    Completions(crate::docs::CompletionsArgs),
}

impl Command {
    /// The command's name as typed (`migrate up`).
    pub fn name(&self) -> &'static str {
        self.info().name
    }
}

/// Every command's contract (`man` and `completions` print no JSON), and the tool's
/// own for a command line that names none (only its error forms).
pub fn contracts() -> Vec<Contract> {
    let mut all: Vec<Contract> = Command::all()
        .into_iter()
        .filter_map(|info| Some(Contract::new(info.name, (info.schema?)(info))))
        .collect();
    all.push(Contract::new(crate::contracts::TOOL, crate::contracts::tool()));
    all
}

/// Every file of `schemas/`, as committed: name and text (pretty JSON, one newline).
pub fn schema_files() -> Vec<(String, String)> {
    contracts()
        .into_iter()
        .map(|c| {
            let text = serde_json::to_string_pretty(&c.schema).unwrap_or_default() + "\n";
            (c.file, text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_debug_assert() {
        Cli::command().debug_assert();
    }
}
