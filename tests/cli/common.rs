//! Test fixtures: a command builder for the real binary, a throwaway PostgreSQL
//! database per test (from ECOMIND_TEST_DATABASE_URL), and SQLite files.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use assert_cmd::Command;

pub const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// The password the test cluster's superuser has (scripts/pg-up.sh).
pub fn admin_url() -> String {
    std::env::var("ECOMIND_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "ECOMIND_TEST_DATABASE_URL is not set: the PostgreSQL tests need a server. \
             Run scripts/test.sh, which starts one and sets it."
        )
    })
}

pub fn reference(name: &str) -> PathBuf {
    Path::new(REFERENCE).join(name)
}

/// The binary, with a clean environment: no DATABASE_URL from the caller, no colors,
/// run in `dir` (so no stray .env is read).
pub fn bin(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("ecomind-admin").expect("binary built");
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_BACKTRACE")
        .env_remove("ECOMIND_ADMIN_PASSWORD")
        .env_remove("ECOMIND_AUDIT_KEY_FILE")
        .env_remove("ECOMIND_NO_DEFAULT_DATABASE")
        // No audit key of the user running the tests (~/.config/ecomind-admin/audit.key).
        .env("XDG_CONFIG_HOME", dir.join(".no-config"))
        .env("NO_COLOR", "1");
    cmd
}

/// PATH with the built binary's directory first: for command lines run by a shell as a
/// user would type them (`ecomind-admin ...`).
pub fn path_with_bin() -> String {
    let bin = assert_cmd::cargo::cargo_bin("ecomind-admin");
    format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The same, as a std::process::Command (for concurrent runs and kill -9).
pub fn std_bin(dir: &Path) -> StdCommand {
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("ecomind-admin"));
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_BACKTRACE")
        .env_remove("ECOMIND_AUDIT_KEY_FILE")
        .env_remove("ECOMIND_NO_DEFAULT_DATABASE")
        .env("XDG_CONFIG_HOME", dir.join(".no-config"))
        .env("NO_COLOR", "1");
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// A finished run. Every JSON document (or JSON Lines line) on its stdout is
    /// validated against its command's schema in `schemas/`.
    #[track_caller]
    pub fn from(out: Output) -> Self {
        let run = Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        crate::contracts::validate_stdout(&run.stdout);
        run
    }
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
    /// A refusal or failure: one `error:` line, an optional hint line, nothing else
    /// alarming.
    #[track_caller]
    pub fn expect_clean_error(&self, code: i32) -> &Self {
        self.expect_code(code);
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.starts_with("note:") && !l.starts_with("warning:"))
            .collect();
        assert!(
            !lines.is_empty() && lines[0].starts_with("error: "),
            "stderr does not start with one error line:\n{}",
            self.stderr
        );
        assert!(
            lines.len() <= 2,
            "more than an error and a hint line:\n{}",
            self.stderr
        );
        if lines.len() == 2 {
            assert!(
                lines[1].trim_start().starts_with("hint:"),
                "second line is not a hint:\n{}",
                self.stderr
            );
        }
        for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
            assert!(
                !self.all().contains(bad),
                "{bad} in output:\n{}",
                self.all()
            );
        }
        self
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A PostgreSQL database of our own, dropped at the end of the test.
pub struct PgDb {
    pub name: String,
    admin: url::Url,
    pub dir: tempfile::TempDir,
}

impl PgDb {
    pub fn new() -> Self {
        Self::on(&admin_url())
    }

    /// A database of our own on the server of superuser URL `admin` (the version
    /// matrix's servers).
    pub fn on(admin: &str) -> Self {
        let admin = url::Url::parse(admin).expect("the admin URL is a URL");
        let name = format!(
            "ecomind_t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            rand::random::<u32>()
        );
        let db = Self {
            name,
            admin,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        db.admin_psql(&format!("CREATE DATABASE {}", db.name));
        db
    }

    /// The URL of this database (with the superuser's password: keep it out of argv).
    pub fn url(&self) -> String {
        let mut u = self.admin.clone();
        u.set_path(&self.name);
        u.to_string()
    }

    /// The URL of this database for another role.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        let mut u = self.admin.clone();
        u.set_path(&self.name);
        u.set_username(user).unwrap();
        u.set_password(Some(password)).unwrap();
        u.to_string()
    }

    pub fn password(&self) -> String {
        self.admin.password().unwrap_or_default().to_owned()
    }

    /// The binary, pointed at this database through DATABASE_URL (never argv).
    pub fn cmd(&self) -> Command {
        let mut c = bin(self.dir.path());
        c.env("DATABASE_URL", self.url());
        c
    }

    pub fn std_cmd(&self) -> StdCommand {
        let mut c = std_bin(self.dir.path());
        c.env("DATABASE_URL", self.url());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().expect("run binary"))
    }

    /// Run against this database through another URL (a pooler, other options).
    pub fn run_at(&self, url: &str, args: &[&str]) -> Run {
        Run::from(
            self.cmd()
                .env("DATABASE_URL", url)
                .args(args)
                .output()
                .expect("run binary"),
        )
    }

    fn admin_psql(&self, sql: &str) -> String {
        psql(self.admin.as_str(), sql)
    }

    /// Run SQL in this database; returns unaligned tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        psql(&self.url(), sql)
    }

    pub fn load(&self, file: &Path) {
        let out = StdCommand::new("psql")
            .arg("-X")
            .arg("-q")
            .arg("-v")
            .arg("ON_ERROR_STOP=1")
            .arg("-f")
            .arg(file)
            .arg(self.url())
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "loading {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pg_dump --schema-only`, normalized (no version lines, no \restrict keys).
    pub fn dump_schema(&self, exclude: &[&str]) -> String {
        let mut cmd = StdCommand::new("pg_dump");
        cmd.arg("--schema-only")
            .arg("--no-owner")
            .arg("--no-privileges");
        for t in exclude {
            cmd.arg(format!("--exclude-table={t}"));
        }
        let out = cmd.arg(self.url()).output().expect("pg_dump runs");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        normalize_dump(&String::from_utf8_lossy(&out.stdout))
    }

    /// The whole database, schema and data, normalized.
    pub fn dump_all(&self) -> String {
        let out = StdCommand::new("pg_dump")
            .arg("--no-owner")
            .arg("--no-privileges")
            .arg(self.url())
            .output()
            .expect("pg_dump runs");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        normalize_dump(&String::from_utf8_lossy(&out.stdout))
    }

    pub fn tables(&self) -> Vec<String> {
        lines(&self.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"))
    }

    pub fn enum_types(&self) -> Vec<String> {
        lines(&self.psql(
            "SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
             WHERE n.nspname = 'public' AND t.typtype = 'e' ORDER BY 1",
        ))
    }

    pub fn versions(&self) -> Vec<String> {
        lines(&self.psql("SELECT version FROM seaql_migrations ORDER BY version"))
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = StdCommand::new("psql")
            .arg("-X")
            .arg("-q")
            .arg("-c")
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .arg(self.admin.as_str())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub fn psql(url: &str, sql: &str) -> String {
    let out = StdCommand::new("psql")
        .arg("-X")
        .arg("-q")
        .arg("-tA")
        .arg("-v")
        .arg("ON_ERROR_STOP=1")
        .arg("-c")
        .arg(sql)
        .arg(url)
        .output()
        .expect("psql runs (is PostgreSQL's client installed? run scripts/test.sh)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Drop what differs between pg_dump runs and versions but says nothing about the schema.
pub fn normalize_dump(dump: &str) -> String {
    dump.lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .filter(|l| !l.starts_with("-- Dumped "))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// A SQLite database file in its own directory.
pub struct SqliteDb {
    pub dir: tempfile::TempDir,
    pub file: &'static str,
}

impl SqliteDb {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            file: "test.db",
        }
    }
    pub fn path(&self) -> PathBuf {
        self.dir.path().join(self.file)
    }
    pub fn url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.path().display())
    }
    pub fn cmd(&self) -> Command {
        let mut c = bin(self.dir.path());
        c.env("DATABASE_URL", self.url());
        c
    }
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().expect("run binary"))
    }
    /// Run SQL with the sqlite3 shell (given on stdin: a leading `--` comment would read
    /// as an option).
    pub fn sql(&self, sql: &str) -> Run {
        use std::io::Write;
        let mut child = StdCommand::new("sqlite3")
            .arg("-bail")
            .arg(self.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sqlite3 runs (scripts/test.sh installs it)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        Run::from(child.wait_with_output().unwrap())
    }
    pub fn query(&self, sql: &str) -> String {
        let r = self.sql(sql);
        assert_eq!(r.code, 0, "sqlite3 {sql}: {}", r.stderr);
        r.stdout.trim().to_owned()
    }
    pub fn tables(&self) -> Vec<String> {
        lines(&self.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1",
        ))
    }
    pub fn columns(&self, table: &str) -> Vec<String> {
        lines(&self.query(&format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
        )))
    }
    pub fn versions(&self) -> Vec<String> {
        lines(&self.query("SELECT version FROM seaql_migrations ORDER BY version"))
    }
}

/// The API's tables, sorted: every table the migrations create (the build reads them
/// from the generated snapshots; `schema_snapshots` proves those).
pub fn api_tables() -> Vec<String> {
    ecomind_admin::migrations::api_tables().to_vec()
}

/// Every known migration, oldest first: what `migrate up` records (read from the
/// migration list, so that a new revision does not touch the tests).
pub fn all_versions() -> Vec<String> {
    ecomind_admin::migrations::known()
        .into_iter()
        .map(|k| k.version)
        .collect()
}

/// The newest migration this build ships (its Alembic revision: [`head_revision`]).
pub fn head_version() -> String {
    all_versions().pop().unwrap()
}

/// Every known Alembic revision, oldest first.
pub fn all_revisions() -> Vec<&'static str> {
    ecomind_admin::migrations::known()
        .into_iter()
        .map(|k| k.alembic_revision)
        .collect()
}

pub fn head_revision() -> &'static str {
    ecomind_admin::migrations::known()
        .last()
        .unwrap()
        .alembic_revision
}

/// The columns of `table` in the snapshot of version `index` (what the migrations
/// make at that version), for the backend of `db`.
pub fn snapshot_columns(db: &AnyDb, index: usize, table: &str) -> Vec<String> {
    let backend = if db.is_postgres() {
        sea_orm::DbBackend::Postgres
    } else {
        sea_orm::DbBackend::Sqlite
    };
    ecomind_admin::schema::snapshots::expected(index, backend).tables[table]
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect()
}

/// The advisory locks held in the current database (0 after every run of ours).
pub const ADVISORY_LOCKS: &str = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

pub const V1: &str = "m20251007_000001_initial_schema";
pub const V2: &str = "m20251008_000002_add_user_password";

/// Poll `f` every 50 ms until it holds; fail the test after `secs`.
/// Send `sig` (`-TERM`, `-INT`) to `child` with kill(1); when it was sent.
pub fn send(child: &std::process::Child, sig: &str) -> std::time::Instant {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
    std::time::Instant::now()
}

pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A psql session holding `LOCK TABLE <table> IN ACCESS EXCLUSIVE MODE` until dropped.
pub struct Blocker(std::process::Child);

impl Blocker {
    /// An SQL shell (`program args`) that has run `sql` and keeps its session open.
    fn session(program: &str, args: &[&str], sql: &str) -> std::process::Child {
        let mut child = StdCommand::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        writeln!(child.stdin.as_mut().unwrap(), "{sql}").unwrap();
        child
    }

    /// A sqlite3 session holding the database's write lock (`BEGIN IMMEDIATE`).
    pub fn sqlite_writer(db: &SqliteDb) -> Self {
        let path = db.path();
        let child = Self::session(
            "sqlite3",
            &[path.to_str().unwrap()],
            "BEGIN IMMEDIATE;\nSELECT 1;",
        );
        std::thread::sleep(Duration::from_millis(300));
        Blocker(child)
    }

    pub fn lock(db: &PgDb, table: &str) -> Self {
        let child = Self::session(
            "psql",
            &["-X", "-q", &db.url()],
            &format!("BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;"),
        );
        wait_for("the blocker's lock", 20, || {
            db.psql(&format!(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                 WHERE c.relname = '{table}' AND l.mode = 'AccessExclusiveLock' AND l.granted"
            )) == "1"
        });
        Blocker(child)
    }
}

impl Blocker {
    /// A psql session that has run `BEGIN; <sql>` and keeps its transaction open until
    /// [`Blocker::commit`] (or rolls back when dropped).
    pub fn psql_txn(db: &PgDb, sql: &str) -> Self {
        let child = Self::session(
            "psql",
            &["-X", "-q", "-v", "ON_ERROR_STOP=1", &db.url()],
            &format!("BEGIN; {sql}"),
        );
        wait_for("the blocker's transaction", 20, || {
            db.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = 'psql' AND state = 'idle in transaction'",
            ) == "1"
        });
        Blocker(child)
    }

    /// Commit the transaction and end the session.
    pub fn commit(mut self) {
        let stdin = self.0.stdin.as_mut().unwrap();
        writeln!(stdin, "COMMIT;\n\\q").unwrap();
        let status = self.0.wait().unwrap();
        assert!(status.success(), "the blocker's COMMIT failed");
    }
}

impl Drop for Blocker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A database of either kind, migrated, for the same test body.
pub enum AnyDb {
    Pg(PgDb),
    Lite(SqliteDb),
}

impl AnyDb {
    pub fn both() -> Vec<AnyDb> {
        let pg = PgDb::new();
        pg.run(&["migrate", "up"]).expect_code(0);
        let lite = SqliteDb::new();
        lite.run(&["migrate", "up"]).expect_code(0);
        vec![AnyDb::Pg(pg), AnyDb::Lite(lite)]
    }
    /// An empty database of the same kind as `self` (nothing migrated).
    pub fn fresh_like(&self) -> AnyDb {
        match self {
            AnyDb::Pg(_) => AnyDb::Pg(PgDb::new()),
            AnyDb::Lite(_) => AnyDb::Lite(SqliteDb::new()),
        }
    }
    /// The tables in the database (PostgreSQL: schema public).
    pub fn tables(&self) -> Vec<String> {
        match self {
            AnyDb::Pg(d) => d.tables(),
            AnyDb::Lite(d) => d.tables(),
        }
    }
    /// Recorded versions (none when seaql_migrations is missing).
    pub fn versions(&self) -> Vec<String> {
        if !self.tables().iter().any(|t| t == "seaql_migrations") {
            return Vec::new();
        }
        match self {
            AnyDb::Pg(d) => d.versions(),
            AnyDb::Lite(d) => d.versions(),
        }
    }
    pub fn cmd(&self) -> assert_cmd::Command {
        match self {
            AnyDb::Pg(d) => d.cmd(),
            AnyDb::Lite(d) => d.cmd(),
        }
    }
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().unwrap())
    }
    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        Run::from(
            self.cmd()
                .args(args)
                .write_stdin(stdin.to_vec())
                .output()
                .unwrap(),
        )
    }
    /// One query's rows, `|`-separated.
    pub fn query(&self, sql: &str) -> String {
        match self {
            AnyDb::Pg(d) => d.psql(sql),
            AnyDb::Lite(d) => d.query(sql),
        }
    }
    /// Everything in the API's tables, for "nothing changed".
    pub fn snapshot(&self) -> String {
        ["orgs", "users", "audit_logs"]
            .iter()
            .map(|t| self.query(&format!("SELECT * FROM {t} ORDER BY 1")))
            .collect::<Vec<_>>()
            .join("\n--\n")
    }
    pub fn url(&self) -> String {
        match self {
            AnyDb::Pg(d) => d.url(),
            AnyDb::Lite(d) => d.url(),
        }
    }
    pub fn dir(&self) -> &Path {
        match self {
            AnyDb::Pg(d) => d.dir.path(),
            AnyDb::Lite(d) => d.dir.path(),
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            AnyDb::Pg(_) => "postgres",
            AnyDb::Lite(_) => "sqlite",
        }
    }
    pub fn is_postgres(&self) -> bool {
        matches!(self, AnyDb::Pg(_))
    }
    /// The columns of `table`, in order.
    pub fn columns(&self, table: &str) -> Vec<String> {
        match self {
            AnyDb::Pg(d) => lines(&d.psql(&format!(
                "SELECT column_name FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position"
            ))),
            AnyDb::Lite(d) => d.columns(table),
        }
    }
    /// Schema and rows, for "nothing changed".
    pub fn dump_all(&self) -> String {
        match self {
            AnyDb::Pg(d) => d.dump_all(),
            AnyDb::Lite(d) => d.query(".dump"),
        }
    }
}

/// A behaviour test written once and run on both backends:
/// `both! { fn name(db) { ... } }` makes the tests `name::postgres` and `name::sqlite`,
/// each handed a fresh, empty database ([`AnyDb`]; the SQLite file exists, empty, as
/// a PostgreSQL database exists before anything is migrated).
macro_rules! both {
    ($($(#[doc = $doc:literal])* fn $name:ident($db:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(#[doc = $doc])*
            fn body($db: crate::common::AnyDb) $body
            #[test]
            fn postgres() {
                body(crate::common::AnyDb::Pg(crate::common::PgDb::new()))
            }
            #[test]
            fn sqlite() {
                body(crate::common::AnyDb::empty_sqlite())
            }
        }
    )*};
}
pub(crate) use both;

impl AnyDb {
    /// The PostgreSQL database (a test that made one).
    pub fn as_pg(&self) -> &PgDb {
        match self {
            AnyDb::Pg(d) => d,
            AnyDb::Lite(_) => panic!("a PostgreSQL database was expected"),
        }
    }
    /// The SQLite database (a test that made one).
    pub fn as_lite(&self) -> &SqliteDb {
        match self {
            AnyDb::Lite(d) => d,
            AnyDb::Pg(_) => panic!("a SQLite database was expected"),
        }
    }
    /// The SQLite database's directory (None for PostgreSQL).
    pub fn sqlite_dir(&self) -> Option<&std::path::Path> {
        match self {
            AnyDb::Lite(d) => Some(d.dir.path()),
            AnyDb::Pg(_) => None,
        }
    }
    /// The SQLite database's file (None for PostgreSQL).
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        match self {
            AnyDb::Lite(d) => Some(d.path()),
            AnyDb::Pg(_) => None,
        }
    }
}

impl AnyDb {
    /// A SQLite database file that exists and is empty.
    pub fn empty_sqlite() -> AnyDb {
        let db = SqliteDb::new();
        std::fs::File::create(db.path()).unwrap();
        AnyDb::Lite(db)
    }
}

/// The binary on a real pseudo-terminal (expectrl): stdin, stdout and stderr are the
/// terminal, so prompts are asked. In `db`'s directory, with its URL; `args` is split
/// on spaces.
pub struct Tty {
    session: expectrl::session::OsSession,
    /// Everything the terminal showed so far.
    pub seen: String,
}

impl Tty {
    pub fn spawn(db: &SqliteDb, args: &str) -> Tty {
        // expectrl starts the child with echo off; a person's terminal has it on, and
        // a password prompt must turn it off (type_secret waits for that). `stty echo`
        // runs before the binary starts, so nothing races it.
        Tty {
            session: pty_shell(db, "stty echo && exec \"$0\" \"$@\"", args),
            seen: String::new(),
        }
    }

    /// Wait until the terminal shows `text` (fails the test after 60 s).
    #[track_caller]
    pub fn expect(&mut self, text: &str) {
        use expectrl::Expect;
        let found = self.session.expect(text).unwrap_or_else(|e| {
            panic!(
                "waiting for {text:?}: {e}; the terminal showed:\n{}",
                self.seen
            )
        });
        self.seen
            .push_str(&String::from_utf8_lossy(found.as_bytes()));
    }

    /// Type a line.
    pub fn type_line(&mut self, line: &str) {
        use expectrl::Expect;
        self.session.send_line(line).unwrap();
    }

    /// Type a secret at a password prompt. The prompt turns echo off with TCSAFLUSH,
    /// which discards whatever was typed before: wait until echo is off (as a person
    /// would wait for the prompt to be ready), then type.
    #[track_caller]
    pub fn type_secret(&mut self, line: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.session.get_process().get_echo().unwrap() {
            assert!(
                std::time::Instant::now() < deadline,
                "echo never turned off; the terminal showed:\n{}",
                self.seen
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        self.type_line(line);
    }

    /// Read to the end of a run that read the password `pw` at a prompt: it must exit 0
    /// and never show the password.
    #[track_caller]
    pub fn finish_secret(self, pw: &str) -> Run {
        let r = self.finish();
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(
            !r.stdout.contains(pw),
            "the password was echoed:\n{}",
            r.stdout
        );
        r
    }

    /// Read to the end and return what the run showed and its exit code (stdout and
    /// stderr are one stream on a terminal: both are in `stdout`).
    pub fn finish(mut self) -> Run {
        use expectrl::Expect;
        use expectrl::process::unix::WaitStatus;
        match self.session.expect(expectrl::Eof) {
            Ok(rest) => self
                .seen
                .push_str(&String::from_utf8_lossy(rest.as_bytes())),
            // Still running after the expect timeout: stop it (the session's drop
            // kills it) and fail, rather than wait forever.
            Err(e) => panic!(
                "the run did not end: {e}; the terminal showed:\n{}",
                self.seen
            ),
        }
        let code = match self.session.get_process().wait().unwrap() {
            WaitStatus::Exited(_, code) => code,
            other => panic!("not exited: {other:?}\n{}", self.seen),
        };
        Run {
            code,
            stdout: self.seen,
            stderr: String::new(),
        }
    }
}

/// A shell `script` on a pseudo-terminal, in `db`'s directory with its URL, where `$0`
/// is the binary and `"$@"` is `args` (split on spaces).
pub fn pty_shell(db: &SqliteDb, script: &str, args: &str) -> expectrl::session::OsSession {
    let mut cmd = StdCommand::new("sh");
    cmd.args(["-c", script])
        .arg(assert_cmd::cargo::cargo_bin("ecomind-admin"))
        .args(args.split_whitespace())
        .current_dir(db.dir.path())
        .env("DATABASE_URL", db.url())
        .env("NO_COLOR", "1");
    let mut session = expectrl::Session::spawn(cmd).expect("spawn on a pty");
    session.set_expect_timeout(Some(std::time::Duration::from_secs(60)));
    session
}

/// Run `args` on a pseudo-terminal: wait for the `[y/N]` question, answer it.
pub fn on_tty(db: &SqliteDb, args: &str, answer: &str) -> Run {
    let mut tty = Tty::spawn(db, args);
    tty.expect("[y/N]");
    tty.type_line(answer);
    tty.finish()
}

pub fn python() -> String {
    std::env::var("ECOMIND_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("ECOMIND_TEST_PYTHON is not set: the passlib interop test needs the venv scripts/test.sh prepares")
    })
}

/// passlib's CryptContext(schemes=["bcrypt"]), as the API uses it.
pub fn passlib_verifies(password: &str, hash: &str) -> bool {
    let mut child = StdCommand::new(python())
        .arg("-c")
        .arg(
            "import sys\nfrom passlib.context import CryptContext\n\
             pw, h = sys.stdin.buffer.read().decode('utf-8').split('\\0')\n\
             print(CryptContext(schemes=['bcrypt']).verify(pw, h))",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the venv's python runs");
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(format!("{password}\0{hash}").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "passlib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim() == "True"
}

/// Run `args` while a transaction holds `users` exclusively, send SIGINT once its pg_dump
/// waits on that lock, and return how it ended, once pg_dump's session is gone.
pub fn interrupt_while_pg_dump_waits(db: &PgDb, args: &[&str]) -> Run {
    let blocker = Blocker::lock(db, "users");
    let child = db.spawn(args);
    let dumping = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                   AND application_name = 'pg_dump'";
    wait_for("pg_dump to wait on the lock", 20, || {
        db.psql(&format!("{dumping} AND wait_event_type = 'Lock'")) == "1"
    });
    send(&child, "-INT");
    let r = Run::from(child.wait_with_output().unwrap());
    wait_for("pg_dump's session to end", 5, || db.psql(dumping) == "0");
    drop(blocker);
    r
}

impl PgDb {
    /// The binary on this database, started with `args`, its output piped.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.std_cmd()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// A TCP port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
