//! The machine interface's contracts: `schemas/` is what the output types generate
//! (stale-schema test), and every JSON document or JSON Lines line the test suite
//! sees on stdout validates against its command's schema ([`validate_stdout`], called
//! for every run by `Run::from`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::common::{AnyDb, Run, both, head_revision, path_with_bin};

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// The committed schema of `command`, compiled once per test process.
fn validator(command: &str) -> Arc<jsonschema::Validator> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache
        .entry(command.to_owned())
        .or_insert_with(|| {
            let path = schemas_dir().join(ecomind_admin::contracts::file_name(command));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "no schema for command {command:?} ({}): {e}",
                    path.display()
                )
            });
            let schema: Value = serde_json::from_str(&text).unwrap();
            Arc::new(
                jsonschema::validator_for(&schema).unwrap_or_else(|e| {
                    panic!("{} is not a valid JSON Schema: {e}", path.display())
                }),
            )
        })
        .clone()
}

/// Validate one document against its command's schema: the errors, if any.
pub fn errors_of(doc: &Value) -> Vec<String> {
    let Some(command) = doc["command"].as_str() else {
        return vec!["no \"command\"".to_owned()];
    };
    if validator(command).is_valid(doc) {
        return Vec::new();
    }
    // Say why against the alternative (document, a line's type, error) that fits best.
    let path = schemas_dir().join(ecomind_admin::contracts::file_name(command));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut best: Option<Vec<String>> = None;
    for alt in schema["anyOf"].as_array().unwrap() {
        let mut one = alt.clone();
        one["$defs"] = schema["$defs"].clone();
        let errors: Vec<String> = jsonschema::validator_for(&one)
            .unwrap()
            .iter_errors(doc)
            .map(|e| format!("[{}] {} at {}", alt["title"], e, e.instance_path()))
            .collect();
        if best.as_ref().is_none_or(|b| errors.len() < b.len()) {
            best = Some(errors);
        }
    }
    best.unwrap_or_default()
}

/// Every ecomind-admin JSON document on `stdout` (one pretty document, or JSON Lines)
/// validates against its schema; the number validated. Output that is not JSON (a
/// table, CSV, a truncated stream) is left alone.
pub fn validate_stdout(stdout: &str) -> usize {
    let docs: Vec<Value> = match serde_json::from_str::<Value>(stdout) {
        Ok(doc) => vec![doc],
        Err(_) => stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect(),
    };
    let ours: Vec<&Value> = docs
        .iter()
        .filter(|d| d.get("format_version").is_some())
        .collect();
    for doc in &ours {
        let errors = errors_of(doc);
        assert!(
            errors.is_empty(),
            "stdout does not match schemas/{}:\n{}\ndocument:\n{}",
            ecomind_admin::contracts::file_name(doc["command"].as_str().unwrap_or("?")),
            errors.join("\n"),
            serde_json::to_string_pretty(doc).unwrap()
        );
    }
    ours.len()
}

/// `schemas/` holds exactly what the output types generate: a field added to or
/// removed from an output type without `cargo xtask schemas` fails here.
#[test]
fn committed_schemas_are_what_the_types_generate() {
    let files = ecomind_admin::cli::schema_files();
    let mut stale = Vec::new();
    for (name, text) in &files {
        let committed = std::fs::read_to_string(schemas_dir().join(name)).unwrap_or_default();
        if committed != *text {
            stale.push(name.clone());
        }
    }
    for entry in std::fs::read_dir(schemas_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !files.iter().any(|(f, _)| *f == name) {
            stale.push(format!("{name} (no command has it)"));
        }
    }
    assert!(
        stale.is_empty(),
        "stale schemas: {stale:?}; run `cargo xtask schemas` and review the diff (and note it in CHANGELOG.md)"
    );
    // Every command clap knows (each leaf of the command tree) states itself, and every
    // one that prints JSON has a contract, plus the tool's own.
    fn leaves(cmd: &clap::Command) -> usize {
        let subs: Vec<&clap::Command> = cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .collect();
        if subs.is_empty() {
            1
        } else {
            // `backup` runs itself too (`backup verify` is its subcommand).
            usize::from(!cmd.is_subcommand_required_set() && cmd.get_name() != "ecomind-admin")
                + subs.into_iter().map(leaves).sum::<usize>()
        }
    }
    let infos = ecomind_admin::cli::Command::all();
    let tree = <ecomind_admin::cli::Cli as clap::CommandFactory>::command();
    assert_eq!(leaves(&tree), infos.len(), "{infos:?}");
    let commands: Vec<&str> = ecomind_admin::cli::contracts()
        .iter()
        .map(|c| c.command)
        .collect();
    let json = infos.iter().filter(|i| i.schema.is_some()).count();
    assert_eq!(commands.len(), json + 1, "{commands:?}");
    assert!(json >= 18, "{commands:?}");
}

/// The schemas reject what is not the contract: a missing required field, a wrong
/// format_version, a line without its type.
#[test]
fn the_schemas_reject_a_broken_document() {
    let db = AnyDb::Lite(crate::common::SqliteDb::new());
    db.run(&["migrate", "up"]).expect_code(0);
    let r = db.run(&["audit", "suspicious-accounts", "--format", "json"]);
    let doc = r.json();
    assert!(errors_of(&doc).is_empty());
    let mut missing = doc.clone();
    missing.as_object_mut().unwrap().remove("summary");
    assert!(!errors_of(&missing).is_empty(), "summary removed");
    let mut version = doc.clone();
    version["format_version"] = "2".into();
    assert!(!errors_of(&version).is_empty(), "format_version 2");
    let mut count = doc.clone();
    count["summary"]["critical"] = "many".into();
    assert!(!errors_of(&count).is_empty(), "a count that is a string");
    let r = db.run(&["audit", "suspicious-accounts", "--format", "jsonl"]);
    let mut line: Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert!(errors_of(&line).is_empty());
    line.as_object_mut().unwrap().remove("type");
    assert!(!errors_of(&line).is_empty(), "a summary line without type");
}

/// One run of the contract matrix: `args` with --format json and jsonl; each must
/// exit `code` (None: whatever the backend says) and print at least one document, every one valid.
fn both_formats(db: &AnyDb, args: &[&str], code: Option<i32>, seen: &mut Vec<String>) {
    for format in ["json", "jsonl"] {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--format", format]);
        let r = db.run(&full);
        if let Some(code) = code {
            assert_eq!(r.code, code, "{full:?}: {}", r.all());
        }
        let n = validate_stdout(&r.stdout);
        assert!(n >= 1, "{full:?} printed no JSON:\n{}", r.all());
        let first: Value = if format == "json" {
            r.json()
        } else {
            serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap()
        };
        seen.push(first["command"].as_str().unwrap().to_owned());
    }
}

both! {
    /// Each command's JSON and JSON Lines, as success, finding, refusal and error,
    /// validate against its schema on both backends; every schema is exercised.
    fn every_command_s_json_validates(db) {
        let db = &db;
        let mut seen = Vec::new();
        let run = |db: &AnyDb, args: &[&str], code: i32, seen: &mut Vec<String>| both_formats(db, args, (code >= 0).then_some(code), seen);
        let missing_org = ["create-admin", "--org", "org_000000000000", "--email", "a@b.example"];
        // Errors before anything exists (no database / not migrated).
        let fresh = db.fresh_like();
        run(&fresh, &["migrate", "current"], -1, &mut seen);
        run(&fresh, &["audit", "suspicious-accounts"], -1, &mut seen);
        run(&fresh, &["users", "list"], -1, &mut seen);
        run(&fresh, &["verify-schema"], -1, &mut seen);
        // Success.
        run(db, &["migrate", "up", "--dry-run"], 0, &mut seen);
        db.run(&["migrate", "up"]).expect_code(0);
        run(db, &["migrate", "up"], 0, &mut seen);
        run(db, &["migrate", "status"], 0, &mut seen);
        run(db, &["migrate", "current"], 0, &mut seen);
        run(db, &["verify-schema"], 0, &mut seen);
        run(db, &["doctor"], 0, &mut seen);
        // A refusal: already managed.
        run(db, &["baseline", "--dry-run"], 4, &mut seen);
        run(db, &["upgrade", "--no-backup"], 0, &mut seen);
        let r = db.run(&["create-org", "--name", "Acme", "--format", "json"]);
        r.expect_code(0);
        assert_eq!(validate_stdout(&r.stdout), 1);
        let org = r.json()["id"].as_str().unwrap().to_owned();
        run(db, &["create-org", "--name", "Acme", "--if-not-exists"], 0, &mut seen);
        let admin = ["create-admin", "--org", &org, "--email", "ops@acme.example", "--bcrypt-cost", "4", "--password-stdin"];
        let r = db.run_stdin(&[&admin[..], &["--format", "json"]].concat(), b"a fine password 123\n");
        r.expect_code(0);
        assert_eq!(validate_stdout(&r.stdout), 1);
        seen.push("create-admin".into());
        // The same again: refused (exists), as a JSON Lines error line.
        let r = db.run_stdin(&[&admin[..], &["--format", "jsonl"]].concat(), b"a fine password 123\n");
        r.expect_code(4);
        assert_eq!(validate_stdout(&r.stdout), 1, "{}", r.all());
        run(db, &["users", "list"], 0, &mut seen);
        run(db, &["orgs", "list"], 0, &mut seen);
        run(db, &["users", "set-role", "ops@acme.example", "owner", "--reason", "t", "--dry-run"], 0, &mut seen);
        let r = db.run_stdin(
            &["users", "reset-password", "ops@acme.example", "--password-stdin", "--bcrypt-cost", "4", "--format", "json"],
            b"another fine password 456\n",
        );
        r.expect_code(0);
        assert_eq!(validate_stdout(&r.stdout), 1);
        seen.push("users reset-password".into());
        run(db, &["users", "lock", "ops@acme.example", "--reason", "t", "--yes", "--force"], 0, &mut seen);
        let r = db.run_stdin(
            &["users", "unlock", "ops@acme.example", "--reason", "t", "--yes", "--password-stdin", "--bcrypt-cost", "4", "--format", "json"],
            b"another fine password 789\n",
        );
        r.expect_code(0);
        assert_eq!(validate_stdout(&r.stdout), 1);
        seen.push("users unlock".into());
        // Findings: an admin written by hand (no provenance), an extra table.
        db.query(&format!(
            "INSERT INTO users (id, org_id, email, role, created_at) VALUES \
             ('user_0000000000ff', '{org}', 'sneaky@acme.example', 'admin', '2026-01-01 00:00:00')"
        ));
        run(db, &["audit", "suspicious-accounts"], 1, &mut seen);
        run(db, &["doctor"], 1, &mut seen);
        db.query("CREATE TABLE extra_table (id INTEGER)");
        run(db, &["verify-schema", "--strict"], 1, &mut seen);
        // Refusals and errors; command lines that do not parse.
        run(db, &missing_org, 4, &mut seen);
        run(db, &["migrate"], 2, &mut seen);
        run(db, &["audit", "suspicious-accounts", "--since", "tomorrowish"], 2, &mut seen);
        run(db, &["users", "set-role", "nobody@acme.example", "owner", "--reason", "t"], 4, &mut seen);
        run(db, &["users", "reset-password", "nobody@acme.example", "--password-stdin"], 4, &mut seen);
        run(db, &["migrate", "down"], 4, &mut seen);
        run(db, &["migrate", "down", "--dry-run"], 0, &mut seen);
        // verify-deployment's document is validated against the real API in api.rs;
        // here its error form (no API there).
        run(db, &["verify-deployment", "--api-url", "http://127.0.0.1:1", "--wait", "1s"], 3, &mut seen);
        let old = db.fresh_like();
        old.run(&["migrate", "up", "--to", "001"]).expect_code(0);
        run(&old, &["upgrade", "--no-backup"], 4, &mut seen);
        // backup, backup verify (a good one, then one whose file changed), restore.
        let dir = db.dir().join("contract-backups");
        let r = db.run(&["backup", "--dir", dir.to_str().unwrap(), "--format", "json"]);
        r.expect_code(0);
        assert_eq!(validate_stdout(&r.stdout), 1);
        seen.push("backup".into());
        let file = r.json()["path"].as_str().unwrap().to_owned();
        run(db, &["backup", "verify", &file], 0, &mut seen);
        run(db, &["restore", &file, "--yes"], 0, &mut seen);
        run(db, &["restore", &file], 4, &mut seen);
        let broken: &[u8] = if db.is_postgres() { b"PGDMP and nothing more" } else { b"SQLite format 3\0 and nothing more" };
        std::fs::write(&file, broken).unwrap();
        run(db, &["backup", "verify", &file], 1, &mut seen);
        let mut want: Vec<String> = ecomind_admin::cli::contracts().iter().map(|c| c.command.to_owned()).collect();
        want.sort();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, want, "every command's schema is exercised");
    }
}

/// The files of `dir` (names), sorted.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

both! {
    /// `--output FILE`: the result in the file (mode 0600, valid against its schema),
    /// the human table on stdout, no temporary file left; a failure replaces the file
    /// with its error document in JSON, and leaves it as it was in CSV.
    fn output_writes_the_report_to_a_file(db) {
        use std::os::unix::fs::PermissionsExt;
        db.run(&["migrate", "up"]).expect_code(0);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("report.json");
        let f = file.to_str().unwrap();
        let r = db.run(&["audit", "suspicious-accounts", "--output", f]);
        r.expect_code(0);
        assert!(r.stdout.contains("summary: 0 critical"), "the table on stdout:\n{}", r.stdout);
        assert!(!r.stdout.contains("format_version"), "{}", r.stdout);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(validate_stdout(&text), 1);
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["command"], "audit suspicious-accounts");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(files_in(dir.path()), ["report.json"]);

        // A machine format: the same bytes on stdout and in the file.
        let lines = dir.path().join("users.jsonl");
        let r = db.run(&["users", "list", "--format", "jsonl", "-o", lines.to_str().unwrap()]);
        r.expect_code(0);
        let text = std::fs::read_to_string(&lines).unwrap();
        assert_eq!(r.stdout, text);
        assert_eq!(validate_stdout(&text), 1, "{text}");
        assert!(text.contains("\"type\":\"summary\""), "{text}");
        // A list in a table: the table on stdout, JSON in the file.
        let listing = dir.path().join("users.json");
        let r = db.run(&["users", "list", "-o", listing.to_str().unwrap()]);
        r.expect_code(0);
        assert!(r.stdout.contains("email") && r.stdout.contains("┌"), "{}", r.stdout);
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&listing).unwrap()).unwrap();
        assert_eq!(doc["count"], 0, "{doc}");

        // stdout closed early (`| head -c 1`): the file still gets every line.
        db.query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
             INSERT INTO orgs (id, name, created_at) \
             SELECT 'org_' || (100000000000 + i), 'Org', '2026-01-01 00:00:00' FROM n",
        );
        let piped = dir.path().join("orgs.jsonl");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "'{}' orgs list --format jsonl -o '{}' | head -c 1 >/dev/null",
                assert_cmd::cargo::cargo_bin("ecomind-admin").display(),
                piped.display()
            ))
            .env("DATABASE_URL", db.url())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read_to_string(&piped).unwrap();
        assert_eq!(text.lines().count(), 5001, "5,000 orgs and the summary line");
        assert!(text.ends_with("{\"format_version\":\"1\",\"command\":\"orgs list\",\"type\":\"summary\",\"count\":5000}\n"));
        std::fs::remove_file(&piped).unwrap();

        // A failure: the JSON file becomes the error document, whole.
        let r = db.run(&["users", "list", "--org", "org_000000000000", "--output", f]);
        r.expect_code(4);
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(doc["error"]["exit_code"], 4, "{doc}");
        assert_eq!(validate_stdout(&doc.to_string()), 1);
        // In CSV there is no error document: the file is left as it was.
        let csv = dir.path().join("orgs.csv");
        std::fs::write(&csv, "the previous report\n").unwrap();
        let r = db.run(&["users", "list", "--org", "org_000000000000", "--format", "csv", "-o", csv.to_str().unwrap()]);
        r.expect_code(4);
        assert_eq!(std::fs::read_to_string(&csv).unwrap(), "the previous report\n");
        assert_eq!(files_in(dir.path()), ["orgs.csv", "report.json", "users.json", "users.jsonl"]);
    }

    /// `--output` into a directory that cannot be written to: exit 6 before anything
    /// runs (no org is created), no file and no temporary file.
    fn output_to_a_read_only_directory_fails_before_running(db) {
        use std::os::unix::fs::PermissionsExt;
        db.run(&["migrate", "up"]).expect_code(0);
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Everything the unprivileged user must reach: the temporary dirs and the
        // SQLite database.
        for p in [dir.path()].into_iter().chain(db.sqlite_dir()) {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        if let Some(file) = db.sqlite_file() {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        let out = ro.join("report.json");
        // root may write anywhere: run as nobody, for whom the directory is read-only.
        let mut cmd = if unsafe { libc_geteuid() } == 0 {
            let mut c = assert_cmd::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(assert_cmd::cargo::cargo_bin("ecomind-admin"))
                .current_dir(dir.path())
                .env("DATABASE_URL", db.url());
            c
        } else {
            let mut c = db.cmd();
            c.current_dir(dir.path());
            c
        };
        let r = Run::from(
            cmd.args(["create-org", "--name", "Never", "--format", "json", "--output", out.to_str().unwrap()])
                .output()
                .unwrap(),
        );
        r.expect_code(6);
        assert!(r.stderr.contains("cannot write --output"), "{}", r.stderr);
        assert!(r.stderr.contains("nothing was run"), "{}", r.stderr);
        assert_eq!(validate_stdout(&r.stdout), 1, "the error document on stdout: {}", r.stdout);
        assert!(files_in(&ro).is_empty(), "{:?}", files_in(&ro));
        assert_eq!(db.query("SELECT count(*) FROM orgs"), "0");
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// The jq examples of docs/machine-interface.md "Machine interface" run as printed, in order, on one
/// SQLite database: each exits 0 (jq parsed what ecomind-admin printed and found what
/// it selects), and some say what they must.
#[test]
fn readme_jq_examples_run() {
    let readme = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/machine-interface.md"),
    )
    .unwrap();
    let section = readme
        .split("## Machine interface")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/machine-interface.md has a Machine interface section");
    let examples: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("ecomind-admin ") && l.contains("jq "))
        .collect();
    assert!(examples.len() >= 15, "{examples:?}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("password.txt"), "a fine password 123\n").unwrap();
    let path = path_with_bin();
    let url = format!("sqlite://{}/ecomind.db?mode=rwc", dir.path().display());
    let mut outputs = Vec::new();
    for line in &examples {
        let out = std::process::Command::new("sh")
            .args(["-c", line])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("DATABASE_URL", &url)
            .output()
            .expect("sh");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success() && !stderr.contains("jq: error"),
            "{line}\nexit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status.code()
        );
        outputs.push(stdout.trim().to_owned());
    }
    let said = |needle: &str, want: &str| {
        let i = examples.iter().position(|l| l.contains(needle)).unwrap();
        assert_eq!(outputs[i], want, "{}", examples[i]);
    };
    said("migrate up", head_revision());
    said("migrate current", "true");
    said("create-org", "org_0123456789ab");
    said("create-admin", "true");
    said("set-role", "admin -> owner");
    said("reset-password", "ecomind-admin");
    said("upgrade", "up-to-date");
    said("verify-schema", "PASSED");
}

/// SIGTERM while `--output` is being written: FILE gets the error document (kind
/// `terminated`, exit 143), whole, and no temporary file is left.
#[test]
fn output_after_sigterm_holds_the_error_document() {
    use crate::common::{Blocker, PgDb, send, wait_for};
    let db = PgDb::new();
    db.run(&["migrate", "up"]).expect_code(0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.json");
    let blocker = Blocker::lock(&db, "audit_logs");
    let child = db
        .std_cmd()
        .args([
            "audit",
            "suspicious-accounts",
            "--output",
            file.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the audit waiting on the lock", 20, || {
        db.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'ecomind-admin%' \
             AND datname = current_database() AND wait_event_type = 'Lock'",
        ) == "1"
    });
    send(&child, "-TERM");
    let r = Run::from(child.wait_with_output().unwrap());
    r.expect_code(143);
    drop(blocker);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(doc["error"]["kind"], "terminated", "{doc}");
    assert_eq!(doc["error"]["exit_code"], 143, "{doc}");
    assert_eq!(validate_stdout(&doc.to_string()), 1);
    assert_eq!(files_in(dir.path()), ["audit.json"]);
}
