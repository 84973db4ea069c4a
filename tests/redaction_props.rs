//! Property tests: URL redaction never lets a password through, whatever the URL.

use ecomind_admin::config::{redact_text, redact_url};
use proptest::prelude::*;

/// Passwords with every character class a user might pick, including URL delimiters.
/// The `Q7` prefix keeps them from matching other parts of the URL by accident.
fn password() -> impl Strategy<Value = String> {
    "Q7[a-zA-Z0-9 !#$%&'()*+,/:;=?@\\[\\]~^`{}|\"<>.-]{4,24}"
}

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,10}"
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Every spelling the password can take in a URL.
fn spellings(pw: &str) -> Vec<String> {
    let mut v = vec![pw.to_owned(), encode(pw)];
    let userinfo: String = pw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._~".contains(c) {
                c.to_string()
            } else {
                format!("%{:02X}", c as u32)
            }
        })
        .collect();
    v.push(userinfo);
    v
}

fn leaks(redacted: &str, pw: &str) -> bool {
    spellings(pw)
        .iter()
        .any(|s| s.len() >= 6 && redacted.contains(s.as_str()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn userinfo_password_never_leaks(user in ident(), pw in password(), host in ident(), db in ident(), port in 1u16..65535) {
        let mut u = url::Url::parse(&format!("postgres://{host}:{port}/{db}")).unwrap();
        u.set_username(&user).unwrap();
        u.set_password(Some(&pw)).unwrap();
        let raw = u.to_string();
        let red = redact_url(&raw);
        prop_assert!(!leaks(&red, &pw), "{raw} -> {red}");
        prop_assert!(red.contains("***"), "{red}");
        let text = redact_text(&format!("error connecting to {raw}: refused"));
        prop_assert!(!leaks(&text, &pw), "{raw} -> {text}");
    }

    #[test]
    fn query_password_never_leaks(pw in password(), host in ident(), key in prop::sample::select(vec!["password", "Password", "sslpassword", "pwd"])) {
        let raw = format!("postgres://{host}/db?sslmode=require&{key}={}&application_name=x", encode(&pw));
        let red = redact_url(&raw);
        prop_assert!(!leaks(&red, &pw), "{raw} -> {red}");
        prop_assert!(red.contains("sslmode=require"), "{red}");
        let text = redact_text(&raw);
        prop_assert!(!leaks(&text, &pw), "{raw} -> {text}");
    }

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,200}") {
        let _ = redact_url(&s);
        let _ = redact_text(&s);
    }
}

/// Everything `-vv` prints (driver debug logs, warnings about unknown parameters,
/// errors) for a URL with secrets under names sqlx knows and names it does not.
fn vv_output(url: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("ecomind-admin")
        .unwrap()
        .current_dir(dir.path())
        .env("DATABASE_URL", url)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .args(["-vv", "--connect-timeout", "0", "migrate", "status"])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn vv_output_never_leaks(
        user_pw in password(),
        pw in password(),
        key in prop::sample::select(vec!["PASSWORD", "sslpassword", "password", "Pwd", "client_secret"]),
    ) {
        let mut u = url::Url::parse("postgres://127.0.0.1:1/db").unwrap();
        u.set_username("someone").unwrap();
        u.set_password(Some(&user_pw)).unwrap();
        let raw = format!("{u}?sslmode=disable&{key}={}", encode(&pw));
        let out = vv_output(&raw);
        prop_assert!(out.contains("DEBUG") || out.contains("WARN") || out.contains("error"), "{out}");
        prop_assert!(!leaks(&out, &pw), "{raw}:\n{out}");
        prop_assert!(!leaks(&out, &user_pw), "{raw}:\n{out}");
    }
}
