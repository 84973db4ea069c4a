//! Secrets never printed: redaction of database URLs and of free text (driver errors,
//! log records). Depends on nothing else in the crate, so every layer may use it.

use url::Url;

const MASK: &str = "***";

/// Redact a database URL: the password in the userinfo and any `password`-like
/// query parameter. Something that does not parse as a URL is redacted as text.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.has_authority() || url.query().is_some() => {
            if url.password().is_some() {
                // set_password only fails for URLs that cannot have one.
                let _ = url.set_password(Some(MASK));
            }
            if url.query_pairs().any(|(k, _)| is_secret_key(&k)) {
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| {
                        if is_secret_key(&k) {
                            (k.into_owned(), MASK.to_owned())
                        } else {
                            (k.into_owned(), v.into_owned())
                        }
                    })
                    .collect();
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
            // `query_pairs_mut` percent-encodes the mask; show it plainly. What the URL
            // parser did not see as a password (`postgres:///:pw@h/db`) is still one.
            redact_text(&url.to_string().replace("%2A%2A%2A", MASK))
        }
        _ => redact_text(raw),
    }
}

/// The secret values a database URL holds (the userinfo password and secret query
/// parameters, raw and percent-decoded), so that logs can mask them wherever a driver
/// prints them, whatever it calls them.
pub fn secrets_in_url(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(url) = Url::parse(raw) {
        if let Some(pw) = url.password() {
            out.push(pw.to_owned());
            out.push(percent_decode(pw));
        }
        for (k, v) in url.query_pairs() {
            if is_secret_key(&k) {
                out.push(v.into_owned());
            }
        }
        if let Some(q) = url.query() {
            for pair in q.split('&') {
                if let Some((k, v)) = pair.split_once('=')
                    && is_secret_key(k)
                {
                    out.push(v.to_owned());
                }
            }
        }
    }
    out.retain(|s| s.chars().count() >= 3);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Mask every known secret in `text`, then redact URL-like secrets ([`redact_text`]).
pub fn redact_known(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    redact_text(&out)
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password") || key == "pass" || key == "pwd" || key.contains("secret")
}

/// Redact anything URL-like inside free text (driver error messages, unparsable URLs):
/// `scheme://user:secret@` becomes `scheme://user:***@`, and `password=secret` becomes
/// `password=***`.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // userinfo passwords
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?' or '#'; the password is between the
        // first ':' and the last '@' inside it. Without an '@' there, stop at whitespace.
        let hard_end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
        let end = match tail[..hard_end].rfind('@') {
            Some(_) => hard_end,
            None => tail[..hard_end]
                .find(char::is_whitespace)
                .unwrap_or(hard_end),
        };
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push(':');
                        out.push_str(MASK);
                        out.push_str(&authority[at..]);
                    }
                    None => out.push_str(authority),
                }
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    redact_query_secrets(&redact_bare_userinfo(&out))
}

/// `user:secret@host` anywhere, with or without `//` before it (`postgres:/u:pw@h/db`,
/// `postgresql:u:pw@h/db`): everything between the first ':' of the word that ends at an
/// '@' and that '@' is masked (a word starts after whitespace, '/' or an angle bracket:
/// a password may hold quotes and brackets, so they do not end one).
fn redact_bare_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word_start = 0;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() || "/<>".contains(c) {
            out.push_str(&text[word_start..i + c.len_utf8()]);
            word_start = i + c.len_utf8();
        } else if c == '@' {
            let word = &text[word_start..i];
            match word.find(':') {
                Some(colon) if &word[colon + 1..] != MASK => {
                    out.push_str(&word[..=colon]);
                    out.push_str(MASK);
                }
                _ => out.push_str(word),
            }
            out.push('@');
            word_start = i + 1;
        }
    }
    out.push_str(&text[word_start..]);
    out
}

/// Whether a URL (well-formed or not) carries a password of any length: in its userinfo,
/// in a secret query parameter, or in a `user:secret@` shape without `//`.
pub fn has_password(raw: &str) -> bool {
    if let Ok(url) = Url::parse(raw)
        && (url.password().is_some() || url.query_pairs().any(|(k, _)| is_secret_key(&k)))
    {
        return true;
    }
    redact_text(raw) != raw
}

fn redact_query_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let lower = text.to_ascii_lowercase();
    while i < text.len() {
        let found = ["password=", "pwd=", "pass=", "secret="]
            .iter()
            .filter_map(|k| lower[i..].find(k).map(|p| (p + i, k.len())))
            .min();
        match found {
            Some((start, klen)) => {
                let value_start = start + klen;
                let value_end = text[value_start..]
                    .find(|c: char| {
                        c == '&' || c == '#' || c.is_whitespace() || c == '\'' || c == '"'
                    })
                    .map(|p| p + value_start)
                    .unwrap_or(text.len());
                out.push_str(&text[i..value_start]);
                out.push_str(MASK);
                i = value_end;
            }
            None => {
                out.push_str(&text[i..]);
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_password() {
        assert_eq!(
            redact_url("postgres://admin:s3cr3t@db:5432/eco"),
            "postgres://admin:***@db:5432/eco"
        );
    }

    #[test]
    fn redacts_query_password() {
        let r = redact_url("postgres://db/eco?user=a&password=s3cr3t&sslmode=require");
        assert!(!r.contains("s3cr3t"), "{r}");
        assert!(r.contains("password=***"), "{r}");
        assert!(r.contains("sslmode=require"), "{r}");
    }

    #[test]
    fn redacts_percent_encoded_password() {
        let r = redact_url("postgres://a:p%40ss%3Aword@db/eco");
        assert!(!r.contains("p%40ss"), "{r}");
        assert!(!r.contains("word"), "{r}");
    }

    #[test]
    fn redacts_unparsable_url_text() {
        let r = redact_text("postgres://a:sec ret@[bad/eco and password=hunter2 more");
        assert!(!r.contains("hunter2"), "{r}");
        assert!(!r.contains("sec"), "{r}");
    }

    #[test]
    fn redacts_userinfo_without_slashes() {
        for (raw, secret) in [
            ("postgres:/u:Secret8@127.0.0.1/db", "Secret8"),
            ("postgresql:u:SecretA@127.0.0.1/db", "SecretA"),
            ("error at 'postgres:u:p:w@h/d' here", "p:w"),
        ] {
            let r = redact_text(raw);
            assert!(!r.contains(secret), "{raw} -> {r}");
            assert!(has_password(raw), "{raw}");
        }
        assert_eq!(redact_text("mail a@b.com now"), "mail a@b.com now");
        assert_eq!(redact_text("postgres://u:***@h/d"), "postgres://u:***@h/d");
        assert!(has_password("postgres://u:ab@h/d"));
        assert!(!has_password("postgres://u@h/d"));
    }

    #[test]
    fn sqlite_urls_are_unchanged() {
        assert_eq!(
            redact_url("sqlite://ecomind.db?mode=rwc"),
            "sqlite://ecomind.db?mode=rwc"
        );
    }
}
