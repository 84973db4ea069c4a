//! Issue 30 (first steps): `metrics` prints the deployment plan's monitoring metrics in
//! the Prometheus text format, valid for `promtool check metrics` (Debian's prometheus
//! package, unpacked by scripts/test.sh), on both backends; hostile label values are
//! escaped.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::common::*;

fn promtool() -> String {
    std::env::var("ECOMIND_TEST_PROMTOOL").unwrap_or_else(|_| {
        panic!("ECOMIND_TEST_PROMTOOL is not set: run scripts/test.sh, which unpacks Debian's prometheus package")
    })
}

/// `promtool check metrics` on `text`: its verdict (exit 0) and what it said.
fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The value of the series `series` (name and labels, as printed).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        .parse()
        .unwrap()
}

both! {
    /// Known events written the way the API writes them: the windows count them, the
    /// users by role, the token holders, the version; promtool accepts the whole.
    fn metrics_count_what_the_api_wrote(db) {
        db.run(&["migrate", "up"]).expect_code(0);
        let pg = db.is_postgres();
        let minus = |s: u32| {
            if pg {
                format!("(now() AT TIME ZONE 'utc') - interval '{s} seconds'")
            } else {
                format!("strftime('%Y-%m-%d %H:%M:%f', 'now', '-{s} seconds')")
            }
        };
        let mut sql = String::from(
            "INSERT INTO orgs (id, name) VALUES ('org_a', 'A'); \
             INSERT INTO users (id, org_id, email, role, created_at) VALUES \
               ('user_000000000001', 'org_a', 'o@a.example', 'owner', '2026-01-01 00:00:00'), \
               ('user_000000000002', 'org_a', 'v@a.example', 'viewer', '2026-01-01 00:00:00'), \
               ('user_000000000003', 'org_a', 'w@a.example', 'viewer', '2026-01-01 00:00:00');",
        );
        // 12 failed logins in the last minute (invalid password), 2 four minutes ago
        // (unknown email), 1 success 10 minutes ago and 1 now, a registration now.
        let mut n = 0;
        let mut row = |action: &str, user: &str, details: &str, ago: u32| {
            n += 1;
            sql.push_str(&format!(
                " INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts) VALUES \
                 ('audit_{n:016x}', 'org_a', {user}, '{action}', 'authentication', '{details}', {});",
                minus(ago)
            ));
        };
        for i in 0..12 {
            row("login_failed", "'user_000000000001'", r#"{"success": false, "email": "o@a.example", "reason": "invalid_password"}"#, 5 + i * 4);
        }
        for _ in 0..2 {
            row("login_failed", "NULL", r#"{"success": false, "email": "x@a.example", "reason": "user_not_found"}"#, 240);
        }
        row("login_success", "'user_000000000002'", r#"{"success": true, "email": "v@a.example"}"#, 600);
        row("login_success", "'user_000000000001'", r#"{"success": true, "email": "o@a.example"}"#, 2);
        row("user_registered", "'user_000000000003'", r#"{"success": true, "email": "w@a.example", "role": "viewer", "created_by": "user_000000000001"}"#, 3);
        db.query(&sql);
        let r = db.run(&["metrics"]);
        r.expect_code(0);
        let t = &r.stdout;
        let (ok, said) = promtool_check(t);
        assert!(ok, "promtool check metrics: {said}\n{t}");
        let ev = |a: &str, reason: &str, w: &str| {
            value(t, &format!("ecomind_auth_events{{action=\"{a}\",reason=\"{reason}\",window=\"{w}\"}}"))
        };
        assert_eq!(ev("login_failed", "invalid_password", "1m"), 12.0);
        assert_eq!(ev("login_failed", "invalid_password", "5m"), 12.0);
        assert_eq!(ev("login_failed", "user_not_found", "1m"), 0.0);
        assert_eq!(ev("login_failed", "user_not_found", "5m"), 2.0);
        assert_eq!(ev("login_success", "", "5m"), 1.0);
        assert_eq!(ev("user_registered", "", "1m"), 1.0);
        assert_eq!(value(t, "ecomind_users{role=\"viewer\"}"), 2.0);
        assert_eq!(value(t, "ecomind_users{role=\"owner\"}"), 1.0);
        assert_eq!(value(t, "ecomind_token_holders"), 2.0);
        let r = db.run(&["metrics", "--token-lifetime", "5m"]);
        assert_eq!(value(&r.stdout, "ecomind_token_holders"), 1.0);
        assert_eq!(value(t, "ecomind_migrations_pending"), 0.0);
        assert_eq!(value(t, "ecomind_schema_drift_findings"), 0.0);
        assert_eq!(value(t, "ecomind_scrape_success"), 1.0);
        assert!(t.contains(&format!("alembic_revision=\"{}\"", head_revision())), "{t}");
        let r = db.run(&["metrics", "--by-org"]);
        assert_eq!(value(&r.stdout, "ecomind_users{org=\"org_a\",role=\"viewer\"}"), 2.0);
    }
}

/// A hostile application_name (quotes, a backslash, a newline) is escaped: promtool
/// accepts the exposition and the name is there, whole.
#[test]
fn hostile_label_values_are_escaped() {
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let holder = Command::new("psql")
        .args(["-X", "-q", "-c", "SELECT pg_sleep(30)", &db.url()])
        .env("PGAPPNAME", "evil\" app\\ } x")
        .spawn()
        .unwrap();
    wait_for("the session", 10, || {
        db.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'evil%'") == "1"
    });
    let r = db.run(&["metrics"]);
    r.expect_code(0);
    let (ok, said) = promtool_check(&r.stdout);
    assert!(ok, "{said}\n{}", r.stdout);
    assert!(
        r.stdout.contains(r#"application="evil\" app\\ } x""#),
        "{}",
        r.stdout
    );
    let mut holder = holder;
    let _ = holder.kill();
    let _ = holder.wait();
}
