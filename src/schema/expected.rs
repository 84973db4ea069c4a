//! The schema each migration version must have, per backend. It is data written
//! from the API's Alembic revisions (see tests/fixtures); a test migrates real
//! databases to each version and checks that they have no findings against it.

use sea_orm::DbBackend;

use super::model::{Column, Constraint, ForeignKey, Index, Schema, Table};

pub const ROLE_LABELS: [&str; 5] = ["owner", "admin", "analyst", "viewer", "billing"];
pub const PLAN_LABELS: [&str; 3] = ["free", "pro", "enterprise"];

/// Logical column types of the API.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    Double,
    Int,
    Date,
    DateTime,
    Json,
    Enum(&'static str),
}

impl Ty {
    fn spelled(self, backend: DbBackend) -> String {
        let pg = backend == DbBackend::Postgres;
        match self {
            Ty::Str => if pg { "character varying" } else { "varchar" }.into(),
            Ty::Double => if pg { "double precision" } else { "double" }.into(),
            Ty::Int => "integer".into(),
            Ty::Date => if pg { "date" } else { "date_text" }.into(),
            Ty::DateTime => if pg {
                "timestamp without time zone"
            } else {
                "datetime_text"
            }
            .into(),
            Ty::Json => if pg { "json" } else { "json_text" }.into(),
            Ty::Enum(name) => if pg { name } else { "varchar" }.into(),
        }
    }
}

fn enum_labels(name: &str) -> Vec<String> {
    let labels: &[&str] = if name == "role" {
        &ROLE_LABELS
    } else {
        &PLAN_LABELS
    };
    labels.iter().map(|s| (*s).to_owned()).collect()
}

struct TableSpec {
    name: &'static str,
    columns: &'static [(&'static str, Ty, bool)],
    pk: &'static [&'static str],
    /// (name, columns) of the plain indexes.
    indexes: &'static [(&'static str, &'static [&'static str])],
}

const NOT_NULL: bool = false;
const NULL: bool = true;

const AGG_MEASURES: [(&str, Ty, bool); 4] = [
    ("call_count", Ty::Int, NULL),
    ("kwh", Ty::Double, NULL),
    ("water_l", Ty::Double, NULL),
    ("co2_kg", Ty::Double, NULL),
];

const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "audit_logs",
        columns: &[
            ("id", Ty::Str, NOT_NULL),
            ("org_id", Ty::Str, NOT_NULL),
            ("user_id", Ty::Str, NULL),
            ("action", Ty::Str, NOT_NULL),
            ("resource", Ty::Str, NOT_NULL),
            ("details", Ty::Json, NULL),
            ("ts", Ty::DateTime, NULL),
        ],
        pk: &["id"],
        indexes: &[
            ("ix_audit_logs_org_id", &["org_id"]),
            ("ix_audit_logs_ts", &["ts"]),
        ],
    },
    TableSpec {
        name: "daily_model_agg",
        columns: &[
            ("date", Ty::Date, NOT_NULL),
            ("org_id", Ty::Str, NOT_NULL),
            ("provider", Ty::Str, NOT_NULL),
            ("model", Ty::Str, NOT_NULL),
            AGG_MEASURES[0],
            AGG_MEASURES[1],
            AGG_MEASURES[2],
            AGG_MEASURES[3],
        ],
        pk: &["date", "org_id", "provider", "model"],
        indexes: &[],
    },
    TableSpec {
        name: "daily_org_agg",
        columns: &[
            ("date", Ty::Date, NOT_NULL),
            ("org_id", Ty::Str, NOT_NULL),
            AGG_MEASURES[0],
            AGG_MEASURES[1],
            AGG_MEASURES[2],
            AGG_MEASURES[3],
        ],
        pk: &["date", "org_id"],
        indexes: &[("ix_daily_org_date", &["date", "org_id"])],
    },
    TableSpec {
        name: "daily_provider_agg",
        columns: &[
            ("date", Ty::Date, NOT_NULL),
            ("org_id", Ty::Str, NOT_NULL),
            ("provider", Ty::Str, NOT_NULL),
            AGG_MEASURES[0],
            AGG_MEASURES[1],
            AGG_MEASURES[2],
            AGG_MEASURES[3],
        ],
        pk: &["date", "org_id", "provider"],
        indexes: &[],
    },
    TableSpec {
        name: "daily_user_agg",
        columns: &[
            ("date", Ty::Date, NOT_NULL),
            ("org_id", Ty::Str, NOT_NULL),
            ("user_id", Ty::Str, NOT_NULL),
            AGG_MEASURES[0],
            AGG_MEASURES[1],
            AGG_MEASURES[2],
            AGG_MEASURES[3],
        ],
        pk: &["date", "org_id", "user_id"],
        indexes: &[],
    },
    TableSpec {
        name: "events_enriched",
        columns: &[
            ("id", Ty::Str, NOT_NULL),
            ("org_id", Ty::Str, NOT_NULL),
            ("user_id", Ty::Str, NOT_NULL),
            ("provider", Ty::Str, NOT_NULL),
            ("model", Ty::Str, NULL),
            ("tokens_in", Ty::Int, NULL),
            ("tokens_out", Ty::Int, NULL),
            ("node_type", Ty::Str, NULL),
            ("region", Ty::Str, NULL),
            ("kwh", Ty::Double, NOT_NULL),
            ("water_l", Ty::Double, NOT_NULL),
            ("co2_kg", Ty::Double, NOT_NULL),
            ("ts", Ty::DateTime, NOT_NULL),
            ("source", Ty::Str, NULL),
            ("metadata", Ty::Json, NULL),
            ("created_at", Ty::DateTime, NULL),
        ],
        pk: &["id"],
        indexes: &[
            ("ix_events_enriched_org_id", &["org_id"]),
            ("ix_events_enriched_ts", &["ts"]),
            ("ix_events_enriched_user_id", &["user_id"]),
            ("ix_events_org_ts", &["org_id", "ts"]),
            ("ix_events_user_ts", &["user_id", "ts"]),
        ],
    },
    TableSpec {
        name: "orgs",
        columns: &[
            ("id", Ty::Str, NOT_NULL),
            ("name", Ty::Str, NOT_NULL),
            ("plan", Ty::Enum("plantype"), NULL),
            ("created_at", Ty::DateTime, NULL),
        ],
        pk: &["id"],
        indexes: &[],
    },
    TableSpec {
        name: "users",
        columns: &[
            ("id", Ty::Str, NOT_NULL),
            ("org_id", Ty::Str, NOT_NULL),
            ("email", Ty::Str, NOT_NULL),
            ("name", Ty::Str, NULL),
            ("role", Ty::Enum("role"), NULL),
            ("created_at", Ty::DateTime, NULL),
            // revision 002
            ("password_hash", Ty::Str, NULL),
        ],
        pk: &["id"],
        indexes: &[],
    },
];

/// The expected schema after migration `version` (index into the known migrations:
/// 0 = revision 001, 1 = revision 002) on `backend`.
pub fn expected(version: usize, backend: DbBackend) -> Schema {
    let pg = backend == DbBackend::Postgres;
    let name_if_pg = |n: String| pg.then_some(n);
    let mut schema = Schema::default();
    for spec in TABLES {
        let mut t = Table {
            name: spec.name.to_owned(),
            ..Default::default()
        };
        for &(col, ty, nullable) in spec.columns {
            if spec.name == "users" && col == "password_hash" && version < 1 {
                continue;
            }
            t.columns.push(Column {
                name: col.to_owned(),
                data_type: ty.spelled(backend),
                nullable,
                default: None,
            });
            if let (Ty::Enum(e), false) = (ty, pg) {
                t.checks.insert(col.to_owned(), enum_labels(e));
            }
        }
        t.primary_key = Some(Constraint {
            name: name_if_pg(format!("{}_pkey", spec.name)),
            columns: spec.pk.iter().map(|c| (*c).to_owned()).collect(),
        });
        t.indexes = spec
            .indexes
            .iter()
            .map(|(name, cols)| Index {
                name: (*name).to_owned(),
                columns: cols.iter().map(|c| (*c).to_owned()).collect(),
                unique: false,
            })
            .collect();
        if spec.name == "users" {
            t.uniques.push(Constraint {
                name: name_if_pg("users_email_key".to_owned()),
                columns: vec!["email".to_owned()],
            });
            t.foreign_keys.push(ForeignKey {
                name: name_if_pg("users_org_id_fkey".to_owned()),
                columns: vec!["org_id".to_owned()],
                ref_table: "orgs".to_owned(),
                ref_columns: vec!["id".to_owned()],
            });
        }
        schema.tables.insert(t.name.clone(), t);
    }
    if pg {
        schema
            .enums
            .insert("plantype".into(), enum_labels("plantype"));
        schema.enums.insert("role".into(), enum_labels("role"));
    }
    schema
}
