//! One build: the context tar streamed from git into `docker build -`'s stdin, output to
//! the node's log file, step lines reported as events, cancellation on request.
//!
//! Invariants: no temp files and no checkout (the tar goes from the object database
//! straight into the pipe); the docker child runs in its own process group and is always
//! waited for, and on cancellation the whole group is terminated (so plugin processes like
//! `docker-buildx` go too); a worker never prints, it only sends events.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::docker::DockerCommand;
use crate::git::GitCache;
use crate::report::Event;

/// Lines of a failed build's log shown in the report.
pub const TAIL_LINES: usize = 40;

/// Where a node's build context comes from.
pub struct ContextSource<'a> {
    pub cache: &'a GitCache,
    pub commit: &'a str,
    pub directory: &'a str,
}

/// Runs `command` with the context on stdin. Ok on success; Err(reason) otherwise.
pub fn run_build(
    node: usize,
    command: &DockerCommand,
    context: ContextSource<'_>,
    log_path: &Path,
    events: &Sender<Event>,
    cancel: &AtomicBool,
) -> Result<(), String> {
    let log = File::create(log_path)
        .map_err(|e| format!("cannot create log {}: {e}", log_path.display()))?;
    let log = Arc::new(Mutex::new(log));
    append(&log, &format!("$ {}\n", command.display()));
    let mut child = spawn(command)?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    let result = std::thread::scope(|scope| {
        let feeder = scope.spawn(move || -> Result<(), String> {
            let Some(stdin) = stdin else { return Ok(()) };
            crate::context::write_context(context.cache, context.commit, context.directory, stdin)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        for stream in [
            stdout.map(|s| Box::new(s) as Box<dyn Read + Send>),
            stderr.map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = Arc::clone(&log);
            let events = events.clone();
            scope.spawn(move || pump(node, stream, &log, &events));
        }
        let status = wait(&mut child, cancel);
        let fed = feeder
            .join()
            .unwrap_or_else(|_| Err("context writer panicked".into()));
        (status, fed)
    });
    match result {
        (Err(reason), _) => Err(reason),
        (Ok(code), _) if code != 0 => Err(format!("docker exited with status {code}")),
        // The build succeeded but did not read the whole context: that cannot be trusted.
        (Ok(_), Err(reason)) => Err(format!("streaming the build context failed: {reason}")),
        (Ok(_), Ok(())) => Ok(()),
    }
}

/// Runs a short docker command (tag, push, pull), appending its output to `log`.
pub fn run_simple(
    command: &DockerCommand,
    log: Option<&Path>,
    cancel: &AtomicBool,
) -> Result<(), String> {
    let mut cmd = command.to_command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run docker: {e}"))?;
    let mut output = String::new();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let code = std::thread::scope(|scope| {
        let err = scope.spawn(move || {
            let mut text = String::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_string(&mut text);
            }
            text
        });
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_string(&mut output);
        }
        let code = wait(&mut child, cancel);
        output.push_str(&err.join().unwrap_or_default());
        code
    })?;
    if let Some(path) = log
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(file, "$ {}\n{output}", command.display());
    }
    if code == 0 {
        Ok(())
    } else {
        let last = output
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        Err(format!(
            "`{}` exited with status {code}: {last}",
            command.display()
        ))
    }
}

fn spawn(command: &DockerCommand) -> Result<Child, String> {
    let mut cmd = command.to_command();
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C reaches keg only, and keg can end the
        // whole group (docker and its buildx plugin) on cancellation.
        .process_group(0);
    cmd.spawn().map_err(|e| format!("cannot run docker: {e}"))
}

/// Waits for the child, terminating its process group when `cancel` is set. Returns the
/// exit code (signals give 128 + signal), or Err when cancelled.
pub(crate) fn wait(child: &mut Child, cancel: &AtomicBool) -> Result<i32, String> {
    let mut terminated_at: Option<Instant> = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if terminated_at.is_some() {
                    return Err("interrupted".to_string());
                }
                use std::os::unix::process::ExitStatusExt;
                return Ok(status
                    .code()
                    .or(status.signal().map(|s| 128 + s))
                    .unwrap_or(1));
            }
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for docker: {e}")),
        }
        if cancel.load(Ordering::SeqCst) {
            match terminated_at {
                None => {
                    signal_group(child.id(), libc::SIGTERM);
                    terminated_at = Some(Instant::now());
                }
                Some(at) if at.elapsed() > Duration::from_secs(10) => {
                    signal_group(child.id(), libc::SIGKILL);
                }
                Some(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Sends `signal` to the process group led by `pid` (children are spawned with
/// `process_group(0)`, so a child's pid is its group id).
pub(crate) fn signal_group(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

/// Copies a child's output to the log, sending step lines as events.
fn pump(node: usize, stream: Box<dyn Read + Send>, log: &Mutex<File>, events: &Sender<Event>) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        let text = String::from_utf8_lossy(&line);
        append(log, &text);
        if let Some(step) = step(text.trim_end()) {
            let _ = events.send(Event::Step {
                node,
                step: step.to_string(),
            });
        }
        line.clear();
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
