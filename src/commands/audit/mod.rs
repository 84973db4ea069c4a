//! `audit suspicious-accounts`: the post-deploy security audit. Each rule is SQL that
//! runs in the database (PostgreSQL `->>`, SQLite `json_extract`) inside one read-only
//! snapshot; rows stream back and become findings with evidence.

pub mod rules;
pub mod sql;

use std::fmt::Write as _;
use std::time::Duration;

use chrono::NaiveDateTime;
use clap::{Args, Subcommand, ValueEnum};
use futures_util::StreamExt;
use sea_orm::{ConnectionTrait, Statement, StreamTrait};
use serde::Serialize;
use serde_json::Value;

use crate::Outcome;
use crate::cli::{Format, GlobalArgs};
use crate::commands::create_org::check_org_id;
use crate::db;
use crate::error::{Error, Result};
use crate::output::{Output, Report, csv_cell, plural, shown};
use crate::records;
use rules::{Params, Rule};

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
    #[arg(long, value_name = "TIMESTAMP", value_parser = parse_timestamp)]
    pub fixed_at: Option<NaiveDateTime>,

    /// Only this organization.
    #[arg(long, value_name = "ORG_ID")]
    pub org: Option<String>,

    /// Run only these rules (repeatable). Default: all.
    #[arg(long = "rule", value_enum, value_name = "NAME")]
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

fn parse_since(s: &str) -> std::result::Result<Since, String> {
    if let Ok(t) = parse_timestamp(s) {
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

/// A naive-UTC timestamp: `2026-11-01`, `2026-11-01T12:00:00[.ffffff]`, space or `T`,
/// an optional trailing `Z`.
pub fn parse_timestamp(s: &str) -> std::result::Result<NaiveDateTime, String> {
    let t = s.trim().trim_end_matches('Z');
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(ts) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(ts);
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight"));
    }
    Err(format!(
        "'{s}' is not a timestamp (expected 2026-11-01 or 2026-11-01T12:00:00, naive UTC)"
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Critical,
    Warning,
    Info,
    Never,
}

impl FailOn {
    fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Critical => Some(Severity::Critical),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Info => Some(Severity::Info),
            FailOn::Never => None,
        }
    }
}

/// One finding: who, what, and the facts that triggered it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub rule: Rule,
    pub org_id: Option<String>,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub role: Option<String>,
    /// The account's created_at (naive UTC ISO-8601).
    pub created_at: Option<String>,
    /// When it happened: the event's time, else the account's creation.
    pub at: Option<String>,
    /// One line for humans.
    pub message: String,
    pub evidence: Value,
}

#[derive(Debug, Serialize)]
pub struct RuleCount {
    pub rule: Rule,
    pub findings: usize,
}

/// A rule that did not run, and why (the database's revision lacks what it reads).
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub rule: Rule,
    pub reason: String,
}

/// What one audit run found.
#[derive(Debug)]
pub struct Collected {
    pub findings: Vec<Finding>,
    pub by_rule: Vec<RuleCount>,
    pub unparseable_rows: i64,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
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
    /// read (e.g. users.password_hash before revision 002).
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub database: String,
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

impl Report for AuditReport {
    fn render(&self, out: &mut String, ui: &Output) {
        let _ = writeln!(
            out,
            "database: {}   since: {}",
            shown(&self.database),
            self.summary.since
        );
        if self.findings.is_empty() {
            let _ = writeln!(out, "No findings.");
        } else {
            let mut t = ui.table(&[
                "severity", "rule", "org", "user", "email", "role", "when", "finding", "evidence",
            ]);
            for f in &self.findings {
                t.add_row(vec![
                    format!("{:?}", f.severity).to_uppercase(),
                    f.rule.name().to_owned(),
                    f.org_id.clone().unwrap_or_default(),
                    f.user_id.clone().unwrap_or_default(),
                    f.email.clone().unwrap_or_default(),
                    f.role.clone().unwrap_or_default(),
                    f.at.clone().unwrap_or_default(),
                    f.message.clone(),
                    evidence_text(&f.evidence),
                ]);
            }
            let _ = writeln!(out, "{t}");
        }
        let s = &self.summary;
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
        if s.unparseable_rows > 0 {
            let _ = writeln!(
                out,
                "unparseable audit rows (details not an object, or missing email/role): {}",
                s.unparseable_rows
            );
        }
    }
}

/// The evidence as `key=value` pairs, for the table (JSON and CSV carry it whole).
fn evidence_text(evidence: &Value) -> String {
    match evidence {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                v => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

impl AuditReport {
    fn csv(&self) -> Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let err = |e: csv::Error| Error::internal(format!("writing CSV: {e}"));
        w.write_record([
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
        ])
        .map_err(err)?;
        for f in &self.findings {
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
                f.evidence.to_string(),
            ];
            w.write_record(cells.iter().map(|c| csv_cell(c)))
                .map_err(err)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| Error::internal(format!("writing CSV: {e}")))?;
        String::from_utf8(bytes).map_err(|e| Error::internal(format!("writing CSV: {e}")))
    }
}

pub async fn run(cmd: &AuditCommand, global: &GlobalArgs, ui: &Output) -> Result<Outcome> {
    match cmd {
        AuditCommand::SuspiciousAccounts(args) => suspicious(args, global, ui).await,
    }
}

/// The hashes of the email keys ([`records::email_key`]) that two or more users share.
async fn shared_address_hashes(
    txn: &sea_orm::DatabaseTransaction,
    backend: sea_orm::DbBackend,
) -> Result<std::collections::HashSet<u64>> {
    let mut seen = std::collections::HashMap::<u64, bool>::new();
    let mut stream = txn
        .stream_raw(Statement::from_string(
            backend,
            "SELECT email FROM users".to_owned(),
        ))
        .await
        .map_err(|e| Error::from_db(e, "running rule case-variant-email"))?;
    while let Some(row) = stream.next().await {
        let row = row.map_err(|e| Error::from_db(e, "reading rule case-variant-email"))?;
        let email: Option<String> = row
            .try_get("", "email")
            .map_err(|e| Error::from_db(e, "reading rule case-variant-email"))?;
        let hash = rules::key_hash(&records::email_key(&email.unwrap_or_default()));
        seen.entry(hash)
            .and_modify(|shared| *shared = true)
            .or_insert(false);
    }
    Ok(seen
        .into_iter()
        .filter_map(|(h, shared)| shared.then_some(h))
        .collect())
}

/// Run `selected` rules in one read-only snapshot: the findings (sorted by severity,
/// then time), the count per rule, the unparseable rows, and the rules skipped because
/// the database's revision lacks what they read. An unknown `--org` is refused (exit 4).
/// Shared with `doctor`.
pub async fn collect(
    db: &db::Db,
    params: &Params,
    selected: &[Rule],
    ui: &Output,
) -> Result<Collected> {
    let txn = db.snapshot().await?;
    let result = async {
        crate::migrations::ensure_api_tables(&txn).await?;
        if let Some(org) = &params.org {
            let found = txn
                .query_one_raw(Statement::from_sql_and_values(
                    db.backend,
                    match db.backend {
                        sea_orm::DbBackend::Postgres => "SELECT 1 AS one FROM orgs WHERE id = $1",
                        _ => "SELECT 1 AS one FROM orgs WHERE id = ?",
                    },
                    [org.clone().into()],
                ))
                .await
                .map_err(|e| Error::from_db(e, "looking up the organization"))?;
            if found.is_none() {
                return Err(Error::refused(
                    format!("organization '{}' not found", shown(org)),
                    "check --org (an id like org_0123456789ab); without --org every organization is audited",
                ));
            }
        }
        let has_password_hash = crate::migrations::has_column(&txn, db.backend, "users", "password_hash").await?;
        let mut findings = Vec::new();
        let mut by_rule = Vec::new();
        let mut skipped = Vec::new();
        for rule in selected {
            if *rule == Rule::PrivilegedWithoutPassword && !has_password_hash {
                let reason = "users.password_hash does not exist (the database is at revision 001; `migrate up` adds it)".to_owned();
                ui.note(format!("rule {} skipped: {reason}", rule.name()));
                skipped.push(Skipped { rule: *rule, reason });
                continue;
            }
            let Some(sql) = rules::sql_for(*rule, db.backend, params) else {
                by_rule.push(RuleCount {
                    rule: *rule,
                    findings: 0,
                });
                continue;
            };
            let pb = ui.spinner(format!("rule {}", rule.name()));
            let before = findings.len();
            // case-variant-email: a first pass counts the addresses (by a hash of their
            // key, so memory stays flat); the second keeps only the shared ones.
            let shared = if *rule == Rule::CaseVariantEmail {
                Some(shared_address_hashes(&txn, db.backend).await?)
            } else {
                None
            };
            let mut stream = txn
                .stream_raw(Statement::from_string(db.backend, sql))
                .await
                .map_err(|e| Error::from_db(e, &format!("running rule {}", rule.name())))?;
            let mut grouped = Vec::new();
            while let Some(row) = stream.next().await {
                let row =
                    row.map_err(|e| Error::from_db(e, &format!("reading rule {}", rule.name())))?;
                if let Some(shared) = &shared {
                    let user = rules::UserRow::read(&row)?;
                    if shared.contains(&user.key_hash()) {
                        grouped.push(user);
                    }
                    continue;
                }
                let f = rules::finding(*rule, &row, params)?;
                if rules::keep(&f) {
                    findings.push(f);
                }
            }
            drop(stream);
            if *rule == Rule::CaseVariantEmail {
                findings.extend(rules::case_variants(grouped, params.org.as_deref()));
            }
            pb.finish_and_clear();
            by_rule.push(RuleCount {
                rule: *rule,
                findings: findings.len() - before,
            });
        }
        let unparseable_rows = rules::count_unparseable(&txn, db.backend, params).await?;
        Ok::<_, Error>(Collected {
            findings,
            by_rule,
            unparseable_rows,
            skipped,
        })
    }
    .await;
    let _ = txn.rollback().await;
    let mut collected = result?;
    // Severity first (critical first), then time.
    collected
        .findings
        .sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.at.cmp(&b.at)));
    Ok(collected)
}

async fn suspicious(args: &SuspiciousArgs, global: &GlobalArgs, ui: &Output) -> Result<Outcome> {
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
    };
    let config = global.database()?;
    if args.show_sql {
        let mut out = String::new();
        for rule in &selected {
            if let Some(sql) = rules::sql_for(*rule, config.backend, &params) {
                let _ = writeln!(out, "-- {}\n{sql};\n", rule.name());
            }
        }
        let _ = writeln!(
            out,
            "-- unparseable rows\n{};",
            rules::unparseable_sql(config.backend, &params)
        );
        ui.write_stdout(out.as_bytes())?;
        return Ok(Outcome::Success);
    }
    let db = db::connect(&config, global.connect_timeout, ui, db::Open::Existing).await?;
    let result = collect(&db, &params, &selected, ui).await;
    db.conn.close().await.ok();
    let Collected {
        findings,
        by_rule,
        unparseable_rows,
        skipped,
    } = result?;
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    let summary = Summary {
        critical: count(Severity::Critical),
        warning: count(Severity::Warning),
        info: count(Severity::Info),
        by_rule,
        unparseable_rows,
        since: records::iso(since),
        fixed_at: args.fixed_at.map(records::iso),
        rules_run: selected
            .into_iter()
            .filter(|r| !skipped.iter().any(|s| s.rule == *r))
            .collect(),
        skipped,
    };
    let failed = args
        .fail_on
        .threshold()
        .is_some_and(|t| findings.iter().any(|f| f.severity >= t));
    let report = AuditReport {
        database: db.url.clone(),
        findings,
        summary,
    };
    if ui.format == Format::Csv {
        ui.write_stdout(report.csv()?.as_bytes())?;
    } else {
        ui.emit(&report)?;
    }
    if report.summary.unparseable_rows > 0 {
        ui.warn(format!(
            "{} details the rules cannot read; they are counted in the summary",
            plural(
                report.summary.unparseable_rows,
                "audit_logs row has",
                "audit_logs rows have"
            )
        ));
    }
    Ok(if failed {
        Outcome::CheckFailed
    } else {
        Outcome::Success
    })
}
