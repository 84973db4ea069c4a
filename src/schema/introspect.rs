//! Read the live schema from the catalog: five queries on PostgreSQL (pg_catalog) and
//! three on SQLite (table-valued pragmas joined to sqlite_master), however many tables
//! the database has. Every table is listed by name; columns, constraints and indexes are
//! read only for the tables of interest, so thousands of unrelated tables cost little.
//! Read-only.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement};

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

/// The rows of one catalog query, each decoded into `T` (a missing or mistyped
/// column is an error, never a default).
async fn rows<T: FromQueryResult, C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    tables: &str,
) -> Result<Vec<T>> {
    let sql = sql.replace("{TABLES}", tables);
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .map_err(|e| Error::from_db(e, "reading the catalog"))?;
    rows.iter()
        .map(|row| {
            T::from_query_result(row, "").map_err(|e| Error::from_db(e, "decoding a catalog row"))
        })
        .collect()
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

#[derive(FromQueryResult)]
struct PgColumnRow {
    table_name: String,
    column_name: Option<String>,
    data_type: Option<String>,
    nullable: Option<bool>,
    default_expr: Option<String>,
}

#[derive(FromQueryResult)]
struct PgOtherTablesRow {
    names: Vec<String>,
}

#[derive(FromQueryResult)]
struct PgConstraintRow {
    table_name: String,
    name: String,
    kind: String,
    columns: Vec<String>,
    ref_table: Option<String>,
    ref_columns: Vec<String>,
}

#[derive(FromQueryResult)]
struct PgIndexRow {
    table_name: String,
    name: String,
    is_unique: bool,
    columns: Vec<String>,
}

#[derive(FromQueryResult)]
struct PgEnumRow {
    name: String,
    label: String,
}

async fn postgres<C: ConnectionTrait>(conn: &C, tables: &str) -> Result<Introspection> {
    let mut schema = Schema::default();
    for row in rows::<PgColumnRow, _>(conn, PG_COLUMNS, tables).await? {
        let entry = table(&mut schema, &row.table_name);
        if let Some(name) = row.column_name {
            entry.columns.push(Column {
                name,
                data_type: row.data_type.unwrap_or_default(),
                nullable: row.nullable.unwrap_or(true),
                default: row.default_expr,
            });
        }
    }
    for row in rows::<PgOtherTablesRow, _>(conn, PG_OTHER_TABLES, tables).await? {
        for name in row.names {
            table(&mut schema, &name);
        }
    }
    for row in rows::<PgConstraintRow, _>(conn, PG_CONSTRAINTS, tables).await? {
        let entry = table(&mut schema, &row.table_name);
        let (name, columns) = (Some(row.name), row.columns);
        match row.kind.as_str() {
            "p" => entry.primary_key = Some(Constraint { name, columns }),
            "u" => entry.uniques.push(Constraint { name, columns }),
            _ => entry.foreign_keys.push(ForeignKey {
                name,
                columns,
                ref_table: row.ref_table.unwrap_or_default(),
                ref_columns: row.ref_columns,
            }),
        }
    }
    for row in rows::<PgIndexRow, _>(conn, PG_INDEXES, tables).await? {
        table(&mut schema, &row.table_name).indexes.push(Index {
            name: row.name,
            columns: row.columns,
            unique: row.is_unique,
        });
    }
    for row in rows::<PgEnumRow, _>(conn, PG_ENUMS, tables).await? {
        schema.enums.entry(row.name).or_default().push(row.label);
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

#[derive(FromQueryResult)]
struct SqliteColumnRow {
    table_name: String,
    table_sql: Option<String>,
    column_name: Option<String>,
    data_type: Option<String>,
    not_null: Option<i64>,
    default_expr: Option<String>,
    pk: Option<i64>,
}

#[derive(FromQueryResult)]
struct SqliteIndexRow {
    table_name: String,
    name: String,
    is_unique: i64,
    origin: String,
    column_name: Option<String>,
}

#[derive(FromQueryResult)]
struct SqliteForeignKeyRow {
    table_name: String,
    id: i64,
    column_name: String,
    ref_table: String,
    ref_column: Option<String>,
}

async fn sqlite<C: ConnectionTrait>(conn: &C, tables: &str) -> Result<Introspection> {
    let mut schema = Schema::default();
    sqlite_columns(&mut schema, rows(conn, SQLITE_COLUMNS, tables).await?);
    sqlite_indexes(&mut schema, rows(conn, SQLITE_INDEXES, tables).await?);
    sqlite_foreign_keys(&mut schema, rows(conn, SQLITE_FKS, tables).await?);
    Ok(Introspection { schema, queries: 3 })
}

/// Columns, the primary key (from the columns' `pk` positions) and the CHECKs that
/// carry enum labels (parsed from the CREATE TABLE text).
fn sqlite_columns(schema: &mut Schema, rows: Vec<SqliteColumnRow>) {
    let mut pks: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for row in rows {
        let entry = table(schema, &row.table_name);
        if entry.columns.is_empty() && row.column_name.is_some() {
            entry.checks = parse_in_checks(row.table_sql.as_deref().unwrap_or(""));
        }
        let Some(name) = row.column_name else {
            continue;
        };
        if let Some(pk) = row.pk.filter(|pk| *pk > 0) {
            pks.entry(row.table_name.clone())
                .or_default()
                .push((pk, name.clone()));
        }
        entry.columns.push(Column {
            name,
            // SQLite type names are case-insensitive.
            data_type: row.data_type.unwrap_or_default().to_ascii_lowercase(),
            // A SQLite primary-key column that is not INTEGER may hold NULL unless
            // declared NOT NULL; report what was declared.
            nullable: row.not_null.unwrap_or(0) == 0,
            default: row.default_expr,
        });
    }
    for (t, mut cols) in pks {
        cols.sort();
        table(schema, &t).primary_key = Some(Constraint {
            name: None,
            columns: cols.into_iter().map(|(_, c)| c).collect(),
        });
    }
}

/// Index rows come one per column, ordered by (table, index): consecutive rows of one
/// index make one index (or, for origin `u`, a unique constraint; `pk` is skipped).
fn sqlite_indexes(schema: &mut Schema, rows: Vec<SqliteIndexRow>) {
    let mut grouped: Vec<(SqliteIndexRow, Vec<String>)> = Vec::new();
    for row in rows {
        let col = row
            .column_name
            .clone()
            .unwrap_or_else(|| "<expression>".to_owned());
        match grouped.last_mut() {
            Some((first, cols)) if first.table_name == row.table_name && first.name == row.name => {
                cols.push(col)
            }
            _ => grouped.push((row, vec![col])),
        }
    }
    for (row, columns) in grouped {
        let entry = table(schema, &row.table_name);
        match row.origin.as_str() {
            "pk" => {}
            "u" => entry.uniques.push(Constraint {
                name: None,
                columns,
            }),
            _ => entry.indexes.push(Index {
                name: row.name,
                columns,
                unique: row.is_unique != 0,
            }),
        }
    }
}

/// Foreign-key rows come one per column, ordered by (table, id, seq).
fn sqlite_foreign_keys(schema: &mut Schema, rows: Vec<SqliteForeignKeyRow>) {
    let mut grouped: Vec<(String, i64, ForeignKey)> = Vec::new();
    for row in rows {
        let ref_col = row.ref_column.unwrap_or_default();
        match grouped.last_mut() {
            Some((t, id, fk)) if *t == row.table_name && *id == row.id => {
                fk.columns.push(row.column_name);
                fk.ref_columns.push(ref_col);
            }
            _ => grouped.push((
                row.table_name,
                row.id,
                ForeignKey {
                    name: None,
                    columns: vec![row.column_name],
                    ref_table: row.ref_table,
                    ref_columns: vec![ref_col],
                },
            )),
        }
    }
    for (t, _, fk) in grouped {
        table(schema, &t).foreign_keys.push(fk);
    }
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
