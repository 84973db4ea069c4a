//! The EcoMind API schema as SeaORM migrations.
//!
//! Each migration mirrors one Alembic revision of the API. A shipped migration
//! file is never edited; a schema change is a new migration with the next
//! Alembic revision.

pub use sea_orm_migration::prelude::*;

/// The one list of migrations: each module (one file in `src/`, never edited once
/// shipped) with the Alembic revision it mirrors, oldest first. A new API revision is
/// its file and one line here (see ARCHITECTURE.md).
macro_rules! migrations {
    ($($module:ident => $revision:literal),+ $(,)?) => {
        $(mod $module;)+

        /// The migrations, oldest first, with the Alembic revision each one mirrors.
        pub const ALEMBIC_REVISIONS: &[(&str, &str)] = &[$((stringify!($module), $revision)),+];

        pub struct Migrator;

        #[async_trait::async_trait]
        impl MigratorTrait for Migrator {
            fn migrations() -> Vec<Box<dyn MigrationTrait>> {
                vec![$(Box::new($module::Migration)),+]
            }
        }
    };
}

migrations! {
    m20251007_000001_initial_schema => "001",
    m20251008_000002_add_user_password => "002",
}

/// The Alembic revision a migration mirrors.
pub fn alembic_revision(migration_name: &str) -> Option<&'static str> {
    ALEMBIC_REVISIONS
        .iter()
        .find(|(name, _)| *name == migration_name)
        .map(|(_, rev)| *rev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_has_an_alembic_revision_in_order() {
        let names: Vec<String> = Migrator::migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        let mapped: Vec<String> = ALEMBIC_REVISIONS
            .iter()
            .map(|(n, _)| (*n).to_owned())
            .collect();
        assert_eq!(names, mapped);
    }
}
