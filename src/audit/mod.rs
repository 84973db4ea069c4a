//! The post-deploy security audit's engine: rules as SQL run in the database inside
//! one read-only snapshot, rows streamed back into findings with evidence. Shared by
//! `audit suspicious-accounts` and `doctor`; knows nothing of the command line or the
//! terminal (progress goes through [`Progress`]).

pub mod pass;
pub mod rules;
pub mod sql;

use futures_util::StreamExt;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, StreamTrait};
use serde::Serialize;
use serde_json::Value;

use crate::db;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::records;
use crate::text::shown;
use rules::{Params, Rule};

/// How much an audit finding matters (JSON `severity`: `info`, `warning`, `critical`);
/// the schema check's scale is `schema::Severity` (error, warning), a different domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Info,
    Warning,
    Critical,
}

/// One finding: who, what, and the facts that triggered it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Finding {
    pub severity: Risk,
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

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RuleCount {
    pub rule: Rule,
    pub findings: usize,
}

/// A rule that did not run, and why (the database's revision lacks what it reads).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Skipped {
    pub rule: Rule,
    pub reason: String,
}

/// Whether ecomind-admin's own audit rows were authenticated ([`crate::provenance`]).
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct ProvenanceCheck {
    /// An audit key is configured: rows claiming ecomind-admin count as its provenance
    /// only when their tag verifies. False: such rows are trusted unauthenticated.
    pub authenticated: bool,
    /// The key's public id.
    pub key_id: Option<String>,
    /// Rows that claim ecomind-admin (`created_by` / `changed_by`), checked.
    pub rows_claiming: u64,
    /// Of those, the ones whose tag verified.
    pub rows_verified: u64,
}

/// What one audit run counted.
#[derive(Debug, Default)]
pub struct Tally {
    pub by_rule: Vec<RuleCount>,
    pub unparseable_rows: i64,
    pub skipped: Vec<Skipped>,
    pub provenance: ProvenanceCheck,
    /// The findings per [`Risk`]: info, warning, critical.
    pub per_risk: [usize; 3],
}

impl Tally {
    pub fn count(&self, risk: Risk) -> usize {
        self.per_risk[risk as usize]
    }

    /// The highest severity found, if any.
    pub fn worst(&self) -> Option<Risk> {
        [Risk::Critical, Risk::Warning, Risk::Info]
            .into_iter()
            .find(|r| self.count(*r) > 0)
    }
}

/// Where findings go as they are produced.
pub type Sink<'a> = dyn FnMut(Finding) -> Result<()> + 'a;

/// Every user's address, read alone ([`rules::ADDRESSES_SQL`]), each given to `each`
/// ("" when NULL).
async fn each_address(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    each: &mut dyn FnMut(String),
) -> Result<()> {
    let mut stream = txn
        .stream_raw(Statement::from_string(
            backend,
            rules::ADDRESSES_SQL.to_owned(),
        ))
        .await
        .map_err(|e| Error::from_db(e, "reading the users' addresses"))?;
    while let Some(row) = stream.next().await {
        let row = row.map_err(|e| Error::from_db(e, "reading the users' addresses"))?;
        each(rules::email_of(&row)?);
    }
    Ok(())
}

/// What case-variant-email and unreachable-email are about, from the addresses alone
/// (memory: a hash per user, then the flagged addresses only): the addresses whose
/// email key ([`records::email_key`]) two or more users share (a second read of the
/// addresses), and those the API cannot match at login.
#[derive(Default)]
struct Flagged {
    shared: Vec<String>,
    unreachable: Vec<String>,
}

async fn flagged_addresses(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    rules: &[Rule],
) -> Result<Flagged> {
    let case_variants = rules.contains(&Rule::CaseVariantEmail);
    let unreachable = rules.contains(&Rule::UnreachableEmail);
    let mut out = Flagged::default();
    if !case_variants && !unreachable {
        return Ok(out);
    }
    let mut seen = std::collections::HashMap::<u64, bool>::new();
    each_address(txn, backend, &mut |email| {
        if case_variants {
            seen.entry(rules::key_hash(&records::email_key(&email)))
                .and_modify(|shared| *shared = true)
                .or_insert(false);
        }
        if unreachable && !rules::reachable(&email) {
            out.unreachable.push(email);
        }
    })
    .await?;
    seen.retain(|_, shared| *shared);
    if !seen.is_empty() {
        each_address(txn, backend, &mut |email| {
            if seen.contains_key(&rules::key_hash(&records::email_key(&email))) {
                out.shared.push(email);
            }
        })
        .await?;
    }
    Ok(out)
}

/// Run `selected` rules in one read-only snapshot: the findings (sorted by severity,
/// then time) and the counts: per rule, per severity, the unparseable rows, and the
/// rules skipped because the database's revision lacks what they read. An unknown
/// `--org` is refused (exit 4).
pub async fn collect(
    db: &db::Db,
    params: &Params,
    selected: &[Rule],
    ui: &dyn Progress,
) -> Result<(Vec<Finding>, Tally)> {
    let mut findings = Vec::new();
    let tally = stream(db, params, selected, ui, &mut |f| {
        findings.push(f);
        Ok(())
    })
    .await?;
    // Risk first (critical first), then time; within both, the rules' order (stable).
    findings.sort_by_key(|f| Rule::ALL.iter().position(|r| *r == f.rule));
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.at.cmp(&b.at)));
    Ok((findings, tally))
}

/// [`collect`] without keeping the findings: each goes to `sink` as it is produced
/// (the one pass over audit_logs first, then the rules that read only `users`), so
/// memory stays flat whatever their number. Shared with `doctor` and `upgrade`, which
/// need only the counts.
pub async fn stream(
    db: &db::Db,
    params: &Params,
    selected: &[Rule],
    ui: &dyn Progress,
    sink: &mut Sink<'_>,
) -> Result<Tally> {
    db::read_in(db.snapshot().await?, async |txn| {
        crate::migrations::ensure_api_tables(txn).await?;
        if let Some(org) = &params.org {
            ensure_org(txn, org).await?;
        }
        let skipped = skipped_rules(txn, selected, params.key.is_some(), ui).await?;
        let runnable: Vec<Rule> = selected
            .iter()
            .copied()
            .filter(|r| !skipped.iter().any(|s| s.rule == *r))
            .collect();
        let mut per_rule = vec![0usize; Rule::ALL.len()];
        let mut per_risk = [0usize; 3];
        let mut counted = |f: Finding| {
            if let Some(i) = Rule::ALL.iter().position(|r| *r == f.rule) {
                per_rule[i] += 1;
            }
            per_risk[f.severity as usize] += 1;
            sink(f)
        };
        let mut provenance = ProvenanceCheck::default();
        let checked;
        let params = match &params.key {
            Some(key) => {
                let forged = runnable.contains(&Rule::ForgedProvenance);
                let (ids, check) =
                    provenance_rows(txn, db.backend, params, key, forged, &mut counted).await?;
                provenance = check;
                checked = Params {
                    verified: Some(ids),
                    ..params.clone()
                };
                &checked
            }
            None => params,
        };
        let (unparseable_rows, mut flagged) =
            pass_and_addresses(db, txn, params, &runnable, &mut counted, ui).await?;
        for rule in runnable.iter().filter(|r| !r.reads_audit_logs()) {
            if let Some(sql) = rules::sql_for(*rule, db.backend, params) {
                let step = ui.step(&format!("rule {}", rule.name()));
                let emails = match rule {
                    Rule::CaseVariantEmail => Some(std::mem::take(&mut flagged.shared)),
                    Rule::UnreachableEmail => Some(std::mem::take(&mut flagged.unreachable)),
                    _ => None,
                };
                run_rule(txn, db.backend, *rule, sql, emails, params, &mut counted).await?;
                drop(step);
            }
        }
        let by_rule = runnable
            .iter()
            .map(|rule| RuleCount {
                rule: *rule,
                findings: Rule::ALL
                    .iter()
                    .position(|r| r == rule)
                    .map_or(0, |i| per_rule[i]),
            })
            .collect();
        Ok(Tally {
            by_rule,
            unparseable_rows,
            skipped,
            provenance,
            per_risk,
        })
    })
    .await
}

/// The statements an audit of `selected` runs, with a label each (for `--show-sql`):
/// the session settings and the one pass over audit_logs, then the rules that read
/// only `users`.
pub fn statements(backend: DbBackend, params: &Params, selected: &[Rule]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if backend == DbBackend::Postgres {
        for setting in pass::SETTINGS {
            out.push(("the audit's transaction".to_owned(), setting.to_owned()));
        }
    }
    let pg = backend == DbBackend::Postgres;
    let split = !pg && selected.iter().any(|r| pass::Part::Logins.has(*r));
    let parts = if split {
        vec![pass::Part::Accounts, pass::Part::Logins]
    } else {
        vec![pass::Part::All]
    };
    for part in parts {
        let in_part: Vec<String> = selected
            .iter()
            .filter(|r| r.reads_audit_logs() && **r != Rule::NoTelemetry)
            .filter(|r| part.has(**r))
            .map(|r| match r {
                Rule::SuccessAfterFailures if pg => format!("{} (its candidates)", r.name()),
                _ => r.name().to_owned(),
            })
            .collect();
        let rules = if in_part.is_empty() {
            "no rule".to_owned()
        } else {
            in_part.join(", ")
        };
        let label = match part {
            pass::Part::All => {
                format!("one pass over audit_logs: {rules} and the unparseable rows")
            }
            pass::Part::Accounts => {
                format!(
                    "the pass over audit_logs, accounts' part: {rules} and the unparseable rows"
                )
            }
            pass::Part::Logins => format!(
                "the pass over audit_logs, logins' part (at once, on a second connection, \
                 outside WAL mode): {rules}"
            ),
        };
        out.push((label, pass::statement(backend, params, selected, part)));
    }
    if selected.contains(&Rule::SuccessAfterFailures) && backend == DbBackend::Postgres {
        out.push((
            "success-after-failures: the logins of the candidates the pass returns (here none), \
             within an hour of their failures"
                .to_owned(),
            pass::successes_statement(backend, params, &[], Some(Vec::new())).0,
        ));
    }
    if selected.contains(&Rule::NoTelemetry) {
        out.push((
            Rule::NoTelemetry.name().to_owned(),
            pass::no_telemetry_statement(backend, params),
        ));
    }
    for rule in selected.iter().filter(|r| !r.reads_audit_logs()) {
        if let Some(sql) = rules::sql_for(*rule, backend, params) {
            out.push((rule.name().to_owned(), sql));
        }
    }
    out
}

/// The rows that claim to be ecomind-admin's (`created_by` / `changed_by`), each tag
/// checked with `key`: the ids that verify (only those count as its provenance in the
/// pass), and, when `report` (forged-provenance is selected), a finding per row that
/// does not.
async fn provenance_rows(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    params: &Params,
    key: &crate::provenance::Key,
    report: bool,
    sink: &mut Sink<'_>,
) -> Result<(Vec<String>, ProvenanceCheck)> {
    let d = sql::Dialect::new(backend);
    let claim = |k: &str| format!("{} = '{}'", d.j("details", k), records::CREATED_BY);
    let sql = format!(
        "SELECT id, org_id, user_id, action, resource, CAST(details AS TEXT) AS details, ts \
         FROM audit_logs WHERE CASE WHEN {} THEN {} OR {} ELSE 1 = 0 END{} ORDER BY ts, id",
        d.nul_free("details"),
        claim("created_by"),
        claim("changed_by"),
        d.org_filter("org_id", params.org.as_deref()),
    );
    let err = |e| Error::from_db(e, "checking ecomind-admin's audit rows");
    let mut stream = txn
        .stream_raw(Statement::from_string(backend, sql))
        .await
        .map_err(err)?;
    let mut verified = Vec::new();
    let mut check = ProvenanceCheck {
        authenticated: true,
        key_id: Some(key.id.clone()),
        ..Default::default()
    };
    while let Some(row) = stream.next().await {
        let row = row.map_err(err)?;
        let get = |c: &str| row.try_get::<Option<String>>("", c).ok().flatten();
        let (id, org_id, action) = (get("id").unwrap_or_default(), get("org_id"), get("action"));
        let details: Value = get("details")
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let ts: Option<chrono::NaiveDateTime> = row.try_get("", "ts").ok();
        check.rows_claiming += 1;
        let verdict = match ts {
            Some(ts) => crate::provenance::verify(
                key,
                &crate::provenance::Row {
                    id: &id,
                    org_id: org_id.as_deref().unwrap_or_default(),
                    user_id: get("user_id").as_deref(),
                    action: action.as_deref().unwrap_or_default(),
                    resource: get("resource").as_deref().unwrap_or_default(),
                    details: &details,
                    ts,
                },
            ),
            None => crate::provenance::Verdict::Invalid,
        };
        if verdict == crate::provenance::Verdict::Valid {
            check.rows_verified += 1;
            verified.push(id);
            continue;
        }
        if report {
            sink(rules::forged_provenance(
                &id,
                org_id,
                get("user_id"),
                action.as_deref().unwrap_or_default(),
                &details,
                ts,
                verdict,
                key,
            ))?;
        }
    }
    Ok((verified, check))
}

/// The selected rules the database's revision cannot answer, each noted once.
async fn skipped_rules(
    txn: &DatabaseTransaction,
    selected: &[Rule],
    keyed: bool,
    ui: &dyn Progress,
) -> Result<Vec<Skipped>> {
    let mut skipped = Vec::new();
    if selected.contains(&Rule::PrivilegedWithoutPassword)
        && !crate::schema::snapshots::has_column(txn, "users", "password_hash").await?
    {
        let rule = Rule::PrivilegedWithoutPassword;
        let reason = "users.password_hash does not exist (the database is at revision 001; `migrate up` adds it)".to_owned();
        ui.note(&format!("rule {} skipped: {reason}", rule.name()));
        skipped.push(Skipped { rule, reason });
    }
    if selected.contains(&Rule::ForgedProvenance) && !keyed {
        let rule = Rule::ForgedProvenance;
        let reason = format!(
            "no audit key is configured ({}): ecomind-admin's own audit rows are unauthenticated provenance (`doctor` says how to make one)",
            crate::provenance::KEY_FILE_ENV
        );
        // Said in the report (skipped, provenance), not as a note on every run.
        skipped.push(Skipped { rule, reason });
    }
    Ok(skipped)
}

/// [`one_pass`], and the flagged addresses ([`flagged_addresses`]). PostgreSQL: every
/// address is read on a second connection in the same snapshot
/// ([`db::Db::snapshot_reader`]) while the pass runs (a core is free once its
/// parallel scan is done); else one after the other.
async fn pass_and_addresses(
    db: &db::Db,
    txn: &DatabaseTransaction,
    params: &Params,
    rules: &[Rule],
    sink: &mut Sink<'_>,
    ui: &dyn Progress,
) -> Result<(i64, Flagged)> {
    let reader = if rules
        .iter()
        .any(|r| matches!(r, Rule::CaseVariantEmail | Rule::UnreachableEmail))
    {
        db.snapshot_reader(txn).await
    } else {
        None
    };
    let pass = one_pass(db, txn, params, rules, sink, ui);
    match &reader {
        Some(reader) => {
            let addresses = flagged_addresses(reader, db.backend, rules);
            futures_util::future::try_join(pass, addresses).await
        }
        None => {
            let unparseable_rows = pass.await?;
            Ok((
                unparseable_rows,
                flagged_addresses(txn, db.backend, rules).await?,
            ))
        }
    }
}

/// The one pass over audit_logs ([`pass`]) for the rules among `rules` that read it,
/// then success-after-failures's logins for the candidates the pass found, then
/// no-telemetry: their findings, and the count of rows the rules cannot read.
async fn one_pass(
    db: &db::Db,
    txn: &DatabaseTransaction,
    params: &Params,
    rules: &[Rule],
    sink: &mut Sink<'_>,
    ui: &dyn Progress,
) -> Result<i64> {
    let backend = db.backend;
    let step = ui.step("one pass over audit_logs");
    if backend == DbBackend::Postgres {
        // Settings of this read-only transaction only (see `pass::SETTINGS`).
        txn.execute_unprepared(&pass::SETTINGS.join("; "))
            .await
            .map_err(|e| Error::from_db(e, "tuning the audit's transaction"))?;
    }
    let mut unparseable = 0;
    let mut candidates = Vec::new();
    // The candidates' failed logins, as the pass read them; None once there are too
    // many, or one whose time does not read back (a timestamp such as 'infinity').
    let mut failures = Some(Vec::new());
    let mut other = |name: &str, row: &sea_orm::QueryResult| -> Result<()> {
        let text = |c: &str| -> Result<Option<String>> {
            row.try_get("", c)
                .map_err(|e| Error::from_db(e, "reading the audit's findings"))
        };
        let ts = |c: &str| -> Result<Option<chrono::NaiveDateTime>> {
            Ok(text(c)?.and_then(|t| records::parse_timestamp(&t).ok()))
        };
        match name {
            pass::UNPARSEABLE => {
                unparseable = text("evidence")?.and_then(|n| n.parse().ok()).unwrap_or(0);
            }
            pass::CANDIDATE_FAILURE => {
                let at = ts("at")?;
                if let (Some(list), Some(at)) = (failures.as_mut(), at) {
                    list.push((text("email")?.unwrap_or_default(), at));
                }
                if at.is_none()
                    || failures
                        .as_ref()
                        .is_some_and(|l| l.len() > pass::MAX_CANDIDATE_FAILURES)
                {
                    failures = None;
                }
            }
            _ => {
                // A span that does not read back: its logins are read from since - 1h.
                let span = ts("at")?.zip(ts("created_at")?);
                candidates.push((text("email")?.unwrap_or_default(), span));
            }
        }
        Ok(())
    };
    run_pass(db, txn, params, rules, sink, &mut other).await?;
    if rules.contains(&Rule::SuccessAfterFailures) && !candidates.is_empty() {
        let (sql, values) = pass::successes_statement(backend, params, &candidates, failures);
        let statement = Statement::from_sql_and_values(backend, sql, values);
        stream_findings(txn, statement, params, sink, &mut |_, _| Ok(())).await?;
    }
    if rules.contains(&Rule::NoTelemetry) {
        let sql = pass::no_telemetry_statement(backend, params);
        stream_findings(
            txn,
            Statement::from_string(backend, sql),
            params,
            sink,
            &mut |_, _| Ok(()),
        )
        .await?;
    }
    drop(step);
    Ok(unparseable)
}

/// The pass's statement(s) ([`pass::statement`]), their rows into findings or `other`.
/// PostgreSQL: one statement. SQLite, with a login rule selected: the accounts' part
/// here and the logins' part on a second connection that sees the same database
/// ([`db::Db::second_reader`]), at once (a core each); its findings follow, in the
/// order of one statement. Without a second connection, one after the other.
async fn run_pass(
    db: &db::Db,
    txn: &DatabaseTransaction,
    params: &Params,
    rules: &[Rule],
    sink: &mut Sink<'_>,
    other: &mut dyn FnMut(&str, &sea_orm::QueryResult) -> Result<()>,
) -> Result<()> {
    let backend = db.backend;
    let logins = rules.iter().any(|r| pass::Part::Logins.has(*r));
    let statement =
        |part| Statement::from_string(backend, pass::statement(backend, params, rules, part));
    if backend == DbBackend::Postgres || !logins {
        return stream_findings(txn, statement(pass::Part::All), params, sink, other).await;
    }
    let Some(reader) = db.second_reader(txn).await else {
        stream_findings(txn, statement(pass::Part::Accounts), params, sink, other).await?;
        return stream_findings(txn, statement(pass::Part::Logins), params, sink, other).await;
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let logins = async move {
        match reader.stream_raw(statement(pass::Part::Logins)).await {
            Ok(mut rows) => {
                while let Some(row) = rows.next().await {
                    if tx.send(row).await.is_err() {
                        break;
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
            }
        }
        Ok(())
    };
    let accounts = async {
        stream_findings(txn, statement(pass::Part::Accounts), params, sink, other).await?;
        while let Some(row) = rx.recv().await {
            let row = row.map_err(|e| Error::from_db(e, "reading the audit's findings"))?;
            finding_row(&row, params, sink, other)?;
        }
        Ok(())
    };
    // An error on either side ends both (the other is dropped, its connection with it).
    futures_util::future::try_join(logins, accounts).await?;
    Ok(())
}

/// Stream a statement's rows into findings ([`finding_row`]).
async fn stream_findings(
    txn: &DatabaseTransaction,
    statement: Statement,
    params: &Params,
    sink: &mut Sink<'_>,
    other: &mut dyn FnMut(&str, &sea_orm::QueryResult) -> Result<()>,
) -> Result<()> {
    let mut stream = txn
        .stream_raw(statement)
        .await
        .map_err(|e| Error::from_db(e, "running the audit"))?;
    while let Some(row) = stream.next().await {
        let row = row.map_err(|e| Error::from_db(e, "reading the audit's findings"))?;
        finding_row(&row, params, sink, other)?;
    }
    Ok(())
}

/// One row of the pass into a finding; a row whose `rule` is not a rule's name (the
/// pass's `unparseable` and `candidate` rows) goes to `other`.
fn finding_row(
    row: &sea_orm::QueryResult,
    params: &Params,
    sink: &mut Sink<'_>,
    other: &mut dyn FnMut(&str, &sea_orm::QueryResult) -> Result<()>,
) -> Result<()> {
    let name: String = row
        .try_get("", "rule")
        .map_err(|e| Error::from_db(e, "reading the audit's findings"))?;
    if [pass::UNPARSEABLE, pass::CANDIDATE, pass::CANDIDATE_FAILURE].contains(&name.as_str()) {
        return other(&name, row);
    }
    let rule = Rule::from_name(&name)
        .ok_or_else(|| Error::internal(format!("the audit returned an unknown rule {name}")))?;
    let f = rules::finding(rule, row, params)?;
    if rules::keep(&f) {
        sink(f)?;
    }
    Ok(())
}

/// `--org` must name an existing organization (exit 4 otherwise).
async fn ensure_org(txn: &DatabaseTransaction, org: &str) -> Result<()> {
    if crate::accounts::org_exists(txn, org).await? {
        return Ok(());
    }
    Err(Error::refused(
        format!("organization '{}' not found", shown(org)),
        "check --org (an id like org_0123456789ab); without --org every organization is audited",
    ))
}

/// Stream one rule's rows into findings. case-variant-email and unreachable-email read
/// only the users of `emails` (their flagged addresses, [`flagged_addresses`]), bound
/// as one JSON array: addresses are hostile text, never spliced into SQL.
async fn run_rule(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    rule: Rule,
    sql: String,
    emails: Option<Vec<String>>,
    params: &Params,
    sink: &mut Sink<'_>,
) -> Result<()> {
    let statement = match emails {
        Some(emails) if emails.is_empty() => return Ok(()),
        Some(emails) => {
            let json =
                serde_json::to_string(&emails).map_err(|e| Error::internal(e.to_string()))?;
            Statement::from_sql_and_values(backend, sql, [json.into()])
        }
        None => Statement::from_string(backend, sql),
    };
    let mut stream = txn
        .stream_raw(statement)
        .await
        .map_err(|e| Error::from_db(e, &format!("running rule {}", rule.name())))?;
    let mut grouped = Vec::new();
    while let Some(row) = stream.next().await {
        let row = row.map_err(|e| Error::from_db(e, &format!("reading rule {}", rule.name())))?;
        match rule {
            Rule::CaseVariantEmail => grouped.push(rules::UserRow::read(&row)?),
            Rule::UnreachableEmail => {
                if let Some(f) =
                    rules::unreachable_email(&rules::UserRow::read(&row)?, params.org.as_deref())
                {
                    sink(f)?;
                }
            }
            _ => {
                let f = rules::finding(rule, &row, params)?;
                if rules::keep(&f) {
                    sink(f)?;
                }
            }
        }
    }
    drop(stream);
    if rule == Rule::CaseVariantEmail {
        for f in rules::case_variants(grouped, params.org.as_deref()) {
            sink(f)?;
        }
    }
    Ok(())
}

/// The audit's findings by severity (`upgrade`'s audit step, `backup verify`'s copy).
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct AuditCounts {
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
}

/// The post-deploy audit (`upgrade`'s audit step, `backup verify`'s copy): every rule,
/// the last 7 days, the configured provenance key; findings counted, not kept.
pub async fn post_deploy(db: &db::Db, ui: &dyn Progress) -> Result<Tally> {
    let params = rules::Params {
        since: crate::records::now() - chrono::Duration::days(7),
        fixed_at: None,
        org: None,
        failed_threshold: 10,
        key: crate::provenance::configured()?,
        verified: None,
    };
    stream(db, &params, &rules::Rule::ALL, ui, &mut |_| Ok(())).await
}

impl From<&Tally> for AuditCounts {
    fn from(t: &Tally) -> Self {
        AuditCounts {
            critical: t.count(Risk::Critical),
            warning: t.count(Risk::Warning),
            info: t.count(Risk::Info),
        }
    }
}
