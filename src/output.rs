//! Output: the result on stdout (human table or `--format json`), notes,
//! warnings, prompts and progress on stderr. Colors and progress only on a TTY.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use owo_colors::OwoColorize;
use serde::Serialize;

use crate::cli::{ColorChoice, Format, GlobalArgs};
use crate::error::{Error, Result};

/// How the user wants to be talked to.
#[derive(Debug, Clone)]
pub struct Output {
    pub format: Format,
    pub quiet: bool,
    pub verbose: u8,
    color_stdout: bool,
    color_stderr: bool,
    stderr_tty: bool,
    stdin_tty: bool,
}

/// A command's result: serialized as JSON, or rendered for humans.
pub trait Report: Serialize {
    /// Write the human form (tables, lines) to `out`.
    fn render(&self, out: &mut String, ui: &Output);
}

impl Output {
    pub fn new(global: &GlobalArgs) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let stdout_tty = std::io::stdout().is_terminal();
        let stderr_tty = std::io::stderr().is_terminal();
        let (color_stdout, color_stderr) = match global.color {
            ColorChoice::Always => (true, true),
            ColorChoice::Never => (false, false),
            ColorChoice::Auto => (!no_color && stdout_tty, !no_color && stderr_tty),
        };
        Self {
            format: global.format,
            quiet: global.quiet,
            verbose: global.verbose,
            color_stdout,
            color_stderr,
            stderr_tty,
            stdin_tty: std::io::stdin().is_terminal(),
        }
    }

    /// Can we ask the user a question?
    pub fn interactive(&self) -> bool {
        self.stdin_tty && self.stderr_tty
    }

    /// An informational note on stderr (suppressed by -q).
    pub fn note(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            let prefix = if self.color_stderr {
                "note:".cyan().bold().to_string()
            } else {
                "note:".to_owned()
            };
            eprintln!("{prefix} {}", msg.as_ref());
        }
    }

    /// A warning on stderr (shown even with -q).
    pub fn warn(&self, msg: impl AsRef<str>) {
        let prefix = if self.color_stderr {
            "warning:".yellow().bold().to_string()
        } else {
            "warning:".to_owned()
        };
        eprintln!("{prefix} {}", msg.as_ref());
    }

    /// Print an error and its hint on stderr.
    pub fn error(&self, err: &Error) {
        print_error(err, self.color_stderr);
    }

    /// A spinner on stderr, only on a TTY and without -q.
    pub fn spinner(&self, msg: impl Into<String>) -> ProgressBar {
        if self.quiet || !self.stderr_tty {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(msg.into());
        pb.enable_steady_tick(Duration::from_millis(100));
        pb
    }

    /// A new table in the house style.
    pub fn table(&self, header: &[&str]) -> Table {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_header(header.iter().copied());
        if self.color_stdout {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        // Wrap to the terminal only when it reports a usable width (a pty made by
        // `script` or a CI runner may report 0 columns).
        if t.width().is_some_and(|w| w >= 60) {
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        t
    }

    pub fn color_stdout(&self) -> bool {
        self.color_stdout
    }

    pub fn color_stderr(&self) -> bool {
        self.color_stderr
    }

    /// Print a command's result on stdout.
    pub fn emit<R: Report>(&self, report: &R) -> Result<()> {
        let text = match self.format {
            Format::Json | Format::Csv => {
                let mut s = serde_json::to_string_pretty(report)
                    .map_err(|e| Error::internal(format!("cannot serialize the report: {e}")))?;
                s.push('\n');
                s
            }
            Format::Table => {
                let mut s = String::new();
                report.render(&mut s, self);
                s
            }
        };
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error worth a message.
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
        Ok(())
    }

    /// The confirmation rule of destructive commands: `--yes` proceeds; without a
    /// terminal, refuse (exit 4); on a terminal, show `details` and ask (default No).
    /// `action` completes "refusing to ..." (e.g. "revert 002 on postgres://...").
    pub fn confirm_destructive(
        &self,
        yes: bool,
        action: &str,
        details: &str,
        question: &str,
    ) -> Result<()> {
        if yes {
            return Ok(());
        }
        if !self.interactive() {
            return Err(Error::refused(
                format!("refusing to {action} without confirmation"),
                "rerun with --yes to confirm, or --dry-run to see what it would do",
            ));
        }
        eprintln!("{action}\n{details}");
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
        dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()
            .map_err(|e| {
                Error::refused(
                    format!("cannot read the answer: {e}"),
                    "pass --yes to confirm non-interactively",
                )
            })
    }
}

/// Print an error once, with its hint (used by main before `Output` exists, too).
pub fn print_error(err: &Error, color: bool) {
    let prefix = if color {
        "error:".red().bold().to_string()
    } else {
        "error:".to_owned()
    };
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{prefix} {}", err.message());
    if let Some(hint) = err.hint() {
        let h = if color {
            "hint:".green().bold().to_string()
        } else {
            "hint:".to_owned()
        };
        let _ = writeln!(stderr, "  {h} {hint}");
    }
}

/// An optional enum (role, plan) as its lowercase label, or `-`.
pub fn label<T: Serialize>(v: Option<T>) -> String {
    v.and_then(|v| serde_json::to_value(v).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "-".to_owned())
}

/// Format an optional value for a table cell.
pub fn or_dash<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_owned())
}
