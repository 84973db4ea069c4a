//! The CLI describing itself: the man page (roff, every subcommand) and shell
//! completions, generated at run time from the whole command line as clap describes
//! it (`Cli::command()`, handed in: [`crate::commands::Ctx::program`]).

use clap::Args;
use clap_complete::Shell;
use clap_mangen::Man;

use crate::commands::{Ctx, LockArgs, Spec};
use crate::error::{Error, Outcome, Result};
use crate::spec::{Done, Fleet, Info, Work};

#[derive(Debug, Args)]
pub struct ManArgs {}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub const MAN: Info = Info {
    name: "man",
    csv: false,
    fleet: Fleet::One,
    grants: None,
    schema: None,
};
pub const COMPLETIONS: Info = Info {
    name: "completions",
    csv: false,
    fleet: Fleet::One,
    grants: None,
    schema: None,
};

impl Spec for ManArgs {
    const INFOS: &'static [&'static Info] = &[&MAN];
    fn info(&self) -> &'static Info {
        &MAN
    }
    fn work(&self) -> Work {
        Work::Offline
    }
    fn lock(&mut self) -> Option<&mut LockArgs> {
        None
    }
    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        let page = render((ctx.program)())
            .map_err(|e| Error::internal(format!("rendering the man page: {e}")))?;
        ctx.ui.write_stdout(&page)?;
        Ok(Done::from(Outcome::Success))
    }
}

impl Spec for CompletionsArgs {
    const INFOS: &'static [&'static Info] = &[&COMPLETIONS];
    fn info(&self) -> &'static Info {
        &COMPLETIONS
    }
    fn work(&self) -> Work {
        Work::Offline
    }
    fn lock(&mut self) -> Option<&mut LockArgs> {
        None
    }
    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        let mut script = Vec::new();
        generate((ctx.program)(), self.shell, &mut script);
        ctx.ui.write_stdout(&script)?;
        Ok(Done::from(Outcome::Success))
    }
}

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
