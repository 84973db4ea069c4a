//! What the database records: seaql_migrations, alembic_version, which API tables
//! exist and where; read without writing anything.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryOrder, Statement};
use sea_orm_migration::seaql_migrations;
use serde::Serialize;

use super::{ALEMBIC_TABLE, TRACKING_TABLE, known, resolve_version};
use crate::db::quote_literal;
use crate::db::{self, Db};
use crate::error::{Error, Result};

/// What `alembic_version` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
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

    /// What the database records that this build does not know (a newer ecomind-admin
    /// or API migrated it): the unknown SeaORM versions, and an unknown Alembic revision.
    pub fn newer_than_build(&self) -> Vec<String> {
        let mut out = self.unknown.clone();
        if let Some(rev) = self.alembic_unknown() {
            out.push(format!("alembic revision {}", crate::text::shown(rev)));
        }
        out
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
        let mut revs: Vec<String> = crate::entities::alembic_version::Entity::find()
            .all(conn)
            .await
            .map_err(|e| Error::from_db(e, &format!("reading {ALEMBIC_TABLE}")))?
            .into_iter()
            .map(|row| row.version_num)
            .collect();
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
            .filter(|t| super::is_api_table(t))
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
    if present.iter().any(|t| super::is_api_table(t)) {
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
    let api: Vec<String> = super::api_tables()
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
    let names: Vec<String> = super::api_tables()
        .iter()
        .map(String::as_str)
        .chain([TRACKING_TABLE, ALEMBIC_TABLE])
        .map(quote_literal)
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

/// On-disk size of `tables` with their indexes and TOAST, from the catalog's page
/// counts (`relpages`, as of the last VACUUM / ANALYZE): no scan, and no lock, so a plan
/// never waits behind a long transaction (`pg_total_relation_size` would). Empty on
/// SQLite.
pub async fn table_sizes(db: &Db, tables: &[String]) -> Result<HashMap<String, i64>> {
    let mut sizes = HashMap::new();
    if !db.is_postgres() || tables.is_empty() {
        return Ok(sizes);
    }
    let list: Vec<String> = tables.iter().map(|t| quote_literal(t)).collect();
    let rows = db
        .query_all(&format!(
            "SELECT c.relname::text AS name, \
                    ((c.relpages::bigint + COALESCE(t.relpages, 0) \
                      + COALESCE((SELECT sum(i.relpages) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
                                  WHERE x.indrelid = c.oid), 0)) \
                     * current_setting('block_size')::bigint)::bigint AS bytes \
             FROM pg_class c LEFT JOIN pg_class t ON t.oid = c.reltoastrelid \
             WHERE c.relkind IN ('r', 'p') \
               AND c.relnamespace = current_schema()::regnamespace AND c.relname IN ({})",
            list.join(", ")
        ))
        .await
        .map_err(|e| e.context("reading table sizes"))?;
    for row in rows {
        let name: String = row
            .try_get("", "name")
            .map_err(|e| Error::from_db(e, "reading table sizes"))?;
        let bytes: i64 = row
            .try_get("", "bytes")
            .map_err(|e| Error::from_db(e, "reading table sizes"))?;
        sizes.insert(name, bytes);
    }
    Ok(sizes)
}
