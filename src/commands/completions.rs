//! `completions SHELL`: shell completions on stdout. Touches no database.

use clap::Args;

use super::{Ctx, LockArgs, Spec};
use crate::error::{Outcome, Result};
use crate::commands::Done;
use crate::spec::{Fleet, Info, Work};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub const INFO: Info = Info {
    name: "completions",
    database: false,
    csv: false,
    fleet: Fleet::One,
    grants: None,
    fails_when: None,
    schema: None,
};

impl Spec for CompletionsArgs {
    const INFOS: &'static [&'static Info] = &[&INFO];

    fn info(&self) -> &'static Info {
        &INFO
    }

    fn work(&self) -> Work {
        Work::Offline
    }

    fn lock(&mut self) -> Option<&mut LockArgs> {
        None
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        let mut script = Vec::new();
        crate::docs::generate((ctx.program)(), self.shell, &mut script);
        ctx.ui.write_stdout(&script)?;
        Ok(Done::from(Outcome::Success))
    }
}
