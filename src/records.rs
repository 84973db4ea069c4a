//! The API's conventions for what the CLI writes: ids, naive-UTC timestamps, and
//! audit_logs rows shaped like the API's own (see tests/fixtures/API-AUDIT-EVENTS.md).

use chrono::NaiveDateTime;
use rand::Rng;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait};
use serde_json::{Map, Value, json};

use crate::entities::audit_logs;
use crate::error::{Error, Result};

/// What the CLI puts in `created_by`.
pub const CREATED_BY: &str = "ecomind-admin";

/// `prefix` + `hex_len` lowercase hex digits from the OS-seeded thread RNG.
pub fn new_id(prefix: &str, hex_len: usize) -> String {
    let mut rng = rand::rng();
    let mut id = String::with_capacity(prefix.len() + hex_len);
    id.push_str(prefix);
    for _ in 0..hex_len {
        let d: u32 = rng.random_range(0..16);
        id.push(char::from_digit(d, 16).expect("a hex digit"));
    }
    id
}

/// The identity of an email address, the same on every backend: without invisible
/// characters, NFKC-normalized, the local part in Unicode lowercase, the domain in its
/// IDNA ASCII form (`bücher.example` and
/// `xn--bcher-kva.example` are one domain), lowercase. Two addresses with the same key
/// are one account. (SQLite's `lower()` folds ASCII only, PostgreSQL's depends on the
/// collation: neither decides this.)
pub fn email_key(email: &str) -> String {
    if email.is_ascii() {
        // ASCII has no invisible character and is its own NFKC form: the same key,
        // without the normalizer (an audit keys every user's address).
        let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
        return format!("{}@{}", local.to_ascii_lowercase(), key_domain(domain));
    }
    email_key_unicode(email)
}

/// [`email_key`] for any text.
fn email_key_unicode(email: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    // What a reader cannot tell apart is one address: invisible characters dropped,
    // compatibility forms folded (NFKC: fullwidth letters, ligatures).
    let email: String = email
        .chars()
        .filter(|c| !crate::text::is_invisible(*c))
        .nfkc()
        .collect();
    let email = email.as_str();
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
    format!("{}@{}", local.to_lowercase(), key_domain(domain))
}

/// The domain of an [`email_key`]: its IDNA ASCII form, lowercased.
fn key_domain(domain: &str) -> String {
    crate::text::memo(&KEY_DOMAINS, domain, |domain| {
        idna::domain_to_ascii(domain)
            .map(|d| d.to_ascii_lowercase())
            .unwrap_or_else(|_| domain.to_lowercase())
    })
}

thread_local! {
    /// [`email_key`]'s domains, remembered for the thread (a pure function; an audit
    /// keys every user's address, and a deployment has few domains).
    static KEY_DOMAINS: crate::text::Memo<String> = Default::default();
}

/// Now, naive UTC with microseconds, as the API (Python's datetime) writes timestamps.
pub fn now() -> NaiveDateTime {
    use chrono::SubsecRound;
    chrono::Utc::now().naive_utc().trunc_subsecs(6)
}

/// ISO-8601 naive UTC with microseconds, as in the API's `details.timestamp`.
pub fn iso(ts: NaiveDateTime) -> String {
    ts.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// A naive-UTC timestamp: `2026-11-01`, `2026-11-01T12:00:00[.ffffff]`, space or `T`,
/// an optional trailing `Z`.
pub fn parse_timestamp(s: &str) -> std::result::Result<NaiveDateTime, String> {
    let t = s.trim().trim_end_matches('Z');
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(ts) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(ts);
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight"));
    }
    Err(format!(
        "'{s}' is not a timestamp (expected 2026-11-01 or 2026-11-01T12:00:00, naive UTC)"
    ))
}

/// The operating-system user and host that ran the command.
pub fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The name of this process's user in the system's user database (cron and CI often
/// set no USER).
fn user_from_passwd() -> Option<String> {
    whoami::username().ok().filter(|u| !u.is_empty())
}

pub fn host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// `details` of a row the CLI writes: the per-action keys, then created_by, os_user, host,
/// success and timestamp.
pub fn details(fields: &[(&str, Value)], ts: NaiveDateTime) -> Value {
    details_by("created_by", fields, ts)
}

/// The same, with ecomind-admin named under `by` (`changed_by` for a role change).
pub fn details_by(by: &str, fields: &[(&str, Value)], ts: NaiveDateTime) -> Value {
    let mut map = Map::new();
    for (k, v) in fields {
        map.insert((*k).to_owned(), v.clone());
    }
    map.insert(by.into(), json!(CREATED_BY));
    map.insert("os_user".into(), json!(os_user()));
    map.insert("host".into(), json!(host()));
    map.insert("success".into(), json!(true));
    map.insert("timestamp".into(), json!(iso(ts)));
    Value::Object(map)
}

/// Insert one audit_logs row, tagged with the audit key when one is configured
/// ([`crate::provenance`]: the audit then trusts it as ecomind-admin's).
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    user_id: Option<&str>,
    action: &str,
    resource: &str,
    mut details: Value,
    ts: NaiveDateTime,
) -> Result<String> {
    let id = new_id("audit_", 16);
    if let Some(key) = crate::provenance::configured()? {
        let tag = crate::provenance::tag(
            &key,
            &crate::provenance::Row {
                id: &id,
                org_id,
                user_id,
                action,
                resource,
                details: &details,
                ts,
            },
        );
        if let Value::Object(map) = &mut details {
            map.insert(crate::provenance::TAG_FIELD.into(), json!(tag));
        }
    }
    audit_logs::ActiveModel {
        id: Set(id.clone()),
        org_id: Set(org_id.to_owned()),
        user_id: Set(user_id.map(str::to_owned)),
        action: Set(action.to_owned()),
        resource: Set(resource.to_owned()),
        details: Set(Some(details)),
        ts: Set(Some(ts)),
    }
    .insert(conn)
    .await
    .map_err(|e| Error::from_db(e, "writing the audit_logs row"))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_keys() {
        assert_eq!(email_key("ÜNÏCÖDÉ@X.com"), email_key("ünïcödé@x.com"));
        assert_eq!(
            email_key("user@bücher.example"),
            email_key("user@xn--bcher-kva.example")
        );
        assert_eq!(
            email_key("User@BÜCHER.example"),
            "user@xn--bcher-kva.example"
        );
        assert_ne!(email_key("a@x.com"), email_key("b@x.com"));
        // The last @ separates the domain.
        assert_eq!(email_key("\"a@b\"@X.com"), "\"a@b\"@x.com");
    }

    #[test]
    fn ids_have_the_api_shape() {
        let id = new_id("audit_", 16);
        assert_eq!(id.len(), 22);
        assert!(
            id[6..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(new_id("org_", 12), new_id("org_", 12));
    }

    /// The ASCII shortcut of `email_key` gives the general path's key, tricky shapes
    /// (no @, several, IDNA-invalid domains, punycode, controls) and random ASCII alike.
    #[test]
    fn email_key_ascii_shortcut_is_the_general_key() {
        use rand::Rng as _;
        let mut cases: Vec<String> = [
            "User@Example.COM",
            "a@b",
            "no-at-sign",
            "a@b@C.d",
            "@",
            "x@",
            "@Y",
            "a@xn--BCHER-kva.example",
            "a@xn--zz.example",
            "a@-bad-.example",
            "a@under_score.example",
            "a@.",
            "a@b..c",
            "a\u{1}b@C",
            "\"Quoted Local\"@Ex.com",
            "a@[127.0.0.1]",
            "a@EXAMPLE.com.",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let mut rng = rand::rng();
        for _ in 0..2000 {
            let n = rng.random_range(0..24);
            cases.push(
                (0..n)
                    .map(|_| char::from(rng.random_range(0u8..128)))
                    .collect(),
            );
        }
        for c in cases {
            assert!(c.is_ascii());
            assert_eq!(email_key(&c), email_key_unicode(&c), "{c:?}");
        }
    }
}
