//! Database URL resolution (flag > `DATABASE_URL` > `.env` > embedded default)
//! and redaction of secrets in everything we print.

use std::path::Path;

use sea_orm::DbBackend;
use url::Url;

use crate::error::Error;
pub use crate::redact::{redact_known, redact_text, redact_url, secrets_in_url};

/// The embedded default: a SQLite file in the current directory, created on demand.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://ecomind.db?mode=rwc";

/// `ECOMIND_NO_DEFAULT_DATABASE` (set in the container image): no URL is an error, not
/// a SQLite file in a container's throwaway filesystem.
fn no_default_database() -> bool {
    std::env::var_os("ECOMIND_NO_DEFAULT_DATABASE").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Where the database URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UrlSource {
    /// `--database-url` or the `DATABASE_URL` environment variable (clap cannot tell them apart
    /// once parsed, and both are explicit).
    FlagOrEnv,
    /// `DATABASE_URL` in `./.env`.
    DotEnv,
    /// [`DEFAULT_DATABASE_URL`].
    Default,
    /// The environment `--env` selected in the config file.
    Environment,
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
        config.apply_schema(schema)?;
        Ok(config)
    }

    /// A URL of the selected environment (or of a fleet), with `--schema` / the
    /// environment's `schema`.
    pub fn from_environment(url: &str, schema: Option<&str>) -> Result<Self, Error> {
        let mut config = Self::parse(url, UrlSource::Environment)?;
        config.apply_schema(schema)?;
        Ok(config)
    }

    /// `--schema` (or the environment's `schema`), when given.
    pub fn apply_schema(&mut self, schema: Option<&str>) -> Result<(), Error> {
        let config = self;
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
        Ok(())
    }

    /// Resolve the URL: the flag/env value clap gave us, else `DATABASE_URL` from `./.env`,
    /// else the embedded default.
    pub fn resolve(explicit: Option<&str>) -> Result<Self, Error> {
        let (url, source) = match explicit {
            Some(url) => (url.to_owned(), UrlSource::FlagOrEnv),
            None => match dotenv_database_url(Path::new(".env"))? {
                Some(url) => (url, UrlSource::DotEnv),
                None if no_default_database() => {
                    return Err(Error::usage(
                        "no database URL: this environment has no default database (ECOMIND_NO_DEFAULT_DATABASE is set)",
                        "set DATABASE_URL (e.g. podman run -e DATABASE_URL=postgres://USER@HOST/DB ...) or pass --database-url",
                    ));
                }
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
            Some(s @ ("postgres" | "postgresql")) => {
                // `postgres:/u:pw@h/db` and `postgresql:u:pw@h/db` parse as URLs with no
                // host (the driver then connects over the local socket as someone else):
                // refused, and never echoed (the text after the scheme may be a password).
                if !url[s.len() + 1..].starts_with("//") {
                    return Err(Error::database(
                        format!("invalid database URL: '{s}:' must be followed by '//'"),
                        "expected postgres://USER@HOST[:PORT]/DATABASE (the URL is not shown: it may hold a password)",
                    ));
                }
                // Validate the shape now, so that a typo is one clear line, not a driver error.
                Url::parse(url).map_err(|e| {
                    Error::database(
                        format!("invalid database URL: {e}"),
                        "expected postgres://USER@HOST[:PORT]/DATABASE[?sslmode=require]",
                    )
                })?;
                DbBackend::Postgres
            }
            Some("sqlite") => {
                check_sqlite_path(url)?;
                DbBackend::Sqlite
            }
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

/// A SQLite URL names a file (or `:memory:` / `mode=memory`): `sqlite://?mode=rwc` and
/// `sqlite://` would open a private temporary database that vanishes on exit, so a
/// "successful" migration would write nothing anyone can read.
fn check_sqlite_path(url: &str) -> Result<(), Error> {
    let (path, query) = sqlite_parts(url).unwrap_or_default();
    if path.is_empty() && !sqlite_in_memory(path, query) {
        return Err(Error::database(
            "invalid database URL: the sqlite: URL names no file",
            "name the file, e.g. sqlite://ecomind.db?mode=rwc (or sqlite::memory: for a throwaway database)",
        ));
    }
    Ok(())
}

/// The path (still percent-encoded) and the query of a `sqlite:` / `sqlite://` URL.
pub fn sqlite_parts(url: &str) -> Option<(&str, &str)> {
    let scheme = url.get(..7).filter(|s| s.eq_ignore_ascii_case("sqlite:"))?;
    let rest = &url[scheme.len()..];
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    Some(rest.split_once('?').unwrap_or((rest, "")))
}

/// A SQLite URL's path and query name an in-memory database.
pub fn sqlite_in_memory(path: &str, query: &str) -> bool {
    path == ":memory:" || query.split('&').any(|p| p == "mode=memory")
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn url_shape() -> impl Strategy<Value = (String, String)> {
        let scheme = prop::sample::select(vec![
            "postgres",
            "postgresql",
            "POSTGRES",
            "PostgreSQL",
            "sqlite",
            "mysql",
            "",
        ]);
        let sep = prop::sample::select(vec!["", ":", ":/", "://", ":///", "//", ":\\\\"]);
        let user = "[a-z]{0,6}";
        // A password of any length and alphabet a URL may carry (no '@', '/', '?', '#':
        // those end the userinfo and are percent-encoded by anyone who writes them).
        let password = "Zq[A-Za-z0-9:;._~!$&'()*+,=%-]{0,14}";
        let host = prop::sample::select(vec!["127.0.0.1", "db", "[::1]", "", "h:5432", "[bad"]);
        let tail = prop::sample::select(vec!["/db", "", "/db?sslmode=require", "?x=1", "/d b"]);
        (scheme, sep, user, password, host, tail)
            .prop_map(|(sc, sep, u, pw, h, t)| (format!("{sc}{sep}{u}:{pw}@{h}{t}"), pw))
    }

    proptest! {
        /// Whatever its shape, a URL's password never appears in what we print: the
        /// error (message and hint) when it is refused, the redacted URL when accepted.
        #[test]
        fn no_url_shape_echoes_its_password((url, pw) in url_shape()) {
            match DatabaseConfig::parse(&url, UrlSource::FlagOrEnv) {
                Err(e) => {
                    let shown = format!("{} {}", e.message(), e.hint().unwrap_or_default());
                    prop_assert!(!shown.contains(&pw), "{url} -> {shown}");
                    prop_assert_eq!(e.code(), crate::error::exit::DATABASE);
                }
                Ok(c) => {
                    prop_assert!(!c.redacted().contains(&pw), "{url} -> {}", c.redacted());
                    let postgres = c.backend == DbBackend::Postgres;
                    prop_assert!(!postgres || url.to_ascii_lowercase().contains("://"), "{url}");
                }
            }
            prop_assert!(!redact_text(&url).contains(&pw), "{url}");
            prop_assert!(crate::redact::has_password(&url), "{url}");
        }
    }

    #[test]
    fn urls_without_slashes_and_sqlite_without_a_file_are_refused() {
        for url in [
            "postgres:/u:Secret8@127.0.0.1/db",
            "postgresql:u:SecretA@127.0.0.1/db",
            "sqlite://?mode=rwc",
            "sqlite://",
            "sqlite:",
            "sqlite:?mode=rwc",
        ] {
            let e = DatabaseConfig::parse(url, UrlSource::FlagOrEnv).unwrap_err();
            assert_eq!(e.code(), crate::error::exit::DATABASE, "{url}");
            assert!(!e.message().contains("Secret"), "{}", e.message());
        }
        for url in [
            "sqlite::memory:",
            "sqlite://x.db?mode=memory",
            "sqlite:a.db",
            "postgres:///db",
        ] {
            assert!(
                DatabaseConfig::parse(url, UrlSource::FlagOrEnv).is_ok(),
                "{url}"
            );
        }
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
