//! Expected vs live schema: findings with a severity and, where it is safe, the SQL
//! that brings the object in line.

use serde::Serialize;

use super::model::{Column, Constraint, ForeignKey, Index, Schema, Table};

/// Tables the bookkeeping owns: known, never "extra".
pub const BOOKKEEPING_TABLES: [&str; 2] = ["seaql_migrations", "alembic_version"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// The group a finding is reported under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Tables,
    Columns,
    PrimaryKeys,
    ForeignKeys,
    UniqueConstraints,
    Indexes,
    Enums,
}

impl Check {
    pub const ALL: [Check; 7] = [
        Check::Tables,
        Check::Columns,
        Check::PrimaryKeys,
        Check::ForeignKeys,
        Check::UniqueConstraints,
        Check::Indexes,
        Check::Enums,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Check::Tables => "tables",
            Check::Columns => "columns",
            Check::PrimaryKeys => "primary keys",
            Check::ForeignKeys => "foreign keys",
            Check::UniqueConstraints => "unique constraints",
            Check::Indexes => "indexes",
            Check::Enums => "enums",
        }
    }
}

/// One difference between the expected and the live schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Drift {
    pub check: Check,
    /// e.g. `table_missing`, `column_type`, `enum_labels` (see docs/migrations.md).
    pub kind: &'static str,
    /// The table concerned (None for enum types).
    pub table: Option<String>,
    /// The object: `users.email`, `ix_events_org_ts`, `role`, ...
    pub object: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
    pub severity: Severity,
    /// SQL that brings the object in line, where that is safe; None otherwise.
    pub fix_sql: Option<String>,
}

struct Ctx {
    pg: bool,
    out: Vec<Drift>,
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        check: Check,
        kind: &'static str,
        table: Option<&str>,
        object: impl Into<String>,
        expected: Option<String>,
        actual: Option<String>,
        severity: Severity,
        fix_sql: Option<String>,
    ) {
        self.out.push(Drift {
            check,
            kind,
            table: table.map(str::to_owned),
            object: object.into(),
            expected,
            actual,
            severity,
            fix_sql,
        });
    }

    /// Something live that the expected schema does not have: a warning, no fix.
    fn extra(
        &mut self,
        check: Check,
        kind: &'static str,
        table: &str,
        object: String,
        actual: String,
    ) {
        self.push(
            check,
            kind,
            Some(table),
            object,
            None,
            Some(actual),
            Severity::Warning,
            None,
        );
    }

    /// A fix that only PostgreSQL can apply in place (SQLite needs a table rebuild).
    fn pg_only(&self, sql: String) -> Option<String> {
        self.pg.then_some(sql)
    }
}

/// Compare `live` against `expected`. `pg`: the backend is PostgreSQL (names of
/// constraints and enum types are checked, fixes use its ALTER syntax).
pub fn diff(expected: &Schema, live: &Schema, pg: bool) -> Vec<Drift> {
    let mut cx = Ctx {
        pg,
        out: Vec::new(),
    };
    for (name, exp) in &expected.tables {
        match live.tables.get(name) {
            None => cx.push(
                Check::Tables,
                "table_missing",
                Some(name),
                name.clone(),
                Some("present".into()),
                Some("missing".into()),
                Severity::Error,
                Some(create_table_sql(exp)),
            ),
            Some(act) => diff_table(&mut cx, exp, act),
        }
    }
    for name in live.tables.keys() {
        if !expected.tables.contains_key(name) && !BOOKKEEPING_TABLES.contains(&name.as_str()) {
            cx.push(
                Check::Tables,
                "table_extra",
                Some(name),
                name.clone(),
                None,
                Some("present".into()),
                Severity::Warning,
                None,
            );
        }
    }
    if pg {
        diff_enums(&mut cx, expected, live);
    }
    cx.out
}

fn list(cols: &[String]) -> String {
    cols.join(", ")
}

fn idents(cols: &[String]) -> String {
    cols.iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

fn diff_table(cx: &mut Ctx, exp: &Table, act: &Table) {
    diff_columns(cx, exp, act);
    diff_primary_key(cx, exp, act);
    diff_uniques(cx, exp, act);
    diff_foreign_keys(cx, exp, act);
    diff_indexes(cx, exp, act);
}

fn diff_columns(cx: &mut Ctx, exp: &Table, act: &Table) {
    let t = exp.name.as_str();
    for col in &exp.columns {
        diff_column(cx, exp, act, col);
    }
    for col in &act.columns {
        if exp.column(&col.name).is_none() {
            cx.extra(
                Check::Columns,
                "column_extra",
                t,
                format!("{t}.{}", col.name),
                describe_column(col),
            );
        }
    }
}

/// One expected column against the live table: presence, type, nullability,
/// default and (SQLite) the CHECK carrying an enum's labels.
fn diff_column(cx: &mut Ctx, exp: &Table, act: &Table, col: &Column) {
    let t = exp.name.as_str();
    let qt = quote_ident(t);
    let object = format!("{t}.{}", col.name);
    let Some(live) = act.column(&col.name) else {
        cx.push(
            Check::Columns,
            "column_missing",
            Some(t),
            object,
            Some(describe_column(col)),
            Some("missing".into()),
            Severity::Error,
            Some(format!("ALTER TABLE {qt} ADD COLUMN {}", column_def(col))),
        );
        return;
    };
    diff_column_attributes(cx, t, col, live);
    diff_enum_labels(cx, exp, act, col);
}

/// Type, nullability and default of a column present on both sides.
fn diff_column_attributes(cx: &mut Ctx, t: &str, col: &Column, live: &Column) {
    let qt = quote_ident(t);
    let object = format!("{t}.{}", col.name);
    let qc = quote_ident(&col.name);
    if live.data_type != col.data_type {
        let fix = cx.pg_only(format!(
            "ALTER TABLE {qt} ALTER COLUMN {qc} TYPE {ty} USING {qc}::{ty}",
            ty = col.data_type
        ));
        cx.push(
            Check::Columns,
            "column_type",
            Some(t),
            object.clone(),
            Some(col.data_type.clone()),
            Some(live.data_type.clone()),
            Severity::Error,
            fix,
        );
    }
    if live.nullable != col.nullable {
        let fix = cx.pg_only(format!(
            "ALTER TABLE {qt} ALTER COLUMN {qc} {} NOT NULL",
            if col.nullable { "DROP" } else { "SET" }
        ));
        cx.push(
            Check::Columns,
            "column_nullability",
            Some(t),
            object.clone(),
            Some(nullability(col.nullable)),
            Some(nullability(live.nullable)),
            Severity::Error,
            fix,
        );
    }
    if live.default != col.default {
        let fix = match &col.default {
            None => cx.pg_only(format!("ALTER TABLE {qt} ALTER COLUMN {qc} DROP DEFAULT")),
            Some(d) => cx.pg_only(format!(
                "ALTER TABLE {qt} ALTER COLUMN {qc} SET DEFAULT {d}"
            )),
        };
        cx.push(
            Check::Columns,
            "column_default",
            Some(t),
            object.clone(),
            Some(col.default.clone().unwrap_or_else(|| "no default".into())),
            Some(live.default.clone().unwrap_or_else(|| "no default".into())),
            Severity::Error,
            fix,
        );
    }
}

/// SQLite: enum-like columns carry their labels in a CHECK.
fn diff_enum_labels(cx: &mut Ctx, exp: &Table, act: &Table, col: &Column) {
    let t = exp.name.as_str();
    let object = format!("{t}.{}", col.name);
    if let Some(labels) = exp.checks.get(&col.name)
        && act.checks.get(&col.name) != Some(labels)
    {
        cx.push(
            Check::Enums,
            "enum_labels",
            Some(t),
            object.clone(),
            Some(list(labels)),
            Some(
                act.checks
                    .get(&col.name)
                    .map(|l| list(l))
                    .unwrap_or_else(|| "no CHECK".into()),
            ),
            Severity::Error,
            None,
        );
    }
}

fn diff_primary_key(cx: &mut Ctx, exp: &Table, act: &Table) {
    let t = exp.name.as_str();
    let qt = quote_ident(t);
    match (&exp.primary_key, &act.primary_key) {
        (Some(e), None) => cx.push(
            Check::PrimaryKeys,
            "primary_key_missing",
            Some(t),
            e.name.clone().unwrap_or_else(|| format!("{t} primary key")),
            Some(list(&e.columns)),
            Some("missing".into()),
            Severity::Error,
            cx.pg_only(format!(
                "ALTER TABLE {qt} ADD {}PRIMARY KEY ({})",
                constraint_prefix(e),
                idents(&e.columns)
            )),
        ),
        (Some(e), Some(a)) => {
            if e.columns != a.columns {
                let drop = a
                    .name
                    .as_ref()
                    .map(|n| format!("ALTER TABLE {qt} DROP CONSTRAINT {}; ", quote_ident(n)));
                let fix = drop.and_then(|d| {
                    cx.pg_only(format!(
                        "{d}ALTER TABLE {qt} ADD {}PRIMARY KEY ({})",
                        constraint_prefix(e),
                        idents(&e.columns)
                    ))
                });
                cx.push(
                    Check::PrimaryKeys,
                    "primary_key_columns",
                    Some(t),
                    e.name.clone().unwrap_or_else(|| format!("{t} primary key")),
                    Some(list(&e.columns)),
                    Some(list(&a.columns)),
                    Severity::Error,
                    fix,
                );
            } else {
                constraint_name(cx, Check::PrimaryKeys, t, e, a);
            }
        }
        _ => {}
    }
}

/// Unique constraints, matched by columns.
fn diff_uniques(cx: &mut Ctx, exp: &Table, act: &Table) {
    let t = exp.name.as_str();
    let qt = quote_ident(t);
    for e in &exp.uniques {
        match act.uniques.iter().find(|a| a.columns == e.columns) {
            None => cx.push(
                Check::UniqueConstraints,
                "unique_missing",
                Some(t),
                e.name
                    .clone()
                    .unwrap_or_else(|| format!("{t} unique ({})", list(&e.columns))),
                Some(format!("UNIQUE ({})", list(&e.columns))),
                Some("missing".into()),
                Severity::Error,
                cx.pg_only(format!(
                    "ALTER TABLE {qt} ADD {}UNIQUE ({})",
                    constraint_prefix(e),
                    idents(&e.columns)
                )),
            ),
            Some(a) => constraint_name(cx, Check::UniqueConstraints, t, e, a),
        }
    }
    for a in &act.uniques {
        if !exp.uniques.iter().any(|e| e.columns == a.columns) {
            cx.extra(
                Check::UniqueConstraints,
                "unique_extra",
                t,
                a.name
                    .clone()
                    .unwrap_or_else(|| format!("{t} unique ({})", list(&a.columns))),
                format!("UNIQUE ({})", list(&a.columns)),
            );
        }
    }
}

/// Foreign keys, matched by columns.
fn diff_foreign_keys(cx: &mut Ctx, exp: &Table, act: &Table) {
    let t = exp.name.as_str();
    let qt = quote_ident(t);
    for e in &exp.foreign_keys {
        let target = |f: &ForeignKey| format!("{}({})", f.ref_table, list(&f.ref_columns));
        let add = format!(
            "ALTER TABLE {qt} ADD {}FOREIGN KEY ({}) REFERENCES {}({})",
            e.name
                .as_ref()
                .map(|n| format!("CONSTRAINT {} ", quote_ident(n)))
                .unwrap_or_default(),
            idents(&e.columns),
            quote_ident(&e.ref_table),
            idents(&e.ref_columns)
        );
        let object = e
            .name
            .clone()
            .unwrap_or_else(|| format!("{t}({}) foreign key", list(&e.columns)));
        match act.foreign_keys.iter().find(|a| a.columns == e.columns) {
            None => cx.push(
                Check::ForeignKeys,
                "foreign_key_missing",
                Some(t),
                object,
                Some(format!("({}) -> {}", list(&e.columns), target(e))),
                Some("missing".into()),
                Severity::Error,
                cx.pg_only(add),
            ),
            Some(a) if a.ref_table != e.ref_table || a.ref_columns != e.ref_columns => {
                let fix = a.name.as_ref().and_then(|n| {
                    cx.pg_only(format!(
                        "ALTER TABLE {qt} DROP CONSTRAINT {}; {add}",
                        quote_ident(n)
                    ))
                });
                cx.push(
                    Check::ForeignKeys,
                    "foreign_key_target",
                    Some(t),
                    object,
                    Some(target(e)),
                    Some(target(a)),
                    Severity::Error,
                    fix,
                );
            }
            Some(a) => {
                if cx.pg && a.name != e.name {
                    rename_constraint(
                        cx,
                        Check::ForeignKeys,
                        t,
                        e.name.as_deref(),
                        a.name.as_deref(),
                    );
                }
            }
        }
    }
    for a in &act.foreign_keys {
        if !exp.foreign_keys.iter().any(|e| e.columns == a.columns) {
            cx.extra(
                Check::ForeignKeys,
                "foreign_key_extra",
                t,
                a.name
                    .clone()
                    .unwrap_or_else(|| format!("{t}({}) foreign key", list(&a.columns))),
                format!(
                    "({}) -> {}({})",
                    list(&a.columns),
                    a.ref_table,
                    list(&a.ref_columns)
                ),
            );
        }
    }
}

/// Indexes: by name, else by columns (a renamed index).
fn diff_indexes(cx: &mut Ctx, exp: &Table, act: &Table) {
    let t = exp.name.as_str();
    let mut matched: Vec<&str> = Vec::new();
    for e in &exp.indexes {
        let create = create_index_sql(t, e);
        match act.indexes.iter().find(|a| a.name == e.name) {
            Some(a) => {
                matched.push(&a.name);
                let changed = if a.columns != e.columns {
                    Some(("index_columns", list(&e.columns), list(&a.columns)))
                } else if a.unique != e.unique {
                    Some(("index_unique", uniqueness(e.unique), uniqueness(a.unique)))
                } else {
                    None
                };
                if let Some((kind, expected, actual)) = changed {
                    let fix = format!("DROP INDEX {}; {create}", quote_ident(&e.name));
                    cx.push(
                        Check::Indexes,
                        kind,
                        Some(t),
                        e.name.clone(),
                        Some(expected),
                        Some(actual),
                        Severity::Error,
                        Some(fix),
                    );
                }
            }
            None => match act.indexes.iter().find(|a| {
                a.columns == e.columns
                    && a.unique == e.unique
                    && !exp.indexes.iter().any(|x| x.name == a.name)
            }) {
                Some(a) => {
                    matched.push(&a.name);
                    cx.push(
                        Check::Indexes,
                        "index_name",
                        Some(t),
                        e.name.clone(),
                        Some(e.name.clone()),
                        Some(a.name.clone()),
                        Severity::Error,
                        cx.pg_only(format!(
                            "ALTER INDEX {} RENAME TO {}",
                            quote_ident(&a.name),
                            quote_ident(&e.name)
                        )),
                    );
                }
                None => cx.push(
                    Check::Indexes,
                    "index_missing",
                    Some(t),
                    e.name.clone(),
                    Some(format!("({})", list(&e.columns))),
                    Some("missing".into()),
                    Severity::Error,
                    Some(create),
                ),
            },
        }
    }
    for a in &act.indexes {
        if !matched.contains(&a.name.as_str()) {
            cx.extra(
                Check::Indexes,
                "index_extra",
                t,
                a.name.clone(),
                format!(
                    "{}({})",
                    if a.unique { "UNIQUE " } else { "" },
                    list(&a.columns)
                ),
            );
        }
    }
}

fn constraint_name(cx: &mut Ctx, check: Check, table: &str, e: &Constraint, a: &Constraint) {
    if cx.pg && e.name != a.name {
        rename_constraint(cx, check, table, e.name.as_deref(), a.name.as_deref());
    }
}

fn rename_constraint(
    cx: &mut Ctx,
    check: Check,
    table: &str,
    expected: Option<&str>,
    actual: Option<&str>,
) {
    let (Some(e), Some(a)) = (expected, actual) else {
        return;
    };
    cx.push(
        check,
        "constraint_name",
        Some(table),
        e.to_owned(),
        Some(e.to_owned()),
        Some(a.to_owned()),
        Severity::Error,
        Some(format!(
            "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
            quote_ident(table),
            quote_ident(a),
            quote_ident(e)
        )),
    );
}

fn diff_enums(cx: &mut Ctx, expected: &Schema, live: &Schema) {
    for (name, labels) in &expected.enums {
        let q = quote_ident(name);
        match live.enums.get(name) {
            None => cx.push(
                Check::Enums,
                "enum_missing",
                None,
                name.clone(),
                Some(list(labels)),
                Some("missing".into()),
                Severity::Error,
                Some(format!(
                    "CREATE TYPE {q} AS ENUM ({})",
                    labels
                        .iter()
                        .map(|l| quote_literal(l))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ),
            Some(actual) if actual != labels => {
                cx.push(
                    Check::Enums,
                    "enum_labels",
                    None,
                    name.clone(),
                    Some(list(labels)),
                    Some(list(actual)),
                    Severity::Error,
                    enum_fix(&q, labels, actual),
                );
            }
            _ => {}
        }
    }
    for name in live.enums.keys() {
        if !expected.enums.contains_key(name) {
            cx.push(
                Check::Enums,
                "enum_extra",
                None,
                name.clone(),
                None,
                Some(list(&live.enums[name])),
                Severity::Warning,
                None,
            );
        }
    }
}

/// Labels that differ only in case, in the same order: rename them. Labels missing at the
/// end: add them. Anything else (reordered, extra labels) has no safe in-place fix.
fn enum_fix(q: &str, expected: &[String], actual: &[String]) -> Option<String> {
    let common = expected.len().min(actual.len());
    if actual.len() > expected.len() {
        return None;
    }
    let mut stmts = Vec::new();
    for i in 0..common {
        if expected[i] == actual[i] {
            continue;
        }
        if expected[i].eq_ignore_ascii_case(&actual[i]) {
            stmts.push(format!(
                "ALTER TYPE {q} RENAME VALUE {} TO {}",
                quote_literal(&actual[i]),
                quote_literal(&expected[i])
            ));
        } else {
            return None;
        }
    }
    for label in &expected[common..] {
        stmts.push(format!("ALTER TYPE {q} ADD VALUE {}", quote_literal(label)));
    }
    Some(stmts.join("; "))
}

fn describe_column(c: &Column) -> String {
    let mut s = format!("{} {}", c.data_type, nullability(c.nullable));
    if let Some(d) = &c.default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    s
}

fn nullability(nullable: bool) -> String {
    if nullable { "NULL" } else { "NOT NULL" }.to_owned()
}

fn uniqueness(unique: bool) -> String {
    if unique { "unique" } else { "not unique" }.to_owned()
}

fn column_def(c: &Column) -> String {
    let mut s = format!("{} {}", quote_ident(&c.name), c.data_type);
    if !c.nullable {
        s.push_str(" NOT NULL");
    }
    if let Some(d) = &c.default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    s
}

fn constraint_prefix(c: &Constraint) -> String {
    c.name
        .as_ref()
        .map(|n| format!("CONSTRAINT {} ", quote_ident(n)))
        .unwrap_or_default()
}

fn create_index_sql(table: &str, i: &Index) -> String {
    format!(
        "CREATE {}INDEX {} ON {} ({})",
        if i.unique { "UNIQUE " } else { "" },
        quote_ident(&i.name),
        quote_ident(table),
        idents(&i.columns)
    )
}

/// CREATE TABLE for a missing table, with its keys; its indexes follow.
fn create_table_sql(t: &Table) -> String {
    let mut parts: Vec<String> = t.columns.iter().map(column_def).collect();
    for (col, labels) in &t.checks {
        parts.push(format!(
            "CHECK ({} IN ({}))",
            quote_ident(col),
            labels
                .iter()
                .map(|l| quote_literal(l))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(pk) = &t.primary_key {
        parts.push(format!(
            "{}PRIMARY KEY ({})",
            constraint_prefix(pk),
            idents(&pk.columns)
        ));
    }
    for u in &t.uniques {
        parts.push(format!(
            "{}UNIQUE ({})",
            constraint_prefix(u),
            idents(&u.columns)
        ));
    }
    for f in &t.foreign_keys {
        parts.push(format!(
            "{}FOREIGN KEY ({}) REFERENCES {}({})",
            f.name
                .as_ref()
                .map(|n| format!("CONSTRAINT {} ", quote_ident(n)))
                .unwrap_or_default(),
            idents(&f.columns),
            quote_ident(&f.ref_table),
            idents(&f.ref_columns)
        ));
    }
    let mut sql = format!(
        "CREATE TABLE {} ({})",
        quote_ident(&t.name),
        parts.join(", ")
    );
    for i in &t.indexes {
        sql.push_str("; ");
        sql.push_str(&create_index_sql(&t.name, i));
    }
    sql
}

/// Quote an identifier when PostgreSQL or SQLite would need it.
pub fn quote_ident(s: &str) -> String {
    const RESERVED: [&str; 14] = [
        "user",
        "order",
        "table",
        "select",
        "group",
        "default",
        "check",
        "column",
        "primary",
        "references",
        "unique",
        "from",
        "where",
        "to",
    ];
    let plain = !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !RESERVED.contains(&s);
    if plain {
        s.to_owned()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

pub use crate::db::quote_literal;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::snapshots::expected;
    use sea_orm::DbBackend;

    const BACKENDS: [DbBackend; 2] = [DbBackend::Postgres, DbBackend::Sqlite];

    fn head(backend: DbBackend) -> Schema {
        expected(crate::migrations::known().len() - 1, backend)
    }

    /// Every mutation of one object of the head schema, on each backend: the diff has
    /// exactly one finding, of the expected kind, on that object, with that severity.
    /// `mutate` returns None when the mutation does not apply (the object has no
    /// such part), and the (kind, object, severity) it must produce otherwise.
    fn each_mutation(
        what: &str,
        mutate: impl Fn(&mut Schema, &str, usize, bool) -> Option<(&'static str, String, Severity)>,
    ) {
        let mut cases = 0;
        for backend in BACKENDS {
            let pg = backend == DbBackend::Postgres;
            let exp = head(backend);
            for table in exp.tables.keys() {
                for i in 0..exp.tables[table].columns.len().max(8) {
                    let mut live = exp.clone();
                    let Some((kind, object, severity)) = mutate(&mut live, table, i, pg) else {
                        continue;
                    };
                    cases += 1;
                    let f = diff(&exp, &live, pg);
                    assert_eq!(f.len(), 1, "{what} {table}#{i} on {backend:?}: {f:#?}");
                    assert_eq!(
                        (f[0].kind, f[0].object.as_str(), f[0].severity),
                        (kind, object.as_str(), severity),
                        "{what} {table}#{i} on {backend:?}"
                    );
                }
            }
        }
        assert!(cases > 0, "{what}: no object to mutate");
    }

    #[test]
    fn every_table_missing_or_extra() {
        each_mutation("drop table", |s, t, i, _| {
            (i == 0).then(|| {
                s.tables.remove(t);
                ("table_missing", t.to_owned(), Severity::Error)
            })
        });
        each_mutation("extra table", |s, t, i, _| {
            (i == 0).then(|| {
                let name = format!("{t}_copy");
                let mut copy = s.tables[t].clone();
                copy.name = name.clone();
                s.tables.insert(name.clone(), copy);
                ("table_extra", name, Severity::Warning)
            })
        });
    }

    #[test]
    fn every_column_missing_retyped_renulled_redefaulted_or_extra() {
        let col = |s: &mut Schema, t: &str, i: usize| -> Option<String> {
            s.tables[t].columns.get(i).map(|c| c.name.clone())
        };
        each_mutation("drop column", |s, t, i, _| {
            let c = col(s, t, i)?;
            let table = s.tables.get_mut(t).unwrap();
            table.columns.remove(i);
            table.checks.remove(&c);
            Some(("column_missing", format!("{t}.{c}"), Severity::Error))
        });
        each_mutation("retype column", |s, t, i, _| {
            let c = col(s, t, i)?;
            s.tables.get_mut(t).unwrap().columns[i].data_type = "bytea".into();
            Some(("column_type", format!("{t}.{c}"), Severity::Error))
        });
        each_mutation("flip nullability", |s, t, i, _| {
            let c = col(s, t, i)?;
            let column = &mut s.tables.get_mut(t).unwrap().columns[i];
            column.nullable = !column.nullable;
            Some(("column_nullability", format!("{t}.{c}"), Severity::Error))
        });
        each_mutation("change default", |s, t, i, _| {
            let c = col(s, t, i)?;
            s.tables.get_mut(t).unwrap().columns[i].default = Some("'drift'".into());
            Some(("column_default", format!("{t}.{c}"), Severity::Error))
        });
        each_mutation("extra column", |s, t, i, _| {
            (i == 0).then(|| {
                let mut extra = s.tables[t].columns[0].clone();
                extra.name = "zz_extra".into();
                s.tables.get_mut(t).unwrap().columns.push(extra);
                ("column_extra", format!("{t}.zz_extra"), Severity::Warning)
            })
        });
    }

    #[test]
    fn every_key_missing_or_changed() {
        each_mutation("drop primary key", |s, t, i, _| {
            let table = s.tables.get_mut(t).unwrap();
            let pk = table.primary_key.take().filter(|_| i == 0)?;
            let object = pk.name.unwrap_or_else(|| format!("{t} primary key"));
            Some(("primary_key_missing", object, Severity::Error))
        });
        each_mutation("drop unique", |s, t, i, _| {
            let table = s.tables.get_mut(t).unwrap();
            (i < table.uniques.len()).then(|| {
                let u = table.uniques.remove(i);
                let object = u
                    .name
                    .unwrap_or_else(|| format!("{t} unique ({})", list(&u.columns)));
                ("unique_missing", object, Severity::Error)
            })
        });
        each_mutation("drop foreign key", |s, t, i, _| {
            let table = s.tables.get_mut(t).unwrap();
            (i < table.foreign_keys.len()).then(|| {
                let f = table.foreign_keys.remove(i);
                let object = f
                    .name
                    .unwrap_or_else(|| format!("{t}({}) foreign key", list(&f.columns)));
                ("foreign_key_missing", object, Severity::Error)
            })
        });
        each_mutation("retarget foreign key", |s, t, i, _| {
            let table = s.tables.get_mut(t).unwrap();
            let f = table.foreign_keys.get_mut(i)?;
            f.ref_table = "elsewhere".into();
            let object = f
                .name
                .clone()
                .unwrap_or_else(|| format!("{t}({}) foreign key", list(&f.columns)));
            Some(("foreign_key_target", object, Severity::Error))
        });
    }

    #[test]
    fn every_index_missing_renamed_changed_or_extra() {
        each_mutation("drop index", |s, t, i, _| {
            let table = s.tables.get_mut(t).unwrap();
            (i < table.indexes.len()).then(|| {
                (
                    "index_missing",
                    table.indexes.remove(i).name,
                    Severity::Error,
                )
            })
        });
        each_mutation("rename index", |s, t, i, _| {
            let index = s.tables.get_mut(t).unwrap().indexes.get_mut(i)?;
            let name = std::mem::replace(&mut index.name, "ix_renamed".into());
            Some(("index_name", name, Severity::Error))
        });
        each_mutation("flip index uniqueness", |s, t, i, _| {
            let index = s.tables.get_mut(t).unwrap().indexes.get_mut(i)?;
            index.unique = !index.unique;
            Some(("index_unique", index.name.clone(), Severity::Error))
        });
        each_mutation("index other columns", |s, t, i, _| {
            let index = s.tables.get_mut(t).unwrap().indexes.get_mut(i)?;
            index.columns.reverse();
            index.columns.push("id".into());
            Some(("index_columns", index.name.clone(), Severity::Error))
        });
        each_mutation("extra index", |s, t, i, _| {
            (i == 0).then(|| {
                let table = s.tables.get_mut(t).unwrap();
                let first = table.columns[0].name.clone();
                table.indexes.push(Index {
                    name: "ix_zz_extra".into(),
                    columns: vec![first],
                    unique: false,
                });
                ("index_extra", "ix_zz_extra".to_owned(), Severity::Warning)
            })
        });
    }

    #[test]
    fn every_enum_label_set_changed() {
        // SQLite: the labels live in a CHECK per column.
        each_mutation("check labels", |s, t, i, pg| {
            if pg {
                return None;
            }
            let table = s.tables.get_mut(t).unwrap();
            let col = table.checks.keys().nth(i)?.clone();
            table.checks.get_mut(&col).unwrap().reverse();
            Some(("enum_labels", format!("{t}.{col}"), Severity::Error))
        });
        // PostgreSQL: enum types.
        let exp = head(DbBackend::Postgres);
        assert!(!exp.enums.is_empty());
        for name in exp.enums.keys() {
            let mut live = exp.clone();
            live.enums.get_mut(name).unwrap().push("extra_label".into());
            let f = diff(&exp, &live, true);
            assert_eq!(f.len(), 1, "{name}: {f:#?}");
            assert_eq!(
                (f[0].kind, f[0].object.as_str()),
                ("enum_labels", name.as_str())
            );
        }
    }

    #[test]
    fn expected_has_no_findings_against_itself() {
        for v in 0..2 {
            for b in [DbBackend::Postgres, DbBackend::Sqlite] {
                let e = expected(v, b);
                assert!(diff(&e, &e, b == DbBackend::Postgres).is_empty());
            }
        }
    }

    #[test]
    fn uppercase_enum_labels_get_rename_fixes() {
        let e = expected(1, DbBackend::Postgres);
        let mut live = e.clone();
        live.enums.insert(
            "role".into(),
            ["OWNER", "ADMIN", "ANALYST", "VIEWER", "BILLING"]
                .map(String::from)
                .to_vec(),
        );
        let f = diff(&e, &live, true);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, "enum_labels");
        let fix = f[0].fix_sql.as_deref().unwrap();
        assert!(
            fix.starts_with("ALTER TYPE role RENAME VALUE 'OWNER' TO 'owner'"),
            "{fix}"
        );
        assert_eq!(fix.matches("RENAME VALUE").count(), 5);
    }

    #[test]
    fn version_001_lacks_password_hash() {
        let f = diff(
            &expected(0, DbBackend::Postgres),
            &expected(1, DbBackend::Postgres),
            true,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, "column_extra");
        assert_eq!(f[0].object, "users.password_hash");
        let f = diff(
            &expected(1, DbBackend::Postgres),
            &expected(0, DbBackend::Postgres),
            true,
        );
        assert_eq!(f[0].kind, "column_missing");
        assert_eq!(
            f[0].fix_sql.as_deref(),
            Some("ALTER TABLE users ADD COLUMN password_hash character varying")
        );
    }
}
