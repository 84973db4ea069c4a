//! `ecomind-admin.toml` and `--env`: where the file is found, precedence (flags >
//! environment variables > the file's environment > the default), a password in the
//! file refused unless only its owner can read it, errors with file:line and key.

use std::path::Path;

use crate::common::*;

fn write(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The binary in `dir`, with no DATABASE_URL of the test's own.
fn bin_in(dir: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("ecomind-admin").unwrap();
    c.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("ECOMIND_ADMIN_CONFIG")
        .env_remove("ECOMIND_ENV")
        .env("NO_COLOR", "1");
    c
}

fn run_in(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = bin_in(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.args(args).output().unwrap())
}

const FILE: &str = r#"
[environments.staging]
url_env = "STAGING_DATABASE_URL"
ddl_lock_timeout = "5s"

[environments.local]
url = "sqlite://local.db?mode=rwc"
"#;

/// `--env` picks the environment's database and settings; a flag beats the file, and
/// DATABASE_URL beats it too (with a warning); `--config` and ECOMIND_ADMIN_CONFIG find
/// a file elsewhere.
#[test]
fn env_selects_the_database_and_flags_come_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("ecomind-admin.toml"), FILE, 0o644);
    let staging = [("STAGING_DATABASE_URL", "sqlite://staging.db?mode=rwc")];
    let r = run_in(d, &staging, &["--env", "staging", "migrate", "up", "-q"]);
    r.expect_code(0);
    assert!(d.join("staging.db").exists() && !d.join("ecomind.db").exists());
    let r = run_in(d, &[], &["--env", "local", "migrate", "up", "-q"]);
    r.expect_code(0);
    assert!(d.join("local.db").exists());
    // The environment's ddl_lock_timeout (seen in a PostgreSQL plan), unless a flag
    // says otherwise; without either, the default 10s.
    let pg = PgDb::new();
    let url = pg.url();
    let with_pg = [("STAGING_DATABASE_URL", url.as_str())];
    let plan = |extra: &[&str]| {
        let mut a = vec!["--env", "staging", "migrate", "up", "--dry-run"];
        a.extend_from_slice(extra);
        let r = run_in(d, &with_pg, &a);
        r.expect_code(0);
        r.stdout
    };
    assert!(
        plan(&[]).contains("lock_timeout = '5000ms'"),
        "the file's 5s"
    );
    assert!(
        plan(&["--ddl-lock-timeout", "7s"]).contains("lock_timeout = '7000ms'"),
        "the flag's 7s"
    );
    let r = run_in(
        d,
        &[("DATABASE_URL", url.as_str())],
        &["migrate", "up", "--dry-run"],
    );
    assert!(
        r.stdout.contains("lock_timeout = '10000ms'"),
        "the default: {}",
        r.stdout
    );
    // DATABASE_URL overrides the environment, and says so.
    let r = run_in(
        d,
        &[("DATABASE_URL", "sqlite://staging.db?mode=rwc")],
        &["--env", "local", "migrate", "current"],
    );
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("overrides the database of environment 'local'"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains(head_revision()), "{}", r.stdout);
    // The file found elsewhere: --config, or ECOMIND_ADMIN_CONFIG.
    let other = tempfile::tempdir().unwrap();
    let cfg = d.join("ecomind-admin.toml");
    let r = run_in(
        other.path(),
        &staging,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--env",
            "staging",
            "migrate",
            "current",
        ],
    );
    assert_eq!(
        r.code, 3,
        "staging.db is relative to the current directory: {}",
        r.stderr
    );
    let r = run_in(
        other.path(),
        &[
            ("ECOMIND_ADMIN_CONFIG", cfg.to_str().unwrap()),
            ("ECOMIND_ENV", "nope"),
        ],
        &["migrate", "current"],
    );
    r.expect_clean_error(2);
    assert!(
        r.stderr.contains("no environment 'nope'") && r.stderr.contains("known: local, staging"),
        "{}",
        r.stderr
    );
    // --env without any file.
    let r = run_in(
        other.path(),
        &[],
        &["--env", "staging", "migrate", "current"],
    );
    r.expect_clean_error(2);
    assert!(r.stderr.contains("no config file"), "{}", r.stderr);
}

/// A PostgreSQL URL with its password written in the file: refused (exit 2, nothing
/// connected) while others may read the file; used once it is 0600 and ours. The
/// environment's schema applies.
#[test]
fn a_password_in_the_file_needs_a_private_file() {
    let db = PgDb::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ecomind-admin.toml");
    let text = format!(
        "[environments.prod]\nurl = \"{}\"\nschema = \"public\"\n",
        db.url()
    );
    write(&cfg, &text, 0o644);
    let r = run_in(dir.path(), &[], &["--env", "prod", "migrate", "up"]);
    r.expect_clean_error(2);
    assert!(
        r.stderr.contains("must be mode 0600 and yours"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains(&db.password()), "{}", r.all());
    assert!(db.tables().is_empty(), "nothing was done");
    write(&cfg, &text, 0o600);
    let r = run_in(dir.path(), &[], &["--env", "prod", "migrate", "up", "-q"]);
    r.expect_code(0);
    assert_eq!(db.versions(), all_versions());
    assert!(!r.all().contains(&db.password()));
}

/// Bad files: exit 2 with the file, the line and the key.
#[test]
fn errors_name_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: [(&str, &str); 5] = [
        (
            "[environments.x]\nurll = \"sqlite://a.db\"\n",
            "ecomind-admin.toml:2: key `urll`: unknown field `urll`",
        ),
        (
            "[environments.x]\nurl_env = \"A\"\nlock_wait = \"soon\"\n",
            "ecomind-admin.toml:3: key `lock_wait`: invalid duration 'soon'",
        ),
        (
            "[environments.x]\nparallel = \"many\"\n",
            "ecomind-admin.toml:2: key `parallel`",
        ),
        ("[environments.x\nurl_env = \"A\"\n", "ecomind-admin.toml:1"),
        (
            "[environments.x]\nurl_env = \"A\"\nurl = \"sqlite://a.db\"\n",
            "give exactly one of url_env, url, urls_env, urls_file",
        ),
    ];
    for (text, says) in cases {
        write(&d.join("ecomind-admin.toml"), text, 0o600);
        let r = run_in(
            d,
            &[("A", "sqlite://a.db?mode=rwc")],
            &["--env", "x", "migrate", "status"],
        );
        r.expect_clean_error(2);
        assert!(r.stderr.contains(says), "{text:?}: {}", r.stderr);
    }
    assert!(!d.join("a.db").exists(), "nothing was created");
}
