//! Email addresses as the EcoMind API sees them. The API takes emails as pydantic's
//! `EmailStr` (pydantic 2, email-validator 2.x, deliverability not checked), which
//! normalizes an address before its exact-match look-up: the domain lowercased and in
//! its Unicode (IDNA) form, the local part NFC-normalized and otherwise kept; and it
//! refuses special-use domains (`.test`, `.local`, ...), quoted local parts and many
//! more. An account stored in any other form can never log in.
//!
//! [`normalize`] follows email-validator 2.4 (`validate_email` with its defaults and
//! `check_deliverability=False`) and pydantic's wrapper step by step; UTS 46 mapping and
//! IDNA conversion come from the `idna` crate, Unicode properties from `icu_properties`.
//! A parity test runs the real email-validator over a corpus (tests/cli/emails.rs).

use icu_properties::CodePointMapData;
use icu_properties::props::{GeneralCategory, GeneralCategoryGroup};
use unicode_normalization::UnicodeNormalization as _;

/// An address the API accepts, in the form the API stores and looks up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub email: String,
    pub local_part: String,
    /// The domain in Unicode (what the API compares).
    pub domain: String,
    /// The domain in IDNA ASCII form.
    pub ascii_domain: String,
}

/// Why the API refuses an address (email-validator's reason, as it says it).
pub type Refusal = String;

const EMAIL_MAX_LENGTH: usize = 254;
const DOMAIN_MAX_LENGTH: usize = 253;
const DNS_LABEL_LENGTH_LIMIT: usize = 63;
const PYDANTIC_MAX_LENGTH: usize = 2048;

/// RFC 2142 mailbox names email-validator lowercases.
const CASE_INSENSITIVE_MAILBOX_NAMES: [&str; 15] = [
    "info",
    "marketing",
    "sales",
    "support",
    "abuse",
    "noc",
    "security",
    "postmaster",
    "hostmaster",
    "usenet",
    "news",
    "webmaster",
    "www",
    "uucp",
    "ftp",
];

/// email-validator's SPECIAL_USE_DOMAIN_NAMES.
const SPECIAL_USE_DOMAIN_NAMES: [&str; 7] = [
    "arpa",
    "invalid",
    "local",
    "localhost",
    "onion",
    "test",
    "home.arpa",
];

/// RFC 5322 atext (without the dot).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_!#$%&'*+-/=?^`{|}~".contains(c)
}

fn is_atext_intl(c: char) -> bool {
    is_atext(c) || u32::from(c) >= 0x80
}

/// `[atext]+(\.[atext]+)*` over `is_text`.
fn dot_atom(s: &str, is_text: impl Fn(char) -> bool) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(&is_text))
}

fn is_hostname_char_intl(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.' || u32::from(c) >= 0x80
}

/// RFC 952/1123 hostname labels separated by dots.
fn dot_atom_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn category(c: char) -> GeneralCategory {
    CodePointMapData::<GeneralCategory>::new().get(c)
}

/// email-validator's `safe_character_display`, close enough for a message.
fn shown_char(c: char) -> String {
    if c == '\\' {
        return "\"\\\"".to_owned();
    }
    let g = category(c);
    if GeneralCategoryGroup::Letter.contains(g)
        || GeneralCategoryGroup::Number.contains(g)
        || GeneralCategoryGroup::Punctuation.contains(g)
        || GeneralCategoryGroup::Symbol.contains(g)
    {
        return format!("'{c}'");
    }
    format!("U+{:04X}", u32::from(c))
}

fn listed(chars: impl IntoIterator<Item = char>) -> String {
    let mut v: Vec<char> = chars.into_iter().collect();
    v.sort();
    v.dedup();
    v.into_iter().map(shown_char).collect::<Vec<_>>().join(", ")
}

/// `check_unsafe_chars`: no control, format, separator or unassigned characters (a
/// space only where allowed), no combining mark first.
fn check_unsafe_chars(s: &str, allow_space: bool) -> Result<(), Refusal> {
    let bad: Vec<char> = s
        .chars()
        .enumerate()
        .filter(|(i, c)| {
            let g = category(*c);
            if GeneralCategoryGroup::Letter.contains(g)
                || GeneralCategoryGroup::Number.contains(g)
                || GeneralCategoryGroup::Punctuation.contains(g)
                || GeneralCategoryGroup::Symbol.contains(g)
            {
                false
            } else if GeneralCategoryGroup::Mark.contains(g) {
                *i == 0
            } else if g == GeneralCategory::SpaceSeparator {
                !allow_space
            } else {
                true
            }
        })
        .map(|(_, c)| c)
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "The email address contains unsafe characters: {}.",
            listed(bad)
        ))
    }
}

fn check_dot_atom(label: &str, start: &str, end: &str, hostname: bool) -> Result<(), Refusal> {
    let fmt = |t: &str, what: &str| t.replace("{}", what);
    if label.ends_with('.') {
        return Err(fmt(end, "period"));
    }
    if label.starts_with('.') {
        return Err(fmt(start, "period"));
    }
    if label.contains("..") {
        return Err("An email address cannot have two periods in a row.".into());
    }
    if hostname {
        if label.ends_with('-') {
            return Err(fmt(end, "hyphen"));
        }
        if label.starts_with('-') {
            return Err(fmt(start, "hyphen"));
        }
        if label.contains(".-") || label.contains("-.") {
            return Err(
                "An email address cannot have a period and a hyphen next to each other.".into(),
            );
        }
    }
    Ok(())
}

/// email-validator's `uts46_valid_char`.
fn uts46_valid_char(c: char) -> bool {
    let n = u32::from(c);
    if (0x80..=0x9f).contains(&n) {
        return false;
    }
    if ((0x2010..=0x2060).contains(&n)
        && !(0x2024..=0x2026).contains(&n)
        && !(0x2028..=0x202e).contains(&n))
        || [0x00ad, 0x2064, 0xff0e].contains(&n)
        || (0x200b..=0x200d).contains(&n)
        || (0x1bca0..=0x1bca3).contains(&n)
    {
        return true;
    }
    if matches!(
        category(c),
        GeneralCategory::Format
            | GeneralCategory::Unassigned
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::SpaceSeparator
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) {
        return false;
    }
    let mut has_full_stop = false;
    unicode_normalization::char::decompose_compatible(c, |d| has_full_stop |= d == '.');
    !(has_full_stop && c != '.')
}

/// pydantic's "pretty" form `Name <address>`: the address inside.
fn unpretty(value: &str) -> &str {
    let t = value.trim_matches(char::is_whitespace);
    if let (Some(open), true) = (t.find('<'), t.ends_with('>')) {
        let name = t[..open].trim();
        let name_ok = if let Some(q) = name.strip_prefix('"') {
            q.ends_with('"') && q.len() > 1
        } else {
            name.split_whitespace().all(|w| {
                w.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || ".!#$%&'*+-/=?^_`{|}~".contains(c))
            })
        };
        if name_ok && open + 1 < t.len() - 1 {
            return &t[open + 1..t.len() - 1];
        }
    }
    value
}

/// The address as the API stores and looks it up, or why the API refuses it.
pub fn normalize(input: &str) -> Result<Normalized, Refusal> {
    if input.chars().count() > PYDANTIC_MAX_LENGTH {
        return Err(format!(
            "Length must not exceed {PYDANTIC_MAX_LENGTH} characters"
        ));
    }
    if input.contains(['\r', '\n']) {
        return Err("Carriage return and line feed characters are not allowed".into());
    }
    let email = unpretty(input).trim_matches(char::is_whitespace);
    let (local_raw, domain_part) = split(email)?;
    if local_raw.starts_with('"') {
        // Quoted local parts: email-validator checks them, then refuses them by default.
        return Err("Quoting the part before the @-sign is not allowed here.".into());
    }
    let local = validate_local(local_raw)?;
    // ASCII is its own NFC form (an audit normalizes every user's address).
    let local_nfc: String = if local.is_ascii() {
        local.clone()
    } else {
        local.nfc().collect()
    };
    let mut local = if local_nfc != local {
        validate_local(&local_nfc).map_err(|e| format!("After Unicode normalization: {e}"))?
    } else {
        local
    };
    if local.is_ascii()
        && CASE_INSENSITIVE_MAILBOX_NAMES.contains(&local.to_ascii_lowercase().as_str())
    {
        local = local.to_ascii_lowercase();
    }
    if domain_part.is_empty() {
        return Err("There must be something after the @-sign.".into());
    }
    if domain_part.starts_with('[') && domain_part.ends_with(']') {
        return Err("A bracketed IP address after the @-sign is not allowed here.".into());
    }
    let (ascii_domain, domain) = validate_domain(domain_part)?;
    let normalized = format!("{local}@{domain}");
    // The lengths of `local@domain` in its three forms, without building them.
    for (len, after) in [
        (local_raw.len() + 1 + domain_part.len(), ""),
        (normalized.len(), " after normalization"),
        (
            local.len() + 1 + ascii_domain.len(),
            " when the part after the @-sign is converted to IDNA ASCII",
        ),
    ] {
        if len > EMAIL_MAX_LENGTH {
            return Err(format!(
                "The email address is too long{after} ({} bytes too many).",
                len - EMAIL_MAX_LENGTH
            ));
        }
    }
    Ok(Normalized {
        email: normalized,
        local_part: local,
        domain,
        ascii_domain,
    })
}

/// email-validator's `split_email` for an address without a display name: the local
/// part and the domain at the first `@` outside quotes.
fn split(email: &str) -> Result<(&str, &str), Refusal> {
    let mut inside_quote = false;
    let mut escaped = false;
    for (i, c) in email.char_indices() {
        if inside_quote {
            if c == '\\' && !escaped {
                escaped = true;
            } else if c == '"' && !escaped {
                inside_quote = false;
            } else {
                escaped = false;
            }
        } else if c == '"' {
            inside_quote = true;
        } else if c == '<' {
            return Err("A display name and angle brackets around the email address are not permitted here.".into());
        } else if c == '@' {
            return Ok((&email[..i], &email[i + 1..]));
        }
    }
    if email.contains('＠') {
        return Err("The email address has the \"full-width\" at-sign (@) character instead of a regular at-sign.".into());
    }
    if email.contains('﹫') {
        return Err("The email address has the \"small commercial at\" character instead of a regular at-sign.".into());
    }
    Err("An email address must have an @-sign.".into())
}

/// `validate_email_local_part` (unquoted, SMTPUTF8 allowed, not strict).
fn validate_local(local: &str) -> Result<String, Refusal> {
    if local.is_empty() {
        return Err("There must be something before the @-sign.".into());
    }
    if dot_atom(local, is_atext) {
        return Ok(local.to_owned());
    }
    if dot_atom(local, is_atext_intl) {
        check_unsafe_chars(local, false)?;
        return Ok(local.to_owned());
    }
    let bad: Vec<char> = local
        .chars()
        .filter(|c| !(*c == '.' || is_atext_intl(*c)))
        .collect();
    if !bad.is_empty() {
        return Err(format!(
            "The email address contains invalid characters before the @-sign: {}.",
            listed(bad)
        ));
    }
    check_dot_atom(
        local,
        "An email address cannot start with a {}.",
        "An email address cannot have a {} immediately before the @-sign.",
        false,
    )?;
    Err("The email address contains invalid characters before the @-sign.".into())
}

/// [`check_domain`], remembered per domain for the thread: an audit normalizes every
/// user's address, and a deployment has few domains (a pure function of its input).
fn validate_domain(domain: &str) -> Result<(String, String), Refusal> {
    crate::text::memo(&DOMAINS, domain, check_domain)
}

thread_local! {
    static DOMAINS: crate::text::Memo<Result<(String, String), Refusal>> = Default::default();
}

/// `validate_email_domain_name` (globally deliverable, not a test environment): the
/// IDNA ASCII form and the Unicode form the API compares.
fn check_domain(domain: &str) -> Result<(String, String), Refusal> {
    use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
    check_domain_characters(domain)?;
    // UTS 46 mapping (nontransitional, no STD3 rules), then the checks email-validator
    // makes on the mapped name.
    let uts46 = Uts46::new();
    let (mapped, mapping) =
        uts46.to_unicode(domain.as_bytes(), AsciiDenyList::EMPTY, Hyphens::Allow);
    if mapping.is_err() {
        return Err(
            "The part after the @-sign contains invalid characters (not valid in IDNA).".into(),
        );
    }
    check_mapped(&mapped)?;
    let ascii = uts46
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::EMPTY,
            Hyphens::Allow,
            DnsLength::Ignore,
        )
        .map_err(|_| "The part after the @-sign is invalid (not valid IDNA).".to_owned())?
        .into_owned();
    check_ascii(&ascii)?;
    if !ascii.contains("xn--") {
        return Ok((ascii.clone(), ascii));
    }
    let (unicode, decoded) =
        uts46.to_unicode(ascii.as_bytes(), AsciiDenyList::EMPTY, Hyphens::Allow);
    if decoded.is_err() {
        return Err("The part after the @-sign is not valid IDNA.".into());
    }
    let unicode = unicode.into_owned();
    let bad: Vec<char> = unicode
        .chars()
        .filter(|c| !is_hostname_char_intl(*c))
        .collect();
    if !bad.is_empty() {
        return Err(invalid_chars("", bad));
    }
    // The bidi rule (RFC 5893) is part of the idna crate's processing above.
    check_unsafe_chars(&unicode, false)?;
    if let Some(c) = unicode.chars().find(|c| !idna2008_allowed(*c)) {
        return Err(format!(
            "The part after the @-sign is invalid (Codepoint U+{:04X} not allowed).",
            u32::from(c)
        ));
    }
    Ok((ascii, unicode))
}

fn invalid_chars(what: &str, chars: Vec<char>) -> Refusal {
    format!(
        "The part after the @-sign contains invalid characters{what}: {}.",
        listed(chars)
    )
}

/// The domain as typed: its length and characters.
fn check_domain_characters(domain: &str) -> Result<(), Refusal> {
    if domain.chars().count() > DOMAIN_MAX_LENGTH {
        return Err(format!(
            "The email address is too long after the @-sign ({} characters too many).",
            domain.chars().count() - DOMAIN_MAX_LENGTH
        ));
    }
    let bad: Vec<char> = domain
        .chars()
        .filter(|c| !is_hostname_char_intl(*c))
        .collect();
    if !bad.is_empty() {
        return Err(invalid_chars("", bad));
    }
    check_unsafe_chars(domain, false)?;
    let bad: Vec<char> = domain.chars().filter(|c| !uts46_valid_char(*c)).collect();
    if !bad.is_empty() {
        return Err(invalid_chars("", bad));
    }
    Ok(())
}

/// The domain after UTS 46 mapping: characters, dots and hyphens, `ab--` labels.
fn check_mapped(mapped: &str) -> Result<(), Refusal> {
    let bad: Vec<char> = mapped
        .chars()
        .filter(|c| !is_hostname_char_intl(*c))
        .collect();
    if !bad.is_empty() {
        return Err(invalid_chars(" after Unicode normalization", bad));
    }
    check_dot_atom(
        mapped,
        "An email address cannot have a {} immediately after the @-sign.",
        "An email address cannot end with a {}.",
        true,
    )?;
    for label in mapped.split('.') {
        let b = label.as_bytes();
        if b.len() >= 4 && &b[2..4] == b"--" && !label[..2].eq_ignore_ascii_case("xn") {
            return Err("An email address cannot have two letters followed by two dashes immediately after the @-sign or after a period, except Punycode.".into());
        }
    }
    Ok(())
}

/// The IDNA ASCII form: hostname syntax, lengths, a top-level domain, not special-use.
fn check_ascii(ascii: &str) -> Result<(), Refusal> {
    if !dot_atom_hostname(ascii) {
        return Err(
            "The email address contains invalid characters after the @-sign after IDNA encoding."
                .into(),
        );
    }
    if ascii.len() > DOMAIN_MAX_LENGTH {
        return Err(format!(
            "The email address is too long after the @-sign ({} bytes too many after IDNA encoding).",
            ascii.len() - DOMAIN_MAX_LENGTH
        ));
    }
    if let Some(label) = ascii.split('.').find(|l| l.len() > DNS_LABEL_LENGTH_LIMIT) {
        return Err(format!(
            "After the @-sign, periods cannot be separated by so many characters ({} characters too many).",
            label.len() - DNS_LABEL_LENGTH_LIMIT
        ));
    }
    if !ascii.contains('.') {
        return Err("The part after the @-sign is not valid. It should have a period.".into());
    }
    if !ascii.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(
            "The part after the @-sign is not valid. It is not within a valid top-level domain."
                .into(),
        );
    }
    if SPECIAL_USE_DOMAIN_NAMES
        .iter()
        .any(|d| ascii == *d || ascii.ends_with(&format!(".{d}")))
    {
        return Err("The part after the @-sign is a special-use or reserved name that cannot be used with email.".into());
    }
    Ok(())
}

/// IDNA 2008 (RFC 5892) is stricter than UTS 46, which the idna crate implements: a
/// non-ASCII code point of a label must be a letter, a digit or a combining mark
/// (symbols such as ☃ or emoji are UTS 46 valid, IDNA 2008 disallowed, and the
/// API's email-validator uses IDNA 2008), and not one of RFC 5892's disallowed
/// exceptions. (The contextual rules of the few CONTEXTO code points are not checked.)
fn idna2008_allowed(c: char) -> bool {
    if c.is_ascii() {
        return true;
    }
    const DISALLOWED: [u32; 10] = [
        0x0640, 0x07fa, 0x302e, 0x302f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303b,
    ];
    const CONTEXTO: [u32; 5] = [0x00b7, 0x0375, 0x05f3, 0x05f4, 0x30fb];
    let n = u32::from(c);
    if DISALLOWED.contains(&n) {
        return false;
    }
    CONTEXTO.contains(&n)
        || matches!(
            category(c),
            GeneralCategory::LowercaseLetter
                | GeneralCategory::OtherLetter
                | GeneralCategory::ModifierLetter
                | GeneralCategory::NonspacingMark
                | GeneralCategory::SpacingMark
                | GeneralCategory::DecimalNumber
        )
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn the_issues_addresses() {
        assert_eq!(
            normalize("Admin@Example.COM").unwrap().email,
            "Admin@example.com"
        );
        let n = normalize("ops@xn--bcher-kva.example").unwrap();
        assert_eq!(n.email, "ops@bücher.example");
        assert_eq!(n.ascii_domain, "xn--bcher-kva.example");
        assert!(
            normalize("root@corp.local")
                .unwrap_err()
                .contains("special-use")
        );
        assert!(normalize("a@b.test").is_err());
        assert_eq!(
            normalize(" Jane <Jane@Example.com> ").unwrap().email,
            "Jane@example.com"
        );
        assert_eq!(
            normalize("Postmaster@example.com").unwrap().email,
            "postmaster@example.com"
        );
        assert!(normalize("\"quoted\"@example.com").is_err());
        assert!(normalize("a@example.com.").is_err());
    }
}
