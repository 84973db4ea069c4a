//! The expected schema of each version is generated from the migrations: migrate scratch
//! databases to each version, introspect them with the code verify-schema uses, and
//! compare with the committed `src/schema/snapshots/<backend>.json`.
//! `ECOMIND_WRITE_SNAPSHOTS=1` (scripts/snapshots.sh) rewrites them.

use ecomind_admin::entities::API_TABLES;
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
        let tables: Vec<String> = API_TABLES.iter().map(|t| (*t).to_owned()).collect();
        let mut schema = introspect(&conn, &tables).await.unwrap().schema;
        // Only the API's tables (not seaql_migrations).
        schema
            .tables
            .retain(|name, _| API_TABLES.contains(&name.as_str()));
        schema
    })
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
