//! `man`: the man page (roff) on stdout. Touches no database.

use clap::Args;

use super::{Ctx, LockArgs, Spec};
use crate::error::{Error, Outcome, Result};
use crate::commands::Done;
use crate::spec::{Fleet, Info, Work};

#[derive(Debug, Args)]
pub struct ManArgs {}

pub const INFO: Info = Info {
    name: "man",
    database: false,
    csv: false,
    fleet: Fleet::One,
    grants: None,
    fails_when: None,
    schema: None,
};

impl Spec for ManArgs {
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
        let page = crate::docs::render((ctx.program)())
            .map_err(|e| Error::internal(format!("rendering the man page: {e}")))?;
        ctx.ui.write_stdout(&page)?;
        Ok(Done::from(Outcome::Success))
    }
}
