//! Ctrl-C and SIGTERM (a pipeline or Kubernetes stopping the job): cancel what we run
//! on the server, say in one line what was and was not applied, exit 130 / 143.
//!
//! A dedicated thread waits for the signals (signal-hook), so that a signal is handled
//! even while the main thread is blocked (in a prompt, say). On the first signal it
//! records it in the [`Cancel`] token, stops the client tool we run, connects once
//! more and cancels every statement of this process (the sessions carry this
//! process's `application_name`, [`crate::db::session_tag`]), so that nothing of ours
//! stays queued on the server (an `ALTER TABLE` waiting for a lock blocks the API's
//! readers behind it), reads the version the database is at and composes the line.
//! The command, its statement cancelled, returns through the normal path and
//! `lib::run` takes the line as its error; a command that cannot return (a prompt, a
//! SQLite statement) is ended by this thread, with the line, after a short grace.

use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::cancel::Cancel;
use crate::config::DatabaseConfig;
use crate::db::{self, Open};
use crate::error::{Error, Kind};
use crate::migrations;
use crate::output::Output;
use crate::spec::Work;

/// How long the signal thread waits for the command to come back with the line
/// before it ends the process itself.
const GRACE: Duration = Duration::from_millis(500);

fn kind_of(sig: i32) -> (&'static str, Kind) {
    if sig == SIGTERM {
        ("SIGTERM", Kind::Terminated)
    } else {
        ("SIGINT", Kind::Interrupted)
    }
}

/// A fleet run's handler: the first SIGINT / SIGTERM only records itself (the run stops
/// starting databases, cancels the running ones' statements and prints its summary);
/// a second one exits at once.
pub fn install_fleet(cancel: Cancel) {
    let terminal = crate::terminal::save();
    let _ = std::thread::Builder::new()
        .name("fleet-signals".into())
        .spawn(move || {
            let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
                return;
            };
            let mut seen = signals.forever();
            let Some(sig) = seen.next() else {
                return;
            };
            let code = kind_of(sig).1.code();
            cancel.record(code);
            cancel.kill_child();
            if seen.next().is_some() {
                terminal.restore();
                cancel.exit(code);
            }
        });
}

/// Handle SIGINT and SIGTERM for a command that works on `config`'s database.
pub fn install(cancel: Cancel, config: DatabaseConfig, work: Work, ui: Output) {
    if work == Work::Offline {
        return;
    }
    cancel.arm();
    // The terminal as it is now, before any prompt changes it.
    let terminal = std::sync::Arc::new(crate::terminal::save());
    // The handlers are registered by the thread itself: when it cannot start, or cannot
    // register them, the default handlers stay (the process dies, the server rolls back).
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
                return;
            };
            let Some(sig) = signals.forever().next() else {
                return;
            };
            let (name, kind) = kind_of(sig);
            cancel.record(kind.code());
            cancel.kill_child();
            cancel.silence();
            // The prompt that was asking (if any) never gets to clean up: echo back on,
            // the cursor shown, before the line is printed; and again until the process
            // ends, in case the prompt's own code turned echo off after this (it was
            // seen, rarely, under load: the shell got a terminal without echo).
            terminal.restore();
            let keep = terminal.clone();
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(10));
                    keep.restore_settings();
                }
            });
            // A second signal: stop waiting for the server.
            let again = terminal.clone();
            let second = cancel.clone();
            std::thread::spawn(move || {
                if signals.forever().next().is_some() {
                    again.restore();
                    second.exit(kind.code());
                }
            });
            let err = Error::new(
                kind,
                format!(
                    "interrupted by {name}: the running statement was cancelled; {}",
                    what_happened(&config, work)
                ),
                None,
            );
            cancel.report(err);
            // The command comes back with its statement cancelled, and `lib::run` takes
            // the line; if it has not within the grace, it cannot: end it here.
            std::thread::sleep(GRACE);
            if let Some(err) = cancel.take_report(Duration::ZERO) {
                ui.emit_error(&err);
                ui.error(&err);
                // `--output`: the file gets the error document (CSV: FILE is left as it was).
                let _ = ui.finish_output(false);
                cancel.exit(kind.code());
            }
        });
}

/// Cancel our statements and say what was and was not applied.
fn what_happened(config: &DatabaseConfig, work: Work) -> String {
    let after = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
        .and_then(|rt| {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(3), cancel_and_read(config, work))
                    .await
                    .ok()
            })
        });
    match (work, after) {
        (Work::ReadOnly | Work::Offline, _) => "nothing was written (read-only)".to_owned(),
        (Work::Fixtures, Some(Some(removed))) => removed,
        (Work::Fixtures, _) => {
            "the fixtures could not be removed now; the next run removes them first".to_owned()
        }
        (Work::Rows, _) => {
            "its transaction was rolled back unless it had committed (then the result is in the database)".to_owned()
        }
        (Work::Schema, Some(Some(at))) => format!(
            "each migration is one transaction: the database is at {at}; nothing after it was applied"
        ),
        (Work::Schema, _) => {
            "each migration is one transaction: nothing half-applied; run `migrate status` to see the version".to_owned()
        }
        (Work::Restore, Some(Some(at))) => format!(
            "the restore is one transaction, rolled back: the database is as it was, at {at}"
        ),
        (Work::Restore, _) => {
            "the restore is one transaction, rolled back: the database is as it was; run `migrate status` to see the version".to_owned()
        }
    }
}

/// Cancel this process's statements on the server (PostgreSQL) and read the version
/// the database is at (`None` when it records none).
async fn cancel_and_read(config: &DatabaseConfig, work: Work) -> Option<String> {
    let db = db::connect(
        config,
        Duration::from_secs(2),
        &crate::progress::Silent,
        Open::Existing,
    )
    .await
    .ok()?;
    if db.is_postgres() {
        let _ = db.cancel_session_statements().await;
    }
    if work == Work::Fixtures {
        return crate::deployment::remove_fixtures(&db).await.ok().map(|_| {
            "the verify-deployment fixtures were removed (their audit rows stay)".to_owned()
        });
    }
    if !matches!(work, Work::Schema | Work::Restore) {
        return None;
    }
    // Never wait behind the lock that held the command up: that read would be a
    // statement of ours left on the server.
    let state = db::read_in(db.snapshot().await.ok()?, async |txn| {
        db::set_lock_timeout(txn, Duration::from_millis(300)).await?;
        migrations::read_state(txn).await
    })
    .await
    .ok()?;
    let known = migrations::known();
    Some(match state.current() {
        Some(i) => format!("{} ({})", known[i].alembic_revision, known[i].version),
        None => "no version (nothing applied)".to_owned(),
    })
}
