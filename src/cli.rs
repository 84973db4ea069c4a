//! The command line: clap derive types only, no database work.

use clap::Parser;

pub use crate::flags::{ColorChoice, Format, GlobalArgs, parse_duration};

pub use crate::commands::Command;
use crate::commands::{self};
use crate::contracts::Contract;

/// The exit codes and their reasons: code 1 says when each command exits 1 (its
/// `Info::fails_when`), in the order of `--help`.
pub fn exit_reasons() -> Vec<(u8, String)> {
    let checks: Vec<&str> = Command::all()
        .into_iter()
        .filter_map(|i| i.fails_when)
        .collect();
    crate::error::exit::REASONS
        .iter()
        .map(|(code, reason)| match code {
            1 => (*code, format!("{reason}: {}", checks.join("; "))),
            _ => (*code, (*reason).to_owned()),
        })
        .collect()
}

/// The exit codes and their reasons, for `--help` and the man page (docs/machine-interface.md's table
/// says the same, word for word; a test keeps them equal).
pub fn exit_codes_help() -> String {
    let mut s = String::from("Exit codes:\n");
    for (code, reason) in exit_reasons() {
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

/// Every command's contract (`man` and `completions` print no JSON), and the tool's
/// own for a command line that names none (only its error forms).
pub fn contracts() -> Vec<Contract> {
    let mut all: Vec<Contract> = Command::all()
        .into_iter()
        .filter_map(|info| Some(Contract::new(info.name, (info.schema?)(info))))
        .collect();
    all.push(Contract::new(
        crate::contracts::TOOL,
        crate::contracts::tool(),
    ));
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
