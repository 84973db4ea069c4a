//! `create-admin`: bootstrap an owner or admin the API can log in, with a bcrypt hash
//! passlib accepts and an audit row like the API's own registration event.

use std::fmt::Write as _;

use clap::{Args, ValueEnum};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseTransaction, EntityTrait};
use serde::Serialize;
use serde_json::json;

use super::{Ctx, PasswordArgs};
use crate::accounts::{api_email, check_org_id, find_by_email};
use crate::db::{self, Db};
use crate::entities::{Role, orgs, users};
use crate::spec::{Done, Fleet, Grants, Info, Privilege, Work};
use crate::error::Outcome;
use crate::error::{Error, Result};
use crate::output::{Output, Report, label, or_dash, shown};
use crate::records;

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

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UserReport {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Option<Role>,
    /// Naive UTC, ISO-8601.
    pub created_at: Option<String>,
    /// false when --if-not-exists found the email taken.
    pub created: bool,
}

impl UserReport {
    fn from_model(m: &users::Model, created: bool) -> Self {
        Self {
            id: m.id.clone(),
            org_id: m.org_id.clone(),
            email: m.email.clone(),
            name: m.name.clone(),
            role: m.role,
            created_at: m.created_at.map(records::iso),
            created,
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
        execute(self, ctx).await.map(Done::from)
    }
}

async fn execute(args: &CreateAdminArgs, ctx: &Ctx) -> Result<Outcome> {
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
    let args = &CreateAdminArgs {
        email,
        ..args.clone()
    };
    args.password.warn_if_weak(ui);
    let db = ctx.connect(db::Open::Existing).await?;
    let result = async {
        // Check the org and the email before asking for a password; the transaction
        // checks them again.
        let found = db::read_in(db.snapshot().await?, async |txn| {
            preconditions(txn, args).await
        })
        .await?;
        if let Some(existing) = found {
            ui.note(format!(
                "a user with email '{}' exists already ({}); nothing changed",
                existing.email, existing.id
            ));
            return Ok(UserReport::from_model(&existing, false));
        }
        ctx.ensure_writable(&db).await?;
        let hash = args.password.read_and_hash(&args.email, ui)?;
        create(&db, args, hash, ui).await
    }
    .await;
    db.conn.close().await.ok();
    let report = result?;
    ui.emit(&report)?;
    Ok(Outcome::Success)
}

/// The org must exist and the email must be free ([`records::email_key`]).
/// `Ok(Some(user))`: the email is taken and --if-not-exists accepts that user.
async fn preconditions<C: sea_orm::ConnectionTrait>(
    conn: &C,
    args: &CreateAdminArgs,
) -> Result<Option<users::Model>> {
    crate::migrations::ensure_api_tables(conn).await?;
    if !crate::schema::snapshots::has_column(conn, "users", "password_hash").await? {
        return Err(Error::refused(
            "the database is at revision 001: users has no password_hash column, so an admin could not log in",
            "run `ecomind-admin migrate up` first",
        ));
    }
    let org = orgs::Entity::find_by_id(args.org.clone())
        .one(conn)
        .await
        .map_err(|e| Error::from_db(e, "looking up the organization"))?;
    if org.is_none() {
        return Err(Error::refused(
            format!("organization '{}' not found", args.org),
            "create it first with `ecomind-admin create-org`",
        ));
    }
    let taken = find_by_email(conn, &args.email).await?;
    match taken {
        Some(user) if args.if_not_exists => if_identical(args, user).map(Some),
        Some(user) => Err(Error::refused(
            format!(
                "the email '{}' is taken (by {} as '{}')",
                shown(&args.email),
                shown(&user.id),
                shown(&user.email)
            ),
            "emails are unique ignoring case (Unicode) and the domain's IDNA spelling; pass --if-not-exists to accept the existing user",
        )),
        None => Ok(None),
    }
}

/// `--if-not-exists`: the existing user must be in the org and have the role asked for.
fn if_identical(args: &CreateAdminArgs, user: users::Model) -> Result<users::Model> {
    let role: Role = args.role.into();
    let mut differs = Vec::new();
    if user.org_id != args.org {
        differs.push(format!(
            "it belongs to '{}', not '{}'",
            shown(&user.org_id),
            args.org
        ));
    }
    if user.role != Some(role) {
        differs.push(format!(
            "its role is {}, not {}",
            label(user.role),
            label(Some(role))
        ));
    }
    if differs.is_empty() {
        return Ok(user);
    }
    Err(Error::refused(
        format!(
            "a user with email '{}' exists already ({}) and does not match: {}; nothing changed",
            shown(&user.email),
            shown(&user.id),
            differs.join(", ")
        ),
        "--if-not-exists accepts only the same org and role; check --org and --role",
    ))
}

/// How long a create-admin waits for another one creating the same address.
const ACCOUNT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

async fn create(db: &Db, args: &CreateAdminArgs, hash: String, ui: &Output) -> Result<UserReport> {
    // Two create-admin for `Case@x.com` and `case@x.com` at once: the second waits,
    // then sees the first's user (no unique index can say so: the schema is the API's).
    let txn = db
        .begin_serialized(
            db::ACCOUNT_LOCK_CLASS,
            &records::email_key(&args.email),
            ACCOUNT_LOCK_WAIT,
            ui,
        )
        .await?;
    // Nothing is written before the insert: committing after an "exists" is harmless.
    db::commit_if_ok(txn, "committing the user", async |txn| {
        if let Some(user) = preconditions(txn, args).await? {
            ui.note(format!(
                "a user with email '{}' exists already ({}); nothing changed",
                user.email, user.id
            ));
            return Ok(UserReport::from_model(&user, false));
        }
        insert(txn, args, hash).await
    })
    .await
}

/// The user row and its `user_registered` audit row, as the API writes them.
async fn insert(
    txn: &DatabaseTransaction,
    args: &CreateAdminArgs,
    hash: String,
) -> Result<UserReport> {
    let ts = records::now();
    let role: Role = args.role.into();
    let id = records::new_id("user_", 12);
    // `..Default::default()` is needless today and the point tomorrow: a column a
    // later revision adds keeps its database default without touching this file.
    #[allow(clippy::needless_update)]
    let user = users::ActiveModel {
        id: Set(id.clone()),
        org_id: Set(args.org.clone()),
        email: Set(args.email.clone()),
        name: Set(args.name.clone()),
        role: Set(Some(role)),
        created_at: Set(Some(ts)),
        password_hash: Set(Some(hash)),
        // Columns of later revisions keep their database default.
        ..Default::default()
    }
    .insert(txn)
    .await
    .map_err(|e| {
        if matches!(
            e.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ) {
            Error::refused(
                format!("the email '{}' is taken", args.email),
                "a concurrent run created it first",
            )
        } else {
            Error::from_db(e, "inserting the user")
        }
    })?;
    let details = records::details(&[("email", json!(args.email)), ("role", json!(role))], ts);
    records::record(
        txn,
        &args.org,
        Some(&id),
        "user_registered",
        "authentication",
        details,
        ts,
    )
    .await?;
    Ok(UserReport::from_model(&user, true))
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
