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
        let mut odd = Vec::new();
        for table in present.iter().filter_map(|t| first.tables.get(t)) {
            let have = columns_of(txn, db.backend, &table.name).await?;
            let missing: Vec<&str> = table
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .filter(|c| !have.iter().any(|h| h == c))
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

/// The columns of `table`, from the catalog.
async fn columns_of<C: ConnectionTrait>(
    conn: &C,
    backend: DbBackend,
    table: &str,
) -> Result<Vec<String>> {
    let (sql, values) = match backend {
        DbBackend::Postgres => (
            "SELECT attname::text AS name FROM pg_attribute WHERE attrelid = to_regclass($1) \
             AND attnum > 0 AND NOT attisdropped",
            [table.into()],
        ),
        _ => ("SELECT name FROM pragma_table_info(?)", [table.into()]),
    };
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .map_err(|e| Error::from_db(e, &format!("reading the columns of {table}")))?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String>("", "name").ok())
        .collect())
}
