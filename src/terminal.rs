//! The terminal as we found it, put back when a signal ends the process: a prompt
//! interrupted by Ctrl-C leaves echo off (password prompts) or the cursor hidden
//! (confirmations), because the exit skips the prompt's own cleanup.

/// The terminal settings of stdin at start (None: not a terminal).
pub struct Saved(Option<libc::termios>);

/// Remember stdin's terminal settings.
pub fn save() -> Saved {
    // SAFETY: isatty and tcgetattr only read the state of fd 0 into a zeroed struct.
    unsafe {
        if libc::isatty(0) != 1 {
            return Saved(None);
        }
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut t) != 0 {
            return Saved(None);
        }
        Saved(Some(t))
    }
}

impl Saved {
    /// Put the settings back only (echo on again); nothing written.
    pub fn restore_settings(&self) {
        // SAFETY: tcsetattr with settings tcgetattr returned for the same fd.
        unsafe {
            if let Some(t) = &self.0 {
                libc::tcsetattr(0, libc::TCSANOW, t);
            }
        }
    }

    /// Put the settings back (echo on again), and show the cursor on the terminals we
    /// write to.
    pub fn restore(&self) {
        // SAFETY: tcsetattr with settings tcgetattr returned for the same fd; write of
        // a static buffer to fds 1 and 2 when they are terminals.
        unsafe {
            if let Some(t) = &self.0 {
                libc::tcsetattr(0, libc::TCSANOW, t);
            }
            const SHOW_CURSOR: &[u8] = b"\x1b[?25h";
            for fd in [2, 1] {
                if libc::isatty(fd) == 1 {
                    libc::write(fd, SHOW_CURSOR.as_ptr().cast(), SHOW_CURSOR.len());
                    break;
                }
            }
        }
    }
}
