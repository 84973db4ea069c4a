//! The CLI's own surface: help, version, completions kept in sync.

use crate::common::*;

/// The exit-code table of docs/machine-interface.md, as (code, reason) pairs.
fn readme_exit_codes() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/machine-interface.md"
    ))
    .unwrap();
    let section = &readme[readme.find("## Exit codes").expect("an Exit codes section")..];
    section
        .lines()
        .skip_while(|l| !l.starts_with("| code |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            (cells[0].to_owned(), cells[1].to_owned())
        })
        .collect()
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn help_and_man_list_the_readmes_exit_reasons() {
    let rows = readme_exit_codes();
    assert!(rows.len() >= 7, "{rows:?}");
    for code in ["0", "1", "2", "3", "4", "5", "6", "130", "143"] {
        assert!(
            rows.iter().any(|(c, _)| c == code),
            "{code} not in the README"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let help = Run::from(bin(dir.path()).arg("--help").output().unwrap());
    help.expect_code(0);
    let man = Run::from(bin(dir.path()).arg("man").output().unwrap());
    man.expect_code(0);
    let help = squash(&help.stdout);
    let man = squash(&man.stdout.replace("\\-", "-").replace("\\*(Aq", "'"));
    for (code, reason) in &rows {
        let line = squash(&format!("{code} {reason}"));
        assert!(help.contains(&line), "--help lacks: {line}\n{help}");
        assert!(man.contains(&line), "the man page lacks: {line}");
    }
    for must in [
        "under `doctor`",
        "under `audit`",
        "org not found",
        "email or org id taken",
        "password policy",
    ] {
        assert!(help.contains(must), "--help lacks {must}");
    }
}

#[test]
fn committed_completions_match_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, file) in [
        ("bash", "ecomind-admin.bash"),
        ("zsh", "_ecomind-admin"),
        ("fish", "ecomind-admin.fish"),
        ("powershell", "_ecomind-admin.ps1"),
        ("elvish", "ecomind-admin.elv"),
    ] {
        let r = Run::from(
            bin(dir.path())
                .args(["completions", shell])
                .output()
                .unwrap(),
        );
        r.expect_code(0);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("completions")
            .join(file);
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!("{} missing: run scripts/gen-completions.sh", path.display())
        });
        assert!(
            committed == r.stdout,
            "{} is stale: run scripts/gen-completions.sh",
            path.display()
        );
    }
}

#[test]
fn a_bug_is_one_line_and_exit_5_with_a_report_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let r = Run::from(
        bin(dir.path())
            .env("ECOMIND_TEST_PANIC", "1")
            .args(["migrate", "status"])
            .output()
            .unwrap(),
    );
    r.expect_code(5);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stderr);
    assert!(
        lines[0].starts_with("error: internal error: ECOMIND_TEST_PANIC is set at src/lib.rs:")
    );
    assert!(lines[1].contains("this is a bug in ecomind-admin"));
    // RUST_BACKTRACE asks for color-eyre's panic report.
    let r = Run::from(
        bin(dir.path())
            .env("ECOMIND_TEST_PANIC", "1")
            .env("RUST_BACKTRACE", "1")
            .args(["migrate", "status"])
            .output()
            .unwrap(),
    );
    r.expect_code(5);
    assert!(
        r.stderr.contains("The application panicked"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("BACKTRACE"), "{}", r.stderr);
}

/// The grants table of docs/compatibility.md is what the commands state (each
/// command's `Info`).
#[test]
fn the_readmes_grants_table_is_the_commands() {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/compatibility.md"
    ))
    .unwrap();
    let want = ecomind_admin::docs::grants_table(&ecomind_admin::cli::Command::all());
    assert!(
        readme.contains(&want),
        "docs/compatibility.md's \"Minimum grants per command\" table differs from the commands'; it is:\n{want}"
    );
}
