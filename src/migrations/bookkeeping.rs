//! The bookkeeping statements, built once with sea-query and shared by the live run
//! and the dry run (which prints them): the rows of `seaql_migrations` and the one row
//! of `alembic_version`.

use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryTrait, Statement};
use sea_orm_migration::seaql_migrations;

use crate::entities::alembic_version;

/// Record `versions` as applied at `applied_at` (unix seconds): what `migrate up`
/// (through sea-orm-migration) and `baseline` insert.
pub fn record_applied(backend: DbBackend, versions: &[&str], applied_at: i64) -> Statement {
    let mut q = Query::insert();
    q.into_table(seaql_migrations::Entity).columns([
        seaql_migrations::Column::Version,
        seaql_migrations::Column::AppliedAt,
    ]);
    for v in versions {
        q.values_panic([(*v).into(), applied_at.into()]);
    }
    backend.build(&q)
}

/// Forget `version`: what `migrate down` (through sea-orm-migration) deletes.
pub fn record_reverted(backend: DbBackend, version: &str) -> Statement {
    seaql_migrations::Entity::delete_many()
        .filter(seaql_migrations::Column::Version.eq(version))
        .build(backend)
}

/// Set `alembic_version` to `revision`; `None` leaves it empty (everything reverted).
pub fn set_alembic(backend: DbBackend, revision: Option<&str>) -> Vec<Statement> {
    let mut out = vec![alembic_version::Entity::delete_many().build(backend)];
    if let Some(rev) = revision {
        let mut q = Query::insert();
        q.into_table(alembic_version::Entity)
            .columns([alembic_version::Column::VersionNum])
            .values_panic([rev.into()]);
        out.push(backend.build(&q));
    }
    out
}

/// A statement as the dry run prints it (values inlined).
pub fn shown(stmt: &Statement) -> String {
    stmt.to_string()
}
