//! Whether the connected role may run each command: PostgreSQL's catalog (schema and
//! table privileges, table ownership), SQLite's writability. Shared by `doctor` and
//! `upgrade`'s pre-flight.

use sea_orm::DbBackend;

use crate::db::Db;

/// The column `v` of the one row `sql` returns; None on any error (a check that cannot
/// run says no).
pub async fn scalar<T: sea_orm::TryGetable>(db: &Db, sql: &str) -> Option<T> {
    db.query_one(sql)
        .await
        .ok()
        .flatten()
        .and_then(|r| r.try_get("", "v").ok())
}

/// Whether the role has what each command needs. PostgreSQL: schema CREATE and table
/// ownership for migrate and baseline, INSERT for create-org / create-admin, UPDATE on
/// users for set-role / reset-password, SELECT for audit and users list. SQLite: whether the connection may write decides. `writable`: the session is
/// not read-only (checked once by the caller).
pub async fn per_command(db: &Db, writable: bool) -> Vec<(&'static str, bool)> {
    if db.backend != DbBackend::Postgres {
        let writable = writable
            && scalar::<i64>(db, "SELECT CASE WHEN (SELECT query_only FROM pragma_query_only) = 0 THEN 1 ELSE 0 END AS v")
                .await
                .unwrap_or(1)
                == 1;
        return sqlite_commands(writable);
    }
    let q = |sql: &str| sql.to_owned();
    let create_schema = scalar::<bool>(
        db,
        &q("SELECT has_schema_privilege(current_schema(), 'CREATE') AS v"),
    )
    .await
    .unwrap_or(false);
    // ALTER/DROP need ownership of the API's tables that exist.
    let owns = scalar::<bool>(
        db,
        &q("SELECT COALESCE(bool_and(pg_has_role(current_user, c.relowner, 'USAGE')), true) AS v \
            FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' \
            AND c.relname IN ('orgs', 'users', 'events_enriched', 'audit_logs', 'daily_org_agg', \
                              'daily_user_agg', 'daily_provider_agg', 'daily_model_agg', 'seaql_migrations')"),
    )
    .await
    .unwrap_or(false);
    let table_priv = |table: &str, privilege: &str| {
        format!(
            "SELECT CASE WHEN to_regclass('{table}') IS NULL THEN has_schema_privilege(current_schema(), 'CREATE') \
             ELSE has_table_privilege('{table}', '{privilege}') END AS v"
        )
    };
    let insert_orgs = scalar::<bool>(db, &table_priv("orgs", "INSERT"))
        .await
        .unwrap_or(false);
    let insert_users = scalar::<bool>(db, &table_priv("users", "INSERT"))
        .await
        .unwrap_or(false);
    let insert_audit = scalar::<bool>(db, &table_priv("audit_logs", "INSERT"))
        .await
        .unwrap_or(false);
    let select_users = scalar::<bool>(db, &table_priv("users", "SELECT"))
        .await
        .unwrap_or(false);
    let select_audit = scalar::<bool>(db, &table_priv("audit_logs", "SELECT"))
        .await
        .unwrap_or(false);
    let update_users = scalar::<bool>(db, &table_priv("users", "UPDATE"))
        .await
        .unwrap_or(false);
    // UPDATE on users (for the change and its FOR UPDATE row lock), INSERT for the row.
    let change_users = writable && update_users && select_users && insert_audit;
    vec![
        ("migrate", writable && create_schema && owns),
        ("baseline", writable && create_schema),
        ("create-org", writable && insert_orgs && insert_audit),
        (
            "create-admin",
            writable && insert_users && insert_audit && select_users,
        ),
        ("users set-role", change_users),
        ("users reset-password", change_users),
        ("users lock", change_users),
        ("users unlock", change_users),
        ("verify-schema", true),
        ("audit", select_users && select_audit),
        ("users list", select_users),
    ]
}

/// SQLite: whether the connection may write decides every writing command.
fn sqlite_commands(writable: bool) -> Vec<(&'static str, bool)> {
    vec![
        ("migrate", writable),
        ("baseline", writable),
        ("create-org", writable),
        ("create-admin", writable),
        ("users set-role", writable),
        ("users reset-password", writable),
        ("users lock", writable),
        ("users unlock", writable),
        ("verify-schema", true),
        ("audit", true),
        ("users list", true),
    ]
}
