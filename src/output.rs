//! Output: the result on stdout (human table or `--format json`), notes,
//! warnings, prompts and progress on stderr. Colors and progress only on a TTY.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use owo_colors::OwoColorize;
use serde::Serialize;

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::flags::{ColorChoice, Format, GlobalArgs};
pub use crate::text::{Mode, escape, shown};

/// How the user wants to be talked to.
#[derive(Debug, Clone)]
pub struct Output {
    pub format: Format,
    pub quiet: bool,
    pub verbose: u8,
    /// What stdin, stdout and stderr are, and the colors chosen for them.
    term: Terminal,
    /// The result is whole: a document, or the closing `summary` / `result` line of
    /// JSON Lines, was written. A failure after it adds no error document (the result
    /// says how the command ended, as upgrade's report does).
    result_complete: Arc<AtomicBool>,
    /// Where the result's bytes go: stdout, and `--output`'s file beside it.
    out: Tee,
    /// A fleet run's progress lines, one per running database (made on first use).
    lines: Arc<std::sync::OnceLock<indicatif::MultiProgress>>,
    /// The command, as every JSON document names it.
    command: &'static str,
    /// The cancellation token (after a signal, only the signal's line is printed).
    pub cancel: Cancel,
    /// -vv: errors show what caused them (the driver's own error, redacted).
    causes: bool,
}

/// The version of the JSON documents' shapes: additions keep it; a removal or a change
/// of meaning bumps it.
pub const FORMAT_VERSION: &str = "1";

/// `--output FILE`'s temporary file, beside FILE, renamed over it at the end.
#[derive(Debug)]
struct ReportFile {
    path: PathBuf,
    tmp: PathBuf,
    file: std::fs::File,
    cancel: Cancel,
}

impl ReportFile {
    fn create(path: &Path, cancel: &Cancel) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let shown_path = shown(&path.display().to_string()).into_owned();
        let name = path.file_name().filter(|_| !path.is_dir()).ok_or_else(|| {
            Error::usage(
                format!("--output {shown_path}: not a file name"),
                "give a file path, e.g. --output report.json",
            )
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| {
                Error::new(
                    crate::error::Kind::Output,
                    format!("cannot write --output {shown_path}: {e}"),
                    Some(
                        "pass --output a path in a directory you can write to; nothing was run"
                            .into(),
                    ),
                )
            })?;
        cancel.set_partial(Some(&tmp));
        Ok(Self {
            path: path.to_owned(),
            tmp,
            file,
            cancel: cancel.clone(),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).map_err(|e| self.error(e))
    }

    fn reset(&mut self) {
        use std::io::Seek;
        let _ = self.file.set_len(0);
        let _ = self.file.rewind();
    }

    fn error(&self, e: std::io::Error) -> Error {
        Error::new(
            crate::error::Kind::Output,
            format!(
                "cannot write --output {}: {e}",
                shown(&self.path.display().to_string())
            ),
            Some(format!(
                "{} was left as it was",
                shown(&self.path.display().to_string())
            )),
        )
    }

    /// Flush to disk and rename over FILE (the temporary file is removed on failure).
    fn commit(self) -> Result<()> {
        // Not ended half-way by a signal: the file is renamed or left as it was.
        let _hold = self.cancel.hold();
        let done = self
            .file
            .sync_all()
            .and_then(|()| std::fs::rename(&self.tmp, &self.path));
        let result = done.map_err(|e| self.error(e));
        self.cancel.remove_partial();
        result
    }
}

/// Not renamed into place (a failure before the end): the temporary file goes.
impl Drop for ReportFile {
    fn drop(&mut self) {
        // After a rename there is nothing left to remove.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// What stdin, stdout and stderr are, and the colors chosen for them (`--color`,
/// NO_COLOR).
#[derive(Debug, Clone)]
struct Terminal {
    color_stdout: bool,
    color_stderr: bool,
    stderr_tty: bool,
    stdin_tty: bool,
    /// stdout is a terminal of this many columns (None: not a terminal, or it reports
    /// no usable width): long values are cut to it, and CSV is escaped for it.
    stdout_width: Option<usize>,
    stdout_tty: bool,
}

/// Where a result's bytes go: stdout (in a fleet run, nowhere) and, with
/// `--output FILE`, the file beside it. A tee: each byte to both; when stdout shows the
/// human table beside the file's JSON (`--output` with `--format table`), the bytes go
/// to the file alone and the table to stdout ([`Tee::write_terminal`]).
#[derive(Debug, Clone, Default)]
struct Tee {
    /// A fleet run's database: the bytes go nowhere (the fleet's document holds the
    /// typed report).
    discard: bool,
    /// `--output FILE` (taken when it is renamed into place).
    file: Option<Arc<std::sync::Mutex<Option<ReportFile>>>>,
    /// stdout shows the human table: the bytes go to the file alone.
    file_only: bool,
    /// stdout's reader went away (`| head`): later bytes for it are dropped quietly.
    stdout_closed: Arc<AtomicBool>,
    /// Something of the result was written.
    used: Arc<AtomicBool>,
}

impl Tee {
    /// stdout shows the human table beside the file's JSON.
    fn mirrors(&self) -> bool {
        self.file.is_some() && self.file_only
    }

    fn nobody_reads(&self) -> bool {
        self.stdout_closed.load(Ordering::Relaxed) && self.file.is_none()
    }

    /// Write (part of) the result. A closed pipe (`| head`) is normal in shell
    /// pipelines: the rest is dropped quietly (the file still gets all of it). Any
    /// other failure (`> /dev/full`) is an error, exit 6.
    fn write(&self, bytes: &[u8]) -> Result<()> {
        if self.nobody_reads() {
            return Ok(());
        }
        self.used.store(true, Ordering::Relaxed);
        if self.discard {
            return Ok(());
        }
        if let Some(file) = &self.file
            && let Ok(mut file) = file.lock()
            && let Some(file) = file.as_mut()
        {
            file.write(bytes)?;
            if self.file_only {
                return Ok(());
            }
        }
        self.write_terminal(bytes)
    }

    /// Write to stdout itself; a closed pipe ends the output quietly.
    fn write_terminal(&self, bytes: &[u8]) -> Result<()> {
        if self.stdout_closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.stdout_closed.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(Error::output(e)),
        }
    }

    /// `--output`: replace what the file holds with `text`.
    fn replace_file(&self, text: &str) {
        if let Some(file) = &self.file
            && let Ok(mut file) = file.lock()
            && let Some(file) = file.as_mut()
        {
            file.reset();
            let _ = file.write(text.as_bytes());
        }
    }
}

/// A report with `format_version`, `command` and (JSON Lines) `type` first.
#[derive(Serialize)]
struct Enveloped<'a, R: Serialize> {
    format_version: &'static str,
    command: &'a str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    line_type: Option<&'static str>,
    #[serde(flatten)]
    report: &'a R,
}

/// A command line that did not parse, in `--format json` / `jsonl` (`line`): the error
/// document on stdout, naming `command` (the one the words name, or `ecomind-admin`).
pub fn print_usage_error_document(command: &str, err: &Error, line: bool) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(error_document(command, err, line).as_bytes());
}

/// The error document of `err` (`line`: a JSON Lines `error` line), with its newline.
fn error_document(command: &str, err: &Error, line: bool) -> String {
    let doc = Enveloped {
        format_version: FORMAT_VERSION,
        command,
        line_type: line.then_some("error"),
        report: &ErrorDocument {
            error: ErrorBody {
                kind: err.kind.name(),
                message: err.message().to_owned(),
                hint: err.hint().map(str::to_owned),
                exit_code: err.code(),
            },
        },
    };
    let text = if line {
        serde_json::to_string(&doc)
    } else {
        serde_json::to_string_pretty(&doc)
    };
    text.unwrap_or_default() + "\n"
}

/// A failure in `--format json` / `jsonl`: `{"error": {...}}`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ErrorDocument {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// `check_failed`, `usage`, `connection`, `refused`, `database`, `output`,
    /// `internal`, `interrupted`, `terminated` (docs/machine-interface.md "Exit codes").
    pub kind: &'static str,
    /// The error line's message (as on stderr, after `error: `).
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The process's exit code.
    pub exit_code: u8,
}

/// The last line of a streamed list in `--format jsonl`: how many item lines came.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ListSummary {
    pub count: usize,
}

/// A command's result: serialized as JSON, or rendered for humans.
pub trait Report: Serialize {
    /// Write the human form (tables, lines) to `out`.
    fn render(&self, out: &mut String, ui: &Output);
}

/// A command's result as it hands it back: rendered at the top (`lib::run`) in the
/// format asked for, or taken as a JSON value by a fleet run, never re-read from text.
pub trait Document {
    /// Render it on `ui` (table, JSON, JSON Lines; `--output`).
    fn emit(&self, ui: &Output) -> Result<()>;
    /// It as a JSON value (the fleet's per-database document).
    fn to_json(&self, command: &str) -> serde_json::Result<serde_json::Value>;
}

impl<R: Report> Document for R {
    fn emit(&self, ui: &Output) -> Result<()> {
        ui.emit(self)
    }

    fn to_json(&self, command: &str) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(Enveloped {
            format_version: FORMAT_VERSION,
            command,
            line_type: None,
            report: self,
        })
    }
}

impl Output {
    pub fn new(global: &GlobalArgs, cancel: Cancel) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let stdout_tty = std::io::stdout().is_terminal();
        let stderr_tty = std::io::stderr().is_terminal();
        let (color_stdout, color_stderr) = match global.color {
            ColorChoice::Always => (true, true),
            ColorChoice::Never => (false, false),
            ColorChoice::Auto => (!no_color && stdout_tty, !no_color && stderr_tty),
        };
        Self {
            cancel,
            causes: global.verbose >= 2,
            format: global.format,
            quiet: global.quiet,
            verbose: global.verbose,
            term: Terminal {
                color_stdout,
                color_stderr,
                stderr_tty,
                stdin_tty: std::io::stdin().is_terminal(),
                stdout_width: stdout_tty.then(terminal_width).flatten(),
                stdout_tty,
            },
            result_complete: Arc::new(AtomicBool::new(false)),
            out: Tee::default(),
            lines: Arc::new(std::sync::OnceLock::new()),
            command: "",
        }
    }

    /// stdout is a terminal: its width, when it reports a usable one.
    pub fn stdout_width(&self) -> Option<usize> {
        self.term.stdout_width
    }

    /// A person reads stdout (a terminal): CSV values are escaped for it. Piped or in
    /// a file, CSV carries the exact values (machines read it).
    pub fn stdout_is_terminal(&self) -> bool {
        self.term.stdout_tty
    }

    /// Part of a human result, written as it is produced (streamed reports): escaped
    /// for the terminal like [`Output::emit`]'s human form.
    pub fn write_text(&self, text: &str) -> Result<()> {
        self.write_stdout(self.for_stdout(text).as_bytes())
    }

    /// Our own text with values in it, escaped for stdout (our colors kept when on).
    fn for_stdout<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        let mode = if self.term.color_stdout {
            Mode::StyledText
        } else {
            Mode::Text
        };
        escape(text, mode)
    }

    /// A streamed result (CSV, the human form) is whole.
    pub fn finish_streamed(&self) {
        self.result_complete.store(true, Ordering::Relaxed);
    }

    /// The command every JSON document names.
    pub fn with_command(mut self, command: &'static str) -> Self {
        self.command = command;
        self
    }

    /// `--output FILE`: from now on the result also goes to a temporary file beside
    /// FILE (mode 0600), renamed over FILE at the end: the tee writes the same bytes
    /// to both in a machine `--format`; with the human table on stdout, the file gets
    /// the JSON document. Made before the command runs, so that a directory that
    /// cannot be written to fails at once (exit 6) with nothing done.
    pub fn with_output_file(mut self, path: &Path) -> Result<Self> {
        let file = ReportFile::create(path, &self.cancel)?;
        self.out.file = Some(Arc::new(std::sync::Mutex::new(Some(file))));
        self.out.file_only = self.format == Format::Table;
        Ok(self)
    }

    /// `--output` with the human table on stdout and JSON in the file.
    pub fn mirrors(&self) -> bool {
        self.out.mirrors()
    }

    /// The machine form the result is written in: `--format`'s, or JSON for
    /// `--output`'s file beside the human table (the table itself goes straight to
    /// stdout). A plain table: [`Format::Table`].
    pub fn result_format(&self) -> Format {
        if self.mirrors() {
            Format::Json
        } else {
            self.format
        }
    }

    /// `--output`: the command ended; rename the temporary file over FILE. After a
    /// failure in CSV (no error document there), FILE is left as it was.
    pub fn finish_output(&self, ok: bool) -> Result<()> {
        let Some(file) = self.out.file.as_ref().and_then(|f| f.lock().ok()?.take()) else {
            return Ok(());
        };
        if !ok && self.format == Format::Csv {
            self.cancel.remove_partial();
            return Ok(());
        }
        let path = file.path.clone();
        file.commit()?;
        self.note(format!("the result is in {}", path.display()));
        Ok(())
    }

    /// One JSON Lines document on stdout: `value` with `format_version`, `command`
    /// and `type`.
    pub fn line(&self, line_type: &'static str, value: &impl Serialize) -> Result<()> {
        let doc = Enveloped {
            format_version: FORMAT_VERSION,
            command: self.command,
            line_type: Some(line_type),
            report: value,
        };
        let mut text = serde_json::to_string(&doc)
            .map_err(|e| Error::internal(format!("cannot serialize a line: {e}")))?;
        text.push('\n');
        if matches!(line_type, "summary" | "result") {
            self.result_complete.store(true, Ordering::Relaxed);
        }
        self.write_stdout(text.as_bytes())
    }

    /// A fleet run's progress line for one running database (`msg`), on a terminal
    /// without -q; hidden otherwise. Finish it (cleared) when the database is done.
    pub fn fleet_line(&self, msg: &str) -> ProgressBar {
        if self.quiet || !self.term.stderr_tty {
            return ProgressBar::hidden();
        }
        let multi = self.lines.get_or_init(indicatif::MultiProgress::new);
        let pb = multi.add(ProgressBar::new_spinner());
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(escape(msg, Mode::Value).into_owned());
        pb.enable_steady_tick(Duration::from_millis(100));
        pb
    }

    /// The output of one database of a fleet run: JSON, no notes, no prompts, and
    /// nothing on stdout (the fleet's document holds each database's typed report;
    /// warnings and errors still go to stderr).
    pub fn captured(&self) -> Self {
        let mut ui = self.clone();
        ui.format = Format::Json;
        ui.quiet = true;
        ui.term.stdin_tty = false;
        ui.result_complete = Arc::new(AtomicBool::new(false));
        ui.out = Tee {
            discard: true,
            ..Tee::default()
        };
        ui
    }

    /// Can we ask the user a question?
    pub fn interactive(&self) -> bool {
        self.term.stdin_tty && self.term.stderr_tty
    }

    /// An informational note on stderr (suppressed by -q).
    pub fn note(&self, msg: impl AsRef<str>) {
        if !self.quiet && !self.cancel.silenced() {
            let prefix = if self.term.color_stderr {
                "note:".cyan().bold().to_string()
            } else {
                "note:".to_owned()
            };
            stderr_line(&prefix, msg.as_ref());
        }
    }

    /// A warning on stderr (shown even with -q).
    pub fn warn(&self, msg: impl AsRef<str>) {
        if self.cancel.silenced() {
            return;
        }
        let prefix = if self.term.color_stderr {
            "warning:".yellow().bold().to_string()
        } else {
            "warning:".to_owned()
        };
        stderr_line(&prefix, msg.as_ref());
    }

    /// A block of text for humans on stderr (a plan, a question's context): shown
    /// through [`escape`], keeping its line breaks.
    pub fn stderr_block(&self, text: &str) {
        if self.cancel.silenced() {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(escape(text, Mode::Text).as_bytes());
        let _ = stderr.flush();
    }

    /// Print an error and its hint on stderr.
    pub fn error(&self, err: &Error) {
        // After a signal, only the signal's own line is printed.
        if self.cancel.silenced()
            && !matches!(
                err.kind,
                crate::error::Kind::Interrupted | crate::error::Kind::Terminated
            )
        {
            return;
        }
        print_error(err, self.term.color_stderr, self.causes);
    }

    /// A spinner on stderr, only on a TTY and without -q.
    pub fn spinner(&self, msg: impl Into<String>) -> ProgressBar {
        if self.quiet || !self.term.stderr_tty {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(escape(&msg.into(), Mode::Value).into_owned());
        pb.enable_steady_tick(Duration::from_millis(100));
        pb
    }

    /// A new table in the house style; every cell goes through [`escape`].
    pub fn table(&self, header: &[&str]) -> SafeTable {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_header(header.iter().copied());
        if self.term.color_stdout {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        // Wrap to the terminal only when it reports a usable width (a pty made by
        // `script` or a CI runner may report 0 columns).
        if t.width().is_some_and(|w| w >= 60) {
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        SafeTable(t)
    }

    pub fn color_stdout(&self) -> bool {
        self.term.color_stdout
    }

    pub fn color_stderr(&self) -> bool {
        self.term.color_stderr
    }

    /// Print a command's result on stdout: JSON as is (JSON escaping keeps it exact),
    /// the human form through [`escape`] (our own colors kept when colors are on).
    pub fn emit<R: Report>(&self, report: &R) -> Result<()> {
        let written = match self.format {
            Format::Json | Format::Csv | Format::Jsonl => self.serialize(report),
            // `--output`: the table on stdout, the JSON document in the file.
            Format::Table if self.mirrors() => self
                .write_terminal(self.human(report).as_bytes())
                .and_then(|()| self.serialize(report)),
            Format::Table => {
                let text = self.human(report);
                self.result_complete.store(true, Ordering::Relaxed);
                self.write_stdout(text.as_bytes())
            }
        };
        written.map_err(|e| {
            // The command's work is done; do not lose its result (a new id, say), when
            // it fits on a line.
            // The document as --format json gives it (format_version and command first).
            let result = serde_json::to_string(&Enveloped {
                format_version: FORMAT_VERSION,
                command: self.command,
                line_type: None,
                report,
            })
            .unwrap_or_default();
            if result.len() <= 4096 {
                e.with_hint(format!(
                    "the command itself completed; its result was: {}",
                    escape(&result, Mode::Value)
                ))
            } else {
                e.with_hint("the command itself completed; write its result somewhere with room")
            }
        })
    }

    /// The result document in its machine form ([`Output::result_format`]),
    /// serialized straight from the report to the tee in pieces (no JSON tree and no
    /// whole text in between: a report of 150,000 findings would need them).
    fn serialize<R: Report>(&self, report: &R) -> Result<()> {
        let jsonl = self.result_format() == Format::Jsonl;
        let doc = Enveloped {
            format_version: FORMAT_VERSION,
            command: self.command,
            line_type: jsonl.then_some("result"),
            report,
        };
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, StdoutWriter(self));
        let serialized = if jsonl {
            serde_json::to_writer(&mut out, &doc)
        } else {
            serde_json::to_writer_pretty(&mut out, &doc)
        };
        self.result_complete.store(true, Ordering::Relaxed);
        let flushed = serialized
            .map_err(|e| match e.io_error_kind() {
                Some(_) => std::io::Error::other(e),
                None => std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        flushed.map_err(StdoutWriter::take_error)
    }

    /// The human form of a report, escaped for the terminal.
    fn human<R: Report>(&self, report: &R) -> String {
        let mut s = String::new();
        report.render(&mut s, self);
        self.for_stdout(&s).into_owned()
    }

    /// stdout's reader went away and there is no `--output` file to finish: the rest
    /// of the result has nowhere to go.
    fn nobody_reads(&self) -> bool {
        self.out.nobody_reads()
    }

    /// Write (part of) the result to stdout (and `--output`'s file). A closed pipe
    /// (`| head`) is normal in shell pipelines: the rest of the output is dropped
    /// quietly (the file still gets all of it) and the command ends with the exit
    /// code it would have had. Any other failure (`> /dev/full`) is an error, exit 6.
    pub fn write_stdout(&self, bytes: &[u8]) -> Result<()> {
        // After a signal, the command's own output stops: only the signal's line.
        if self.cancel.silenced() {
            return Ok(());
        }
        self.write_out(bytes)
    }

    fn write_out(&self, bytes: &[u8]) -> Result<()> {
        self.out.write(bytes)
    }

    /// Write to stdout itself (the human table under `--output`).
    fn write_terminal(&self, bytes: &[u8]) -> Result<()> {
        self.out.write_terminal(bytes)
    }

    /// In `--format json`, a failure that printed no result prints a JSON document
    /// saying why on stdout (the error line still goes to stderr): `{"error": {kind,
    /// message, hint, exit_code}}`, so a pipeline reading stdout always gets JSON. In
    /// `--format jsonl` the failure is a line (`type: "error"`), even after item lines
    /// (a stream without its summary line is incomplete, and this line says why), but
    /// not after the closing `summary` or `result` line, which says it already.
    pub fn emit_error(&self, err: &Error) {
        let signal = matches!(
            err.kind,
            crate::error::Kind::Interrupted | crate::error::Kind::Terminated
        );
        if self.cancel.silenced() && !signal {
            return;
        }
        let complete = self.result_complete.load(Ordering::Relaxed);
        let format = self.result_format();
        let text = || error_document(self.command, err, format == Format::Jsonl);
        match format {
            Format::Jsonl if !complete => {
                let _ = self.write_out(text().as_bytes());
            }
            Format::Json if !self.out.used.load(Ordering::Relaxed) => {
                let _ = self.write_out(text().as_bytes());
            }
            // A JSON list cut short: stdout keeps what it got; `--output`'s file gets
            // the error document instead, so that it holds one whole document.
            Format::Json if !complete => self.out.replace_file(&text()),
            _ => {}
        }
    }

    /// The confirmation rule of destructive commands: `--yes` proceeds; without a
    /// terminal, refuse (exit 4); on a terminal, show `details` and ask (default No).
    /// `action` completes "refusing to ..." (e.g. "revert 002 on postgres://...");
    /// `dry_run`: the command has `--dry-run` (the hint offers it only then).
    pub fn confirm_destructive(
        &self,
        yes: bool,
        action: &str,
        details: &str,
        question: &str,
        dry_run: bool,
    ) -> Result<()> {
        if yes {
            return Ok(());
        }
        if !self.interactive() {
            return Err(Error::refused(
                format!("refusing to {action} without confirmation"),
                if dry_run {
                    "rerun with --yes to confirm, or --dry-run to see what it would do"
                } else {
                    "rerun with --yes to confirm"
                },
            ));
        }
        self.stderr_block(&format!("{action}\n{details}\n"));
        if self.confirm(question)? {
            Ok(())
        } else {
            Err(Error::refused(
                "not confirmed; nothing was changed",
                "answer yes, or pass --yes",
            ))
        }
    }

    /// Ask a yes/no question on the TTY, default No.
    pub fn confirm(&self, question: &str) -> Result<bool> {
        ask(|| {
            dialoguer::Confirm::new()
                .with_prompt(escape(question, Mode::Value))
                .default(false)
                .interact()
        })
        .map_err(|e| {
            Error::refused(
                format!("cannot read the answer: {e}"),
                "pass --yes to confirm non-interactively",
            )
        })
    }
}

/// A prompt's answer. Its read interrupted by SIGINT / SIGTERM: the error comes back
/// only once the signal thread has recorded the signal, so that `lib::run` ends the run
/// with the signal's line and 130 / 143, not with "cannot read the answer" and 4 (the
/// read can return before the signal thread runs). Interrupted by another signal: asked
/// again.
pub fn ask<T>(mut prompt: impl FnMut() -> dialoguer::Result<T>) -> dialoguer::Result<T> {
    loop {
        match prompt() {
            Err(dialoguer::Error::IO(e))
                if e.kind() == std::io::ErrorKind::Interrupted
                    && !crate::cancel::wait_for_a_recorded_signal(
                        std::time::Duration::from_secs(2),
                    ) =>
            {
                continue;
            }
            other => return other,
        }
    }
}

/// A spinner cleared when the step ends.
struct Spinner(ProgressBar);

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

impl crate::progress::Operator for Output {
    fn warn(&self, msg: &str) {
        Output::warn(self, msg);
    }
    fn confirm(&self, yes: bool, action: &str, details: &str, question: &str) -> Result<()> {
        self.confirm_destructive(yes, action, details, question, false)
    }
    fn cancel(&self) -> &Cancel {
        &self.cancel
    }
}

impl crate::progress::Progress for Output {
    fn note(&self, msg: &str) {
        Output::note(self, msg);
    }
    fn step(&self, msg: &str) -> crate::progress::Step {
        Box::new(Spinner(self.spinner(msg)))
    }
    fn verbosity(&self) -> u8 {
        self.verbose
    }
}

/// Print an error once, with its hint (used by main before `Output` exists, too).
pub fn print_error(err: &Error, color: bool, causes: bool) {
    let prefix = if color {
        "error:".red().bold().to_string()
    } else {
        "error:".to_owned()
    };
    stderr_line(&prefix, err.message());
    if let Some(hint) = err.hint() {
        let h = if color {
            "hint:".green().bold().to_string()
        } else {
            "hint:".to_owned()
        };
        stderr_line(&format!("  {h}"), hint);
    }
    if causes {
        for cause in err.causes() {
            stderr_line("  caused by:", &cause);
        }
    }
}

/// `prefix message` on stderr, the message through [`escape`]. A stderr that cannot
/// be written is ignored (there is nowhere left to complain).
fn stderr_line(prefix: &str, msg: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{prefix} {}", escape(msg, Mode::Text));
}

/// Where `-v` / `-vv` log records go: stderr, one record at a time, with every known
/// secret masked, URL-like secrets redacted, and control characters escaped.
#[derive(Clone)]
pub struct LogSink {
    secrets: Arc<Vec<String>>,
    color: bool,
}

impl LogSink {
    pub fn new(secrets: Vec<String>, color: bool) -> Self {
        Self {
            secrets: Arc::new(secrets),
            color,
        }
    }
}

/// One log record, buffered until the formatter is done with it.
pub struct LogRecord {
    buf: Vec<u8>,
    sink: LogSink,
}

impl Write for LogRecord {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogRecord {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let text = crate::config::redact_known(&text, &self.sink.secrets);
        let mode = if self.sink.color {
            Mode::StyledText
        } else {
            Mode::Text
        };
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(escape(&text, mode).as_bytes());
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogRecord;
    fn make_writer(&'a self) -> LogRecord {
        LogRecord {
            buf: Vec::new(),
            sink: self.clone(),
        }
    }
}

/// [`Output::write_stdout`] as an `io::Write`, for serializing a document in pieces;
/// our own error rides inside the io::Error and comes back out with `take_error`.
struct StdoutWriter<'a>(&'a Output);

#[derive(Debug)]
struct Carried(Error);

impl std::fmt::Display for Carried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.message())
    }
}

impl std::error::Error for Carried {}

impl StdoutWriter<'_> {
    fn take_error(e: std::io::Error) -> Error {
        if e.get_ref().is_some_and(|inner| inner.is::<Carried>()) {
            match e.into_inner().map(|b| b.downcast::<Carried>()) {
                Some(Ok(carried)) => return carried.0,
                _ => return Error::internal("writing the result"),
            }
        }
        Error::internal(format!("cannot serialize the report: {e}"))
    }
}

impl Write for StdoutWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .write_stdout(buf)
            .map(|()| buf.len())
            .map_err(|e| std::io::Error::other(Carried(e)))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A CSV cell: neutralized against formula injection as OWASP recommends (a cell
/// starting with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'`), then escaped when a
/// terminal reads it (`for_terminal`); exact otherwise (CSV is for machines).
pub fn csv_cell(s: &str, for_terminal: bool) -> String {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let shown = if for_terminal {
        escape(s, Mode::Value)
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    if risky {
        format!("'{shown}")
    } else {
        shown.into_owned()
    }
}

/// The columns of the terminal on stdout (TIOCGWINSZ), when it reports at least 40.
fn terminal_width() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills a zeroed winsize for fd 1; nothing else is touched.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col >= 40).then_some(usize::from(ws.ws_col))
}

/// `s` wrapped at spaces to lines of at most `width` characters (continuation lines
/// indented like the first, plus two); a word longer than a line is cut with `…`.
/// None: unchanged.
pub fn wrap(s: &str, width: Option<usize>) -> String {
    let Some(w) = width else {
        return s.to_owned();
    };
    let indent: String = s.chars().take_while(|c| *c == ' ').collect();
    let more = format!("{indent}  ");
    let mut out = String::new();
    let mut line = indent.clone();
    for word in s.trim_start_matches(' ').split(' ') {
        let len = line.chars().count();
        let fresh = line.trim().is_empty();
        if !fresh && len + 1 + word.chars().count() > w {
            out.push_str(&line);
            out.push('\n');
            line = more.clone();
        } else if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        if line.chars().count() > w {
            line = fit(&line, Some(w)).into_owned();
        }
    }
    out.push_str(&line);
    out
}

/// `s` cut to `width` characters, the cut shown with `…` (None: unchanged).
pub fn fit(s: &str, width: Option<usize>) -> std::borrow::Cow<'_, str> {
    match width {
        Some(w) if s.chars().count() > w => {
            let cut: String = s.chars().take(w.saturating_sub(1)).collect();
            std::borrow::Cow::Owned(format!("{cut}…"))
        }
        _ => std::borrow::Cow::Borrowed(s),
    }
}

/// A comfy-table whose cells are always shown through [`escape`]: there is no way to
/// add a raw cell.
pub struct SafeTable(Table);

/// A cell: text, optionally in one of our colors (used only when colors are on).
pub struct Styled(pub String, pub Option<comfy_table::Color>);

impl SafeTable {
    pub fn add_row<I, S>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.0.add_row(
            cells
                .into_iter()
                .map(|c| comfy_table::Cell::new(escape(c.as_ref(), Mode::Value))),
        );
        self
    }

    pub fn add_styled_row(&mut self, cells: Vec<Styled>) -> &mut Self {
        self.0.add_row(cells.into_iter().map(|Styled(text, color)| {
            let cell = comfy_table::Cell::new(escape(&text, Mode::Value));
            match color {
                Some(c) => cell.fg(c),
                None => cell,
            }
        }));
        self
    }
}

impl std::fmt::Display for SafeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An optional enum (role, plan) as its lowercase label, or `-`.
pub fn label<T: Serialize>(v: Option<T>) -> String {
    v.and_then(|v| serde_json::to_value(v).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "-".to_owned())
}

/// `1 finding`, `2 findings`: a count with its noun in the right number.
pub use crate::text::plural;

/// Format an optional value for a table cell.
pub fn or_dash<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_owned())
}

/// Rows written as they come, whatever their number: one JSON document
/// `{"<key>": [...], "count": N}` (one object per line), CSV (a header, then neutralized
/// cells) or tables of at most [`RowStream::PAGE`] rows. Stops quietly when the reader
/// of stdout goes away ([`RowStream::row`] returns false).
pub struct RowStream<'a> {
    ui: &'a Output,
    key: String,
    /// A JSON Lines row's `type` (`user`, `org`).
    item: &'static str,
    header: &'a [&'a str],
    count: usize,
    page: Option<SafeTable>,
    /// The document's opening (JSON) or header (CSV) is written: only with the first
    /// row or at the end, so that an error before any row leaves stdout empty (and
    /// --format json prints its error document).
    opened: bool,
}

impl<'a> RowStream<'a> {
    /// Rows per table in the human format (memory stays flat).
    pub const PAGE: usize = 1000;

    /// `key`: the list's key in the JSON document; `item`: a JSON Lines row's `type`.
    pub fn start(
        ui: &'a Output,
        key: &str,
        item: &'static str,
        header: &'a [&'a str],
    ) -> Result<Self> {
        Ok(Self {
            ui,
            key: key.to_owned(),
            item,
            header,
            count: 0,
            page: None,
            opened: false,
        })
    }

    fn open(&mut self) -> Result<()> {
        if self.opened {
            return Ok(());
        }
        self.opened = true;
        match self.ui.result_format() {
            Format::Json => self.ui.write_stdout(
                format!(
                    "{{\n  \"format_version\": \"{FORMAT_VERSION}\",\n  \"command\": \"{}\",\n  \"{}\": [",
                    self.ui.command, self.key
                )
                .as_bytes(),
            ),
            Format::Csv => self
                .ui
                .write_stdout(&csv_record(self.header.iter().copied())?),
            Format::Table | Format::Jsonl => Ok(()),
        }
    }

    /// One row: `json` for --format json, `cells` (in the header's order) otherwise.
    /// False when stdout is gone (and there is no `--output` file to finish): the
    /// caller stops reading.
    pub fn row(&mut self, json: &impl Serialize, cells: &[String]) -> Result<bool> {
        if self.ui.nobody_reads() {
            return Ok(false);
        }
        self.open()?;
        match self.ui.result_format() {
            Format::Json => {
                let obj = serde_json::to_string(json)
                    .map_err(|e| Error::internal(format!("cannot serialize a row: {e}")))?;
                let sep = if self.count == 0 { "\n    " } else { ",\n    " };
                self.ui.write_stdout(format!("{sep}{obj}").as_bytes())?;
            }
            Format::Jsonl => self.ui.line(self.item, json)?,
            Format::Csv => {
                let line = csv_record(cells.iter().map(|c| csv_cell(c, self.ui.term.stdout_tty)))?;
                self.ui.write_stdout(&line)?;
            }
            Format::Table => {}
        }
        // The human table: the result itself, or beside `--output`'s file.
        if self.ui.format == Format::Table {
            let page = self.page.get_or_insert_with(|| self.ui.table(self.header));
            page.add_row(cells);
            if (self.count + 1).is_multiple_of(Self::PAGE) {
                self.flush_page()?;
            }
        }
        self.count += 1;
        Ok(true)
    }

    fn flush_page(&mut self) -> Result<()> {
        if let Some(page) = self.page.take() {
            let text = format!("{page}\n");
            if self.ui.mirrors() {
                self.ui.write_terminal(text.as_bytes())?;
            } else {
                self.ui.write_stdout(text.as_bytes())?;
            }
        }
        Ok(())
    }

    /// End the document; the number of rows written.
    pub fn finish(mut self) -> Result<usize> {
        self.open()?;
        match self.ui.result_format() {
            Format::Json => {
                let close = if self.count == 0 { "]" } else { "\n  ]" };
                self.ui.result_complete.store(true, Ordering::Relaxed);
                self.ui.write_stdout(
                    format!("{close},\n  \"count\": {}\n}}\n", self.count).as_bytes(),
                )?;
            }
            Format::Jsonl => self
                .ui
                .line("summary", &ListSummary { count: self.count })?,
            Format::Csv | Format::Table => {}
        }
        if self.ui.format == Format::Table {
            if self.count == 0 {
                self.page = Some(self.ui.table(self.header));
            }
            self.flush_page()?;
        }
        Ok(self.count)
    }
}

/// One CSV record (quoted as needed by the csv crate), with its line end.
pub fn csv_record<I, S>(cells: I) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(cells)
        .map_err(|e| Error::internal(format!("cannot write a CSV row: {e}")))?;
    w.into_inner()
        .map_err(|e| Error::internal(format!("cannot write a CSV row: {e}")))
}
