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
