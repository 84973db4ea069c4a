//! `users list`, `orgs list`, `users set-role` and `users reset-password`, on both
//! backends: filters, formats, no hash ever shown, CSV neutralized, refusals that
//! change nothing, audit rows as documented, passlib interop, the prompt.

use crate::common::*;

/// An org with an admin (made by create-admin, with a password) and two users inserted
/// as the API would (one without a password), one with a formula-like email.
fn seed(db: &AnyDb) {
    db.run(&["migrate", "up"]).expect_code(0);
    db.run(&["create-org", "--id", "org_a", "--name", "A, Inc"])
        .expect_code(0);
    db.run(&["create-org", "--id", "org_b", "--name", "B"])
        .expect_code(0);
    let r = db.run_stdin(
        &[
            "create-admin",
            "--org",
            "org_a",
            "--email",
            "ops@a.example",
            "--password-stdin",
            "--bcrypt-cost",
            "4",
        ],
        b"a strong password 1\n",
    );
    r.expect_code(0);
    db.query(
        "INSERT INTO users (id, org_id, email, role, created_at) VALUES \
         ('user_000000000001', 'org_a', 'viewer@a.example', 'viewer', '2026-01-01 00:00:00'), \
         ('user_000000000002', 'org_b', '=cmd@b.example', 'owner', '2026-01-02 00:00:00')",
    );
}

both! {
    /// Every format lists the users sorted by org and email, says whether a password is
    /// set and never shows a hash; the filters narrow the list.
    fn users_list_formats_and_filters(db) {
        seed(&db);
        let hash = db.query("SELECT password_hash FROM users WHERE email = 'ops@a.example'");
        assert!(hash.starts_with("$2b$"), "{hash}");

        let r = db.run(&["users", "list", "--format", "json"]);
        r.expect_code(0);
        assert!(!r.all().contains(&hash), "a hash was shown");
        let j = r.json();
        assert_eq!(j["count"], 3);
        let emails: Vec<&str> = j["users"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
        assert_eq!(emails, ["ops@a.example", "viewer@a.example", "=cmd@b.example"], "sorted by org, then email");
        assert_eq!(j["users"][0]["has_password"], true);
        assert_eq!(j["users"][1]["has_password"], false);

        let r = db.run(&["users", "list"]);
        r.expect_code(0);
        assert!(r.stdout.contains("viewer@a.example") && r.stdout.contains("none"), "{}", r.stdout);
        assert!(!r.all().contains(&hash));

        let r = db.run(&["users", "list", "--format", "csv"]);
        r.expect_code(0);
        assert!(r.stdout.starts_with("id,org_id,email,name,role,created_at,password\n"), "{}", r.stdout);
        assert!(r.stdout.contains(",'=cmd@b.example,"), "formula neutralized: {}", r.stdout);
        assert!(!r.all().contains(&hash));

        let count = |args: &[&str]| {
            let mut a = vec!["users", "list", "--format", "json"];
            a.extend_from_slice(args);
            let r = db.run(&a);
            r.expect_code(0);
            r.json()["count"].as_u64().unwrap()
        };
        assert_eq!(count(&["--org", "org_a"]), 2);
        assert_eq!(count(&["--role", "viewer"]), 1);
        assert_eq!(count(&["--role", "viewer", "--role", "owner"]), 2);
        assert_eq!(count(&["--privileged"]), 2);
        assert_eq!(count(&["--email-like", "%@A.EXAMPLE"]), 2);
        assert_eq!(count(&["--org", "org_b", "--privileged"]), 1);
    }

    /// An unknown --org is refused (exit 4), not an empty list.
    fn users_list_unknown_org_is_exit_4(db) {
        seed(&db);
        let r = db.run(&["users", "list", "--org", "org_zz"]);
        r.expect_clean_error(4);
        assert!(r.stderr.contains("org_zz"), "{}", r.stderr);
        // --format json: stdout is the error document, not the start of a list.
        let r = db.run(&["users", "list", "--org", "org_zz", "--format", "json"]);
        assert_eq!(r.code, 4, "{}", r.stderr);
        assert_eq!(r.json()["error"]["kind"], "refused", "{}", r.stdout);
    }

    /// orgs list: every org with its number of users.
    fn orgs_list_counts_users(db) {
        seed(&db);
        let r = db.run(&["orgs", "list", "--format", "json"]);
        r.expect_code(0);
        let j = r.json();
        assert_eq!(j["count"], 2);
        assert_eq!(j["orgs"][0]["id"], "org_a");
        assert_eq!(j["orgs"][0]["users"], 2);
        assert_eq!(j["orgs"][1]["users"], 1);
        let r = db.run(&["orgs", "list", "--format", "csv"]);
        r.expect_code(0);
        assert!(r.stdout.contains("org_a,\"A, Inc\","), "{}", r.stdout);
    }

    /// 2,500 users: every format lists them all (tables come in pages of 1,000).
    fn users_list_streams_many(db) {
        db.run(&["migrate", "up"]).expect_code(0);
        db.run(&["create-org", "--id", "org_many", "--name", "Many"]).expect_code(0);
        let rows = if db.is_postgres() {
            "SELECT 'user_' || lpad(g::text, 12, '0'), 'org_many', 'u' || g || '@x.com', 'viewer' FROM generate_series(1, 2500) g"
        } else {
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 2500) \
             SELECT printf('user_%012d', n), 'org_many', 'u' || n || '@x.com', 'viewer' FROM g"
        };
        db.query(&format!("INSERT INTO users (id, org_id, email, role) {rows}"));
        let r = db.run(&["users", "list", "--format", "json"]);
        r.expect_code(0);
        assert_eq!(r.json()["users"].as_array().unwrap().len(), 2500);
        let r = db.run(&["users", "list", "--format", "csv"]);
        assert_eq!(r.stdout.lines().count(), 2501);
        let r = db.run(&["users", "list"]);
        r.expect_code(0);
        assert_eq!(r.stdout.matches("@x.com").count(), 2500);
        assert_eq!(r.stdout.matches("╞").count(), 3, "three pages of at most 1,000 rows");
    }
}

both! {
    /// set-role: an elevation needs --yes without a terminal; --dry-run writes nothing;
    /// the change and one documented role_changed row land together; the last owner or
    /// admin of an org is kept unless --force; an unknown email is refused. Every
    /// refusal is exit 4 with the users and audit rows unchanged.
    fn set_role_changes_with_one_audit_row_and_refuses_cleanly(db) {
        seed(&db);
        let state = || {
            format!(
                "{}\n--\n{}",
                db.query("SELECT id, role FROM users ORDER BY id"),
                db.query("SELECT count(*) FROM audit_logs")
            )
        };
        let role = |email: &str| db.query(&format!("SELECT role FROM users WHERE email = '{email}'"));
        let before = state();
        for args in [
            &["users", "set-role", "viewer@a.example", "admin", "--reason", "on call"][..],
            &["users", "set-role", "nobody@a.example", "admin", "--reason", "x", "--yes"],
            &["users", "set-role", "ops@a.example", "viewer", "--reason", "x"],
            &["users", "set-role", "viewer@a.example", "admin", "--reason", " ", "--yes"],
        ] {
            let r = db.run(args);
            r.expect_clean_error(4);
            assert_eq!(state(), before, "{args:?} changed something");
        }
        // A case variant of a stored address is refused, with the address as stored.
        let r = db.run(&["users", "set-role", "VIEWER@a.example", "admin", "--reason", "on call", "--yes"]);
        r.expect_clean_error(4);
        assert!(r.stderr.contains("did you mean 'viewer@a.example'?"), "{}", r.stderr);
        assert_eq!(state(), before);

        let r = db.run(&["users", "set-role", "viewer@a.example", "admin", "--reason", "on call", "--dry-run", "--format", "json"]);
        r.expect_code(0);
        assert_eq!(r.json()["changed"], true);
        assert_eq!(r.json()["audit_details"]["new_role"], "admin");
        assert_eq!(state(), before, "--dry-run wrote");

        let r = db.run(&["users", "set-role", "viewer@a.example", "admin", "--reason", "on call", "--yes"]);
        r.expect_code(0);
        assert_eq!(role("viewer@a.example"), "admin");
        let rows = db.query("SELECT user_id, org_id, resource FROM audit_logs WHERE action = 'role_changed'");
        assert_eq!(rows, "user_000000000001|org_a|users");
        let details: serde_json::Value = serde_json::from_str(&db.query(
            "SELECT details FROM audit_logs WHERE action = 'role_changed'",
        ))
        .unwrap();
        let mut keys: Vec<&str> = details.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["changed_by", "email", "host", "new_role", "old_role", "os_user", "reason", "success", "timestamp"]
        );
        assert_eq!(details["old_role"], "viewer");
        assert_eq!(details["new_role"], "admin");
        assert_eq!(details["reason"], "on call");
        assert_eq!(details["changed_by"], "ecomind-admin");

        // Now org_a has two admins: one may go; the last one stays unless --force.
        db.run(&["users", "set-role", "ops@a.example", "viewer", "--reason", "rotation"]).expect_code(0);
        let before = state();
        db.run(&["users", "set-role", "viewer@a.example", "viewer", "--reason", "x"]).expect_clean_error(4);
        assert_eq!(state(), before);
        db.run(&["users", "set-role", "viewer@a.example", "viewer", "--reason", "x", "--force"]).expect_code(0);
        assert_eq!(db.query("SELECT count(*) FROM users WHERE org_id = 'org_a' AND role IN ('owner', 'admin')"), "0");
        // The same role again: nothing changes, no row.
        let before = state();
        db.run(&["users", "set-role", "viewer@a.example", "viewer", "--reason", "x"]).expect_code(0);
        assert_eq!(state(), before);
    }
}

/// The password of ops@a.example after [`seed`].
const SEED_PW: &str = "a strong password 1";
const NEW_PW: &str = "a brand new passphrase";

/// Everything reset-password may change: the users' hashes and the audit rows.
fn password_state(db: &AnyDb) -> String {
    format!(
        "{}\n--\n{}",
        db.query("SELECT id, email, role, password_hash FROM users ORDER BY id"),
        db.query("SELECT count(*) FROM audit_logs")
    )
}

fn reset(db: &AnyDb, email: &str, extra: &[&str], stdin: &str) -> Run {
    let mut args = vec![
        "users",
        "reset-password",
        email,
        "--password-stdin",
        "--bcrypt-cost",
        "4",
    ];
    args.extend_from_slice(extra);
    db.run_stdin(&args, stdin.as_bytes())
}

both! {
    /// reset-password: every refusal is exit 4 with nothing changed; the new hash and
    /// one documented password_reset row land together; the old password stops
    /// working; neither password nor hash is ever printed, logged or kept in the row.
    fn reset_password_replaces_the_hash_with_one_audit_row(db) {
        seed(&db);
        let before = password_state(&db);
        let old_hash = db.query("SELECT password_hash FROM users WHERE email = 'ops@a.example'");
        let refusals: [(&str, &[&str], &str, &str); 6] = [
            ("nobody@a.example", &[], "a fine password 123\n", "no user with email 'nobody@a.example'"),
            ("OPS@a.example", &[], "a fine password 123\n", "did you mean 'ops@a.example'?"),
            ("ops@a.example", &[], "short\n", "at least 12 are required"),
            ("viewer@a.example", &[], "VIEWER@a.example\n", "must not be the email"),
            ("ops@a.example", &[], "", "stdin is empty"),
            ("ops@a.example", &["--reason", "  "], "a fine password 123\n", "--reason is empty"),
        ];
        for (email, extra, stdin, says) in refusals {
            let r = reset(&db, email, extra, stdin);
            r.expect_clean_error(4);
            assert!(r.stderr.contains(says), "{email} {extra:?}: {}", r.stderr);
            assert!(!r.all().contains("fine password"), "a password was printed: {}", r.all());
            assert_eq!(password_state(&db), before, "{email} {extra:?} changed something");
        }
        // No terminal, no --password-stdin, no environment variable: exit 4.
        let r = db.run(&["users", "reset-password", "ops@a.example"]);
        r.expect_clean_error(4);
        assert!(r.stderr.contains("--password-stdin"), "{}", r.stderr);
        assert_eq!(password_state(&db), before);

        let r = reset(&db, "ops@a.example", &["--reason", "lost laptop", "--format", "json", "-vv"], &format!("{NEW_PW}\r\n"));
        r.expect_code(0);
        let new_hash = db.query("SELECT password_hash FROM users WHERE email = 'ops@a.example'");
        assert_ne!(new_hash, old_hash);
        assert!(bcrypt::verify(NEW_PW, &new_hash).unwrap(), "the new password works");
        assert!(!bcrypt::verify(SEED_PW, &new_hash).unwrap(), "the old password still works");
        for secret in [NEW_PW, new_hash.as_str(), old_hash.as_str()] {
            assert!(!r.all().contains(secret), "{secret:?} was printed or logged:\n{}", r.all());
        }
        let j = r.json();
        assert_eq!(j["email"], "ops@a.example");
        assert_eq!(j["audit_details"]["reason"], "lost laptop");

        let rows = db.query("SELECT user_id, org_id, resource FROM audit_logs WHERE action = 'password_reset'");
        let ops_id = db.query("SELECT id FROM users WHERE email = 'ops@a.example'");
        assert_eq!(rows, format!("{ops_id}|org_a|users"));
        let text = db.query("SELECT details FROM audit_logs WHERE action = 'password_reset'");
        assert!(!text.contains("$2b$") && !text.contains(NEW_PW), "{text}");
        let details: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut keys: Vec<&str> = details.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["changed_by", "email", "host", "os_user", "reason", "success", "timestamp"]);
        assert_eq!(details["changed_by"], "ecomind-admin");
        assert_eq!(details["email"], "ops@a.example");
        // Nothing else changed: the other users, the role, the other rows.
        let rows_before: i64 = before.rsplit('\n').next().unwrap().parse().unwrap();
        assert_eq!(db.query("SELECT count(*) FROM audit_logs"), (rows_before + 1).to_string());
        assert_eq!(db.query("SELECT role FROM users WHERE email = 'ops@a.example'"), "admin");

        // From the environment, for a user who had no password; announced, not shown.
        let r = Run::from(
            db.cmd()
                .env("ECOMIND_ADMIN_PASSWORD", NEW_PW)
                .args(["users", "reset-password", "viewer@a.example", "--bcrypt-cost", "4"])
                .output()
                .unwrap(),
        );
        r.expect_code(0);
        assert!(r.stderr.contains("ECOMIND_ADMIN_PASSWORD"), "{}", r.stderr);
        assert!(!r.all().contains(NEW_PW));
        let hash = db.query("SELECT password_hash FROM users WHERE email = 'viewer@a.example'");
        assert!(bcrypt::verify(NEW_PW, &hash).unwrap());
        assert_eq!(db.query("SELECT count(*) FROM audit_logs WHERE action = 'password_reset'"), "2");
    }
}

/// The API's password stack (passlib's CryptContext, as the API uses it) accepts the
/// new password after reset-password, and rejects the old one.
#[test]
fn passlib_verifies_the_reset_password_and_rejects_the_old() {
    let db = AnyDb::Pg(PgDb::new());
    seed(&db);
    let old_hash = db.query("SELECT password_hash FROM users WHERE email = 'ops@a.example'");
    assert!(passlib_verifies(SEED_PW, &old_hash), "the seed's hash");
    let r = db.run_stdin(
        &[
            "users",
            "reset-password",
            "ops@a.example",
            "--password-stdin",
        ],
        format!("{NEW_PW}\n").as_bytes(),
    );
    r.expect_code(0);
    let hash = db.query("SELECT password_hash FROM users WHERE email = 'ops@a.example'");
    assert!(hash.starts_with("$2b$12$"), "the default cost: {hash}");
    assert!(
        passlib_verifies(NEW_PW, &hash),
        "passlib rejects the new password"
    );
    assert!(
        !passlib_verifies(SEED_PW, &hash),
        "passlib accepts the old password"
    );
}

/// On a terminal the password is asked twice and never echoed.
#[test]
fn reset_password_prompts_twice_on_a_terminal() {
    let any = AnyDb::Lite(SqliteDb::new());
    seed(&any);
    let db = any.as_lite();
    let mut tty = Tty::spawn(db, "users reset-password ops@a.example --bcrypt-cost 4");
    tty.expect("Password for ops@a.example");
    tty.type_secret(NEW_PW);
    tty.expect("Repeat the password");
    tty.type_secret(NEW_PW);
    tty.finish_secret(NEW_PW);
    let hash = db.query("SELECT password_hash FROM users WHERE email = 'ops@a.example'");
    assert!(bcrypt::verify(NEW_PW, &hash).unwrap());
}

both! {
    /// Concurrent set-role runs serialize: two demotions of an org's two admins leave
    /// exactly one (the other is refused, exit 4); two changes of one user never lose
    /// an update (the second row's old_role is the first row's new_role).
    fn concurrent_set_role_runs_serialize(db) {
        seed(&db);
        db.query(
            "INSERT INTO users (id, org_id, email, role, created_at) VALUES \
             ('user_000000000003', 'org_a', 'second@a.example', 'admin', '2026-01-03 00:00:00')",
        );
        // Each run holds its transaction open 400 ms before committing: the two overlap.
        let slow = |args: &[&str]| {
            Run::from(db.cmd().env("ECOMIND_FAILPOINT_COMMIT_DELAY_MS", "400").args(args).output().unwrap())
        };
        let demote = |email: &str| slow(&["users", "set-role", email, "viewer", "--reason", "race"]);
        for round in 0..3 {
            db.query("UPDATE users SET role = 'admin' WHERE email IN ('ops@a.example', 'second@a.example')");
            let (a, b) = std::thread::scope(|s| {
                let a = s.spawn(|| demote("ops@a.example"));
                let b = s.spawn(|| demote("second@a.example"));
                (a.join().unwrap(), b.join().unwrap())
            });
            let mut codes = [a.code, b.code];
            codes.sort();
            assert_eq!(codes, [0, 4], "round {round}: {}\n{}", a.all(), b.all());
            let refused = if a.code == 4 { &a } else { &b };
            assert!(refused.stderr.contains("last owner or admin"), "{}", refused.stderr);
            assert_eq!(
                db.query("SELECT count(*) FROM users WHERE org_id = 'org_a' AND role IN ('owner', 'admin')"),
                "1",
                "round {round}"
            );
        }

        db.query("DELETE FROM audit_logs WHERE action = 'role_changed'");
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| slow(&["users", "set-role", "viewer@a.example", "analyst", "--reason", "a"]));
            let b = s.spawn(|| slow(&["users", "set-role", "viewer@a.example", "billing", "--reason", "b"]));
            (a.join().unwrap(), b.join().unwrap())
        });
        a.expect_code(0);
        b.expect_code(0);
        let chain = db.query(
            "SELECT details FROM audit_logs WHERE action = 'role_changed' ORDER BY ts, id",
        );
        let rows: Vec<serde_json::Value> = chain.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(rows.len(), 2, "{chain}");
        assert_eq!(rows[0]["old_role"], "viewer", "{chain}");
        assert_eq!(rows[1]["old_role"], rows[0]["new_role"], "a lost update: {chain}");
        assert_eq!(
            db.query("SELECT role FROM users WHERE email = 'viewer@a.example'"),
            rows[1]["new_role"].as_str().unwrap()
        );
    }

    /// The audit trusts set-role's row and nothing else: a promotion by set-role is not
    /// flagged (and is listed for review); one by hand-written SQL is.
    fn the_audit_trusts_set_role_and_flags_raw_sql(db) {
        seed(&db);
        db.query(
            "INSERT INTO users (id, org_id, email, role, created_at, password_hash) VALUES \
             ('user_000000000004', 'org_a', 'bysql@a.example', 'viewer', '2026-01-04 00:00:00', 'x')",
        );
        let no_provenance = || -> Vec<String> {
            let r = db.run(&[
                "audit", "suspicious-accounts", "--rule", "privileged-without-provenance",
                "--rule", "role-changed-recently", "--since", "1d", "--fail-on", "never", "--format", "json",
            ]);
            r.expect_code(0);
            r.json()["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| format!("{} {}", f["rule"].as_str().unwrap(), f["email"].as_str().unwrap()))
                .collect()
        };
        // The seed's users inserted by hand: the owner of org_b has no registration row.
        let baseline = no_provenance();
        assert_eq!(baseline, ["privileged-without-provenance =cmd@b.example"]);

        db.run(&["users", "set-role", "viewer@a.example", "admin", "--reason", "INC-1", "--yes"]).expect_code(0);
        db.query("UPDATE users SET role = 'admin' WHERE email = 'bysql@a.example'");
        let mut found = no_provenance();
        found.sort();
        assert_eq!(
            found,
            [
                "privileged-without-provenance =cmd@b.example",
                "privileged-without-provenance bysql@a.example",
                "role-changed-recently viewer@a.example",
            ]
        );
        // Changed again by hand after set-role: the recorded role is no longer the role.
        db.query("UPDATE users SET role = 'owner' WHERE email = 'viewer@a.example'");
        assert!(no_provenance().contains(&"privileged-without-provenance viewer@a.example".to_owned()));
    }
}

/// A demotion by hand-written SQL racing with set-role: set-role waits for the other
/// admin's row, then sees it demoted and refuses, so the org keeps its admin.
#[test]
fn set_role_waits_for_a_concurrent_demotion_and_keeps_an_admin() {
    let any = AnyDb::Pg(PgDb::new());
    seed(&any);
    let db = any.as_pg();
    db.psql(
        "INSERT INTO users (id, org_id, email, role, created_at) VALUES \
         ('user_000000000003', 'org_a', 'second@a.example', 'admin', '2026-01-03 00:00:00')",
    );
    let blocker = Blocker::psql_txn(
        db,
        "UPDATE users SET role = 'viewer' WHERE email = 'second@a.example';",
    );
    let child = db
        .std_cmd()
        .args([
            "users",
            "set-role",
            "ops@a.example",
            "viewer",
            "--reason",
            "race",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("set-role to wait for the row lock", 20, || {
        db.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND application_name <> 'psql'",
        ) == "1"
    });
    blocker.commit();
    let r = Run::from(child.wait_with_output().unwrap());
    r.expect_clean_error(4);
    assert!(r.stderr.contains("last owner or admin"), "{}", r.stderr);
    assert_eq!(
        db.psql("SELECT email FROM users WHERE org_id = 'org_a' AND role IN ('owner', 'admin')"),
        "ops@a.example"
    );
    assert_eq!(
        db.psql("SELECT count(*) FROM audit_logs WHERE action = 'role_changed'"),
        "0"
    );
}

/// On a terminal an elevation shows the user and asks; "n" (or Enter) changes nothing,
/// "y" changes the role. A demotion does not ask.
#[test]
fn set_role_asks_on_a_terminal_before_an_elevation() {
    let any = AnyDb::Lite(SqliteDb::new());
    seed(&any);
    let db = any.as_lite();
    let before = any.snapshot();
    let args = "users set-role viewer@a.example admin --reason on-call";
    let r = on_tty(db, args, "n");
    assert_eq!(r.code, 4, "{}", r.stdout);
    assert!(r.stdout.contains("not confirmed"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("make 'viewer@a.example' (user_000000000001, org_a, now viewer) admin"),
        "{}",
        r.stdout
    );
    assert_eq!(any.snapshot(), before, "answered no, yet something changed");
    let r = on_tty(db, args, "y");
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(
        db.query("SELECT role FROM users WHERE email = 'viewer@a.example'"),
        "admin"
    );
    let mut tty = Tty::spawn(db, "users set-role viewer@a.example viewer --reason done");
    tty.expect("-> viewer: changed");
    let r = tty.finish();
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        !r.stdout.contains("[y/N]"),
        "a demotion asked: {}",
        r.stdout
    );
}

/// Cron and CI often set no USER or LOGNAME: the audit row still names the operating
/// system user, from the system's user database (here: the one `id -un` names).
#[test]
fn the_audit_row_names_the_os_user_without_user_in_the_environment() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let r = Run::from(
        db.cmd()
            .env_remove("USER")
            .env_remove("LOGNAME")
            .args(["create-org", "--id", "org_cron", "--name", "Cron"])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    let id = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let me = String::from_utf8_lossy(&id.stdout).trim().to_owned();
    assert!(!me.is_empty());
    let details = db.query("SELECT details FROM audit_logs WHERE org_id = 'org_cron'");
    let details: serde_json::Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["os_user"], me.as_str(), "{details}");
}
