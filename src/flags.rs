//! The flags every subcommand accepts, and their value types: clap types only. Shared
//! by the command line (`cli`), the commands and the output, so that none of them
//! imports another for them.

use std::time::Duration;

use clap::{Args, ValueEnum};

/// Flags every subcommand accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full],
    /// or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then
    /// sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL.
    /// Given more than once: a fleet run over those databases.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        value_name = "URL",
        action = clap::ArgAction::Append
    )]
    pub database_url: Vec<String>,

    /// PostgreSQL schema that holds the API's tables, when it is not the first of the
    /// role's search_path (default: the URL's options, else the search_path, normally
    /// public). Every transaction runs with this search_path.
    #[arg(long, global = true, value_name = "NAME", env = "ECOMIND_SCHEMA")]
    pub schema: Option<String>,

    /// How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the
    /// environment's connect_timeout, else 10s.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,

    /// The config file with the named environments. Default: ./ecomind-admin.toml when
    /// there is one.
    #[arg(long, global = true, value_name = "PATH", env = "ECOMIND_ADMIN_CONFIG")]
    pub config: Option<std::path::PathBuf>,

    /// The environment of the config file to use (its database and settings).
    #[arg(long = "env", global = true, value_name = "NAME", env = "ECOMIND_ENV")]
    pub environment: Option<String>,

    /// Fleet runs: how many databases at once. Default: the environment's parallel,
    /// else 4.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub parallel: Option<u32>,

    /// Fleet runs: run the first K databases alone, and the rest only if all K succeed.
    #[arg(long, global = true, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub canary: Option<u32>,

    /// Fleet runs: start no new database after the first failure.
    #[arg(long, global = true)]
    pub fail_fast: bool,

    /// The longest any statement waits for a lock another session holds (PostgreSQL:
    /// lock_timeout in every transaction; a note after 1 s names the holder), and for
    /// another ecomind-admin's migration lock; then exit 4. Default: the environment's
    /// lock_wait, else 60s.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_wait: Option<Duration>,

    /// Write rows (create-org, create-admin, users ...) into a database that records
    /// migrations this build does not know (a newer ecomind-admin migrated it). Without
    /// it, such a write is refused (exit 4). Schema changes are always refused.
    #[arg(long, global = true)]
    pub allow_newer_schema: bool,

    /// Output format of the result on stdout.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// When to use colors on stderr and in tables (NO_COLOR is honoured).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Also write the result to FILE, atomically (a temporary file beside it, mode
    /// 0600, renamed when the command ends): in --format json, jsonl or csv as on
    /// stdout; with --format table, JSON in the file and the table on stdout.
    #[arg(short = 'o', long, global = true, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,

    /// Print only the result and errors: no notes or progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Log every SQL statement to stderr (-vv: also the driver's debug logs).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// How long to retry a refused connection when neither a flag nor the environment says.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl GlobalArgs {
    /// `--connect-timeout`, else the environment's (filled in by `lib`), else 10 s.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }

    /// The database these flags name.
    pub fn database(&self) -> Result<crate::config::DatabaseConfig, crate::error::Error> {
        crate::config::DatabaseConfig::from_flags(
            self.database_url.first().map(String::as_str),
            self.schema.as_deref(),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// One JSON document (stable, documented in docs/machine-interface.md).
    Json,
    /// CSV with a header row (audit suspicious-accounts, users list, orgs list).
    Csv,
    /// JSON Lines: the document on one line; a fleet run writes one line per database
    /// as it finishes, then a summary line; users / orgs list one line per row.
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Parse a duration: `10s`, `500ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (expected e.g. 10s, 500ms, 2m)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
    }
}
