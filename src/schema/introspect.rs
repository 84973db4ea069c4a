//! Read the live schema from the catalog: five queries on PostgreSQL (pg_catalog) and
//! three on SQLite (table-valued pragmas joined to sqlite_master), however many tables
//! the database has. Every table is listed by name; columns, constraints and indexes are
//! read only for the tables of interest, so thousands of unrelated tables cost little.
//! Read-only.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};

use super::model::{Column, Constraint, ForeignKey, Index, Schema, Table};
use crate::db::quote_literal;
use crate::error::{Error, Result};

/// The live schema and how many catalog queries it took.
pub struct Introspection {
    pub schema: Schema,
    pub queries: usize,
}

/// Introspect the current schema; `tables` are the tables read in detail.
pub async fn introspect<C: ConnectionTrait>(conn: &C, tables: &[String]) -> Result<Introspection> {
    // The names are ours (the expected schema's); quoted as literals all the same.
    let list = if tables.is_empty() {
        "NULL".to_owned()
    } else {
        tables
            .iter()
            .map(|t| quote_literal(t))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match conn.get_database_backend() {
        DbBackend::Postgres => postgres(conn, &list).await,
        _ => sqlite(conn, &list).await,
    }
}

async fn query<C: ConnectionTrait>(conn: &C, sql: &str, tables: &str) -> Result<Vec<QueryResult>> {
    let sql = sql.replace("{TABLES}", tables);
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .map_err(|e| Error::from_db(e, "reading the catalog"))
}

fn get<T: sea_orm::TryGetable>(row: &QueryResult, col: &str) -> Result<T> {
    row.try_get("", col)
        .map_err(|e| Error::from_db(e, &format!("reading the catalog column {col}")))
}

fn table<'a>(schema: &'a mut Schema, name: &str) -> &'a mut Table {
    schema
        .tables
        .entry(name.to_owned())
        .or_insert_with(|| Table {
            name: name.to_owned(),
            ..Default::default()
        })
}

/// Columns of the tables of interest.
const PG_COLUMNS: &str = "\
SELECT c.relname::text AS table_name, a.attname::text AS column_name, \
       format_type(a.atttypid, a.atttypmod) AS data_type, \
       NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default_expr \
FROM pg_catalog.pg_class c \
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum \
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname IN ({TABLES}) \
ORDER BY c.relname, a.attnum";

/// The names of every other table, as one array (one row, however many tables).
const PG_OTHER_TABLES: &str = "\
SELECT COALESCE(array_agg(c.relname::text ORDER BY c.relname), '{}') AS names \
FROM pg_catalog.pg_class c \
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname NOT IN ({TABLES})";

const PG_CONSTRAINTS: &str = "\
SELECT c.relname::text AS table_name, con.conname::text AS name, con.contype::text AS kind, \
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
             ORDER BY k.ord) AS columns, \
       fc.relname::text AS ref_table, \
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum \
             ORDER BY k.ord) AS ref_columns \
FROM pg_catalog.pg_constraint con \
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid \
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid \
WHERE n.nspname = current_schema() AND con.contype IN ('p', 'u', 'f') AND c.relname IN ({TABLES}) \
ORDER BY c.relname, con.conname";

/// Indexes that do not back a constraint (those are reported as constraints).
const PG_INDEXES: &str = "\
SELECT t.relname::text AS table_name, i.relname::text AS name, ix.indisunique AS is_unique, \
       ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k.ord::int, true) \
             FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(attnum, ord) ORDER BY k.ord) AS columns \
FROM pg_catalog.pg_index ix \
JOIN pg_catalog.pg_class i ON i.oid = ix.indexrelid \
JOIN pg_catalog.pg_class t ON t.oid = ix.indrelid \
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace \
WHERE n.nspname = current_schema() AND t.relname IN ({TABLES}) \
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con \
                  WHERE con.conrelid = ix.indrelid AND con.conindid = ix.indexrelid \
                    AND con.contype IN ('p', 'u', 'x')) \
ORDER BY t.relname, i.relname";

const PG_ENUMS: &str = "\
SELECT t.typname::text AS name, e.enumlabel::text AS label \
FROM pg_catalog.pg_type t \
JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid \
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
WHERE n.nspname = current_schema() \
ORDER BY t.typname, e.enumsortorder";

async fn postgres<C: ConnectionTrait>(conn: &C, tables: &str) -> Result<Introspection> {
    let mut schema = Schema::default();
    for row in query(conn, PG_COLUMNS, tables).await? {
        let t: String = get(&row, "table_name")?;
        let column: Option<String> = get(&row, "column_name")?;
        let entry = table(&mut schema, &t);
        if let Some(name) = column {
            entry.columns.push(Column {
                name,
                data_type: get(&row, "data_type")?,
                nullable: get(&row, "nullable")?,
                default: get(&row, "default_expr")?,
            });
        }
    }
    for row in query(conn, PG_OTHER_TABLES, tables).await? {
        let names: Vec<String> = get(&row, "names")?;
        for name in names {
            table(&mut schema, &name);
        }
    }
    for row in query(conn, PG_CONSTRAINTS, tables).await? {
        let t: String = get(&row, "table_name")?;
        let name: String = get(&row, "name")?;
        let kind: String = get(&row, "kind")?;
        let columns: Vec<String> = get(&row, "columns")?;
        let entry = table(&mut schema, &t);
        match kind.as_str() {
            "p" => {
                entry.primary_key = Some(Constraint {
                    name: Some(name),
                    columns,
                })
            }
            "u" => entry.uniques.push(Constraint {
                name: Some(name),
                columns,
            }),
            _ => entry.foreign_keys.push(ForeignKey {
                name: Some(name),
                columns,
                ref_table: get::<Option<String>>(&row, "ref_table")?.unwrap_or_default(),
                ref_columns: get(&row, "ref_columns")?,
            }),
        }
    }
    for row in query(conn, PG_INDEXES, tables).await? {
        let t: String = get(&row, "table_name")?;
        let index = Index {
            name: get(&row, "name")?,
            columns: get(&row, "columns")?,
            unique: get(&row, "is_unique")?,
        };
        table(&mut schema, &t).indexes.push(index);
    }
    for row in query(conn, PG_ENUMS, tables).await? {
        let name: String = get(&row, "name")?;
        let label: String = get(&row, "label")?;
        schema.enums.entry(name).or_default().push(label);
    }
    Ok(Introspection { schema, queries: 5 })
}

const SQLITE_COLUMNS: &str = "\
SELECT m.name AS table_name, m.sql AS table_sql, p.name AS column_name, p.type AS data_type, \
       p.\"notnull\" AS not_null, p.dflt_value AS default_expr, p.pk AS pk \
FROM sqlite_master m LEFT JOIN pragma_table_info(m.name) p ON m.name IN ({TABLES}) \
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
ORDER BY m.name, p.cid";

const SQLITE_INDEXES: &str = "\
SELECT m.name AS table_name, il.name AS name, il.\"unique\" AS is_unique, il.origin AS origin, \
       ii.name AS column_name \
FROM sqlite_master m \
JOIN pragma_index_list(m.name) il \
JOIN pragma_index_info(il.name) ii \
WHERE m.type = 'table' AND m.name IN ({TABLES}) \
ORDER BY m.name, il.name, ii.seqno";

const SQLITE_FKS: &str = "\
SELECT m.name AS table_name, f.id AS id, f.\"table\" AS ref_table, f.\"from\" AS column_name, \
       f.\"to\" AS ref_column \
FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f \
WHERE m.type = 'table' AND m.name IN ({TABLES}) \
ORDER BY m.name, f.id, f.seq";

async fn sqlite<C: ConnectionTrait>(conn: &C, tables: &str) -> Result<Introspection> {
    let mut schema = Schema::default();
    let mut pks: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for row in query(conn, SQLITE_COLUMNS, tables).await? {
        let t: String = get(&row, "table_name")?;
        let sql: Option<String> = get(&row, "table_sql")?;
        let column: Option<String> = get(&row, "column_name")?;
        let entry = table(&mut schema, &t);
        if entry.columns.is_empty() && column.is_some() {
            entry.checks = parse_in_checks(sql.as_deref().unwrap_or(""));
        }
        if let Some(name) = column {
            let pk: i64 = get(&row, "pk")?;
            if pk > 0 {
                pks.entry(t.clone()).or_default().push((pk, name.clone()));
            }
            let not_null: i64 = get(&row, "not_null")?;
            entry.columns.push(Column {
                name,
                // SQLite type names are case-insensitive.
                data_type: get::<Option<String>>(&row, "data_type")?
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                // A SQLite primary-key column that is not INTEGER may hold NULL unless
                // declared NOT NULL; report what was declared.
                nullable: not_null == 0,
                default: get(&row, "default_expr")?,
            });
        }
    }
    for (t, mut cols) in pks {
        cols.sort();
        table(&mut schema, &t).primary_key = Some(Constraint {
            name: None,
            columns: cols.into_iter().map(|(_, c)| c).collect(),
        });
    }
    // Index rows come one per column, grouped by (table, index).
    let mut current: Option<(String, String, bool, String, Vec<String>)> = None;
    let flush = |schema: &mut Schema, cur: Option<(String, String, bool, String, Vec<String>)>| {
        if let Some((t, name, unique, origin, columns)) = cur {
            let entry = table(schema, &t);
            match origin.as_str() {
                "pk" => {}
                "u" => entry.uniques.push(Constraint {
                    name: None,
                    columns,
                }),
                _ => entry.indexes.push(Index {
                    name,
                    columns,
                    unique,
                }),
            }
        }
    };
    for row in query(conn, SQLITE_INDEXES, tables).await? {
        let t: String = get(&row, "table_name")?;
        let name: String = get(&row, "name")?;
        let col: Option<String> = get(&row, "column_name")?;
        let col = col.unwrap_or_else(|| "<expression>".to_owned());
        match &mut current {
            Some((ct, cn, _, _, cols)) if *ct == t && *cn == name => cols.push(col),
            _ => {
                let unique: i64 = get(&row, "is_unique")?;
                let origin: String = get(&row, "origin")?;
                flush(&mut schema, current.take());
                current = Some((t, name, unique != 0, origin, vec![col]));
            }
        }
    }
    flush(&mut schema, current.take());
    let mut fk: Option<(String, i64, ForeignKey)> = None;
    let mut fks: Vec<(String, ForeignKey)> = Vec::new();
    for row in query(conn, SQLITE_FKS, tables).await? {
        let t: String = get(&row, "table_name")?;
        let id: i64 = get(&row, "id")?;
        let col: String = get(&row, "column_name")?;
        let ref_col: Option<String> = get(&row, "ref_column")?;
        match &mut fk {
            Some((ft, fid, f)) if *ft == t && *fid == id => {
                f.columns.push(col);
                f.ref_columns.push(ref_col.unwrap_or_default());
            }
            _ => {
                if let Some((ft, _, f)) = fk.take() {
                    fks.push((ft, f));
                }
                fk = Some((
                    t,
                    id,
                    ForeignKey {
                        name: None,
                        columns: vec![col],
                        ref_table: get(&row, "ref_table")?,
                        ref_columns: vec![ref_col.unwrap_or_default()],
                    },
                ));
            }
        }
    }
    if let Some((ft, _, f)) = fk.take() {
        fks.push((ft, f));
    }
    for (t, f) in fks {
        table(&mut schema, &t).foreign_keys.push(f);
    }
    Ok(Introspection { schema, queries: 3 })
}

/// The `CHECK ("col" IN ('a', 'b'))` constraints of a SQLite CREATE TABLE statement:
/// column -> labels in order. Other CHECKs are ignored.
pub fn parse_in_checks(sql: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let upper = sql.to_ascii_uppercase();
    let mut from = 0;
    while let Some(pos) = upper[from..].find("CHECK") {
        let start = from + pos + "CHECK".len();
        from = start;
        let rest = sql[start..].trim_start();
        let Some(rest) = rest.strip_prefix('(') else {
            continue;
        };
        let rest = rest.trim_start();
        // column name, quoted or bare
        let (col, after) = if let Some(r) = rest.strip_prefix('"') {
            match r.find('"') {
                Some(end) => (r[..end].to_owned(), &r[end + 1..]),
                None => continue,
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (rest[..end].to_owned(), &rest[end..])
        };
        let after = after.trim_start();
        if !after.to_ascii_uppercase().starts_with("IN") {
            continue;
        }
        let Some(list) = after[2..].trim_start().strip_prefix('(') else {
            continue;
        };
        let mut labels = Vec::new();
        let mut chars = list.char_indices().peekable();
        let mut closed = false;
        while let Some((_, c)) = chars.next() {
            match c {
                '\'' => {
                    let mut label = String::new();
                    while let Some((_, c)) = chars.next() {
                        if c == '\'' {
                            if chars.peek().map(|(_, n)| *n) == Some('\'') {
                                chars.next();
                                label.push('\'');
                            } else {
                                break;
                            }
                        } else {
                            label.push(c);
                        }
                    }
                    labels.push(label);
                }
                ')' => {
                    closed = true;
                    break;
                }
                _ => {}
            }
        }
        if closed {
            out.insert(col, labels);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_in_checks;

    #[test]
    fn parses_enum_checks() {
        let sql = r#"CREATE TABLE "users" ( "id" varchar NOT NULL PRIMARY KEY, "role" varchar CHECK ("role" IN ('owner', 'admin', 'it''s')), "n" int CHECK (n > 0) )"#;
        let checks = parse_in_checks(sql);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks["role"], vec!["owner", "admin", "it's"]);
    }
}
