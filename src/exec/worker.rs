//! One build: the context tar streamed from git into `docker build -`'s stdin, output to
//! the node's log file, step lines reported as events, cancellation and a time limit.
//!
//! Invariants: no temp files and no checkout (the tar goes from the object database
//! straight into the pipe); the docker child is run through [`crate::process`], so it is
//! always waited for, its whole process group ends with it (plugin processes like
//! `docker-buildx` too) and its pipes cannot hang the worker; a worker never prints, it only
//! sends events.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::docker::DockerCommand;
use crate::git::GitCache;
use crate::process;
use crate::report::Event;

/// Lines of a failed build's log shown in the report.
pub const TAIL_LINES: usize = 40;

/// Where a node's build context comes from.
pub struct ContextSource<'a> {
    pub cache: &'a GitCache,
    pub commit: &'a str,
    pub directory: &'a str,
}

/// Runs `command` with the context on stdin. Ok on success; Err(reason) otherwise
/// (`timed out after ...` when `timeout` passed).
pub fn run_build(
    node: usize,
    command: &DockerCommand,
    context: ContextSource<'_>,
    log_path: &Path,
    events: &Sender<Event>,
    cancel: &AtomicBool,
    timeout: Option<Duration>,
) -> Result<(), String> {
    let log = File::create(log_path)
        .map_err(|e| format!("cannot create log {}: {e}", log_path.display()))?;
    let log = Arc::new(Mutex::new(log));
    append(&log, &format!("$ {}\n", command.display()));
    let mut child = process::spawn(command.to_command(), Stdio::piped())
        .map_err(|e| format!("cannot run docker: {e}"))?;
    let stdin = child.stdin.take();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let log = Arc::clone(&log);
        let events = events.clone();
        process::read_lines(stream, move |line| pump(node, line, &log, &events))
    })
    .collect();

    let (status, fed) = std::thread::scope(|scope| {
        let feeder = scope.spawn(move || -> Result<(), String> {
            let Some(stdin) = stdin else { return Ok(()) };
            crate::context::write_context(context.cache, context.commit, context.directory, stdin)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        // The group is gone once wait returns, so the feeder's pipe is closed too.
        let status = process::wait(&mut child, cancel, timeout);
        let fed = feeder
            .join()
            .unwrap_or_else(|_| Err("context writer panicked".into()));
        (status, fed)
    });
    process::drain(&readers);
    match (status, fed) {
        (Err(why), _) => Err(why.to_string()),
        (Ok(code), _) if code != 0 => Err(format!("docker exited with status {code}")),
        // The build succeeded but did not read the whole context: that cannot be trusted.
        (Ok(_), Err(reason)) => Err(format!("streaming the build context failed: {reason}")),
        (Ok(_), Ok(())) => Ok(()),
    }
}

/// Copies one line of a child's output to the log, sending step lines as events.
fn pump(node: usize, line: &[u8], log: &Mutex<File>, events: &Sender<Event>) {
    let text = String::from_utf8_lossy(line);
    append(log, &text);
    if let Some(step) = step(text.trim_end()) {
        let _ = events.send(Event::Step {
            node,
            step: step.to_string(),
        });
    }
}

fn append(log: &Mutex<File>, text: &str) {
    if let Ok(mut file) = log.lock() {
        let _ = file.write_all(text.as_bytes());
    }
}

/// The step a build output line announces: classic `Step 2/5 : RUN x`, BuildKit plain
/// `#7 [2/3] RUN x`.
pub fn step(line: &str) -> Option<&str> {
    if line.starts_with("Step ") && line.contains(" : ") {
        return Some(line);
    }
    let rest = line.strip_prefix('#')?;
    let (number, text) = rest.split_once(' ')?;
    (number.chars().all(|c| c.is_ascii_digit()) && text.starts_with('[')).then_some(text)
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(text) = std::fs::read(path) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_lines() {
        assert_eq!(step("Step 2/5 : RUN make"), Some("Step 2/5 : RUN make"));
        assert_eq!(step("#7 [2/3] RUN make"), Some("[2/3] RUN make"));
        assert_eq!(step("#7 sha256:abc done"), None);
        assert_eq!(step("#x [1/2] FROM"), None);
        assert_eq!(step("hello"), None);
    }
}
