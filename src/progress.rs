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
