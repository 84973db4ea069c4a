//! The CLI's own surface: help, version, completions kept in sync.

use crate::common::*;

#[test]
fn help_documents_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let r = Run::from(bin(dir.path()).arg("--help").output().unwrap());
    r.expect_code(0);
    for code in ["0 ", "1 ", "2 ", "3 ", "4 ", "5 "] {
        assert!(
            r.stdout.contains(&format!("  {code} ")),
            "exit code {code} missing:\n{}",
            r.stdout
        );
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
