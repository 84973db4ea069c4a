//! Text that reaches a terminal: the one escaping function every human output goes
//! through (issue 11). Pure: the core uses it for values in messages, `output` for
//! everything it renders.

use std::borrow::Cow;
use std::fmt::Write as _;

/// What [`escape`] lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One value (a table cell, a name in a message, a CSV cell): every control
    /// character, line breaks included, and backslashes are escaped, so the shown text
    /// is unambiguous.
    Value,
    /// A block of our own text with values in it: line breaks are kept.
    Text,
    /// The same, with our own color sequences (SGR, `ESC [ digits ; m`) kept.
    StyledText,
}

/// The one rendering function every human output goes through (tables, notes,
/// warnings, errors, prompts, progress, CSV cells, logs): C0 and C1 control characters
/// (ESC, CR, BEL, BS, DEL, U+0080 to U+009F), bidi controls and every other invisible
/// character ([`is_invisible`]: U+200B, U+FEFF, U+2028, ...) become visible escapes:
/// `\n`, `\r`, `\t`, else `\u{1b}`. JSON output does not use it: JSON escaping keeps values exact.
pub fn escape(s: &str, mode: Mode) -> Cow<'_, str> {
    let needs = |c: char| is_unsafe(c) || (mode == Mode::Value && c == '\\');
    if !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\n' && mode != Mode::Value {
            out.push(c);
            continue;
        }
        if c == '\u{1b}' && mode == Mode::StyledText {
            let sgr_len = sgr_len(&s[i..]);
            if sgr_len > 0 {
                out.push_str(&s[i..i + sgr_len]);
                while chars.peek().is_some_and(|(j, _)| *j < i + sgr_len) {
                    chars.next();
                }
                continue;
            }
        }
        match c {
            '\\' if mode == Mode::Value => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A character a terminal may act on instead of showing, or that shows as nothing.
fn is_unsafe(c: char) -> bool {
    c.is_control() || is_invisible(c)
}

/// A character that shows as nothing or breaks a line on its own: Unicode's
/// Default_Ignorable_Code_Point (zero-width spaces and joiners, bidi controls, the BOM,
/// variation selectors, fillers, tags, soft hyphen), and the line and paragraph
/// separators U+2028, U+2029. Two strings that differ only by these look the same.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{034f}' | '\u{061c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}'
        | '\u{ffa0}' | '\u{fff0}'..='\u{fff8}' | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}')
}

/// The length of a color sequence `ESC [ [0-9;]* m` at the start of `s`, else 0.
fn sgr_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.len() < 3 || b[0] != 0x1b || b[1] != b'[' {
        return 0;
    }
    let mut i = 2;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b';') {
        i += 1;
    }
    if i < b.len() && b[i] == b'm' {
        i + 1
    } else {
        0
    }
}

/// `1 finding`, `2 findings`: a count with its noun in the right number.
pub fn plural(n: impl Into<i128>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `a`, `a and b`, `a, b and c`.
pub fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A value, escaped for a message or a line of a report ([`Mode::Value`]).
pub fn shown(s: &str) -> Cow<'_, str> {
    escape(s, Mode::Value)
}

/// JSON text (as serde_json writes it) with every character a terminal acts on or
/// that shows as nothing written as a `\uXXXX` escape: still valid JSON with the same
/// value, and safe to show anywhere (serde_json escapes only C0).
pub fn json_safe(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_unsafe) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{:04x}", u);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Results of a pure function of a string, remembered (see [`memo`]).
pub type Memo<T> = std::cell::RefCell<std::collections::HashMap<String, T>>;

/// `f(key)`, remembered in `cache` (a thread-local [`Memo`]); the cache is emptied
/// when it holds [`MEMO_MAX`] entries, so that memory stays bounded whatever the input.
pub fn memo<T: Clone>(
    cache: &'static std::thread::LocalKey<Memo<T>>,
    key: &str,
    f: impl FnOnce(&str) -> T,
) -> T {
    if let Some(v) = cache.with(|c| c.borrow().get(key).cloned()) {
        return v;
    }
    let v = f(key);
    cache.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= MEMO_MAX {
            c.clear();
        }
        c.insert(key.to_owned(), v.clone());
    });
    v
}

/// How many results a [`memo`] cache keeps at most.
pub const MEMO_MAX: usize = 4096;
