//! The command line: clap derive types only, no database work.

use clap::{Args, Parser, Subcommand};

pub use crate::flags::{ColorChoice, Format, GlobalArgs, parse_duration};

use crate::commands;

/// The exit codes and their reasons, for `--help` and the man page (the README's table
/// says the same, word for word; a test keeps them equal).
pub fn exit_codes_help() -> String {
    let mut s = String::from("Exit codes:\n");
    for (code, reason) in crate::error::exit::REASONS {
        s.push_str(&format!("  {code:>3}  {reason}\n"));
    }
    s
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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

#[derive(Debug, Subcommand)]
pub enum Command {
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
    Man,

    /// Print shell completions to stdout.
    Completions(CompletionsArgs),
}

impl Command {
    /// The command's name as JSON documents carry it (`"command": "migrate up"`).
    pub fn name(&self) -> &'static str {
        use commands::migrate::MigrateCommand;
        use commands::users::UsersCommand;
        match self {
            Command::Migrate(MigrateCommand::Up(_)) => "migrate up",
            Command::Migrate(MigrateCommand::Down(_)) => "migrate down",
            Command::Migrate(MigrateCommand::Current(_)) => "migrate current",
            Command::Migrate(MigrateCommand::Status) => "migrate status",
            Command::Baseline(_) => "baseline",
            Command::CreateOrg(_) => "create-org",
            Command::CreateAdmin(_) => "create-admin",
            Command::Users(UsersCommand::List(_)) => "users list",
            Command::Users(UsersCommand::SetRole(_)) => "users set-role",
            Command::Users(UsersCommand::ResetPassword(_)) => "users reset-password",
            Command::Users(UsersCommand::Lock(_)) => "users lock",
            Command::Users(UsersCommand::Unlock(_)) => "users unlock",
            Command::Orgs(_) => "orgs list",
            Command::Audit(_) => "audit suspicious-accounts",
            Command::VerifySchema(_) => "verify-schema",
            Command::Doctor(_) => "doctor",
            Command::VerifyDeployment(_) => "verify-deployment",
            Command::Upgrade(_) => "upgrade",
            Command::Man => "man",
            Command::Completions(_) => "completions",
        }
    }
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
