//! `metrics`: the security and health metrics of the deployment plan's monitoring, in
//! the Prometheus text exposition format on stdout (`--output FILE` for
//! node_exporter's textfile collector, written atomically); `metrics serve --listen
//! ADDR`: the same at `GET /metrics`, read from the database at each scrape. The core:
//! [`crate::metrics`].

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{Ctx, Done};
use crate::db;
use crate::error::{Error, Outcome, Result};
use crate::flags::parse_duration;
use crate::spec::{Fleet, Info, Work};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MetricsArgs {
    #[command(subcommand)]
    pub serve: Option<MetricsCommand>,

    #[command(flatten)]
    pub scrape: ScrapeArgs,
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Serve the metrics at GET /metrics (Prometheus scrapes it): each scrape reads the
    /// database on one reused connection, within --scrape-timeout.
    Serve(ServeArgs),
}

/// What a scrape reads.
#[derive(Debug, Args)]
pub struct ScrapeArgs {
    /// How long a token the API issues stays valid (its ACCESS_TOKEN_EXPIRE_MINUTES):
    /// the window of `ecomind_token_holders`.
    #[arg(long, value_name = "DURATION", default_value = "60m", value_parser = parse_duration)]
    pub token_lifetime: Duration,

    /// Users by org and role (one series per org and role; off by default to keep the
    /// number of series bounded).
    #[arg(long)]
    pub by_org: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (HOST:PORT; 0.0.0.0:PORT for every interface).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9187")]
    pub listen: SocketAddr,

    /// The longest a scrape reads (PostgreSQL statement_timeout) and waits for the one
    /// before it; then it answers with ecomind_scrape_success 0 (or 503).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub scrape_timeout: Duration,

    #[command(flatten)]
    pub scrape: ScrapeArgs,
}

const GRANTS: crate::spec::Grants = crate::spec::Grants {
    row: "metrics",
    writes: false,
    create_in_schema: false,
    owns_tables: false,
    tables: &[
        ("users", crate::spec::Privilege::Select),
        ("audit_logs", crate::spec::Privilege::Select),
    ],
};

/// `metrics` and `metrics serve` state the same, but their names.
const fn info(name: &'static str) -> Info {
    Info {
        name,
        database: true,
        csv: false,
        fleet: Fleet::One,
        grants: Some(GRANTS),
        fails_when: None,
        // The exposition format is the machine interface (no JSON form).
        schema: None,
    }
}

pub const INFO: Info = info("metrics");
pub const SERVE: Info = info("metrics serve");

impl super::Spec for MetricsArgs {
    const INFOS: &'static [&'static Info] = &[&INFO, &SERVE];

    fn info(&self) -> &'static Info {
        match self.serve {
            None => &INFO,
            Some(MetricsCommand::Serve(_)) => &SERVE,
        }
    }

    fn work(&self) -> Work {
        match self.serve {
            None | Some(MetricsCommand::Serve(_)) => Work::ReadOnly,
        }
    }

    fn lock(&mut self) -> Option<&mut super::LockArgs> {
        None
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        match &self.serve {
            None => once(&self.scrape, ctx).await,
            Some(MetricsCommand::Serve(s)) => serve(s, ctx).await,
        }
    }
}

fn options(s: &ScrapeArgs, timeout: Option<Duration>) -> crate::metrics::Options {
    crate::metrics::Options {
        token_lifetime: s.token_lifetime,
        by_org: s.by_org,
        statement_timeout: timeout,
    }
}

async fn once(args: &ScrapeArgs, ctx: &Ctx) -> Result<Done> {
    let opts = options(args, None);
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

async fn serve(args: &ServeArgs, ctx: &Ctx) -> Result<Done> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            Error::refused(
                format!("cannot listen on {}: {e}", args.listen),
                "another process listens there (a second `metrics serve`?); pick another --listen",
            )
        })?;
    let db = ctx.connect(db::Open::Existing).await?;
    ctx.ui.note(format!(
        "serving the metrics of {} at http://{}/metrics",
        db.url, args.listen
    ));
    let cancel = ctx.ui.cancel.clone();
    crate::metrics::serve(
        db,
        listener,
        options(&args.scrape, Some(args.scrape_timeout)),
        args.scrape_timeout,
        move || cancel.interrupted(),
    )
    .await?;
    Ok(Done::from(Outcome::Success))
}
