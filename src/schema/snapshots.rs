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

/// The API's tables: every table a migration of this build creates (bookkeeping aside),
/// read from the snapshots, sorted by name.
pub fn api_tables() -> &'static [String] {
    static TABLES: OnceLock<Vec<String>> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut all: Vec<String> = parsed(DbBackend::Postgres)
            .values()
            .flat_map(|s| s.tables.keys().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    })
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
