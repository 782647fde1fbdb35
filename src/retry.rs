//! Retries of transient faults: `--retries N` attempts after the first, with exponential
//! backoff (1 s, 2 s, 4 s, ... at most 30 s), each one described for the log, the summary
//! and the JSON events.
//!
//! Invariants: only a fault that names a connection, a registry's 5xx or an engine that
//! stopped answering is retried ([`transient`]); a failed build step, a timeout or an
//! interrupt never is; a wait between attempts ends at once on Ctrl-C.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One retry: which attempt failed, doing what, why, and how long keg waits before the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// The attempt that failed (1 for the first).
    pub attempt: u32,
    /// What was attempted, as a phrase after "attempt N": `on builder-1`,
    /// `of docker push x:1`, `of the query for x:1`.
    pub what: String,
    pub reason: String,
    pub wait: Duration,
}

impl std::fmt::Display for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "attempt {} {} failed ({}); retried after {}",
            self.attempt,
            self.what,
            self.reason,
            crate::process::human(self.wait)
        )
    }
}

/// The wait before attempt `attempt + 1` after attempt `attempt` (1, 2, ...) failed:
/// 1 s, 2 s, 4 s, ... at most 30 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(5)).min(Duration::from_secs(30))
}

/// Sleeps for `wait` unless `cancel` is set first; false when cancelled.
pub fn sleep(wait: Duration, cancel: &AtomicBool) -> bool {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if cancel.load(Ordering::SeqCst) {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
    !cancel.load(Ordering::SeqCst)
}

/// Output that says a connection, a registry or the engine failed (lowercase markers).
pub const TRANSIENT: &[&str] = &[
    "connection refused",
    "connection reset",
    "broken pipe",
    "i/o timeout",
    "no such host",
    "cannot connect to the docker daemon",
    "error during connect",
    "tls handshake timeout",
    "server misbehaving",
    "500 internal server error",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway timeout",
    "429 too many requests",
    "unexpected eof",
    "closing transport",
    "rpc error: code = unavailable",
];

/// Whether `text` (a command's error or output) names a transient fault.
pub fn transient(text: &str) -> bool {
    let text = text.to_lowercase();
    TRANSIENT.iter().any(|marker| text.contains(marker))
}

/// Runs `attempt` up to `1 + retries` times while it fails with an error `retry` accepts,
/// waiting [`backoff`] between attempts; every retry is described by `what` and handed to
/// `noted` before the wait. The last result is returned (the last error when all failed or
/// `cancel` was set).
pub fn run<T, E: std::fmt::Display>(
    retries: u32,
    cancel: &AtomicBool,
    what: &str,
    retry: impl Fn(&E) -> bool,
    mut noted: impl FnMut(Retry),
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut done = 0;
    loop {
        let error = match attempt() {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        done += 1;
        if done > retries || !retry(&error) || cancel.load(Ordering::SeqCst) {
            return Err(error);
        }
        let wait = backoff(done);
        noted(Retry {
            attempt: done,
            what: what.to_string(),
            reason: error.to_string(),
            wait,
        });
        if !sleep(wait, cancel) {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let secs: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn transient_faults_are_retried_and_described() {
        let never = AtomicBool::new(false);
        let mut calls = 0;
        let mut notes = Vec::new();
        let result: Result<u32, String> = run(
            2,
            &never,
            "of the test",
            |e: &String| transient(e),
            |r| notes.push(r.to_string()),
            || {
                calls += 1;
                if calls < 2 {
                    Err("dial tcp: Connection refused".to_string())
                } else {
                    Ok(calls)
                }
            },
        );
        assert_eq!(result, Ok(2));
        assert_eq!(
            notes,
            ["attempt 1 of the test failed (dial tcp: Connection refused); retried after 1s"]
        );
    }

    #[test]
    fn other_faults_and_exhausted_retries_end_at_once() {
        let never = AtomicBool::new(false);
        let mut calls = 0;
        let step: Result<(), String> = run(
            2,
            &never,
            "x",
            |e: &String| transient(e),
            |_| {},
            || {
                calls += 1;
                Err("process \"/bin/sh -c exit 3\" did not complete successfully".to_string())
            },
        );
        assert!(step.is_err());
        assert_eq!(calls, 1, "a failed step is attempted once");
        let mut calls = 0;
        let none: Result<(), String> = run(
            0,
            &never,
            "x",
            |_: &String| true,
            |_| {},
            || {
                calls += 1;
                Err("503 Service Unavailable".to_string())
            },
        );
        assert!(none.is_err());
        assert_eq!(calls, 1, "--retries 0 attempts once");
    }

    #[test]
    fn a_cancelled_wait_ends_early() {
        let cancel = AtomicBool::new(true);
        let start = Instant::now();
        assert!(!sleep(Duration::from_secs(5), &cancel));
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
