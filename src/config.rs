//! Database URL resolution (flag > `DATABASE_URL` > `.env` > embedded default)
//! and redaction of secrets in everything we print.

use std::path::Path;

use sea_orm::DbBackend;
use url::Url;

use crate::error::Error;

/// The embedded default: a SQLite file in the current directory, created on demand.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://ecomind.db?mode=rwc";

/// Where the database URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UrlSource {
    /// `--database-url` or the `DATABASE_URL` environment variable (clap cannot tell them apart
    /// once parsed, and both are explicit).
    FlagOrEnv,
    /// `DATABASE_URL` in `./.env`.
    DotEnv,
    /// [`DEFAULT_DATABASE_URL`].
    Default,
}

/// A checked database URL.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    url: String,
    pub backend: DbBackend,
    pub source: UrlSource,
    /// The PostgreSQL schema that holds the API's tables, when not the search_path's
    /// first: `--schema`, else `search_path` in the URL's `options`.
    pub schema: Option<String>,
    /// `--schema` was given: every transaction sets its search_path (the URL's
    /// `options` are applied by the server itself).
    pub set_search_path: bool,
}

impl DatabaseConfig {
    /// The URL (`--database-url` / `DATABASE_URL`, else `.env`, else the default) and
    /// the schema (`--schema`) the user named.
    pub fn from_flags(url: Option<&str>, schema: Option<&str>) -> Result<Self, Error> {
        let mut config = Self::resolve(url)?;
        if let Some(schema) = schema {
            if config.backend != DbBackend::Postgres {
                return Err(Error::usage(
                    "--schema is for PostgreSQL: SQLite has no schemas",
                    "drop --schema, or use a postgres:// URL",
                ));
            }
            check_schema_name(schema)?;
            config.schema = Some(schema.to_owned());
            config.set_search_path = true;
        }
        Ok(config)
    }

    /// Resolve the URL: the flag/env value clap gave us, else `DATABASE_URL` from `./.env`,
    /// else the embedded default.
    pub fn resolve(explicit: Option<&str>) -> Result<Self, Error> {
        let (url, source) = match explicit {
            Some(url) => (url.to_owned(), UrlSource::FlagOrEnv),
            None => match dotenv_database_url(Path::new(".env"))? {
                Some(url) => (url, UrlSource::DotEnv),
                None => (DEFAULT_DATABASE_URL.to_owned(), UrlSource::Default),
            },
        };
        Self::parse(&url, source)
    }

    pub fn parse(url: &str, source: UrlSource) -> Result<Self, Error> {
        let url = url.trim();
        if url.is_empty() {
            return Err(Error::database(
                "the database URL is empty",
                "pass --database-url postgres://USER@HOST/DB or sqlite://FILE?mode=rwc",
            ));
        }
        let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        let backend = match scheme.as_deref() {
            Some("postgres") | Some("postgresql") => {
                // Validate the shape now, so that a typo is one clear line, not a driver error.
                Url::parse(url).map_err(|e| {
                    Error::database(
                        format!("invalid database URL: {e}"),
                        "expected postgres://USER@HOST[:PORT]/DATABASE[?sslmode=require]",
                    )
                })?;
                DbBackend::Postgres
            }
            Some("sqlite") => DbBackend::Sqlite,
            Some(other)
                if !other.is_empty()
                    && other
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                return Err(Error::database(
                    format!("unsupported database URL scheme '{other}'"),
                    "ecomind-admin speaks postgres://, postgresql:// and sqlite: URLs",
                ));
            }
            _ => {
                return Err(Error::database(
                    "invalid database URL: it has no scheme",
                    "expected postgres://USER@HOST[:PORT]/DATABASE or sqlite://FILE?mode=rwc",
                ));
            }
        };
        let schema = (backend == DbBackend::Postgres)
            .then(|| url_search_path(url))
            .flatten();
        Ok(Self {
            url: url.to_owned(),
            backend,
            source,
            schema,
            set_search_path: false,
        })
    }

    /// The URL with secrets in it, for the driver only. Never print it.
    pub fn secret_url(&self) -> &str {
        &self.url
    }

    /// The URL as it may be printed.
    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }
}

/// A schema name: 1 to 63 bytes, no NUL (it is always quoted as an identifier).
fn check_schema_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(Error::usage(
            format!(
                "invalid --schema '{}': a schema name is 1 to 63 bytes",
                crate::text::shown(name)
            ),
            "pass the name of the schema that holds (or will hold) the API's tables, e.g. --schema app",
        ));
    }
    Ok(())
}

/// The first schema of `search_path` in a PostgreSQL URL's `options` parameter
/// (`options=-c search_path=app,public` or `options=--search_path=app`).
pub fn url_search_path(url: &str) -> Option<String> {
    let parsed = Url::parse(url).ok()?;
    let options = parsed
        .query_pairs()
        .find(|(k, _)| k == "options")
        .map(|(_, v)| v.into_owned())?;
    let value = options
        .split("search_path=")
        .nth(1)?
        .split([' ', ','])
        .next()?
        .trim_matches('"')
        .to_owned();
    (!value.is_empty() && value != "$user").then_some(value)
}

/// Read `DATABASE_URL` from a `.env` file without touching the process environment.
fn dotenv_database_url(path: &Path) -> Result<Option<String>, Error> {
    if !path.exists() {
        return Ok(None);
    }
    let iter = dotenvy::from_path_iter(path).map_err(|e| {
        Error::database(
            format!(
                "cannot read {}: {}",
                path.display(),
                redact_text(&e.to_string())
            ),
            "fix or remove the .env file, or pass --database-url",
        )
    })?;
    for item in iter {
        let (key, value) = item.map_err(|e| {
            Error::database(
                format!(
                    "cannot parse {}: {}",
                    path.display(),
                    redact_text(&e.to_string())
                ),
                "fix the .env file, or pass --database-url",
            )
        })?;
        if key == "DATABASE_URL" {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

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
            // `query_pairs_mut` percent-encodes the mask; show it plainly.
            url.to_string().replace("%2A%2A%2A", MASK)
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
    redact_query_secrets(&out)
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
    fn sqlite_urls_are_unchanged() {
        assert_eq!(
            redact_url("sqlite://ecomind.db?mode=rwc"),
            "sqlite://ecomind.db?mode=rwc"
        );
    }

    #[test]
    fn scheme_detection() {
        assert!(DatabaseConfig::parse("mysql://x@y/z", UrlSource::FlagOrEnv).is_err());
        assert!(DatabaseConfig::parse("not a url", UrlSource::FlagOrEnv).is_err());
        assert_eq!(
            DatabaseConfig::parse("postgresql://u@h/d", UrlSource::FlagOrEnv)
                .unwrap()
                .backend,
            DbBackend::Postgres
        );
        assert_eq!(
            DatabaseConfig::parse("sqlite::memory:", UrlSource::FlagOrEnv)
                .unwrap()
                .backend,
            DbBackend::Sqlite
        );
    }
}
