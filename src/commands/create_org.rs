//! `create-org`: bootstrap an organization the way the API expects, with an audit row.

use std::fmt::Write as _;

use clap::{Args, ValueEnum};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseTransaction, EntityTrait};
use serde::Serialize;
use serde_json::json;

use super::Ctx;
use crate::accounts::{check_name, check_org_id};
use crate::db::{self, Db};
use crate::entities::{PlanType, orgs};
use crate::commands::Done;
use crate::spec::{Fleet, Grants, Info, Privilege, Work};
use crate::error::Outcome;
use crate::error::{Error, Result};
use crate::output::{Output, Report, label, or_dash, shown};
use crate::records;

#[derive(Debug, Args)]
pub struct CreateOrgArgs {
    /// The organization's name (stored exactly as given; 1 to 255 characters).
    #[arg(long)]
    pub name: String,

    /// The id (lowercase letters, digits and underscore, 1 to 64 characters).
    /// Default: `org_` + 12 random lowercase hex digits.
    #[arg(long)]
    pub id: Option<String>,

    /// The plan.
    #[arg(long, value_enum, default_value_t = Plan::Free)]
    pub plan: Plan,

    /// When the id exists already: say so, print it, change nothing, exit 0.
    #[arg(long)]
    pub if_not_exists: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Plan {
    Free,
    Pro,
    Enterprise,
}

impl From<Plan> for PlanType {
    fn from(p: Plan) -> Self {
        match p {
            Plan::Free => PlanType::Free,
            Plan::Pro => PlanType::Pro,
            Plan::Enterprise => PlanType::Enterprise,
        }
    }
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct OrgReport {
    pub id: String,
    pub name: String,
    pub plan: Option<PlanType>,
    /// Naive UTC, ISO-8601.
    pub created_at: Option<String>,
    /// false when --if-not-exists found it already there.
    pub created: bool,
}

impl OrgReport {
    fn from_model(m: &orgs::Model, created: bool) -> Self {
        Self {
            id: m.id.clone(),
            name: m.name.clone(),
            plan: m.plan,
            created_at: m.created_at.map(records::iso),
            created,
        }
    }
}

impl Report for OrgReport {
    fn render(&self, out: &mut String, ui: &Output) {
        let mut t = ui.table(&["id", "name", "plan", "created_at (UTC)"]);
        t.add_row(vec![
            self.id.clone(),
            self.name.clone(),
            label(self.plan),
            or_dash(self.created_at.as_deref()),
        ]);
        let _ = writeln!(out, "{t}");
    }
}

pub const INFO: Info = Info {
    name: "create-org",
    database: true,
    csv: false,
    fleet: Fleet::One,
    grants: Some(Grants {
        row: "create-org",
        writes: true,
        create_in_schema: false,
        owns_tables: false,
        tables: &[("orgs", Privilege::Insert), ("audit_logs", Privilege::Insert)],
    }),
    fails_when: None,
    schema: Some(crate::contracts::document::<OrgReport>),
};

impl super::Spec for CreateOrgArgs {
    const INFOS: &'static [&'static Info] = &[&INFO];

    fn info(&self) -> &'static Info {
        &INFO
    }

    fn work(&self) -> Work {
        Work::Rows
    }

    fn lock(&mut self) -> Option<&mut super::LockArgs> {
        None
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        execute(self, ctx).await
    }
}

async fn execute(args: &CreateOrgArgs, ctx: &Ctx) -> Result<Done> {
    let ui = &ctx.ui;
    check_name(&args.name)?;
    let id = match &args.id {
        Some(id) => {
            check_org_id(id)?;
            id.clone()
        }
        None => records::new_id("org_", 12),
    };
    let report = ctx
        .with_db(db::Open::Existing, async |db| {
            ctx.ensure_writable(db).await?;
            create(db, args, &id, ui).await
        })
        .await?;
    Ok(Done::report(report, Outcome::Success))
}

async fn create(db: &Db, args: &CreateOrgArgs, id: &str, ui: &Output) -> Result<OrgReport> {
    // Nothing is written before the insert: committing after an "exists" is harmless.
    db::commit_if_ok(
        db.begin().await?,
        "committing the organization",
        async |txn| {
            crate::migrations::ensure_api_tables(txn).await?;
            let existing = orgs::Entity::find_by_id(id.to_owned())
                .one(txn)
                .await
                .map_err(|e| Error::from_db(e, "looking up the organization"))?;
            if let Some(org) = existing {
                return if args.if_not_exists {
                    if_identical(args, id, &org)?;
                    ui.note(format!(
                        "organization '{id}' exists already; nothing changed"
                    ));
                    Ok(OrgReport::from_model(&org, false))
                } else {
                    Err(exists_error(id))
                };
            }
            insert(txn, args, id).await
        },
    )
    .await
}

/// `--if-not-exists`: the existing organization must be the one asked for.
fn if_identical(args: &CreateOrgArgs, id: &str, org: &orgs::Model) -> Result<()> {
    let plan: PlanType = args.plan.into();
    let mut differs = Vec::new();
    if org.name != args.name {
        differs.push(format!(
            "its name is '{}', not '{}'",
            shown(&org.name),
            shown(&args.name)
        ));
    }
    if org.plan != Some(plan) {
        differs.push(format!(
            "its plan is {}, not {}",
            label(org.plan),
            label(Some(plan))
        ));
    }
    if differs.is_empty() {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "organization '{id}' exists already and does not match: {}; nothing changed",
            differs.join(", ")
        ),
        "--if-not-exists accepts only an identical organization; fix --name / --plan, or choose another --id",
    ))
}

/// The org row and its `org_created` audit row.
async fn insert(txn: &DatabaseTransaction, args: &CreateOrgArgs, id: &str) -> Result<OrgReport> {
    let ts = records::now();
    let plan: PlanType = args.plan.into();
    let org = orgs::ActiveModel {
        id: Set(id.to_owned()),
        name: Set(args.name.clone()),
        plan: Set(Some(plan)),
        created_at: Set(Some(ts)),
    }
    .insert(txn)
    .await
    .map_err(|e| {
        // A concurrent create of the same id loses here.
        if matches!(
            e.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ) {
            exists_error(id)
        } else {
            Error::from_db(e, "inserting the organization")
        }
    })?;
    let details = records::details(&[("name", json!(args.name)), ("plan", json!(plan))], ts);
    records::record(txn, id, None, "org_created", "orgs", details, ts).await?;
    Ok(OrgReport::from_model(&org, true))
}

fn exists_error(id: &str) -> Error {
    Error::refused(
        format!("organization '{id}' exists already"),
        "choose another --id, or pass --if-not-exists to accept the existing one",
    )
}
