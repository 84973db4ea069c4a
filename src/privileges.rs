//! Whether the connected role may run each command: PostgreSQL's catalog (schema and
//! table privileges, table ownership), SQLite's writability. Shared by `doctor` and
//! `upgrade`'s pre-flight.

use sea_orm::DbBackend;

use crate::db::Db;
use crate::spec::{Grants, Privilege};

/// The column `v` of the one row `sql` returns; None on any error (a check that cannot
/// run says no).
pub async fn scalar<T: sea_orm::TryGetable>(db: &Db, sql: &str) -> Option<T> {
    db.query_one(sql)
        .await
        .ok()
        .flatten()
        .and_then(|r| r.try_get("", "v").ok())
}

/// Whether the role has what each command needs, one row per [`Grants::row`] of
/// `grants` (in their order; the first of a row counts). PostgreSQL: CREATE on the schema, ownership of the
/// API's tables, and the table privileges each states. SQLite: whether the connection
/// may write decides. `writable`: the session is not read-only (checked once by the
/// caller).
pub async fn per_command(
    db: &Db,
    writable: bool,
    grants: &[&'static Grants],
) -> Vec<(&'static str, bool)> {
    let mut rows: Vec<&'static Grants> = Vec::new();
    for g in grants.iter().copied() {
        if !rows.iter().any(|r| r.row == g.row) {
            rows.push(g);
        }
    }
    if db.backend != DbBackend::Postgres {
        let writable = writable
            && scalar::<i64>(db, "SELECT CASE WHEN (SELECT query_only FROM pragma_query_only) = 0 THEN 1 ELSE 0 END AS v")
                .await
                .unwrap_or(1)
                == 1;
        return rows
            .iter()
            .map(|g| (g.row, !g.writes || writable))
            .collect();
    }
    let create_schema = scalar::<bool>(
        db,
        "SELECT has_schema_privilege(current_schema(), 'CREATE') AS v",
    )
    .await
    .unwrap_or(false);
    let owns = owns_api_tables(db).await;
    // Each (table, privilege) asked once.
    let mut asked: Vec<((&str, Privilege), bool)> = Vec::new();
    for (table, privilege) in rows.iter().flat_map(|g| g.tables.iter().copied()) {
        if !asked.iter().any(|(k, _)| *k == (table, privilege)) {
            let ok = scalar::<bool>(db, &table_priv(table, privilege.sql()))
                .await
                .unwrap_or(false);
            asked.push(((table, privilege), ok));
        }
    }
    let has = |k: &(&str, Privilege)| asked.iter().any(|(a, ok)| a == k && *ok);
    rows.iter()
        .map(|g| {
            let ok = (!g.writes || writable)
                && (!g.create_in_schema || create_schema)
                && (!g.owns_tables || owns)
                && g.tables.iter().all(has);
            (g.row, ok)
        })
        .collect()
}

/// The role may ALTER and DROP the API's tables that exist (it owns them).
async fn owns_api_tables(db: &Db) -> bool {
    let tables: Vec<String> = crate::migrations::api_tables()
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(crate::migrations::TRACKING_TABLE))
        .map(|t| format!("'{t}'"))
        .collect();
    scalar::<bool>(
        db,
        &format!(
            "SELECT COALESCE(bool_and(pg_has_role(current_user, c.relowner, 'USAGE')), true) AS v \
             FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' \
             AND c.relname IN ({})",
            tables.join(", ")
        ),
    )
    .await
    .unwrap_or(false)
}

/// Whether the role has `privilege` on `table`; a table that does not exist yet: CREATE
/// on the schema (the command's migration makes it).
fn table_priv(table: &str, privilege: &str) -> String {
    format!(
        "SELECT CASE WHEN to_regclass('{table}') IS NULL THEN has_schema_privilege(current_schema(), 'CREATE') \
         ELSE has_table_privilege('{table}', '{privilege}') END AS v"
    )
}
