//! One module per subcommand, each owning its `Args` and `run`.

pub mod baseline;
pub mod completions;
pub mod migrate;
pub mod verify_schema;
