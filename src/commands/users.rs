//! `users`: the API's accounts after bootstrap. `users list` shows them (never a
//! password hash, only whether one is set); `users set-role` and `users
//! reset-password` change one, each with its audit row.

use clap::{Args, Subcommand, ValueEnum};

use super::{Ctx, PasswordArgs};
use std::fmt::Write as _;

use crate::accounts::{
    PasswordReset, RoleChange, UserFilter, UserListing, check_org_id, each_user,
};
use crate::db;
use crate::entities::Role;
use crate::error::{Outcome, Result};
use crate::output::RowStream;
use crate::output::{Output, Report, shown};
use crate::records;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users, sorted by org and email (table, JSON or CSV; streamed).
    List(UsersListArgs),

    /// Change a user's role, with a role_changed audit row (confirmation for owner/admin).
    SetRole(SetRoleArgs),

    /// Set a new password (stdin, ECOMIND_ADMIN_PASSWORD or a prompt), with a
    /// password_reset audit row; the old password stops working.
    ResetPassword(ResetPasswordArgs),
}

#[derive(Debug, Args)]
pub struct ResetPasswordArgs {
    /// The user's email, exactly as stored (a case variant is refused with a hint).
    pub email: String,

    #[command(flatten)]
    pub password: PasswordArgs,

    /// Why (kept in the audit row).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct SetRoleArgs {
    /// The user's email, exactly as stored (a case variant is refused with a hint).
    pub email: String,

    /// The new role.
    #[arg(value_enum)]
    pub role: RoleArg,

    /// Why (kept in the audit row).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,

    /// Do not ask before an elevation to owner or admin (for scripts).
    #[arg(long)]
    pub yes: bool,

    /// Allow taking the last owner or admin of an org below admin.
    #[arg(long)]
    pub force: bool,

    /// Show the change and the audit row; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The API's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Owner,
    Admin,
    Analyst,
    Viewer,
    Billing,
}

impl RoleArg {
    fn role(self) -> Role {
        match self {
            RoleArg::Owner => Role::Owner,
            RoleArg::Admin => Role::Admin,
            RoleArg::Analyst => Role::Analyst,
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Billing => Role::Billing,
        }
    }

    fn label(self) -> &'static str {
        match self {
            RoleArg::Owner => "owner",
            RoleArg::Admin => "admin",
            RoleArg::Analyst => "analyst",
            RoleArg::Viewer => "viewer",
            RoleArg::Billing => "billing",
        }
    }
}

#[derive(Debug, Args)]
pub struct UsersListArgs {
    /// Only the users of this organization (it must exist).
    #[arg(long, value_name = "ORG_ID")]
    pub org: Option<String>,

    /// Only users with this role (repeatable).
    #[arg(long, value_enum, value_name = "ROLE")]
    pub role: Vec<RoleArg>,

    /// Only owners and admins (the same as --role owner --role admin).
    #[arg(long, conflicts_with = "role")]
    pub privileged: bool,

    /// Only emails matching this SQL LIKE pattern, ignoring case (% any, _ one character).
    #[arg(long, value_name = "PATTERN")]
    pub email_like: Option<String>,
}

const HEADER: [&str; 7] = [
    "id",
    "org_id",
    "email",
    "name",
    "role",
    "created_at",
    "password",
];

pub async fn run(cmd: &UsersCommand, ctx: &Ctx) -> Result<Outcome> {
    match cmd {
        UsersCommand::List(args) => list(args, ctx).await,
        UsersCommand::SetRole(args) => set_role(args, ctx).await,
        UsersCommand::ResetPassword(args) => reset_password(args, ctx).await,
    }
}

async fn list(args: &UsersListArgs, ctx: &Ctx) -> Result<Outcome> {
    if let Some(org) = &args.org {
        check_org_id(org)?;
    }
    let roles: Vec<&'static str> = if args.privileged {
        vec!["owner", "admin"]
    } else {
        args.role.iter().map(|r| r.label()).collect()
    };
    let filter = UserFilter {
        org: args.org.clone(),
        roles,
        email_like: args.email_like.clone(),
    };
    let db = ctx.connect(db::Open::Existing).await?;
    let result = async {
        let mut out = RowStream::start(&ctx.ui, "users", "user", &HEADER)?;
        each_user(&db, &filter, |u: UserListing| out.row(&u, &cells(&u))).await?;
        out.finish()
    }
    .await;
    db.conn.close().await.ok();
    result.map(|_| Outcome::Success)
}

fn cells(u: &UserListing) -> Vec<String> {
    vec![
        u.id.clone(),
        u.org_id.clone(),
        u.email.clone(),
        u.name.clone().unwrap_or_default(),
        u.role.clone().unwrap_or_default(),
        u.created_at.map(records::iso).unwrap_or_default(),
        match u.has_password {
            Some(true) => "set",
            Some(false) => "none",
            None => "-",
        }
        .to_owned(),
    ]
}

impl Report for RoleChange {
    fn render(&self, out: &mut String, _ui: &Output) {
        let what = match (self.changed, self.dry_run) {
            (false, _) => "already has that role; nothing changed",
            (true, true) => "would change (dry run; nothing was written)",
            (true, false) => "changed",
        };
        let _ = writeln!(
            out,
            "{} ({}, {}): {} -> {}: {what}",
            shown(&self.email),
            self.user_id,
            self.org_id,
            self.old_role.as_deref().unwrap_or("no role"),
            self.new_role
        );
        if self.changed {
            let _ = writeln!(
                out,
                "audit_logs row (role_changed): {}",
                shown(&self.audit_details.to_string())
            );
        }
    }
}

async fn set_role(args: &SetRoleArgs, ctx: &Ctx) -> Result<Outcome> {
    let ui = &ctx.ui;
    crate::accounts::check_email(&args.email)?;
    let db = ctx.connect(db::Open::Existing).await?;
    let result = async {
        let found = crate::accounts::find_user(&db, &args.email).await?;
        let elevation = matches!(args.role, RoleArg::Owner | RoleArg::Admin)
            && found.role != Some(args.role.role());
        if !args.dry_run {
            db.ensure_writable().await?;
            if elevation {
                ui.confirm_destructive(
                    args.yes,
                    &format!(
                        "make '{}' ({}, {}, now {}) {} in {}",
                        shown(&found.email),
                        found.id,
                        found.org_id,
                        crate::output::label(found.role),
                        args.role.label(),
                        db.url
                    ),
                    "An owner or admin can manage users and everything else of the org.",
                    "Change the role?",
                )?;
            }
        }
        crate::accounts::set_role(
            &db,
            &found,
            args.role.role(),
            &args.reason,
            args.force,
            args.dry_run,
            ui,
        )
        .await
    }
    .await;
    db.conn.close().await.ok();
    ui.emit(&result?)?;
    Ok(Outcome::Success)
}

impl Report for PasswordReset {
    fn render(&self, out: &mut String, _ui: &Output) {
        let _ = writeln!(
            out,
            "{} ({}, {}): password changed; the old one no longer works",
            shown(&self.email),
            self.user_id,
            self.org_id,
        );
        let _ = writeln!(
            out,
            "audit_logs row (password_reset): {}",
            shown(&self.audit_details.to_string())
        );
    }
}

async fn reset_password(args: &ResetPasswordArgs, ctx: &Ctx) -> Result<Outcome> {
    let ui = &ctx.ui;
    crate::accounts::check_email(&args.email)?;
    args.password.warn_if_weak(ui);
    let db = ctx.connect(db::Open::Existing).await?;
    let result = async {
        // Who, before asking for a password; the transaction reads the user again.
        let found = crate::accounts::find_user(&db, &args.email).await?;
        db.ensure_writable().await?;
        let hash = args.password.read_and_hash(&found.email, ui)?;
        crate::accounts::reset_password(&db, &found, hash, args.reason.as_deref(), ui).await
    }
    .await;
    db.conn.close().await.ok();
    ui.emit(&result?)?;
    Ok(Outcome::Success)
}
