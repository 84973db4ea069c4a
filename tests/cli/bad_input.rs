//! Bad input: each case gets its documented exit code, one clear line, no panic,
//! and no password in the output.

use std::time::Duration;

use crate::common::*;

fn run_with_url(url: &str, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    Run::from(
        bin(dir.path())
            .env("DATABASE_URL", url)
            .args(args)
            .output()
            .unwrap(),
    )
}

#[test]
fn malformed_url_is_exit_3() {
    let r = run_with_url("postgres://user:hunter2@[::1/eco", &["migrate", "status"]);
    r.expect_clean_error(3);
    assert!(r.stderr.contains("invalid database URL"), "{}", r.stderr);
    assert!(!r.all().contains("hunter2"), "{}", r.all());

    let r = run_with_url("not a url at all", &["migrate", "status"]);
    r.expect_clean_error(3);
}

#[test]
fn mysql_url_is_exit_3() {
    let r = run_with_url("mysql://root:hunter2@localhost/eco", &["migrate", "up"]);
    r.expect_clean_error(3);
    assert!(
        r.stderr.contains("unsupported database URL scheme 'mysql'"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("hunter2"));
}

#[test]
fn unreachable_port_gives_up_at_the_connect_timeout() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let r = run_with_url(
        &format!("postgres://postgres:hunter2@127.0.0.1:{port}/eco"),
        &["migrate", "status", "--connect-timeout", "1s"],
    );
    r.expect_clean_error(3);
    // It kept trying until the deadline (the next test shows that it connects when
    // the server comes up in time), then gave up.
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    assert!(r.stderr.contains("postgres:***@127.0.0.1"), "{}", r.stderr);
    assert!(!r.all().contains("hunter2"));
}

/// Forward connections on `listener` to `target` (a server that comes up late).
fn forward(listener: std::net::TcpListener, target: String) {
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(&target) else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut c1, mut s1) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c1, &mut s1);
                let _ = s1.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
}

#[test]
fn a_server_that_comes_up_within_the_connect_timeout_is_waited_for() {
    let db = PgDb::new();
    let real = url::Url::parse(&db.url()).unwrap();
    let target = format!(
        "{}:{}",
        real.host_str().unwrap(),
        real.port().unwrap_or(5432)
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut late = real.clone();
    late.set_port(Some(port)).unwrap();
    // The port opens only after the binary has started (and been refused).
    let child = db
        .std_cmd()
        .env("DATABASE_URL", late.as_str())
        .args(["--connect-timeout", "30s", "migrate", "status"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    forward(
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(),
        target,
    );
    let r = Run::from(child.wait_with_output().unwrap());
    // Refused at first, connected once the port opened.
    r.expect_code(0);
    assert!(r.stdout.contains("pending"), "{}", r.stdout);
}

#[test]
fn wrong_password_is_exit_3() {
    let db = PgDb::new();
    let url = db.url_as("postgres", "definitely-wrong-pw");
    let r = Run::from(
        db.cmd()
            .env("DATABASE_URL", &url)
            .args(["migrate", "up"])
            .output()
            .unwrap(),
    );
    r.expect_clean_error(3);
    assert!(r.stderr.contains("authentication failed"), "{}", r.stderr);
    assert!(!r.stderr.contains("caused by:"), "{}", r.stderr);
    assert!(!r.all().contains("definitely-wrong-pw"));
    assert!(!r.all().contains(&db.password()));

    // -vv: the error keeps its source chain (the driver's error), still redacted.
    let r = db.run_at(&url, &["-vv", "migrate", "up"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let cause = r
        .stderr
        .lines()
        .find(|l| l.starts_with("  caused by: "))
        .unwrap_or_else(|| panic!("no cause under -vv:\n{}", r.stderr));
    assert!(cause.contains("password authentication failed"), "{cause}");
    assert!(!r.all().contains("definitely-wrong-pw"));
}

#[test]
fn missing_database_is_exit_3() {
    let db = PgDb::new();
    let url = db.url().replace(&db.name, "no_such_database_here");
    let r = Run::from(
        db.cmd()
            .env("DATABASE_URL", &url)
            .args(["migrate", "up"])
            .output()
            .unwrap(),
    );
    r.expect_clean_error(3);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    assert!(!r.all().contains(&db.password()));
}

#[test]
fn unknown_to_version_is_a_usage_error() {
    let db = SqliteDb::new();
    let r = db.run(&["migrate", "up", "--to", "007"]);
    r.expect_code(2);
    assert!(r.stderr.contains("unknown version '007'"), "{}", r.stderr);
    assert!(
        r.stderr.contains("001 (m20251007_000001_initial_schema)"),
        "{}",
        r.stderr
    );
    assert!(!db.path().exists(), "nothing may be created");
}

#[test]
fn sqlite_file_that_does_not_exist_without_mode_rwc_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/missing.db", dir.path().display());
    let r = run_with_url(&url, &["migrate", "up"]);
    r.expect_clean_error(3);
    assert!(r.stderr.contains("mode=rwc"), "{}", r.stderr);
}

#[test]
fn dotenv_is_used_when_no_flag_or_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "DATABASE_URL=sqlite://fromdotenv.db?mode=rwc\n",
    )
    .unwrap();
    let r = Run::from(bin(dir.path()).args(["migrate", "up"]).output().unwrap());
    r.expect_code(0);
    assert!(dir.path().join("fromdotenv.db").exists());
    assert!(!dir.path().join("ecomind.db").exists());
    // The flag wins over .env.
    let r = Run::from(
        bin(dir.path())
            .args([
                "--database-url",
                "sqlite://flag.db?mode=rwc",
                "migrate",
                "up",
            ])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    assert!(dir.path().join("flag.db").exists());
}

/// ECOMIND_NO_DEFAULT_DATABASE (the container image sets it): no URL is one usage error
/// (exit 2) naming what to set, and no ./ecomind.db is made; "0" or empty keep the
/// embedded default; a URL still works.
#[test]
fn no_default_database_refuses_a_missing_url() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["migrate", "up"][..],
        &["verify-schema"],
        &["audit", "suspicious-accounts"],
    ] {
        let r = Run::from(
            bin(dir.path())
                .env("ECOMIND_NO_DEFAULT_DATABASE", "1")
                .args(args)
                .output()
                .unwrap(),
        );
        r.expect_clean_error(2);
        assert!(
            r.stderr.starts_with("error: no database URL"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("DATABASE_URL"), "{}", r.stderr);
    }
    assert!(!dir.path().join("ecomind.db").exists());
    for off in ["0", ""] {
        let r = Run::from(
            bin(dir.path())
                .env("ECOMIND_NO_DEFAULT_DATABASE", off)
                .args(["migrate", "current"])
                .output()
                .unwrap(),
        );
        assert!(
            r.stderr.contains("embedded default"),
            "{off:?}: {}",
            r.stderr
        );
    }
    let url = format!("sqlite://{}/named.db?mode=rwc", dir.path().display());
    Run::from(
        bin(dir.path())
            .env("ECOMIND_NO_DEFAULT_DATABASE", "1")
            .env("DATABASE_URL", &url)
            .args(["migrate", "up"])
            .output()
            .unwrap(),
    )
    .expect_code(0);
}
