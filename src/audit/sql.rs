//! The few places where PostgreSQL and SQLite spell the same thing differently.

use chrono::NaiveDateTime;
use sea_orm::DbBackend;

use crate::db::quote_literal;

#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    pg: bool,
}

impl Dialect {
    pub fn new(backend: DbBackend) -> Self {
        Self {
            pg: backend == DbBackend::Postgres,
        }
    }

    /// PostgreSQL (else SQLite): where the two need another shape, not only another
    /// spelling (see [`super::pass`]).
    pub fn is_pg(&self) -> bool {
        self.pg
    }

    /// `details` is a JSON object (anything else reads as NULL below).
    pub fn is_obj(&self, col: &str) -> String {
        if self.pg {
            format!("(json_typeof({col}) = 'object')")
        } else {
            // SQLite does not short-circuit AND: json_type() of malformed text would
            // fail the whole statement. CASE is evaluated lazily.
            format!("(CASE WHEN json_valid({col}) THEN json_type({col}) = 'object' ELSE 0 END)")
        }
    }

    /// A key of a JSON object column as text; NULL when missing, null, or not an object.
    pub fn j(&self, col: &str, key: &str) -> String {
        if self.pg {
            // `->>` on a json value that is not an object is NULL, never an error.
            format!("({col}->>'{key}')")
        } else {
            // A path into a document that is not an object is NULL, never an error;
            // text that is not JSON is an error, hence json_valid first.
            format!(
                "(CASE WHEN json_valid({col}) THEN CAST(json_extract({col}, '$.{key}') AS TEXT) END)"
            )
        }
    }

    /// The document in `col` has no `\u0000` escape: no text accessor of PostgreSQL can
    /// read one that has (`->>` fails for the whole document, whatever the key), so such
    /// a row is unparseable, found by a byte search before any parse. SQLite reads them,
    /// but counts them the same way, so that both backends give one answer.
    pub fn nul_free(&self, col: &str) -> String {
        if self.pg {
            format!("(strpos(CAST({col} AS TEXT), E'\\\\u0000') = 0)")
        } else {
            format!("(instr({col}, '\\u0000') = 0)")
        }
    }

    /// `expr` compared byte by byte (PostgreSQL's "C" collation): the same equality as
    /// any deterministic collation, and sorts and groups without the locale's strcoll.
    pub fn bytes(&self, expr: &str) -> String {
        if self.pg {
            format!("({expr} COLLATE \"C\")")
        } else {
            expr.to_owned()
        }
    }

    /// A timestamp literal.
    pub fn ts(&self, t: NaiveDateTime) -> String {
        let s = t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
        if self.pg {
            format!("TIMESTAMP '{s}'")
        } else {
            format!("'{s}'")
        }
    }

    /// `col >= t` / `col < t` for a timestamp column (SQLite stores text in more than
    /// one spelling, so it compares julian days).
    pub fn ts_cmp(&self, col: &str, op: &str, t: NaiveDateTime) -> String {
        if self.pg {
            format!("{col} {op} {}", self.ts(t))
        } else {
            format!("julianday({col}) {op} julianday({})", self.ts(t))
        }
    }

    /// A timestamp as ISO-8601 text.
    pub fn ts_text(&self, col: &str) -> String {
        if self.pg {
            format!("to_char({col}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')")
        } else {
            // Millisecond precision, padded to PostgreSQL's spelling.
            format!("(strftime('%Y-%m-%dT%H:%M:%f', {col}) || '000')")
        }
    }

    /// A JSON object built from (key, SQL expression) pairs, as text.
    pub fn obj(&self, pairs: &[(&str, String)]) -> String {
        let args: Vec<String> = pairs.iter().map(|(k, v)| format!("'{k}', {v}")).collect();
        if self.pg {
            format!("json_build_object({})::text", args.join(", "))
        } else {
            format!("json_object({})", args.join(", "))
        }
    }

    /// A boolean as a JSON true / false inside [`Dialect::obj`] (SQLite's are 0 / 1).
    pub fn boolean(&self, expr: &str) -> String {
        if self.pg {
            expr.to_owned()
        } else {
            format!("(CASE WHEN {expr} THEN json('true') WHEN NOT {expr} THEN json('false') END)")
        }
    }

    /// Comma-separated values of a group.
    pub fn agg(&self, expr: &str) -> String {
        if self.pg {
            format!("string_agg({expr}, ',' ORDER BY {expr})")
        } else {
            format!("group_concat({expr}, ',')")
        }
    }

    pub fn agg_distinct(&self, expr: &str) -> String {
        if self.pg {
            format!("string_agg(DISTINCT {expr}, ',')")
        } else {
            format!("group_concat(DISTINCT {expr})")
        }
    }

    /// A window frame over `ts` from this row to `seconds` later.
    pub fn following(&self, seconds: u32) -> String {
        if self.pg {
            format!(
                "ORDER BY ts RANGE BETWEEN CURRENT ROW AND INTERVAL '{seconds} seconds' FOLLOWING"
            )
        } else {
            format!(
                "ORDER BY julianday(ts) * 86400.0 RANGE BETWEEN CURRENT ROW AND {seconds} FOLLOWING"
            )
        }
    }

    /// A window frame over `ts` from `seconds` earlier to this row.
    pub fn preceding(&self, seconds: u32) -> String {
        if self.pg {
            format!(
                "ORDER BY ts RANGE BETWEEN INTERVAL '{seconds} seconds' PRECEDING AND CURRENT ROW"
            )
        } else {
            format!(
                "ORDER BY julianday(ts) * 86400.0 RANGE BETWEEN {seconds} PRECEDING AND CURRENT ROW"
            )
        }
    }

    /// True when any row of the group is: `bool_or` (SQLite: booleans are 0 / 1).
    pub fn bool_or(&self, expr: &str) -> String {
        if self.pg {
            format!("bool_or({expr})")
        } else {
            format!("MAX({expr})")
        }
    }

    /// `a` and `b` differ, NULL counting as a value.
    pub fn distinct_from(&self, a: &str, b: &str) -> String {
        if self.pg {
            format!("{a} IS DISTINCT FROM {b}")
        } else {
            format!("{a} IS NOT {b}")
        }
    }

    /// The hour timestamp `col` falls in.
    pub fn hour(&self, col: &str) -> String {
        if self.pg {
            format!("date_trunc('hour', {col})")
        } else {
            format!("(CAST(strftime('%s', {col}) AS INTEGER) / 3600)")
        }
    }

    /// The hour before hour `h` (a value of [`Dialect::hour`]).
    pub fn previous_hour(&self, h: &str) -> String {
        if self.pg {
            format!("{h} - INTERVAL '1 hour'")
        } else {
            format!("{h} - 1")
        }
    }

    /// A NULL timestamp (a branch of a UNION without one).
    pub fn null_ts(&self) -> &'static str {
        if self.pg {
            "CAST(NULL AS TIMESTAMP)"
        } else {
            "NULL"
        }
    }

    /// Timestamp `a` is later than timestamp `b` (both SQL expressions).
    pub fn later(&self, a: &str, b: &str) -> String {
        if self.pg {
            format!("{a} > {b}")
        } else {
            format!("julianday({a}) > julianday({b})")
        }
    }

    /// The texts of the JSON array `param` (a bound parameter), as a subquery: for
    /// `x IN (...)`.
    pub fn json_text_set(&self, param: &str) -> String {
        if self.is_pg() {
            format!("SELECT json_array_elements_text(CAST({param} AS json))")
        } else {
            format!("SELECT value FROM json_each({param})")
        }
    }

    /// `AND col = 'org'` when filtering by org (the id is validated; quoted anyway).
    pub fn org_filter(&self, col: &str, org: Option<&str>) -> String {
        org.map(|o| format!(" AND {col} = {}", quote_literal(o)))
            .unwrap_or_default()
    }
}
