//! Parity of `ecomind_admin::emails::normalize` with what the API's `EmailStr` (pydantic
//! 2 + email-validator 2.4, run for real in the test venv) accepts, refuses and how it
//! normalizes, over tests/fixtures/email-corpus.jsonl (issue 26, item 1).

use crate::common::*;

const ORACLE: &str = r##"
import json, sys
from pydantic import TypeAdapter, EmailStr, ValidationError
ta = TypeAdapter(EmailStr)
for line in sys.stdin:
    if line.startswith("#") or not line.strip():
        continue
    s = json.loads(line)
    try:
        print(json.dumps({"in": s, "ok": ta.validate_python(s)}))
    except ValidationError as e:
        print(json.dumps({"in": s, "err": e.errors()[0]["msg"]}))
"##;

#[test]
fn normalization_matches_the_apis_email_validator() {
    use std::io::Write as _;
    let corpus = std::fs::read_to_string(reference("email-corpus.jsonl")).unwrap();
    let mut child = std::process::Command::new(python())
        .args(["-c", ORACLE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the test venv's python runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(corpus.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the oracle failed");
    let mut checked = 0;
    let mut accepted = 0;
    let mut mismatches = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let input = v["in"].as_str().unwrap();
        let ours = ecomind_admin::emails::normalize(input);
        checked += 1;
        match (v["ok"].as_str(), &ours) {
            (Some(api), Ok(n)) if api == n.email => accepted += 1,
            (None, Err(_)) => {}
            _ => mismatches.push(format!(
                "{input:?}: the API says {}, we say {:?}",
                v.get("ok").unwrap_or(&v["err"]),
                ours.map(|n| n.email)
            )),
        }
    }
    assert!(checked >= 200, "{checked} addresses");
    assert!(accepted >= 100, "{accepted} accepted");
    assert!(
        mismatches.is_empty(),
        "{} of {checked}:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

both! {
    /// create-admin stores the address the API looks up, and refuses (exit 2) what the
    /// API refuses; look-ups find an account typed in any form the API reads as its
    /// address, refuse when two accounts match; accounts the API can never log in are an
    /// audit finding (critical for owners and admins) and a doctor line.
    fn addresses_the_api_can_log_in_with(db) {
        db.run(&["migrate", "up"]).expect_code(0);
        db.run(&["create-org", "--id", "org_a", "--name", "A"]).expect_code(0);
        let create = |email: &str| db.run_stdin(
            &["create-admin", "--org", "org_a", "--email", email, "--password-stdin", "--bcrypt-cost", "4"],
            b"a strong password 1\n",
        );
        let r = create("Admin@Example.COM");
        r.expect_code(0);
        assert!(r.stderr.contains("normalizes 'Admin@Example.COM' to 'Admin@example.com'"), "{}", r.stderr);
        create("ops@xn--bcher-kva.example").expect_code(0);
        let stored = db.query("SELECT email FROM users ORDER BY email");
        assert_eq!(lines(&stored), ["Admin@example.com", "ops@bücher.example"]);
        for (email, why) in [("root@corp.local", "special-use"), ("a@b.test", "special-use"), ("\"q\"@example.com", "Quoting")] {
            let r = create(email);
            r.expect_clean_error(2);
            assert!(r.stderr.contains("the API would refuse it") && r.stderr.contains(why), "{email}: {}", r.stderr);
        }
        assert_eq!(db.query("SELECT COUNT(*) FROM users"), "2");

        // Typed as the operator wrote it at creation: found.
        let r = db.run(&["users", "set-role", "Admin@Example.COM", "owner", "--reason", "x", "--yes", "--format", "json"]);
        r.expect_code(0);
        assert_eq!(r.json()["email"], "Admin@example.com");
        db.run(&["users", "set-role", "ops@XN--BCHER-KVA.example", "owner", "--reason", "x", "--yes"]).expect_code(0);

        // Written by someone else: two rows the API reads as one address, one it refuses.
        db.query(
            "INSERT INTO users (id, org_id, email, role, created_at) VALUES \
             ('user_0000000000d1', 'org_a', 'Dup@example.com', 'viewer', '2026-01-01 00:00:00'), \
             ('user_0000000000d2', 'org_a', 'Dup@EXAMPLE.com', 'admin', '2026-01-01 00:00:00'), \
             ('user_0000000000d3', 'org_a', 'root@corp.local', 'viewer', '2026-01-01 00:00:00')",
        );
        let r = db.run(&["users", "lock", "Dup@Example.com", "--reason", "x", "--yes"]);
        r.expect_clean_error(4);
        assert!(r.stderr.contains("2 users have an email the API reads as 'Dup@example.com'"), "{}", r.stderr);
        assert!(r.stderr.contains("--id"), "{}", r.stderr);
        let j = db.run(&["audit", "suspicious-accounts", "--rule", "unreachable-email", "--format", "json"]).json();
        let found: Vec<(String, String)> = j["findings"].as_array().unwrap().iter()
            .map(|f| (f["email"].as_str().unwrap().to_owned(), f["severity"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(found.len(), 2, "{j}");
        assert!(found.contains(&("Dup@EXAMPLE.com".into(), "critical".into())), "{j}");
        assert!(found.contains(&("root@corp.local".into(), "warning".into())), "{j}");
        let r = db.run(&["doctor", "--format", "json"]);
        let check = r.json()["checks"].as_array().unwrap().iter()
            .find(|c| c["check"] == "emails").cloned().unwrap();
        assert_eq!(check["status"], "warn", "{check}");
        assert_eq!(check["details"]["unreachable"], 2);
        assert_eq!(check["details"]["privileged"], 1);
    }
}
