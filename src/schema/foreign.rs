//! A database that is not EcoMind's: tables named like the API's (`users`, `orgs`,
//! `audit_logs` are common names) that are another application's. Recognized up front,
//! before any command reads a row it would misread or reports "2 pending" for a
//! database it must not migrate.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::migrations::{ALEMBIC_TABLE, TRACKING_TABLE, tables_present};

/// Refuse (exit 4) a database whose tables named like the API's lack columns the API's
/// first revision already has, when no bookkeeping says it is ours (with
/// `seaql_migrations` or `alembic_version` present, a difference is drift:
/// verify-schema's business).
pub async fn refuse_foreign(db: &Db) -> Result<()> {
    let odd = db::read_in(db.snapshot().await?, async |txn| {
        let present = tables_present(txn).await?;
        if present
            .iter()
            .any(|t| t == TRACKING_TABLE || t == ALEMBIC_TABLE)
        {
            return Ok(Vec::new());
        }
        let first = super::snapshots::expected(0, db.backend);
        let names: Vec<&str> = present
            .iter()
            .filter(|t| first.tables.contains_key(*t))
            .map(String::as_str)
            .collect();
        let have = columns_of(txn, db.backend, &names).await?;
        let mut odd = Vec::new();
        for table in names.iter().filter_map(|t| first.tables.get(*t)) {
            let missing: Vec<&str> = table
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .filter(|c| !have.iter().any(|(t, h)| *t == table.name && h == c))
                .collect();
            if !missing.is_empty() {
                odd.push(format!("{} has no {}", table.name, missing.join(", ")));
            }
        }
        Ok(odd)
    })
    .await?;
    if odd.is_empty() {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "this is not the EcoMind API's database: its tables named like the API's are another application's ({}); nothing was done",
            odd.join("; ")
        ),
        "check the database URL (and --schema): ecomind-admin manages only the EcoMind API's schema",
    ))
}

/// The (table, column) pairs of `tables`, from the catalog in one query.
async fn columns_of<C: ConnectionTrait>(
    conn: &C,
    backend: DbBackend,
    tables: &[&str],
) -> Result<Vec<(String, String)>> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = tables.iter().map(|t| crate::db::quote_literal(t)).collect();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT c.relname::text AS t, a.attname::text AS name FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relname IN ({}) \
               AND a.attnum > 0 AND NOT a.attisdropped",
            list.join(", ")
        ),
        _ => format!(
            "SELECT m.name AS t, p.name AS name FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name IN ({})",
            list.join(", ")
        ),
    };
    let rows = conn
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .map_err(|e| Error::from_db(e, "reading the columns of the API's tables"))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                r.try_get::<String>("", "t").ok()?,
                r.try_get::<String>("", "name").ok()?,
            ))
        })
        .collect())
}
