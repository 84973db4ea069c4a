//! How the core (connections, locks, migrations) tells the user what it is doing
//! without knowing the terminal: it is handed a `Progress`, which `output::Output`
//! implements (notes and spinners on stderr, on a terminal only).

/// A step in progress; dropping it ends it (a spinner is cleared).
pub type Step = Box<dyn std::any::Any>;

pub trait Progress {
    /// An informational note (suppressed by -q).
    fn note(&self, msg: &str);
    /// Start a step that may take a while.
    fn step(&self, msg: &str) -> Step;
    /// How verbose the user asked us to be (-v: SQL statements are logged).
    fn verbosity(&self) -> u8;
}

/// Nothing is shown (a side connection, tests).
pub struct Silent;

impl Progress for Silent {
    fn note(&self, _msg: &str) {}
    fn step(&self, _msg: &str) -> Step {
        Box::new(())
    }
    fn verbosity(&self) -> u8 {
        0
    }
}

/// What the pipeline needs from whoever runs it: progress and notes, a warning, the
/// confirmation of the plan, and the cancellation token (a signal stops pg_dump).
pub trait Operator: Progress {
    fn warn(&self, msg: &str);
    /// The confirmation rule of destructive commands: `yes` proceeds; without a
    /// terminal, refuse; on a terminal, show `details` and ask (default No).
    fn confirm(
        &self,
        yes: bool,
        action: &str,
        details: &str,
        question: &str,
    ) -> crate::error::Result<()>;
    fn cancel(&self) -> &crate::cancel::Cancel;
}
