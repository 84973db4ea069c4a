//! The schema engine shared by `verify-schema` and `baseline`:
//!
//! - [`snapshots`]: the schema each migration version must have, per backend, generated
//!   from the migrations (never written by hand);
//! - [`introspect`]: the live schema, read from the catalog with a constant number
//!   of queries (no query per table);
//! - [`diff`]: expected vs live, as findings with a severity and the SQL that fixes them;
//! - [`drops`]: what reverting migrations drops (adjacent snapshots diffed);
//! - [`foreign`]: a database that is another application's, recognized up front;
//! - [`adopt`]: recording the version a schema already is (baseline, and `upgrade` of
//!   an Alembic-managed database).

pub mod adopt;
pub mod check;
pub mod diff;
pub mod drops;
pub mod foreign;
pub mod introspect;
pub mod model;
pub mod snapshots;

pub use diff::{Drift, Severity, diff};
pub use model::Schema;
