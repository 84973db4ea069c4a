//! The rules: their SQL (one statement each, run in the database) and how a row
//! becomes a finding.

use chrono::NaiveDateTime;
use sea_orm::{DbBackend, QueryResult};
use serde::Serialize;
use serde_json::{Value, json};

use super::sql::Dialect;
use super::{Finding, Risk};
use crate::error::{Error, Result};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    PrivilegedWithoutProvenance,
    ElevatedRoleAtRegistration,
    RegisteredByUnauthorized,
    RegisteredBeforeFix,
    PrivilegedCreatedRecently,
    RoleChangedRecently,
    BruteForce,
    SuccessAfterFailures,
    CaseVariantEmail,
    MultipleOwners,
    PrivilegedWithoutPassword,
    NoTelemetry,
    ForgedProvenance,
    UnreachableEmail,
}

impl Rule {
    pub const ALL: [Rule; 14] = [
        Rule::PrivilegedWithoutProvenance,
        Rule::ElevatedRoleAtRegistration,
        Rule::RegisteredByUnauthorized,
        Rule::RegisteredBeforeFix,
        Rule::PrivilegedCreatedRecently,
        Rule::RoleChangedRecently,
        Rule::BruteForce,
        Rule::SuccessAfterFailures,
        Rule::CaseVariantEmail,
        Rule::MultipleOwners,
        Rule::PrivilegedWithoutPassword,
        Rule::NoTelemetry,
        Rule::ForgedProvenance,
        Rule::UnreachableEmail,
    ];

    /// Rules answered by the one pass over audit_logs ([`super::pass`]); the others
    /// read only `users`, one statement each ([`sql_for`]), except forged-provenance,
    /// answered by checking ecomind-admin's rows' tags before the pass
    /// ([`super::provenance_rows`]).
    pub fn reads_audit_logs(self) -> bool {
        !matches!(
            self,
            Rule::CaseVariantEmail
                | Rule::MultipleOwners
                | Rule::PrivilegedWithoutPassword
                | Rule::ForgedProvenance
                | Rule::UnreachableEmail
        )
    }

    /// Rules about logins (the others are about accounts and how they came to be).
    fn reads_logins(self) -> bool {
        matches!(self, Rule::BruteForce | Rule::SuccessAfterFailures)
    }

    /// The rule with this name (`privileged-without-provenance`, ...).
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Rule::PrivilegedWithoutProvenance => "privileged-without-provenance",
            Rule::ElevatedRoleAtRegistration => "elevated-role-at-registration",
            Rule::RegisteredByUnauthorized => "registered-by-unauthorized",
            Rule::RegisteredBeforeFix => "registered-before-fix",
            Rule::PrivilegedCreatedRecently => "privileged-created-recently",
            Rule::RoleChangedRecently => "role-changed-recently",
            Rule::BruteForce => "brute-force",
            Rule::SuccessAfterFailures => "success-after-failures",
            Rule::CaseVariantEmail => "case-variant-email",
            Rule::MultipleOwners => "multiple-owners",
            Rule::PrivilegedWithoutPassword => "privileged-without-password",
            Rule::NoTelemetry => "no-telemetry",
            Rule::ForgedProvenance => "forged-provenance",
            Rule::UnreachableEmail => "unreachable-email",
        }
    }
}

/// What the rules are asked.
#[derive(Debug, Clone)]
pub struct Params {
    pub since: NaiveDateTime,
    pub fixed_at: Option<NaiveDateTime>,
    pub org: Option<String>,
    pub failed_threshold: u32,
    /// The audit key ([`crate::provenance`]), when one is configured.
    pub key: Option<crate::provenance::Key>,
    /// With a key: the ids of the rows that claim ecomind-admin and whose tag verifies
    /// (set by the audit before its pass); only those count as its provenance. None:
    /// no key, every claim counts (unauthenticated).
    pub verified: Option<Vec<String>>,
}

/// Brute force becomes critical at this many failures for one email within an hour.
const CRITICAL_PER_HOUR: i64 = 100;
/// Failures within the hour before a success that make success-after-failures.
pub(crate) const FAILURES_BEFORE_SUCCESS: i64 = 5;

/// The common columns of a user-based finding.
fn user_cols(d: &Dialect, u: &str) -> String {
    format!(
        "{u}.org_id AS org_id, {u}.id AS user_id, {u}.email AS email, CAST({u}.role AS TEXT) AS role, \
         {created} AS created_at",
        created = d.ts_text(&format!("{u}.created_at"))
    )
}

const PRIVILEGED: &str = "CAST(u.role AS TEXT) IN ('owner', 'admin')";

/// The SQL of a rule that reads only `users` (the others are branches of the one pass
/// over audit_logs, [`super::pass`]); None for those.
pub fn sql_for(rule: Rule, backend: DbBackend, p: &Params) -> Option<String> {
    let d = Dialect::new(backend);
    Some(match rule {
        Rule::CaseVariantEmail | Rule::UnreachableEmail => users_by_email_sql(&d),
        Rule::MultipleOwners => multiple_owners_sql(&d, p),
        Rule::PrivilegedWithoutPassword => privileged_without_password_sql(&d, p),
        _ => return None,
    })
}

/// A rule with one finding per user `u` matching `cond`, oldest account first, after
/// the CTEs `with` (empty, or `WITH ... `).
fn per_user(d: &Dialect, with: &str, cond: &str, evidence: String) -> String {
    format!(
        "{with}SELECT {cols}, {created} AS at, {evidence} AS evidence \
         FROM users u WHERE {cond} ORDER BY u.created_at",
        cols = user_cols(d, "u"),
        created = d.ts_text("u.created_at"),
    )
}

/// The SQL of `case-variant-email` and `unreachable-email`, judged in ecomind-admin
/// (neither backend's lower() is the API's notion of one address): every address is
/// read alone first ([`ADDRESSES_SQL`]); this reads the users whose address is in the
/// JSON array `$1` (those a finding may be about), oldest account first.
pub fn users_by_email_sql(d: &Dialect) -> String {
    format!(
        "SELECT {cols}, {created} AS at, NULL AS evidence FROM users u \
         WHERE COALESCE(u.email, '') IN ({set}) ORDER BY u.created_at, u.id",
        cols = user_cols(d, "u"),
        created = d.ts_text("u.created_at"),
        set = d.json_text_set("$1"),
    )
}

/// Every user's address, alone: what `case-variant-email` and `unreachable-email` judge.
pub const ADDRESSES_SQL: &str = "SELECT email FROM users";

/// The SQL of `multiple-owners`.
fn multiple_owners_sql(d: &Dialect, p: &Params) -> String {
    let org_u = d.org_filter("u.org_id", p.org.as_deref());
    format!(
        "SELECT u.org_id AS org_id, NULL AS user_id, NULL AS email, 'owner' AS role, NULL AS created_at, \
                {latest} AS at, {ev} AS evidence \
         FROM users u WHERE CAST(u.role AS TEXT) = 'owner'{org_u} \
         GROUP BY u.org_id HAVING COUNT(*) > 1 ORDER BY u.org_id",
        latest = d.ts_text("MAX(u.created_at)"),
        ev = d.obj(&[
            ("owners", "COUNT(*)".into()),
            ("owner_ids", d.agg("u.id")),
            ("owner_emails", d.agg("u.email")),
        ]),
    )
}

/// The SQL of `privileged-without-password`.
fn privileged_without_password_sql(d: &Dialect, p: &Params) -> String {
    let org_u = d.org_filter("u.org_id", p.org.as_deref());
    per_user(
        d,
        "",
        &format!("{PRIVILEGED} AND u.password_hash IS NULL{org_u}"),
        d.obj(&[("password_hash", "NULL".into())]),
    )
}

fn text(row: &QueryResult, col: &str) -> Result<Option<String>> {
    row.try_get::<Option<String>>("", col)
        .map_err(|e| Error::from_db(e, &format!("reading the column {col}")))
}

fn privileged(role: Option<&str>) -> bool {
    matches!(role, Some("owner" | "admin"))
}

/// A rule's evidence, read strictly: a key the rule's SQL does not produce is a bug
/// (exit 5), never a silent 0 or "-" that would change a finding's severity.
struct Evidence<'a> {
    rule: Rule,
    v: &'a Value,
}

impl Evidence<'_> {
    fn get(&self, key: &str) -> Result<&Value> {
        self.v.get(key).ok_or_else(|| {
            Error::internal(format!(
                "rule {} produced evidence without `{key}`",
                self.rule.name()
            ))
        })
    }

    /// A count (PostgreSQL and SQLite may render it as a number or as text).
    fn n(&self, key: &str) -> Result<i64> {
        let v = self.get(key)?;
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| {
                Error::internal(format!(
                    "rule {}: evidence `{key}` is not a count: {v}",
                    self.rule.name()
                ))
            })
    }

    /// A text value; `-` when the key is there and null (a row without it).
    fn s(&self, key: &str) -> Result<String> {
        Ok(match self.get(key)? {
            Value::Null => "-".to_owned(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// One spelling of timestamps whatever the backend stored (microseconds, `T`).
fn iso_text(t: Option<String>) -> Option<String> {
    t.map(|t| match crate::records::parse_timestamp(&t) {
        Ok(ts) => crate::records::iso(ts),
        Err(_) => t,
    })
}

/// A result row of `rule` as a finding.
pub fn finding(rule: Rule, row: &QueryResult, p: &Params) -> Result<Finding> {
    let evidence: Value = text(row, "evidence")?
        .map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| {
            Error::internal(format!(
                "rule {} produced invalid evidence JSON: {e}",
                rule.name()
            ))
        })?
        .unwrap_or(Value::Null);
    if rule == Rule::NoTelemetry {
        return no_telemetry(&evidence);
    }
    let role = text(row, "role")?;
    let ev = Evidence { rule, v: &evidence };
    let (severity, message) = if rule.reads_logins() {
        assess_logins(rule, &ev, privileged(role.as_deref()))?
    } else {
        assess_accounts(rule, &ev, role.as_deref(), p)?
    };
    Ok(Finding {
        severity,
        rule,
        org_id: text(row, "org_id")?,
        user_id: text(row, "user_id")?,
        email: text(row, "email")?,
        role,
        created_at: iso_text(text(row, "created_at")?),
        at: iso_text(text(row, "at")?),
        message,
        evidence,
    })
}

/// Who registered the account, and what they were (registered-by-unauthorized).
fn registered_by(ev: &Evidence) -> String {
    let field = |key: &str| ev.v.get(key).and_then(Value::as_str);
    let Some(by) = field("created_by") else {
        return "registered with no created_by".to_owned();
    };
    match (field("creator_role"), field("creator_org")) {
        (Some(r), Some(o)) => format!("registered by {by}, who is {r} of {o}"),
        _ => format!("registered by {by}, who is not an existing user"),
    }
}

/// Why a privileged account has no provenance: no recorded event set its role, the
/// latest one was made by someone who could not, or it gave another role.
fn without_provenance(ev: &Evidence, role: Option<&str>) -> Result<String> {
    let role = role.unwrap_or("?");
    let what = ev.s("recorded_action")?;
    if what == "-" {
        return Ok(format!(
            "{role} with no registration or role change recorded ({} registration rows)",
            ev.n("registrations")?
        ));
    }
    let event = format!(
        "{what} at {} by {}",
        ev.s("recorded_at")?,
        ev.s("recorded_by")?
    );
    let recorded = ev.s("recorded_role")?;
    if ev.get("recorded_authorized")? != &Value::Bool(true) {
        return Ok(format!(
            "{role}; its latest recorded role ({recorded}, {event}) was not given by an owner/admin of its org or ecomind-admin"
        ));
    }
    Ok(format!(
        "{role}, but its latest recorded role is {recorded} ({event}): changed outside the API and ecomind-admin"
    ))
}

/// Severity and message of a finding about how an account came to be.
fn assess_accounts(
    rule: Rule,
    ev: &Evidence,
    role: Option<&str>,
    p: &Params,
) -> Result<(Risk, String)> {
    Ok(match rule {
        Rule::PrivilegedWithoutProvenance => (Risk::Critical, without_provenance(ev, role)?),
        Rule::RoleChangedRecently => (
            Risk::Warning,
            format!(
                "role changed from {} to {} at {} by {} (os user {} on {}): {}",
                ev.s("old_role")?,
                ev.s("new_role")?,
                ev.s("changed_at")?,
                ev.s("changed_by")?,
                ev.s("os_user")?,
                ev.s("host")?,
                ev.s("reason")?
            ),
        ),
        Rule::ElevatedRoleAtRegistration => (
            Risk::Critical,
            format!(
                "registered as {} by {}",
                ev.s("registered_role")?,
                ev.v.get("created_by")
                    .and_then(Value::as_str)
                    .unwrap_or("nobody")
            ),
        ),
        Rule::RegisteredByUnauthorized => (Risk::Critical, registered_by(ev)),
        Rule::RegisteredBeforeFix => (
            if privileged(role) {
                Risk::Critical
            } else {
                Risk::Warning
            },
            format!(
                "created before the fix ({}) without clean provenance (created_by: {})",
                p.fixed_at.map(crate::records::iso).unwrap_or_default(),
                ev.s("created_by")?
            ),
        ),
        Rule::PrivilegedCreatedRecently => (
            Risk::Warning,
            format!(
                "{} created recently, by {}",
                role.unwrap_or("?"),
                ev.s("created_by")?
            ),
        ),
        Rule::CaseVariantEmail | Rule::UnreachableEmail => {
            return Err(Error::internal(
                "case-variant-email and unreachable-email rows are judged in ecomind-admin",
            ));
        }
        Rule::MultipleOwners => (
            Risk::Info,
            format!("{} owners: {}", ev.n("owners")?, ev.s("owner_emails")?),
        ),
        Rule::PrivilegedWithoutPassword => (
            Risk::Info,
            format!("{} has no password_hash", role.unwrap_or("?")),
        ),
        Rule::BruteForce
        | Rule::SuccessAfterFailures
        | Rule::NoTelemetry
        | Rule::ForgedProvenance => {
            return Err(Error::internal(format!(
                "rule {} is not about accounts",
                rule.name()
            )));
        }
    })
}

/// Severity and message of a finding about logins. `is_priv`: the account is an
/// owner or admin.
fn assess_logins(rule: Rule, ev: &Evidence, is_priv: bool) -> Result<(Risk, String)> {
    Ok(match rule {
        Rule::BruteForce => {
            let per_hour = ev.n("max_in_1h")?;
            (
                if per_hour >= CRITICAL_PER_HOUR {
                    Risk::Critical
                } else {
                    Risk::Warning
                },
                format!(
                    "{} failed logins within 60 s ({} within an hour, {} in all) from {} to {}; reasons: {}",
                    ev.n("max_in_60s")?,
                    per_hour,
                    ev.n("failures")?,
                    ev.s("first")?,
                    ev.s("last")?,
                    ev.s("reasons")?
                ),
            )
        }
        Rule::SuccessAfterFailures => (
            if is_priv {
                Risk::Critical
            } else {
                Risk::Warning
            },
            format!(
                "login succeeded at {} after {} failures within the hour before",
                ev.s("first_success")?,
                ev.n("failures_in_prior_hour")?
            ),
        ),
        _ => {
            return Err(Error::internal(format!(
                "rule {} is not about logins",
                rule.name()
            )));
        }
    })
}

/// One user, as case-variant-email groups it (only what a finding shows).
#[derive(Debug)]
pub struct UserRow {
    key: String,
    email: String,
    org_id: Option<String>,
    user_id: Option<String>,
    role: Option<String>,
    created_at: Option<String>,
}

/// A hash of an email key, to count addresses in little memory.
pub fn key_hash(key: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
}

impl UserRow {
    pub fn key_hash(&self) -> u64 {
        key_hash(&self.key)
    }

    pub fn read(row: &QueryResult) -> Result<Self> {
        let email = email_of(row)?;
        Ok(Self {
            key: crate::records::email_key(&email),
            email,
            org_id: text(row, "org_id")?,
            user_id: text(row, "user_id")?,
            role: text(row, "role")?,
            created_at: iso_text(text(row, "created_at")?),
        })
    }
}

/// case-variant-email: every user (from its SQL), grouped by
/// [`crate::records::email_key`] here, since neither backend's lower() is the API's
/// notion of one address; a finding per account of a group of two or more, in `org`
/// when given.
pub fn case_variants(mut users: Vec<UserRow>, org: Option<&str>) -> Vec<Finding> {
    // Stable: within a group, the SQL's order (created_at, id).
    users.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out = Vec::new();
    for group in users
        .chunk_by(|a, b| a.key == b.key)
        .filter(|g| g.len() > 1)
    {
        let mut variants: Vec<&str> = group.iter().map(|u| u.email.as_str()).collect();
        variants.sort_unstable();
        let variants = variants.join(",");
        let evidence = json!({"variants": variants, "accounts": group.len()});
        for u in group {
            if org.is_some() && u.org_id.as_deref() != org {
                continue;
            }
            out.push(Finding {
                severity: Risk::Warning,
                rule: Rule::CaseVariantEmail,
                org_id: u.org_id.clone(),
                user_id: u.user_id.clone(),
                email: Some(u.email.clone()),
                role: u.role.clone(),
                created_at: u.created_at.clone(),
                at: u.created_at.clone(),
                message: format!(
                    "{} accounts share this address ignoring case and the domain's spelling: {variants}",
                    group.len()
                ),
                evidence: evidence.clone(),
            });
        }
    }
    out
}

/// A user row's address ("" when NULL), read alone.
pub fn email_of(row: &QueryResult) -> Result<String> {
    Ok(text(row, "email")?.unwrap_or_default())
}

/// The API finds this stored address when it is typed: its normalization is the
/// address itself ([`unreachable_email`] has no finding).
pub fn reachable(email: &str) -> bool {
    matches!(crate::emails::normalize(email), Ok(n) if n.email == email)
}

/// unreachable-email: an account whose stored email the API can never match at login
/// (its EmailStr normalizes what is typed, then looks for that exact string):
/// critical for an owner or admin, else a warning. None when the API can match it.
pub fn unreachable_email(u: &UserRow, org: Option<&str>) -> Option<Finding> {
    if org.is_some() && u.org_id.as_deref() != org {
        return None;
    }
    let (message, evidence) = match crate::emails::normalize(&u.email) {
        Ok(n) if n.email == u.email => return None,
        Ok(n) => (
            format!(
                "the API looks up '{}' when this address is typed, never the stored form: this account cannot log in",
                n.email
            ),
            json!({"api_form": n.email}),
        ),
        Err(reason) => (
            format!("the API refuses this address at login ({reason}): this account cannot log in"),
            json!({"api_refuses": reason}),
        ),
    };
    Some(Finding {
        severity: if privileged(u.role.as_deref()) {
            Risk::Critical
        } else {
            Risk::Warning
        },
        rule: Rule::UnreachableEmail,
        org_id: u.org_id.clone(),
        user_id: u.user_id.clone(),
        email: Some(u.email.clone()),
        role: u.role.clone(),
        created_at: u.created_at.clone(),
        at: u.created_at.clone(),
        message,
        evidence,
    })
}

/// no-telemetry's single row always comes back; it is a finding only when the audit
/// cannot see what it needs to. Returned as an `Info` placeholder that the caller drops
/// when `evidence.inconclusive` is false.
fn no_telemetry(evidence: &Value) -> Result<Finding> {
    let ev = Evidence {
        rule: Rule::NoTelemetry,
        v: evidence,
    };
    // null: there are logins inside --since, and they were not counted (the audit is
    // conclusive on that count; see `pass::no_telemetry`).
    let logins = match ev.get("login_events_since")? {
        Value::Null => None,
        _ => Some(ev.n("login_events_since")?),
    };
    let oldest = evidence.get("oldest_audit_row").and_then(Value::as_str);
    let newest_priv = evidence
        .get("newest_privileged_account")
        .and_then(Value::as_str);
    let mut reasons = Vec::new();
    if logins == Some(0) {
        reasons.push("no login events at all inside --since".to_owned());
    }
    match (oldest, newest_priv) {
        (None, Some(_)) => reasons.push("audit_logs is empty".to_owned()),
        (Some(o), Some(p)) if o > p => reasons.push(format!(
            "the oldest audit row ({o}) is newer than the newest privileged account ({p})"
        )),
        _ => {}
    }
    let mut ev = evidence.clone();
    ev["inconclusive"] = json!(!reasons.is_empty());
    Ok(Finding {
        severity: Risk::Warning,
        rule: Rule::NoTelemetry,
        org_id: None,
        user_id: None,
        email: None,
        role: None,
        created_at: None,
        at: None,
        message: format!("the audit is inconclusive: {}", reasons.join("; ")),
        evidence: ev,
    })
}

/// Drop no-telemetry's row when the audit is conclusive.
pub fn keep(f: &Finding) -> bool {
    f.rule != Rule::NoTelemetry || f.evidence.get("inconclusive") == Some(&Value::Bool(true))
}

/// A row that claims to be ecomind-admin's and whose tag does not verify with the
/// configured key: critical when the tag is missing or wrong (anyone who can write
/// audit_logs can write such a row), a warning when it is another key's.
#[allow(clippy::too_many_arguments)]
pub fn forged_provenance(
    audit_id: &str,
    org_id: Option<String>,
    user_id: Option<String>,
    action: &str,
    details: &Value,
    ts: Option<NaiveDateTime>,
    verdict: crate::provenance::Verdict,
    key: &crate::provenance::Key,
) -> Finding {
    use crate::provenance::Verdict;
    let claim = ["created_by", "changed_by"]
        .into_iter()
        .find(|k| details.get(*k).and_then(Value::as_str) == Some(crate::records::CREATED_BY))
        .unwrap_or("created_by");
    let (severity, why) = match verdict {
        Verdict::OtherKey => (Risk::Warning, "a tag of another audit key"),
        Verdict::Missing => (Risk::Critical, "no tag"),
        _ => (Risk::Critical, "a tag that does not match the row"),
    };
    Finding {
        severity,
        rule: Rule::ForgedProvenance,
        org_id,
        user_id,
        email: details
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_owned),
        role: ["new_role", "role"]
            .into_iter()
            .find_map(|k| details.get(k).and_then(Value::as_str).map(str::to_owned)),
        created_at: None,
        at: ts.map(crate::records::iso),
        message: format!(
            "{action} row {audit_id} says {claim} ecomind-admin but carries {why}: not written by ecomind-admin with key {}",
            key.id
        ),
        evidence: json!({
            "audit_id": audit_id,
            "action": action,
            "claim": claim,
            "tag": verdict.name(),
            "key_id": key.id,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_is_read_strictly() {
        let v = json!({"failures": "12", "max_in_1h": 150, "reasons": null, "first": "2026-11-01"});
        let ev = Evidence {
            rule: Rule::BruteForce,
            v: &v,
        };
        assert_eq!(ev.n("failures").unwrap(), 12);
        assert_eq!(ev.n("max_in_1h").unwrap(), 150);
        assert_eq!(ev.s("reasons").unwrap(), "-");
        assert_eq!(ev.s("first").unwrap(), "2026-11-01");
        // A renamed key is a bug, not a 0 that turns a critical finding into a warning.
        let err = ev.n("max_per_hour").unwrap_err();
        assert_eq!(err.code(), crate::error::exit::INTERNAL);
        assert!(
            err.message().contains("without `max_per_hour`"),
            "{}",
            err.message()
        );
        assert!(ev.s("last").is_err());
        assert!(ev.n("reasons").is_err(), "null is not a count");
    }
}
