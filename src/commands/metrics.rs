//! `metrics`: the security and health metrics of the deployment plan's monitoring, in
//! the Prometheus text exposition format on stdout (`--output FILE` for
//! node_exporter's textfile collector, written atomically). The core:
//! [`crate::metrics`].

use clap::Args;

use super::{Ctx, Done};
use crate::db;
use crate::error::{Outcome, Result};
use crate::flags::parse_duration;
use crate::spec::{Fleet, Info, Work};

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// How long a token the API issues stays valid (its ACCESS_TOKEN_EXPIRE_MINUTES):
    /// the window of `ecomind_token_holders`.
    #[arg(long, value_name = "DURATION", default_value = "60m", value_parser = parse_duration)]
    pub token_lifetime: std::time::Duration,

    /// Users by org and role (one series per org and role; off by default to keep the
    /// number of series bounded).
    #[arg(long)]
    pub by_org: bool,
}

pub const INFO: Info = Info {
    name: "metrics",
    database: true,
    csv: false,
    fleet: Fleet::One,
    grants: Some(crate::spec::Grants {
        row: "metrics",
        writes: false,
        create_in_schema: false,
        owns_tables: false,
        tables: &[
            ("users", crate::spec::Privilege::Select),
            ("audit_logs", crate::spec::Privilege::Select),
        ],
    }),
    fails_when: None,
    // The exposition format is the machine interface (no JSON form).
    schema: None,
};

impl super::Spec for MetricsArgs {
    const INFOS: &'static [&'static Info] = &[&INFO];

    fn info(&self) -> &'static Info {
        &INFO
    }

    fn work(&self) -> Work {
        Work::ReadOnly
    }

    fn lock(&mut self) -> Option<&mut super::LockArgs> {
        None
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        let opts = crate::metrics::Options {
            token_lifetime: self.token_lifetime,
            by_org: self.by_org,
        };
        let (text, err) = ctx
            .with_db(db::Open::Existing, async |db| {
                Ok(crate::metrics::scrape(db, &opts).await)
            })
            .await?;
        if let Some(e) = err {
            return Err(e);
        }
        ctx.ui.write_stdout(text.as_bytes())?;
        ctx.ui.finish_streamed();
        Ok(Done::from(Outcome::Success))
    }
}
