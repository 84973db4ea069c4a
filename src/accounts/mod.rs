//! Accounts: what an org id, an email and a password must be, and finding a user by
//! address. Shared by create-org, create-admin and the audit; knows nothing of the
//! command line or the terminal.

use sea_orm::{EntityTrait, QuerySelect};

use crate::db;

mod create;
pub use create::{NewAdmin, UserReport, create_admin, existing_admin};

use crate::entities::users;
use crate::error::{Error, Result};
use crate::records;

/// Check an org id: lowercase letters, digits and underscore, 1 to 64 characters.
pub fn check_org_id(id: &str) -> Result<()> {
    if !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(())
    } else {
        Err(Error::refused(
            format!("invalid organization id '{}'", printable(id, 80)),
            "an id is 1 to 64 lowercase letters, digits and underscores, e.g. org_0123456789ab",
        ))
    }
}

pub fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::refused(
            "the organization name is empty",
            "pass --name with a non-empty name",
        ));
    }
    let n = name.chars().count();
    if n > 255 {
        return Err(Error::refused(
            format!("the organization name is {n} characters long"),
            "a name has at most 255 characters",
        ));
    }
    if name.chars().any(|c| c == '\0') {
        return Err(Error::refused(
            "the organization name contains a NUL character",
            "remove it",
        ));
    }
    Ok(())
}

/// A user-supplied value, shortened and escaped for an error line.
pub fn printable(s: &str, max: usize) -> String {
    let escaped = crate::text::shown(s);
    if escaped.chars().count() > max {
        let cut: String = escaped.chars().take(max).collect();
        format!("{cut}…")
    } else {
        escaped.into_owned()
    }
}

/// A new account's email as the API will look it up: refused (exit 2) when it could
/// pass for another address ([`lookalike`]) or when the API's email validator refuses
/// it (an account with it could never log in), else the API's normalized form
/// ([`crate::emails::normalize`]: the domain lowercased and in Unicode, the local part
/// NFC).
pub fn api_email(email: &str) -> Result<String> {
    let invalid = |why: &str| {
        Error::usage(
            format!("invalid email '{}': {why}", printable(email, 80)),
            "the API logs in only with an address its email validator accepts (pydantic's EmailStr): e.g. admin@example.com; special-use domains such as .test, .local or .localhost are refused",
        )
    };
    if let Some(why) = lookalike(email) {
        return Err(invalid(&why));
    }
    if email.chars().any(|c| c.is_control()) {
        return Err(invalid("it contains control characters"));
    }
    crate::emails::normalize(email)
        .map(|n| n.email)
        .map_err(|reason| invalid(&format!("the API would refuse it: {reason}")))
}

/// Why `email` could pass for another address, if it could: a character that shows
/// as nothing (zero-width, BOM, bidi, line separators: [`crate::text::is_invisible`]),
/// or one that compatibility normalization (NFKC) turns into another (fullwidth
/// letters, ligatures, superscripts), named with its position (1-based, in characters).
pub fn lookalike(email: &str) -> Option<String> {
    use unicode_normalization::UnicodeNormalization as _;
    let at = |i: usize, c: char| format!("U+{:04X} at character {}", u32::from(c), i + 1);
    if let Some((i, c)) = email
        .chars()
        .enumerate()
        .find(|(_, c)| crate::text::is_invisible(*c))
    {
        return Some(format!(
            "it contains an invisible character ({}), so it would look like another address",
            at(i, c)
        ));
    }
    email.chars().enumerate().find_map(|(i, c)| {
        let folded: String = std::iter::once(c).nfkc().collect();
        (folded != c.to_string()).then(|| {
            format!(
                "it contains a look-alike character ({} reads as '{}'), so it would look like another address",
                at(i, c),
                crate::text::shown(&folded)
            )
        })
    })
}

/// The password policy, in every mode. The message never contains the password.
pub fn check_password(password: &str, email: &str) -> std::result::Result<(), String> {
    if password.contains('\0') {
        return Err("the password contains a NUL byte".into());
    }
    let chars = password.chars().count();
    if chars < 12 {
        return Err(format!(
            "the password has {chars} characters; at least 12 are required"
        ));
    }
    if password.len() > 72 {
        return Err(format!(
            "the password is {} bytes; bcrypt uses at most 72 and ecomind-admin refuses to truncate it",
            password.len()
        ));
    }
    if password.eq_ignore_ascii_case(email) || password.to_lowercase() == email.to_lowercase() {
        return Err("the password must not be the email address".into());
    }
    Ok(())
}

/// A bcrypt hash of `password` that passlib (the API) verifies. The caller has checked
/// the policy, so the password is at most 72 bytes and nothing is truncated. (The
/// crate's non_truncating_hash counts bcrypt's NUL terminator and would refuse a
/// 72-byte password that passlib and the API accept.)
pub fn hash_password(password: &str, cost: u32) -> Result<String> {
    bcrypt::hash(password.as_bytes(), cost)
        .map_err(|e| Error::internal(format!("bcrypt failed: {e}")))
}

/// The user whose email is the same address as `email` ([`records::email_key`]: Unicode
/// lowercase local part, IDNA domain), compared in ecomind-admin so that both backends
/// give the same answer.
pub async fn find_by_email<C: sea_orm::ConnectionTrait>(
    conn: &C,
    email: &str,
) -> Result<Option<users::Model>> {
    let key = records::email_key(email);
    let all: Vec<(String, String)> = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .column(users::Column::Email)
        .into_tuple()
        .all(conn)
        .await
        .map_err(|e| Error::from_db(e, "looking up the email"))?;
    let Some((id, _)) = all.into_iter().find(|(_, e)| records::email_key(e) == key) else {
        return Ok(None);
    };
    users::Entity::find_by_id(id)
        .one(conn)
        .await
        .map_err(|e| Error::from_db(e, "looking up the email"))
}

/// Does organization `id` exist? (`--org` of audit and users list: an unknown org is
/// refused, never an empty result.)
pub async fn org_exists<C: sea_orm::ConnectionTrait>(conn: &C, id: &str) -> Result<bool> {
    let found = crate::entities::orgs::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await
        .map_err(|e| Error::from_db(e, "looking up the organization"))?;
    Ok(found.is_some())
}

/// Which users `users list` shows (all when empty).
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub org: Option<String>,
    /// Role labels (`owner`, `admin`, ...); none: every role.
    pub roles: Vec<&'static str>,
    /// A LIKE pattern matched against the lowercased email.
    pub email_like: Option<String>,
}

/// One user as `users list` shows it: never the hash, only whether one is set (None:
/// the database is at revision 001, with no password_hash column).
#[derive(Debug, Clone, sea_orm::FromQueryResult, serde::Serialize, schemars::JsonSchema)]
pub struct UserListing {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Option<String>,
    #[serde(serialize_with = "iso_opt")]
    #[schemars(with = "Option<String>")]
    pub created_at: Option<chrono::NaiveDateTime>,
    pub has_password: Option<bool>,
}

/// One organization as `orgs list` shows it, with its number of users.
#[derive(Debug, Clone, sea_orm::FromQueryResult, serde::Serialize, schemars::JsonSchema)]
pub struct OrgListing {
    pub id: String,
    pub name: String,
    pub plan: Option<String>,
    #[serde(serialize_with = "iso_opt")]
    #[schemars(with = "Option<String>")]
    pub created_at: Option<chrono::NaiveDateTime>,
    pub users: i64,
}

fn iso_opt<S: serde::Serializer>(
    t: &Option<chrono::NaiveDateTime>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&records::iso(*t)),
        None => s.serialize_none(),
    }
}

/// Every user matching `filter`, sorted by org, email and id, streamed to `each` (which
/// returns false to stop), in one read-only snapshot: memory stays flat whatever the
/// number of users.
pub async fn each_user(
    db: &crate::db::Db,
    filter: &UserFilter,
    mut each: impl FnMut(UserListing) -> Result<bool>,
) -> Result<()> {
    crate::db::read_in(db.snapshot().await?, async |txn| {
        crate::migrations::ensure_api_tables(txn).await?;
        if let Some(org) = &filter.org
            && !org_exists(txn, org).await?
        {
            return Err(Error::refused(
                format!("organization '{}' not found", printable(org, 80)),
                "see `ecomind-admin orgs list`; without --org every organization is listed",
            ));
        }
        let has_hash = crate::schema::snapshots::has_column(txn, "users", "password_hash").await?;
        let stmt = users_statement(db.backend, filter, has_hash);
        stream_rows(txn, stmt, "listing users", &mut each).await
    })
    .await
}

/// Stream the rows of `stmt`, each decoded into `T` (a missing column is an error), to
/// `each` until it returns false.
async fn stream_rows<T: sea_orm::FromQueryResult>(
    txn: &sea_orm::DatabaseTransaction,
    stmt: sea_orm::Statement,
    what: &str,
    each: &mut impl FnMut(T) -> Result<bool>,
) -> Result<()> {
    use futures_util::StreamExt;
    use sea_orm::StreamTrait;
    let mut stream = txn
        .stream_raw(stmt)
        .await
        .map_err(|e| Error::from_db(e, what))?;
    while let Some(row) = stream.next().await {
        let row = row.map_err(|e| Error::from_db(e, what))?;
        let item = T::from_query_result(&row, "").map_err(|e| Error::from_db(e, what))?;
        if !each(item)? {
            break;
        }
    }
    Ok(())
}

/// The statement of `users list`: the org and the pattern are bound values; the roles
/// are labels of our own enum.
pub fn users_statement(
    backend: sea_orm::DbBackend,
    filter: &UserFilter,
    has_hash: bool,
) -> sea_orm::Statement {
    let pg = backend == sea_orm::DbBackend::Postgres;
    let mut values: Vec<sea_orm::Value> = Vec::new();
    let mut conds: Vec<String> = Vec::new();
    let param = |v: String, values: &mut Vec<sea_orm::Value>| {
        values.push(v.into());
        if pg {
            format!("${}", values.len())
        } else {
            "?".to_owned()
        }
    };
    if let Some(org) = &filter.org {
        let p = param(org.clone(), &mut values);
        conds.push(format!("org_id = {p}"));
    }
    if let Some(pattern) = &filter.email_like {
        let p = param(pattern.to_lowercase(), &mut values);
        conds.push(format!("lower(email) LIKE {p}"));
    }
    if !filter.roles.is_empty() {
        let labels: Vec<String> = filter.roles.iter().map(|r| format!("'{r}'")).collect();
        conds.push(format!("CAST(role AS TEXT) IN ({})", labels.join(", ")));
    }
    let sql = format!(
        "SELECT id, org_id, email, name, CAST(role AS TEXT) AS role, created_at, {hash} AS has_password \
         FROM users{where_} ORDER BY org_id, email, id",
        hash = if has_hash {
            "(password_hash IS NOT NULL)"
        } else if pg {
            "CAST(NULL AS BOOLEAN)"
        } else {
            "NULL"
        },
        where_ = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        },
    );
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// Every organization with its number of users, sorted by id, streamed to `each`.
pub async fn each_org(
    db: &crate::db::Db,
    mut each: impl FnMut(OrgListing) -> Result<bool>,
) -> Result<()> {
    crate::db::read_in(db.snapshot().await?, async |txn| {
        crate::migrations::ensure_api_tables(txn).await?;
        let sql = "SELECT o.id, o.name, CAST(o.plan AS TEXT) AS plan, o.created_at, COALESCE(c.n, 0) AS users \
                   FROM orgs o LEFT JOIN (SELECT org_id, COUNT(*) AS n FROM users GROUP BY org_id) c \
                   ON c.org_id = o.id ORDER BY o.id";
        let stmt = sea_orm::Statement::from_string(db.backend, sql);
        stream_rows(txn, stmt, "listing organizations", &mut each).await
    })
    .await
}

/// What `users set-role` changed (or, with `dry_run`, would change).
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct RoleChange {
    pub user_id: String,
    pub org_id: String,
    pub email: String,
    pub old_role: Option<String>,
    pub new_role: String,
    pub changed: bool,
    pub dry_run: bool,
    /// The audit_logs row written (or that would be written).
    pub audit_details: serde_json::Value,
}

fn privileged_role(role: Option<crate::entities::Role>) -> bool {
    matches!(
        role,
        Some(crate::entities::Role::Owner | crate::entities::Role::Admin)
    )
}

/// How an operator names an existing account: its id, or its email exactly as stored
/// (whatever it holds: an account the audit flags for a hostile email must still be
/// reachable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Email(String),
}

impl UserRef {
    /// `--id` or the EMAIL argument: one of them, not empty.
    pub fn new(id: Option<&str>, email: Option<&str>) -> Result<Self> {
        match (id, email) {
            (Some(id), None) if !id.is_empty() => Ok(UserRef::Id(id.to_owned())),
            (None, Some(email)) if !email.is_empty() => Ok(UserRef::Email(email.to_owned())),
            _ => Err(Error::usage(
                "name the user by its email (as stored) or by --id USER_ID",
                "e.g. `users set-role ops@example.com viewer --reason ...` or `--id user_0123456789ab`; `users list` shows both",
            )),
        }
    }
}

/// The user `who` names: by id, or by exact stored email (see [`user_by_email`]);
/// with `lock`, its row locked for the transaction.
async fn user_by_ref<C: sea_orm::ConnectionTrait>(
    conn: &C,
    who: &UserRef,
    lock: bool,
) -> Result<users::Model> {
    match who {
        UserRef::Email(email) => user_by_email(conn, email, lock).await,
        UserRef::Id(id) => user_by_id(conn, id, lock).await,
    }
}

/// The user with id `id` (exit 4 when there is none).
async fn user_by_id<C: sea_orm::ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<users::Model> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let mut query = users::Entity::find().filter(users::Column::Id.eq(id));
    if lock {
        query = query.lock_exclusive();
    }
    query
        .one(conn)
        .await
        .map_err(|e| Error::from_db(e, "looking up the user"))?
        .ok_or_else(|| {
            Error::refused(
                format!("no user with id '{}'", printable(id, 80)),
                "see `ecomind-admin users list` (its first column is the id)",
            )
        })
}

/// The user whose stored email is exactly `email`; with `lock`, its row locked for the
/// transaction on PostgreSQL (`FOR UPDATE`; SQLite's write lock is the database's).
/// None: exit 4, naming the users with the same address ignoring case and the domain's
/// spelling when there are any (a role or a password is changed only for the address
/// as the API stores it).
async fn user_by_email<C: sea_orm::ConnectionTrait>(
    conn: &C,
    email: &str,
    lock: bool,
) -> Result<users::Model> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let mut query = users::Entity::find().filter(users::Column::Email.eq(email));
    if lock {
        query = query.lock_exclusive();
    }
    let exact = query
        .all(conn)
        .await
        .map_err(|e| Error::from_db(e, "looking up the email"))?;
    if let [user] = &exact[..] {
        return Ok(user.clone());
    }
    if exact.len() > 1 {
        return Err(Error::refused(
            format!(
                "{} users have the email '{}'",
                exact.len(),
                printable(email, 200)
            ),
            "name the account by --id USER_ID (see `ecomind-admin users list`)",
        ));
    }
    let all: Vec<(String, String)> = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .column(users::Column::Email)
        .into_tuple()
        .all(conn)
        .await
        .map_err(|e| Error::from_db(e, "looking up the email"))?;
    if let Some(user) = by_api_form(conn, &all, email, lock).await? {
        return Ok(user);
    }
    let key = records::email_key(email);
    let mut variants: Vec<String> = all
        .iter()
        .map(|(_, e)| e)
        .filter(|e| records::email_key(e) == key)
        .map(|e| format!("'{}'", printable(e, 200)))
        .collect();
    variants.sort();
    let hint = if variants.is_empty() {
        "see `ecomind-admin users list --email-like '%part%'`".to_owned()
    } else {
        format!(
            "did you mean {}? pass the address exactly as stored",
            variants.join(" or ")
        )
    };
    Err(Error::refused(
        format!("no user with email '{}'", printable(email, 200)),
        hint,
    ))
}

/// The one account whose stored email the API reads as the same address as `email`
/// (what an operator often types differently: `Admin@Example.COM` for the stored
/// `Admin@example.com`), each stored one normalized the same way; refused when two
/// match. None when none does (or `email` is not an address the API takes).
async fn by_api_form<C: sea_orm::ConnectionTrait>(
    conn: &C,
    all: &[(String, String)],
    email: &str,
    lock: bool,
) -> Result<Option<users::Model>> {
    let Ok(wanted) = crate::emails::normalize(email) else {
        return Ok(None);
    };
    let same: Vec<&(String, String)> = all
        .iter()
        .filter(|(_, stored)| {
            *stored == wanted.email
                || crate::emails::normalize(stored).is_ok_and(|n| n.email == wanted.email)
        })
        .collect();
    match &same[..] {
        [(id, _)] => user_by_id(conn, id, lock).await.map(Some),
        [] => Ok(None),
        many => {
            let listed: Vec<String> = many
                .iter()
                .map(|(id, e)| format!("{id} ('{}')", printable(e, 200)))
                .collect();
            Err(Error::refused(
                format!(
                    "{} users have an email the API reads as '{}': {}",
                    many.len(),
                    printable(&wanted.email, 200),
                    listed.join(", ")
                ),
                "name the account by --id USER_ID",
            ))
        }
    }
}

/// Refuse (exit 4) to take `user` below admin when no other owner or admin is left in
/// its org.
async fn keep_one_privileged(
    txn: &sea_orm::DatabaseTransaction,
    user: &users::Model,
    role: crate::entities::Role,
    lock: bool,
) -> Result<()> {
    use sea_orm::{ColumnTrait, QueryFilter};
    if !privileged_role(user.role) || privileged_role(Some(role)) {
        return Ok(());
    }
    // Locked (PostgreSQL): a concurrent demotion of the other one, even by hand-written
    // SQL, waits for this transaction and then sees the new role.
    let mut query = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .filter(users::Column::OrgId.eq(user.org_id.clone()))
        .filter(users::Column::Id.ne(user.id.clone()))
        .filter(
            users::Column::Role.is_in([crate::entities::Role::Owner, crate::entities::Role::Admin]),
        );
    if lock {
        query = query.lock_exclusive();
    }
    let others: Vec<String> = query
        .into_tuple()
        .all(txn)
        .await
        .map_err(|e| Error::from_db(e, "counting the org's owners and admins"))?;
    if !others.is_empty() {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "'{}' is the last owner or admin of {}; nothing changed",
            printable(&user.email, 200),
            user.org_id
        ),
        "promote another user first, or pass --force to leave the org without one",
    ))
}

/// The new role and its `role_changed` row.
async fn apply_role(
    txn: &sea_orm::DatabaseTransaction,
    user: users::Model,
    role: crate::entities::Role,
    details: serde_json::Value,
    ts: chrono::NaiveDateTime,
) -> Result<()> {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let org_id = user.org_id.clone();
    let user_id = user.id.clone();
    let mut active: users::ActiveModel = user.into();
    active.role = Set(Some(role));
    active
        .update(txn)
        .await
        .map_err(|e| Error::from_db(e, "changing the role"))?;
    records::record(
        txn,
        &org_id,
        Some(&user_id),
        "role_changed",
        "users",
        details,
        ts,
    )
    .await?;
    Ok(())
}

/// The user `who` names (see `user_by_ref`), read in its own snapshot: what a command
/// shows and confirms before it changes anything.
pub async fn find_user(db: &crate::db::Db, who: &UserRef) -> Result<users::Model> {
    db::read_in(db.snapshot().await?, async |txn| {
        crate::migrations::ensure_api_tables(txn).await?;
        if !crate::schema::snapshots::has_column(txn, "users", "password_hash").await? {
            return Err(Error::refused(
                "the database is at revision 001: users has no password_hash column, and the API has no login to manage",
                "run `ecomind-admin migrate up` first",
            ));
        }
        user_by_ref(txn, who, false).await
    })
    .await
}

/// Begin the transaction that changes `found` (as [`find_user`] read it): serialized
/// with every other account change in its organization, and the user read again under
/// the lock, locked, and checked to be the same account. Without `write` (a dry run),
/// a read-only snapshot.
async fn begin_change(
    db: &crate::db::Db,
    found: &users::Model,
    write: bool,
    ui: &dyn crate::progress::Progress,
) -> Result<(sea_orm::DatabaseTransaction, users::Model)> {
    if !write {
        // A dry run: one read-only snapshot, no lock (it works on a standby, for a reader).
        let txn = db.snapshot().await?;
        let user = user_by_ref(&txn, &UserRef::Id(found.id.clone()), false).await?;
        return Ok((txn, user));
    }
    let txn = db
        .begin_serialized(
            crate::db::ORG_LOCK_CLASS,
            &found.org_id,
            ACCOUNT_LOCK_WAIT,
            ui,
        )
        .await?;
    let user = match user_by_ref(&txn, &UserRef::Id(found.id.clone()), true).await {
        Ok(user) if user.email == found.email && user.org_id == found.org_id => user,
        Err(e) if e.code() != crate::error::exit::REFUSED => {
            txn.rollback().await.ok();
            return Err(e);
        }
        Ok(_) | Err(_) => {
            txn.rollback().await.ok();
            return Err(Error::refused(
                format!(
                    "the user '{}' changed while ecomind-admin was preparing; nothing changed",
                    printable(&found.email, 200)
                ),
                "run the command again",
            ));
        }
    };
    Ok((txn, user))
}

/// Change the role of `found` (from [`find_user`]) to `role`, with one `role_changed`
/// audit row, in one transaction serialized per organization (two changes in one org
/// never interleave, so none can leave it without an owner or admin). Refuses (exit 4)
/// to take the last owner-or-admin of an org below admin unless `force`.
pub async fn set_role(
    db: &crate::db::Db,
    found: &users::Model,
    role: crate::entities::Role,
    reason: &str,
    force: bool,
    dry_run: bool,
    ui: &dyn crate::progress::Progress,
) -> Result<RoleChange> {
    check_reason(reason)?;
    let (txn, user) = begin_change(db, found, !dry_run, ui).await?;
    let work = async |txn: &sea_orm::DatabaseTransaction| {
        let ts = records::now();
        let new_role = sea_orm::ActiveEnum::to_value(&role);
        let old_role = user.role.map(|r| sea_orm::ActiveEnum::to_value(&r));
        let details = records::details_by(
            "changed_by",
            &[
                ("email", serde_json::json!(user.email)),
                ("old_role", serde_json::json!(old_role)),
                ("new_role", serde_json::json!(new_role)),
                ("reason", serde_json::json!(reason)),
            ],
            ts,
        );
        let mut change = RoleChange {
            user_id: user.id.clone(),
            org_id: user.org_id.clone(),
            email: user.email.clone(),
            old_role: old_role.clone(),
            new_role: new_role.clone(),
            changed: false,
            dry_run,
            audit_details: details.clone(),
        };
        if user.role == Some(role) {
            return Ok(change);
        }
        if !force {
            keep_one_privileged(txn, &user, role, !dry_run).await?;
        }
        change.changed = true;
        if dry_run {
            return Ok(change);
        }
        apply_role(txn, user.clone(), role, details, ts).await?;
        Ok(change)
    };
    if dry_run {
        return db::read_in(txn, work).await;
    }
    db::commit_if_ok(txn, "committing the role change", work).await
}

/// A `--reason` must say something (it is kept in the audit row).
fn check_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(Error::refused(
            "--reason is empty",
            "say why; it is kept in the audit row",
        ));
    }
    Ok(())
}

/// What `users reset-password` changed.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct PasswordReset {
    pub user_id: String,
    pub org_id: String,
    pub email: String,
    /// The audit_logs row written (never the hash or the password).
    pub audit_details: serde_json::Value,
}

/// Replace the password hash of `found` (from [`find_user`]) with `hash`, with one
/// `password_reset` audit row (no hash in it), in one transaction serialized with the
/// org's other account changes.
pub async fn reset_password(
    db: &crate::db::Db,
    found: &users::Model,
    hash: String,
    reason: Option<&str>,
    ui: &dyn crate::progress::Progress,
) -> Result<PasswordReset> {
    if let Some(reason) = reason {
        check_reason(reason)?;
    }
    let (txn, user) = begin_change(db, found, true, ui).await?;
    db::commit_if_ok(txn, "committing the new password", async |txn| {
        use sea_orm::{ActiveModelTrait, ActiveValue::Set};
        let ts = records::now();
        let details = records::details_by(
            "changed_by",
            &[
                ("email", serde_json::json!(user.email)),
                ("reason", serde_json::json!(reason)),
            ],
            ts,
        );
        let report = PasswordReset {
            user_id: user.id.clone(),
            org_id: user.org_id.clone(),
            email: user.email.clone(),
            audit_details: details.clone(),
        };
        let mut active: users::ActiveModel = user.clone().into();
        active.password_hash = Set(Some(hash));
        active
            .update(txn)
            .await
            .map_err(|e| Error::from_db(e, "storing the new password hash"))?;
        records::record(
            txn,
            &report.org_id,
            Some(&report.user_id),
            "password_reset",
            "users",
            details,
            ts,
        )
        .await?;
        Ok(report)
    })
    .await
}

/// How long an account change waits for another one in the same organization.
const ACCOUNT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// `users lock` or `users unlock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LockAction {
    Locked,
    Unlocked,
}

impl LockAction {
    /// The audit_logs action it records.
    pub fn audit_action(self) -> &'static str {
        match self {
            LockAction::Locked => "user_locked",
            LockAction::Unlocked => "user_unlocked",
        }
    }
}

/// What `users lock` / `users unlock` changed.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct AccountLock {
    pub user_id: String,
    pub org_id: String,
    pub email: String,
    pub action: LockAction,
    pub old_role: Option<String>,
    pub new_role: String,
    /// The audit_logs row written (`user_locked` / `user_unlocked`; never a hash).
    pub audit_details: serde_json::Value,
}

/// Stop `found` from logging in at once: role viewer (the API reads the role from the
/// database on every request) and no password hash (the API then answers a login like
/// an unknown address), with one `user_locked` row that records the role it had, in one
/// transaction serialized with the org's other account changes. Refuses to lock the
/// last owner or admin of an org unless `force`.
pub async fn lock_user(
    db: &crate::db::Db,
    found: &users::Model,
    reason: &str,
    force: bool,
    ui: &dyn crate::progress::Progress,
) -> Result<AccountLock> {
    check_reason(reason)?;
    let (txn, user) = begin_change(db, found, true, ui).await?;
    db::commit_if_ok(txn, "committing the lock", async |txn| {
        let viewer = crate::entities::Role::Viewer;
        if !force {
            keep_one_privileged(txn, &user, viewer, true).await?;
        }
        let old_role = user.role.map(|r| sea_orm::ActiveEnum::to_value(&r));
        let fields = [
            ("email", serde_json::json!(user.email)),
            ("old_role", serde_json::json!(old_role)),
            ("new_role", serde_json::json!("viewer")),
            (
                "had_password",
                serde_json::json!(user.password_hash.is_some()),
            ),
            ("reason", serde_json::json!(reason)),
        ];
        change_account(
            txn,
            &user,
            viewer,
            None,
            LockAction::Locked,
            &fields,
            old_role,
        )
        .await
    })
    .await
}

/// The role `found` had when it was locked: the `old_role` of its latest `user_locked`
/// row (None when there is none, or it names no role).
pub async fn locked_role(
    db: &crate::db::Db,
    found: &users::Model,
) -> Result<Option<crate::entities::Role>> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    db::read_in(db.snapshot().await?, async |txn| {
        let row = crate::entities::audit_logs::Entity::find()
            .filter(crate::entities::audit_logs::Column::UserId.eq(found.id.as_str()))
            .filter(
                crate::entities::audit_logs::Column::Action.eq(LockAction::Locked.audit_action()),
            )
            .order_by_desc(crate::entities::audit_logs::Column::Ts)
            .one(txn)
            .await
            .map_err(|e| Error::from_db(e, "reading the lock's audit row"))?;
        Ok(row
            .and_then(|r| r.details)
            .and_then(|d| {
                d.get("old_role")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            })
            .and_then(|r| <crate::entities::Role as sea_orm::ActiveEnum>::try_from_value(&r).ok()))
    })
    .await
}

/// Undo [`lock_user`]: `role` back, and a new password hash (the old one is gone: a
/// flagged account's password is not trusted again), with one `user_unlocked` row.
pub async fn unlock_user(
    db: &crate::db::Db,
    found: &users::Model,
    role: crate::entities::Role,
    hash: String,
    reason: &str,
    ui: &dyn crate::progress::Progress,
) -> Result<AccountLock> {
    check_reason(reason)?;
    let (txn, user) = begin_change(db, found, true, ui).await?;
    db::commit_if_ok(txn, "committing the unlock", async |txn| {
        let old_role = user.role.map(|r| sea_orm::ActiveEnum::to_value(&r));
        let fields = [
            ("email", serde_json::json!(user.email)),
            ("old_role", serde_json::json!(old_role)),
            (
                "new_role",
                serde_json::json!(sea_orm::ActiveEnum::to_value(&role)),
            ),
            ("reason", serde_json::json!(reason)),
        ];
        change_account(
            txn,
            &user,
            role,
            Some(hash),
            LockAction::Unlocked,
            &fields,
            old_role,
        )
        .await
    })
    .await
}

/// Set `user`'s role and password hash, with one audit row `action` of `fields`.
async fn change_account(
    txn: &sea_orm::DatabaseTransaction,
    user: &users::Model,
    role: crate::entities::Role,
    hash: Option<String>,
    action: LockAction,
    fields: &[(&str, serde_json::Value)],
    old_role: Option<String>,
) -> Result<AccountLock> {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let ts = records::now();
    let details = records::details_by("changed_by", fields, ts);
    let mut active: users::ActiveModel = user.clone().into();
    active.role = Set(Some(role));
    active.password_hash = Set(hash);
    active
        .update(txn)
        .await
        .map_err(|e| Error::from_db(e, "changing the account"))?;
    records::record(
        txn,
        &user.org_id,
        Some(&user.id),
        action.audit_action(),
        "users",
        details.clone(),
        ts,
    )
    .await?;
    Ok(AccountLock {
        user_id: user.id.clone(),
        org_id: user.org_id.clone(),
        email: user.email.clone(),
        action,
        old_role,
        new_role: sea_orm::ActiveEnum::to_value(&role),
        audit_details: details,
    })
}
