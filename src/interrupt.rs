//! Ctrl-C and SIGTERM: one process-wide flag that every stage running external processes
//! polls.
//!
//! Invariants: the handler runs on its own thread (ctrlc), never in signal context; it is
//! installed once per process, by `lib::run` before the first external process of every
//! command that runs any, so there is no window in which a signal kills keg and leaves a
//! child behind; children run in their own process groups ([`crate::process`]), so a
//! terminal's Ctrl-C reaches keg alone and keg ends them itself. The first signal sets the
//! flag and keg stops cleanly (running builds are terminated and waited for). A second
//! signal, or the first one while the main thread is in an [`abortable`] phase (registry
//! queries, which change nothing and may block in a network read), ends keg at once with
//! exit code 130, after killing every process group it started ([`crate::process::kill_all`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::error::Error;

/// Set by the Ctrl-C / SIGTERM handler.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How many abortable phases the main thread is in.
static ABORTABLE: AtomicUsize = AtomicUsize::new(0);

/// Installs the handler (a second call keeps the first) and returns the flag to poll.
pub fn install() -> &'static AtomicBool {
    let _ = ctrlc::set_handler(|| {
        let again = INTERRUPTED.swap(true, Ordering::SeqCst);
        if again || ABORTABLE.load(Ordering::SeqCst) > 0 {
            crate::process::kill_all();
            eprintln!("interrupted");
            std::process::exit(Error::Interrupted.exit_code());
        }
    });
    &INTERRUPTED
}

/// Runs `f`, a phase that changes nothing (registry queries), during which Ctrl-C or
/// SIGTERM ends keg at once instead of waiting for network reads to time out. Only the main
/// thread's phases count: a worker's query runs while builds that must be stopped cleanly
/// are running.
pub fn abortable<T>(f: impl FnOnce() -> T) -> T {
    struct Leave(bool);
    impl Drop for Leave {
        fn drop(&mut self) {
            if self.0 {
                ABORTABLE.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
    let main = std::thread::current().name() == Some("main");
    if main {
        ABORTABLE.fetch_add(1, Ordering::SeqCst);
    }
    let _leave = Leave(main);
    if main && interrupted() {
        crate::process::kill_all();
        eprintln!("interrupted");
        std::process::exit(Error::Interrupted.exit_code());
    }
    f()
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
