//! Thin entry point: parse, build the runtime, run, print the error once, exit.

#![warn(clippy::too_many_lines)]

use std::process::ExitCode;

use clap::Parser;
use ecomind_admin::error::{Error, exit};
use ecomind_admin::{Outcome, cli::Cli, output::print_error};

/// How the process ends when the library must end it itself (a second signal; a
/// command that cannot come back from a signal): the only `process::exit`.
fn end_process(code: u8) -> ! {
    std::process::exit(i32::from(code))
}

fn main() -> ExitCode {
    let cancel = ecomind_admin::cancel::Cancel::new(end_process);
    install_panic_hook(cancel.clone());
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && cli.global.color != ecomind_admin::cli::ColorChoice::Never;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            print_error(
                &Error::internal(format!("cannot start the async runtime: {e}")),
                color,
                false,
            );
            return ExitCode::from(exit::INTERNAL);
        }
    };
    let causes = cli.global.verbose >= 2;
    let result = runtime.block_on(ecomind_admin::run(cli, cancel));
    match result {
        Ok(Outcome::Success) => ExitCode::from(exit::SUCCESS),
        Ok(Outcome::CheckFailed) => ExitCode::from(exit::CHECK_FAILED),
        Err(err) => {
            print_error(&err, color, causes);
            ExitCode::from(err.code())
        }
    }
}

/// Help and version as clap prints them; a usage error as one `error:` line and a hint
/// (clap's own tip, or where to look), exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let code = if e.use_stderr() {
            exit::USAGE
        } else {
            exit::SUCCESS
        };
        let _ = e.print();
        return ExitCode::from(code);
    }
    // clap's one-line message (the first line it renders); the rest from its typed
    // context, not from the text around it.
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("error: invalid usage");
    let mut message = first
        .strip_prefix("error: ")
        .unwrap_or(first)
        .trim()
        .to_owned();
    // "the following required arguments were not provided:" names them: one line.
    if e.kind() == ErrorKind::MissingRequiredArgument
        && let Some(ContextValue::Strings(named)) = e.get(ContextKind::InvalidArg)
    {
        message = format!("{message} {}", named.join(", "));
    }
    let tip = usage_tip(&e).unwrap_or_else(|| {
        "see `ecomind-admin --help` (or `--help` after the subcommand)".to_owned()
    });
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let err = Error::usage(&message, tip);
    print_error(&err, color, false);
    usage_error_document(&err);
    ExitCode::from(exit::USAGE)
}

/// The hint for a usage error, from clap's context: the possible values, else its
/// suggestion (a similar subcommand, argument or value; its own tip).
fn usage_tip(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    if let Some(ContextValue::Strings(values)) = e.get(ContextKind::ValidValue)
        && !values.is_empty()
    {
        return Some(format!("possible values: {}", values.join(", ")));
    }
    let similar = |what: &str, value: &ContextValue| match value {
        ContextValue::String(one) => Some(format!("a similar {what} exists: '{one}'")),
        ContextValue::Strings(many) if !many.is_empty() => {
            let quoted: Vec<String> = many.iter().map(|m| format!("'{m}'")).collect();
            Some(match many.len() {
                1 => format!("a similar {what} exists: {}", quoted[0]),
                _ => format!("some similar {what}s exist: {}", quoted.join(", ")),
            })
        }
        _ => None,
    };
    [
        (ContextKind::SuggestedSubcommand, "subcommand"),
        (ContextKind::SuggestedArg, "argument"),
        (ContextKind::SuggestedValue, "value"),
    ]
    .into_iter()
    .find_map(|(kind, what)| e.get(kind).and_then(|v| similar(what, v)))
    .or_else(|| match e.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(tips)) => tips.first().map(ToString::to_string),
        _ => None,
    })
}

/// `--format json` / `jsonl` on a command line that did not parse: the error document
/// on stdout too, so that a pipeline reading stdout still gets JSON.
fn usage_error_document(err: &Error) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let format = args
        .windows(2)
        .find_map(|w| (w[0] == "--format").then(|| w[1].clone()))
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--format=").map(str::to_owned))
        });
    let line = match format.as_deref() {
        Some("json") => false,
        Some("jsonl") => true,
        _ => return,
    };
    // The command the words name (`migrate up`), when it prints JSON; else the tool.
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let command = ecomind_admin::cli::Command::all()
        .into_iter()
        .filter(|c| c.schema.is_some())
        .map(|c| c.name)
        .filter(|c| {
            let mut want = c.split(' ');
            let first = want.next().unwrap_or_default();
            words.iter().position(|w| *w == first).is_some_and(|i| {
                want.zip(words[i + 1..].iter()).all(|(a, b)| a == *b)
                    && c.split(' ').count() <= words.len() - i
            })
        })
        .max_by_key(|c| c.len())
        .unwrap_or(ecomind_admin::contracts::TOOL);
    ecomind_admin::output::print_usage_error_document(command, err, line);
}

/// A panic is a bug: one line, exit 5, and, when RUST_BACKTRACE asks, color-eyre's
/// panic report (message, location, backtrace) for the bug report.
fn install_panic_hook(cancel: ecomind_admin::cancel::Cancel) {
    let want_backtrace = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
    let (report, _) = color_eyre::config::HookBuilder::default()
        .display_env_section(false)
        .theme(color_eyre::config::Theme::new())
        .into_hooks();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        let location = info
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        let err = Error::internal(format!("internal error: {msg}{location}"));
        print_error(&err, false, false);
        if want_backtrace {
            // Our own frames, asked for with RUST_BACKTRACE: nothing from a database.
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("{}\n", report.panic_report(info)),
            );
        }
        cancel.remove_partial();
        end_process(exit::INTERNAL);
    }));
}
