//! The migration engine: what the database records (SeaORM and Alembic), what a
//! command would run, and running it one migration per transaction under the
//! migration lock, with the bookkeeping row and `alembic_version` in the same
//! transaction.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, MockDatabase, MockExecResult,
    QueryOrder, Statement,
};
use sea_orm_migration::{MigrationTrait, SchemaManager, seaql_migrations};
use serde::Serialize;

use crate::db::quote_literal;
use crate::db::{self, Db, MIGRATION_LOCK_KEY};
use crate::error::{Error, Result};
use crate::progress::Progress;

pub const TRACKING_TABLE: &str = "seaql_migrations";
pub const ALEMBIC_TABLE: &str = "alembic_version";

/// One migration this build knows.
#[derive(Debug, Clone, Serialize)]
pub struct Known {
    /// Position, oldest first.
    #[serde(skip)]
    pub index: usize,
    /// SeaORM migration name, e.g. `m20251008_000002_add_user_password`.
    pub version: String,
    /// The Alembic revision it mirrors, e.g. `002`.
    pub alembic_revision: &'static str,
}

/// Every migration this build knows, oldest first.
pub fn known() -> Vec<Known> {
    Migrator::migrations()
        .iter()
        .enumerate()
        .map(|(index, m)| Known {
            index,
            version: m.name().to_owned(),
            alembic_revision: migration::alembic_revision(m.name()).unwrap_or("?"),
        })
        .collect()
}

/// Resolve a VERSION argument: a migration name or its Alembic revision.
pub fn resolve_version(s: &str) -> std::result::Result<usize, String> {
    let s = s.trim();
    let all = known();
    all.iter()
        .find(|k| k.version == s || k.alembic_revision == s)
        .map(|k| k.index)
        .ok_or_else(|| {
            let list: Vec<String> = all
                .iter()
                .map(|k| format!("{} ({})", k.alembic_revision, k.version))
                .collect();
            format!("unknown version '{s}'; known versions: {}", list.join(", "))
        })
}

/// What `alembic_version` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "revision")]
pub enum Alembic {
    /// No `alembic_version` table: not an Alembic-managed database.
    Absent,
    /// The table exists with no row (Alembic's "base").
    Empty,
    /// The table's row.
    Revision(String),
}

impl Alembic {
    pub fn revision(&self) -> Option<&str> {
        match self {
            Alembic::Revision(r) => Some(r),
            _ => None,
        }
    }
}

/// The bookkeeping state of a database, read without writing anything.
#[derive(Debug, Clone)]
pub struct State {
    /// Does `seaql_migrations` exist?
    pub tracking_table: bool,
    /// Applied known migrations: (index, applied_at unix seconds), oldest first.
    pub applied: Vec<(usize, i64)>,
    /// Versions recorded in `seaql_migrations` that this build does not know.
    pub unknown: Vec<String>,
    pub alembic: Alembic,
    /// The API's tables that exist although no migration is recorded (hand-made or
    /// Alembic-only databases); empty when something is recorded.
    pub unrecorded_tables: Vec<String>,
}

impl State {
    /// Index of the newest applied migration.
    pub fn current(&self) -> Option<usize> {
        self.applied.iter().map(|(i, _)| *i).max()
    }

    pub fn applied_at(&self, index: usize) -> Option<i64> {
        self.applied
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, t)| *t)
    }

    pub fn is_applied(&self, index: usize) -> bool {
        self.applied_at(index).is_some()
    }

    /// Known migrations not applied, oldest first.
    pub fn pending(&self) -> Vec<usize> {
        (0..known().len())
            .filter(|i| !self.is_applied(*i))
            .collect()
    }

    /// Is `alembic_version` at a revision this build does not know?
    pub fn alembic_unknown(&self) -> Option<&str> {
        self.alembic
            .revision()
            .filter(|r| resolve_version(r).is_err())
    }

    /// The Alembic revision that matches what `seaql_migrations` records.
    pub fn expected_alembic(&self) -> Option<&'static str> {
        self.current().map(|i| known()[i].alembic_revision)
    }

    /// Refuse to change the schema when the bookkeeping is not something we understand.
    pub fn check_writable(&self) -> Result<()> {
        if !self.unknown.is_empty() {
            return Err(Error::refused(
                format!(
                    "{TRACKING_TABLE} records migrations this build of ecomind-admin does not know: {}",
                    self.unknown.join(", ")
                ),
                "upgrade ecomind-admin to a version that ships them",
            ));
        }
        if let Some(rev) = self.alembic_unknown() {
            return Err(Error::refused(
                format!(
                    "{ALEMBIC_TABLE} is at revision '{rev}', which this build of ecomind-admin does not know"
                ),
                "upgrade ecomind-admin to a version that ships that revision",
            ));
        }
        let alembic = self.alembic.revision();
        if self.alembic != Alembic::Absent && alembic != self.expected_alembic() {
            let seaorm = self
                .current()
                .map(|i| format!("{} ({})", known()[i].alembic_revision, known()[i].version))
                .unwrap_or_else(|| "nothing".to_owned());
            let alembic = alembic.unwrap_or("no revision");
            if self.current().is_none() {
                return Err(Error::refused(
                    format!(
                        "the database is managed by Alembic (revision {alembic}) but {TRACKING_TABLE} records nothing"
                    ),
                    "adopt it first with `ecomind-admin baseline`, which records the versions its schema already has",
                ));
            }
            return Err(Error::refused(
                format!("{ALEMBIC_TABLE} says {alembic} but {TRACKING_TABLE} records {seaorm}"),
                "the two bookkeeping tables disagree; check the schema with `ecomind-admin verify-schema` and fix the one that is wrong",
            ));
        }
        if !self.unrecorded_tables.is_empty() {
            return Err(Error::refused(
                format!(
                    "the database already has the API's tables ({}) but no migration is recorded",
                    self.unrecorded_tables.join(", ")
                ),
                "adopt it with `ecomind-admin baseline`, which proves its version and records it",
            ));
        }
        Ok(())
    }
}

/// Read the bookkeeping state. Creates nothing, so it works on a read-only role.
pub async fn read_state<C: ConnectionTrait>(conn: &C) -> Result<State> {
    let present = tables_present(conn).await?;
    if present.is_empty() {
        refuse_if_elsewhere(conn).await?;
    }
    let tracking_table = present.iter().any(|t| t == TRACKING_TABLE);
    let all = known();
    let mut applied = Vec::new();
    let mut unknown = Vec::new();
    if tracking_table {
        let rows = seaql_migrations::Entity::find()
            .order_by_asc(seaql_migrations::Column::Version)
            .all(conn)
            .await
            .map_err(|e| Error::from_db(e, &format!("reading {TRACKING_TABLE}")))?;
        for row in rows {
            match all.iter().find(|k| k.version == row.version) {
                Some(k) => applied.push((k.index, row.applied_at)),
                None => unknown.push(row.version),
            }
        }
        applied.sort();
    }
    let alembic = if present.iter().any(|t| t == ALEMBIC_TABLE) {
        let rows = conn
            .query_all_raw(Statement::from_string(
                conn.get_database_backend(),
                format!("SELECT version_num FROM {ALEMBIC_TABLE}"),
            ))
            .await
            .map_err(|e| Error::from_db(e, &format!("reading {ALEMBIC_TABLE}")))?;
        let mut revs = Vec::new();
        for row in rows {
            let v: String = row
                .try_get("", "version_num")
                .map_err(|e| Error::from_db(e, &format!("reading {ALEMBIC_TABLE}")))?;
            revs.push(v);
        }
        match revs.len() {
            0 => Alembic::Empty,
            1 => Alembic::Revision(revs.remove(0)),
            _ => {
                return Err(Error::refused(
                    format!(
                        "{ALEMBIC_TABLE} has {} rows ({}); Alembic branches are not supported",
                        revs.len(),
                        revs.join(", ")
                    ),
                    "the API's migrations are linear; fix alembic_version by hand",
                ));
            }
        }
    } else {
        Alembic::Absent
    };
    let unrecorded_tables = if applied.is_empty() && unknown.is_empty() {
        present
            .into_iter()
            .filter(|t| crate::entities::API_TABLES.contains(&t.as_str()))
            .collect()
    } else {
        Vec::new()
    };
    Ok(State {
        tracking_table,
        applied,
        unknown,
        alembic,
        unrecorded_tables,
    })
}

/// Does `table` have `column` (in the schema the session resolves names in)?
pub async fn has_column<C: ConnectionTrait>(
    conn: &C,
    backend: DbBackend,
    table: &str,
    column: &str,
) -> Result<bool> {
    let (sql, values) = match backend {
        DbBackend::Postgres => (
            "SELECT 1 AS one FROM pg_attribute WHERE attrelid = to_regclass($1) \
             AND attname = $2 AND attnum > 0 AND NOT attisdropped",
            [table.into(), column.into()],
        ),
        _ => (
            "SELECT 1 AS one FROM pragma_table_info(?) WHERE name = ?",
            [table.into(), column.into()],
        ),
    };
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .map_err(|e| Error::from_db(e, &format!("looking for {table}.{column}")))?;
    Ok(row.is_some())
}

/// For commands that read or write the API's rows (audit, create-*): the API's tables
/// must be here. In another schema: refused, naming it; nowhere: refused, pointing at
/// `migrate up` (instead of a "relation does not exist" from the first query).
pub async fn ensure_api_tables<C: ConnectionTrait>(conn: &C) -> Result<()> {
    let present = tables_present(conn).await?;
    if present
        .iter()
        .any(|t| crate::entities::API_TABLES.contains(&t.as_str()))
    {
        return Ok(());
    }
    refuse_if_elsewhere(conn).await?;
    Err(Error::refused(
        "the database has none of the API's tables",
        "run `ecomind-admin migrate up` first (or check the database URL / --schema)",
    ))
}

/// PostgreSQL: when the schema we work in holds nothing of the API, the API's tables
/// may be in another schema (the search_path does not name it). Working on "an empty
/// database" then would make a second copy: refuse, naming the schema. A schema counts
/// when it has bookkeeping (seaql_migrations, alembic_version) or at least three of the
/// API's tables (so that, say, Supabase's `auth.users` alone does not).
async fn refuse_if_elsewhere<C: ConnectionTrait>(conn: &C) -> Result<()> {
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let api: Vec<String> = crate::entities::API_TABLES
        .iter()
        .map(|t| quote_literal(t))
        .collect();
    let sql = format!(
        "SELECT n.nspname::text AS schema, COALESCE(current_schema()::text, '') AS here \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND n.nspname IS DISTINCT FROM current_schema() \
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' \
           AND c.relname IN ({api}, '{TRACKING_TABLE}', '{ALEMBIC_TABLE}') \
         GROUP BY n.nspname \
         HAVING count(*) FILTER (WHERE c.relname IN ('{TRACKING_TABLE}', '{ALEMBIC_TABLE}')) > 0 \
             OR count(*) >= 3 \
         ORDER BY count(*) DESC, 1",
        api = api.join(", ")
    );
    let rows = conn
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .map_err(|e| Error::from_db(e, "looking for the API's tables in other schemas"))?;
    let mut schemas = Vec::new();
    let mut here = String::new();
    for row in rows {
        schemas.push(
            row.try_get::<String>("", "schema")
                .map_err(|e| Error::from_db(e, "reading the catalog"))?,
        );
        here = row.try_get::<String>("", "here").unwrap_or_default();
    }
    let Some(first) = schemas.first() else {
        return Ok(());
    };
    let shown: Vec<String> = schemas
        .iter()
        .map(|s| format!("'{}'", crate::text::shown(s)))
        .collect();
    Err(Error::refused(
        format!(
            "the API's tables are in schema {}, not in {}; nothing was changed",
            shown.join(", "),
            if here.is_empty() {
                "the search_path".to_owned()
            } else {
                format!(
                    "'{}' (the first schema of the search_path)",
                    crate::text::shown(&here)
                )
            }
        ),
        format!(
            "pass --schema {} to work on them (ecomind-admin will not make a second copy)",
            crate::text::shown(first)
        ),
    ))
}

/// Read the state from one consistent snapshot (a read-only transaction), so that a
/// concurrent run's commit is seen entirely or not at all. Writes nothing.
pub async fn snapshot_state(db: &Db) -> Result<State> {
    db::read_in(db.snapshot().await?, async |txn| read_state(txn).await).await
}

/// Which of the tables the bookkeeping cares about (the API's, seaql_migrations,
/// alembic_version) exist in the current schema: one catalog query.
pub async fn tables_present<C: ConnectionTrait>(conn: &C) -> Result<Vec<String>> {
    let backend = conn.get_database_backend();
    let names: Vec<String> = crate::entities::API_TABLES
        .iter()
        .chain([TRACKING_TABLE, ALEMBIC_TABLE].iter())
        .map(|t| quote_literal(t))
        .collect();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT tablename::text AS name FROM pg_catalog.pg_tables \
             WHERE schemaname = current_schema() AND tablename IN ({})",
            names.join(", ")
        ),
        _ => format!(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({})",
            names.join(", ")
        ),
    };
    let rows = conn
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .map_err(|e| Error::from_db(e, "reading the catalog"))?;
    let mut present = Vec::new();
    for row in rows {
        present.push(
            row.try_get::<String>("", "name")
                .map_err(|e| Error::from_db(e, "reading the catalog"))?,
        );
    }
    present.sort();
    Ok(present)
}

/// Set `alembic_version` to `revision`, or remove its row when `None` (everything reverted).
async fn set_alembic(txn: &DatabaseTransaction, revision: Option<&str>) -> Result<()> {
    for sql in alembic_sql(revision) {
        txn.execute_unprepared(&sql)
            .await
            .map_err(|e| Error::from_db(e, &format!("updating {ALEMBIC_TABLE}")))?;
    }
    Ok(())
}

fn alembic_sql(revision: Option<&str>) -> Vec<String> {
    let mut v = vec![format!("DELETE FROM {ALEMBIC_TABLE}")];
    if let Some(rev) = revision {
        // Revisions come from our own table of known revisions: no quoting issue.
        v.push(format!(
            "INSERT INTO {ALEMBIC_TABLE} (version_num) VALUES ('{rev}')"
        ));
    }
    v
}

/// Which way a run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

/// One migration applied or reverted.
#[derive(Debug, Clone, Serialize)]
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
    let mut done = Vec::new();
    loop {
        let txn = db.begin_locked(opts.lock_wait, ui).await?;
        let step = db::commit_if_ok(txn, "committing the migration", async |txn| {
            up_one(txn, target, opts, ui).await
        })
        .await?;
        match step {
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
    let mut done = Vec::new();
    loop {
        let txn = db.begin_locked(opts.lock_wait, ui).await?;
        let step = db::commit_if_ok(txn, "committing the revert", async |txn| {
            down_one(txn, keep, opts, ui).await
        })
        .await?;
        match step {
            Some(step) => done.push(step),
            None => return Ok(done),
        }
    }
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

/// The SQL one step would run, for `--dry-run`.
#[derive(Debug, Clone, Serialize)]
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
                sql.push(format!(
                    "INSERT INTO {TRACKING_TABLE} (version, applied_at) VALUES ('{}', <unix time>)",
                    k.version
                ));
            }
            Direction::Down => {
                sql.extend(capture_migration(backend, m.as_ref(), Direction::Down).await?);
                sql.push(format!(
                    "DELETE FROM {TRACKING_TABLE} WHERE version = '{}'",
                    k.version
                ));
            }
        }
        if state.alembic != Alembic::Absent {
            let rev = match direction {
                Direction::Up => Some(k.alembic_revision),
                // After reverting `i`, the newest remaining migration is the one before it.
                Direction::Down => i.checked_sub(1).map(|prev| all[prev].alembic_revision),
            };
            sql.extend(alembic_sql(rev));
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

/// What a revert will drop, for the confirmation prompt.
#[derive(Debug, Clone, Serialize)]
pub struct Drop {
    /// `table`, `column` or `type`.
    pub kind: &'static str,
    pub table: Option<String>,
    pub name: String,
    /// Estimated rows in the table (PostgreSQL: planner statistics; SQLite: exact).
    pub estimated_rows: Option<i64>,
}

/// Read the drops out of the SQL a revert runs (our own generated statements).
pub fn drops_in(sql: &[String]) -> Vec<Drop> {
    let unq = |s: &str| s.trim().trim_matches('"').trim_matches('`').to_owned();
    let mut out = Vec::new();
    for stmt in sql {
        let s = stmt.trim();
        if let Some(rest) = s.strip_prefix("DROP TABLE ") {
            let rest = rest.trim_start_matches("IF EXISTS ");
            let name = unq(rest.split_whitespace().next().unwrap_or(""));
            out.push(Drop {
                kind: "table",
                table: Some(name.clone()),
                name,
                estimated_rows: None,
            });
        } else if let Some(rest) = s.strip_prefix("DROP TYPE ") {
            let rest = rest.trim_start_matches("IF EXISTS ");
            let name = unq(rest.split_whitespace().next().unwrap_or(""));
            out.push(Drop {
                kind: "type",
                table: None,
                name,
                estimated_rows: None,
            });
        } else if let Some(rest) = s.strip_prefix("ALTER TABLE ") {
            let mut parts = rest.splitn(2, ' ');
            let table = unq(parts.next().unwrap_or(""));
            let tail = parts.next().unwrap_or("");
            for clause in tail.split(", ") {
                if let Some(col) = clause.trim().strip_prefix("DROP COLUMN ") {
                    out.push(Drop {
                        kind: "column",
                        table: Some(table.clone()),
                        name: unq(col),
                        estimated_rows: None,
                    });
                }
            }
        }
    }
    out
}

/// Estimated row counts of the tables in `drops`.
pub async fn estimate_rows(db: &Db, drops: &mut [Drop]) -> Result<()> {
    let tables: Vec<String> = drops.iter().filter_map(|d| d.table.clone()).collect();
    let counts = row_estimates(db, &tables).await?;
    for d in drops.iter_mut() {
        if let Some(t) = &d.table {
            d.estimated_rows = counts.get(t).copied();
        }
    }
    Ok(())
}

/// Row counts of `tables`: planner statistics on PostgreSQL (pg_class.reltuples, or the
/// statistics collector's live-tuple count for a never-analyzed table; one catalog
/// query, never a full COUNT(*) on a production table), exact counts on SQLite.
pub async fn row_estimates(db: &Db, tables: &[String]) -> Result<HashMap<String, i64>> {
    let mut counts = HashMap::new();
    if tables.is_empty() {
        return Ok(counts);
    }
    if db.is_postgres() {
        let list: Vec<String> = tables.iter().map(|t| quote_literal(t)).collect();
        let rows = db
            .query_all(&format!(
                    "SELECT c.relname::text AS name, \
                            (CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint \
                                  ELSE COALESCE(s.n_live_tup, 0) END)::bigint AS rows \
                     FROM pg_class c \
                     LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
                     WHERE c.relkind IN ('r', 'p') AND c.relnamespace = current_schema()::regnamespace \
                       AND c.relname IN ({})",
                list.join(", ")
            ))
            .await
            .map_err(|e| e.context("estimating row counts"))?;
        for row in rows {
            let name: String = row
                .try_get("", "name")
                .map_err(|e| Error::from_db(e, "estimating row counts"))?;
            let n: i64 = row
                .try_get("", "rows")
                .map_err(|e| Error::from_db(e, "estimating row counts"))?;
            counts.insert(name, n);
        }
    } else {
        let mut unique: Vec<&String> = tables.iter().collect();
        unique.sort();
        unique.dedup();
        for t in unique {
            let row = db
                .conn
                .query_one_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    format!(
                        "SELECT COUNT(*) AS rows FROM \"{}\"",
                        t.replace('"', "\"\"")
                    ),
                ))
                .await
                .map_err(|e| Error::from_db(e, "counting rows"))?;
            if let Some(row) = row {
                let n: i64 = row
                    .try_get("", "rows")
                    .map_err(|e| Error::from_db(e, "counting rows"))?;
                counts.insert(t.clone(), n);
            }
        }
    }
    Ok(counts)
}
