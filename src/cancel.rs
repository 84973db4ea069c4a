//! One cancellation path, and no process-wide mutable state: a [`Cancel`] token made by
//! `main` and handed down (`lib::run`, `Output`, `commands::Ctx`), shared with the
//! signal thread.
//!
//! On SIGINT / SIGTERM the signal thread records the signal here, stops the client
//! tool we run (pg_dump) and removes what it was writing, cancels our statements on
//! the server and composes the one line that says what was and was not applied. The
//! command, its statement cancelled, returns through the normal path; `lib::run` then
//! takes that line as its error ([`Cancel::take_report`]) and `main` prints it and
//! exits 130 / 143. When the command cannot return (a prompt blocked on the terminal,
//! a SQLite statement still running), the signal thread ends the process itself with
//! the exit `main` handed in, once no critical section ([`Cancel::hold`]) is open.
//! Temporary files and child processes are registered through guards that forget
//! them on `Drop`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::error::Error;

/// How the process ends when the library must end it (a second signal, a command that
/// cannot return): `main`'s exit.
pub type Exit = fn(u8) -> !;

/// Some token of this process recorded SIGINT or SIGTERM (for a prompt, which holds no
/// token: see [`wait_for_a_recorded_signal`]).
static RECORDED: AtomicBool = AtomicBool::new(false);

/// A read came back interrupted (EINTR): when that was SIGINT or SIGTERM, the signal
/// thread records it within moments. Waits up to `wait` for that; false: it was another
/// signal (a terminal resize, say), and the read can be asked again.
pub fn wait_for_a_recorded_signal(wait: Duration) -> bool {
    let deadline = std::time::Instant::now() + wait;
    while !RECORDED.load(Ordering::SeqCst) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// The cancellation token: cheap to clone, all clones the same token.
#[derive(Clone)]
pub struct Cancel(Arc<Inner>);

struct Inner {
    exit: Exit,
    /// 0: no signal; else the exit code it stands for (130 / 143).
    signal: AtomicU8,
    /// From the signal on, only the signal's own line is printed.
    silenced: AtomicBool,
    /// A signal handler that composes the signal's line is installed (not a fleet's).
    reporting: AtomicBool,
    /// Critical sections open now (the signal thread's exit waits for them).
    holds: AtomicUsize,
    /// `--output`'s temporary file, removed when the process ends abruptly.
    partial: Mutex<Option<PathBuf>>,
    /// The client tools running now (pid, the file each writes): several in a fleet.
    children: Mutex<Vec<(u32, Option<PathBuf>)>>,
    /// The signal's line, once composed; taken by whoever prints it.
    report: Mutex<Report>,
    ready: Condvar,
}

#[derive(Default)]
enum Report {
    #[default]
    Pending,
    Ready(Error),
    Taken,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("signal", &self.signal())
            .finish()
    }
}

impl Cancel {
    pub fn new(exit: Exit) -> Self {
        Cancel(Arc::new(Inner {
            exit,
            signal: AtomicU8::new(0),
            silenced: AtomicBool::new(false),
            reporting: AtomicBool::new(false),
            holds: AtomicUsize::new(0),
            partial: Mutex::new(None),
            children: Mutex::new(Vec::new()),
            report: Mutex::new(Report::Pending),
            ready: Condvar::new(),
        }))
    }

    /// The signal received (its exit code), if any.
    pub fn signal(&self) -> Option<u8> {
        match self.0.signal.load(Ordering::SeqCst) {
            0 => None,
            code => Some(code),
        }
    }

    pub fn interrupted(&self) -> bool {
        self.signal().is_some()
    }

    /// Record a signal (the first one counts); true when it is the first.
    pub fn record(&self, code: u8) -> bool {
        RECORDED.store(true, Ordering::SeqCst);
        self.0
            .signal
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// From now on, errors the interrupted command still reports are not printed.
    pub fn silence(&self) {
        self.0.silenced.store(true, Ordering::SeqCst);
    }

    pub fn silenced(&self) -> bool {
        self.0.silenced.load(Ordering::SeqCst)
    }

    /// A critical section: the process is not ended by the signal thread while the
    /// guard lives (a file being renamed into place, a record being written).
    pub fn hold(&self) -> Hold {
        self.0.holds.fetch_add(1, Ordering::SeqCst);
        Hold(self.clone())
    }

    /// End the process now with `code`, after the open critical sections close
    /// (at most 2 s), removing `--output`'s temporary file.
    pub fn exit(&self, code: u8) -> ! {
        for _ in 0..200 {
            if self.0.holds.load(Ordering::SeqCst) == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.remove_partial();
        (self.0.exit)(code)
    }

    /// Register `--output`'s temporary file (None: it was renamed or removed).
    pub fn set_partial(&self, tmp: Option<&Path>) {
        if let Ok(mut p) = self.0.partial.lock() {
            *p = tmp.map(Path::to_owned);
        }
    }

    /// Remove `--output`'s temporary file (a second signal, a panic): FILE stays as it
    /// was.
    pub fn remove_partial(&self) {
        if let Some(tmp) = self.0.partial.lock().ok().and_then(|mut p| p.take()) {
            let _ = std::fs::remove_file(tmp);
        }
    }

    /// A client tool runs (`pid`), writing `file`: stopped and removed on a signal,
    /// forgotten when the guard drops. `pid` 0: no process, a file that is not complete
    /// yet (removed on a signal).
    pub fn child(&self, pid: u32, file: Option<&Path>) -> ChildGuard {
        if let Ok(mut c) = self.0.children.lock() {
            c.push((pid, file.map(Path::to_owned)));
        }
        ChildGuard(self.clone(), pid)
    }

    /// Stop the client tools running now, if any, and remove the files they were
    /// writing (a pg_dump must not go on writing after we exit, and half a backup is
    /// not one).
    pub fn kill_child(&self) {
        let running = self
            .0
            .children
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        for (pid, file) in running {
            // 0: a file alone (a backup not yet complete), no process.
            if let Ok(pid) = i32::try_from(pid)
                && pid > 0
            {
                // SAFETY: kill(2) with a pid we spawned; no memory is touched.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            if let Some(file) = file {
                let _ = std::fs::remove_file(file);
            }
        }
    }

    /// A handler that will compose the signal's line is installed.
    pub fn arm(&self) {
        self.0.reporting.store(true, Ordering::SeqCst);
    }

    /// After a signal, the line a handler composed (`lib::run` returns it as the
    /// command's error): waits up to `wait` for it. None: no handler composes one (a
    /// fleet says it itself), or the signal thread prints it.
    pub fn interrupted_error(&self, wait: Duration) -> Option<Error> {
        if !self.interrupted() || !self.0.reporting.load(Ordering::SeqCst) {
            return None;
        }
        self.take_report(wait)
    }

    /// The signal thread: the line is composed.
    pub fn report(&self, err: Error) {
        if let Ok(mut r) = self.0.report.lock() {
            if matches!(*r, Report::Pending) {
                *r = Report::Ready(err);
            }
            self.0.ready.notify_all();
        }
    }

    /// Take the signal's line to print it: waits up to `wait` for the signal thread
    /// to compose it. None: the other side has it (or it never came).
    pub fn take_report(&self, wait: Duration) -> Option<Error> {
        let deadline = std::time::Instant::now() + wait;
        let mut r = self.0.report.lock().ok()?;
        // A condition variable may wake early: wait out the whole time.
        while matches!(*r, Report::Pending) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            r = self.0.ready.wait_timeout(r, left).ok()?.0;
        }
        match std::mem::replace(&mut *r, Report::Taken) {
            Report::Ready(err) => Some(err),
            Report::Pending => {
                *r = Report::Pending;
                None
            }
            Report::Taken => None,
        }
    }
}

/// An open critical section ([`Cancel::hold`]).
pub struct Hold(Cancel);

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.0.holds.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running client tool ([`Cancel::child`]); forgotten on drop.
pub struct ChildGuard(Cancel, u32);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(mut c) = self.0.0.children.lock() {
            c.retain(|(pid, _)| *pid != self.1);
        }
    }
}
