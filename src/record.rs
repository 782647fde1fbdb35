//! What happened in a run, as data: [`RunRecord`] (serde) holds the planned graph and, per
//! node, its builder lane, when it became ready, started and finished, how it ended and where
//! its log is. [`crate::html`] draws it; `plan --report` records a plan alone
//! ([`RunRecord::from_plan`]), `build --report` fills one in through a [`RunRecorder`].
//!
//! Invariants: times are milliseconds since the recorder started (one clock for every
//! architecture phase); `edges` are (parent, child) indexes into `nodes`; a node that never
//! ran has no `started`/`finished`; a record is a pure value, so the renderer is a pure
//! function of it.
//!
//! The hook in `exec` is four calls ([`RunRecorder::phase`], [`RunRecorder::started`],
//! [`RunRecorder::finished`], [`RunRecorder::outcomes`]), kept apart from the drain loop's
//! own logic so it can be re-attached when that loop changes.

use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::report::{Outcome, Row};

/// The record format's version (embedded in the page as JSON).
pub const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub version: u32,
    /// `plan` or `build`.
    pub kind: RunKind,
    /// The command line, for the page's title.
    pub command: String,
    /// When the run started, RFC 3339 UTC.
    pub started_at: String,
    /// Milliseconds from start to the end of the run (0 for a plan).
    pub duration_ms: u64,
    /// `--jobs`: how many builder lanes there can be.
    pub jobs: usize,
    pub nodes: Vec<RecordNode>,
    /// (parent, child) indexes into `nodes`.
    pub edges: Vec<(usize, usize)>,
    /// One per architecture built, in order (a build runs architectures one after another).
    pub phases: Vec<Phase>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Plan,
    Build,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Phase {
    pub arch: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordNode {
    /// `repo:first-tag@arch`, as in the plan.
    pub id: String,
    pub repo: String,
    pub tags: Vec<String>,
    pub arch: String,
    /// `buildkit`, `classic` or `oci-import`.
    pub builder: String,
    pub key: String,
    pub outcome: NodeOutcome,
    /// Why it failed, was skipped or is blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The builder lane (0-based, below `jobs`) it ran on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane: Option<usize>,
    /// When its last dependency finished (it could have started).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    /// When it was found cached, skipped or failed without running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Attempts beyond the first (transient faults).
    pub retries: u32,
    /// Why pushing its tags failed (`build --push`; the node itself may be fine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_error: Option<String>,
    /// Not selected: in the run as an ancestor of what was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ancestor: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NodeOutcome {
    /// In a plan: will be built.
    Planned,
    /// In a plan: cannot be built (e.g. a FROM using an ARG without a default).
    Blocked,
    Built,
    /// Pulled from the registry cache by its key instead of built.
    Pulled,
    /// Already built (its cache tag exists); in a plan: up to date.
    Cached,
    /// An ancestor of the selection that nothing to build needed.
    Unneeded,
    Failed,
    Skipped,
    NotStarted,
}

impl NodeOutcome {
    pub fn label(self) -> &'static str {
        match self {
            NodeOutcome::Planned => "to build",
            NodeOutcome::Blocked => "blocked",
            NodeOutcome::Built => "built",
            NodeOutcome::Pulled => "pulled",
            NodeOutcome::Cached => "cached",
            NodeOutcome::Unneeded => "unneeded",
            NodeOutcome::Failed => "failed",
            NodeOutcome::Skipped => "skipped",
            NodeOutcome::NotStarted => "not started",
        }
    }

    /// The CSS class and the key of the legend.
    pub fn class(self) -> &'static str {
        match self {
            NodeOutcome::Planned => "planned",
            NodeOutcome::Blocked => "blocked",
            NodeOutcome::Built => "built",
            NodeOutcome::Pulled => "pulled",
            NodeOutcome::Cached => "cached",
            NodeOutcome::Unneeded => "unneeded",
            NodeOutcome::Failed => "failed",
            NodeOutcome::Skipped => "skipped",
            NodeOutcome::NotStarted => "notstarted",
        }
    }

    pub const ALL: [NodeOutcome; 9] = [
        NodeOutcome::Built,
        NodeOutcome::Pulled,
        NodeOutcome::Cached,
        NodeOutcome::Unneeded,
        NodeOutcome::Failed,
        NodeOutcome::Skipped,
        NodeOutcome::NotStarted,
        NodeOutcome::Planned,
        NodeOutcome::Blocked,
    ];
}

impl RecordNode {
    fn from_plan_node(node: &crate::plan::Node) -> RecordNode {
        let (outcome, reason) = match (&node.blocked, node.built) {
            (Some(reason), _) => (NodeOutcome::Blocked, Some(reason.clone())),
            (None, Some(true)) => (NodeOutcome::Cached, None),
            _ => (NodeOutcome::Planned, None),
        };
        RecordNode {
            id: node.id.clone(),
            repo: node.repo.clone(),
            tags: node.tags.clone(),
            arch: node.arch.clone(),
            builder: node.builder.as_str().to_string(),
            key: node.key.clone(),
            outcome,
            reason,
            lane: None,
            ready_ms: None,
            started_ms: None,
            finished_ms: None,
            decided_ms: None,
            log: None,
            retries: 0,
            push_error: None,
            ancestor: !node.selected,
        }
    }

    /// Milliseconds it ran (0 when it did not).
    pub fn run_ms(&self) -> u64 {
        match (self.started_ms, self.finished_ms) {
            (Some(s), Some(f)) => f.saturating_sub(s),
            _ => 0,
        }
    }

    /// Milliseconds between ready and started.
    pub fn wait_ms(&self) -> u64 {
        match (self.ready_ms, self.started_ms) {
            (Some(r), Some(s)) => s.saturating_sub(r),
            _ => 0,
        }
    }
}

impl RunRecord {
    /// An empty record of `kind`, started now.
    pub fn new(kind: RunKind, command: String, jobs: usize) -> RunRecord {
        RunRecord {
            version: RECORD_VERSION,
            kind,
            command,
            started_at: crate::utc::rfc3339(epoch_now()),
            duration_ms: 0,
            jobs,
            nodes: Vec::new(),
            edges: Vec::new(),
            phases: Vec::new(),
        }
    }

    /// The planned graph alone (`plan --report`): nodes to build, up to date or blocked.
    pub fn from_plan(plan: &Plan, command: String) -> RunRecord {
        let mut record = RunRecord::new(RunKind::Plan, command, 0);
        record.add_plan(plan);
        record
    }

    /// Appends `plan`'s nodes and edges; returns the index of its first node.
    fn add_plan(&mut self, plan: &Plan) -> usize {
        self.add_nodes(
            plan.nodes.iter().map(RecordNode::from_plan_node).collect(),
            plan.edges(),
        )
    }

    /// Appends nodes and their (parent, child) edges, indexes local to `nodes`; returns the
    /// index of the first.
    fn add_nodes(&mut self, nodes: Vec<RecordNode>, edges: Vec<(usize, usize)>) -> usize {
        let offset = self.nodes.len();
        self.nodes.extend(nodes);
        self.edges
            .extend(edges.into_iter().map(|(p, c)| (p + offset, c + offset)));
        offset
    }

    /// The critical path: the chain of dependencies with the largest total weight, where a
    /// node weighs its run time in a build and 1 per node to build in a plan. Node indexes,
    /// parents first, and the total (milliseconds, or nodes for a plan).
    pub fn critical_path(&self) -> (Vec<usize>, u64) {
        let n = self.nodes.len();
        let weight = |i: usize| -> u64 {
            let node = &self.nodes[i];
            match self.kind {
                RunKind::Build => node.run_ms(),
                RunKind::Plan => u64::from(node.outcome == NodeOutcome::Planned),
            }
        };
        let mut parents: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut indegree = vec![0usize; n];
        for &(p, c) in &self.edges {
            if p < n && c < n {
                parents[c].push(p);
                children[p].push(c);
                indegree[c] += 1;
            }
        }
        // Kahn's order; nodes on a cycle (never in a valid record) are left out.
        let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop() {
            order.push(i);
            for &c in &children[i] {
                indegree[c] -= 1;
                if indegree[c] == 0 {
                    ready.push(c);
                }
            }
        }
        let mut best = vec![0u64; n];
        let mut via: Vec<Option<usize>> = vec![None; n];
        for &i in &order {
            let from = parents[i]
                .iter()
                .copied()
                .max_by_key(|&p| (best[p], usize::MAX - p));
            best[i] = weight(i) + from.map_or(0, |p| best[p]);
            via[i] = from.filter(|&p| best[p] > 0);
        }
        let Some(end) = order
            .iter()
            .copied()
            .max_by_key(|&i| (best[i], usize::MAX - i))
            .filter(|&i| best[i] > 0)
        else {
            return (Vec::new(), 0);
        };
        let mut path = vec![end];
        while let Some(p) = via[*path.last().unwrap_or(&end)] {
            path.push(p);
        }
        path.reverse();
        (path, best[end])
    }
}

fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Fills a build's [`RunRecord`] from the drain loop (shared by reference; cheap calls).
#[derive(Debug)]
pub struct RunRecorder {
    start: Instant,
    inner: Mutex<Recording>,
}

#[derive(Debug)]
struct Recording {
    record: RunRecord,
    /// Index of the current phase's first node.
    offset: usize,
    /// Which node holds each lane.
    lanes: Vec<Option<usize>>,
}

impl RunRecorder {
    pub fn new(command: String, jobs: usize) -> RunRecorder {
        RunRecorder {
            start: Instant::now(),
            inner: Mutex::new(Recording {
                record: RunRecord::new(RunKind::Build, command, jobs),
                offset: 0,
                lanes: Vec::new(),
            }),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn with<T>(&self, f: impl FnOnce(&mut Recording) -> T) -> T {
        let mut guard = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// One architecture's final plan, before its builds start. Node indexes in the other
    /// calls are this plan's.
    pub fn phase(&self, plan: &Plan) {
        self.phase_of(
            plan.nodes.iter().map(RecordNode::from_plan_node).collect(),
            plan.edges(),
        );
    }

    fn phase_of(&self, nodes: Vec<RecordNode>, edges: Vec<(usize, usize)>) {
        let now = self.now();
        self.with(|r| {
            let arch = nodes.first().map(|n| n.arch.clone()).unwrap_or_default();
            r.offset = r.record.add_nodes(nodes, edges);
            r.record.phases.push(Phase {
                arch,
                start_ms: now,
                end_ms: now,
            });
            r.lanes.clear();
        });
    }

    /// Node `node` of the current phase started; its log goes to `log`.
    pub fn started(&self, node: usize, log: &std::path::Path) {
        let now = self.now();
        self.with(|r| {
            let lane = match r.lanes.iter().position(Option::is_none) {
                Some(free) => free,
                None => {
                    r.lanes.push(None);
                    r.lanes.len() - 1
                }
            };
            r.lanes[lane] = Some(node);
            if let Some(n) = r.record.nodes.get_mut(r.offset + node) {
                n.lane = Some(lane);
                n.started_ms = Some(now);
                n.log = Some(log.display().to_string());
            }
        });
    }

    /// Node `node` of the current phase finished (built or failed).
    pub fn finished(&self, node: usize) {
        let now = self.now();
        self.with(|r| {
            if let Some(lane) = r.lanes.iter_mut().find(|l| **l == Some(node)) {
                *lane = None;
            }
            if let Some(n) = r.record.nodes.get_mut(r.offset + node) {
                n.finished_ms = Some(now);
            }
        });
    }

    /// How each node of the current phase ended; closes the phase. Ready times and the
    /// times of nodes that never ran are derived from their parents' ends.
    pub fn outcomes(&self, rows: &[Row]) {
        let now = self.now();
        self.with(|r| {
            let offset = r.offset;
            let phase_start = r.record.phases.last().map_or(0, |p| p.start_ms);
            if let Some(phase) = r.record.phases.last_mut() {
                phase.end_ms = now;
            }
            for (i, row) in rows.iter().enumerate() {
                let Some(n) = r.record.nodes.get_mut(offset + i) else {
                    continue;
                };
                let (kind, reason) = match &row.outcome {
                    Outcome::Built(_) => (NodeOutcome::Built, None),
                    Outcome::Pulled(_) => (NodeOutcome::Pulled, None),
                    Outcome::Cached => (NodeOutcome::Cached, None),
                    Outcome::Unneeded => (NodeOutcome::Unneeded, None),
                    Outcome::Failed { reason, .. } => (NodeOutcome::Failed, Some(reason.clone())),
                    Outcome::Skipped(reason) => (NodeOutcome::Skipped, Some(reason.clone())),
                    Outcome::NotStarted => (NodeOutcome::NotStarted, None),
                };
                n.outcome = kind;
                n.reason = reason;
                n.push_error = row.push_error.clone();
                n.ancestor = row.ancestor;
                n.retries = row.retries.len() as u32;
            }
            let outcomes = rows;
            // Parents first: a node is ready when its last parent finished (or was decided).
            let mut parents: Vec<Vec<usize>> = vec![Vec::new(); outcomes.len()];
            for &(p, c) in &r.record.edges {
                if p >= offset && c >= offset && c - offset < outcomes.len() {
                    parents[c - offset].push(p - offset);
                }
            }
            let order = topological(&parents);
            for i in order {
                let end_of = |n: &RecordNode| n.finished_ms.or(n.decided_ms).unwrap_or(phase_start);
                let ready = parents[i]
                    .iter()
                    .map(|&p| end_of(&r.record.nodes[offset + p]))
                    .max()
                    .unwrap_or(phase_start);
                let n = &mut r.record.nodes[offset + i];
                if n.started_ms.is_some() {
                    n.ready_ms = Some(ready.min(n.started_ms.unwrap_or(ready)));
                } else {
                    n.decided_ms = Some(match n.outcome {
                        NodeOutcome::NotStarted => now,
                        _ => ready,
                    });
                }
            }
        });
    }

    /// The record so far, its duration set to now.
    pub fn record(&self) -> RunRecord {
        let now = self.now();
        self.with(|r| {
            let mut record = r.record.clone();
            record.duration_ms = now;
            record
        })
    }
}

/// A parents-first order of `0..parents.len()` (`parents[i]`: the indexes of i's parents).
fn topological(parents: &[Vec<usize>]) -> Vec<usize> {
    let n = parents.len();
    let mut state = vec![0u8; n];
    let mut order = Vec::with_capacity(n);
    for root in 0..n {
        let mut stack = vec![(root, false)];
        while let Some((i, done)) = stack.pop() {
            if done {
                if state[i] != 2 {
                    state[i] = 2;
                    order.push(i);
                }
                continue;
            }
            if state[i] != 0 {
                continue;
            }
            state[i] = 1;
            stack.push((i, true));
            for &p in &parents[i] {
                if p < n && state[p] == 0 {
                    stack.push((p, false));
                }
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn node(id: &str) -> RecordNode {
        RecordNode {
            id: id.to_string(),
            repo: id.to_string(),
            tags: Vec::new(),
            arch: "amd64".to_string(),
            builder: "buildkit".to_string(),
            key: String::new(),
            outcome: NodeOutcome::Planned,
            reason: None,
            lane: None,
            ready_ms: None,
            started_ms: None,
            finished_ms: None,
            decided_ms: None,
            log: None,
            retries: 0,
            push_error: None,
            ancestor: false,
        }
    }

    /// Two phases: lanes are reused as builds end, ready times follow parents, nodes that
    /// never ran get the time they were decided, and indexes stay per phase.
    #[test]
    fn recorder_fills_lanes_times_and_outcomes() {
        let rec = RunRecorder::new("keg build".to_string(), 2);
        // a -> b, a -> c (b fails), c -> d; e cached; b -> f skipped.
        rec.phase_of(
            ["a", "b", "c", "d", "e", "f"].map(node).to_vec(),
            vec![(0, 1), (0, 2), (2, 3), (1, 5)],
        );
        rec.started(0, Path::new("/logs/a.log"));
        rec.finished(0);
        rec.started(1, Path::new("/logs/b.log"));
        rec.started(2, Path::new("/logs/c.log"));
        rec.finished(1);
        rec.started(3, Path::new("/logs/d.log"));
        rec.finished(2);
        rec.finished(3);
        let row = |outcome| Row {
            outcome,
            ancestor: false,
            push_error: None,
            builder: None,
            retries: Vec::new(),
        };
        let mut rows = vec![
            row(Outcome::Built(Default::default())),
            row(Outcome::failed("boom")),
            row(Outcome::Pulled(Default::default())),
            row(Outcome::Built(Default::default())),
            row(Outcome::Cached),
            row(Outcome::Skipped("depends on b, which failed".into())),
        ];
        rows[4].push_error = Some("registry down".into());
        rec.outcomes(&rows);
        let mut second = node("a2");
        second.arch = "arm64v8".to_string();
        rec.phase_of(vec![second], Vec::new());
        rec.outcomes(&[row(Outcome::NotStarted)]);
        let r = rec.record();
        let lanes: Vec<Option<usize>> = r.nodes.iter().map(|n| n.lane).collect();
        assert_eq!(
            lanes,
            [Some(0), Some(0), Some(1), Some(0), None, None, None]
        );
        let outcomes: Vec<NodeOutcome> = r.nodes.iter().map(|n| n.outcome).collect();
        use NodeOutcome::*;
        assert_eq!(
            outcomes,
            [Built, Failed, Pulled, Built, Cached, Skipped, NotStarted]
        );
        assert_eq!(r.nodes[4].push_error.as_deref(), Some("registry down"));
        let (a, b, c, d) = (&r.nodes[0], &r.nodes[1], &r.nodes[2], &r.nodes[3]);
        assert_eq!(b.ready_ms, a.finished_ms);
        assert_eq!(c.ready_ms, a.finished_ms);
        assert_eq!(d.ready_ms, c.finished_ms.min(d.started_ms));
        assert_eq!(r.nodes[5].decided_ms, b.finished_ms);
        assert_eq!(
            r.nodes[5].reason.as_deref(),
            Some("depends on b, which failed")
        );
        assert_eq!(r.nodes[4].decided_ms, Some(r.phases[0].start_ms));
        assert_eq!(b.log.as_deref(), Some("/logs/b.log"));
        assert_eq!(r.edges, [(0, 1), (0, 2), (2, 3), (1, 5)]);
        assert_eq!(
            r.phases.iter().map(|p| p.arch.as_str()).collect::<Vec<_>>(),
            ["amd64", "arm64v8"]
        );
        assert!(r.phases[0].end_ms <= r.phases[1].start_ms);
        assert!(r.nodes.iter().all(|n| n.started_ms <= n.finished_ms));
    }

    #[test]
    fn critical_path_of_a_plan_counts_nodes_to_build() {
        let mut r = RunRecord::new(RunKind::Plan, "keg plan".to_string(), 0);
        let mut cached = node("b");
        cached.outcome = NodeOutcome::Cached;
        r.add_nodes(
            vec![node("a"), cached, node("c"), node("d"), node("e")],
            vec![(0, 1), (1, 2), (0, 3)],
        );
        assert_eq!(r.critical_path(), (vec![0, 1, 2], 2));
        let empty = RunRecord::new(RunKind::Plan, "keg plan".to_string(), 0);
        assert_eq!(empty.critical_path(), (Vec::new(), 0));
    }
}
