//! The one pass over `audit_logs`: every rule that reads it is a branch of one
//! statement over one working set, so the table is scanned once per run whatever the
//! number of rules and findings.
//!
//! 1. `w` (materialized): the rows of the four actions the rules read, filtered on
//!    `action` first, with the keys of `details` the rules need taken out once. Kept:
//!    every registration, the logins from `since - 1h`, and the rows whose details the
//!    rules cannot read (counted as unparseable).
//! 2. `reg` (materialized): each registration classified once (its creator, whether
//!    the creator was an owner or admin of the org), and `pu`: per user, by equality
//!    joins (by user_id, then by lowercased email where user_id differs), the
//!    registrations about it, whether one is authorized / clean, and their creators.
//! 3. `fe` (materialized): failures per email, counted by hashing. Brute force and
//!    success-after-failures take their candidate emails from it (enough failures;
//!    for the latter, enough in two adjacent hours), then compute exact windows for
//!    the candidates only.
//!
//! Each branch returns the columns of a finding plus `rule`; the caller turns rows
//! into findings ([`super::rules::finding`]). The row with `rule = 'unparseable'`
//! carries the count of rows the rules cannot read, in `evidence`.

use sea_orm::DbBackend;

use super::rules::{FAILURES_BEFORE_SUCCESS, Params, Rule};
use super::sql::Dialect;
use crate::records::CREATED_BY;

/// Settings of the audit's own read-only transaction on PostgreSQL (`SET LOCAL`: they
/// end with it). Measured on 5,000,000 audit rows (scripts/bench-audit.sh data):
/// - `enable_nestloop = off`: the planner estimates a materialized CTE at a few
///   thousand rows whatever it holds, and joined the 1.1M logins to the brute-force
///   candidates by nested loop (a CTE rescan per candidate: over 10 minutes); every
///   join here is an equality join that a hash join answers in one pass.
/// - `jit = off`: JIT compilation cost ~0.7 s on the per-rule statements this replaced
///   (issue 13 measured it); not measured separately on the pass.
/// - `parallel_tuple_cost = 0.001`: the scan keeps ~1.2M of 5M rows; at the default
///   (0.1) the planner prefers one process parsing every row's JSON.
pub const SETTINGS: [&str; 3] = [
    "SET LOCAL enable_nestloop = off",
    "SET LOCAL jit = off",
    "SET LOCAL parallel_tuple_cost = 0.001",
];

/// The name of the row that carries the unparseable count.
pub const UNPARSEABLE: &str = "unparseable";

/// The statement of the pass for the `selected` rules (those that
/// [`Rule::reads_audit_logs`]; the
/// unparseable count is always there).
pub fn statement(backend: DbBackend, p: &Params, selected: &[Rule]) -> String {
    let d = Dialect::new(backend);
    let mut branches = Vec::new();
    for (ord, rule) in Rule::ALL.iter().enumerate() {
        if !rule.reads_audit_logs() || !selected.contains(rule) {
            continue;
        }
        if let Some(sql) = branch(&d, *rule, p) {
            branches.push(format!(
                "SELECT {ord} AS ord, '{name}' AS rule, org_id, user_id, email, role, created_at, at, \
                 evidence, sort_ts FROM ({sql}) b{ord}",
                name = rule.name()
            ));
        }
    }
    branches.push(format!(
        "SELECT {n} AS ord, '{UNPARSEABLE}' AS rule, NULL AS org_id, NULL AS user_id, NULL AS email, \
         NULL AS role, NULL AS created_at, NULL AS at, CAST(COUNT(*) AS TEXT) AS evidence, {no_ts} AS sort_ts \
         FROM w WHERE {bad}{org}",
        n = Rule::ALL.len(),
        no_ts = d.null_ts(),
        bad = unparseable(&d),
        org = d.org_filter("org_id", p.org.as_deref()),
    ));
    format!(
        "WITH {w}, {reg}, {rc}, {pu}, {fe}, {brute}, {success} \
         SELECT rule, org_id, user_id, email, role, created_at, at, evidence FROM ({union}) f \
         ORDER BY ord, sort_ts",
        w = working_set(&d, p),
        reg = registrations(p),
        rc = role_changes(&d, p),
        pu = per_user(&d),
        fe = failures_per_email(&d, p),
        brute = brute_force_ctes(&d, p),
        success = success_after_failures_ctes(&d, p),
        union = branches.join(" UNION ALL "),
    )
}

/// A row of `w` the rules cannot read: no email (details missing, not an object, or
/// without the key), a registration without its role, or a role change without its
/// new role.
fn unparseable(d: &Dialect) -> String {
    format!(
        "(email IS NULL OR (action = 'user_registered' AND reg_role IS NULL) \
          OR (action = 'role_changed' AND {} IS NULL))",
        d.j("rc_details", "new_role")
    )
}

/// The working set: one scan of audit_logs, each kept row's keys taken out of
/// `details` once.
fn working_set(d: &Dialect, p: &Params) -> String {
    let email = d.j("a.details", "email");
    let org = d.org_filter("a.org_id", p.org.as_deref());
    format!(
        "w AS MATERIALIZED (SELECT a.id AS audit_id, a.org_id, a.user_id, a.action, a.ts, {email} AS email, \
                lower({email}) AS email_l, \
                CASE WHEN a.action = 'user_registered' THEN {role} END AS reg_role, \
                CASE WHEN a.action = 'user_registered' THEN {by} END AS created_by, \
                CASE WHEN a.action = 'login_failed' THEN {reason} END AS reason, \
                CASE WHEN a.action = 'user_registered' THEN {obj} END AS obj, \
                CASE WHEN a.action = 'role_changed' THEN a.details END AS rc_details \
         FROM audit_logs a \
         WHERE a.action IN ('user_registered', 'role_changed', 'login_failed', 'login_success', 'logout') \
           AND ((a.action IN ('user_registered', 'role_changed') AND {obj}) \
                OR (a.action NOT IN ('user_registered', 'role_changed') AND {recent}{org} AND {email} IS NOT NULL) \
                OR ({email} IS NULL{org}) \
                OR (a.action = 'user_registered' AND {role} IS NULL{org}) \
                OR (a.action = 'role_changed' AND {new_role} IS NULL{org})))",
        role = d.j("a.details", "role"),
        new_role = d.j("a.details", "new_role"),
        by = d.j("a.details", "created_by"),
        reason = d.j("a.details", "reason"),
        obj = d.is_obj("a.details"),
        recent = d.ts_cmp("a.ts", ">=", p.since - chrono::Duration::hours(1)),
    )
}

/// ` AND <audit_id column> IN (the verified rows)` when an audit key is configured: a
/// row's claim to be ecomind-admin's counts only when its tag verified.
fn verified(p: &Params, audit_id: &str) -> String {
    match &p.verified {
        None => String::new(),
        Some(ids) if ids.is_empty() => " AND 1 = 0".to_owned(),
        Some(ids) => format!(
            " AND {audit_id} IN ({})",
            ids.iter()
                .map(|id| crate::db::quote_literal(id))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Each registration once: its creator, whether ecomind-admin made it (`by_admin`: its
/// claim, verified when a key is configured), and whether the creator was allowed to
/// make it (ecomind-admin, or an owner or admin of the same org).
fn registrations(p: &Params) -> String {
    format!(
        "reg AS MATERIALIZED (SELECT r.audit_id, r.org_id, r.user_id, r.ts, r.email, r.email_l, \
                r.reg_role, r.created_by, c.id AS creator_id, c.org_id AS creator_org, \
                CAST(c.role AS TEXT) AS creator_role, \
                COALESCE(r.created_by = '{CREATED_BY}'{v}, FALSE) AS by_admin, \
                (COALESCE(r.created_by = '{CREATED_BY}'{v}, FALSE) \
                 OR COALESCE(c.org_id = r.org_id AND CAST(c.role AS TEXT) IN ('owner', 'admin'), FALSE)) AS authorized \
         FROM w r LEFT JOIN users c ON c.id = r.created_by \
         WHERE r.action = 'user_registered' AND r.obj)",
        v = verified(p, "r.audit_id"),
    )
}

/// Each `role_changed` row once (ecomind-admin's `users set-role`, or any other writer
/// of that action): its keys, and whether its author could make it (ecomind-admin, or
/// an owner or admin of the same org).
fn role_changes(d: &Dialect, p: &Params) -> String {
    let by = d.j("r.rc_details", "changed_by");
    format!(
        "rc AS MATERIALIZED (SELECT r.audit_id, r.org_id, r.user_id, r.ts, \
                {new_role} AS new_role, {old_role} AS old_role, {by} AS changed_by, \
                {reason} AS reason, {os_user} AS os_user, {host} AS host, \
                (COALESCE({by} = '{CREATED_BY}'{v}, FALSE) \
                 OR COALESCE(c.org_id = r.org_id AND CAST(c.role AS TEXT) IN ('owner', 'admin'), FALSE)) AS authorized \
         FROM w r LEFT JOIN users c ON c.id = {by} \
         WHERE r.action = 'role_changed' AND {new_role} IS NOT NULL)",
        v = verified(p, "r.audit_id"),
        new_role = d.j("r.rc_details", "new_role"),
        old_role = d.j("r.rc_details", "old_role"),
        reason = d.j("r.rc_details", "reason"),
        os_user = d.j("r.rc_details", "os_user"),
        host = d.j("r.rc_details", "host"),
    )
}

/// Per user: the registrations about it (by user_id, then by email where the user_id
/// is another's), whether one is authorized (`has_ok`) or clean (`has_clean`: a viewer,
/// or made by ecomind-admin), and who made them; and `le`, the latest recorded event
/// that set its role (a registration, or a role change by user_id): which, the role,
/// by whom, when, and whether its author could make it.
fn per_user(d: &Dialect) -> String {
    let clean = "(r.authorized AND (r.reg_role = 'viewer' OR r.by_admin))".to_owned();
    format!(
        "ru AS (SELECT u.id AS uid, r.authorized, {clean} AS clean, r.created_by, r.ts, r.audit_id, r.reg_role \
                FROM reg r JOIN users u ON u.id = r.user_id \
                UNION ALL \
                SELECT u.id, r.authorized, {clean}, r.created_by, r.ts, r.audit_id, r.reg_role \
                FROM reg r JOIN users u ON lower(u.email) = r.email_l \
                WHERE {other}), \
         pu AS MATERIALIZED (SELECT uid, COUNT(*) AS registrations, {ok} AS has_ok, {cl} AS has_clean, \
                {creators} AS creators FROM ru GROUP BY uid), \
         ev AS (SELECT uid, ts, audit_id, 'user_registered' AS action, reg_role AS role, created_by AS by_, authorized FROM ru \
                UNION ALL \
                SELECT u.id, c.ts, c.audit_id, 'role_changed', c.new_role, c.changed_by, c.authorized \
                FROM rc c JOIN users u ON u.id = c.user_id), \
         le AS MATERIALIZED (SELECT uid, action, role, by_, ts, authorized FROM \
                (SELECT ev.*, ROW_NUMBER() OVER (PARTITION BY uid ORDER BY ts DESC, audit_id DESC) AS n FROM ev) x \
                WHERE n = 1)",
        other = d.distinct_from("r.user_id", "u.id"),
        ok = d.bool_or("authorized"),
        cl = d.bool_or("clean"),
        creators = d.agg("COALESCE(created_by, '<none>')"),
    )
}

/// Failures per email, over all the failures of `w` (from `since - 1h`), counted by
/// hashing: the login rules look closer only at the emails with enough of them.
fn failures_per_email(d: &Dialect, p: &Params) -> String {
    format!(
        "fe AS MATERIALIZED (SELECT email_l, COUNT(*) AS n, \
                                    SUM(CASE WHEN {since} THEN 1 ELSE 0 END) AS n_since FROM w \
                             WHERE action = 'login_failed' AND email_l IS NOT NULL GROUP BY email_l)",
        since = d.ts_cmp("ts", ">=", p.since),
    )
}

/// brute-force: candidates are the emails with at least `threshold` failures inside
/// `--since`; exact sliding windows only for them.
fn brute_force_ctes(d: &Dialect, p: &Params) -> String {
    format!(
        "bf_w AS (SELECT l.email_l, l.ts, l.reason, \
                         COUNT(*) OVER (PARTITION BY l.email_l {per_minute}) AS per_minute, \
                         COUNT(*) OVER (PARTITION BY l.email_l {per_hour}) AS per_hour \
                  FROM w l JOIN fe c ON c.email_l = l.email_l \
                  WHERE c.n_since >= {threshold} AND l.action = 'login_failed' AND {l_since}), \
         bf AS (SELECT email_l, MAX(per_minute) AS max_per_minute, MAX(per_hour) AS max_per_hour, \
                       COUNT(*) AS failures, MIN(ts) AS first_ts, MAX(ts) AS last_ts, {reasons} AS reasons \
                FROM bf_w GROUP BY email_l HAVING MAX(per_minute) >= {threshold})",
        threshold = p.failed_threshold,
        per_minute = d.following(60),
        per_hour = d.following(3600),
        l_since = d.ts_cmp("l.ts", ">=", p.since),
        reasons = d.agg_distinct("reason"),
    )
}

/// success-after-failures: candidates are the emails with at least 5 failures, of
/// which 5 in two adjacent hours (counted per hour for those emails only); exact
/// windows, and the successes inside `--since`, only for them.
fn success_after_failures_ctes(d: &Dialect, p: &Params) -> String {
    format!(
        "fh AS (SELECT l.email_l, {hour} AS h, COUNT(*) AS n FROM w l JOIN fe c ON c.email_l = l.email_l \
                WHERE c.n >= {n} AND l.action = 'login_failed' GROUP BY l.email_l, {hour}), \
         sa_c AS (SELECT DISTINCT a.email_l FROM fh a LEFT JOIN fh b ON b.email_l = a.email_l AND b.h = {prev_h} \
                  WHERE a.n + COALESCE(b.n, 0) >= {n}), \
         sa_w AS (SELECT l.email_l, l.ts, l.action, \
                         SUM(CASE WHEN l.action = 'login_failed' THEN 1 ELSE 0 END) \
                           OVER (PARTITION BY l.email_l {hour_before}) AS failures_before \
                  FROM w l JOIN sa_c c ON c.email_l = l.email_l \
                  WHERE l.action IN ('login_failed', 'login_success')), \
         sa AS (SELECT email_l, MIN(ts) AS first_success, MAX(failures_before) AS failures, COUNT(*) AS successes \
                FROM sa_w WHERE action = 'login_success' AND {since} AND failures_before >= {n} GROUP BY email_l)",
        hour = d.hour("l.ts"),
        prev_h = d.previous_hour("a.h"),
        since = d.ts_cmp("ts", ">=", p.since),
        n = FAILURES_BEFORE_SUCCESS,
        hour_before = d.preceding(3600),
    )
}

const PRIVILEGED: &str = "CAST(u.role AS TEXT) IN ('owner', 'admin')";

/// One rule's branch: the columns of a finding, and `sort_ts` (its order in the rule).
fn branch(d: &Dialect, rule: Rule, p: &Params) -> Option<String> {
    let org_u = d.org_filter("u.org_id", p.org.as_deref());
    let org_r = d.org_filter("r.org_id", p.org.as_deref());
    Some(match rule {
        Rule::PrivilegedWithoutProvenance => user_branch(
            d,
            &format!(
                "{PRIVILEGED}{org_u} AND NOT COALESCE(le.authorized AND lower(le.role) = CAST(u.role AS TEXT), FALSE)"
            ),
            &[
                ("registrations", "COALESCE(pu.registrations, 0)".into()),
                ("created_by", "pu.creators".into()),
                ("recorded_action", "le.action".into()),
                ("recorded_role", "le.role".into()),
                ("recorded_by", "le.by_".into()),
                ("recorded_at", d.ts_text("le.ts")),
                ("recorded_authorized", d.boolean("le.authorized")),
            ],
        ),
        Rule::RoleChangedRecently => role_change_branch(d, p),
        Rule::RegisteredBeforeFix => {
            let fixed = p.fixed_at?;
            user_branch(
                d,
                &format!(
                    "{}{org_u} AND NOT COALESCE(pu.has_clean, FALSE)",
                    d.ts_cmp("u.created_at", "<", fixed)
                ),
                &[
                    ("fixed_at", format!("'{}'", crate::records::iso(fixed))),
                    ("created_by", "pu.creators".into()),
                ],
            )
        }
        Rule::PrivilegedCreatedRecently => user_branch(
            d,
            &format!(
                "{PRIVILEGED} AND {}{org_u}",
                d.ts_cmp("u.created_at", ">=", p.since)
            ),
            &[("created_by", "pu.creators".into())],
        ),
        Rule::ElevatedRoleAtRegistration => registration_branch(
            d,
            &format!(
                "r.reg_role IS NOT NULL AND r.reg_role <> 'viewer' \
                 AND NOT r.by_admin{org_r}"
            ),
            &[("registered_role", "r.reg_role".into())],
        ),
        Rule::RegisteredByUnauthorized => registration_branch(
            d,
            &format!(
                "(r.created_by IS NULL OR (NOT r.by_admin AND (r.creator_id IS NULL \
                  OR r.creator_org <> r.org_id OR r.creator_role NOT IN ('owner', 'admin')))){org_r}"
            ),
            &[
                ("creator_org", "r.creator_org".into()),
                ("creator_role", "r.creator_role".into()),
            ],
        ),
        Rule::BruteForce | Rule::SuccessAfterFailures => login_rule(d, rule),
        Rule::NoTelemetry => no_telemetry(d, p),
        Rule::CaseVariantEmail
        | Rule::MultipleOwners
        | Rule::PrivilegedWithoutPassword
        | Rule::ForgedProvenance
        | Rule::UnreachableEmail => {
            return None;
        }
    })
}

/// The branch of a login rule (brute-force, success-after-failures).
fn login_rule(d: &Dialect, rule: Rule) -> String {
    if rule == Rule::BruteForce {
        return login_branch(
            d,
            "bf",
            "last_ts",
            &[
                ("max_in_60s", "b.max_per_minute".into()),
                ("max_in_1h", "b.max_per_hour".into()),
                ("failures", "b.failures".into()),
                ("first", d.ts_text("b.first_ts")),
                ("last", d.ts_text("b.last_ts")),
                ("reasons", "b.reasons".into()),
            ],
        );
    }
    login_branch(
        d,
        "sa",
        "first_success",
        &[
            ("failures_in_prior_hour", "b.failures".into()),
            ("successes_after_failures", "b.successes".into()),
            ("first_success", d.ts_text("b.first_success")),
        ],
    )
}

/// One finding per user `u` matching `cond`, with `pu` (its registrations) and `le`
/// (its latest recorded role) joined.
fn user_branch(d: &Dialect, cond: &str, evidence: &[(&str, String)]) -> String {
    format!(
        "SELECT u.org_id AS org_id, u.id AS user_id, u.email AS email, CAST(u.role AS TEXT) AS role, \
                {created} AS created_at, {created} AS at, {ev} AS evidence, u.created_at AS sort_ts \
         FROM users u LEFT JOIN pu ON pu.uid = u.id LEFT JOIN le ON le.uid = u.id WHERE {cond}",
        created = d.ts_text("u.created_at"),
        ev = d.obj(evidence),
    )
}

/// role-changed-recently: one finding per role change to owner or admin inside
/// `--since`, with who ran it.
fn role_change_branch(d: &Dialect, p: &Params) -> String {
    format!(
        "SELECT c.org_id AS org_id, COALESCE(u.id, c.user_id) AS user_id, u.email AS email, \
                CAST(u.role AS TEXT) AS role, {created} AS created_at, {at} AS at, {ev} AS evidence, c.ts AS sort_ts \
         FROM rc c LEFT JOIN users u ON u.id = c.user_id \
         WHERE lower(c.new_role) IN ('owner', 'admin') AND {since}{org}",
        created = d.ts_text("u.created_at"),
        at = d.ts_text("c.ts"),
        since = d.ts_cmp("c.ts", ">=", p.since),
        org = d.org_filter("c.org_id", p.org.as_deref()),
        ev = d.obj(&[
            ("audit_id", "c.audit_id".into()),
            ("changed_at", d.ts_text("c.ts")),
            ("old_role", "c.old_role".into()),
            ("new_role", "c.new_role".into()),
            ("changed_by", "c.changed_by".into()),
            ("os_user", "c.os_user".into()),
            ("host", "c.host".into()),
            ("reason", "c.reason".into()),
        ]),
    )
}

/// One finding per flagged registration `r`, with the user it is about: by user_id;
/// without one, the first user with its email.
fn registration_branch(d: &Dialect, cond: &str, extra: &[(&str, String)]) -> String {
    let mut ev = vec![
        ("audit_id", "r.audit_id".to_owned()),
        ("created_by", "r.created_by".to_owned()),
        ("registered_at", d.ts_text("r.ts")),
    ];
    ev.extend(extra.iter().cloned());
    format!(
        "SELECT r.org_id AS org_id, COALESCE(u.id, r.user_id) AS user_id, COALESCE(u.email, r.email) AS email, \
                CAST(u.role AS TEXT) AS role, {created} AS created_at, {at} AS at, {ev} AS evidence, r.ts AS sort_ts \
         FROM reg r \
         LEFT JOIN (SELECT lower(email) AS email_l, MIN(id) AS id FROM users GROUP BY lower(email)) tx \
           ON r.user_id IS NULL AND tx.email_l = r.email_l \
         LEFT JOIN users u ON u.id = COALESCE(r.user_id, tx.id) WHERE {cond}",
        created = d.ts_text("u.created_at"),
        at = d.ts_text("r.ts"),
        ev = d.obj(&ev),
    )
}

/// One finding per email of the login rule's CTE `cte`, with the users of that email.
fn login_branch(d: &Dialect, cte: &str, at: &str, evidence: &[(&str, String)]) -> String {
    format!(
        "SELECT u.org_id AS org_id, u.id AS user_id, COALESCE(u.email, b.email_l) AS email, \
                CAST(u.role AS TEXT) AS role, {created} AS created_at, {at_text} AS at, {ev} AS evidence, \
                b.{at} AS sort_ts \
         FROM {cte} b LEFT JOIN users u ON lower(u.email) = b.email_l",
        created = d.ts_text("u.created_at"),
        at_text = d.ts_text(&format!("b.{at}")),
        ev = d.obj(evidence),
    )
}

/// no-telemetry's one row: whether any login is inside `--since` (EXISTS; counted only
/// when the audit is inconclusive for another reason), the oldest audit row and the
/// newest privileged account.
fn no_telemetry(d: &Dialect, p: &Params) -> String {
    let org_u = d.org_filter("u.org_id", p.org.as_deref());
    let logins = format!(
        "FROM w WHERE action IN ('login_success', 'login_failed', 'logout') AND {}",
        d.ts_cmp("ts", ">=", p.since)
    );
    let oldest = "(SELECT MIN(ts) FROM audit_logs)".to_owned();
    let newest = format!("(SELECT MAX(u.created_at) FROM users u WHERE {PRIVILEGED}{org_u})");
    format!(
        "SELECT NULL AS org_id, NULL AS user_id, NULL AS email, NULL AS role, NULL AS created_at, NULL AS at, \
                {ev} AS evidence, {no_ts} AS sort_ts",
        no_ts = d.null_ts(),
        ev = d.obj(&[
            (
                "login_events_since",
                format!(
                    "CASE WHEN NOT EXISTS (SELECT 1 {logins}) THEN 0 \
                          WHEN {later} THEN (SELECT COUNT(*) {logins}) END",
                    later = d.later(&oldest, &newest),
                ),
            ),
            ("oldest_audit_row", d.ts_text(&oldest)),
            ("newest_privileged_account", d.ts_text(&newest)),
        ]),
    )
}
