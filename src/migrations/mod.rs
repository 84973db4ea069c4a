//! The migration engine: what the database records (SeaORM and Alembic), what a
//! command would run, and running it one migration per transaction under the
//! migration lock, with the bookkeeping row and `alembic_version` in the same
//! transaction.

use migration::{Migrator, MigratorTrait};
use serde::Serialize;

pub mod bookkeeping;
mod plan;
mod runner;
mod state;

pub use plan::*;
pub use runner::*;
pub use state::*;

pub const TRACKING_TABLE: &str = "seaql_migrations";
pub const ALEMBIC_TABLE: &str = "alembic_version";

/// One migration this build knows.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
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

/// The API's tables: every table this build's migrations create (bookkeeping aside),
/// sorted by name. Read from the generated snapshots (`src/schema/snapshots/`, made by
/// migrating scratch databases: `cargo xtask snapshots`), never listed by hand; only
/// the table names are read here (the schema layer parses the rest).
pub fn api_tables() -> &'static [String] {
    static TABLES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let snapshots: serde_json::Value =
            serde_json::from_str(include_str!("../schema/snapshots/postgres.json"))
                .unwrap_or_default();
        let mut all: Vec<String> = snapshots
            .as_object()
            .into_iter()
            .flat_map(|versions| versions.values())
            .filter_map(|schema| schema.get("tables")?.as_object())
            .flat_map(|tables| tables.keys().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    })
}

/// Is `table` one of the API's ([`api_tables`])?
pub fn is_api_table(table: &str) -> bool {
    api_tables().iter().any(|t| t == table)
}

/// The newest migration this build knows (the migration list is never empty: the
/// migration crate's tests hold it).
pub fn head() -> Known {
    known().pop().unwrap_or(Known {
        index: 0,
        version: String::new(),
        alembic_revision: "-",
    })
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

/// A version as reports show it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Version {
    pub version: String,
    pub alembic_revision: &'static str,
}

pub fn version(index: Option<usize>) -> Option<Version> {
    index.map(|i| Version {
        version: known()[i].version.clone(),
        alembic_revision: known()[i].alembic_revision,
    })
}

pub fn version_label(v: &Option<Version>) -> String {
    v.as_ref()
        .map(|v| format!("{} ({})", v.alembic_revision, v.version))
        .unwrap_or_else(|| "no version (empty)".into())
}
