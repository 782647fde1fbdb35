//! Ctrl-C and SIGTERM: one process-wide flag that every stage running external processes
//! polls.
//!
//! Invariants: the handler only sets the flag (no I/O, no locks in signal context); it is
//! installed once per process, before the first external process starts, so there is no
//! window in which a signal kills keg and leaves a child behind; children run in their own
//! process groups ([`crate::process`]), so a terminal's Ctrl-C reaches keg alone and keg ends
//! them itself.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;

/// Set by the Ctrl-C / SIGTERM handler.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (a second call keeps the first) and returns the flag to poll.
pub fn install() -> &'static AtomicBool {
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    &INTERRUPTED
}

/// Whether Ctrl-C or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Err(Interrupted) once Ctrl-C or SIGTERM arrived.
pub fn check() -> Result<(), Error> {
    if interrupted() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}
