//! Ctrl-C and SIGTERM (a pipeline or Kubernetes stopping the job): cancel what we run
//! on the server, say in one line what was and was not applied, exit 130 / 143.
//!
//! A dedicated thread waits for the signals (signal-hook), so that a signal is handled
//! even while the main thread is blocked (in a prompt, say). On the first signal it
//! connects once more and cancels every statement of this process (the sessions carry
//! this process's `application_name`, [`crate::db::session_tag`]), so that nothing of
//! ours stays queued on the server (an `ALTER TABLE` waiting for a lock blocks the API's
//! readers behind it), then reads the version the database is at, prints the line and
//! exits. The main thread, once it sees [`interrupted`], prints nothing more and waits
//! for that exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::config::DatabaseConfig;
use crate::db::{self, Open};
use crate::error::{Error, Kind};
use crate::migrations;
use crate::output::Output;
use crate::spec::Work;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Has a signal arrived? Then the signal thread owns the exit.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A fleet run's signal: 0 none, else the exit code it stands for (130 / 143).
static FLEET_STOP: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// The signal a fleet run received (its exit code), if any.
pub fn fleet_stop() -> Option<u8> {
    match FLEET_STOP.load(Ordering::SeqCst) {
        0 => None,
        code => Some(code),
    }
}

/// A fleet run's handler: the first SIGINT / SIGTERM only records itself (the run stops
/// starting databases, cancels the running ones' statements and prints its summary);
/// a second one exits at once.
pub fn install_fleet() {
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
            let code = if sig == SIGTERM {
                Kind::Terminated
            } else {
                Kind::Interrupted
            }
            .code();
            FLEET_STOP.store(code, Ordering::SeqCst);
            crate::backup::kill_running_tool();
            if seen.next().is_some() {
                crate::output::remove_partial_output();
                terminal.restore();
                std::process::exit(i32::from(code));
            }
        });
}

/// Handle SIGINT and SIGTERM for a command that works on `config`'s database.
pub fn install(config: DatabaseConfig, work: Work, ui: Output) {
    if work == Work::Offline {
        return;
    }
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
            INTERRUPTED.store(true, Ordering::SeqCst);
            crate::backup::kill_running_tool();
            crate::output::silence_errors();
            let (name, kind) = if sig == SIGTERM {
                ("SIGTERM", Kind::Terminated)
            } else {
                ("SIGINT", Kind::Interrupted)
            };
            // The prompt that was asking (if any) never gets to clean up: echo back on,
            // the cursor shown, before the line below is printed.
            terminal.restore();
            // A second signal: stop waiting for the server.
            let again = terminal.clone();
            std::thread::spawn(move || {
                if signals.forever().next().is_some() {
                    crate::output::remove_partial_output();
                    again.restore();
                    std::process::exit(i32::from(kind.code()));
                }
            });
            let after = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()
                .and_then(|rt| {
                    rt.block_on(async {
                        tokio::time::timeout(Duration::from_secs(3), cancel_and_read(&config, work))
                            .await
                            .ok()
                    })
                });
            let what = match (work, after) {
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
            };
            let err = Error::new(
                kind,
                format!(
                    "interrupted by {name}: the running statement was cancelled; {what}"
                ),
                None,
            );
            ui.emit_error(&err);
            ui.error(&err);
            // `--output`: the file gets the error document (CSV: FILE is left as it was).
            let _ = ui.finish_output(false);
            std::process::exit(i32::from(kind.code()));
        });
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
    if work != Work::Schema {
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
