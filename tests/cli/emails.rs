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
