//! Integration tests: the real binary against real PostgreSQL and SQLite.

// The product's output must go through output::escape (clippy.toml); a test may print.
#![allow(clippy::disallowed_macros)]

mod accounts;
mod api;
mod audit;
mod audit_pass;
mod backup;
mod bad_input;
mod bad_input_matrix;
mod baseline;
mod bootstrap;
mod cli_meta;
mod common;
mod compat;
mod contracts;
mod coverage;
mod emails;
mod environments;
mod field_safety;
mod field_safety2;
mod fleet;
mod hardening;
mod metrics;
mod migrate;
mod migrate_safety_pg;
mod migration_integrity;
mod operator;
mod output_snapshots;
mod readme;
mod schema_snapshots;
mod sqlite_errors;
mod upgrade;
mod verify;
