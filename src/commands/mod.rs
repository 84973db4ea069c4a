//! One module per subcommand, each owning its `Args` and `run`. No command imports
//! another: what two commands share lives here (flag groups) or in the core.

use std::time::Duration;

use clap::Args;

use crate::config::DatabaseConfig;
use crate::db::{self, Db};
use crate::error::Result;
use crate::flags::parse_duration;
use crate::migrations::RunOptions;
use crate::output::Output;

pub mod audit;
pub mod baseline;
pub mod create_admin;
pub mod create_org;
pub mod doctor;
pub mod migrate;
pub mod orgs;
pub mod users;
pub mod verify_schema;

/// What every command that touches a database gets, built once in `lib::run`: the
/// output, the resolved database (flag > env > .env > default, `--schema`) and the
/// connect timeout. Each command opens the database the way it needs ([`db::Open`]).
pub struct Ctx {
    pub ui: Output,
    pub config: DatabaseConfig,
    pub connect_timeout: Duration,
}

impl Ctx {
    pub async fn connect(&self, open: db::Open) -> Result<Db> {
        db::connect(&self.config, self.connect_timeout, &self.ui, open).await
    }
}

/// How long to wait for locks.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// How long to wait for another ecomind-admin's migration lock before giving up (exit 4).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_wait: Duration,

    /// lock_timeout for the migration's statements: a migration queued behind a long
    /// transaction fails cleanly (exit 4, nothing changed) instead of blocking the table.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub ddl_lock_timeout: Duration,
}

impl LockArgs {
    pub fn options(&self) -> RunOptions {
        RunOptions {
            lock_wait: self.lock_wait,
            ddl_lock_timeout: self.ddl_lock_timeout,
        }
    }
}
