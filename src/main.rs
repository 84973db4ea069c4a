//! Thin entry point: parse, build the runtime, run, print the error once, exit.

use std::process::ExitCode;

use clap::Parser;
use ecomind_admin::error::{Error, exit};
use ecomind_admin::{Outcome, cli::Cli, output::print_error};

fn main() -> ExitCode {
    install_panic_hook();
    let cli = Cli::parse();
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
            );
            return ExitCode::from(exit::INTERNAL);
        }
    };
    match runtime.block_on(ecomind_admin::run(cli)) {
        Ok(Outcome::Success) => ExitCode::from(exit::SUCCESS),
        Ok(Outcome::CheckFailed) => ExitCode::from(exit::CHECK_FAILED),
        Err(err) => {
            print_error(&err, color);
            ExitCode::from(err.code())
        }
    }
}

/// A panic is a bug: one line, exit 5, and a backtrace only when RUST_BACKTRACE asks.
fn install_panic_hook() {
    let want_backtrace = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
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
        print_error(&err, false);
        if want_backtrace {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
        std::process::exit(i32::from(exit::INTERNAL));
    }));
}
