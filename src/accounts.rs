//! Accounts: what an org id, an email and a password must be, and finding a user by
//! address. Shared by create-org, create-admin and the audit; knows nothing of the
//! command line or the terminal.

use sea_orm::{EntityTrait, QuerySelect};

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

/// A syntactically valid email address the API would accept.
pub fn check_email(email: &str) -> Result<()> {
    let invalid = |why: &str| {
        Error::refused(
            format!("invalid email '{}': {why}", printable(email, 80)),
            "pass --email with an address like admin@example.com",
        )
    };
    if email.len() > 254 {
        return Err(invalid("longer than 254 bytes"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("it contains whitespace or control characters"));
    }
    if email != crate::text::escape(email, crate::text::Mode::Text) {
        return Err(invalid(
            "it contains bidi or other invisible control characters",
        ));
    }
    if !email_address::EmailAddress::is_valid(email) {
        return Err(invalid("not an email address"));
    }
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
        return Err(invalid("the domain has no dot"));
    }
    Ok(())
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
