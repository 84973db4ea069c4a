//! What the rest of the program asks about a command, as data: each command states its
//! [`Info`] once, in its own module (`src/commands/*.rs`), and dispatch, the contracts,
//! the fleet, the signal handler, the privilege checks and the docs read it from there
//! (`commands::Command::all()` lists them). Every field is required: a new command decides
//! each one, nothing falls to a default.

use serde_json::Value;

/// What a command does to the database as it runs: what the line a signal prints says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// It touches no database (`man`, `completions`): no context, no signal handler.
    Offline,
    /// Reads only (also every `--dry-run`).
    ReadOnly,
    /// Rows in one transaction (create-org, create-admin, users set-role, ...).
    Rows,
    /// Migrations or a baseline: the line says which version the database is at now.
    Schema,
    /// verify-deployment's fixtures: removed before the process exits.
    Fixtures,
    /// `restore`: one transaction, rolled back unless it committed.
    Restore,
}

/// How a run over several databases (a fleet) treats the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fleet {
    /// Refused: it acts on one database (rows, a person's account).
    One,
    /// Run on each database; a database passes when the command does.
    Each,
    /// Run on each, and with `--canary K` the canaries must then pass verify-schema
    /// (when the run wrote) before the rest start (`migrate up`).
    Migrate,
    /// Run on each; then each database's version is compared with this build's head,
    /// and one that is behind or ahead fails the gate (`migrate status` / `current`).
    VersionGate,
}

/// A table privilege (PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    Select,
    Insert,
    Update,
    Delete,
}

impl Privilege {
    pub fn sql(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
        }
    }
}

/// What the connected role needs to run a command: `doctor` reports it per `row`
/// (commands that need the same share a row: `migrate` for up and down), `upgrade`'s
/// pre-flight asks it of `migrate`.
#[derive(Debug, Clone, Copy)]
pub struct Grants {
    /// The name `doctor` lists.
    pub row: &'static str,
    /// It writes: a read-only session (a standby, `default_transaction_read_only`, a
    /// SQLite file opened read-only) cannot run it.
    pub writes: bool,
    /// CREATE on the schema (it creates tables).
    pub create_in_schema: bool,
    /// Ownership of the API's tables (ALTER, DROP).
    pub owns_tables: bool,
    /// The table privileges it needs (a missing table: CREATE on the schema instead).
    pub tables: &'static [(&'static str, Privilege)],
}

/// What `migrate up` / `down` need, and so `upgrade`'s pre-flight: CREATE on the
/// schema, and the API's tables owned (ALTER, DROP).
pub const MIGRATE_GRANTS: Grants = Grants {
    row: "migrate",
    writes: true,
    create_in_schema: true,
    owns_tables: true,
    tables: &[],
};

/// One command, as the rest of the program sees it.
#[derive(Debug)]
pub struct Info {
    /// As typed: `migrate up`, `create-admin`.
    pub name: &'static str,
    /// It works on a database (`man` and `completions` do not).
    pub database: bool,
    /// It writes `--format csv` (a list of rows).
    pub csv: bool,
    pub fleet: Fleet,
    /// What the role needs (None: nothing beyond reading the API's tables, or no
    /// database at all).
    pub grants: Option<Grants>,
    /// When it exits 1 (a check found something), as `--help`'s exit-code list says
    /// it; None: it never does.
    pub fails_when: Option<&'static str>,
    /// Its JSON Schema (`schemas/<name>.json`): what it prints with `--format json` /
    /// `jsonl`. None: it prints no JSON (`man`, `completions`).
    pub schema: Option<fn(&Info) -> Value>,
}
