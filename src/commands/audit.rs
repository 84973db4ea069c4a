//! `audit suspicious-accounts`: the post-deploy security audit. Each rule is SQL that
//! runs in the database (PostgreSQL `->>`, SQLite `json_extract`) inside one read-only
//! snapshot; rows stream back and become findings with evidence.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::NaiveDateTime;
use clap::{Args, Subcommand};
use sea_orm::DbBackend;
use serde::Serialize;
use serde_json::Value;

use super::{Ctx, FailOn};
use crate::accounts::check_org_id;
use crate::audit::rules::{Params, Rule};
use crate::audit::{self, Finding, ProvenanceCheck, Risk, RuleCount, Skipped, Tally};
use crate::db;
use crate::commands::Done;
use crate::spec::{Fleet, Grants, Info, Privilege, Work};
use crate::error::Outcome;
use crate::error::Result;
use crate::flags::Format;
use crate::output::{Output, Report, csv_cell, plural, shown};
use crate::records;
use crate::records::parse_timestamp;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Find accounts that abused the fixed registration hole, and accounts under attack.
    SuspiciousAccounts(SuspiciousArgs),
}

#[derive(Debug, Args)]
pub struct SuspiciousArgs {
    /// The window for event rules: a duration back from now (7d, 24h, 90m) or a
    /// timestamp (2026-11-01, 2026-11-01T12:00:00, naive UTC).
    #[arg(long, value_name = "DURATION|TIMESTAMP", default_value = "7d", value_parser = parse_since)]
    pub since: Since,

    /// When the registration fix was deployed (naive UTC): enables registered-before-fix.
    #[arg(long, value_name = "TIMESTAMP", value_parser = parse_recent_timestamp)]
    pub fixed_at: Option<NaiveDateTime>,

    /// Only this organization.
    #[arg(long, value_name = "ORG_ID")]
    pub org: Option<String>,

    /// Run only these rules (repeatable). Default: all.
    #[arg(long = "rule", value_name = "NAME", value_parser = rule_parser())]
    pub rules: Vec<Rule>,

    /// Failed logins for one email within 60 seconds that make a brute-force finding.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub failed_threshold: u32,

    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Critical)]
    pub fail_on: FailOn,

    /// Print each rule's SQL instead of running it.
    #[arg(long)]
    pub show_sql: bool,
}

/// `--rule NAME`: the core's rules by name, with the names as possible values (the
/// core knows nothing of clap).
fn rule_parser() -> impl clap::builder::TypedValueParser<Value = Rule> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Rule::ALL.map(Rule::name))
        .map(|name| Rule::from_name(&name).expect("one of the listed names"))
}

#[derive(Debug, Clone, Copy)]
pub enum Since {
    Ago(Duration),
    At(NaiveDateTime),
}

impl Since {
    fn resolve(self, now: NaiveDateTime) -> NaiveDateTime {
        match self {
            Since::At(t) => t,
            Since::Ago(d) => now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX),
        }
    }
}

/// The earliest timestamp the audit takes (`--since`, `--fixed-at`): the database
/// types take earlier ones only in part (PostgreSQL has no year 0), and no audit row
/// predates the API.
const EARLIEST: &str = "1900-01-01";

/// A naive-UTC timestamp not before [`EARLIEST`].
fn parse_recent_timestamp(s: &str) -> std::result::Result<NaiveDateTime, String> {
    let t = parse_timestamp(s)?;
    let earliest = parse_timestamp(EARLIEST)?;
    if t < earliest {
        return Err(format!(
            "'{s}' is before {EARLIEST}: the accepted range is {EARLIEST} to now (naive UTC)"
        ));
    }
    Ok(t)
}

fn parse_since(s: &str) -> std::result::Result<Since, String> {
    if parse_timestamp(s).is_ok() {
        let t = parse_recent_timestamp(s)?;
        if t > records::now() {
            return Err(format!(
                "'{s}' is in the future (now is {} UTC); --since is the start of the window",
                records::iso(records::now())
            ));
        }
        return Ok(Since::At(t));
    }
    let d = humantime::parse_duration(s.trim()).map_err(|_| {
        format!("'{s}' is neither a duration (7d, 24h) nor a timestamp (2026-11-01T12:00:00)")
    })?;
    if d > Duration::from_secs(100 * 365 * 86400) {
        return Err(format!("'{s}' is more than 100 years"));
    }
    Ok(Since::Ago(d))
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AuditSummary {
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
    pub by_rule: Vec<RuleCount>,
    /// audit_logs rows of the actions the rules read whose details are not a JSON
    /// object or lack a key the rules need (email; role for registrations).
    pub unparseable_rows: i64,
    /// The window of the event rules.
    pub since: String,
    pub fixed_at: Option<String>,
    pub rules_run: Vec<Rule>,
    /// Rules that did not run because the database's revision lacks a column they
    /// read (e.g. users.password_hash before revision 002), or no audit key is
    /// configured (forged-provenance).
    pub skipped: Vec<Skipped>,
    /// Whether ecomind-admin's own audit rows were authenticated with an audit key.
    pub provenance: ProvenanceCheck,
}

/// The last line of `--format jsonl`: the report without its findings (each was a
/// line of its own, in the order the rules produced them).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AuditSummaryLine {
    pub database: String,
    pub summary: AuditSummary,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AuditReport {
    pub database: String,
    pub findings: Vec<Finding>,
    pub summary: AuditSummary,
}

impl Report for AuditReport {
    fn render(&self, out: &mut String, ui: &Output) {
        out.push_str(&heading(
            &self.database,
            &self.summary.since,
            ui.stdout_width(),
        ));
        if self.findings.is_empty() {
            let _ = writeln!(out, "No findings.");
        }
        for f in &self.findings {
            out.push_str(&finding_block(f, ui.stdout_width()));
        }
        out.push_str(&summary_text(&self.summary, ui.stdout_width()));
    }
}

fn heading(database: &str, since: &str, width: Option<usize>) -> String {
    crate::output::wrap(
        &format!("database: {}   since: {since}", shown(database)),
        width,
    ) + "\n"
}

/// One finding as a block of lines (the audit's human form, streamed): severity and
/// rule; the account; the message; each piece of evidence on a line of its own. On a
/// terminal each line is cut to its width (`…`); piped, values are whole.
fn finding_block(f: &Finding, width: Option<usize>) -> String {
    let mut lines = vec![format!(
        "{} {}",
        format!("{:?}", f.severity).to_uppercase(),
        f.rule.name()
    )];
    let who: Vec<String> = [
        f.org_id.as_deref().map(|o| format!("org {}", shown(o))),
        f.user_id.as_deref().map(|u| format!("user {}", shown(u))),
        f.email.as_deref().map(|e| shown(e).into_owned()),
        f.role.as_deref().map(|r| shown(r).into_owned()),
        f.at.as_deref().map(|a| format!("at {a}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !who.is_empty() {
        lines.push(format!("  {}", who.join(" · ")));
    }
    let message = crate::output::wrap(&format!("  {}", shown(&f.message)), width);
    lines.extend(message.lines().map(str::to_owned));
    if let Value::Object(map) = &f.evidence {
        for (k, v) in map {
            let v = match v {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            lines.push(format!("  evidence {}: {}", shown(k), shown(&v)));
        }
    }
    let mut out = String::new();
    for line in lines {
        out.push_str(&crate::output::fit(&line, width));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// The summary lines, wrapped to `width` on a terminal.
fn summary_text(s: &AuditSummary, width: Option<usize>) -> String {
    let text = summary_lines(s);
    if width.is_none() {
        return text;
    }
    text.lines()
        .map(|l| crate::output::wrap(l, width) + "\n")
        .collect()
}

fn summary_lines(s: &AuditSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "summary: {} critical, {} warning, {} info",
        s.critical, s.warning, s.info
    );
    let per_rule: Vec<String> = s
        .by_rule
        .iter()
        .filter(|r| r.findings > 0)
        .map(|r| format!("{}: {}", r.rule.name(), r.findings))
        .collect();
    if !per_rule.is_empty() {
        let _ = writeln!(out, "by rule: {}", per_rule.join(", "));
    }
    for skipped in &s.skipped {
        let _ = writeln!(out, "skipped: {} ({})", skipped.rule.name(), skipped.reason);
    }
    let p = &s.provenance;
    let _ = match &p.key_id {
        Some(id) => writeln!(
            out,
            "provenance: ecomind-admin's rows checked with audit key {id}: {} of {} verified",
            p.rows_verified, p.rows_claiming
        ),
        None => writeln!(
            out,
            "provenance: unauthenticated (no audit key: rows that say ecomind-admin are trusted as written)"
        ),
    };
    if s.unparseable_rows > 0 {
        let _ = writeln!(
            out,
            "unparseable audit rows (details not an object, or missing email, role or new_role): {}",
            s.unparseable_rows
        );
    }
    out
}

const CSV_HEADER: [&str; 10] = [
    "severity",
    "rule",
    "org_id",
    "user_id",
    "email",
    "role",
    "created_at",
    "at",
    "message",
    "evidence",
];

/// One finding as a CSV record: formula-safe cells, escaped only for a terminal; the
/// evidence as JSON (valid JSON, with what a terminal would act on as `\uXXXX`).
fn csv_row(f: &Finding, for_terminal: bool) -> Result<Vec<u8>> {
    let cells = [
        format!("{:?}", f.severity).to_lowercase(),
        f.rule.name().to_owned(),
        f.org_id.clone().unwrap_or_default(),
        f.user_id.clone().unwrap_or_default(),
        f.email.clone().unwrap_or_default(),
        f.role.clone().unwrap_or_default(),
        f.created_at.clone().unwrap_or_default(),
        f.at.clone().unwrap_or_default(),
        f.message.clone(),
    ];
    let evidence = crate::text::json_safe(&f.evidence.to_string()).into_owned();
    crate::output::csv_record(
        cells
            .iter()
            .map(|c| csv_cell(c, for_terminal))
            .chain(std::iter::once(evidence)),
    )
}

pub const SUSPICIOUS_ACCOUNTS: Info = Info {
    name: "audit suspicious-accounts",
    database: true,
    csv: true,
    fleet: Fleet::Each,
    grants: Some(Grants {
        row: "audit",
        writes: false,
        create_in_schema: false,
        owns_tables: false,
        tables: &[("users", Privilege::Select), ("audit_logs", Privilege::Select)],
    }),
    fails_when: Some("audit findings at or above `--fail-on` under `audit`"),
    schema: Some(|info| {
        crate::contracts::streamed::<AuditReport, crate::audit::Finding, AuditSummaryLine>(
            info, "finding",
        )
    }),
};

impl super::Spec for AuditCommand {
    const INFOS: &'static [&'static Info] = &[&SUSPICIOUS_ACCOUNTS];

    fn info(&self) -> &'static Info {
        match self {
            AuditCommand::SuspiciousAccounts(_) => &SUSPICIOUS_ACCOUNTS,
        }
    }

    fn work(&self) -> Work {
        match self {
            AuditCommand::SuspiciousAccounts(_) => Work::ReadOnly,
        }
    }

    fn lock(&mut self) -> Option<&mut super::LockArgs> {
        match self {
            AuditCommand::SuspiciousAccounts(_) => None,
        }
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        match self {
            AuditCommand::SuspiciousAccounts(args) => suspicious(args, ctx).await,
        }
    }
}

async fn suspicious(args: &SuspiciousArgs, ctx: &Ctx) -> Result<Done> {
    let ui = &ctx.ui;
    if let Some(org) = &args.org {
        check_org_id(org)?;
    }
    let now = records::now();
    let since = args.since.resolve(now);
    let selected: Vec<Rule> = if args.rules.is_empty() {
        Rule::ALL.to_vec()
    } else {
        Rule::ALL
            .iter()
            .copied()
            .filter(|r| args.rules.contains(r))
            .collect()
    };
    let params = Params {
        since,
        fixed_at: args.fixed_at,
        org: args.org.clone(),
        failed_threshold: args.failed_threshold,
        key: crate::provenance::configured()?,
        verified: None,
    };
    if args.show_sql {
        return show_sql(&selected, ctx.config()?.backend, &params, ui).map(Done::from);
    }
    // JSON is one document (it holds the findings, sorted); every other format is
    // written finding by finding as the audit produces them (memory stays flat).
    let (worst, unparseable_rows, report) = ctx
        .with_db(db::Open::Existing, async |db| {
            if ui.result_format() == Format::Json {
                buffered(db, &params, selected, args, ui).await
            } else {
                let (worst, unparseable) = streamed(db, &params, selected, args, ui).await?;
                Ok((worst, unparseable, None))
            }
        })
        .await?;
    if unparseable_rows > 0 {
        ui.warn(format!(
            "{} details the rules cannot read; they are counted in the summary",
            plural(
                unparseable_rows,
                "audit_logs row has",
                "audit_logs rows have"
            )
        ));
    }
    let threshold = args.fail_on.threshold();
    let outcome = if threshold.is_some_and(|t| worst.is_some_and(|w| w >= t)) {
        Outcome::CheckFailed
    } else {
        Outcome::Success
    };
    Ok(match report {
        Some(report) => Done::report(report, outcome),
        None => Done::from(outcome),
    })
}

/// `--format jsonl`, `csv` and the human form: each finding written as it is produced
/// (memory stays flat, in the rules' order), then the summary (JSON Lines: its line;
/// CSV has none). The worst severity found and the unparseable rows.
async fn streamed(
    db: &db::Db,
    params: &Params,
    selected: Vec<Rule>,
    args: &SuspiciousArgs,
    ui: &Output,
) -> Result<(Option<Risk>, i64)> {
    let width = ui.stdout_width();
    let for_terminal = ui.stdout_is_terminal();
    let mut any = false;
    let mut sink = |f: Finding| -> Result<()> {
        match ui.format {
            Format::Jsonl => ui.line("finding", &f),
            Format::Csv => {
                if !any {
                    ui.write_stdout(&crate::output::csv_record(CSV_HEADER)?)?;
                }
                ui.write_stdout(&csv_row(&f, for_terminal)?)
            }
            _ => {
                if !any {
                    ui.write_text(&heading(&db.url, &records::iso(params.since), width))?;
                }
                ui.write_text(&finding_block(&f, width))
            }
        }
        .map(|()| any = true)
    };
    let tally = audit::stream(db, params, &selected, ui, &mut sink).await?;
    let worst = tally.worst();
    let summary = summarize(tally, selected, args, params.since);
    let unparseable = summary.unparseable_rows;
    let database = db.url.clone();
    match ui.format {
        Format::Jsonl => ui.line("summary", &AuditSummaryLine { database, summary })?,
        Format::Csv => {
            if !any {
                ui.write_stdout(&crate::output::csv_record(CSV_HEADER)?)?;
            }
            ui.finish_streamed();
        }
        _ => {
            if !any {
                ui.write_text(&heading(&database, &summary.since, width))?;
                ui.write_text("No findings.\n")?;
            }
            ui.write_text(&summary_text(&summary, width))?;
            ui.finish_streamed();
        }
    }
    Ok((worst, unparseable))
}

/// `--format json` (and the table beside `--output`'s JSON file): the findings sorted
/// (risk first, then time) in one document, serialized straight to stdout.
async fn buffered(
    db: &db::Db,
    params: &Params,
    selected: Vec<Rule>,
    args: &SuspiciousArgs,
    ui: &Output,
) -> Result<(Option<Risk>, i64, Option<AuditReport>)> {
    let (findings, tally) = audit::collect(db, params, &selected, ui).await?;
    let worst = tally.worst();
    let summary = summarize(tally, selected, args, params.since);
    let unparseable = summary.unparseable_rows;
    let report = AuditReport {
        database: db.url.clone(),
        findings,
        summary,
    };
    Ok((worst, unparseable, Some(report)))
}

/// `--show-sql`: the statements the rules would run, without connecting.
fn show_sql(
    selected: &[Rule],
    backend: DbBackend,
    params: &Params,
    ui: &Output,
) -> Result<Outcome> {
    let mut out = String::new();
    for (label, sql) in crate::audit::statements(backend, params, selected) {
        let _ = writeln!(out, "-- {label}\n{sql};\n");
    }
    ui.write_stdout(out.as_bytes())?;
    Ok(Outcome::Success)
}

/// The counts per severity and per rule, and what ran.
fn summarize(
    tally: Tally,
    selected: Vec<Rule>,
    args: &SuspiciousArgs,
    since: NaiveDateTime,
) -> AuditSummary {
    AuditSummary {
        critical: tally.count(Risk::Critical),
        warning: tally.count(Risk::Warning),
        info: tally.count(Risk::Info),
        by_rule: tally.by_rule,
        unparseable_rows: tally.unparseable_rows,
        since: records::iso(since),
        fixed_at: args.fixed_at.map(records::iso),
        rules_run: selected
            .into_iter()
            .filter(|r| !tally.skipped.iter().any(|s| s.rule == *r))
            .collect(),
        skipped: tally.skipped,
        provenance: tally.provenance,
    }
}
