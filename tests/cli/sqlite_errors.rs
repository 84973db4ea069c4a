//! SQLite errors are classified by result code (READONLY, CANTOPEN, NOTADB, BUSY), not
//! by the wording of the message.

use crate::common::*;

fn run_url(dir: &std::path::Path, url: &str, args: &[&str]) -> Run {
    Run::from(
        bin(dir)
            .env("DATABASE_URL", url)
            .args(args)
            .output()
            .unwrap(),
    )
}

#[test]
fn sqlite_errors_by_result_code() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let dir = db.dir.path();
    // SQLITE_READONLY: the file opened read-only (chmod would not stop root).
    let ro = format!("sqlite://{}?mode=ro", db.path().display());
    let r = run_url(dir, &ro, &["create-org", "--name", "A"]);
    r.expect_clean_error(3);
    assert!(
        r.stderr.contains("the database is read-only"),
        "{}",
        r.stderr
    );
    assert_eq!(db.query("SELECT count(*) FROM orgs"), "0");
    // SQLITE_CANTOPEN: a directory that does not exist.
    let r = run_url(
        dir,
        &format!("sqlite://{}/no/such/dir/x.db?mode=rwc", dir.display()),
        &["migrate", "up"],
    );
    r.expect_clean_error(3);
    assert!(
        r.stderr.contains("cannot open the database file"),
        "{}",
        r.stderr
    );
    // SQLITE_NOTADB: a file that is not a database.
    let junk = dir.join("junk.db");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let r = run_url(
        dir,
        &format!("sqlite://{}", junk.display()),
        &["migrate", "status"],
    );
    r.expect_clean_error(3);
    assert!(
        r.stderr.contains("not a usable SQLite database"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_short_lock_wait_is_honoured_on_sqlite() {
    let db = SqliteDb::new();
    db.run(&["migrate", "up", "--to", V1]).expect_code(0);
    let writer = Blocker::sqlite_writer(&db);
    let started = std::time::Instant::now();
    let r = db.run(&["migrate", "up", "--lock-wait", "1s"]);
    let took = started.elapsed();
    drop(writer);
    r.expect_clean_error(4);
    assert!(r.stderr.contains("timed out after 1s"), "{}", r.stderr);
    // Not a speed goal: sqlx's 5 s busy_timeout used to stretch every try to 5 s.
    assert!(took < std::time::Duration::from_secs(4), "{took:?}");
    assert_eq!(db.versions(), vec![V1]);
    // Once the writer is gone, the same command goes through.
    db.run(&["migrate", "up", "--lock-wait", "1s"])
        .expect_code(0);
}
