//! What a run would execute, for `--dry-run` and `--show-sql`: the migrations' DDL
//! captured from SeaORM on a recording connection, and the bookkeeping statements.

use migration::{Migrator, MigratorTrait};
use sea_orm::{DbBackend, MockDatabase, MockExecResult};
use sea_orm_migration::{MigrationTrait, SchemaManager};
use serde::Serialize;

use super::runner::{Direction, RunOptions};
use super::state::{Alembic, State};
use super::{bookkeeping, known};
use crate::db::MIGRATION_LOCK_KEY;
use crate::error::{Error, Result};

/// The SQL one step would run, for `--dry-run`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlannedStep {
    pub version: String,
    pub alembic_revision: &'static str,
    pub direction: Direction,
    /// Every statement, in order, including the transaction, the lock and the bookkeeping.
    pub sql: Vec<String>,
}

/// Render the statements of `indexes` (in run order) without touching the database:
/// the migrations' own DDL is captured from SeaORM's schema manager on a recording
/// (mock) connection; the bookkeeping is built the same way the live run builds it.
pub async fn plan_sql(
    backend: DbBackend,
    state: &State,
    direction: Direction,
    indexes: &[usize],
    opts: RunOptions,
) -> Result<Vec<PlannedStep>> {
    let migrations = Migrator::migrations();
    let all = known();
    let mut out = Vec::new();
    let mut tracking_table = state.tracking_table;
    for &i in indexes {
        let k = &all[i];
        let m = &migrations[i];
        let mut sql = Vec::new();
        if backend == DbBackend::Postgres {
            sql.push("BEGIN".to_owned());
            sql.push(format!(
                "SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK_KEY})"
            ));
            sql.push(format!(
                "SET LOCAL lock_timeout = '{}ms'",
                opts.ddl_lock_timeout.as_millis().max(1)
            ));
        } else {
            sql.push("BEGIN IMMEDIATE".to_owned());
        }
        if !tracking_table {
            sql.extend(capture_install(backend).await?);
            tracking_table = true;
        }
        match direction {
            Direction::Up => {
                sql.extend(capture_migration(backend, m.as_ref(), Direction::Up).await?);
                let now = chrono::Utc::now().timestamp();
                let stmt = bookkeeping::record_applied(backend, &[&k.version], now);
                sql.push(bookkeeping::shown(&stmt));
            }
            Direction::Down => {
                sql.extend(capture_migration(backend, m.as_ref(), Direction::Down).await?);
                let stmt = bookkeeping::record_reverted(backend, &k.version);
                sql.push(bookkeeping::shown(&stmt));
            }
        }
        if state.alembic != Alembic::Absent {
            let rev = match direction {
                Direction::Up => Some(k.alembic_revision),
                // After reverting `i`, the newest remaining migration is the one before it.
                Direction::Down => i.checked_sub(1).map(|prev| all[prev].alembic_revision),
            };
            sql.extend(
                bookkeeping::set_alembic(backend, rev)
                    .iter()
                    .map(bookkeeping::shown),
            );
        }
        sql.push("COMMIT".to_owned());
        out.push(PlannedStep {
            version: k.version.clone(),
            alembic_revision: k.alembic_revision,
            direction,
            sql,
        });
    }
    Ok(out)
}

/// A connection that records statements instead of running them.
fn recorder(backend: DbBackend) -> sea_orm::DatabaseConnection {
    MockDatabase::new(backend)
        .append_exec_results((0..256).map(|_| MockExecResult {
            last_insert_id: 0,
            rows_affected: 0,
        }))
        .into_connection()
}

fn recorded(conn: sea_orm::DatabaseConnection) -> Vec<String> {
    conn.into_transaction_log()
        .iter()
        .flat_map(|t| {
            t.statements()
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn render_err(e: sea_orm::DbErr) -> Error {
    Error::internal(format!("rendering the migration SQL: {e}"))
}

/// The statement that creates `seaql_migrations` (IF NOT EXISTS), as SeaORM builds it.
pub async fn capture_install(backend: DbBackend) -> Result<Vec<String>> {
    let conn = recorder(backend);
    Migrator::install(&conn).await.map_err(render_err)?;
    Ok(recorded(conn))
}

async fn capture_migration(
    backend: DbBackend,
    m: &dyn MigrationTrait,
    direction: Direction,
) -> Result<Vec<String>> {
    let conn = recorder(backend);
    {
        let manager = SchemaManager::new(&conn);
        match direction {
            Direction::Up => m.up(&manager).await,
            Direction::Down => m.down(&manager).await,
        }
        .map_err(render_err)?;
    }
    Ok(recorded(conn))
}

/// The table a statement of our migrations touches and the lock it takes on it
/// (PostgreSQL's lock modes; `new table` for a table it creates); None for a statement
/// that takes no table lock (a type, a setting, the migration lock).
pub fn statement_lock(sql: &str) -> Option<(String, &'static str)> {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let at = |i: usize| upper.get(i).map(String::as_str).unwrap_or("");
    // The identifier after position `i`, past IF [NOT] EXISTS / ONLY / CONCURRENTLY.
    let name_after = |mut i: usize| -> Option<String> {
        while matches!(at(i), "IF" | "NOT" | "EXISTS" | "ONLY" | "CONCURRENTLY") {
            i += 1;
        }
        let raw = words.get(i)?;
        let raw = raw.split('(').next().unwrap_or(raw);
        let last = raw.rsplit('.').next().unwrap_or(raw);
        Some(last.trim_matches('"').to_owned())
    };
    let (table, lock) = match (at(0), at(1)) {
        ("ALTER", "TABLE") => (name_after(2)?, "ACCESS EXCLUSIVE"),
        ("DROP", "TABLE") => (name_after(2)?, "ACCESS EXCLUSIVE"),
        ("CREATE", "TABLE") => (name_after(2)?, "new table"),
        ("CREATE", "INDEX" | "UNIQUE") => {
            let on = upper.iter().position(|w| w == "ON")?;
            (name_after(on + 1)?, "SHARE (blocks writes)")
        }
        ("INSERT", "INTO") => (name_after(2)?, "ROW EXCLUSIVE"),
        ("UPDATE", _) => (name_after(1)?, "ROW EXCLUSIVE"),
        ("DELETE", "FROM") => (name_after(2)?, "ROW EXCLUSIVE"),
        _ => return None,
    };
    Some((table, lock))
}

#[cfg(test)]
mod lock_tests {
    use super::statement_lock;

    #[test]
    fn locks_of_our_statements() {
        let l = |s: &str| statement_lock(s).map(|(t, l)| format!("{t} {l}"));
        assert_eq!(
            l("ALTER TABLE \"users\" ADD COLUMN \"password_hash\" varchar(255)").as_deref(),
            Some("users ACCESS EXCLUSIVE")
        );
        assert_eq!(
            l("CREATE TABLE IF NOT EXISTS \"orgs\" ( \"id\" varchar )").as_deref(),
            Some("orgs new table")
        );
        assert_eq!(
            l("CREATE INDEX \"ix_users_email\" ON \"users\" (\"email\")").as_deref(),
            Some("users SHARE (blocks writes)")
        );
        assert_eq!(
            l("CREATE UNIQUE INDEX \"ux\" ON \"public\".\"users\" (\"email\")").as_deref(),
            Some("users SHARE (blocks writes)")
        );
        assert_eq!(
            l("UPDATE \"alembic_version\" SET \"version_num\" = '002'").as_deref(),
            Some("alembic_version ROW EXCLUSIVE")
        );
        assert_eq!(l("CREATE TYPE \"role\" AS ENUM ('owner')"), None);
        assert_eq!(l("SET LOCAL lock_timeout = '10000ms'"), None);
    }
}
