//! External processes (docker, its plugins): started in their own process group, waited for
//! with cancellation and a time limit, their output read without ever blocking keg forever.
//!
//! Invariants:
//! - every child leads its own process group, so a terminal's Ctrl-C reaches keg alone, and
//!   keg can end the whole group (docker and the plugin processes it starts);
//! - when a child exits, or is cancelled or timed out, whatever is left of its group is
//!   killed, so no background process it started outlives it holding its pipes;
//! - output is read on detached threads and waited for with a bound ([`DRAIN`]), so a
//!   process that escaped its group and still holds a pipe cannot hang keg;
//! - a cancelled child gets SIGTERM, then SIGKILL after [`GRACE`];
//! - every call has a time limit: [`QUERY_LIMIT`] for short commands and engine queries,
//!   [`TRANSFER_LIMIT`] for pulls, pushes and loads;
//! - every group that was spawned and not yet waited for is known, so that a forced exit
//!   ([`kill_all`]) leaves none behind; a child spawned after that is killed at once.
//!
//! This module knows nothing of docker: what it runs is any [`Program`].

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a cancelled or timed-out group gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(10);
/// How long output pipes may stay open after their process is gone.
pub const DRAIN: Duration = Duration::from_secs(5);
/// How long a short command (an engine query, a `docker tag`, a credential helper) may run.
pub const QUERY_LIMIT: Duration = Duration::from_secs(120);
/// How long one transfer (`docker push`, `docker pull`, `docker load`) may run.
pub const TRANSFER_LIMIT: Duration = Duration::from_secs(30 * 60);

/// A command line that can be run and shown to people.
pub trait Program {
    /// A fresh [`Command`] for it.
    fn command(&self) -> Command;
    /// A shell-like rendering for messages and logs.
    fn display(&self) -> String;
    /// The program's name, for "cannot run X".
    fn name(&self) -> String;
}

/// The process groups spawned and not yet waited for, and whether keg is exiting.
static LIVE: Mutex<(Vec<u32>, bool)> = Mutex::new((Vec::new(), false));

fn live() -> std::sync::MutexGuard<'static, (Vec<u32>, bool)> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills every process group keg started and has not waited for yet (SIGKILL), and every
/// one started from now on: for an exit that cannot wait for them.
pub fn kill_all() {
    let mut live = live();
    live.1 = true;
    for pid in live.0.drain(..) {
        signal_group(pid, libc::SIGKILL);
    }
}

/// Why a wait ended without an exit status of the child's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// `cancel` was set (Ctrl-C, SIGTERM, or the run stopping).
    Interrupted,
    /// The time limit passed.
    TimedOut(Duration),
    /// Waiting itself failed.
    Wait(String),
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::Interrupted => f.write_str("interrupted"),
            Stopped::TimedOut(limit) => write!(f, "timed out after {}", human(*limit)),
            Stopped::Wait(e) => write!(f, "waiting for the process: {e}"),
        }
    }
}

/// `1h2m3s`-style rendering of a duration (whole seconds; milliseconds below one second).
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// `90`, `90s`, `30m`, `1h30m`, `250ms`: a duration; 0 means none.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("expected a duration such as 90s, 30m or 1h30m, not {text:?}");
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number * 60),
            "h" => Duration::from_secs(number * 3600),
            _ => return Err(bad()),
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Spawns `command` as the leader of a new process group, stdin as given, output piped.
/// The caller must [`wait`] for it.
pub fn spawn(mut command: Command, stdin: Stdio) -> std::io::Result<Child> {
    command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut live = live();
    let child = command.spawn()?;
    if live.1 {
        signal_group(child.id(), libc::SIGKILL);
    } else {
        live.0.push(child.id());
    }
    Ok(child)
}

/// Waits for `child`: its exit code (a signal gives 128 + signal). On `cancel` or after
/// `timeout`, terminates its group (SIGTERM, then SIGKILL after [`GRACE`]) and says why.
/// Either way, whatever is left of the group is killed before returning.
pub fn wait(
    child: &mut Child,
    cancel: &AtomicBool,
    timeout: Option<Duration>,
) -> Result<i32, Stopped> {
    let start = Instant::now();
    let mut stopping: Option<(Instant, Stopped)> = None;
    let result = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if let Some((_, why)) = stopping {
                    break Err(why);
                }
                use std::os::unix::process::ExitStatusExt;
                break Ok(status
                    .code()
                    .or(status.signal().map(|s| 128 + s))
                    .unwrap_or(1));
            }
            Ok(None) => {}
            Err(e) => break Err(Stopped::Wait(e.to_string())),
        }
        match &stopping {
            None => {
                let why = if cancel.load(Ordering::SeqCst) {
                    Some(Stopped::Interrupted)
                } else {
                    timeout
                        .filter(|limit| start.elapsed() >= *limit)
                        .map(Stopped::TimedOut)
                };
                if let Some(why) = why {
                    signal_group(child.id(), libc::SIGTERM);
                    stopping = Some((Instant::now(), why));
                }
            }
            Some((at, _)) if at.elapsed() > GRACE => signal_group(child.id(), libc::SIGKILL),
            Some(_) => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Whatever the child started in its group goes with it.
    signal_group(child.id(), libc::SIGKILL);
    live().0.retain(|&pid| pid != child.id());
    result
}

/// Sends `signal` to the process group led by `pid` (children are spawned as group leaders,
/// so a child's pid is its group id). The group may outlive its leader.
pub fn signal_group(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

/// Reads `stream` line by line on a detached thread, handing each line to `line`; the
/// returned receiver gets one message when the stream ends.
pub fn read_lines(
    stream: impl Read + Send + 'static,
    mut line: impl FnMut(&[u8]) + Send + 'static,
) -> mpsc::Receiver<()> {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        while reader.read_until(b'\n', &mut buf).unwrap_or(0) > 0 {
            line(&buf);
            buf.clear();
        }
        let _ = done.send(());
    });
    finished
}

/// Waits until every reader finished or [`DRAIN`] passed, whichever is first.
pub fn drain(readers: &[mpsc::Receiver<()>]) {
    let deadline = Instant::now() + DRAIN;
    for reader in readers {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = reader.recv_timeout(left);
    }
}

/// Runs a short docker command (tag, push, pull) with no input, appending its command line
/// and output to `log`. Ok on exit status 0; else the reason, with the last output line.
pub fn run(
    command: &impl Program,
    log: Option<&Path>,
    cancel: &AtomicBool,
    timeout: Option<Duration>,
) -> Result<(), String> {
    let output = output(command, cancel, timeout)?;
    if let Some(path) = log
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(file, "$ {}\n{}", command.display(), output.text);
    }
    if output.code == 0 {
        return Ok(());
    }
    let last = output
        .text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    Err(format!(
        "`{}` exited with status {}: {last}",
        command.display(),
        output.code
    ))
}

/// What a finished command printed (stdout, then stderr) and its exit code.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    /// stdout exactly as printed.
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
    /// stdout, then stderr.
    pub text: String,
}

/// Runs `command` with no input and collects its output; Err when it could not run or was
/// stopped.
pub fn output(
    command: &impl Program,
    cancel: &AtomicBool,
    timeout: Option<Duration>,
) -> Result<Output, String> {
    output_with_input(command.command(), &command.name(), None, cancel, timeout)
}

/// Runs `command` (named `name` in messages) with `input` on its stdin (none: no stdin)
/// and collects its output; Err when it could not run or was stopped.
pub fn output_with_input(
    command: Command,
    name: &str,
    input: Option<&[u8]>,
    cancel: &AtomicBool,
    timeout: Option<Duration>,
) -> Result<Output, String> {
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = spawn(command, stdin).map_err(|e| format!("cannot run {name}: {e}"))?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        let input = input.to_vec();
        // On a thread: a child that does not read must not block keg. A child that exits
        // without reading gives EPIPE, and its exit status tells.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let collect = |stream: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let done = stream.map(|s| read_lines(s, move |line| drop(tx.send(line.to_vec()))));
        (rx, done)
    };
    let (out_rx, out_done) = collect(child.stdout.take().map(|s| Box::new(s) as _));
    let (err_rx, err_done) = collect(child.stderr.take().map(|s| Box::new(s) as _));
    let code = wait(&mut child, cancel, timeout).map_err(|why| why.to_string());
    drain(
        &[out_done, err_done]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
    );
    let stdout: Vec<u8> = out_rx.try_iter().flatten().collect();
    let stderr: Vec<u8> = err_rx.try_iter().flatten().collect();
    let stdout_text = String::from_utf8_lossy(&stdout).into_owned();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    let text = format!("{stdout_text}{stderr}");
    Ok(Output {
        code: code?,
        stdout: stdout_text,
        stdout_bytes: stdout,
        stderr,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> crate::docker::DockerCommand {
        crate::docker::DockerCommand {
            env: Default::default(),
            argv: vec!["sh".into(), "-c".into(), script.into()],
        }
    }

    #[test]
    fn output_and_status() {
        let never = AtomicBool::new(false);
        let out = output(&sh("echo out; echo err >&2; exit 3"), &never, None).unwrap();
        assert_eq!(out.code, 3);
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.text, "out\nerr\n");
        let err = run(&sh("echo first; echo last >&2; exit 1"), None, &never, None).unwrap_err();
        assert!(err.ends_with("exited with status 1: last"), "{err}");
    }

    #[test]
    fn a_background_child_holding_the_pipes_does_not_hang() {
        let never = AtomicBool::new(false);
        let start = Instant::now();
        // The shell exits at once; its background sleep keeps stdout and stderr open.
        let out = output(&sh("(sleep 60 &) ; echo gone; exit 1"), &never, None).unwrap();
        assert_eq!(out.code, 1);
        assert_eq!(out.stdout, "gone\n");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_timeout_stops_the_whole_group() {
        let never = AtomicBool::new(false);
        let start = Instant::now();
        let err = output(
            &sh("sleep 60 & sleep 60"),
            &never,
            Some(Duration::from_millis(300)),
        )
        .err()
        .unwrap();
        assert_eq!(err, "timed out after 300ms");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn cancellation_is_reported() {
        let cancel = AtomicBool::new(true);
        let err = output(&sh("sleep 60"), &cancel, None).err().unwrap();
        assert_eq!(err, "interrupted");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 min").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
        assert_eq!(human(Duration::from_secs(3600)), "1h");
        assert_eq!(human(Duration::from_secs(3725)), "1h2m5s");
    }
}
