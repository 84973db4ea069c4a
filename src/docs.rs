//! The CLI describing itself: the man page (roff, every subcommand) and shell
//! completions, generated at run time from `Cli::command()`. Above the commands: it
//! reads the whole command line.

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;

use crate::cli::Cli;
use crate::error::{Error, Result};

/// Render the page.
pub fn render() -> std::io::Result<Vec<u8>> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    Man::new(cmd.clone()).render(&mut out)?;
    // One section per subcommand, depth first, with its own synopsis and options.
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<u8>) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{path} {}", sub.get_name());
            let title = name.to_uppercase();
            out.extend_from_slice(format!(".SH \"{title}\"\n").as_bytes());
            let sub_cmd = sub.clone().bin_name(&name);
            let man = Man::new(sub_cmd);
            man.render_description_section(out)?;
            man.render_synopsis_section(out)?;
            man.render_options_section(out)?;
            walk(sub, &name, out)?;
        }
        Ok(())
    }
    walk(&cmd, "ecomind-admin", &mut out)?;
    Ok(out)
}

pub fn man(ui: &crate::output::Output) -> Result<()> {
    let page = render().map_err(|e| Error::internal(format!("rendering the man page: {e}")))?;
    ui.write_stdout(&page)
}

/// Write the completions for `shell` into `out`.
pub fn generate(shell: Shell, out: &mut dyn std::io::Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "ecomind-admin", out);
}

pub fn completions(shell: Shell, ui: &crate::output::Output) -> Result<()> {
    let mut script = Vec::new();
    generate(shell, &mut script);
    ui.write_stdout(&script)
}
