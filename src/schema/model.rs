//! A database schema as the checks see it: backend-neutral data, compared by value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Tables by name, and enum types by name (PostgreSQL only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Schema {
    pub tables: BTreeMap<String, Table>,
    /// Enum type name -> labels in order.
    pub enums: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Table {
    pub name: String,
    /// In column order.
    pub columns: Vec<Column>,
    pub primary_key: Option<Constraint>,
    pub uniques: Vec<Constraint>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Indexes that do not back a primary key or unique constraint.
    pub indexes: Vec<Index>,
    /// SQLite: allowed labels of enum-like text columns (CHECK col IN (...)), by column.
    pub checks: BTreeMap<String, Vec<String>>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Column {
    pub name: String,
    /// The catalog's spelling: `character varying`, `double precision`, `role`, ... on
    /// PostgreSQL (format_type); the declared type on SQLite (`varchar`, `datetime_text`).
    pub data_type: String,
    pub nullable: bool,
    pub default: Option<String>,
}

/// A primary-key or unique constraint. SQLite constraints have no names (None).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Constraint {
    pub name: Option<String>,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct ForeignKey {
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Index {
    pub name: String,
    pub columns: Vec<String>,
    pub unique: bool,
}
