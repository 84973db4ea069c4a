//! `users`: the API's accounts after bootstrap. `users list` shows them (never a
//! password hash, only whether one is set); `users set-role` and `users
//! reset-password` change one, each with its audit row.

use clap::{Args, Subcommand, ValueEnum};

use super::{Ctx, PasswordArgs};
use std::fmt::Write as _;

use crate::accounts::{
    AccountLock, PasswordReset, RoleChange, UserFilter, UserListing, UserRef, check_org_id,
    each_user,
};
use crate::db;
use crate::entities::Role;
use crate::commands::Done;
use crate::spec::{Fleet, Grants, Info, Privilege, Work};
use crate::error::{Error, Outcome, Result};
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

    /// Stop an account from logging in at once: role viewer and no password, with a
    /// user_locked audit row (incident response; `users unlock` reverses it).
    Lock(LockArgs),

    /// Reverse `users lock`: the role it had (or --role) and a new password, with a
    /// user_unlocked audit row.
    Unlock(UnlockArgs),
}

/// An existing account: its email exactly as stored, or `--id`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["email", "id"])))]
pub struct Who {
    /// The user's email, exactly as stored, whatever it holds (a case variant is refused
    /// with a hint); or --id.
    pub email: Option<String>,

    /// The user's id (the first column of `users list`), instead of the email.
    #[arg(long, value_name = "USER_ID")]
    pub id: Option<String>,
}

impl Who {
    fn user(&self) -> Result<UserRef> {
        UserRef::new(self.id.as_deref(), self.email.as_deref())
    }
}

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub who: Who,

    /// Why (kept in the audit row).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,

    /// Do not ask (for scripts).
    #[arg(long)]
    pub yes: bool,

    /// Allow locking the last owner or admin of an org.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub who: Who,

    /// The role to give back (default: the one it had when it was locked).
    #[arg(long, value_enum)]
    pub role: Option<RoleArg>,

    /// Why (kept in the audit row).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,

    /// Do not ask before giving back owner or admin (for scripts).
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct ResetPasswordArgs {
    #[command(flatten)]
    pub who: Who,

    #[command(flatten)]
    pub password: PasswordArgs,

    /// Why (kept in the audit row).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct SetRoleArgs {
    /// The user's email exactly as stored (whatever it holds), then the new role (owner,
    /// admin, analyst, viewer, billing); with --id, only the role.
    #[arg(value_names = ["EMAIL", "ROLE"], num_args = 1..=2, required = true)]
    pub words: Vec<String>,

    /// The user's id (the first column of `users list`), instead of the email.
    #[arg(long, value_name = "USER_ID")]
    pub id: Option<String>,

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

impl SetRoleArgs {
    /// Who and the new role, from `EMAIL ROLE` or `--id USER_ID ROLE`.
    fn target(&self) -> Result<(UserRef, RoleArg)> {
        let (email, role) = match (&self.id, &self.words[..]) {
            (Some(_), [role]) => (None, role),
            (None, [email, role]) => (Some(email.as_str()), role),
            _ => {
                return Err(Error::usage(
                    "users set-role takes the email and the role, or --id USER_ID and the role",
                    "e.g. `users set-role ops@example.com viewer --reason ...` or `users set-role --id user_0123456789ab viewer --reason ...`",
                ));
            }
        };
        let role = <RoleArg as ValueEnum>::from_str(role, false).map_err(|_| {
            Error::usage(
                format!("invalid role '{}'", shown(role)),
                "one of owner, admin, analyst, viewer, billing",
            )
        })?;
        Ok((UserRef::new(self.id.as_deref(), email)?, role))
    }
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

/// set-role, reset-password, lock, unlock: UPDATE on users (the change and its `FOR
/// UPDATE` row lock), SELECT, and INSERT on audit_logs for the row.
const CHANGE: Grants = Grants {
    row: "",
    writes: true,
    create_in_schema: false,
    owns_tables: false,
    tables: &[
        ("users", Privilege::Update),
        ("users", Privilege::Select),
        ("audit_logs", Privilege::Insert),
    ],
};

const fn change(
    name: &'static str,
    tables: &'static [(&'static str, Privilege)],
    schema: fn(&Info) -> serde_json::Value,
) -> Info {
    Info {
        name,
        database: true,
        csv: false,
        fleet: Fleet::One,
        grants: Some(Grants {
            row: name,
            tables,
            ..CHANGE
        }),
        fails_when: None,
        schema: Some(schema),
    }
}

pub const LIST: Info = Info {
    name: "users list",
    database: true,
    csv: true,
    fleet: Fleet::One,
    grants: Some(Grants {
        row: "users list",
        writes: false,
        create_in_schema: false,
        owns_tables: false,
        tables: &[("users", Privilege::Select)],
    }),
    fails_when: None,
    schema: Some(|info| {
        crate::contracts::streamed::<UsersDocument, UserListing, crate::output::ListSummary>(
            info, "user",
        )
    }),
};
pub const SET_ROLE: Info = change(
    "users set-role",
    CHANGE.tables,
    crate::contracts::document::<crate::accounts::RoleChange>,
);
pub const RESET_PASSWORD: Info = change(
    "users reset-password",
    CHANGE.tables,
    crate::contracts::document::<crate::accounts::PasswordReset>,
);
pub const LOCK: Info = change(
    "users lock",
    CHANGE.tables,
    crate::contracts::document::<crate::accounts::AccountLock>,
);
pub const UNLOCK: Info = change(
    "users unlock",
    // Also the audit rows: the role the lock recorded.
    &[
        ("users", Privilege::Update),
        ("users", Privilege::Select),
        ("audit_logs", Privilege::Insert),
        ("audit_logs", Privilege::Select),
    ],
    crate::contracts::document::<crate::accounts::AccountLock>,
);

/// `users list --format json`.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct UsersDocument {
    users: Vec<UserListing>,
    count: usize,
}

impl super::Spec for UsersCommand {
    const INFOS: &'static [&'static Info] = &[&LIST, &SET_ROLE, &RESET_PASSWORD, &LOCK, &UNLOCK];

    fn info(&self) -> &'static Info {
        match self {
            UsersCommand::List(_) => &LIST,
            UsersCommand::SetRole(_) => &SET_ROLE,
            UsersCommand::ResetPassword(_) => &RESET_PASSWORD,
            UsersCommand::Lock(_) => &LOCK,
            UsersCommand::Unlock(_) => &UNLOCK,
        }
    }

    fn work(&self) -> Work {
        match self {
            UsersCommand::SetRole(a) if a.dry_run => Work::ReadOnly,
            UsersCommand::List(_) => Work::ReadOnly,
            UsersCommand::SetRole(_)
            | UsersCommand::ResetPassword(_)
            | UsersCommand::Lock(_)
            | UsersCommand::Unlock(_) => Work::Rows,
        }
    }

    fn lock(&mut self) -> Option<&mut super::LockArgs> {
        match self {
            UsersCommand::List(_)
            | UsersCommand::SetRole(_)
            | UsersCommand::ResetPassword(_)
            | UsersCommand::Lock(_)
            | UsersCommand::Unlock(_) => None,
        }
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        execute(self, ctx).await
    }
}

async fn execute(cmd: &UsersCommand, ctx: &Ctx) -> Result<Done> {
    match cmd {
        UsersCommand::List(args) => list(args, ctx).await.map(Done::from),
        UsersCommand::SetRole(args) => set_role(args, ctx).await,
        UsersCommand::ResetPassword(args) => reset_password(args, ctx).await,
        UsersCommand::Lock(args) => lock(args, ctx).await,
        UsersCommand::Unlock(args) => unlock(args, ctx).await,
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
    let result = ctx
        .with_db(db::Open::Existing, async |db| {
            let mut out = RowStream::start(&ctx.ui, "users", "user", &HEADER)?;
            each_user(db, &filter, |u: UserListing| out.row(&u, &cells(&u))).await?;
            out.finish()
        })
        .await;
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

async fn set_role(args: &SetRoleArgs, ctx: &Ctx) -> Result<Done> {
    let ui = &ctx.ui;
    let (who, role) = args.target()?;
    let result = ctx
        .with_db(db::Open::Existing, async |db| {
            let found = crate::accounts::find_user(db, &who).await?;
            let elevation =
                matches!(role, RoleArg::Owner | RoleArg::Admin) && found.role != Some(role.role());
            if !args.dry_run {
                ctx.ensure_writable(db).await?;
                if elevation {
                    ui.confirm_destructive(
                        args.yes,
                        &format!(
                            "make '{}' ({}, {}, now {}) {} in {}",
                            shown(&found.email),
                            found.id,
                            found.org_id,
                            crate::output::label(found.role),
                            role.label(),
                            db.url
                        ),
                        "An owner or admin can manage users and everything else of the org.",
                        "Change the role?",
                        true,
                    )?;
                }
            }
            crate::accounts::set_role(
                db,
                &found,
                role.role(),
                &args.reason,
                args.force,
                args.dry_run,
                ui,
            )
            .await
        })
        .await;
    Ok(Done::report(result?, Outcome::Success))
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

async fn reset_password(args: &ResetPasswordArgs, ctx: &Ctx) -> Result<Done> {
    let ui = &ctx.ui;
    let who = args.who.user()?;
    args.password.warn_if_weak(ui);
    let result = ctx
        .with_db(db::Open::Existing, async |db| {
            // Who, before asking for a password; the transaction reads the user again.
            let found = crate::accounts::find_user(db, &who).await?;
            ctx.ensure_writable(db).await?;
            let hash = args.password.read_and_hash(&found.email, ui)?;
            crate::accounts::reset_password(db, &found, hash, args.reason.as_deref(), ui).await
        })
        .await;
    Ok(Done::report(result?, Outcome::Success))
}

impl Report for AccountLock {
    fn render(&self, out: &mut String, _ui: &Output) {
        let what = if self.action == crate::accounts::LockAction::Locked {
            "locked: it cannot log in, and it is a viewer (tokens it holds now carry no more than that)"
        } else {
            "unlocked: it logs in with the new password"
        };
        let _ = writeln!(
            out,
            "{} ({}, {}): {} -> {}: {what}",
            shown(&self.email),
            self.user_id,
            self.org_id,
            self.old_role.as_deref().unwrap_or("no role"),
            self.new_role,
        );
        let _ = writeln!(
            out,
            "audit_logs row ({}): {}",
            self.action.audit_action(),
            shown(&self.audit_details.to_string())
        );
    }
}

async fn lock(args: &LockArgs, ctx: &Ctx) -> Result<Done> {
    let ui = &ctx.ui;
    let who = args.who.user()?;
    let result = ctx
        .with_db(db::Open::Existing, async |db| {
            let found = crate::accounts::find_user(db, &who).await?;
            ctx.ensure_writable(db).await?;
            ui.confirm_destructive(
                args.yes,
                &format!(
                    "lock '{}' ({}, {}, now {}) in {}",
                    shown(&found.email),
                    found.id,
                    found.org_id,
                    crate::output::label(found.role),
                    db.url
                ),
                "It becomes a viewer and its password is removed: it cannot log in until `users unlock`.",
                "Lock the account?",
                false,
            )?;
            crate::accounts::lock_user(db, &found, &args.reason, args.force, ui).await
        })
        .await;
    Ok(Done::report(result?, Outcome::Success))
}

async fn unlock(args: &UnlockArgs, ctx: &Ctx) -> Result<Done> {
    let ui = &ctx.ui;
    let who = args.who.user()?;
    args.password.warn_if_weak(ui);
    let result = ctx
        .with_db(db::Open::Existing, async |db| {
            let found = crate::accounts::find_user(db, &who).await?;
            ctx.ensure_writable(db).await?;
            let role = match args.role {
                Some(r) => r.role(),
                None => crate::accounts::locked_role(db, &found)
                    .await?
                    .ok_or_else(|| {
                        Error::refused(
                            format!(
                                "no user_locked row says which role '{}' had",
                                shown(&found.email)
                            ),
                            "pass --role ROLE",
                        )
                    })?,
            };
            if matches!(role, Role::Owner | Role::Admin) {
                ui.confirm_destructive(
                    args.yes,
                    &format!(
                        "unlock '{}' ({}, {}) as {} in {}",
                        shown(&found.email),
                        found.id,
                        found.org_id,
                        crate::output::label(Some(role)),
                        db.url
                    ),
                    "An owner or admin can manage users and everything else of the org.",
                    "Unlock the account?",
                    false,
                )?;
            }
            let hash = args.password.read_and_hash(&found.email, ui)?;
            crate::accounts::unlock_user(db, &found, role, hash, &args.reason, ui).await
        })
        .await;
    Ok(Done::report(result?, Outcome::Success))
}
