//! `create-admin`: bootstrap an owner or admin the API can log in, with a bcrypt hash
//! passlib accepts and an audit row like the API's own registration event
//! ([`accounts::create_admin`]). Here: the arguments, the password prompt, the report.

use std::fmt::Write as _;

use clap::{Args, ValueEnum};

use super::{Ctx, PasswordArgs};
use crate::accounts::{self, NewAdmin, UserReport, api_email, check_org_id};
use crate::db;
use crate::entities::Role;
use crate::error::{Outcome, Result};
use crate::output::{Output, Report, label, or_dash, shown};
use crate::commands::Done;
use crate::spec::{Fleet, Grants, Info, Privilege, Work};

#[derive(Debug, Clone, Args)]
pub struct CreateAdminArgs {
    /// The organization the user belongs to (it must exist).
    #[arg(long, value_name = "ORG_ID")]
    pub org: String,

    /// The user's email (unique among all users, compared ignoring Unicode case and
    /// the IDNA spelling of the domain).
    #[arg(long)]
    pub email: String,

    /// The user's display name.
    #[arg(long)]
    pub name: Option<String>,

    /// The role.
    #[arg(long, value_enum, default_value_t = AdminRole::Admin)]
    pub role: AdminRole,

    #[command(flatten)]
    pub password: PasswordArgs,

    /// When a user with that email exists: say so, change nothing (never the
    /// password), exit 0.
    #[arg(long)]
    pub if_not_exists: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AdminRole {
    Admin,
    Owner,
}

impl From<AdminRole> for Role {
    fn from(r: AdminRole) -> Self {
        match r {
            AdminRole::Admin => Role::Admin,
            AdminRole::Owner => Role::Owner,
        }
    }
}

impl Report for UserReport {
    fn render(&self, out: &mut String, ui: &Output) {
        let mut t = ui.table(&["id", "org_id", "email", "name", "role", "created_at (UTC)"]);
        t.add_row(vec![
            self.id.clone(),
            self.org_id.clone(),
            self.email.clone(),
            or_dash(self.name.as_deref()),
            label(self.role),
            or_dash(self.created_at.as_deref()),
        ]);
        let _ = writeln!(out, "{t}");
    }
}

pub const INFO: Info = Info {
    name: "create-admin",
    database: true,
    csv: false,
    fleet: Fleet::One,
    grants: Some(Grants {
        row: "create-admin",
        writes: true,
        create_in_schema: false,
        owns_tables: false,
        tables: &[
            ("users", Privilege::Insert),
            ("audit_logs", Privilege::Insert),
            ("users", Privilege::Select),
        ],
    }),
    fails_when: None,
    schema: Some(crate::contracts::document::<UserReport>),
};

impl super::Spec for CreateAdminArgs {
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

async fn execute(args: &CreateAdminArgs, ctx: &Ctx) -> Result<Done> {
    let ui = &ctx.ui;
    check_org_id(&args.org)?;
    // The address as the API will look it up at login (its EmailStr normalizes it).
    let email = api_email(&args.email)?;
    if email != args.email {
        ui.note(format!(
            "the API normalizes '{}' to '{}': stored as that, so that it can log in",
            shown(&args.email),
            shown(&email)
        ));
    }
    let new = NewAdmin {
        org: args.org.clone(),
        email,
        name: args.name.clone(),
        role: args.role.into(),
        if_not_exists: args.if_not_exists,
    };
    args.password.warn_if_weak(ui);
    let report = ctx
        .with_db(db::Open::Existing, async |db| {
            // The org and the email are checked before a password is asked for.
            if let Some(existing) = accounts::existing_admin(db, &new, ui).await? {
                return Ok(existing);
            }
            ctx.ensure_writable(db).await?;
            let hash = args.password.read_and_hash(&new.email, ui)?;
            accounts::create_admin(db, &new, hash, ui).await
        })
        .await?;
    Ok(Done::report(report, Outcome::Success))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::check_password;

    #[test]
    fn password_policy() {
        assert!(check_password("twelve chars", "a@b.co").is_ok());
        assert!(
            check_password("eleven char", "a@b.co")
                .unwrap_err()
                .contains("11 characters")
        );
        assert!(check_password(&"a".repeat(72), "a@b.co").is_ok());
        assert!(
            check_password(&"a".repeat(73), "a@b.co")
                .unwrap_err()
                .contains("73 bytes")
        );
        assert!(
            check_password("with a \0 nul inside", "a@b.co")
                .unwrap_err()
                .contains("NUL")
        );
        assert!(check_password("Admin@Example.com", "admin@example.com").is_err());
        // 12 characters, more bytes: characters count for the minimum.
        assert!(check_password("ééééééééééé€", "a@b.co").is_ok());
    }

    #[test]
    fn emails() {
        assert_eq!(api_email("admin@example.com").unwrap(), "admin@example.com");
        assert_eq!(api_email("Admin@Example.COM").unwrap(), "Admin@example.com");
        assert_eq!(
            api_email("ops@xn--bcher-kva.example").unwrap(),
            "ops@bücher.example"
        );
        for bad in ["root@corp.local", "a@b.test"] {
            let e = api_email(bad).unwrap_err();
            assert_eq!(e.code(), crate::error::exit::USAGE, "{bad}");
            assert!(
                e.message().contains("the API would refuse it"),
                "{}",
                e.message()
            );
        }
        for bad in [
            "",
            "admin",
            "admin@",
            "@example.com",
            "a b@example.com",
            "admin@localhost",
            "admin@example.com\n",
            "bi\u{202e}di@example.com",
            "admin\u{2066}@example.com",
        ] {
            assert!(api_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passlib_vectors_verify() {
        let tsv = include_str!("../../tests/fixtures/passlib-bcrypt-vectors.tsv");
        let mut n = 0;
        for line in tsv.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let (pw, hash) = line.rsplit_once('\t').expect("password<TAB>hash");
            let pw = pw.replace("\\t", "\t");
            assert!(bcrypt::verify(pw.as_bytes(), hash).unwrap(), "{hash}");
            n += 1;
        }
        assert_eq!(n, 7);
    }
}
