//! `baseline` on SQLite.

use crate::common::*;

#[test]
fn adopts_a_hand_made_sqlite_database() {
    let made = SqliteDb::new();
    made.run(&["migrate", "up", "--to", "001"]).expect_code(0);
    // The same schema without bookkeeping: drop the tracking table.
    made.query("DROP TABLE seaql_migrations");
    let r = made.run(&["baseline", "--yes", "--format", "json"]);
    r.expect_code(0);
    assert_eq!(r.json()["detected"]["alembic_revision"], "001");
    assert_eq!(made.versions(), vec![V1]);
    made.run(&["migrate", "up"]).expect_code(0);
    made.run(&["verify-schema", "--strict"]).expect_code(0);
    made.run(&["baseline", "--yes"]).expect_clean_error(4);
    made.run(&["baseline", "--undo", "--yes"]).expect_code(0);
    assert!(!made.tables().contains(&"seaql_migrations".to_owned()));
    assert_eq!(made.columns("users").len(), 7);
}

#[test]
fn empty_sqlite_database_is_refused() {
    let db = SqliteDb::new();
    db.query("CREATE TABLE x (a int); DROP TABLE x;");
    let r = db.run(&["baseline", "--yes", "--format", "json"]);
    r.expect_code(1);
    assert!(db.tables().is_empty());
}

#[test]
fn baseline_on_a_tty_shows_the_plan_and_asks() {
    let made = SqliteDb::new();
    made.run(&["migrate", "up", "--to", "001"]).expect_code(0);
    made.query("DROP TABLE seaql_migrations");
    // Enter: the default is No; nothing is written.
    let r = on_tty(&made, "baseline", "\n");
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(r.stdout.contains("[y/N]"), "{}", r.stdout);
    assert!(
        r.stdout.contains("seaql_migrations"),
        "the plan is shown: {}",
        r.stdout
    );
    assert!(r.stdout.contains("not confirmed"), "{}", r.stdout);
    assert!(!made.tables().contains(&"seaql_migrations".to_owned()));
    // y: recorded.
    let r = on_tty(&made, "baseline", "y\n");
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(made.versions(), vec![V1]);
}
