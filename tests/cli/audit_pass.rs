//! The audit's one pass over audit_logs at its edges (issue 28's design): a document no
//! text accessor can read, and success-after-failures read in a second step around the
//! candidates' hours. PostgreSQL and SQLite.

use serde_json::Value;

use crate::common::*;

const ORG: &str = "INSERT INTO orgs (id, name, plan, created_at) VALUES ('org_0000000000e1', 'Edge', 'free', '2026-09-01 09:00:00');";

fn user(id: &str, email: &str) -> String {
    format!(
        "INSERT INTO users (id, org_id, email, name, role, created_at, password_hash) VALUES \
         ('{id}', 'org_0000000000e1', '{email}', NULL, 'viewer', '2026-09-02 09:00:00', NULL);"
    )
}

fn row(n: u32, action: &str, details: &str, ts: &str) -> String {
    format!(
        "INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts) VALUES \
         ('audit_e{n:015}', 'org_0000000000e1', NULL, '{action}', 'authentication', '{details}', '{ts}');"
    )
}

fn login(n: u32, action: &str, email: &str, ts: &str) -> String {
    let details = if action == "login_failed" {
        format!(r#"{{"email": "{email}", "reason": "invalid_password", "success": false}}"#)
    } else {
        format!(r#"{{"email": "{email}", "success": true}}"#)
    };
    row(n, action, &details, ts)
}

/// The audit from 2026-10-10 as JSON, after the global flags `first` (`-v`), exit 0.
fn audit_run(db: &AnyDb, first: &[&str]) -> Run {
    let mut args = first.to_vec();
    args.extend([
        "audit",
        "suspicious-accounts",
        "--since",
        "2026-10-10",
        "--format",
        "json",
        "--fail-on",
        "never",
    ]);
    let r = db.run(&args);
    r.expect_code(0);
    r
}

fn audit(db: &AnyDb) -> Value {
    audit_run(db, &[]).json()
}

/// PostgreSQL's `->>` fails on a whole document that holds a `\u0000` escape anywhere,
/// whatever the key: one such row planted in audit_logs used to make the audit fail
/// (exit 5), hiding everything else. Such a row is now unparseable, counted and said,
/// on both backends alike (SQLite could read it; one answer for both), and nothing
/// else changes.
#[test]
fn a_document_with_a_nul_escape_is_unparseable_not_a_failed_audit() {
    for db in AnyDb::both() {
        let mut sql = vec![
            ORG.to_owned(),
            user("user_0000000000e1", "v@edge.example.com"),
        ];
        // A readable failure inside --since, and three documents with the escape: a
        // recent failure, an old success, a registration.
        sql.push(login(
            1,
            "login_failed",
            "v@edge.example.com",
            "2026-10-12 10:00:00",
        ));
        sql.push(row(
            2,
            "login_failed",
            r#"{"email": "v@edge.example.com", "note": "a\u0000b", "success": false}"#,
            "2026-10-12 10:01:00",
        ));
        sql.push(row(
            3,
            "login_success",
            r#"{"note": "\u0000", "email": "v@edge.example.com", "success": true}"#,
            "2026-09-12 10:00:00",
        ));
        sql.push(row(
            4,
            "user_registered",
            r#"{"email": "v@edge.example.com", "role": "admin", "created_by": "x\u0000", "success": true}"#,
            "2026-09-02 09:00:00",
        ));
        // The six characters `\u0000` after an escaped backslash are no NUL, but the
        // byte search cannot tell: unparseable too (said, never dropped silently).
        sql.push(row(
            5,
            "login_failed",
            r#"{"email": "v@edge.example.com", "note": "a\\u0000b"}"#,
            "2026-10-12 10:02:00",
        ));
        db.query(&sql.join("\n"));
        let j = audit(&db);
        assert_eq!(
            j["summary"]["unparseable_rows"],
            4,
            "{}: {}",
            db.name(),
            j["summary"]
        );
        // The registration with the escape is not read as one (its role admin would be
        // elevated-role-at-registration): it is unparseable, nothing more.
        let rules: Vec<&str> = j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap())
            .collect();
        assert!(
            !rules.contains(&"elevated-role-at-registration"),
            "{}: {rules:?}",
            db.name()
        );
    }
}

/// success-after-failures is exact at the edges of the candidate hours the pass finds:
/// failures in one hour and the success early in the next (no failure in that hour);
/// failures before --since (but inside the hour before it) and the success just after;
/// failures spread over two hours; and no finding when the success comes more than an
/// hour after the failures.
#[test]
fn success_after_failures_is_exact_around_the_candidate_hours() {
    for db in AnyDb::both() {
        let mut sql = vec![ORG.to_owned()];
        let mut n = 0;
        let mut add = |action: &str, email: &str, ts: &str| {
            n += 1;
            sql.push(login(n, action, email, ts));
        };
        // a: 5 failures in hour 10, the success at 11:05.
        for m in ["50", "52", "54", "56", "58"] {
            add(
                "login_failed",
                "a@edge.example.com",
                &format!("2026-10-12 10:{m}:00"),
            );
        }
        add("login_success", "a@edge.example.com", "2026-10-12 11:05:00");
        // b: 5 failures before --since (23:20..23:40 the day before), the success at 00:10.
        for m in ["20", "25", "30", "35", "40"] {
            add(
                "login_failed",
                "b@edge.example.com",
                &format!("2026-10-09 23:{m}:00"),
            );
        }
        add("login_success", "b@edge.example.com", "2026-10-10 00:10:00");
        // c: 5 failures at 08:00..08:20, the success at 09:30: 70 minutes later.
        for m in ["00", "05", "10", "15", "20"] {
            add(
                "login_failed",
                "c@edge.example.com",
                &format!("2026-10-12 08:{m}:00"),
            );
        }
        add("login_success", "c@edge.example.com", "2026-10-12 09:30:00");
        // d: 4 failures at 14:50..14:58 and one at 15:02, the success at 15:10, then a
        // second success at 16:20 (no failure in the hour before it).
        for t in ["14:50", "14:54", "14:56", "14:58", "15:02"] {
            add(
                "login_failed",
                "D@Edge.example.com",
                &format!("2026-10-12 {t}:00"),
            );
        }
        add("login_success", "d@edge.example.com", "2026-10-12 15:10:00");
        add("login_success", "d@edge.example.com", "2026-10-12 16:20:00");
        // e: an address with a quote and a backslash (hostile text from audit_logs):
        // it reaches the second step as a bound value, found like any other. In the
        // JSON a backslash is written twice, in SQL a quote; no user has it.
        for m in ["01", "02", "03", "04", "05"] {
            add(
                "login_failed",
                r"o''b\\x@edge.example.com",
                &format!("2026-10-13 10:{m}:00"),
            );
        }
        add(
            "login_success",
            r"o''b\\x@edge.example.com",
            "2026-10-13 10:30:00",
        );
        for (id, email) in [("a", "a"), ("b", "b"), ("c", "c"), ("d", "d")] {
            sql.push(user(
                &format!("user_00000000e00{id}"),
                &format!("{email}@edge.example.com"),
            ));
        }
        db.query(&sql.join("\n"));
        let j = audit(&db);
        let mut got: Vec<(String, Value)> = j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "success-after-failures")
            .map(|f| {
                (
                    f["email"].as_str().unwrap().to_owned(),
                    f["evidence"].clone(),
                )
            })
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let want: Vec<(String, Value)> = [
            ("a", 5, "2026-10-12T11:05:00"),
            ("b", 5, "2026-10-10T00:10:00"),
            ("d", 5, "2026-10-12T15:10:00"),
        ]
        .iter()
        .chain([(r"o'b\x", 5, "2026-10-13T10:30:00")].iter())
        .map(|(u, n, at)| {
            (
                format!("{u}@edge.example.com"),
                serde_json::json!({
                    "failures_in_prior_hour": n,
                    "successes_after_failures": 1,
                    "first_success": format!("{at}.000000"),
                }),
            )
        })
        .collect();
        assert_eq!(got, want, "{}: {:#}", db.name(), j["findings"]);
    }
}

/// SQLite runs the pass as two statements at once, on two connections (the accounts'
/// part reads the whole table, the logins' part the logins from --since - 1h): they
/// see one database because the first holds SQLite's shared lock, which no write can
/// commit past, while the second starts (rollback journal). In WAL mode each reader
/// has its own snapshot: one after the other, on one connection. One answer either
/// way: the findings of every kind of rule and the unparseable count.
#[test]
fn sqlite_pass_on_two_connections_gives_the_answer_of_one() {
    let db = AnyDb::Lite(SqliteDb::new());
    db.run(&["migrate", "up"]).expect_code(0);
    let mut sql = vec![
        ORG.to_owned(),
        user("user_0000000000e1", "r@edge.example.com"),
    ];
    sql.push(row(
        1,
        "user_registered",
        r#"{"email": "r@edge.example.com", "role": "viewer", "created_by": "user_nobody"}"#,
        "2026-09-02 09:00:00",
    ));
    sql.push(row(2, "login_failed", "[]", "2026-10-12 09:00:00"));
    let mut n = 10;
    for s in 0..10 {
        n += 1;
        sql.push(login(
            n,
            "login_failed",
            "x@edge.example.com",
            &format!("2026-10-12 12:00:{:02}", s * 5),
        ));
    }
    for m in ["50", "52", "54", "56", "58"] {
        n += 1;
        sql.push(login(
            n,
            "login_failed",
            "a@edge.example.com",
            &format!("2026-10-12 10:{m}:00"),
        ));
    }
    sql.push(login(
        n + 1,
        "login_success",
        "a@edge.example.com",
        "2026-10-12 11:05:00",
    ));
    db.query(&sql.join("\n"));
    let audit = || {
        let r = audit_run(&db, &["-v"]);
        let j = r.json();
        (j["findings"].clone(), j["summary"].clone(), r.stderr)
    };
    let (findings, summary, log) = audit();
    // The second connection's first read, which takes its shared lock.
    let second = "SELECT COUNT(*) FROM sqlite_master";
    assert!(log.contains(second), "no second connection:\n{log}");
    let rules: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for rule in [
        "registered-by-unauthorized",
        "brute-force",
        "success-after-failures",
    ] {
        assert!(rules.contains(&rule), "{rule}: {findings:#}");
    }
    assert_eq!(summary["unparseable_rows"], 1, "{summary:#}");
    assert_eq!(db.query("PRAGMA journal_mode = WAL"), "wal");
    let (wal_findings, wal_summary, wal_log) = audit();
    assert!(!wal_log.contains(second), "a second connection in WAL mode");
    assert_eq!(wal_findings, findings);
    assert_eq!(wal_summary, summary);
}

/// A failed login whose time is 'infinity' (PostgreSQL takes it; a planted row) is
/// after --since: five of them make their address a candidate of
/// success-after-failures whose span no timestamp can hold. The audit used to stop
/// there ("a candidate without its failures' span", exit 5); it now reads that
/// candidate's logins from since - 1h, and every other finding is unchanged.
#[test]
fn failures_at_infinity_do_not_stop_the_audit() {
    for db in AnyDb::both() {
        let mut sql = vec![ORG.to_owned()];
        let mut n = 0;
        for m in ["50", "52", "54", "56", "58"] {
            n += 1;
            sql.push(login(
                n,
                "login_failed",
                "a@edge.example.com",
                &format!("2026-10-12 10:{m}:00"),
            ));
            n += 1;
            sql.push(login(n, "login_failed", "inf@edge.example.com", "infinity"));
        }
        sql.push(login(
            n + 1,
            "login_success",
            "a@edge.example.com",
            "2026-10-12 11:05:00",
        ));
        sql.push(login(
            n + 2,
            "login_success",
            "inf@edge.example.com",
            "2026-10-12 11:05:00",
        ));
        db.query(&sql.join("\n"));
        let j = audit(&db);
        let found: Vec<&str> = j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "success-after-failures")
            .map(|f| f["email"].as_str().unwrap())
            .collect();
        assert_eq!(found, ["a@edge.example.com"], "{}: {:#}", db.name(), j);
    }
}

/// PostgreSQL reads every user's address (case-variant-email, unreachable-email) on a
/// second connection while the pass runs, in the audit's own snapshot
/// (`pg_export_snapshot`, `SET TRANSACTION SNAPSHOT`): the findings are those of one
/// connection.
#[test]
fn postgres_reads_the_addresses_beside_the_pass_in_its_snapshot() {
    let db = AnyDb::Pg(PgDb::new());
    db.run(&["migrate", "up"]).expect_code(0);
    db.query(&format!(
        "{ORG} {} {} {}",
        user("user_0000000000e1", "Case@edge.example.com"),
        user("user_0000000000e2", "case@edge.example.com"),
        user("user_0000000000e3", "Upper@EDGE.example.com"),
    ));
    let r = audit_run(&db, &["-v"]);
    assert!(
        r.stderr.contains("SELECT pg_export_snapshot()")
            && r.stderr.contains("SET TRANSACTION SNAPSHOT '"),
        "no second connection in the snapshot:\n{}",
        r.stderr
    );
    let j = r.json();
    let mut got: Vec<(&str, &str)> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] != "no-telemetry")
        .map(|f| (f["rule"].as_str().unwrap(), f["email"].as_str().unwrap()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("case-variant-email", "Case@edge.example.com"),
            ("case-variant-email", "case@edge.example.com"),
            ("unreachable-email", "Upper@EDGE.example.com"),
        ],
        "{j:#}"
    );
}

/// The login rules find their users by lowercased address through a table of only the
/// users of their addresses, made once: SQLite used to compute `lower(email)` for
/// every user once per finding (2,000 brute-force findings on 50,000 users: 15.5 s,
/// now 0.3 s). The plan of the logins' part says so (SQLite's own EXPLAIN).
#[test]
fn sqlite_login_rules_look_users_up_once_not_per_finding() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let r = db.run(&["audit", "suspicious-accounts", "--show-sql"]);
    r.expect_code(0);
    let sql = format!("\n{}", r.stdout)
        .split("\n-- ")
        .find(|s| s.starts_with("the pass over audit_logs, logins' part"))
        .and_then(|s| s.split_once('\n'))
        .map(|(_, sql)| sql.trim().to_owned())
        .expect("the logins' part");
    let plan = db.query(&format!("EXPLAIN QUERY PLAN {sql}"));
    assert!(
        plan.contains("SEARCH u USING AUTOMATIC"),
        "users not looked up by index:\n{plan}"
    );
    assert!(
        !plan.contains("SCAN u LEFT-JOIN"),
        "a scan of users per finding:\n{plan}"
    );
}
