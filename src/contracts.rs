//! The machine interface's contracts: one JSON Schema (draft 2020-12) per command,
//! describing everything the command prints on stdout with `--format json` or
//! `--format jsonl` (its document, its JSON Lines, its error document, and its fleet
//! forms), generated from the output types so that the types are the source.
//! `cargo xtask schemas` writes them to `schemas/`; a test fails when a committed one
//! is stale.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Value, json};

use crate::fleet_report::{FleetReport, FleetResult, FleetSummaryLine};
use crate::output::{ErrorDocument, FORMAT_VERSION};
use crate::spec::{Fleet, Info};

/// Where the committed schemas live, relative to the repository.
pub const DIR: &str = "schemas";

/// The `command` of an error document when the command line names no command that
/// prints JSON (it did not parse).
pub const TOOL: &str = "ecomind-admin";

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

impl Contract {
    pub fn new(command: &'static str, schema: Value) -> Self {
        Contract {
            command,
            file: file_name(command),
            schema,
        }
    }
}

/// The tool's own schema, for a command line that names no command: only the error
/// forms.
pub fn tool() -> Value {
    Builder::new(TOOL).finish(false)
}

/// A command whose JSON Lines form is its document on one line (`type: "result"`).
pub fn document<D: JsonSchema>(info: &Info) -> Value {
    let mut b = Builder::new(info.name);
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
    b.finish(info.fleet != Fleet::One)
}

/// A command whose JSON Lines form is a line per item as it is produced (`type:
/// item_type`), then a summary line (`type: "summary"`).
pub fn streamed<D: JsonSchema, I: JsonSchema, S: JsonSchema>(
    info: &Info,
    item_type: &'static str,
) -> Value {
    let mut b = Builder::new(info.name);
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
    b.finish(info.fleet != Fleet::One)
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
    fn finish(mut self, fleet: bool) -> Value {
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
        json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": format!("ecomind-admin {command}: --format json / jsonl output"),
                "description": format!(
                    "format_version {FORMAT_VERSION}: additions keep it; a removal or a change of meaning bumps it"
                ),
                "anyOf": self.any_of,
                "$defs": defs,
        })
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
