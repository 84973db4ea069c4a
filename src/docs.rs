//! The CLI describing itself: the man page (roff, every subcommand) and shell
//! completions, generated at run time from the whole command line as clap describes
//! it (`Cli::command()`, handed in: [`crate::commands::Ctx::program`]). The commands
//! `man` and `completions` (`src/commands/`) print them.

use clap_complete::Shell;
use clap_mangen::Man;

use crate::spec::{Grants, Info, Privilege};

/// Render the page of `cmd` (the whole command line).
pub fn render(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    Man::new(cmd.clone()).render(&mut out)?;
    // One section per subcommand, depth first, with its own synopsis and options.
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<u8>) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{path} {}", sub.get_name());
            let title = name.to_uppercase();
            out.extend_from_slice(format!(".SH \"{title}\"\n").as_bytes());
            let sub_cmd = sub.clone().bin_name(&name);
            let man = Man::new(sub_cmd);
            man.render_description_section(out)?;
            man.render_synopsis_section(out)?;
            man.render_options_section(out)?;
            walk(sub, &name, out)?;
        }
        Ok(())
    }
    walk(&cmd, "ecomind-admin", &mut out)?;
    Ok(out)
}

/// Write the completions of `cmd` (the whole command line) for `shell` into `out`.
pub fn generate(mut cmd: clap::Command, shell: Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut cmd, "ecomind-admin", out);
}

/// docs/compatibility.md's "Minimum grants per command" table, from each command's [`Info`]:
/// commands that need the same are one row. A test keeps the page equal to it.
pub fn grants_table(commands: &[&'static Info]) -> String {
    let mut rows: Vec<(Vec<String>, String)> = Vec::new();
    for info in commands.iter().filter(|i| i.database) {
        let needs = needs(info.grants.as_ref());
        let name = format!("`{}`", info.name);
        match rows.iter_mut().find(|(_, n)| *n == needs) {
            Some((names, _)) => names.push(name),
            None => rows.push((vec![name], needs)),
        }
    }
    let mut out = String::from(
        "| command | needs (besides CONNECT, USAGE on the schema and SELECT on the bookkeeping tables) |\n|---|---|\n",
    );
    for (names, needs) in rows {
        out.push_str(&format!("| {} | {needs} |\n", names.join(", ")));
    }
    out
}

/// What one command needs, in words.
fn needs(grants: Option<&Grants>) -> String {
    let Some(g) = grants.filter(|g| g.writes || !g.tables.is_empty()) else {
        return "SELECT on the API's tables (reads only)".to_owned();
    };
    let mut parts = Vec::new();
    if g.create_in_schema {
        parts.push("CREATE on the schema".to_owned());
    }
    if g.owns_tables {
        parts.push("ownership of the API's tables (ALTER, DROP)".to_owned());
    }
    for privilege in [
        Privilege::Select,
        Privilege::Insert,
        Privilege::Update,
        Privilege::Delete,
    ] {
        let tables: Vec<String> = g
            .tables
            .iter()
            .filter(|(_, p)| *p == privilege)
            .map(|(t, _)| format!("`{t}`"))
            .collect();
        if !tables.is_empty() {
            parts.push(format!(
                "{} on {}",
                privilege.sql(),
                crate::text::join_and(&tables)
            ));
        }
    }
    if g.writes {
        parts
            .push("a session that may write (not a standby or a read-only transaction)".to_owned());
    }
    parts.join("; ")
}
