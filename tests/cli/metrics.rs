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

/// GET `url`: the status and the body (None: no answer).
fn get(url: &str) -> Option<(u16, String)> {
    match ureq::get(url).call() {
        Ok(r) => Some((r.status(), r.into_string().unwrap_or_default())),
        Err(ureq::Error::Status(code, r)) => Some((code, r.into_string().unwrap_or_default())),
        Err(_) => None,
    }
}

/// `metrics serve`: each scrape reads the database (valid for promtool); the database
/// going away makes a scrape say so (ecomind_scrape_success 0) and the next recovers
/// without a restart; a second serve on the taken port exits 4 with one error line;
/// other paths are 404; SIGINT ends it (130).
#[test]
fn metrics_serve_answers_recovers_and_stops() {
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("http://{listen}/metrics");
    let child = db.spawn(&["metrics", "serve", "--listen", &listen]);
    wait_for("metrics serve to answer", 20, || {
        get(&url).is_some_and(|(s, _)| s == 200)
    });
    let (_, body) = get(&url).unwrap();
    let (ok, said) = promtool_check(&body);
    assert!(ok, "{said}\n{body}");
    assert_eq!(value(&body, "ecomind_scrape_success"), 1.0);
    // The database ends our session: that scrape fails, the next reconnects.
    db.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name LIKE 'ecomind-admin%'",
    );
    let (status, body) = get(&url).unwrap();
    assert_eq!(status, 200);
    assert_eq!(value(&body, "ecomind_scrape_success"), 0.0, "{body}");
    assert!(!body.contains(&db.password()), "{body}");
    let (_, body) = get(&url).unwrap();
    assert_eq!(
        value(&body, "ecomind_scrape_success"),
        1.0,
        "recovered: {body}"
    );
    assert_eq!(get(&format!("http://{listen}/")).unwrap().0, 404);
    // A second serve on the same port.
    let r = db.run(&["metrics", "serve", "--listen", &listen]);
    r.expect_clean_error(4);
    assert!(
        r.stderr.contains(&format!("cannot listen on {listen}")),
        "{}",
        r.stderr
    );
    send(&child, "-INT");
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(get(&url).is_none(), "it stopped listening");
}

/// The shipped alert rules load (`promtool check rules`) and do what their unit tests
/// say (`promtool test rules`: the failed-login threshold, a privileged account without
/// a registration, drift and pending migrations past a deploy, connections above 80%,
/// the exporter failing).
#[test]
fn the_alert_rules_pass_promtool() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/prometheus");
    for args in [
        &["check", "rules", "ecomind-admin.rules.yml"][..],
        &["test", "rules", "ecomind-admin.rules.test.yml"],
    ] {
        let out = Command::new(promtool())
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// End to end with real components: Prometheus (Debian's package) scrapes `metrics
/// serve` on a real PostgreSQL with the shipped rules; 12 failed logins written the way
/// the API writes them make EcomindFailedLoginsHigh pending in Prometheus's own API, and
/// once they age out of the minute it resolves.
#[test]
fn prometheus_sees_the_brute_force_alert_and_its_end() {
    let prometheus = std::env::var("ECOMIND_TEST_PROMETHEUS")
        .expect("ECOMIND_TEST_PROMETHEUS: run scripts/test.sh (Debian's prometheus package)");
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let listen = format!("127.0.0.1:{}", free_port());
    let serve = db.spawn(&["metrics", "serve", "--listen", &listen]);
    let work = tempfile::tempdir().unwrap();
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/prometheus/ecomind-admin.rules.yml"
    );
    let config = work.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: ['{rules}']\n\
             scrape_configs:\n  - job_name: ecomind\n    static_configs: [{{targets: ['{listen}']}}]\n"
        ),
    )
    .unwrap();
    let web = format!("127.0.0.1:{}", free_port());
    let mut prom = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            work.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus runs");
    let alert_state = || -> Option<String> {
        let (_, body) = get(&format!("http://{web}/api/v1/alerts"))?;
        let j: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some(
            j["data"]["alerts"]
                .as_array()?
                .iter()
                .find(|a| a["labels"]["alertname"] == "EcomindFailedLoginsHigh")
                .map(|a| a["state"].as_str().unwrap_or("").to_owned())
                .unwrap_or_else(|| "inactive".to_owned()),
        )
    };
    wait_for("Prometheus to scrape metrics serve", 30, || {
        get(&format!(
            "http://{web}/api/v1/query?query=ecomind_scrape_success"
        ))
        .is_some_and(|(_, b)| b.contains("\"value\""))
    });
    assert_eq!(alert_state().as_deref(), Some("inactive"));
    // 12 failed logins, as the API writes them, 40 seconds old: in the minute's window
    // for about 20 seconds more.
    db.psql(
        "INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts) \
         SELECT 'audit_' || lpad(to_hex(i), 16, '0'), 'system', NULL, 'login_failed', 'authentication', \
                json_build_object('success', false, 'email', 'x@a.example', 'reason', 'user_not_found', \
                                  'timestamp', now() AT TIME ZONE 'utc'), \
                (now() AT TIME ZONE 'utc') - interval '40 seconds' \
         FROM generate_series(1, 12) AS i",
    );
    wait_for("the alert to be pending", 30, || {
        matches!(alert_state().as_deref(), Some("pending" | "firing"))
    });
    wait_for("the alert to resolve once the rows age out", 60, || {
        alert_state().as_deref() == Some("inactive")
    });
    let _ = prom.kill();
    let _ = prom.wait();
    send(&serve, "-INT");
    let r = Run::from(serve.wait_with_output().unwrap());
    assert_eq!(r.code, 130, "{}", r.stderr);
}
