//! Error kinds and their exit codes, in one place (see docs/machine-interface.md "Exit codes").

use std::fmt;

use sea_orm::DbErr;

use crate::redact::redact_text;

/// Exit codes are a contract with scripts; never renumber them.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    pub const CHECK_FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const DATABASE: u8 = 3;
    pub const REFUSED: u8 = 4;
    pub const INTERNAL: u8 = 5;
    pub const OUTPUT: u8 = 6;
    /// Interrupted by SIGINT (128 + 2), as shells report it.
    pub const SIGINT: u8 = 130;
    /// Terminated by SIGTERM (128 + 15).
    pub const SIGTERM: u8 = 143;

    /// Every exit code and why, as `--help`, the man page and docs/machine-interface.md list them
    /// (`cli::exit_reasons` adds to code 1 when each command exits 1).
    pub const REASONS: [(u8, &str); 9] = [
        (0, "success; check passed"),
        (1, "a check found something"),
        (
            2,
            "usage error (bad flag, unknown `--to` version, `--since` outside 1900-01-01 to now, an email the API would refuse or that looks like another (`create-admin`))",
        ),
        (
            3,
            "cannot reach or use the database: bad URL, unsupported scheme, refused, auth failed, database missing (for SQLite: no file, which only `migrate up` creates), permission denied, read-only, TLS, connection lost",
        ),
        (
            4,
            "refused precondition: not confirmed (no terminal and no `--yes`), lock wait or `lock_timeout` expired, unknown Alembic revision, database not baselined, already baselined, API tables in another schema, org not found (also `audit --org`, `users list --org`), unknown email or user id, a case variant of a stored one, or the last owner/admin (`users set-role`, `users reset-password`, `users lock`), email or org id taken, `--if-not-exists` finding a different org or user, invalid org id, an unsafe backup directory (`upgrade`), password policy, no password source, `upgrade` without pg_dump / pg_restore as new as the server",
        ),
        (5, "internal error (a bug)"),
        (
            6,
            "the result could not be written to stdout (`> /dev/full`, an I/O error); the command's work is done and its result is repeated in the hint on stderr. A closed pipe (the reader, such as `head`, stopped reading) is not an error: the command stops writing and exits with the code it would have had",
        ),
        (
            130,
            "interrupted by SIGINT (Ctrl-C): the running statement was cancelled on the server, its transaction rolled back, and one line says what was and was not applied",
        ),
        (
            143,
            "terminated by SIGTERM (a pipeline or Kubernetes stopping the job): the same as SIGINT",
        ),
    ];
}

/// What a successful run tells the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: a check found something (the report was printed).
    CheckFailed,
}

impl Outcome {
    /// Its exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => exit::SUCCESS,
            Outcome::CheckFailed => exit::CHECK_FAILED,
        }
    }
}

/// The classes of failure an operator or a script must tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A check found something (exit 1).
    CheckFailed,
    /// Bad command-line usage (exit 2).
    Usage,
    /// Cannot reach or use the database (exit 3).
    Database,
    /// A precondition refused the action (exit 4).
    Refused,
    /// A bug (exit 5).
    Internal,
    /// The result could not be written to stdout (exit 6): disk full, I/O error. A
    /// closed pipe is not an error.
    Output,
    /// SIGINT (exit 130).
    Interrupted,
    /// SIGTERM (exit 143).
    Terminated,
}

impl Kind {
    /// The name scripts see in JSON (`error.kind`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::CheckFailed => "check_failed",
            Kind::Usage => "usage",
            Kind::Database => "database",
            Kind::Refused => "refused",
            Kind::Internal => "internal",
            Kind::Output => "output",
            Kind::Interrupted => "interrupted",
            Kind::Terminated => "terminated",
        }
    }

    /// The kind an exit code stands for (a fleet run's worst).
    pub fn from_code(code: u8) -> Kind {
        match code {
            exit::CHECK_FAILED => Kind::CheckFailed,
            exit::USAGE => Kind::Usage,
            exit::DATABASE => Kind::Database,
            exit::REFUSED => Kind::Refused,
            exit::OUTPUT => Kind::Output,
            exit::SIGINT => Kind::Interrupted,
            exit::SIGTERM => Kind::Terminated,
            _ => Kind::Internal,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Kind::CheckFailed => exit::CHECK_FAILED,
            Kind::Usage => exit::USAGE,
            Kind::Database => exit::DATABASE,
            Kind::Refused => exit::REFUSED,
            Kind::Internal => exit::INTERNAL,
            Kind::Output => exit::OUTPUT,
            Kind::Interrupted => exit::SIGINT,
            Kind::Terminated => exit::SIGTERM,
        }
    }
}

/// One error: a one-line message, an optional hint, its kind (which decides the exit
/// code), and the error that caused it, when there is one (printed under `-vv`).
#[derive(Debug, thiserror::Error)]
pub struct Error {
    pub kind: Kind,
    message: String,
    hint: Option<String>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>, hint: Option<String>) -> Self {
        // Messages may quote driver errors; never let a secret through.
        let message = one_line(&redact_text(&message.into()));
        Self {
            kind,
            message,
            hint: hint.map(|h| redact_text(&h)),
            source: None,
        }
    }
    /// Keep the error that caused this one (its chain is printed under `-vv`).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
    /// The causes, outermost first, each on one line with secrets redacted.
    pub fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            let line = one_line(&redact_text(&cause.to_string()));
            // Wrappers often repeat their cause's text: print each text once.
            if !out.last().is_some_and(|prev: &String| prev.contains(&line)) {
                out.push(line);
            }
            next = cause.source();
        }
        out
    }
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message, Some(hint.into()))
    }
    pub fn database(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(Kind::Database, message, Some(hint.into()))
    }
    pub fn refused(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(Kind::Refused, message, Some(hint.into()))
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            Kind::Internal,
            message,
            Some(
                "this is a bug in ecomind-admin; please report it with the command you ran".into(),
            ),
        )
    }
    /// stdout could not be written (not a closed pipe).
    pub fn output(err: std::io::Error) -> Self {
        Self::new(
            Kind::Output,
            format!("cannot write the result to stdout: {err}"),
            Some("check where stdout goes (a full disk, a closed file)".into()),
        )
    }
    /// Replace the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(redact_text(&hint.into()));
        self
    }
    pub fn code(&self) -> u8 {
        self.kind.code()
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
    /// Prefix the message with what we were doing.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// Classify a database error. `doing` says what we were doing ("connecting", "applying
    /// m2025..."), for the message.
    pub fn from_db(err: DbErr, doing: &str) -> Self {
        classify(&err, doing).with_source(err)
    }
}

fn one_line(s: &str) -> String {
    let mut out: String = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if out.len() > 2000 {
        let mut cut = 2000;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// The SQLSTATE of a database error, when a PostgreSQL server sent one (SQLite's
/// numeric result codes are not SQLSTATEs: see `sqlite_primary_code`).
pub fn sqlstate(err: &DbErr) -> Option<String> {
    sqlx_error(err).and_then(|e| match e {
        sea_orm::sqlx::Error::Database(db) if sqlite_primary_code(db.as_ref()).is_none() => {
            db.code().map(|c| c.into_owned())
        }
        _ => None,
    })
}

fn sqlx_error(err: &DbErr) -> Option<&sea_orm::sqlx::Error> {
    let runtime = match err {
        DbErr::Conn(r) | DbErr::Exec(r) | DbErr::Query(r) => r,
        _ => return None,
    };
    match runtime {
        sea_orm::RuntimeErr::SqlxError(e) => Some(e.as_ref()),
        _ => None,
    }
}

/// Is this a transient connection failure worth retrying until the connect deadline
/// (refused, reset, DNS not yet up, pool timeout)?
pub fn is_retryable_connect(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as E;
    match sqlx_error(err) {
        Some(E::Io(io)) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::NotConnected
                | std::io::ErrorKind::TimedOut
        ),
        Some(E::PoolTimedOut) => true,
        // The server is starting up or shutting down (57P03 cannot_connect_now).
        Some(E::Database(db)) => db.code().as_deref() == Some("57P03"),
        _ => matches!(err, DbErr::ConnectionAcquire(_)),
    }
}

fn classify(err: &DbErr, doing: &str) -> Error {
    use sea_orm::sqlx::Error as E;
    let detail = redact_text(&match sqlx_error(err) {
        Some(E::Database(db)) => db.message().to_owned(),
        Some(other) => other.to_string(),
        None => err.to_string(),
    });
    let msg = |what: &str| format!("{doing}: {what}");
    if let Some(code) = sqlstate(err).filter(|c| c.len() == 5) {
        return by_sqlstate(&code, &detail, msg);
    }
    match sqlx_error(err) {
        // rustls reports certificate problems as I/O errors of kind InvalidData.
        Some(E::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData
                || io.to_string().to_ascii_lowercase().contains("certificate") =>
        {
            Error::database(
                msg(&format!("TLS error ({})", redact_text(&io.to_string()))),
                "check sslmode / sslrootcert in the URL and that the server certificate names this host",
            )
        }
        Some(E::Io(io)) => Error::database(
            msg(&format!("cannot reach the server ({io})")),
            "check host and port, and that the server is running; --connect-timeout waits for it",
        ),
        Some(E::Tls(tls)) => Error::database(
            msg(&format!("TLS error ({})", redact_text(&tls.to_string()))),
            "check sslmode / sslrootcert in the URL and the server certificate",
        ),
        Some(E::PoolTimedOut) => Error::database(
            msg("timed out connecting to the server"),
            "check host and port, and that the server is running; raise --connect-timeout",
        ),
        Some(E::Configuration(c)) => Error::database(
            msg(&format!(
                "invalid database URL ({})",
                redact_text(&c.to_string())
            )),
            "expected postgres://USER@HOST[:PORT]/DATABASE or sqlite://FILE?mode=rwc",
        ),
        Some(E::Database(db)) => by_sqlite_code(sqlite_primary_code(db.as_ref()), &detail, msg),
        _ => Error::database(msg(&detail), "check the database URL and the server"),
    }
}

/// A PostgreSQL error by its SQLSTATE.
fn by_sqlstate(code: &str, detail: &str, msg: impl Fn(&str) -> String) -> Error {
    match code {
        "28P01" | "28000" => Error::database(
            msg(&format!("authentication failed ({detail})")),
            "check the user and password in the database URL (or PGPASSWORD / .pgpass)",
        ),
        "3D000" => Error::database(
            msg(&format!("database does not exist ({detail})")),
            "create it first (createdb), or fix the database name in the URL",
        ),
        "25006" => Error::database(
            msg(&format!("the database is read-only ({detail})")),
            "this command writes; run it against the primary with a role that may write",
        ),
        "42501" => Error::database(
            msg(&format!("permission denied ({detail})")),
            "grant the role the privileges this command needs, or use the schema owner",
        ),
        "55P03" => Error::refused(
            msg(&format!("lock wait timed out ({detail})")),
            "another session holds a lock on the table (the note above names it); nothing was changed. Retry when it is done, or raise --lock-wait (--ddl-lock-timeout for a migration's statements)",
        ),
        "57P01" | "57P02" | "57P03" | "08006" | "08003" | "08000" => Error::database(
            msg(&format!("the connection to the server was lost ({detail})")),
            "the transaction was rolled back; nothing of it was applied. Rerun the command",
        ),
        "57014" => Error::database(
            msg(&format!("the statement was cancelled ({detail})")),
            "the transaction was rolled back; nothing of it was applied",
        ),
        "53300" => Error::database(
            msg(&format!("too many connections ({detail})")),
            "the server has no free connection slot; retry later or raise max_connections",
        ),
        _ if code.starts_with("08") => Error::database(
            msg(&format!("connection failure ({detail})")),
            "check that the server is reachable and accepting connections",
        ),
        _ => Error::database(
            msg(&format!("{detail} (SQLSTATE {code})")),
            "the transaction was rolled back; nothing of it was applied",
        ),
    }
}

/// A SQLite error by its primary result code (the low byte of the extended one).
fn by_sqlite_code(code: Option<i32>, detail: &str, msg: impl Fn(&str) -> String) -> Error {
    match code {
        // SQLite: the primary result code (the low byte of the extended one).
        Some(SQLITE_READONLY) => Error::database(
            msg(&format!("the database is read-only ({detail})")),
            "this command writes; check the file's permissions",
        ),
        Some(SQLITE_CANTOPEN) => Error::database(
            msg(&format!("cannot open the database file ({detail})")),
            "check the path; add ?mode=rwc to the sqlite URL to create it",
        ),
        Some(SQLITE_BUSY | SQLITE_LOCKED) => Error::refused(
            msg(&format!(
                "the database is locked by another process ({detail})"
            )),
            "retry when the other writer is done, or raise --lock-wait",
        ),
        Some(SQLITE_NOTADB | SQLITE_CORRUPT) => Error::database(
            msg(&format!(
                "the file is not a usable SQLite database ({detail})"
            )),
            "check the path in the database URL",
        ),
        _ => Error::database(
            msg(detail),
            "the transaction was rolled back; nothing of it was applied",
        ),
    }
}

const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_READONLY: i32 = 8;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_NOTADB: i32 = 26;

/// The primary result code of a SQLite error (extended codes carry it in the low byte),
/// or None for another database's error.
fn sqlite_primary_code(db: &(dyn sea_orm::sqlx::error::DatabaseError + 'static)) -> Option<i32> {
    db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()?;
    let code: i32 = db.code()?.parse().ok()?;
    Some(code & 0xff)
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
