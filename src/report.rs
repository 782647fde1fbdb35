//! What people and CI see while building: events from workers rendered on the main thread,
//! as an indicatif multi-progress on a TTY or one timestamped line per event without one,
//! and the summary table at the end.
//!
//! Invariants: only the main thread writes (workers send [`Event`]s); plain output has one
//! line per event, each starting with a UTC timestamp, so CI logs are greppable.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What happened to one node, sent by workers and by the scheduler.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        node: usize,
        /// What runs: `build`, `pull` or `import`.
        action: &'static str,
    },
    /// The build's current step (a `Step N/M` or `#N [..]` line).
    Step { node: usize, step: String },
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

/// Renders events for one run.
pub struct Reporter {
    ids: Vec<String>,
    start: Instant,
    progress: Option<Progress>,
}

struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
    bars: HashMap<usize, ProgressBar>,
}

impl Reporter {
    /// A reporter for nodes named `ids`; `to_build` nodes will run. Progress bars only when
    /// stderr is a terminal.
    pub fn new(ids: Vec<String>, to_build: usize) -> Reporter {
        let progress = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(to_build as u64));
            overall.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} built  {msg} (eta {eta})",
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
            ids,
            start: Instant::now(),
            progress,
        }
    }

    /// One line for people: above the bars on a TTY, timestamped on stdout otherwise.
    pub fn line(&self, text: &str) {
        match &self.progress {
            Some(p) => p.multi.suspend(|| eprintln!("{text}")),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{} {text}", clock(SystemTime::now()));
                let _ = out.flush();
            }
        }
    }

    pub fn event(&mut self, event: &Event) {
        match event {
            Event::Started { node, action } => {
                self.line(&format!("start   {} ({action})", self.ids[*node]));
                if let Some(p) = &mut self.progress {
                    let bar = p.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {prefix}: {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(self.ids[*node].clone());
                    bar.enable_steady_tick(Duration::from_millis(200));
                    p.bars.insert(*node, bar);
                }
            }
            Event::Step { node, step } => {
                if let Some(bar) = self.progress.as_ref().and_then(|p| p.bars.get(node)) {
                    bar.set_message(step.clone());
                }
            }
            Event::Done {
                node,
                elapsed,
                pulled,
                pushed,
                ..
            } => {
                self.finish_bar(*node);
                if let Some(p) = &self.progress {
                    p.overall.inc(1);
                }
                let verb = if *pulled { "pulled " } else { "built  " };
                let mut text = format!("{verb} {} in {}", self.ids[*node], seconds(*elapsed));
                if let Some(Err(reason)) = pushed {
                    text.push_str(&format!("\n        push FAILED: {reason}"));
                }
                self.line(&text);
            }
            Event::Failed {
                node,
                elapsed,
                reason,
                log,
                tail,
                ..
            } => {
                self.finish_bar(*node);
                if let Some(p) = &self.progress {
                    p.overall.inc(1);
                }
                let mut text = format!(
                    "FAILED  {} after {}: {reason}",
                    self.ids[*node],
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
            }
        }
    }

    fn finish_bar(&mut self, node: usize) {
        if let Some(p) = &mut self.progress
            && let Some(bar) = p.bars.remove(&node)
        {
            bar.finish_and_clear();
            p.multi.remove(&bar);
        }
    }

    /// Counts for the overall bar.
    pub fn counts(&self, text: &str) {
        if let Some(p) = &self.progress {
            p.overall.set_message(text.to_string());
        }
    }

    /// Clears the bars and prints the summary table to stdout.
    pub fn summary(&mut self, rows: &[Row]) {
        if let Some(p) = self.progress.take() {
            p.overall.finish_and_clear();
            let _ = p.multi.clear();
        }
        let width = self.ids.iter().map(String::len).max().unwrap_or(4).max(4);
        let pool = rows.iter().any(|r| r.builder.is_some());
        let bwidth = rows
            .iter()
            .filter_map(|r| r.builder.as_ref().map(String::len))
            .max()
            .unwrap_or(0)
            .max(7);
        let mut out = std::io::stdout().lock();
        let _ = write!(
            out,
            "\n{:<width$}  {:<11}  {:>8}  ",
            "node", "result", "time"
        );
        if pool {
            let _ = write!(out, "{:<bwidth$}  ", "builder");
        }
        let _ = writeln!(out, "note");
        for (id, row) in self.ids.iter().zip(rows) {
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
            let _ = write!(
                out,
                "{id:<width$}  {:<11}  {time:>8}  ",
                row.outcome.label()
            );
            if pool {
                let _ = write!(out, "{:<bwidth$}  ", row.builder.as_deref().unwrap_or("-"));
            }
            let _ = writeln!(out, "{}", notes.join("; "));
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
        let retries: usize = rows.iter().map(|r| r.retries.len()).sum();
        if retries > 0 {
            totals.push(format!("{retries} retried"));
        }
        let _ = writeln!(
            out,
            "\n{} in {}",
            totals.join(", "),
            seconds(self.start.elapsed())
        );
        let _ = out.flush();
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// `HH:MM:SS` (UTC) of a time.
pub fn clock(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

/// RFC 3339 UTC (`2023-11-14T22:13:20Z`) of Unix seconds.
pub fn rfc3339(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(clock(UNIX_EPOCH + Duration::from_secs(3_723)), "01:02:03");
    }
}
