//! Tamper-evident provenance: ecomind-admin's own audit_logs rows carry an HMAC-SHA-256
//! tag over their content, keyed by a secret that lives outside the database (a file of
//! the operator's). Anyone who can write audit_logs can write a row that says
//! `"created_by": "ecomind-admin"`; only the key's holder can tag it. The audit trusts
//! such a row as provenance only when its tag verifies.
//!
//! The key: the file `ECOMIND_AUDIT_KEY_FILE` names, else
//! `$XDG_CONFIG_HOME/ecomind-admin/audit.key` (`~/.config/...`) when it exists; at least
//! 32 bytes of secret (e.g. `openssl rand -hex 32`), mode 0600 and ours.

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use hmac::{KeyInit as _, Mac as _};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The variable that names the key file.
pub const KEY_FILE_ENV: &str = "ECOMIND_AUDIT_KEY_FILE";
/// The key of `details` that holds the tag.
pub const TAG_FIELD: &str = "ecomind_admin_tag";
const DOMAIN: &str = "ecomind-admin audit row v1";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The audit key (its bytes never printed: Debug shows its id only).
#[derive(Clone)]
pub struct Key {
    secret: Vec<u8>,
    /// A short public id of the key (8 hex digits of a hash of it), in every tag, so
    /// that rows tagged by another key are told apart from forged ones.
    pub id: String,
    pub path: PathBuf,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

/// The default key file, when the environment gives a home.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("ecomind-admin").join("audit.key"))
}

/// The configured key: the file `ECOMIND_AUDIT_KEY_FILE` names (it must be usable), else
/// the default file when it exists, else none.
pub fn configured() -> Result<Option<Key>> {
    if let Some(path) = std::env::var_os(KEY_FILE_ENV).filter(|v| !v.is_empty()) {
        return load(Path::new(&path)).map(Some);
    }
    match default_path() {
        Some(path) if std::fs::symlink_metadata(&path).is_ok() => load(&path).map(Some),
        _ => Ok(None),
    }
}

/// Read a key file: ours, readable by us only, at least 32 bytes once trimmed.
pub fn load(path: &Path) -> Result<Key> {
    let display = path.display().to_string();
    let shown = crate::text::shown(&display);
    let refuse = |why: &str| {
        Error::usage(
            format!("the audit key {shown}: {why}"),
            format!(
                "make one with: umask 077; openssl rand -hex 32 > {shown} (see docs/audit.md \"Provenance\")"
            ),
        )
    };
    let text = crate::fsafe::read_secret_file(path, 4096).map_err(|why| refuse(&why))?;
    let secret = text.trim().as_bytes().to_vec();
    if secret.len() < 32 {
        return Err(refuse("it holds fewer than 32 bytes of secret"));
    }
    let id = key_id(&secret);
    Ok(Key {
        secret,
        id,
        path: path.to_owned(),
    })
}

fn key_id(secret: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::new()
        .chain_update(b"ecomind-admin audit key id\0")
        .chain_update(secret)
        .finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// What a tag covers: every column of the row, `details` without the tag itself.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub user_id: Option<&'a str>,
    pub action: &'a str,
    pub resource: &'a str,
    pub details: &'a Value,
    pub ts: NaiveDateTime,
}

/// JSON with object keys sorted at every level: one text per value, however the
/// database kept its key order and spacing.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn mac(key: &Key, row: &Row<'_>) -> HmacSha256 {
    let mut details = row.details.clone();
    if let Value::Object(map) = &mut details {
        map.remove(TAG_FIELD);
    }
    let message = Value::Array(vec![
        DOMAIN.into(),
        row.id.into(),
        row.org_id.into(),
        row.user_id.into(),
        row.action.into(),
        row.resource.into(),
        row.ts.format("%Y-%m-%dT%H:%M:%S%.6f").to_string().into(),
        canonical(&details),
    ]);
    let mut mac = HmacSha256::new_from_slice(&key.secret).expect("HMAC takes a key of any length");
    mac.update(message.to_string().as_bytes());
    mac
}

/// The tag of a row: `v1:KEYID:HEX`.
pub fn tag(key: &Key, row: &Row<'_>) -> String {
    let bytes = mac(key, row).finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("v1:{}:{hex}", key.id)
}

/// Why a row's tag does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// No tag at all.
    Missing,
    /// A tag of another key (its id differs): cannot be checked with this one.
    OtherKey,
    /// A tag of this key that does not match the row: forged or altered.
    Invalid,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Missing => "missing",
            Verdict::OtherKey => "other-key",
            Verdict::Invalid => "invalid",
        }
    }
}

/// Check a row's tag (in `details`) with `key`, in constant time.
pub fn verify(key: &Key, row: &Row<'_>) -> Verdict {
    let Some(tag) = row.details.get(TAG_FIELD).and_then(Value::as_str) else {
        return Verdict::Missing;
    };
    let mut parts = tag.splitn(3, ':');
    let (Some("v1"), Some(id), Some(hex)) = (parts.next(), parts.next(), parts.next()) else {
        return Verdict::Invalid;
    };
    if id != key.id {
        return Verdict::OtherKey;
    }
    let Some(bytes) = decode_hex(hex) else {
        return Verdict::Invalid;
    };
    match mac(key, row).verify_slice(&bytes) {
        Ok(()) => Verdict::Valid,
        Err(_) => Verdict::Invalid,
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> Key {
        Key {
            secret: secret.as_bytes().to_vec(),
            id: key_id(secret.as_bytes()),
            path: PathBuf::new(),
        }
    }

    #[test]
    fn a_tag_verifies_and_any_change_breaks_it() {
        let k = key("0123456789abcdef0123456789abcdef");
        let ts = chrono::NaiveDateTime::parse_from_str(
            "2026-12-01T10:00:00.123456",
            "%Y-%m-%dT%H:%M:%S%.f",
        )
        .unwrap();
        let details = serde_json::json!({"new_role": "admin", "changed_by": "ecomind-admin"});
        let row = Row {
            id: "audit_0000000000000001",
            org_id: "org_a",
            user_id: Some("user_1"),
            action: "role_changed",
            resource: "users",
            details: &details,
            ts,
        };
        let mut tagged = details.clone();
        tagged[TAG_FIELD] = tag(&k, &row).into();
        // Key order and spacing do not matter; the tag itself is not covered.
        let reordered: Value = serde_json::from_str(&format!(
            "{{\"{TAG_FIELD}\": {}, \"changed_by\": \"ecomind-admin\",  \"new_role\": \"admin\"}}",
            tagged[TAG_FIELD]
        ))
        .unwrap();
        for d in [&tagged, &reordered] {
            assert_eq!(verify(&k, &Row { details: d, ..row }), Verdict::Valid);
        }
        let mut altered = tagged.clone();
        altered["new_role"] = "owner".into();
        assert_eq!(
            verify(
                &k,
                &Row {
                    details: &altered,
                    ..row
                }
            ),
            Verdict::Invalid
        );
        assert_eq!(
            verify(
                &k,
                &Row {
                    user_id: Some("user_2"),
                    details: &tagged,
                    ..row
                }
            ),
            Verdict::Invalid
        );
        assert_eq!(
            verify(
                &k,
                &Row {
                    details: &details,
                    ..row
                }
            ),
            Verdict::Missing
        );
        let other = key("another key, also thirty-two bytes long");
        assert_eq!(
            verify(
                &other,
                &Row {
                    details: &tagged,
                    ..row
                }
            ),
            Verdict::OtherKey
        );
        assert!(!format!("{k:?}").contains("0123"));
    }
}
