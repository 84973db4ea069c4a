//! `completions SHELL`: print shell completions generated from the CLI definition.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Write the completions for `shell` into `out`.
pub fn generate(shell: Shell, out: &mut dyn std::io::Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "ecomind-admin", out);
}

pub fn run(args: &CompletionsArgs, ui: &crate::output::Output) -> crate::error::Result<()> {
    let mut script = Vec::new();
    generate(args.shell, &mut script);
    ui.write_stdout(&script)
}
