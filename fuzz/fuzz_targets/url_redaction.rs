//! Database URL parsing and redaction: never a panic, and a password set in the
//! userinfo never survives redaction.
#![no_main]

use ecomind_admin::config::{DatabaseConfig, UrlSource, redact_text, redact_url};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = DatabaseConfig::parse(s, UrlSource::FlagOrEnv).map(|c| c.redacted());
    let red = redact_url(s);
    let _ = redact_text(s);
    if let Ok(u) = url::Url::parse(s)
        && let Some(pw) = u.password()
        && pw.len() >= 8
        && !pw.contains("***")
        && u.has_host()
    {
        // The same text may stand elsewhere in the URL (the username, the query): that
        // is not the password leaking. Compare with the redaction of the URL without it.
        let mut without = u.clone();
        let _ = without.set_password(None);
        if !redact_url(without.as_str()).contains(pw) {
            assert!(
                !red.contains(pw),
                "password {pw:?} survived redaction of {s:?}: {red:?}"
            );
        }
    }
});
