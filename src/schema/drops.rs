//! What `migrate down` drops, for its confirmation prompt and report: derived by
//! diffing adjacent snapshots, with row estimates for the tables concerned.

use sea_orm::DbBackend;
use serde::Serialize;

use super::model::Schema;
use super::snapshots::expected;
use crate::db::Db;
use crate::error::Result;
use crate::migrations::row_estimates;

/// What a revert will drop, for the confirmation prompt.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Drop {
    /// `table`, `column` or `type`.
    pub kind: &'static str,
    pub table: Option<String>,
    pub name: String,
    /// Estimated rows in the table (PostgreSQL: planner statistics; SQLite: exact).
    pub estimated_rows: Option<i64>,
}

/// What reverting the migrations `reverted` (in run order, newest first) drops: the
/// objects of each version's snapshot that the version before it does not have (the
/// snapshots are made from the migrations, so this is what their `down` removes).
pub fn reverting(backend: DbBackend, reverted: &[usize]) -> Vec<Drop> {
    let mut out = Vec::new();
    for &i in reverted {
        let after = expected(i, backend);
        let before = match i.checked_sub(1) {
            Some(prev) => expected(prev, backend),
            None => Schema::default(),
        };
        for (name, table) in &after.tables {
            match before.tables.get(name) {
                None => out.push(Drop {
                    kind: "table",
                    table: Some(name.clone()),
                    name: name.clone(),
                    estimated_rows: None,
                }),
                Some(old) => out.extend(
                    table
                        .columns
                        .iter()
                        .filter(|c| old.column(&c.name).is_none())
                        .map(|c| Drop {
                            kind: "column",
                            table: Some(name.clone()),
                            name: c.name.clone(),
                            estimated_rows: None,
                        }),
                ),
            }
        }
        out.extend(
            after
                .enums
                .keys()
                .filter(|e| !before.enums.contains_key(*e))
                .map(|e| Drop {
                    kind: "type",
                    table: None,
                    name: e.clone(),
                    estimated_rows: None,
                }),
        );
    }
    out
}

/// Estimated row counts of the tables in `drops`.
pub async fn estimate_rows(db: &Db, drops: &mut [Drop]) -> Result<()> {
    let tables: Vec<String> = drops.iter().filter_map(|d| d.table.clone()).collect();
    let counts = row_estimates(db, &tables).await?;
    for d in drops.iter_mut() {
        if let Some(t) = &d.table {
            d.estimated_rows = counts.get(t).copied();
        }
    }
    Ok(())
}
