//! One module per subcommand, each owning its `Args` and `run`.

pub mod audit;
pub mod baseline;
pub mod completions;
pub mod create_admin;
pub mod create_org;
pub mod doctor;
pub mod man;
pub mod migrate;
pub mod verify_schema;
