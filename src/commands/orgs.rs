//! `orgs list`: the organizations, with their number of users. Read-only.

use clap::Subcommand;

use super::Ctx;
use crate::accounts::{OrgListing, each_org};
use crate::db;
use crate::error::{Outcome, Result};
use crate::commands::Done;
use crate::spec::{Fleet, Grants, Info, Privilege, Work};
use crate::output::RowStream;
use crate::records;

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// List organizations with their number of users, sorted by id (table, JSON or CSV).
    List,
}

const HEADER: [&str; 5] = ["id", "name", "plan", "created_at", "users"];

pub const LIST: Info = Info {
    name: "orgs list",
    database: true,
    csv: true,
    fleet: Fleet::One,
    grants: Some(Grants {
        row: "orgs list",
        writes: false,
        create_in_schema: false,
        owns_tables: false,
        tables: &[("orgs", Privilege::Select), ("users", Privilege::Select)],
    }),
    fails_when: None,
    schema: Some(|info| {
        crate::contracts::streamed::<OrgsDocument, OrgListing, crate::output::ListSummary>(
            info, "org",
        )
    }),
};

/// `orgs list --format json`.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct OrgsDocument {
    orgs: Vec<OrgListing>,
    count: usize,
}

impl super::Spec for OrgsCommand {
    const INFOS: &'static [&'static Info] = &[&LIST];

    fn info(&self) -> &'static Info {
        match self {
            OrgsCommand::List => &LIST,
        }
    }

    fn work(&self) -> Work {
        match self {
            OrgsCommand::List => Work::ReadOnly,
        }
    }

    fn lock(&mut self) -> Option<&mut super::LockArgs> {
        match self {
            OrgsCommand::List => None,
        }
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        execute(self, ctx).await.map(Done::from)
    }
}

async fn execute(cmd: &OrgsCommand, ctx: &Ctx) -> Result<Outcome> {
    match cmd {
        OrgsCommand::List => {
            let result = ctx
                .with_db(db::Open::Existing, async |db| {
                    let mut out = RowStream::start(&ctx.ui, "orgs", "org", &HEADER)?;
                    each_org(db, |o: OrgListing| out.row(&o, &cells(&o))).await?;
                    out.finish()
                })
                .await;
            result.map(|_| Outcome::Success)
        }
    }
}

fn cells(o: &OrgListing) -> Vec<String> {
    vec![
        o.id.clone(),
        o.name.clone(),
        o.plan.clone().unwrap_or_default(),
        o.created_at.map(records::iso).unwrap_or_default(),
        o.users.to_string(),
    ]
}
