//! The machine interface's contracts: one JSON Schema (draft 2020-12) per command,
//! describing everything the command prints on stdout with `--format json` or
//! `--format jsonl` (its document, its JSON Lines, its error document, and its fleet
//! forms), generated from the output types so that the types are the source.
//! `cargo xtask schemas` writes them to `schemas/`; a test fails when a committed one
//! is stale.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde::Serialize;
use serde_json::{Value, json};

use crate::accounts::{AccountLock, OrgListing, PasswordReset, RoleChange, UserListing};
use crate::audit::Finding;
use crate::commands::audit::{AuditReport, AuditSummaryLine};
use crate::commands::baseline::BaselineReport;
use crate::commands::create_admin::UserReport;
use crate::commands::create_org::OrgReport;
use crate::commands::doctor::DoctorReport;
use crate::commands::migrate::{CurrentReport, RunReport, StatusReport};
use crate::commands::upgrade::UpgradeReport;
use crate::commands::verify_schema::VerifySummaryLine;
use crate::fleet::{FleetReport, FleetResult, FleetSummaryLine};
use crate::output::{ErrorDocument, FORMAT_VERSION, ListSummary};
use crate::schema::Drift;
use crate::schema::check::VerifyReport;

/// Where the committed schemas live, relative to the repository.
pub const DIR: &str = "schemas";

/// The `command` of an error document when the command line names no command that
/// prints JSON (it did not parse).
pub const TOOL: &str = "ecomind-admin";

/// `users list --format json`.
#[derive(Serialize, JsonSchema)]
struct UsersDocument {
    users: Vec<UserListing>,
    count: usize,
}

/// `orgs list --format json`.
#[derive(Serialize, JsonSchema)]
struct OrgsDocument {
    orgs: Vec<OrgListing>,
    count: usize,
}

/// One command's schema, and the file it is committed as (`schemas/<file>`).
pub struct Contract {
    pub command: &'static str,
    pub file: String,
    pub schema: Value,
}

/// The file name of a command's schema: `audit suspicious-accounts` ->
/// `audit-suspicious-accounts.json`.
pub fn file_name(command: &str) -> String {
    format!("{}.json", command.replace(' ', "-"))
}

/// Every command's contract (`man` and `completions` print no JSON), and the tool's
/// own for a command line that names none (only its error forms).
pub fn all() -> Vec<Contract> {
    vec![
        document::<RunReport>("migrate up", true),
        document::<RunReport>("migrate down", true),
        document::<CurrentReport>("migrate current", true),
        document::<StatusReport>("migrate status", true),
        document::<BaselineReport>("baseline", true),
        streamed::<VerifyReport, Drift, VerifySummaryLine>("verify-schema", "finding", true),
        document::<OrgReport>("create-org", false),
        document::<UserReport>("create-admin", false),
        streamed::<AuditReport, Finding, AuditSummaryLine>(
            "audit suspicious-accounts",
            "finding",
            true,
        ),
        streamed::<UsersDocument, UserListing, ListSummary>("users list", "user", false),
        document::<RoleChange>("users set-role", false),
        document::<PasswordReset>("users reset-password", false),
        document::<AccountLock>("users lock", false),
        document::<AccountLock>("users unlock", false),
        streamed::<OrgsDocument, OrgListing, ListSummary>("orgs list", "org", false),
        document::<DoctorReport>("doctor", true),
        document::<crate::commands::verify_deployment::DeploymentReport>(
            "verify-deployment",
            false,
        ),
        document::<UpgradeReport>("upgrade", true),
        Builder::new(TOOL).finish(false),
    ]
}

/// A command whose JSON Lines form is its document on one line (`type: "result"`).
fn document<D: JsonSchema>(command: &'static str, fleet: bool) -> Contract {
    let mut b = Builder::new(command);
    let doc = b.reference::<D>();
    b.alternative(
        "document",
        "--format json",
        &[doc.clone(), b.envelope(None)],
    );
    b.alternative(
        "result line",
        "--format jsonl: the document on one line",
        &[doc, b.envelope(Some("result"))],
    );
    b.finish(fleet)
}

/// A command whose JSON Lines form is a line per item as it is produced (`type:
/// item_type`), then a summary line (`type: "summary"`).
fn streamed<D: JsonSchema, I: JsonSchema, S: JsonSchema>(
    command: &'static str,
    item_type: &'static str,
    fleet: bool,
) -> Contract {
    let mut b = Builder::new(command);
    let doc = b.reference::<D>();
    b.alternative("document", "--format json", &[doc, b.envelope(None)]);
    let item = b.reference::<I>();
    b.alternative(
        &format!("{item_type} line"),
        "--format jsonl: one line per item, as it is produced",
        &[item, b.envelope(Some(item_type))],
    );
    let summary = b.reference::<S>();
    b.alternative(
        "summary line",
        "--format jsonl: the last line of a complete run",
        &[summary, b.envelope(Some("summary"))],
    );
    b.finish(fleet)
}

struct Builder {
    command: &'static str,
    generator: SchemaGenerator,
    any_of: Vec<Value>,
}

impl Builder {
    fn new(command: &'static str) -> Self {
        Self {
            command,
            // What we write (an Option is written as null, so it is required; a
            // field skipped when empty is not), not what we would accept.
            generator: SchemaSettings::draft2020_12()
                .for_serialize()
                .into_generator(),
            any_of: Vec::new(),
        }
    }

    fn reference<T: JsonSchema>(&mut self) -> Value {
        self.generator.subschema_for::<T>().to_value()
    }

    /// What every document and line carries: `format_version`, `command`, and in JSON
    /// Lines the line's `type`.
    fn envelope(&self, line_type: Option<&str>) -> Value {
        let mut required = vec!["format_version", "command"];
        let mut properties = json!({
            "format_version": {"const": FORMAT_VERSION},
            "command": {"const": self.command},
        });
        if let Some(t) = line_type {
            required.push("type");
            properties["type"] = json!({"const": t});
        }
        json!({"type": "object", "required": required, "properties": properties})
    }

    fn alternative(&mut self, title: &str, description: &str, parts: &[Value]) {
        self.any_of.push(json!({
            "title": title,
            "description": description,
            "allOf": parts,
        }));
    }

    /// Add the error forms and, for a command that runs on fleets, the fleet forms; the
    /// whole schema.
    fn finish(mut self, fleet: bool) -> Contract {
        let error = self.reference::<ErrorDocument>();
        self.alternative(
            "error",
            "--format json: a failure that printed no result",
            &[error.clone(), self.envelope(None)],
        );
        self.alternative(
            "error line",
            "--format jsonl: a failure (after any lines already printed)",
            &[error.clone(), self.envelope(Some("error"))],
        );
        if fleet {
            self.fleet_alternatives();
        }
        let mut defs = serde_json::Map::new();
        for (name, schema) in self.generator.take_definitions(true) {
            defs.insert(name, schema);
        }
        if let Some(report) = defs
            .get_mut("FleetResult")
            .and_then(|r| r.pointer_mut("/properties/report"))
        {
            // Each database's own document: the first alternative is this command's.
            let own = self.any_of[0].clone();
            *report = json!({"anyOf": [own, error, {"type": "null"}]});
        }
        let command = self.command;
        Contract {
            command,
            file: file_name(command),
            schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": format!("ecomind-admin {command}: --format json / jsonl output"),
                "description": format!(
                    "format_version {FORMAT_VERSION}: additions keep it; a removal or a change of meaning bumps it"
                ),
                "anyOf": self.any_of,
                "$defs": defs,
            }),
        }
    }

    fn fleet_alternatives(&mut self) {
        let report = self.reference::<FleetReport>();
        self.alternative(
            "fleet document",
            "--format json on an environment with several databases",
            &[report, self.envelope(None)],
        );
        let result = self.reference::<FleetResult>();
        self.alternative(
            "fleet database line",
            "--format jsonl on a fleet: one line per database as it finishes",
            &[result, self.envelope(Some("database"))],
        );
        let summary = self.reference::<FleetSummaryLine>();
        self.alternative(
            "fleet summary line",
            "--format jsonl on a fleet: the last line",
            &[summary, self.envelope(Some("summary"))],
        );
    }
}

/// Every file of `schemas/`, as committed: name and text (pretty JSON, one newline).
pub fn files() -> Vec<(String, String)> {
    all()
        .into_iter()
        .map(|c| {
            let text = serde_json::to_string_pretty(&c.schema).unwrap_or_default() + "\n";
            (c.file, text)
        })
        .collect()
}
