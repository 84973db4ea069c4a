//! `audit suspicious-accounts` on the planted fixture, PostgreSQL and SQLite.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::*;

pub(crate) const WINDOW: [&str; 4] = ["--since", "2026-10-10", "--fixed-at", "2026-10-01"];

/// (rule, user or org, severity) of every planted finding.
fn expected() -> BTreeSet<(String, String, String)> {
    [
        (
            "privileged-without-provenance",
            "user_00000000a005",
            "critical",
        ),
        // Registered as viewers, admins now: by hand-written SQL (a009, b005), recorded
        // as analyst (a00a), by a role change its author could not make (a00b).
        (
            "privileged-without-provenance",
            "user_00000000a009",
            "critical",
        ),
        (
            "privileged-without-provenance",
            "user_00000000a00a",
            "critical",
        ),
        (
            "privileged-without-provenance",
            "user_00000000a00b",
            "critical",
        ),
        (
            "privileged-without-provenance",
            "user_00000000b005",
            "critical",
        ),
        ("role-changed-recently", "user_00000000a008", "warning"),
        ("role-changed-recently", "user_00000000a00b", "warning"),
        (
            "elevated-role-at-registration",
            "user_00000000b002",
            "critical",
        ),
        (
            "registered-by-unauthorized",
            "user_00000000b003",
            "critical",
        ),
        ("registered-before-fix", "user_00000000b004", "warning"),
        (
            "privileged-created-recently",
            "user_00000000b005",
            "warning",
        ),
        ("brute-force", "user_00000000b006", "warning"),
        ("success-after-failures", "user_00000000a004", "warning"),
        ("case-variant-email", "user_00000000a006", "warning"),
        ("case-variant-email", "user_00000000a007", "warning"),
        ("multiple-owners", "org_00000000000c", "info"),
        ("privileged-without-password", "user_00000000c003", "info"),
    ]
    .iter()
    .map(|(r, w, s)| ((*r).to_owned(), (*w).to_owned(), (*s).to_owned()))
    .collect()
}

fn got(j: &Value) -> BTreeSet<(String, String, String)> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let who = f["user_id"]
                .as_str()
                .or(f["org_id"].as_str())
                .unwrap_or("-")
                .to_owned();
            (
                f["rule"].as_str().unwrap().to_owned(),
                who,
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pg_fixture() -> PgDb {
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db.load(&reference("audit-fixture.sql"));
    db
}

pub(crate) fn sqlite_fixture() -> SqliteDb {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let sql = std::fs::read_to_string(reference("audit-fixture.sql")).unwrap();
    db.query(&sql);
    db
}

fn audit(run: &dyn Fn(&[&str]) -> Run, extra: &[&str]) -> Run {
    let mut args = vec!["audit", "suspicious-accounts"];
    args.extend_from_slice(&WINDOW);
    args.extend_from_slice(extra);
    run(&args)
}

pub(crate) fn check_exactly_the_planted_findings(run: &dyn Fn(&[&str]) -> Run) {
    let r = audit(run, &["--format", "json"]);
    r.expect_code(1); // critical findings, --fail-on critical by default
    let j = r.json();
    assert_eq!(got(&j), expected(), "{:#?}", j["findings"]);
    // Sorted by severity, then time.
    let sev: Vec<&str> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    let rank = |s: &str| match s {
        "critical" => 0,
        "warning" => 1,
        _ => 2,
    };
    assert!(sev.windows(2).all(|w| rank(w[0]) <= rank(w[1])), "{sev:?}");
    assert_eq!(j["summary"]["critical"], 7);
    assert_eq!(j["summary"]["warning"], 8);
    assert_eq!(j["summary"]["info"], 2);
    assert_eq!(j["summary"]["unparseable_rows"], 5);
    check_role_change_provenance(&j);
    // Evidence carries the facts.
    let bf = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "brute-force")
        .unwrap();
    assert_eq!(bf["evidence"]["max_in_60s"], 12);
    assert_eq!(bf["evidence"]["first"], "2026-10-20T10:00:00.000000");
    assert_eq!(bf["evidence"]["last"], "2026-10-20T10:00:55.000000");
    assert_eq!(bf["evidence"]["reasons"], "invalid_password");

    // CSV parses: a header and one row per finding.
    let r = audit(run, &["--format", "csv"]);
    r.expect_code(1);
    let mut rdr = csv::Reader::from_reader(r.stdout.as_bytes());
    assert_eq!(rdr.headers().unwrap().iter().next(), Some("severity"));
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 17);
    for row in &rows {
        serde_json::from_str::<Value>(&row[9]).expect("evidence column is JSON");
    }

    // Exit code per --fail-on.
    audit(run, &["--fail-on", "never"]).expect_code(0);
    audit(run, &["--fail-on", "info"]).expect_code(1);
    audit(run, &["--rule", "multiple-owners", "--fail-on", "warning"]).expect_code(0);
    audit(run, &["--rule", "multiple-owners", "--fail-on", "info"]).expect_code(1);
    audit(
        run,
        &["--rule", "case-variant-email", "--fail-on", "critical"],
    )
    .expect_code(0);
    audit(
        run,
        &["--rule", "case-variant-email", "--fail-on", "warning"],
    )
    .expect_code(1);
    let human = audit(run, &[]);
    human.expect_code(1);
    assert!(
        human
            .stdout
            .contains("summary: 7 critical, 8 warning, 2 info"),
        "{}",
        human.stdout
    );

    // --org narrows.
    let j = audit(run, &["--org", "org_00000000000c", "--format", "json"]).json();
    let rules: BTreeSet<String> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        rules.contains("multiple-owners") && rules.contains("privileged-without-password"),
        "{rules:?}"
    );
    assert!(
        rules.contains("no-telemetry"),
        "org c has no logins: {rules:?}"
    );
    assert!(!rules.contains("brute-force"));
}

/// The findings about role changes say what was recorded, by whom and from where.
fn check_role_change_provenance(j: &Value) {
    let find = |rule: &str, user: &str| -> Value {
        j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == rule && f["user_id"] == user)
            .unwrap_or_else(|| panic!("no {rule} finding for {user}"))
            .clone()
    };
    let promoted = find("role-changed-recently", "user_00000000a008");
    let ev = &promoted["evidence"];
    assert_eq!(ev["audit_id"], "audit_0000000000000049");
    assert_eq!(ev["changed_at"], "2026-10-21T09:00:00.000000");
    assert_eq!(ev["old_role"], "viewer");
    assert_eq!(ev["new_role"], "admin");
    assert_eq!(ev["changed_by"], "ecomind-admin");
    assert_eq!(ev["os_user"], "ops");
    assert_eq!(ev["host"], "bastion-1");
    assert_eq!(ev["reason"], "INC-42 new team lead");
    assert_eq!(
        promoted["message"],
        "role changed from viewer to admin at 2026-10-21T09:00:00.000000 by ecomind-admin \
         (os user ops on bastion-1): INC-42 new team lead"
    );
    let raw = find("privileged-without-provenance", "user_00000000a009");
    assert_eq!(raw["evidence"]["recorded_action"], "user_registered");
    assert_eq!(raw["evidence"]["recorded_role"], "viewer");
    assert_eq!(raw["evidence"]["recorded_authorized"], true);
    assert!(
        raw["message"]
            .as_str()
            .unwrap()
            .contains("its latest recorded role is viewer (user_registered at 2026-09-09T10:00:00.000000 by user_00000000a001)"),
        "{raw}"
    );
    let drifted = find("privileged-without-provenance", "user_00000000a00a");
    assert_eq!(drifted["evidence"]["recorded_action"], "role_changed");
    assert_eq!(drifted["evidence"]["recorded_role"], "analyst");
    let forged = find("privileged-without-provenance", "user_00000000a00b");
    assert_eq!(forged["evidence"]["recorded_authorized"], false);
    assert!(
        forged["message"]
            .as_str()
            .unwrap()
            .contains("was not given by an owner/admin"),
        "{forged}"
    );
    let none = find("privileged-without-provenance", "user_00000000a005");
    assert_eq!(none["evidence"]["recorded_action"], Value::Null);
    assert!(
        none["message"]
            .as_str()
            .unwrap()
            .contains("no registration or role change recorded"),
        "{none}"
    );
}

fn check_no_telemetry(run: &dyn Fn(&[&str]) -> Run) {
    let r = run(&[
        "audit",
        "suspicious-accounts",
        "--since",
        "2026-11-25",
        "--rule",
        "no-telemetry",
        "--format",
        "json",
    ]);
    r.expect_code(0); // a warning; --fail-on critical
    let f = &r.json()["findings"][0];
    assert_eq!(f["rule"], "no-telemetry");
    assert!(
        f["message"].as_str().unwrap().contains("no login events"),
        "{f}"
    );
}

#[test]
fn planted_findings_on_postgres() {
    let db = pg_fixture();
    let run = |a: &[&str]| db.run(a);
    check_exactly_the_planted_findings(&run);
    check_no_telemetry(&run);
}

#[test]
fn planted_findings_on_sqlite() {
    let db = sqlite_fixture();
    let run = |a: &[&str]| db.run(a);
    check_exactly_the_planted_findings(&run);
    check_no_telemetry(&run);
}

#[test]
fn audit_logs_newer_than_privileged_accounts_is_inconclusive() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db.query(
        "INSERT INTO orgs (id, name) VALUES ('org_000000000001', 'A'); \
         INSERT INTO users (id, org_id, email, role, created_at, password_hash) \
           VALUES ('user_000000000001', 'org_000000000001', 'o@a.example.com', 'owner', '2026-01-01 00:00:00', 'x'); \
         INSERT INTO audit_logs (id, org_id, action, resource, details, ts) VALUES \
           ('audit_0000000000000001', 'org_000000000001', 'login_success', 'authentication', \
            '{\"email\": \"o@a.example.com\", \"success\": true}', '2026-10-20 00:00:00');",
    );
    let r = db.run(&[
        "audit",
        "suspicious-accounts",
        "--since",
        "2026-10-01",
        "--rule",
        "no-telemetry",
        "--format",
        "json",
    ]);
    r.expect_code(0);
    let msg = r.json()["findings"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("oldest audit row"), "{msg}");
}

#[test]
fn malformed_details_never_crash_and_are_counted() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db.query(
        "INSERT INTO audit_logs (id, org_id, action, resource, details, ts) VALUES \
         ('audit_0000000000000001', 'system', 'login_failed', 'authentication', 'not json at all', '2026-10-20 00:00:00'), \
         ('audit_0000000000000002', 'system', 'login_failed', 'authentication', '[1, 2]', '2026-10-20 00:00:01'), \
         ('audit_0000000000000003', 'system', 'user_registered', 'authentication', '{\"email\": \"x@y.example.com\"}', '2026-10-20 00:00:02'), \
         ('audit_0000000000000004', 'system', 'login_failed', 'authentication', NULL, '2026-10-20 00:00:03');",
    );
    let r = db.run(&[
        "audit",
        "suspicious-accounts",
        "--since",
        "2026-10-01",
        "--format",
        "json",
    ]);
    // The registration without role or created_by is still flagged (it has an email).
    r.expect_code(1);
    assert_eq!(
        r.json()["findings"][0]["rule"],
        "registered-by-unauthorized"
    );
    assert!(!r.all().contains("panicked"));
    assert_eq!(r.json()["summary"]["unparseable_rows"], 4);
}

#[test]
fn read_only_role_can_audit_and_nothing_changes() {
    let db = pg_fixture();
    let role = format!("ro_{}", db.name);
    db.psql(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'ro-pass-aud'; \
         ALTER ROLE {role} SET default_transaction_read_only = on; \
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"
    ));
    let before = db.dump_all();
    let url = db.url_as(&role, "ro-pass-aud");
    let mut args = vec!["audit", "suspicious-accounts", "--format", "json"];
    args.extend_from_slice(&WINDOW);
    let r = Run::from(
        db.cmd()
            .env("DATABASE_URL", &url)
            .args(&args)
            .output()
            .unwrap(),
    );
    r.expect_code(1);
    assert_eq!(got(&r.json()), expected());
    assert_eq!(db.dump_all(), before);
    db.psql(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

#[test]
fn bad_arguments() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let r = db.run(&["audit", "suspicious-accounts", "--since", "last tuesday"]);
    r.expect_code(2);
    assert!(r.stderr.contains("neither a duration"), "{}", r.stderr);
    db.run(&["audit", "suspicious-accounts", "--fixed-at", "yesterday"])
        .expect_code(2);
    db.run(&["audit", "suspicious-accounts", "--rule", "no-such-rule"])
        .expect_code(2);
    db.run(&["audit", "suspicious-accounts", "--org", "ORG'; --"])
        .expect_clean_error(4);
    db.run(&["migrate", "status", "--format", "csv"])
        .expect_clean_error(2);
    // The default window (7d) works on an empty database: inconclusive, not clean.
    let r = db.run(&["audit", "suspicious-accounts", "--format", "json"]);
    r.expect_code(0);
    assert_eq!(r.json()["findings"][0]["rule"], "no-telemetry");
}
