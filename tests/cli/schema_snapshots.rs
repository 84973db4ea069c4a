//! The expected schema of each version is generated from the migrations: migrate scratch
//! databases to each version, introspect them with the code verify-schema uses, and
//! compare with the committed `src/schema/snapshots/<backend>.json`.
//! `ECOMIND_WRITE_SNAPSHOTS=1` (scripts/snapshots.sh) rewrites them.

use ecomind_admin::migrations::known;
use ecomind_admin::schema::introspect::introspect;
use ecomind_admin::schema::snapshots::Snapshots;

use crate::common::*;

fn snapshot_of(url: &str) -> ecomind_admin::schema::Schema {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = sea_orm::Database::connect(url).await.unwrap();
        let tables = every_table(&conn).await;
        let mut schema = introspect(&conn, &tables).await.unwrap().schema;
        schema.tables.retain(|name, _| tables.contains(name));
        schema
    })
}

/// Every table the migrations made: all the database has, bookkeeping aside (no list:
/// a revision that adds a table is in the snapshots without anyone naming it).
async fn every_table(conn: &sea_orm::DatabaseConnection) -> Vec<String> {
    use sea_orm::ConnectionTrait;
    let sql = match conn.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            "SELECT tablename::text AS name FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
        }
        _ => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        }
    };
    let mut names: Vec<String> = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.try_get::<String>("", "name").unwrap())
        .filter(|n| {
            n != ecomind_admin::migrations::TRACKING_TABLE
                && n != ecomind_admin::migrations::ALEMBIC_TABLE
        })
        .collect();
    names.sort();
    names
}

fn generate(backend: &str) -> Snapshots {
    let mut out = Snapshots::new();
    for k in known() {
        let db = match backend {
            "postgres" => AnyDb::Pg(PgDb::new()),
            _ => AnyDb::Lite(SqliteDb::new()),
        };
        db.run(&["migrate", "up", "--to", &k.version])
            .expect_code(0);
        let url = match &db {
            AnyDb::Pg(d) => d.url(),
            AnyDb::Lite(d) => format!("sqlite://{}", d.path().display()),
        };
        out.insert(k.version.clone(), snapshot_of(&url));
    }
    out
}

#[test]
fn snapshots_are_what_the_migrations_make() {
    for backend in ["postgres", "sqlite"] {
        let path = format!(
            "{}/src/schema/snapshots/{backend}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let made = serde_json::to_string_pretty(&generate(backend)).unwrap() + "\n";
        if std::env::var_os("ECOMIND_WRITE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &made).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap();
        assert!(
            committed == made,
            "{path} is stale: the migrations make another schema. Run scripts/snapshots.sh \
             (and if a shipped migration changed, that is the bug)"
        );
    }
}

/// The entities cannot drift from the schema the migrations make: each one, created on
/// an in-memory SQLite by `Schema::create_table_from_entity`, has the head snapshot's
/// columns (names, order, nullability) and primary key.
#[test]
fn entities_match_the_head_snapshot() {
    use ecomind_admin::entities::*;
    use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Schema};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let schema = Schema::new(DbBackend::Sqlite);
        async fn create<E: EntityTrait>(
            conn: &sea_orm::DatabaseConnection,
            schema: &Schema,
            entity: E,
        ) {
            conn.execute(&schema.create_table_from_entity(entity))
                .await
                .unwrap();
        }
        create(&conn, &schema, orgs::Entity).await;
        create(&conn, &schema, users::Entity).await;
        create(&conn, &schema, events_enriched::Entity).await;
        create(&conn, &schema, audit_logs::Entity).await;
        create(&conn, &schema, daily_org_agg::Entity).await;
        create(&conn, &schema, daily_user_agg::Entity).await;
        create(&conn, &schema, daily_provider_agg::Entity).await;
        create(&conn, &schema, daily_model_agg::Entity).await;
        let tables = every_table(&conn).await;
        let live = introspect(&conn, &tables).await.unwrap().schema;
        let head = known().len() - 1;
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let expected = ecomind_admin::schema::snapshots::expected(head, backend);
            for name in &tables {
                let want = &expected.tables[name];
                let got = &live.tables[name];
                let cols = |t: &ecomind_admin::schema::model::Table| {
                    t.columns
                        .iter()
                        .map(|c| (c.name.clone(), c.nullable))
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    cols(got),
                    cols(want),
                    "entity {name} vs {backend:?} snapshot"
                );
                assert_eq!(
                    got.primary_key.as_ref().map(|k| &k.columns),
                    want.primary_key.as_ref().map(|k| &k.columns),
                    "entity {name}: primary key"
                );
            }
        }
    });
}

/// `migrate down --all` drops exactly the API's tables (and, on PostgreSQL, its enum
/// types), each once, whatever the revisions in between added to them.
#[test]
fn reverting_everything_drops_the_api_tables_and_types() {
    use ecomind_admin::schema::drops::reverting;
    use sea_orm::DbBackend;
    let all: Vec<usize> = (0..known().len()).rev().collect();
    for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
        let drops = reverting(backend, &all);
        let mut tables: Vec<&str> = drops
            .iter()
            .filter(|d| d.kind == "table")
            .map(|d| d.name.as_str())
            .collect();
        tables.sort();
        assert_eq!(
            tables,
            api_tables().iter().map(String::as_str).collect::<Vec<_>>(),
            "{backend:?}"
        );
        let types: Vec<&str> = drops
            .iter()
            .filter(|d| d.kind == "type")
            .map(|d| d.name.as_str())
            .collect();
        let want: Vec<String> =
            ecomind_admin::schema::snapshots::expected(known().len() - 1, backend)
                .enums
                .into_keys()
                .collect();
        assert_eq!(types, want, "{backend:?}");
        // A column dropped by a later revert belongs to a table that still exists then.
        for d in drops.iter().filter(|d| d.kind == "column") {
            assert!(tables.contains(&d.table.as_deref().unwrap()), "{d:?}");
        }
    }
    // Reverting nothing drops nothing.
    assert!(reverting(DbBackend::Postgres, &[]).is_empty());
}
