//! `ecomind-admin.toml`: named environments, each a database (or a fleet of them) and
//! its settings. The file is `--config PATH`, else `ECOMIND_ADMIN_CONFIG`, else
//! `./ecomind-admin.toml`; `--env NAME` selects one. URLs come from environment
//! variables the file names (`url_env`, `urls_env`), or a list file (`urls_file`); a
//! password written in the file itself is refused unless only its owner can read it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The file's name in the current directory.
pub const FILE_NAME: &str = "ecomind-admin.toml";
/// The environment variable naming the file.
pub const FILE_ENV: &str = "ECOMIND_ADMIN_CONFIG";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    environments: BTreeMap<String, Environment>,
}

/// One environment as the file writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The name of the variable that holds the URL (never the URL itself).
    pub url_env: Option<String>,
    /// A literal URL (refused with a password unless the file is 0600 and ours).
    pub url: Option<String>,
    /// The names of the variables that hold the fleet's URLs.
    pub urls_env: Option<Vec<String>>,
    /// A file with one URL per line (`#` comments), relative to the config file.
    pub urls_file: Option<PathBuf>,
    pub schema: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub ddl_lock_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub lock_wait: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub connect_timeout: Option<Duration>,
    /// 1 to 256, as `--parallel`.
    #[serde(default, deserialize_with = "parallel")]
    pub parallel: Option<u32>,
}

fn parallel<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<u32>, D::Error> {
    let n = i64::deserialize(d)?;
    if (1..=256).contains(&n) {
        Ok(Some(n as u32))
    } else {
        Err(serde::de::Error::custom(format!(
            "invalid parallel {n}: 1 to 256 databases at once (as --parallel)"
        )))
    }
}

fn duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map(Some).map_err(|e| {
        serde::de::Error::custom(format!("invalid duration '{text}': {e} (e.g. 10s, 2m)"))
    })
}

/// The environment `--env` selected, resolved: its databases and settings.
#[derive(Debug, Clone)]
pub struct Selected {
    pub name: String,
    pub file: PathBuf,
    /// One URL, or the fleet's (secrets inside: never print them unredacted).
    pub urls: Vec<String>,
    pub settings: Environment,
}

/// The config file: `explicit` (`--config` / `ECOMIND_ADMIN_CONFIG`), which must exist,
/// else `./ecomind-admin.toml` when there is one.
pub fn locate(explicit: Option<&Path>) -> Result<Option<PathBuf>> {
    if let Some(path) = explicit {
        if !path.is_file() {
            return Err(Error::usage(
                format!("the config file {} does not exist", path.display()),
                format!("check --config / {FILE_ENV}"),
            ));
        }
        return Ok(Some(path.to_owned()));
    }
    let here = PathBuf::from(FILE_NAME);
    Ok(here.is_file().then_some(here))
}

/// `file:line` of byte `offset` of `text`, and the key written on that line.
fn at(file: &Path, text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line = text[..offset].matches('\n').count() + 1;
    let key = text
        .lines()
        .nth(line - 1)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim().trim_matches('"'))
        .filter(|k| !k.is_empty());
    match key {
        Some(k) => format!("{}:{line}: key `{}`", file.display(), crate::text::shown(k)),
        None => format!("{}:{line}", file.display()),
    }
}

/// Every environment of the file; a syntax error, an unknown key or a bad value is exit
/// 2 naming the file, the line and the key.
pub fn load(file: &Path) -> Result<BTreeMap<String, Environment>> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::usage(
            format!("cannot read the config file {}: {e}", file.display()),
            "check --config and the file's permissions",
        )
    })?;
    let parsed: File = toml::from_str(&text).map_err(|e| {
        let place = e
            .span()
            .map(|s| at(file, &text, s.start))
            .unwrap_or_else(|| file.display().to_string());
        Error::usage(
            format!("{place}: {}", e.message().trim()),
            "see docs/configuration.md \"Environments and fleets\" for the keys of an environment",
        )
    })?;
    Ok(parsed.environments)
}

/// Environment `name` of `file`, with its URLs read.
pub fn select(file: &Path, name: &str) -> Result<Selected> {
    let all = load(file)?;
    let Some(env) = all.get(name) else {
        let known: Vec<&str> = all.keys().map(String::as_str).collect();
        return Err(Error::usage(
            format!(
                "no environment '{}' in {}",
                crate::text::shown(name),
                file.display()
            ),
            if known.is_empty() {
                "the file defines no [environments.NAME] table".to_owned()
            } else {
                format!("known: {}", known.join(", "))
            },
        ));
    };
    let urls = urls_of(file, name, env)?;
    Ok(Selected {
        name: name.to_owned(),
        file: file.to_owned(),
        urls,
        settings: env.clone(),
    })
}

/// The URLs an environment names, in order.
fn urls_of(file: &Path, name: &str, env: &Environment) -> Result<Vec<String>> {
    let bad = |msg: String| {
        Error::usage(
            format!("{}: environment '{name}': {msg}", file.display()),
            "see docs/configuration.md \"Environments and fleets\"",
        )
    };
    let sources = [
        env.url_env.is_some(),
        env.url.is_some(),
        env.urls_env.is_some(),
        env.urls_file.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err(bad(
            "give exactly one of url_env, url, urls_env, urls_file".into()
        ));
    }
    let var = |v: &str| {
        std::env::var(v)
            .ok()
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| bad(format!("the variable {v} is not set")))
    };
    let urls = if let Some(v) = &env.url_env {
        vec![var(v)?]
    } else if let Some(url) = &env.url {
        refuse_exposed_secret(file, url)?;
        vec![url.clone()]
    } else if let Some(vars) = &env.urls_env {
        vars.iter().map(|v| var(v)).collect::<Result<Vec<_>>>()?
    } else {
        let list = env.urls_file.as_deref().unwrap_or(Path::new(""));
        let list = file.parent().unwrap_or(Path::new(".")).join(list);
        let text = std::fs::read_to_string(&list)
            .map_err(|e| bad(format!("cannot read urls_file {}: {e}", list.display())))?;
        let urls: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        for u in &urls {
            refuse_exposed_secret(&list, u)?;
        }
        urls
    };
    if urls.is_empty() {
        return Err(bad("it names no database".into()));
    }
    Ok(urls)
}

/// A URL with a password, written in `file`: allowed only when the file is mode 0600 (or
/// stricter) and owned by the user running ecomind-admin.
fn refuse_exposed_secret(file: &Path, url: &str) -> Result<()> {
    if !crate::redact::has_password(url) {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(file).map_err(|e| {
            Error::usage(
                format!("cannot read {}: {e}", file.display()),
                "check the file",
            )
        })?;
        if meta.mode() & 0o077 == 0 && meta.uid() == crate::fsafe::my_uid() {
            return Ok(());
        }
    }
    Err(Error::usage(
        format!(
            "{} holds a database password but other users may read it (it must be mode 0600 and yours)",
            file.display()
        ),
        "name a variable instead (url_env / urls_env), or chmod 600 the file",
    ))
}
