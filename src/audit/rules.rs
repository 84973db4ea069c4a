//! The rules: their SQL (one statement each, run in the database) and how a row
//! becomes a finding.

use chrono::NaiveDateTime;
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};
use serde::Serialize;
use serde_json::{Value, json};

use super::sql::Dialect;
use super::{Finding, Risk};
use crate::error::{Error, Result};
use crate::records::CREATED_BY;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    PrivilegedWithoutProvenance,
    ElevatedRoleAtRegistration,
    RegisteredByUnauthorized,
    RegisteredBeforeFix,
    PrivilegedCreatedRecently,
    BruteForce,
    SuccessAfterFailures,
    CaseVariantEmail,
    MultipleOwners,
    PrivilegedWithoutPassword,
    NoTelemetry,
}

impl Rule {
    pub const ALL: [Rule; 11] = [
        Rule::PrivilegedWithoutProvenance,
        Rule::ElevatedRoleAtRegistration,
        Rule::RegisteredByUnauthorized,
        Rule::RegisteredBeforeFix,
        Rule::PrivilegedCreatedRecently,
        Rule::BruteForce,
        Rule::SuccessAfterFailures,
        Rule::CaseVariantEmail,
        Rule::MultipleOwners,
        Rule::PrivilegedWithoutPassword,
        Rule::NoTelemetry,
    ];

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
            Rule::BruteForce => "brute-force",
            Rule::SuccessAfterFailures => "success-after-failures",
            Rule::CaseVariantEmail => "case-variant-email",
            Rule::MultipleOwners => "multiple-owners",
            Rule::PrivilegedWithoutPassword => "privileged-without-password",
            Rule::NoTelemetry => "no-telemetry",
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
}

/// Brute force becomes critical at this many failures for one email within an hour.
const CRITICAL_PER_HOUR: i64 = 100;
/// Failures within the hour before a success that make success-after-failures.
const FAILURES_BEFORE_SUCCESS: i64 = 5;

/// The registrations the API logged, with the keys the rules read.
fn reg_cte(d: &Dialect) -> String {
    format!(
        "reg AS (SELECT a.id AS audit_id, a.org_id, a.user_id, a.ts, \
                {email} AS email, lower({email}) AS email_l, {role} AS reg_role, {by} AS created_by \
         FROM audit_logs a WHERE a.action = 'user_registered' AND {obj})",
        email = d.j("a.details", "email"),
        role = d.j("a.details", "role"),
        by = d.j("a.details", "created_by"),
        obj = d.is_obj("a.details"),
    )
}

/// Registrations by an authorized creator (`ok`), and those that are also clean
/// (a viewer, or written by ecomind-admin: `clean`), keyed by user id and email.
fn ok_cte() -> String {
    format!(
        "ok AS (SELECT r.user_id, r.email_l, r.reg_role, r.created_by FROM reg r WHERE {auth}), \
         clean AS (SELECT user_id, email_l FROM ok WHERE reg_role = 'viewer' OR created_by = '{CREATED_BY}')",
        auth = authorized("r")
    )
}

/// No row of `cte` is about user `u`, by id or by email. `NOT IN` over uncorrelated
/// subqueries (NULLs excluded) is a hashed lookup on PostgreSQL and an ephemeral index
/// on SQLite, whatever the planner guesses about the CTE's size.
fn none_about(cte: &str, u: &str) -> String {
    format!(
        "{u}.id NOT IN (SELECT user_id FROM {cte} WHERE user_id IS NOT NULL) \
         AND lower({u}.email) NOT IN (SELECT email_l FROM {cte} WHERE email_l IS NOT NULL)"
    )
}

/// Join the user a (flagged, so few) registration row `r` is about: by user_id, else
/// by email.
fn join_user(u: &str) -> String {
    format!(
        "LEFT JOIN users {u} ON {u}.id = COALESCE(r.user_id, \
           (SELECT x.id FROM users x WHERE lower(x.email) = r.email_l ORDER BY x.id LIMIT 1))"
    )
}

/// `r` was created by an owner or admin of its org, or by ecomind-admin.
fn authorized(r: &str) -> String {
    format!(
        "({r}.created_by = '{CREATED_BY}' OR EXISTS (SELECT 1 FROM users c WHERE c.id = {r}.created_by \
         AND c.org_id = {r}.org_id AND CAST(c.role AS TEXT) IN ('owner', 'admin')))"
    )
}

/// Registration row `r` is about user `u`.
fn about(r: &str, u: &str) -> String {
    format!("({r}.user_id = {u}.id OR {r}.email_l = lower({u}.email))")
}

/// A rule over registration rows: `bad` selects the flagged rows from `reg` (few, so
/// materialized before the users they are about are joined); the evidence is the row's
/// id, creator and time, plus `extra`.
fn flagged_registrations(d: &Dialect, bad: &str, extra: &[(&str, String)]) -> String {
    let mut ev = vec![
        ("audit_id", "r.audit_id".to_owned()),
        ("created_by", "r.created_by".to_owned()),
        ("registered_at", d.ts_text("r.ts")),
    ];
    ev.extend(extra.iter().cloned());
    format!(
        "WITH {reg}, bad AS MATERIALIZED ({bad}) \
         SELECT r.org_id AS org_id, COALESCE(u.id, r.user_id) AS user_id, COALESCE(u.email, r.email) AS email, \
                CAST(u.role AS TEXT) AS role, {created} AS created_at, {at} AS at, {ev} AS evidence \
         FROM bad r {join} \
         ORDER BY r.ts",
        reg = reg_cte(d),
        join = join_user("u"),
        created = d.ts_text("u.created_at"),
        at = d.ts_text("r.ts"),
        ev = d.obj(&ev),
    )
}

/// Evidence: who created user `u`, from its registration rows (`<none>` for a row
/// without created_by).
fn creators(d: &Dialect) -> String {
    format!(
        "(SELECT {} FROM reg r WHERE {})",
        d.agg("COALESCE(r.created_by, '<none>')"),
        about("r", "u")
    )
}

/// The common columns of a user-based finding.
fn user_cols(d: &Dialect, u: &str) -> String {
    format!(
        "{u}.org_id AS org_id, {u}.id AS user_id, {u}.email AS email, CAST({u}.role AS TEXT) AS role, \
         {created} AS created_at",
        created = d.ts_text(&format!("{u}.created_at"))
    )
}

const PRIVILEGED: &str = "CAST(u.role AS TEXT) IN ('owner', 'admin')";

/// The SQL of a rule, or None when it does not apply (registered-before-fix without
/// --fixed-at).
pub fn sql_for(rule: Rule, backend: DbBackend, p: &Params) -> Option<String> {
    let d = Dialect::new(backend);
    Some(match rule {
        Rule::PrivilegedWithoutProvenance => privileged_without_provenance_sql(&d, p),
        Rule::ElevatedRoleAtRegistration => elevated_role_at_registration_sql(&d, p),
        Rule::RegisteredByUnauthorized => registered_by_unauthorized_sql(&d, p),
        Rule::RegisteredBeforeFix => registered_before_fix_sql(&d, p)?,
        Rule::PrivilegedCreatedRecently => privileged_created_recently_sql(&d, p),
        Rule::BruteForce => brute_force_sql(&d, p),
        Rule::SuccessAfterFailures => success_after_failures_sql(&d, p),
        Rule::CaseVariantEmail => case_variant_email_sql(&d, p),
        Rule::MultipleOwners => multiple_owners_sql(&d, p),
        Rule::PrivilegedWithoutPassword => privileged_without_password_sql(&d, p),
        Rule::NoTelemetry => no_telemetry_sql(&d, p),
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

/// The CTEs of the provenance rules: the registrations, and the authorized ones.
fn provenance_ctes(d: &Dialect) -> String {
    format!("WITH {}, {} ", reg_cte(d), ok_cte())
}

/// The SQL of `privileged-without-provenance`.
fn privileged_without_provenance_sql(d: &Dialect, p: &Params) -> String {
    let org_u = d.org_filter("u.org_id", p.org.as_deref());
    per_user(
        d,
        &provenance_ctes(d),
        &format!("{PRIVILEGED}{org_u} AND {}", none_about("ok", "u")),
        d.obj(&[
            (
                "registrations",
                format!("(SELECT COUNT(*) FROM reg r WHERE {})", about("r", "u")),
            ),
            ("created_by", creators(d)),
        ]),
    )
}

/// The SQL of `elevated-role-at-registration`.
fn elevated_role_at_registration_sql(d: &Dialect, p: &Params) -> String {
    flagged_registrations(
        d,
        &format!(
            "SELECT * FROM reg r WHERE r.reg_role IS NOT NULL AND r.reg_role <> 'viewer' \
             AND COALESCE(r.created_by, '') <> '{CREATED_BY}'{org}",
            org = d.org_filter("r.org_id", p.org.as_deref()),
        ),
        &[("registered_role", "r.reg_role".into())],
    )
}

/// The SQL of `registered-by-unauthorized`.
fn registered_by_unauthorized_sql(d: &Dialect, p: &Params) -> String {
    flagged_registrations(
        d,
        &format!(
            "SELECT r.*, c.org_id AS creator_org, CAST(c.role AS TEXT) AS creator_role \
             FROM reg r LEFT JOIN users c ON c.id = r.created_by \
             WHERE (r.created_by IS NULL OR (r.created_by <> '{CREATED_BY}' \
                    AND (c.id IS NULL OR c.org_id <> r.org_id \
                         OR CAST(c.role AS TEXT) NOT IN ('owner', 'admin')))){org}",
            org = d.org_filter("r.org_id", p.org.as_deref()),
        ),
        &[
            ("creator_org", "r.creator_org".into()),
            ("creator_role", "r.creator_role".into()),
        ],
    )
}

/// The SQL of `registered-before-fix`, or None when it does not apply.
fn registered_before_fix_sql(d: &Dialect, p: &Params) -> Option<String> {
    let org_u = d.org_filter("u.org_id", p.org.as_deref());
    let fixed = p.fixed_at?;
    Some(per_user(
        d,
        &provenance_ctes(d),
        &format!(
            "{}{org_u} AND {}",
            d.ts_cmp("u.created_at", "<", fixed),
            none_about("clean", "u")
        ),
        d.obj(&[
            ("fixed_at", format!("'{}'", crate::records::iso(fixed))),
            ("created_by", creators(d)),
        ]),
    ))
}

/// The SQL of `privileged-created-recently`.
fn privileged_created_recently_sql(d: &Dialect, p: &Params) -> String {
    let org_u = d.org_filter("u.org_id", p.org.as_deref());
    per_user(
        d,
        &format!("WITH {} ", reg_cte(d)),
        &format!(
            "{PRIVILEGED} AND {}{org_u}",
            d.ts_cmp("u.created_at", ">=", p.since)
        ),
        d.obj(&[("created_by", creators(d))]),
    )
}

/// The SQL of `brute-force`.
fn brute_force_sql(d: &Dialect, p: &Params) -> String {
    let org_a = d.org_filter("org_id", p.org.as_deref());
    format!(
        "WITH f AS (SELECT lower({email}) AS email_l, ts, {reason} AS reason FROM audit_logs \
                    WHERE action = 'login_failed' AND {since} AND {email} IS NOT NULL{org_a}), \
         w AS (SELECT email_l, ts, reason, \
                      COUNT(*) OVER (PARTITION BY email_l {minute}) AS per_minute, \
                      COUNT(*) OVER (PARTITION BY email_l {hour}) AS per_hour FROM f), \
         b AS (SELECT email_l, MAX(per_minute) AS max_per_minute, MAX(per_hour) AS max_per_hour, \
                      COUNT(*) AS failures, MIN(ts) AS first_ts, MAX(ts) AS last_ts, {reasons} AS reasons \
               FROM w GROUP BY email_l HAVING MAX(per_minute) >= {threshold}) \
         SELECT u.org_id AS org_id, u.id AS user_id, COALESCE(u.email, b.email_l) AS email, \
                CAST(u.role AS TEXT) AS role, {created} AS created_at, {last} AS at, {ev} AS evidence \
         FROM b LEFT JOIN users u ON lower(u.email) = b.email_l \
         ORDER BY b.last_ts",
        email = d.j("details", "email"),
        reason = d.j("details", "reason"),
        since = d.ts_cmp("ts", ">=", p.since),
        minute = d.following(60),
        hour = d.following(3600),
        reasons = d.agg_distinct("reason"),
        threshold = p.failed_threshold,
        created = d.ts_text("u.created_at"),
        last = d.ts_text("b.last_ts"),
        ev = d.obj(&[
            ("max_in_60s", "b.max_per_minute".into()),
            ("max_in_1h", "b.max_per_hour".into()),
            ("failures", "b.failures".into()),
            ("first", d.ts_text("b.first_ts")),
            ("last", d.ts_text("b.last_ts")),
            ("reasons", "b.reasons".into()),
        ]),
    )
}

/// The SQL of `success-after-failures`.
fn success_after_failures_sql(d: &Dialect, p: &Params) -> String {
    let org_a = d.org_filter("org_id", p.org.as_deref());
    format!(
        "WITH e AS (SELECT lower({email}) AS email_l, ts, action, \
                           CASE WHEN action = 'login_failed' THEN 1 ELSE 0 END AS failed \
                    FROM audit_logs WHERE action IN ('login_failed', 'login_success') \
                    AND {since_hour} AND {email} IS NOT NULL{org_a}), \
         w AS (SELECT email_l, ts, action, SUM(failed) OVER (PARTITION BY email_l {hour}) AS failures_before FROM e), \
         s AS (SELECT email_l, MIN(ts) AS first_success, MAX(failures_before) AS failures, COUNT(*) AS successes \
               FROM w WHERE action = 'login_success' AND {since} AND failures_before >= {n} GROUP BY email_l) \
         SELECT u.org_id AS org_id, u.id AS user_id, COALESCE(u.email, s.email_l) AS email, \
                CAST(u.role AS TEXT) AS role, {created} AS created_at, {at} AS at, {ev} AS evidence \
         FROM s LEFT JOIN users u ON lower(u.email) = s.email_l \
         ORDER BY s.first_success",
        email = d.j("details", "email"),
        since_hour = d.ts_cmp("ts", ">=", p.since - chrono::Duration::hours(1)),
        since = d.ts_cmp("ts", ">=", p.since),
        hour = d.preceding(3600),
        n = FAILURES_BEFORE_SUCCESS,
        created = d.ts_text("u.created_at"),
        at = d.ts_text("s.first_success"),
        ev = d.obj(&[
            ("failures_in_prior_hour", "s.failures".into()),
            ("successes_after_failures", "s.successes".into()),
            ("first_success", d.ts_text("s.first_success")),
        ]),
    )
}

/// The SQL of `case-variant-email`: every user, grouped by email identity in
/// ecomind-admin (see `case_variants`), since neither backend's lower() is the API's
/// notion of one address.
fn case_variant_email_sql(d: &Dialect, _p: &Params) -> String {
    format!(
        "SELECT {cols}, {created} AS at, NULL AS evidence FROM users u ORDER BY u.created_at, u.id",
        cols = user_cols(d, "u"),
        created = d.ts_text("u.created_at"),
    )
}

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

/// The SQL of `no-telemetry`.
fn no_telemetry_sql(d: &Dialect, p: &Params) -> String {
    let org_u = d.org_filter("u.org_id", p.org.as_deref());
    let org_a = d.org_filter("org_id", p.org.as_deref());
    format!(
        "SELECT NULL AS org_id, NULL AS user_id, NULL AS email, NULL AS role, NULL AS created_at, NULL AS at, \
                {ev} AS evidence",
        ev = d.obj(&[
            (
                "login_events_since",
                format!(
                    "(SELECT COUNT(*) FROM audit_logs WHERE action IN ('login_success', 'login_failed', 'logout') \
                      AND {}{org_a})",
                    d.ts_cmp("ts", ">=", p.since)
                ),
            ),
            ("oldest_audit_row", format!("(SELECT {} FROM audit_logs)", d.ts_text("MIN(ts)"))),
            (
                "newest_privileged_account",
                format!("(SELECT {} FROM users u WHERE {PRIVILEGED}{org_u})", d.ts_text("MAX(u.created_at)")),
            ),
        ]),
    )
}

/// Rows the rules skip: details not an object, no email, a registration without role.
pub fn unparseable_sql(backend: DbBackend, p: &Params) -> String {
    let d = Dialect::new(backend);
    format!(
        "SELECT COUNT(*) AS n FROM audit_logs \
         WHERE action IN ('user_registered', 'login_failed', 'login_success', 'logout'){org} \
         AND (details IS NULL OR NOT {obj} OR {email} IS NULL \
              OR (action = 'user_registered' AND {role} IS NULL))",
        org = d.org_filter("org_id", p.org.as_deref()),
        obj = d.is_obj("details"),
        email = d.j("details", "email"),
        role = d.j("details", "role"),
    )
}

pub async fn count_unparseable<C: ConnectionTrait>(
    conn: &C,
    backend: DbBackend,
    p: &Params,
) -> Result<i64> {
    let row = conn
        .query_one_raw(Statement::from_string(backend, unparseable_sql(backend, p)))
        .await
        .map_err(|e| Error::from_db(e, "counting unparseable audit rows"))?;
    match row {
        Some(r) => r
            .try_get("", "n")
            .map_err(|e| Error::from_db(e, "counting unparseable audit rows")),
        None => Ok(0),
    }
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

/// Severity and message of a finding about how an account came to be.
fn assess_accounts(
    rule: Rule,
    ev: &Evidence,
    role: Option<&str>,
    p: &Params,
) -> Result<(Risk, String)> {
    Ok(match rule {
        Rule::PrivilegedWithoutProvenance => (
            Risk::Critical,
            format!(
                "{} with no registration by an owner/admin of its org or ecomind-admin ({} registration rows; created_by: {})",
                role.unwrap_or("?"),
                ev.n("registrations")?,
                ev.s("created_by")?
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
        Rule::CaseVariantEmail => {
            return Err(Error::internal(
                "case-variant-email rows are grouped by case_variants",
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
        Rule::BruteForce | Rule::SuccessAfterFailures | Rule::NoTelemetry => {
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
        let email = text(row, "email")?.unwrap_or_default();
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

/// no-telemetry's single row always comes back; it is a finding only when the audit
/// cannot see what it needs to. Returned as an `Info` placeholder that the caller drops
/// when `evidence.inconclusive` is false.
fn no_telemetry(evidence: &Value) -> Result<Finding> {
    let ev = Evidence {
        rule: Rule::NoTelemetry,
        v: evidence,
    };
    let logins = ev.n("login_events_since")?;
    let oldest = evidence.get("oldest_audit_row").and_then(Value::as_str);
    let newest_priv = evidence
        .get("newest_privileged_account")
        .and_then(Value::as_str);
    let mut reasons = Vec::new();
    if logins == 0 {
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
