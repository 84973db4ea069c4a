//! The CLI describing itself: the man page (roff, every subcommand) and shell
//! completions, generated at run time from the whole command line as clap describes
//! it (`Cli::command()`, handed in: [`crate::commands::Ctx::program`]). The commands
//! `man` and `completions` (`src/commands/`) print them.

use clap_complete::Shell;
use clap_mangen::Man;

/// Render the page of `cmd` (the whole command line).
pub fn render(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
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

/// Write the completions of `cmd` (the whole command line) for `shell` into `out`.
pub fn generate(mut cmd: clap::Command, shell: Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut cmd, "ecomind-admin", out);
}
