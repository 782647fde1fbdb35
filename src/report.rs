//! What people and CI see while building: events from workers rendered on the main thread,
//! as an indicatif multi-progress on a TTY, one timestamped line per event without one, or
//! one JSON object per line (`--progress json`, schema in docs/plan.md), and the summary
//! table at the end.
//!
//! Invariants: only the main thread writes (workers send [`Event`]s); plain output has one
//! line per event, each starting with a UTC timestamp, so CI logs are greppable; with
//! `json`, stdout carries only JSON events (every line parses, each node's last outcome
//! event is its result in the closing `summary` event) and everything for people goes to
//! stderr; the progress bar counts what runs (builds, pulls, imports, tags) and is not
//! shown when nothing runs; without a TTY, a heartbeat line says what is still running
//! when nothing was printed for `--heartbeat`.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::retry::Retry;

/// The version of the `--progress json` events; a change that breaks readers bumps it.
pub const EVENTS_VERSION: u32 = 1;

/// `--progress`: how a run is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Bars on a terminal (stderr), plain lines otherwise.
    #[default]
    Auto,
    /// Bars, even when stderr is not a terminal.
    Tty,
    /// Timestamped lines on stdout.
    Plain,
    /// One JSON event per line on stdout; lines for people on stderr.
    Json,
}

impl Mode {
    /// Auto, decided.
    fn resolve(self) -> Mode {
        match self {
            Mode::Auto if std::io::stderr().is_terminal() => Mode::Tty,
            Mode::Auto => Mode::Plain,
            other => other,
        }
    }
}

/// What happened to one node, sent by workers and by the scheduler.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        node: usize,
        /// The member of the run it runs on.
        member: usize,
        /// What runs: `build`, `pull`, `import` or `tag`.
        action: &'static str,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// The build's current step (a `Step N/M` or `#N [..]` line).
    Step { node: usize, step: String },
    /// A part of the node's job (a push, a registry query) failed for a transient reason
    /// and is tried again; the node is still running.
    Retried { node: usize, retry: Retry },
    /// The node's image exists now: built (or imported), or pulled from the registry.
    Done {
        node: usize,
        /// The member of the run it ran on.
        member: usize,
        elapsed: Duration,
        pulled: bool,
        /// `--push` (or the registry cache tag): None when nothing was pushed, else the result.
        pushed: Option<Result<(), String>>,
    },
    Failed {
        node: usize,
        member: usize,
        elapsed: Duration,
        reason: String,
        /// Whether the infrastructure failed (then the node may be retried).
        infra: Option<Infra>,
        log: String,
        tail: Vec<String>,
    },
}

/// An infrastructure failure: not the build's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Infra {
    /// The member no longer answers: it leaves the pool.
    Gone(String),
    /// A connection or registry fault; the member still answers.
    Transient,
}

/// How a node ended, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Built(Duration),
    /// Pulled from the registry cache by its key.
    Pulled(Duration),
    Cached,
    /// An ancestor of the selection that nothing to build needed.
    Unneeded,
    Failed {
        reason: String,
        /// How long it ran; None when it failed before starting.
        elapsed: Option<Duration>,
    },
    Skipped(String),
    NotStarted,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Built(_) => "built",
            Outcome::Pulled(_) => "pulled",
            Outcome::Cached => "cached",
            Outcome::Unneeded => "unneeded",
            Outcome::Failed { .. } => "failed",
            Outcome::Skipped(_) => "skipped",
            Outcome::NotStarted => "not started",
        }
    }

    /// A failure before anything ran.
    pub fn failed(reason: impl Into<String>) -> Outcome {
        Outcome::Failed {
            reason: reason.into(),
            elapsed: None,
        }
    }

    /// Whether the node's image exists at the end.
    pub fn has_image(&self) -> bool {
        matches!(
            self,
            Outcome::Built(_) | Outcome::Pulled(_) | Outcome::Cached
        )
    }
}

/// One node's row in the summary.
#[derive(Debug, Clone)]
pub struct Row {
    pub outcome: Outcome,
    /// Not selected: in the run for its key (an ancestor of what was).
    pub ancestor: bool,
    /// Why pushing its tags failed (a failed push is not a failed build).
    pub push_error: Option<String>,
    /// The builder it ran on (with a pool).
    pub builder: Option<String>,
    /// Every failed attempt before the last, for people.
    pub retries: Vec<String>,
}

/// What the reporter knows of each node.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    /// `repo:tag@arch`.
    pub id: String,
    pub key: String,
    /// `buildkit`, `classic` or `oci-import`.
    pub builder: String,
    /// Its log file in this run.
    pub log: Option<String>,
    /// Whether it runs (a build, pull, import or tag): what the progress bar counts.
    pub runs: bool,
    /// Not selected: in the run as an ancestor of what was.
    pub ancestor: bool,
}

/// Renders events for one run.
pub struct Reporter {
    nodes: Vec<NodeInfo>,
    /// The members of the run, by index.
    members: Vec<String>,
    mode: Mode,
    start: Instant,
    progress: Option<Progress>,
    heartbeat: Option<Duration>,
    /// When anything was last printed (for the heartbeat).
    last_output: Cell<Instant>,
    /// Running nodes: since when, doing what, on which member.
    running: BTreeMap<usize, (Instant, &'static str, usize)>,
    /// What each node that ran last did (`tag` makes a twin's Done a cache hit).
    actions: HashMap<usize, &'static str>,
    ran_on: HashMap<usize, usize>,
    cached: usize,
    failed: usize,
    skipped: usize,
    /// Retries of registry queries that belong to no node.
    other_retries: Cell<usize>,
}

struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
    bars: HashMap<usize, ProgressBar>,
}

impl Reporter {
    /// A reporter for `nodes`, shown per `mode`; `heartbeat`: how long a run without a TTY
    /// may print nothing while something runs.
    pub fn new(nodes: Vec<NodeInfo>, mode: Mode, heartbeat: Option<Duration>) -> Reporter {
        let mode = mode.resolve();
        let to_run = nodes.iter().filter(|n| n.runs).count();
        let progress = (mode == Mode::Tty && to_run > 0).then(|| {
            let target = if std::io::stderr().is_terminal() {
                ProgressDrawTarget::stderr()
            } else {
                // `--progress tty` without a terminal: draw anyway.
                ProgressDrawTarget::term_like(Box::new(console::Term::stderr()))
            };
            let multi = MultiProgress::with_draw_target(target);
            let overall = multi.add(ProgressBar::new(to_run as u64));
            overall.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} done  {msg} (eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            overall.enable_steady_tick(Duration::from_millis(200));
            Progress {
                multi,
                overall,
                bars: HashMap::new(),
            }
        });
        Reporter {
            nodes,
            members: Vec::new(),
            mode,
            start: Instant::now(),
            progress,
            heartbeat: heartbeat.filter(|d| !d.is_zero()),
            last_output: Cell::new(Instant::now()),
            running: BTreeMap::new(),
            actions: HashMap::new(),
            ran_on: HashMap::new(),
            cached: 0,
            failed: 0,
            skipped: 0,
            other_retries: Cell::new(0),
        }
    }

    /// A reporter for what happens before the nodes run: lines only.
    pub fn early(mode: Mode) -> Reporter {
        Reporter::new(Vec::new(), mode, None)
    }

    /// The names of the run's members, by index (for `ran_on`).
    pub fn with_members(mut self, members: Vec<String>) -> Reporter {
        self.members = members;
        self
    }

    /// Whether stdout carries JSON events.
    pub fn json(&self) -> bool {
        self.mode == Mode::Json
    }

    /// Where text for people that is not a progress line goes (bashbrew's `Pushing` lines):
    /// stdout, or stderr when stdout carries JSON events.
    pub fn human(&self) -> Box<dyn Write> {
        if self.json() {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    }

    /// One line for people: above the bars on a TTY, timestamped on stdout otherwise (on
    /// stderr with JSON events).
    pub fn line(&self, text: &str) {
        self.last_output.set(Instant::now());
        match (&self.progress, self.mode) {
            (Some(p), _) => p.multi.suspend(|| eprintln!("{text}")),
            (None, Mode::Tty) => eprintln!("{text}"),
            (None, Mode::Json) => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{} {text}", crate::utc::clock(SystemTime::now()));
            }
            (None, _) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{} {text}", crate::utc::clock(SystemTime::now()));
                let _ = out.flush();
            }
        }
    }

    /// One JSON event on stdout (with `--progress json`): `fields` after the common ones.
    fn emit(&self, event: &str, node: Option<usize>, fields: Value) {
        if !self.json() {
            return;
        }
        self.last_output.set(Instant::now());
        let info = node.and_then(|i| self.nodes.get(i));
        let mut value = json!({
            "version": EVENTS_VERSION,
            "event": event,
            "time": crate::utc::rfc3339_millis(SystemTime::now()),
            "node": info.map(|n| n.id.as_str()),
            "key": info.map(|n| n.key.as_str()),
            "builder": info.map(|n| n.builder.as_str()),
            "ancestor": info.map(|n| n.ancestor),
            "ran_on": node
                .and_then(|i| self.ran_on.get(&i))
                .and_then(|&m| self.members.get(m)),
            "action": node.and_then(|i| self.actions.get(&i)),
            "attempt": Value::Null,
            "duration_ms": Value::Null,
            "log": Value::Null,
            "error": Value::Null,
        });
        if let (Value::Object(all), Value::Object(more)) = (&mut value, fields) {
            all.extend(more);
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
    }

    fn id(&self, node: usize) -> &str {
        self.nodes.get(node).map_or("?", |n| n.id.as_str())
    }

    fn log(&self, node: usize) -> Option<&str> {
        self.nodes.get(node).and_then(|n| n.log.as_deref())
    }

    pub fn event(&mut self, event: &Event) {
        match event {
            Event::Started {
                node,
                member,
                action,
                attempt,
            } => {
                self.running
                    .insert(*node, (Instant::now(), *action, *member));
                self.actions.insert(*node, action);
                self.ran_on.insert(*node, *member);
                self.line(&format!("start   {} ({action})", self.id(*node)));
                self.emit(
                    "started",
                    Some(*node),
                    json!({"attempt": attempt, "log": self.log(*node)}),
                );
                if let Some(p) = &mut self.progress {
                    let bar = p.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {prefix}: {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(self.nodes[*node].id.clone());
                    bar.enable_steady_tick(Duration::from_millis(200));
                    p.bars.insert(*node, bar);
                }
                self.update_counts();
            }
            Event::Step { node, step } => {
                if let Some(bar) = self.progress.as_ref().and_then(|p| p.bars.get(node)) {
                    bar.set_message(step.clone());
                }
            }
            Event::Retried { node, retry } => self.retried(*node, retry),
            Event::Done {
                node,
                elapsed,
                pulled,
                pushed,
                ..
            } => {
                self.finish_bar(*node, true);
                let twin = self.actions.get(node) == Some(&"tag");
                let (verb, event) = match (twin, pulled) {
                    (true, _) => ("cached ", "cached"),
                    (false, true) => ("pulled ", "pulled"),
                    (false, false) => ("built  ", "built"),
                };
                if twin {
                    self.cached += 1;
                }
                let mut text = format!("{verb} {} in {}", self.id(*node), seconds(*elapsed));
                if let Some(Err(reason)) = pushed {
                    text.push_str(&format!("\n        push FAILED: {reason}"));
                }
                self.line(&text);
                let fields = json!({"duration_ms": millis(*elapsed), "log": self.log(*node)});
                self.emit(event, Some(*node), fields);
                if let Some(result) = pushed {
                    self.pushed(*node, result.as_ref().err().map(String::as_str));
                }
                self.update_counts();
            }
            Event::Failed {
                node,
                elapsed,
                reason,
                log,
                tail,
                ..
            } => {
                self.finish_bar(*node, true);
                self.failed += 1;
                let mut text = format!(
                    "FAILED  {} after {}: {reason}",
                    self.id(*node),
                    seconds(*elapsed)
                );
                if !log.is_empty() {
                    text.push_str(&format!("\n        log: {log}"));
                }
                if !tail.is_empty() {
                    text.push_str(&format!("\n        last {} lines:", tail.len()));
                    for line in tail {
                        text.push_str(&format!("\n        | {line}"));
                    }
                }
                self.line(&text);
                let log = Some(log.as_str()).filter(|l| !l.is_empty());
                let fields = json!({
                    "duration_ms": millis(*elapsed),
                    "log": log.or(self.log(*node)),
                    "error": reason,
                });
                self.emit("failed", Some(*node), fields);
                self.update_counts();
            }
        }
    }

    /// A node found cached before anything ran (its key's image exists).
    pub fn cached(&mut self, node: usize) {
        self.cached += 1;
        if !self.nodes.get(node).is_some_and(|n| n.ancestor) {
            self.line(&format!("cached  {}", self.id(node)));
        }
        self.emit("cached", Some(node), json!({}));
        self.update_counts();
    }

    /// An ancestor of the selection that nothing to build needs.
    pub fn unneeded(&mut self, node: usize) {
        self.emit("unneeded", Some(node), json!({}));
    }

    /// A node that failed without running (or without a builder to run on).
    pub fn failed(&mut self, node: usize, reason: &str) {
        self.failed += 1;
        self.line(&format!("FAILED  {}: {reason}", self.id(node)));
        self.emit("failed", Some(node), json!({"error": reason}));
        self.count_done(node);
        self.update_counts();
    }

    /// A node that will not run because an ancestor failed.
    pub fn skipped(&mut self, node: usize, reason: &str) {
        self.skipped += 1;
        self.line(&format!("skipped {}: {reason}", self.id(node)));
        self.emit("skipped", Some(node), json!({"error": reason}));
        self.count_done(node);
        self.update_counts();
    }

    /// A node the bar counts ended without running: the bar moves on.
    fn count_done(&self, node: usize) {
        if self.nodes.get(node).is_some_and(|n| n.runs)
            && let Some(p) = &self.progress
        {
            p.overall.inc(1);
        }
    }

    /// A node's tags were pushed (`error`: why not).
    pub fn pushed(&mut self, node: usize, error: Option<&str>) {
        self.emit("pushed", Some(node), json!({"error": error}));
    }

    /// Something of a running node was tried again.
    fn retried(&mut self, node: usize, retry: &Retry) {
        self.line(&format!("retry   {}: {retry}", self.id(node)));
        self.emit("retried", Some(node), retry_fields(retry));
    }

    /// A node's attempt failed for the infrastructure's reason: it waits for another.
    pub fn requeued(&mut self, node: usize, retry: &Retry) {
        self.finish_bar(node, false);
        self.retried(node, retry);
        self.update_counts();
    }

    /// A registry query that belongs to no node was tried again.
    pub fn query_retried(&self, retry: &Retry) {
        self.other_retries.set(self.other_retries.get() + 1);
        self.line(&format!("retry   {retry}"));
        self.emit("retried", None, retry_fields(retry));
    }

    fn finish_bar(&mut self, node: usize, done: bool) {
        self.running.remove(&node);
        if let Some(p) = &mut self.progress {
            if let Some(bar) = p.bars.remove(&node) {
                bar.finish_and_clear();
                p.multi.remove(&bar);
            }
            if done {
                p.overall.inc(1);
            }
        }
    }

    /// The overall bar's message: what runs and how the others ended.
    fn update_counts(&self) {
        if let Some(p) = &self.progress {
            p.overall.set_message(format!(
                "{} running, {} cached, {} failed, {} skipped",
                self.running.len(),
                self.cached,
                self.failed,
                self.skipped
            ));
        }
    }

    /// Called now and then by the drain loop: without a TTY, when nothing was printed for
    /// the heartbeat while nodes run, says which and for how long.
    pub fn tick(&mut self) {
        let Some(every) = self.heartbeat else { return };
        if self.progress.is_some()
            || self.running.is_empty()
            || self.last_output.get().elapsed() < every
        {
            return;
        }
        let running: Vec<String> = self
            .running
            .iter()
            .map(|(&node, (since, action, _))| {
                format!(
                    "{} ({action}, {})",
                    self.id(node),
                    crate::process::human(Duration::from_secs(since.elapsed().as_secs()))
                )
            })
            .collect();
        if self.json() {
            let nodes: Vec<Value> = self
                .running
                .iter()
                .map(|(&node, (since, action, _))| {
                    json!({
                        "node": self.id(node),
                        "action": action,
                        "duration_ms": millis(since.elapsed()),
                    })
                })
                .collect();
            self.emit("heartbeat", None, json!({"running": nodes}));
        } else {
            self.line(&format!("running {}", running.join(", ")));
        }
    }

    /// Clears the bars and prints the summary table (stdout; stderr with JSON events), then,
    /// with JSON events, a `not-started` event per node that never started and the closing
    /// `summary` event.
    pub fn summary(&mut self, rows: &[Row]) {
        if let Some(p) = self.progress.take() {
            p.overall.finish_and_clear();
            let _ = p.multi.clear();
        }
        let mut out = self.human();
        let _ = write_table(
            &mut out,
            &self.nodes,
            rows,
            self.other_retries.get(),
            self.start.elapsed(),
        );
        let _ = out.flush();
        if !self.json() {
            return;
        }
        for (i, row) in rows.iter().enumerate() {
            if row.outcome == Outcome::NotStarted {
                self.emit("not-started", Some(i), json!({}));
            }
        }
        let count = |label: &str| rows.iter().filter(|r| r.outcome.label() == label).count();
        let nodes: Vec<Value> = self
            .nodes
            .iter()
            .zip(rows)
            .enumerate()
            .map(|(i, (info, row))| {
                let (duration, error) = match &row.outcome {
                    Outcome::Built(d) | Outcome::Pulled(d) => (Some(millis(*d)), None),
                    Outcome::Failed { reason, elapsed } => {
                        (elapsed.map(millis), Some(reason.as_str()))
                    }
                    Outcome::Skipped(reason) => (None, Some(reason.as_str())),
                    _ => (None, None),
                };
                json!({
                    "node": info.id,
                    "key": info.key,
                    "builder": info.builder,
                    "ancestor": row.ancestor,
                    "result": row.outcome.label(),
                    "duration_ms": duration,
                    "error": error,
                    "push_error": row.push_error,
                    "ran_on": self.ran_on.get(&i).and_then(|&m| self.members.get(m)),
                    "retries": row.retries,
                    "log": info.log,
                })
            })
            .collect();
        let retried: usize =
            rows.iter().map(|r| r.retries.len()).sum::<usize>() + self.other_retries.get();
        self.emit(
            "summary",
            None,
            json!({
                "duration_ms": millis(self.start.elapsed()),
                "counts": {
                    "built": count("built"),
                    "pulled": count("pulled"),
                    "cached": count("cached"),
                    "unneeded": count("unneeded"),
                    "failed": count("failed"),
                    "skipped": count("skipped"),
                    "not_started": count("not started"),
                    "push_failed": rows.iter().filter(|r| r.push_error.is_some()).count(),
                    "retried": retried,
                },
                "nodes": nodes,
            }),
        );
    }
}

fn retry_fields(retry: &Retry) -> Value {
    json!({
        "attempt": retry.attempt,
        "what": retry.what,
        "error": retry.reason,
        "retry_in_ms": millis(retry.wait),
    })
}

/// The summary table and its totals line (`other_retries`: retries of no node's).
fn write_table(
    out: &mut dyn Write,
    nodes: &[NodeInfo],
    rows: &[Row],
    other_retries: usize,
    elapsed: Duration,
) -> std::io::Result<()> {
    let width = nodes.iter().map(|n| n.id.len()).max().unwrap_or(4).max(4);
    let pool = rows.iter().any(|r| r.builder.is_some());
    let bwidth = rows
        .iter()
        .filter_map(|r| r.builder.as_ref().map(String::len))
        .max()
        .unwrap_or(0)
        .max(7);
    write!(
        out,
        "\n{:<width$}  {:<11}  {:>8}  ",
        "node", "result", "time"
    )?;
    if pool {
        write!(out, "{:<bwidth$}  ", "builder")?;
    }
    writeln!(out, "note")?;
    for (node, row) in nodes.iter().zip(rows) {
        let id = &node.id;
        let (time, mut notes) = match &row.outcome {
            Outcome::Built(d) | Outcome::Pulled(d) => (seconds(*d), Vec::new()),
            Outcome::Failed { reason, elapsed } => (
                elapsed.map_or_else(|| "-".to_string(), seconds),
                vec![reason.clone()],
            ),
            Outcome::Skipped(reason) => ("-".to_string(), vec![reason.clone()]),
            _ => ("-".to_string(), Vec::new()),
        };
        if row.ancestor {
            notes.insert(0, "ancestor of the selection".to_string());
        }
        if let Some(reason) = &row.push_error {
            notes.push(format!("push failed: {reason}"));
        }
        notes.extend(row.retries.iter().cloned());
        write!(
            out,
            "{id:<width$}  {:<11}  {time:>8}  ",
            row.outcome.label()
        )?;
        if pool {
            write!(out, "{:<bwidth$}  ", row.builder.as_deref().unwrap_or("-"))?;
        }
        writeln!(out, "{}", notes.join("; "))?;
    }
    let count = |label: &str| rows.iter().filter(|r| r.outcome.label() == label).count();
    let mut totals = vec![
        format!("{} built", count("built")),
        format!("{} cached", count("cached")),
    ];
    for label in ["pulled", "unneeded"] {
        if count(label) > 0 {
            totals.push(format!("{} {label}", count(label)));
        }
    }
    totals.push(format!("{} failed", count("failed")));
    totals.push(format!("{} skipped", count("skipped")));
    totals.push(format!("{} not started", count("not started")));
    let push_failures = rows.iter().filter(|r| r.push_error.is_some()).count();
    if push_failures > 0 {
        totals.push(format!("{push_failures} pushes failed"));
    }
    let retries = rows.iter().map(|r| r.retries.len()).sum::<usize>() + other_retries;
    if retries > 0 {
        totals.push(format!("{retries} retried"));
    }
    writeln!(out, "\n{} in {}", totals.join(", "), seconds(elapsed))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_push_errors_retries_and_failure_times() {
        let node = |id: &str| NodeInfo {
            id: id.to_string(),
            ..NodeInfo::default()
        };
        let row = |outcome: Outcome| Row {
            outcome,
            ancestor: false,
            push_error: None,
            builder: None,
            retries: Vec::new(),
        };
        let mut cached = row(Outcome::Cached);
        cached.push_error = Some("r/a:1: the registry is unreachable".into());
        cached.retries = vec!["attempt 1 of x failed (y); retried after 1s".into()];
        let rows = [
            cached,
            row(Outcome::Failed {
                reason: "timed out after 8s".into(),
                elapsed: Some(Duration::from_millis(8_100)),
            }),
            row(Outcome::Skipped("depends on b, which failed".into())),
        ];
        let mut out = Vec::new();
        write_table(
            &mut out,
            &[node("a"), node("b"), node("c")],
            &rows,
            1,
            Duration::from_secs(9),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\nnode  result           time  note\n\
             a     cached              -  push failed: r/a:1: the registry is unreachable; attempt 1 of x failed (y); retried after 1s\n\
             b     failed           8.1s  timed out after 8s\n\
             c     skipped             -  depends on b, which failed\n\
             \n0 built, 1 cached, 1 failed, 1 skipped, 0 not started, 1 pushes failed, 2 retried in 9.0s\n"
        );
    }
}
