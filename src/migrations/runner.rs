//! Running migrations: one per transaction under the migration lock, the bookkeeping
//! row and `alembic_version` in the same transaction.

use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde::Serialize;

use super::state::{Alembic, read_state};
use super::{ALEMBIC_TABLE, bookkeeping, known};
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// Set `alembic_version` to `revision`, or remove its row when `None` (everything reverted).
async fn set_alembic(txn: &DatabaseTransaction, revision: Option<&str>) -> Result<()> {
    for stmt in bookkeeping::set_alembic(txn.get_database_backend(), revision) {
        txn.execute_raw(stmt)
            .await
            .map_err(|e| Error::from_db(e, &format!("updating {ALEMBIC_TABLE}")))?;
    }
    Ok(())
}

/// Which way a run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

/// One migration applied or reverted.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Step {
    pub version: String,
    pub alembic_revision: &'static str,
    pub direction: Direction,
    pub duration_ms: u64,
}

/// Tuning of a run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub lock_wait: Duration,
    pub ddl_lock_timeout: Duration,
}

/// Apply pending migrations up to and including `target`, one transaction each.
/// Safe to run concurrently: each step re-reads the state under the lock.
pub async fn run_up(
    db: &Db,
    target: usize,
    opts: RunOptions,
    ui: &dyn Progress,
) -> Result<Vec<Step>> {
    run_steps(db, opts, ui, "committing the migration", async |txn| {
        up_one(txn, target, opts, ui).await
    })
    .await
}

/// Run `one` in its own locked transaction until it has nothing left to do (None):
/// the steps taken, oldest first.
async fn run_steps(
    db: &Db,
    opts: RunOptions,
    ui: &dyn Progress,
    committing: &str,
    one: impl AsyncFn(&DatabaseTransaction) -> Result<Option<Step>>,
) -> Result<Vec<Step>> {
    let mut done = Vec::new();
    loop {
        let txn = db.begin_locked(opts.lock_wait, ui).await?;
        match db::commit_if_ok(txn, committing, async |txn| one(txn).await).await? {
            Some(step) => done.push(step),
            None => return Ok(done),
        }
    }
}

async fn up_one(
    txn: &DatabaseTransaction,
    target: usize,
    opts: RunOptions,
    ui: &dyn Progress,
) -> Result<Option<Step>> {
    db::set_lock_timeout(txn, opts.ddl_lock_timeout).await?;
    let state = read_state(txn).await?;
    state.check_writable()?;
    let Some(next) = state.pending().into_iter().find(|i| *i <= target) else {
        return Ok(None);
    };
    let k = &known()[next];
    let step = ui.step(&format!(
        "applying {} (alembic {})",
        k.version, k.alembic_revision
    ));
    let started = Instant::now();
    let doing = format!("applying {}", k.version);
    Migrator::up(txn, Some(1))
        .await
        .map_err(|e| Error::from_db(e, &doing))?;
    let after = read_state(txn).await?;
    if !after.is_applied(next) {
        return Err(Error::internal(format!(
            "{} was not recorded as applied",
            k.version
        )));
    }
    if state.alembic != Alembic::Absent {
        set_alembic(txn, Some(k.alembic_revision)).await?;
    }
    drop(step);
    Ok(Some(Step {
        version: k.version.clone(),
        alembic_revision: k.alembic_revision,
        direction: Direction::Up,
        duration_ms: started.elapsed().as_millis() as u64,
    }))
}

/// Revert applied migrations newer than `keep` (`None`: revert everything), newest first,
/// one transaction each.
pub async fn run_down(
    db: &Db,
    keep: Option<usize>,
    opts: RunOptions,
    ui: &dyn Progress,
) -> Result<Vec<Step>> {
    run_steps(db, opts, ui, "committing the revert", async |txn| {
        down_one(txn, keep, opts, ui).await
    })
    .await
}

async fn down_one(
    txn: &DatabaseTransaction,
    keep: Option<usize>,
    opts: RunOptions,
    ui: &dyn Progress,
) -> Result<Option<Step>> {
    db::set_lock_timeout(txn, opts.ddl_lock_timeout).await?;
    let state = read_state(txn).await?;
    state.check_writable()?;
    let Some(current) = state.current() else {
        return Ok(None);
    };
    if keep.is_some_and(|k| current <= k) {
        return Ok(None);
    }
    let k = &known()[current];
    let step = ui.step(&format!(
        "reverting {} (alembic {})",
        k.version, k.alembic_revision
    ));
    let started = Instant::now();
    let doing = format!("reverting {}", k.version);
    Migrator::down(txn, Some(1))
        .await
        .map_err(|e| Error::from_db(e, &doing))?;
    let after = read_state(txn).await?;
    if after.is_applied(current) {
        return Err(Error::internal(format!(
            "{} is still recorded as applied",
            k.version
        )));
    }
    if state.alembic != Alembic::Absent {
        set_alembic(txn, after.expected_alembic()).await?;
    }
    drop(step);
    Ok(Some(Step {
        version: k.version.clone(),
        alembic_revision: k.alembic_revision,
        direction: Direction::Down,
        duration_ms: started.elapsed().as_millis() as u64,
    }))
}
