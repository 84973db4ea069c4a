//! The schema engine shared by `verify-schema` and `baseline`:
//!
//! - [`expected`]: the schema each migration version must have, per backend;
//! - [`introspect`]: the live schema, read from the catalog with a constant number
//!   of queries (no query per table);
//! - [`diff`]: expected vs live, as findings with a severity and the SQL that fixes them.

pub mod diff;
pub mod expected;
pub mod introspect;
pub mod model;

pub use diff::{Finding, Severity, diff};
pub use model::Schema;
