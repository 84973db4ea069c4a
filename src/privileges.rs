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
    // Every (table, privilege) once, with CREATE on the schema and the ownership of
    // the API's tables: one catalog query.
    let mut pairs: Vec<(&str, Privilege)> = Vec::new();
    for pair in rows.iter().flat_map(|g| g.tables.iter().copied()) {
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    let mut columns = vec![
        "has_schema_privilege(current_schema(), 'CREATE') AS create_schema".to_owned(),
        format!("({}) AS owns", owns_api_tables_sql()),
    ];
    for (i, (table, privilege)) in pairs.iter().enumerate() {
        columns.push(format!("{} AS p{i}", table_priv(table, privilege.sql())));
    }
    let row = db
        .query_one(&format!("SELECT {}", columns.join(", ")))
        .await
        .ok()
        .flatten();
    // A check that cannot run says no.
    let answer = |column: &str| {
        row.as_ref()
            .and_then(|r| r.try_get::<bool>("", column).ok())
            .unwrap_or(false)
    };
    let create_schema = answer("create_schema");
    let owns = answer("owns");
    let asked: Vec<((&str, Privilege), bool)> = pairs
        .iter()
        .enumerate()
        .map(|(i, pair)| (*pair, answer(&format!("p{i}"))))
        .collect();
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

/// Whether the role may ALTER and DROP the API's tables that exist (it owns them).
fn owns_api_tables_sql() -> String {
    let tables: Vec<String> = crate::migrations::api_tables()
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(crate::migrations::TRACKING_TABLE))
        .map(|t| format!("'{t}'"))
        .collect();
    format!(
        "SELECT COALESCE(bool_and(pg_has_role(current_user, c.relowner, 'USAGE')), true) \
         FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' \
         AND c.relname IN ({})",
        tables.join(", ")
    )
}

/// Whether the role has `privilege` on `table`; a table that does not exist yet: CREATE
/// on the schema (the command's migration makes it). An expression.
fn table_priv(table: &str, privilege: &str) -> String {
    format!(
        "CASE WHEN to_regclass('{table}') IS NULL THEN has_schema_privilege(current_schema(), 'CREATE') \
         ELSE has_table_privilege('{table}', '{privilege}') END"
    )
}
