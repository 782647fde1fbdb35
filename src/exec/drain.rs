//! The drain loop: every node that needs work, from one ready queue onto the members of the
//! run, until the queue is done, stopped or out of work.
//!
//! As cargo keeps its drain loop apart from job setup, this file only schedules: it pops ready
//! nodes (longest critical path first), seats each on a member that builds its platform
//! (natively first, `--jobs` seats per member), spawns its [`super::job`] on the worker pool,
//! and turns the events workers send into outcomes.
//!
//! Invariants: only this thread reports; a node is finished in the queue exactly once; a
//! failure skips exactly its descendants; an infrastructure failure puts the node back in
//! the waiting list (after a backoff, up to `--retries` times) instead of finishing it, and
//! a member that no longer answers takes no new node until a probe finds it back; after an
//! interrupt or `--fail-fast` nothing new starts and every running job is waited for.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::actions::Action;
use super::job;
use super::pool;
use super::queue::{self, DependencyQueue};
use crate::error::Error;
use crate::interrupt;
use crate::plan::Plan;
use crate::report::{self, Event, Outcome, Reporter};
use crate::retry::{self, Retry};

/// What the drain loop found out about every node.
pub struct Drained {
    pub outcomes: Vec<Outcome>,
    /// The member each node last ran on.
    pub ran_on: Vec<Option<usize>>,
    /// Each node's failed attempts before its last, for people.
    pub retries: Vec<Vec<String>>,
}

/// A ready node waiting for a member (or for its backoff to pass).
struct Waiting {
    node: usize,
    attempt: u32,
    not_before: Instant,
}

/// The loop's state.
struct Drain<'a, 's> {
    actions: &'a [Action],
    shared: &'a job::Shared<'s>,
    plan: &'a Plan,
    queue: DependencyQueue,
    outcomes: Vec<Option<Outcome>>,
    ran_on: Vec<Option<usize>>,
    retries: Vec<Vec<String>>,
    seats: Vec<pool::Seat>,
    waiting: Vec<Waiting>,
    attempts: Vec<u32>,
    running: usize,
    jobs: usize,
}

/// Runs every node that needs it: ready nodes first by critical path, each on a member that
/// builds its platform (natively first), at most `--jobs` at a time per member; retries
/// infrastructure failures. Returns each node's outcome. `push_errors` gets the push errors
/// of the nodes that run; `cached_retries` are the retries of the pushes of cached nodes.
pub fn drain(
    actions: &[Action],
    shared: &job::Shared<'_>,
    reporter: &mut Reporter,
    push_errors: &mut [Option<String>],
    cached_retries: Vec<Vec<Retry>>,
) -> Result<Drained, Error> {
    let plan = shared.plan;
    let n = plan.nodes.len();
    let queue = DependencyQueue::new(&vec![1; n], &queue_edges(plan, actions)).map_err(|e| {
        Error::Cycle {
            cycle: e.to_string(),
        }
    })?;
    let mut d = Drain {
        actions,
        shared,
        plan,
        queue,
        outcomes: vec![None; n],
        ran_on: vec![None; n],
        retries: vec![Vec::new(); n],
        seats: vec![pool::Seat::default(); shared.members.len()],
        waiting: Vec::new(),
        attempts: vec![0; n],
        running: 0,
        jobs: shared.options.jobs.max(1),
    };
    d.settle_up_front(reporter, push_errors, cached_retries);

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(d.jobs * shared.members.len())
        .thread_name(|i| format!("keg-build-{i}"))
        .build()
        .map_err(|e| Error::Engine(format!("cannot start the worker pool: {e}")))?;
    let (tx, rx) = mpsc::channel::<Event>();
    pool.in_place_scope(|scope| {
        loop {
            reporter.tick();
            if interrupt::interrupted() && !d.queue.is_stopped() {
                d.stop(reporter, "interrupted: stopping the running builds");
            }
            d.dispatch(reporter, |i, m| {
                let tx = tx.clone();
                let action = &actions[i];
                scope.spawn(move |_| job::run(i, action, m, shared, &tx));
            });
            // Nothing running and nothing waiting: the queue is done, stopped, or every
            // remaining node was skipped.
            if d.running == 0 && (d.waiting.is_empty() || d.queue.is_stopped()) {
                break;
            }
            if let Ok(event) = rx.recv_timeout(Duration::from_millis(100)) {
                d.receive(event, reporter, push_errors);
            }
        }
    });
    Ok(Drained {
        outcomes: d
            .outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::NotStarted))
            .collect(),
        ran_on: d.ran_on,
        retries: d.retries,
    })
}

impl Drain<'_, '_> {
    /// Nodes whose outcome is known before anything runs: cached, unneeded, doomed.
    fn settle_up_front(
        &mut self,
        reporter: &mut Reporter,
        push_errors: &[Option<String>],
        cached_retries: Vec<Vec<Retry>>,
    ) {
        for (i, (action, pushed)) in self.actions.iter().zip(cached_retries).enumerate() {
            let (outcome, result) = match action {
                Action::Cached => (Outcome::Cached, queue::Outcome::Success),
                Action::Unneeded => (Outcome::Unneeded, queue::Outcome::Success),
                Action::Fail(reason) => (Outcome::failed(reason.clone()), queue::Outcome::Failed),
                _ => continue,
            };
            match &outcome {
                Outcome::Cached => {
                    reporter.cached(i);
                    for retry in pushed {
                        self.retries[i].push(retry.to_string());
                        reporter.event(&Event::Retried { node: i, retry });
                    }
                    if self.shared.options.publish.is_some() && self.plan.nodes[i].selected {
                        reporter.pushed(i, push_errors[i].as_deref());
                    }
                }
                Outcome::Unneeded => reporter.unneeded(i),
                Outcome::Failed { reason, .. } => reporter.failed(i, reason),
                _ => {}
            }
            self.conclude(i, outcome, result, reporter);
        }
    }

    /// Stops handing out work: the waiting nodes stay not started.
    fn stop(&mut self, reporter: &mut Reporter, why: &str) {
        self.queue.stop();
        self.waiting.clear();
        reporter.line(why);
    }

    /// Moves ready nodes to the waiting list and seats every waiting node it can, longest
    /// critical path first; `spawn(node, member)` starts its job.
    fn dispatch(&mut self, reporter: &mut Reporter, mut spawn: impl FnMut(usize, usize)) {
        while let Some(i) = self.queue.pop() {
            self.waiting.push(Waiting {
                node: i,
                attempt: 0,
                not_before: Instant::now(),
            });
        }
        // Retries keep their place by the same rule.
        let queue = &self.queue;
        self.waiting.sort_by_key(|w| {
            (
                std::cmp::Reverse(queue.critical_path(w.node).unwrap_or(0)),
                w.node,
            )
        });
        let now = Instant::now();
        for w in std::mem::take(&mut self.waiting) {
            let node = &self.plan.nodes[w.node];
            if w.not_before > now || self.queue.is_stopped() {
                self.waiting.push(w);
                continue;
            }
            let members = self.shared.members;
            match pool::choose(
                members,
                &self.seats,
                self.jobs,
                &node.platform,
                node.builder,
            ) {
                Ok(Some(m)) => {
                    let i = w.node;
                    self.start(w, m, reporter);
                    spawn(i, m);
                }
                Ok(None) => {
                    let kind = node.builder;
                    if revive(members, &mut self.seats, &node.platform, kind, reporter)
                        || self.running > 0
                    {
                        self.waiting.push(w);
                    } else {
                        let reason = self.no_builder_left(&node.platform);
                        self.fail(w.node, reason, reporter);
                    }
                }
                Err(reason) => self.fail(w.node, reason, reporter),
            }
        }
    }

    /// Seats node `w` on member `m` and reports it started.
    fn start(&mut self, w: Waiting, m: usize, reporter: &mut Reporter) {
        let node = &self.plan.nodes[w.node];
        self.seats[m].running += 1;
        self.running += 1;
        self.ran_on[w.node] = Some(m);
        self.attempts[w.node] = w.attempt;
        reporter.event(&Event::Started {
            node: w.node,
            member: m,
            action: self.actions[w.node].verb(),
            attempt: w.attempt + 1,
        });
        if self.shared.remote.is_some() {
            let name = self.shared.members[m].name();
            reporter.line(&format!("        {}, on {name}", node.id));
        }
        if let Some(recorder) = &self.shared.options.recorder {
            recorder.started(w.node, &job::log_path(self.shared.run_dir, node));
        }
    }

    /// Why no member can take a node of `platform`: every one that could has left.
    fn no_builder_left(&self, platform: &str) -> String {
        let gone: Vec<String> = self
            .seats
            .iter()
            .zip(self.shared.members)
            .filter_map(|(s, m)| {
                s.left
                    .as_ref()
                    .map(|why| format!("{} left the pool ({why})", m.name()))
            })
            .collect();
        format!(
            "no builder left that builds {platform}: {}",
            gone.join("; ")
        )
    }

    /// One event from a worker.
    fn receive(
        &mut self,
        event: Event,
        reporter: &mut Reporter,
        push_errors: &mut [Option<String>],
    ) {
        let (node, member) = match &event {
            Event::Started { .. } | Event::Step { .. } => return reporter.event(&event),
            Event::Retried { node, retry } => {
                self.retries[*node].push(retry.to_string());
                return reporter.event(&event);
            }
            Event::Done { node, member, .. } | Event::Failed { node, member, .. } => {
                (*node, *member)
            }
        };
        self.running -= 1;
        self.seats[member].running -= 1;
        if let Some(recorder) = &self.shared.options.recorder {
            recorder.finished(node);
        }
        if let Event::Failed {
            reason,
            infra: Some(infra),
            ..
        } = &event
            && self.retry(node, member, reason, infra, reporter)
        {
            return;
        }
        reporter.event(&event);
        let (outcome, result) = match event {
            Event::Done {
                elapsed,
                pulled,
                pushed,
                ..
            } => {
                if let Some(Err(reason)) = pushed {
                    push_errors[node] = Some(reason);
                }
                // Which node this cache key was built for, and when: `keg gc --keep`.
                let done = &self.plan.nodes[node];
                crate::gc::record_built(
                    &self.shared.config.cache,
                    &done.cache_tag,
                    &done.cache_ref,
                );
                let outcome = match self.actions[node] {
                    Action::Twin(_) => Outcome::Cached,
                    _ if pulled => Outcome::Pulled(elapsed),
                    _ => Outcome::Built(elapsed),
                };
                (outcome, queue::Outcome::Success)
            }
            Event::Failed {
                reason, elapsed, ..
            } => {
                let reason = if interrupt::interrupted() {
                    "interrupted".to_string()
                } else {
                    reason
                };
                let outcome = Outcome::Failed {
                    reason,
                    elapsed: Some(elapsed),
                };
                (outcome, queue::Outcome::Failed)
            }
            _ => return,
        };
        self.conclude(node, outcome, result, reporter);
        if result == queue::Outcome::Failed
            && self.shared.options.fail_fast
            && !self.queue.is_stopped()
        {
            self.stop(reporter, "--fail-fast: no new builds are started");
        }
    }

    /// An infrastructure failure: the member may leave the pool, and the node waits for
    /// another attempt. False when no attempt is left (or the run is stopping).
    fn retry(
        &mut self,
        node: usize,
        member: usize,
        reason: &str,
        infra: &report::Infra,
        reporter: &mut Reporter,
    ) -> bool {
        if interrupt::interrupted() || self.attempts[node] >= self.shared.options.retries {
            return false;
        }
        let attempt = self.attempts[node] + 1;
        let on = self.shared.members[member].name();
        if let report::Infra::Gone(why) = infra
            && self.seats[member].alive
        {
            let seat = &mut self.seats[member];
            seat.alive = false;
            seat.left = Some(why.clone());
            seat.last_probe = Some(Instant::now());
            reporter.line(&format!("builder {on} left the pool: {why}"));
        }
        let wait = retry::backoff(attempt);
        let retry = Retry {
            attempt,
            what: format!("on {on}"),
            reason: reason.to_string(),
            wait,
        };
        reporter.requeued(node, &retry);
        self.retries[node].push(retry.to_string());
        self.waiting.push(Waiting {
            node,
            attempt,
            not_before: Instant::now() + wait,
        });
        true
    }

    /// A node that fails before it runs.
    fn fail(&mut self, node: usize, reason: String, reporter: &mut Reporter) {
        reporter.failed(node, &reason);
        self.conclude(
            node,
            Outcome::failed(reason),
            queue::Outcome::Failed,
            reporter,
        );
    }

    /// Records a node's outcome and finishes it in the queue; a failure skips its
    /// descendants, each reported.
    fn conclude(
        &mut self,
        node: usize,
        outcome: Outcome,
        result: queue::Outcome,
        reporter: &mut Reporter,
    ) {
        self.outcomes[node] = Some(outcome);
        let Ok(skipped) = self.queue.finish(node, result) else {
            return;
        };
        for s in skipped {
            let reason = format!(
                "depends on {}, which failed",
                self.plan.nodes[s.failed_ancestor].id
            );
            reporter.skipped(s.node, &reason);
            self.outcomes[s.node] = Some(Outcome::Skipped(reason));
        }
    }
}

/// The queue's edges, `(dependent, dependency)`: the plan's, and a twin after the node that
/// makes its key's image.
fn queue_edges(plan: &Plan, actions: &[Action]) -> Vec<(usize, usize)> {
    let mut edges: Vec<(usize, usize)> = plan.edges().into_iter().map(|(p, c)| (c, p)).collect();
    for (i, action) in actions.iter().enumerate() {
        if let Action::Twin(first) = action {
            edges.push((i, *first));
        }
    }
    edges
}

/// When no live member can take a node of `platform`: probes the members that left and
/// build it (each at most every [`pool::PROBE_EVERY`], [`pool::PROBES`] times). True while
/// one is live, comes back, or may still come back.
fn revive(
    members: &[pool::Member],
    seats: &mut [pool::Seat],
    platform: &str,
    kind: crate::manifest::Builder,
    reporter: &Reporter,
) -> bool {
    let fits: Vec<usize> = (0..members.len())
        .filter(|&i| members[i].fits(platform, kind).0)
        .collect();
    if fits.iter().any(|&i| seats[i].alive) {
        return true;
    }
    let mut hope = false;
    for &i in &fits {
        if seats[i].probes >= pool::PROBES {
            continue;
        }
        hope = true;
        let due = seats[i]
            .last_probe
            .is_none_or(|at| at.elapsed() >= pool::PROBE_EVERY);
        if !due {
            continue;
        }
        seats[i].last_probe = Some(Instant::now());
        seats[i].probes += 1;
        if members[i].probe().is_ok() {
            seats[i].alive = true;
            seats[i].left = None;
            seats[i].probes = 0;
            reporter.line(&format!(
                "builder {} is back in the pool",
                members[i].name()
            ));
            return true;
        }
    }
    hope
}
