//! Creating an owner or admin the API can log in: the preconditions (the org exists,
//! the email is free, or `--if-not-exists` finds the same user), then the user row
//! and its `user_registered` audit row, in one transaction serialized per address.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseTransaction, EntityTrait};
use serde::Serialize;
use serde_json::json;

use super::find_by_email;
use crate::db::{self, Db};
use crate::entities::{Role, orgs, users};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::records;
use crate::text::shown;

/// The account to create (the email already as the API normalizes it).
#[derive(Debug, Clone)]
pub struct NewAdmin {
    pub org: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    /// A user with that email, in that org with that role, is accepted as it is.
    pub if_not_exists: bool,
}

/// The user created, or the one `--if-not-exists` found.
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

/// Check the org and the email in one snapshot, before any password is asked for:
/// `Ok(Some(user))` when `--if-not-exists` accepts the user that has the email (the
/// transaction of [`create_admin`] checks again).
pub async fn existing_admin(
    db: &Db,
    new: &NewAdmin,
    ui: &dyn Progress,
) -> Result<Option<UserReport>> {
    let found = db::read_in(db.snapshot().await?, async |txn| {
        preconditions(txn, new).await
    })
    .await?;
    Ok(found.map(|user| exists(&user, ui)))
}

fn exists(user: &users::Model, ui: &dyn Progress) -> UserReport {
    ui.note(&format!(
        "a user with email '{}' exists already ({}); nothing changed",
        user.email, user.id
    ));
    UserReport::from_model(user, false)
}

/// The org must exist and the email must be free ([`records::email_key`]).
/// `Ok(Some(user))`: the email is taken and --if-not-exists accepts that user.
async fn preconditions<C: sea_orm::ConnectionTrait>(
    conn: &C,
    new: &NewAdmin,
) -> Result<Option<users::Model>> {
    crate::migrations::ensure_api_tables(conn).await?;
    if !crate::schema::snapshots::has_column(conn, "users", "password_hash").await? {
        return Err(Error::refused(
            "the database is at revision 001: users has no password_hash column, so an admin could not log in",
            "run `ecomind-admin migrate up` first",
        ));
    }
    let org = orgs::Entity::find_by_id(new.org.clone())
        .one(conn)
        .await
        .map_err(|e| Error::from_db(e, "looking up the organization"))?;
    if org.is_none() {
        return Err(Error::refused(
            format!("organization '{}' not found", new.org),
            "create it first with `ecomind-admin create-org`",
        ));
    }
    let taken = find_by_email(conn, &new.email).await?;
    match taken {
        Some(user) if new.if_not_exists => if_identical(new, user).map(Some),
        Some(user) => Err(Error::refused(
            format!(
                "the email '{}' is taken (by {} as '{}')",
                shown(&new.email),
                shown(&user.id),
                shown(&user.email)
            ),
            "emails are unique ignoring case (Unicode) and the domain's IDNA spelling; pass --if-not-exists to accept the existing user",
        )),
        None => Ok(None),
    }
}

/// `--if-not-exists`: the existing user must be in the org and have the role asked for.
fn if_identical(new: &NewAdmin, user: users::Model) -> Result<users::Model> {
    let label =
        |r: Option<Role>| r.map_or_else(|| "-".to_owned(), |r| sea_orm::ActiveEnum::to_value(&r));
    let mut differs = Vec::new();
    if user.org_id != new.org {
        differs.push(format!(
            "it belongs to '{}', not '{}'",
            shown(&user.org_id),
            new.org
        ));
    }
    if user.role != Some(new.role) {
        differs.push(format!(
            "its role is {}, not {}",
            label(user.role),
            label(Some(new.role))
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

/// Create the user with the password `hash` (and its audit row), unless a concurrent
/// run made it first (then `--if-not-exists` decides, as in [`existing_admin`]).
pub async fn create_admin(
    db: &Db,
    new: &NewAdmin,
    hash: String,
    ui: &dyn Progress,
) -> Result<UserReport> {
    // Two create-admin for `Case@x.com` and `case@x.com` at once: the second waits,
    // then sees the first's user (no unique index can say so: the schema is the API's).
    let txn = db
        .begin_serialized(
            db::ACCOUNT_LOCK_CLASS,
            &records::email_key(&new.email),
            ACCOUNT_LOCK_WAIT,
            ui,
        )
        .await?;
    // Nothing is written before the insert: committing after an "exists" is harmless.
    db::commit_if_ok(txn, "committing the user", async |txn| {
        if let Some(user) = preconditions(txn, new).await? {
            return Ok(exists(&user, ui));
        }
        insert(txn, new, hash).await
    })
    .await
}

/// The user row and its `user_registered` audit row, as the API writes them.
async fn insert(txn: &DatabaseTransaction, new: &NewAdmin, hash: String) -> Result<UserReport> {
    let ts = records::now();
    let id = records::new_id("user_", 12);
    // `..Default::default()` is needless today and the point tomorrow: a column a
    // later revision adds keeps its database default without touching this file.
    #[allow(clippy::needless_update)]
    let user = users::ActiveModel {
        id: Set(id.clone()),
        org_id: Set(new.org.clone()),
        email: Set(new.email.clone()),
        name: Set(new.name.clone()),
        role: Set(Some(new.role)),
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
                format!("the email '{}' is taken", new.email),
                "a concurrent run created it first",
            )
        } else {
            Error::from_db(e, "inserting the user")
        }
    })?;
    let details = records::details(
        &[("email", json!(new.email)), ("role", json!(new.role))],
        ts,
    );
    records::record(
        txn,
        &new.org,
        Some(&id),
        "user_registered",
        "authentication",
        details,
        ts,
    )
    .await?;
    Ok(UserReport::from_model(&user, true))
}
