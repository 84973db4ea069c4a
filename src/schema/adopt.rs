//! Adopting a database whose schema already is a known version: record that version
//! (and the ones before it) without running them. Used by `baseline` and by `upgrade`
//! for a database that Alembic manages.

use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::check::api_tables;
use super::introspect::introspect;
use super::snapshots::expected;
use super::{Drift, Severity, diff};
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::migrations::{RunOptions, State, TRACKING_TABLE, bookkeeping, known, read_state};
use crate::progress::Progress;

/// The refusal when `seaql_migrations` records something already.
pub fn already_managed(state: &State) -> Option<Error> {
    if state.applied.is_empty() && state.unknown.is_empty() {
        return None;
    }
    let recorded = state
        .current()
        .map(|i| format!("{} ({})", known()[i].alembic_revision, known()[i].version))
        .unwrap_or_else(|| state.unknown.join(", "));
    Some(Error::refused(
        format!("the database is already managed: {TRACKING_TABLE} records {recorded}"),
        "nothing to adopt; `ecomind-admin baseline --undo` removes the baseline if it is wrong",
    ))
}

/// The errors among `f` (warnings do not stop an adoption).
pub fn errors_of(f: &[Drift]) -> usize {
    f.iter().filter(|f| f.severity == Severity::Error).count()
}

/// The INSERT that records migrations 0..=target (run live, printed by the dry run).
pub fn baseline_insert(backend: DbBackend, target: usize) -> Statement {
    let known = known();
    let versions: Vec<&str> = known[..=target]
        .iter()
        .map(|k| k.version.as_str())
        .collect();
    let now = chrono::Utc::now().timestamp();
    bookkeeping::record_applied(backend, &versions, now)
}

/// Record versions 0..=`target` in one transaction under the migration lock, after
/// re-checking, under the lock, that nothing recorded them and the schema still matches.
pub async fn record_baseline(
    db: &Db,
    target: usize,
    opts: RunOptions,
    ui: &dyn Progress,
) -> Result<Vec<String>> {
    let txn = db.begin_locked(opts.lock_wait, ui).await?;
    db::commit_if_ok(txn, "committing the baseline", async |txn| {
        db::set_lock_timeout(txn, opts.ddl_lock_timeout).await?;
        let state = read_state(txn).await?;
        if let Some(e) = already_managed(&state) {
            return Err(e);
        }
        let live = introspect(txn, &api_tables(db)).await?;
        let drift = diff(
            &expected(target, db.backend),
            &live.schema,
            db.is_postgres(),
        );
        if errors_of(&drift) > 0 {
            return Err(Error::refused(
                "the schema changed while baseline was running; nothing was written",
                "run baseline again",
            ));
        }
        migration::Migrator::install(txn)
            .await
            .map_err(|e| Error::from_db(e, &format!("creating {TRACKING_TABLE}")))?;
        txn.execute_raw(baseline_insert(db.backend, target))
            .await
            .map_err(|e| Error::from_db(e, &format!("recording versions in {TRACKING_TABLE}")))?;
        Ok(known()[..=target]
            .iter()
            .map(|k| k.version.clone())
            .collect())
    })
    .await
}
