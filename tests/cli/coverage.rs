//! Flags and paths no other test walks: `migrate down --to`, `audit --show-sql`, `-q`,
//! and `doctor` on SQLite.

use crate::common::*;

#[test]
fn migrate_down_to_a_version_on_both_backends() {
    for db in AnyDb::both() {
        let r = db.run(&["migrate", "down", "--to", V1, "--yes", "--format", "json"]);
        r.expect_code(0);
        let steps = r.json()["steps"].as_array().unwrap().clone();
        assert_eq!(
            steps.len(),
            all_versions().len() - 1,
            "{}: {steps:?}",
            db.name()
        );
        assert_eq!(steps[0]["version"], head_version().as_str());
        assert_eq!(db.versions(), vec![V1], "{}", db.name());
        // Already there: nothing to revert.
        let r = db.run(&["migrate", "down", "--to", V1, "--yes"]);
        r.expect_code(0);
        assert!(r.stdout.contains("Nothing to revert"), "{}", r.stdout);
    }
}

#[test]
fn audit_show_sql_prints_every_rule_and_touches_nothing() {
    for db in AnyDb::both() {
        let before = db.query("SELECT count(*) FROM audit_logs");
        let r = db.run(&["audit", "suspicious-accounts", "--show-sql"]);
        r.expect_code(0);
        // One pass over audit_logs answers the rules that read it (each a branch
        // named by its rule; success-after-failures's candidates), the unparseable
        // count included; success-after-failures's second step reads the candidates'
        // logins, no-telemetry looks through the index on ts; the users-only rules
        // follow. On SQLite the pass is two statements that run at once on two
        // connections: the accounts' part and the logins' part, each one scan.
        let sections: Vec<String> = format!("\n{}", r.stdout)
            .split("\n-- ")
            .filter(|s| {
                s.starts_with("one pass over audit_logs: ")
                    || s.starts_with("the pass over audit_logs, ")
            })
            .map(str::to_owned)
            .collect();
        assert_eq!(
            sections.len(),
            if db.is_postgres() { 1 } else { 2 },
            "{}: the pass's statements:\n{}",
            db.name(),
            r.stdout
        );
        let pass = sections
            .iter()
            .map(|s| s.lines().next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let pass_sql = sections.join("\n");
        for rule in ecomind_admin::audit::rules::Rule::ALL
            .into_iter()
            .filter(|r| r.reads_audit_logs())
        {
            use ecomind_admin::audit::rules::Rule;
            if rule == Rule::RegisteredBeforeFix {
                continue; // only with --fixed-at
            }
            if rule == Rule::NoTelemetry {
                assert!(r.stdout.contains("\n-- no-telemetry\n"), "{}", db.name());
            } else {
                assert!(pass.contains(rule.name()), "{}: {pass}", db.name());
            }
            assert!(
                r.stdout.contains(&format!("'{}' AS rule", rule.name()))
                    || rule == Rule::SuccessAfterFailures,
                "{}: {rule:?}",
                db.name()
            );
        }
        // PostgreSQL reads success-after-failures's logins in a second step, for the
        // candidates of the pass; SQLite keeps them in the logins' part (no parallel
        // funnel).
        assert_eq!(
            pass_sql.contains("'candidate' AS rule"),
            db.is_postgres(),
            "{}",
            db.name()
        );
        assert!(
            r.stdout
                .contains("'success-after-failures' AS rule, org_id, user_id, email"),
            "{}: the second step of success-after-failures",
            db.name()
        );
        assert!(pass.contains("the unparseable rows"), "{pass}");
        assert_eq!(
            pass.contains("logins' part (at once, on a second connection"),
            !db.is_postgres(),
            "{}: {pass}",
            db.name()
        );
        for section in &sections {
            assert_eq!(
                section.matches("FROM audit_logs a ").count(),
                1,
                "{}: one scan of audit_logs per statement:\n{}",
                db.name(),
                section
            );
        }
        for rule in [
            "case-variant-email",
            "multiple-owners",
            "privileged-without-password",
        ] {
            assert!(
                r.stdout.contains(&format!("-- {rule}\n")),
                "{}: {rule}",
                db.name()
            );
        }
        assert_eq!(
            r.stdout.contains("SET LOCAL enable_nestloop = off"),
            db.is_postgres(),
            "{}",
            db.name()
        );
        assert!(r.stdout.contains("SELECT"));
        assert_eq!(db.query("SELECT count(*) FROM audit_logs"), before);
    }
}

#[test]
fn quiet_keeps_results_and_errors_and_drops_notes() {
    let dir = tempfile::tempdir().unwrap();
    // The embedded default prints a note; -q drops it, the result stays.
    let r = Run::from(bin(dir.path()).args(["migrate", "up"]).output().unwrap());
    r.expect_code(0);
    assert!(r.stderr.contains("note:"), "{}", r.stderr);
    let r = Run::from(
        bin(dir.path())
            .args(["-q", "migrate", "status"])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert!(r.stdout.contains("applied"), "{}", r.stdout);
    // Errors still show.
    let r = Run::from(
        bin(dir.path())
            .args(["-q", "migrate", "down", "--to", "nope"])
            .output()
            .unwrap(),
    );
    r.expect_clean_error(2);
}

#[test]
fn doctor_on_sqlite() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let r = db.run(&["doctor", "--format", "json"]);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["status"], "ready", "{j}");
    let checks: Vec<&str> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert!(
        checks.contains(&"schema") && checks.contains(&"migrations"),
        "{checks:?}"
    );
    // Drift blocks a deploy.
    db.query("DROP INDEX ix_audit_logs_ts");
    let r = db.run(&["doctor"]);
    r.expect_code(1);
    assert!(r.stdout.contains("BLOCKED"), "{}", r.stdout);
}
