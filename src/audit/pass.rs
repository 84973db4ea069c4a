//! The one pass over `audit_logs`: every rule that reads it is a branch of one
//! statement over one working set, so the table is scanned once per run whatever the
//! number of rules and findings; each row's `details` is parsed once where one key is
//! enough.
//!
//! 1. `w` (materialized, narrow rows): what the rules read and nothing else: the
//!    registrations and role changes (with the keys of a registration), the failed
//!    logins from `since - 1h` (the address lowercased, the reason), and the rows the
//!    rules cannot read (only to be counted). On PostgreSQL a successful login or a
//!    logout is parsed only to learn whether it is readable, and dropped (every kept
//!    row goes from the parallel workers through one process); SQLite, without that
//!    funnel, keeps the recent successful logins and answers success-after-failures
//!    in the pass.
//! 2. `reg`: each registration classified once (its creator, whether the creator was
//!    an owner or admin of the org), and `pu`: per user, by equality joins (by
//!    user_id, then by lowercased email where user_id differs), the registrations
//!    about it, whether one is clean, and their creators; `le`, its latest recorded
//!    role event.
//! 3. `fe`: failures per address, counted by hashing. Brute force takes its candidates
//!    from it (enough failures inside `--since`) and computes exact windows for them
//!    only. On PostgreSQL, success-after-failures takes its candidates too (the hours
//!    with failures that make 5 with the hour before) and returns them as rows
//!    `rule = 'candidate'` with the span of those failures, and their failed logins as
//!    rows `rule = 'candidate-failure'`: the successful logins it needs are read
//!    afterwards ([`successes_statement`]), in the same snapshot, only for those
//!    addresses and within an hour of those spans, through the index on `ts`, so that
//!    the pass never carries the (many) successful logins of everyone else.
//! 4. On SQLite, which runs a statement on one core, the pass is two statements
//!    ([`Part`]) run at once on two connections by the caller: the accounts' part
//!    (1, 2 and the unparseable count) and the logins' part (3, over a `w` of the
//!    logins from `since - 1h` only).
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
/// - `enable_sort = off`, `enable_mergejoin = off`, `work_mem = 64MB`: the same
///   estimates made it sort 285,000 failures to count them per address (0.7 s where
///   hashing takes 0.15 s); only the windows and the latest event per user still sort
///   (they must), on byte-compared keys.
/// - `jit = off`: JIT compilation cost ~0.7 s on the per-rule statements this replaced
///   (issue 13 measured it).
/// - `parallel_tuple_cost = 0.001`: the scan keeps a fraction of the rows; at the
///   default (0.1) the planner prefers one process parsing every row's JSON.
pub const SETTINGS: [&str; 6] = [
    "SET LOCAL enable_nestloop = off",
    "SET LOCAL enable_sort = off",
    "SET LOCAL enable_mergejoin = off",
    "SET LOCAL work_mem = '64MB'",
    "SET LOCAL jit = off",
    "SET LOCAL parallel_tuple_cost = 0.001",
];

/// The name of the row that carries the unparseable count.
pub const UNPARSEABLE: &str = "unparseable";
/// The name of the rows that carry success-after-failures's candidates: `email` the
/// lowercased address, `at` and `created_at` the first and last failure of its span.
pub const CANDIDATE: &str = "candidate";
/// The name of the rows (PostgreSQL) that carry the failed logins of those candidates
/// from `since - 1h` (`email`, `at`): the second step reads only successful logins.
pub const CANDIDATE_FAILURE: &str = "candidate-failure";

/// What a statement of the pass answers. On PostgreSQL, everything ([`Part::All`]):
/// its parallel workers already use the cores. On SQLite, which runs a statement on
/// one core, the pass can be two statements on two connections at once
/// (`one_pass` in the audit module): [`Part::Accounts`] reads the whole table (the accounts'
/// rules and the unparseable count), [`Part::Logins`] only the logins from
/// `since - 1h` (brute-force and success-after-failures). Their findings are those of
/// [`Part::All`], in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    All,
    Accounts,
    Logins,
}

impl Part {
    /// Whether `rule` is answered by this part.
    pub fn has(self, rule: Rule) -> bool {
        let logins = matches!(rule, Rule::BruteForce | Rule::SuccessAfterFailures);
        match self {
            Part::All => true,
            Part::Accounts => !logins,
            Part::Logins => logins,
        }
    }
}

/// The statement of `part` of the pass for the `selected` rules (those that
/// [`Rule::reads_audit_logs`], no-telemetry and success-after-failures's last step
/// aside: [`no_telemetry_statement`], [`successes_statement`]); the unparseable
/// count is always there, except in [`Part::Logins`] (asked for only with a login rule
/// selected).
pub fn statement(backend: DbBackend, p: &Params, selected: &[Rule], part: Part) -> String {
    let d = Dialect::new(backend);
    let mut branches = Vec::new();
    for (ord, rule) in Rule::ALL.iter().enumerate() {
        if !rule.reads_audit_logs() || !selected.contains(rule) || !part.has(*rule) {
            continue;
        }
        if let Some(sql) = branch(&d, *rule, p) {
            let name = if *rule == Rule::SuccessAfterFailures && d.is_pg() {
                CANDIDATE
            } else {
                rule.name()
            };
            branches.push(format!(
                "SELECT {ord} AS ord, '{name}' AS rule, org_id, user_id, email, role, created_at, at, \
                 evidence, sort_ts FROM ({sql}) b{ord}"
            ));
        }
    }
    if part != Part::Logins {
        branches.push(unparseable_branch(&d, p));
    }
    if d.is_pg() && selected.contains(&Rule::SuccessAfterFailures) {
        branches.push(format!(
            "SELECT {n} AS ord, '{CANDIDATE_FAILURE}' AS rule, NULL AS org_id, NULL AS user_id, \
             el AS email, NULL AS role, NULL AS created_at, {at} AS at, NULL AS evidence, ts AS sort_ts \
             FROM w WHERE k = 3 AND el IN (SELECT email_l FROM sc)",
            n = Rule::ALL.len() + 1,
            at = d.ts_text("ts"),
        ));
    }
    let mut ctes = vec![working_set(&d, p, part)];
    if part != Part::Logins {
        ctes.extend([
            registrations(&d, p),
            "tx AS MATERIALIZED (SELECT lower(email) AS email_l, MIN(id) AS id FROM users \
             WHERE lower(email) IN (SELECT email_l FROM reg WHERE user_id IS NULL) GROUP BY lower(email))"
                .to_owned(),
            role_changes(&d, p),
            per_user(&d),
        ]);
    }
    if part != Part::Accounts {
        ctes.extend([
            failures_per_email(&d, p),
            brute_force_ctes(&d, p),
            if d.is_pg() {
                success_candidates_ctes(&d)
            } else {
                success_in_pass_ctes(&d, p)
            },
        ]);
    }
    format!(
        "WITH {ctes} \
         SELECT rule, org_id, user_id, email, role, created_at, at, evidence FROM ({union}) f \
         ORDER BY ord, sort_ts, {ties}",
        ctes = ctes.join(", "),
        union = branches.join(" UNION ALL "),
        // Findings at the same time come in one order whatever the plan.
        ties = ["user_id", "email", "org_id"]
            .map(|c| d.bytes(c))
            .join(", "),
    )
}

/// The row that carries the unparseable count.
fn unparseable_branch(d: &Dialect, p: &Params) -> String {
    format!(
        "SELECT {n} AS ord, '{UNPARSEABLE}' AS rule, NULL AS org_id, NULL AS user_id, NULL AS email, \
         NULL AS role, NULL AS created_at, NULL AS at, CAST(COUNT(*) AS TEXT) AS evidence, {no_ts} AS sort_ts \
         FROM w WHERE {bad} AND (k >= 3{org})",
        n = Rule::ALL.len(),
        no_ts = d.null_ts(),
        bad = unparseable(d),
        org = p
            .org
            .as_deref()
            .map(|o| format!(" OR org_id = {}", crate::db::quote_literal(o)))
            .unwrap_or_else(|| " OR 1 = 1".to_owned()),
    )
}

/// A row of `w` the rules cannot read: a registration without email or role, a role
/// change without email or new role, a failed login without email; the other logins
/// and logouts are in `w` only when unreadable (a document that is not an object, has
/// no email, or has a `\u0000` escape reads as NULL here).
fn unparseable(d: &Dialect) -> String {
    format!(
        "(CASE k WHEN 1 THEN e IS NULL OR reg_role IS NULL \
                 WHEN 2 THEN e IS NULL OR {new_role} IS NULL \
                 WHEN 3 THEN el IS NULL WHEN 4 THEN el IS NULL ELSE 1 = 1 END)",
        new_role = d.j("rc_details", "new_role")
    )
}

/// The working set: one scan of audit_logs; of each kept row only what the rules read,
/// each key taken out of `details` once. `k`: 1 registration, 2 role change, 3 failed
/// login, 4 successful login, 5 logout.
fn working_set(d: &Dialect, p: &Params, part: Part) -> String {
    let ok = d.nul_free("a.details");
    let org = d.org_filter("a.org_id", p.org.as_deref());
    let acct = "a.action IN ('user_registered', 'role_changed')";
    let recent = d.ts_cmp("a.ts", ">=", p.since - chrono::Duration::hours(1));
    // PostgreSQL funnels every kept row from its parallel workers to one process: a
    // successful login is worth keeping only for success-after-failures's candidates,
    // read afterwards. SQLite has no funnel: one pass keeps them (see the module doc).
    let logins = if d.is_pg() {
        "a.action = 'login_failed'"
    } else {
        "a.action IN ('login_failed', 'login_success')"
    };
    let get = |key: &str| d.j("a.details", key);
    let email = get("email");
    format!(
        "w AS MATERIALIZED (SELECT \
                CASE a.action WHEN 'user_registered' THEN 1 WHEN 'role_changed' THEN 2 \
                     WHEN 'login_failed' THEN 3 WHEN 'login_success' THEN 4 ELSE 5 END AS k, a.ts, \
                CASE WHEN {acct} THEN a.id END AS audit_id, \
                CASE WHEN {acct} THEN a.org_id END AS org_id, \
                CASE WHEN {acct} THEN a.user_id END AS user_id, \
                CASE WHEN {acct} THEN {ok} AND {obj} END AS obj, \
                CASE WHEN {acct} AND {ok} THEN {email} END AS e, \
                CASE WHEN {logins} AND {ok} AND {recent} THEN {el} END AS el, \
                CASE WHEN a.action = 'login_failed' AND {ok} AND {recent} THEN {reason} END AS reason, \
                CASE WHEN a.action = 'user_registered' AND {ok} THEN {role} END AS reg_role, \
                CASE WHEN a.action = 'user_registered' AND {ok} THEN {by} END AS created_by, \
                CASE WHEN a.action = 'role_changed' AND {ok} THEN a.details END AS rc_details \
         FROM audit_logs a \
         WHERE {rows})",
        rows = match part {
            Part::All => format!(
                "a.action IN ('user_registered', 'role_changed', 'login_failed', 'login_success', 'logout') \
                 AND ({acct} OR ({logins} AND {recent}{org}) OR ((NOT {ok} OR {email} IS NULL){org}))"
            ),
            Part::Accounts => format!(
                "a.action IN ('user_registered', 'role_changed', 'login_failed', 'login_success', 'logout') \
                 AND ({acct} OR ((NOT {ok} OR {email} IS NULL){org}))"
            ),
            Part::Logins => format!("{logins} AND {recent}{org}"),
        },
        obj = d.is_obj("a.details"),
        el = d.bytes(&format!("lower({})", get("email"))),
        reason = get("reason"),
        role = get("role"),
        by = get("created_by"),
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
fn registrations(d: &Dialect, p: &Params) -> String {
    format!(
        "reg AS MATERIALIZED (SELECT r.audit_id, r.org_id, r.user_id, r.ts, r.e AS email, {email_l} AS email_l, \
                r.reg_role, r.created_by, c.id AS creator_id, c.org_id AS creator_org, \
                CAST(c.role AS TEXT) AS creator_role, \
                COALESCE(r.created_by = '{CREATED_BY}'{v}, FALSE) AS by_admin, \
                (COALESCE(r.created_by = '{CREATED_BY}'{v}, FALSE) \
                 OR COALESCE(c.org_id = r.org_id AND CAST(c.role AS TEXT) IN ('owner', 'admin'), FALSE)) AS authorized \
         FROM w r LEFT JOIN users c ON c.id = r.created_by \
         WHERE r.k = 1 AND r.obj)",
        v = verified(p, "r.audit_id"),
        email_l = d.bytes("lower(r.e)"),
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
         WHERE r.k = 2 AND r.obj AND {new_role} IS NOT NULL)",
        v = verified(p, "r.audit_id"),
        new_role = d.j("r.rc_details", "new_role"),
        old_role = d.j("r.rc_details", "old_role"),
        reason = d.j("r.rc_details", "reason"),
        os_user = d.j("r.rc_details", "os_user"),
        host = d.j("r.rc_details", "host"),
    )
}

/// Per user: the registrations about it (by user_id, then by email where the user_id
/// is another's), whether one is clean (`has_clean`: authorized, and a viewer,
/// or made by ecomind-admin), and who made them; and `le`, the latest recorded event
/// that set its role (a registration, or a role change by user_id): which, the role,
/// by whom, when, and whether its author could make it.
fn per_user(d: &Dialect) -> String {
    let clean = "(r.authorized AND (r.reg_role = 'viewer' OR r.by_admin))".to_owned();
    format!(
        "ru AS (SELECT {uid} AS uid, r.authorized, {clean} AS clean, r.created_by, r.ts, r.audit_id, r.reg_role \
                FROM reg r JOIN users u ON u.id = r.user_id \
                UNION ALL \
                SELECT {uid}, r.authorized, {clean}, r.created_by, r.ts, r.audit_id, r.reg_role \
                FROM reg r JOIN users u ON lower(u.email) = r.email_l \
                WHERE {other}), \
         pu AS MATERIALIZED (SELECT uid, COUNT(*) AS registrations, {cl} AS has_clean, \
                {creators} AS creators FROM ru GROUP BY uid), \
         ev AS (SELECT r.uid, r.ts, r.audit_id, 'user_registered' AS action, r.reg_role AS role, r.created_by AS by_, r.authorized \
                FROM ru r JOIN users u ON u.id = r.uid WHERE {privileged} \
                UNION ALL \
                SELECT {uid}, c.ts, c.audit_id, 'role_changed', c.new_role, c.changed_by, c.authorized \
                FROM rc c JOIN users u ON u.id = c.user_id WHERE {privileged}), \
         le AS MATERIALIZED (SELECT uid, action, role, by_, ts, authorized FROM \
                (SELECT ev.*, ROW_NUMBER() OVER (PARTITION BY uid ORDER BY ts DESC, audit_id DESC) AS n FROM ev) x \
                WHERE n = 1)",
        other = d.distinct_from("r.user_id", "u.id"),
        uid = d.bytes("u.id"),
        privileged = PRIVILEGED,
        cl = d.bool_or("clean"),
        creators = d.agg("COALESCE(created_by, '<none>')"),
    )
}

/// Failures per address, over the failures of `w` (from `since - 1h`), counted by
/// hashing: the login rules look closer only at the addresses with enough of them.
fn failures_per_email(d: &Dialect, p: &Params) -> String {
    format!(
        "fe AS MATERIALIZED (SELECT el AS email_l, COUNT(*) AS n, \
                                    SUM(CASE WHEN {since} THEN 1 ELSE 0 END) AS n_since FROM w \
                             WHERE k = 3 AND el IS NOT NULL GROUP BY el)",
        since = d.ts_cmp("ts", ">=", p.since),
    )
}

/// brute-force: candidates are the addresses with at least `threshold` failures inside
/// `--since`; exact sliding windows only for them.
fn brute_force_ctes(d: &Dialect, p: &Params) -> String {
    format!(
        "bf_w AS (SELECT l.el AS email_l, l.ts, l.reason, \
                         COUNT(*) OVER (PARTITION BY l.el {per_minute}) AS per_minute, \
                         COUNT(*) OVER (PARTITION BY l.el {per_hour}) AS per_hour \
                  FROM w l WHERE l.k = 3 AND {l_since} \
                  AND l.el IN (SELECT email_l FROM fe WHERE n_since >= {threshold})), \
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

/// success-after-failures, first step: the candidates are the hours `x` with failures
/// that make 5 with the hour before (counted per hour only for the addresses with 5
/// failures in all), each with the span of the failures of `x - 1` and `x`. A success
/// at `s`, in hour `y`, counts the failures of `[s - 1h, s]`, in hours `y - 1` and `y`.
/// If it has 5: when hour `y` has failures, `y` is a candidate; when not, `y - 1` has
/// the 5 alone and is one. Either way every failure it counts is in the span of the
/// candidate, and `s` is at most an hour after the span's last failure.
fn success_candidates_ctes(d: &Dialect) -> String {
    let first = format!(
        "CASE WHEN b.first_ts IS NULL OR {} THEN a.first_ts ELSE b.first_ts END",
        d.later("b.first_ts", "a.first_ts")
    );
    let last = format!(
        "CASE WHEN b.last_ts IS NULL OR {} THEN a.last_ts ELSE b.last_ts END",
        d.later("a.last_ts", "b.last_ts")
    );
    format!(
        "{fh}, \
         sc AS (SELECT a.email_l, a.h, {first} AS first_ts, {last} AS last_ts \
                FROM fh a LEFT JOIN fh b ON b.email_l = a.email_l AND b.h = {prev_h} \
                WHERE a.n + COALESCE(b.n, 0) >= {n})",
        fh = failures_per_hour(d),
        prev_h = d.previous_hour("a.h"),
        n = FAILURES_BEFORE_SUCCESS,
    )
}

/// `fh`: the failures per address and hour (with the first and last of the hour), for
/// the addresses with 5 failures in all: where success-after-failures looks.
fn failures_per_hour(d: &Dialect) -> String {
    format!(
        "fh AS (SELECT l.el AS email_l, {hour} AS h, COUNT(*) AS n, MIN(l.ts) AS first_ts, MAX(l.ts) AS last_ts \
                FROM w l WHERE l.k = 3 AND l.el IN (SELECT email_l FROM fe WHERE n >= {n}) GROUP BY l.el, {hour})",
        hour = d.hour("l.ts"),
        n = FAILURES_BEFORE_SUCCESS,
    )
}

/// `sa_w`, `sa`: success-after-failures's exact windows over `logins` (a FROM item with
/// `email_l`, `ts` and `k`, 3 a failure and 4 a success, of its candidate addresses
/// only): per address, the successes inside `--since` with 5 failures in the hour
/// before them.
fn success_windows(d: &Dialect, p: &Params, logins: &str) -> String {
    format!(
        "sa_w AS (SELECT email_l, ts, k, \
                         SUM(CASE WHEN k = 3 THEN 1 ELSE 0 END) OVER (PARTITION BY email_l {hour_before}) AS failures_before \
                  FROM {logins}), \
         sa AS (SELECT email_l, MIN(ts) AS first_success, MAX(failures_before) AS failures, COUNT(*) AS successes \
                FROM sa_w WHERE k = 4 AND {since} AND failures_before >= {n} GROUP BY email_l)",
        hour_before = d.preceding(3600),
        since = d.ts_cmp("ts", ">=", p.since),
        n = FAILURES_BEFORE_SUCCESS,
    )
}

/// success-after-failures in the pass (SQLite, where the pass keeps the successful
/// logins): candidates are the addresses with 5 failures in two adjacent hours; exact
/// windows for them only.
fn success_in_pass_ctes(d: &Dialect, p: &Params) -> String {
    format!(
        "{fh}, \
         sc AS (SELECT DISTINCT a.email_l FROM fh a LEFT JOIN fh b ON b.email_l = a.email_l AND b.h = {prev_h} \
                WHERE a.n + COALESCE(b.n, 0) >= {n}), \
         {windows}",
        fh = failures_per_hour(d),
        prev_h = d.previous_hour("a.h"),
        n = FAILURES_BEFORE_SUCCESS,
        windows = success_windows(
            d,
            p,
            "(SELECT el AS email_l, ts, k FROM w WHERE k IN (3, 4) AND el IN (SELECT email_l FROM sc)) l",
        ),
    )
}

/// Above this many spans (merged), the second step reads every login from
/// `since - 1h` instead (a statement of bounded size).
const MAX_SPANS: usize = 500;

/// Above this many failed logins of the candidates, the pass's copy of them is not
/// kept: the second step reads them with the successful ones (bounded memory).
pub const MAX_CANDIDATE_FAILURES: usize = 100_000;

/// success-after-failures, second step (PostgreSQL), for the candidates of the pass
/// (address, span of failures, None when it did not read back): the successful logins of those addresses within
/// `[first, last + 1h]` of each span, read through the index on `ts` (with a second of
/// margin either side; never before `since - 1h`, the pass's window), and their
/// failed logins: `failures`, the pass's copy of every one from `since - 1h` (address,
/// time), or, when None (too many), read here with the successes in the same spans.
/// A finding per address with a success inside `--since` that had 5 failures in the
/// hour before it. Exact: a success with 5 has all of them read (see
/// [`success_candidates_ctes`]); one without them has fewer here too, since fewer rows
/// can only count fewer; and more failures of an address, all real, only count what
/// is there. The values come from audit_logs, hostile text: bound as parameters
/// (returned beside the statement), never spliced into it. The addresses are a
/// text[]: `= ANY` of a bound array is a hashed lookup in the parallel workers' scan
/// (a JSON array joined to the rows was evaluated in the leader: 1.06 s against
/// 0.74 s on 1.1M logins, gen2).
pub fn successes_statement(
    backend: DbBackend,
    p: &Params,
    candidates: &[(
        String,
        Option<(chrono::NaiveDateTime, chrono::NaiveDateTime)>,
    )],
    failures: Option<Vec<(String, chrono::NaiveDateTime)>>,
) -> (String, Vec<sea_orm::Value>) {
    let d = Dialect::new(backend);
    let ok = d.nul_free("a.details");
    let margin = chrono::Duration::seconds(1);
    let hour = chrono::Duration::hours(1);
    let floor = p.since - hour;
    // Each candidate's span, widened to what is read, merged where they overlap.
    let mut ranges: Vec<(chrono::NaiveDateTime, chrono::NaiveDateTime)> = candidates
        .iter()
        .filter_map(|(_, span)| *span)
        .map(|(first, last)| ((first - margin).max(floor), last + hour + margin))
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(chrono::NaiveDateTime, chrono::NaiveDateTime)> = Vec::new();
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    let unknown = candidates.iter().any(|(_, span)| span.is_none());
    let spans = if candidates.is_empty() {
        "1 = 0".to_owned()
    } else if merged.len() > MAX_SPANS || unknown {
        d.ts_cmp("a.ts", ">=", floor)
    } else {
        merged
            .iter()
            .map(|(lo, hi)| {
                format!(
                    "({} AND {})",
                    d.ts_cmp("a.ts", ">=", *lo),
                    d.ts_cmp("a.ts", "<=", *hi)
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let mut emails: Vec<String> = candidates.iter().map(|(e, _)| e.clone()).collect();
    emails.sort_unstable();
    emails.dedup();
    let mut values = vec![sea_orm::Value::from(emails)];
    let email_l = d.bytes(&format!("lower({})", d.j("a.details", "email")));
    let read = |actions: &str| {
        format!(
            "SELECT email_l, ts, k FROM (SELECT CASE WHEN {ok} THEN {email_l} END AS email_l, a.ts, \
                    CASE a.action WHEN 'login_failed' THEN 3 ELSE 4 END AS k FROM audit_logs a \
             WHERE a.action IN ({actions}) AND ({spans}){org}) r WHERE email_l = ANY($1)",
            org = d.org_filter("a.org_id", p.org.as_deref()),
        )
    };
    let logins = match failures {
        Some(failures) => {
            let (who, when): (Vec<String>, Vec<chrono::NaiveDateTime>) =
                failures.into_iter().unzip();
            values.push(who.into());
            values.push(when.into());
            format!(
                "{} UNION ALL SELECT {email} AS email_l, ts, 3 AS k \
                 FROM unnest(CAST($2 AS text[]), CAST($3 AS timestamp[])) AS f(email_l, ts)",
                read("'login_success'"),
                email = d.bytes("f.email_l"),
            )
        }
        None => read("'login_failed', 'login_success'"),
    };
    let sql = format!(
        "WITH l AS ({logins}), {windows} \
         SELECT '{rule}' AS rule, org_id, user_id, email, role, created_at, at, evidence FROM ({branch}) b \
         ORDER BY sort_ts",
        windows = success_windows(&d, p, "l"),
        rule = Rule::SuccessAfterFailures.name(),
        branch = login_rule(&d, Rule::SuccessAfterFailures),
    );
    (sql, values)
}

/// no-telemetry's one row: whether any login event is inside `--since` (EXISTS, read
/// through the index on `ts`; counted only when the audit is inconclusive for another
/// reason), the oldest audit row and the newest privileged account.
pub fn no_telemetry_statement(backend: DbBackend, p: &Params) -> String {
    let d = Dialect::new(backend);
    format!(
        "SELECT '{rule}' AS rule, org_id, user_id, email, role, created_at, at, evidence FROM ({sql}) b",
        rule = Rule::NoTelemetry.name(),
        sql = no_telemetry(&d, p),
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
        Rule::BruteForce => login_rule(d, rule),
        Rule::SuccessAfterFailures if !d.is_pg() => login_rule(d, rule),
        Rule::SuccessAfterFailures => format!(
            "SELECT NULL AS org_id, NULL AS user_id, email_l AS email, NULL AS role, \
                    {last} AS created_at, {first} AS at, NULL AS evidence, first_ts AS sort_ts FROM sc",
            first = d.ts_text("first_ts"),
            last = d.ts_text("last_ts"),
        ),
        Rule::NoTelemetry
        | Rule::CaseVariantEmail
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
    // `le` holds the privileged users only: joined where the rule reads it.
    let le = if cond.contains("le.") {
        " LEFT JOIN le ON le.uid = u.id"
    } else {
        ""
    };
    format!(
        "SELECT u.org_id AS org_id, u.id AS user_id, u.email AS email, CAST(u.role AS TEXT) AS role, \
                {created} AS created_at, {created} AS at, {ev} AS evidence, u.created_at AS sort_ts \
         FROM users u LEFT JOIN pu ON pu.uid = u.id{le} WHERE {cond}",
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
         LEFT JOIN tx ON r.user_id IS NULL AND tx.email_l = r.email_l \
         LEFT JOIN users u ON u.id = COALESCE(r.user_id, tx.id) WHERE {cond}",
        created = d.ts_text("u.created_at"),
        at = d.ts_text("r.ts"),
        ev = d.obj(&ev),
    )
}

/// One finding per email of the login rule's CTE `cte`, with the users of that email.
/// The users are looked up by lowercased address through a table of only the users of
/// `cte`'s addresses, made once (`OFFSET 0`: SQLite would otherwise compute
/// `lower(email)` for every user once per finding).
fn login_branch(d: &Dialect, cte: &str, at: &str, evidence: &[(&str, String)]) -> String {
    format!(
        "SELECT u.org_id AS org_id, u.id AS user_id, COALESCE(u.email, b.email_l) AS email, \
                CAST(u.role AS TEXT) AS role, {created} AS created_at, {at_text} AS at, {ev} AS evidence, \
                b.{at} AS sort_ts \
         FROM {cte} b LEFT JOIN (SELECT lower(email) AS email_l, org_id, id, email, role, created_at \
                                 FROM users WHERE lower(email) IN (SELECT email_l FROM {cte}) \
                                 {fence}) u ON u.email_l = b.email_l",
        fence = if d.is_pg() {
            "OFFSET 0"
        } else {
            "LIMIT -1 OFFSET 0"
        },
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
        "FROM audit_logs WHERE action IN ('login_success', 'login_failed', 'logout') AND {}{}",
        d.ts_cmp("ts", ">=", p.since),
        d.org_filter("org_id", p.org.as_deref()),
    );
    // SQLite compares julian days (timestamps stored in more than one spelling), which
    // no index answers: look first among the rows the index on `ts` finds from the
    // day of --since in ISO text (an exact yes when one is there), and scan the table
    // only when none is.
    let exists = if d.is_pg() {
        format!("EXISTS (SELECT 1 {logins})")
    } else {
        format!(
            "CASE WHEN EXISTS (SELECT 1 {logins} AND ts >= '{day}') THEN 1 = 1 \
                  ELSE EXISTS (SELECT 1 {logins}) END",
            day = p.since.format("%Y-%m-%d"),
        )
    };
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
                    "CASE WHEN NOT {exists} THEN 0 \
                          WHEN {later} THEN (SELECT COUNT(*) {logins}) END",
                    later = d.later(&oldest, &newest),
                ),
            ),
            ("oldest_audit_row", d.ts_text(&oldest)),
            ("newest_privileged_account", d.ts_text(&newest)),
        ]),
    )
}
