//! The schema each migration version must have, per backend: snapshots generated from
//! the migrations themselves (a test migrates scratch PostgreSQL and SQLite databases to
//! each version and introspects them with [`super::introspect`], the code verify-schema
//! uses), committed as `snapshots/<backend>.json` and compiled in. Nothing here is
//! written by hand: `scripts/snapshots.sh` regenerates the files, and the test
//! `schema_snapshots::snapshots_are_what_the_migrations_make` fails when they are stale.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use sea_orm::DbBackend;

use super::model::Schema;
use crate::migrations::known;

const POSTGRES: &str = include_str!("snapshots/postgres.json");
const SQLITE: &str = include_str!("snapshots/sqlite.json");

/// Every version's schema on one backend, by migration name.
pub type Snapshots = BTreeMap<String, Schema>;

fn parsed(backend: DbBackend) -> &'static Snapshots {
    static PG: OnceLock<Snapshots> = OnceLock::new();
    static LITE: OnceLock<Snapshots> = OnceLock::new();
    let (cell, text) = match backend {
        DbBackend::Postgres => (&PG, POSTGRES),
        _ => (&LITE, SQLITE),
    };
    // The files are ours and tested; a broken one is a build that must not ship.
    cell.get_or_init(|| serde_json::from_str(text).expect("the committed schema snapshots parse"))
}

/// The expected schema after migration `version` (index into the known migrations:
/// 0 = revision 001, 1 = revision 002) on `backend`.
pub fn expected(version: usize, backend: DbBackend) -> Schema {
    let name = &known()[version].version;
    parsed(backend)
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no schema snapshot for {name}: run scripts/snapshots.sh"))
}

/// Does the database's schema have `table.column`? Answered from the version it records
/// (`seaql_migrations`, else `alembic_version`) and that version's snapshot; only a
/// database that records no version is asked its catalog.
pub async fn has_column<C: sea_orm::ConnectionTrait>(
    conn: &C,
    table: &str,
    column: &str,
) -> crate::error::Result<bool> {
    let backend = conn.get_database_backend();
    let state = crate::migrations::read_state(conn).await?;
    let recorded = state.current().or_else(|| {
        let rev = state.alembic.revision()?;
        known().iter().position(|k| k.alembic_revision == rev)
    });
    match recorded {
        Some(version) => Ok(expected(version, backend)
            .tables
            .get(table)
            .is_some_and(|t| t.columns.iter().any(|c| c.name == column))),
        None => crate::migrations::has_column(conn, backend, table, column).await,
    }
}
