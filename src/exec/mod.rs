//! Build execution: the plan, run for real on a Docker engine.
//!
//! [`build`] reads as its steps: [`prepare`] (external parents in place, the final plan),
//! [`actions`] (what each node needs: nothing, a pull of its key's image from the registry
//! cache, a build), the cached nodes' names and pushes, then [`drain`]: every ready node of
//! every architecture from one [`queue`] onto a pool of `--jobs` workers, each running a
//! [`job`]; at the end, names keg moved are settled ([`names`]) and the summary printed.
//!
//! With `--builder`, nodes go to a [`pool`] of buildx builders instead of the local engine,
//! and the registry is the shared store ([`remote`]).
//!
//! Invariants: only this thread prints (workers send events); a node's parents are the
//! images its key hashed, whatever the engine has under their names; a failed node skips
//! exactly its descendants, a failed push skips nothing; a node that failed for
//! infrastructure reasons is retried (on another member when its own left the pool) up to
//! `--retries` times with exponential backoff, a failed step never; Ctrl-C or SIGTERM stops
//! handing out work, terminates the running docker children, waits for them, prints the
//! summary and exits 130.

pub mod actions;
pub mod job;
pub mod names;
pub mod pool;
pub mod prepare;
pub mod queue;
pub mod remote;
pub mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::docker::{DockerCommand, Engine};
use crate::error::Error;
use crate::interrupt;
use crate::library::Repo;
use crate::plan::{Plan, PlanOptions};
use crate::process;
use crate::registry::Registry;
use crate::report::{self, Event, Outcome, Reporter, Row};
use crate::session::Session;
use actions::{Action, Decided};
use prepare::Prepared;
use queue::DependencyQueue;

/// When external parents are pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pull {
    Always,
    Missing,
    Never,
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub plan: PlanOptions,
    pub jobs: usize,
    pub dry_run: bool,
    pub fail_fast: bool,
    pub pull: Pull,
    pub log_dir: PathBuf,
    /// `--push`: where and how each node's tags are pushed once it is built or cached.
    pub publish: Option<crate::publish::PublishOptions>,
    /// `--no-parents`: an ancestor of the selection is never built; one without an image
    /// is an error.
    pub no_parents: bool,
    /// `--timeout`: how long one build may run.
    pub timeout: Option<Duration>,
    /// `--builder`: the buildx builders of the pool (none: the local engine).
    pub builders: Vec<String>,
    /// `--load`: with a pool, pull the selected nodes' images into the local engine.
    pub load: bool,
    /// `--retries`: attempts after an infrastructure failure.
    pub retries: u32,
    /// `--shard I/N`: only that part of the plan.
    pub shard: Option<(usize, usize)>,
    /// `--report`: what ran when, for the HTML page (four calls below, marked `recorder`).
    pub recorder: Option<std::sync::Arc<crate::record::RunRecorder>>,
    /// `--progress`: bars, lines or JSON events.
    pub progress: report::Mode,
    /// `--heartbeat`: without a TTY, a line after this long without output.
    pub heartbeat: Option<Duration>,
}

impl BuildOptions {
    /// The plan (only `--shard`'s part of it) with `images` as the engine's listing.
    fn make_plan(
        &self,
        session: &Session,
        repos: &[Repo],
        images: &HashMap<String, String>,
    ) -> Result<Plan, Error> {
        // Fetching and reading sources changes nothing keg must undo: Ctrl-C ends it at once.
        let plan =
            interrupt::abortable(|| crate::plan::make(session, repos, &self.plan, Some(images)))?;
        Ok(match self.shard {
            Some((part, parts)) => plan.shard(part, parts),
            None => plan,
        })
    }
}

/// Builds `repos` for every architecture of the options at once; Ok only when every node
/// has its image and every push succeeded.
pub fn build(session: &Session, repos: &[Repo], options: &BuildOptions) -> Result<(), Error> {
    let engine = Engine::detect()?;
    let cancel = interrupt::install();
    let mut options = options.clone();
    options.plan.engine_platform = Some(engine.platform.clone());
    options.plan.build.features = Engine::features(Some(&engine));
    let early = Reporter::early(options.progress);
    let members = members(&options)?;
    let pool = members.is_some();
    let registry = (options.plan.build.registry_cache || options.publish.is_some() || pool)
        .then(|| Registry::new().with_retries(options.retries));

    let (prepared, decided, externals) = match (&members, &registry) {
        (Some(_), Some(registry)) => {
            // The pool: the registry is the store, the local engine is not asked.
            options.plan.engine_platform = None;
            let (prepared, externals) = remote::plan(session, repos, &options, registry)?;
            for retry in crate::registry::take_retries() {
                early.query_retried(&retry);
            }
            let decided = actions::decide(&prepared, Some(registry), &options, true, &early)?;
            (prepared, decided, externals)
        }
        _ => {
            let mut prepared = prepare::plan(session, repos, &options, &engine)?;
            if options.no_parents {
                // A missing ancestor is refused before anything changes in the engine.
                actions::decide(&prepared, registry.as_ref(), &options, false, &early)?;
            }
            prepared.place_parents(session, repos, &options, &engine, &early)?;
            let decided = actions::decide(&prepared, registry.as_ref(), &options, false, &early)?;
            (prepared, decided, HashMap::new())
        }
    };
    if options.dry_run {
        return dry_run(
            session,
            &prepared,
            &decided,
            &options,
            registry.as_ref(),
            &early,
        );
    }
    interrupt::check()?;
    for command in &decided.retags {
        process::run(command, None, cancel, Some(job::TAG_LIMIT)).map_err(Error::Engine)?;
    }
    let plan = &prepared.plan;
    let remote = members.as_ref().map(|_| remote::Remote {
        externals,
        digests: std::sync::Mutex::new(decided.digests.clone()),
        cache_repo: options.plan.cache_repo.clone(),
        index: plan
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect(),
    });
    let run_dir = options
        .log_dir
        .join(crate::report::rfc3339(now()).replace(':', ""));
    std::fs::create_dir_all(&run_dir).map_err(|source| Error::Io {
        context: "creating the log directory",
        path: run_dir.clone(),
        source,
    })?;
    let (mut push_errors, cached_retries) = match &remote {
        Some(remote) => (
            push_cached_remote(
                session,
                plan,
                &decided,
                &options,
                registry.as_ref(),
                remote,
                &run_dir,
            ),
            vec![Vec::new(); plan.nodes.len()],
        ),
        None => push_cached(
            session,
            &prepared,
            &decided,
            &options,
            registry.as_ref(),
            &early,
        )?,
    };

    let members =
        members.unwrap_or_else(|| vec![pool::Member::local(&prepared.images, &engine.platform)]);
    let local_names = match &remote {
        Some(_) => names::Names::new(&engine.images().unwrap_or_default(), Vec::new()),
        None => names::Names::new(&Default::default(), Vec::new()),
    };
    let shared = job::Shared {
        cache: session.sources()?.cache(),
        config: &session.config,
        options: &options,
        registry: registry.as_ref(),
        plan,
        members: &members,
        remote: remote.as_ref(),
        local_names: if remote.is_some() {
            &local_names
        } else {
            &members[0].names
        },
        run_dir: &run_dir,
        cancel,
    };
    if let Some(recorder) = &options.recorder {
        recorder.phase(plan);
    }
    let nodes = plan
        .nodes
        .iter()
        .zip(&decided.actions)
        .map(|(node, action)| report::NodeInfo {
            id: node.id.clone(),
            key: node.key.clone(),
            builder: node.builder.as_str().to_string(),
            log: Some(job::log_path(&run_dir, node).display().to_string()),
            runs: action.runs(),
            ancestor: !node.selected,
        })
        .collect();
    let mut reporter = Reporter::new(nodes, options.progress, options.heartbeat)
        .with_members(members.iter().map(|m| m.name().to_string()).collect());
    let drained = drain(
        &decided.actions,
        &shared,
        &mut reporter,
        &mut push_errors,
        cached_retries,
    )?;

    // Names keg moved go to their owners' images, or back to what they were.
    let owners: HashMap<String, String> = plan
        .nodes
        .iter()
        .zip(&drained.outcomes)
        .filter(|(_, outcome)| outcome.has_image())
        .flat_map(|(node, _)| {
            node.images
                .iter()
                .map(|name| (name.clone(), node.cache_tag.clone()))
        })
        .collect();
    for names in members
        .iter()
        .map(|m| &m.names)
        .chain(remote.as_ref().map(|_| &local_names))
    {
        for command in names.settle(&owners) {
            if let Err(reason) = process::run(&command, None, cancel, Some(job::TAG_LIMIT)) {
                reporter.line(&format!("warning: {reason}"));
            }
        }
    }

    let rows: Vec<Row> = plan
        .nodes
        .iter()
        .enumerate()
        .zip(drained.outcomes)
        .zip(push_errors)
        .map(|(((i, node), outcome), push_error)| Row {
            outcome,
            ancestor: !node.selected,
            push_error,
            builder: drained.ran_on[i]
                .filter(|_| remote.is_some())
                .map(|m| members[m].name().to_string()),
            retries: drained.retries[i].clone(),
        })
        .collect();
    if let Some(recorder) = &options.recorder {
        recorder.outcomes(&rows);
    }
    reporter.summary(&rows);
    interrupt::check()?;
    let count = |f: fn(&Row) -> bool| rows.iter().filter(|r| f(r)).count();
    let failed = count(|r| matches!(r.outcome, Outcome::Failed { .. }));
    let skipped = count(|r| matches!(r.outcome, Outcome::Skipped(_)));
    let not_started = count(|r| r.outcome == Outcome::NotStarted);
    let push_failed = count(|r| r.push_error.is_some());
    if failed + skipped + not_started + push_failed > 0 {
        return Err(Error::BuildFailed {
            failed,
            skipped,
            not_started,
            push_failed,
        });
    }
    Ok(())
}

/// The pool of `--builder`s, or None for the local engine alone (no builder, or only the
/// local engine's own docker driver). A pool needs a registry `--cache-repo`.
fn members(options: &BuildOptions) -> Result<Option<Vec<pool::Member>>, Error> {
    if options.builders.is_empty() {
        return Ok(None);
    }
    let mut builders = Vec::new();
    for name in &options.builders {
        builders.push(crate::builders::Builder::inspect(name).map_err(Error::Flags)?);
    }
    let current = process::output(
        &DockerCommand::docker(&["context", "show"]),
        interrupt::install(),
        Some(process::QUERY_LIMIT),
    )
    .map(|o| o.stdout.trim().to_string())
    .unwrap_or_default();
    let local = |b: &crate::builders::Builder| {
        b.is_engine() && (b.endpoint == "default" || b.endpoint == current)
    };
    if builders.len() == 1 && local(&builders[0]) {
        return Ok(None);
    }
    if !options.plan.build.registry_cache {
        return Err(Error::Flags(format!(
            "--builder {}: builders share results through a registry: give --cache-repo a registry repository (HOST[:PORT]/REPO), not {:?}",
            options.builders.join(" --builder "),
            options.plan.cache_repo
        )));
    }
    Ok(Some(
        builders.into_iter().map(pool::Member::pooled).collect(),
    ))
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

/// What the drain loop found out about every node.
struct Drained {
    outcomes: Vec<Outcome>,
    /// The member each node last ran on.
    ran_on: Vec<Option<usize>>,
    /// Each node's failed attempts before its last, for people.
    retries: Vec<Vec<String>>,
}

/// A ready node waiting for a member (or for its backoff to pass).
struct Waiting {
    node: usize,
    attempt: u32,
    not_before: Instant,
}

/// Runs every node that needs it: ready nodes first by critical path, each on a member that
/// builds its platform (natively first), at most `--jobs` at a time per member; retries
/// infrastructure failures. Returns each node's outcome.
fn drain(
    actions: &[Action],
    shared: &job::Shared<'_>,
    reporter: &mut Reporter,
    push_errors: &mut [Option<String>],
    cached_retries: Vec<Vec<crate::retry::Retry>>,
) -> Result<Drained, Error> {
    let plan = shared.plan;
    let members = shared.members;
    let n = plan.nodes.len();
    let mut queue =
        DependencyQueue::new(&vec![1; n], &queue_edges(plan, actions)).map_err(|e| {
            Error::Cycle {
                cycle: e.to_string(),
            }
        })?;
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    let mut ran_on: Vec<Option<usize>> = vec![None; n];
    let mut retries: Vec<Vec<String>> = vec![Vec::new(); n];
    for (i, (action, pushed)) in actions.iter().zip(cached_retries).enumerate() {
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
                    retries[i].push(retry.to_string());
                    reporter.event(&Event::Retried { node: i, retry });
                }
                if shared.options.publish.is_some() && plan.nodes[i].selected {
                    reporter.pushed(i, push_errors[i].as_deref());
                }
            }
            Outcome::Unneeded => reporter.unneeded(i),
            Outcome::Failed { reason, .. } => reporter.failed(i, reason),
            _ => {}
        }
        outcomes[i] = Some(outcome);
        finish(&mut queue, plan, &mut outcomes, reporter, i, result);
    }

    let jobs = shared.options.jobs.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs * members.len())
        .thread_name(|i| format!("keg-build-{i}"))
        .build()
        .map_err(|e| Error::Engine(format!("cannot start the worker pool: {e}")))?;
    let (tx, rx) = mpsc::channel::<Event>();
    let mut seats: Vec<pool::Seat> = vec![pool::Seat::default(); members.len()];
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut attempts: Vec<u32> = vec![0; n];
    let mut running = 0usize;
    pool.in_place_scope(|scope| {
        loop {
            reporter.tick();
            if interrupt::interrupted() && !queue.is_stopped() {
                queue.stop();
                waiting.clear();
                reporter.line("interrupted: stopping the running builds");
            }
            while let Some(i) = queue.pop() {
                waiting.push(Waiting {
                    node: i,
                    attempt: 0,
                    not_before: Instant::now(),
                });
            }
            // Longest critical path first; retries keep their place by the same rule.
            waiting.sort_by_key(|w| {
                (
                    std::cmp::Reverse(queue.critical_path(w.node).unwrap_or(0)),
                    w.node,
                )
            });
            let now = Instant::now();
            let mut still = Vec::new();
            for w in std::mem::take(&mut waiting) {
                let node = &plan.nodes[w.node];
                if w.not_before > now || queue.is_stopped() {
                    still.push(w);
                    continue;
                }
                match pool::choose(members, &seats, jobs, &node.platform, node.builder) {
                    Ok(Some(m)) => {
                        seats[m].running += 1;
                        running += 1;
                        ran_on[w.node] = Some(m);
                        attempts[w.node] = w.attempt;
                        let on = if shared.remote.is_some() {
                            format!(", on {}", members[m].name())
                        } else {
                            String::new()
                        };
                        reporter.event(&Event::Started {
                            node: w.node,
                            member: m,
                            action: actions[w.node].verb(),
                            attempt: w.attempt + 1,
                        });
                        if !on.is_empty() {
                            reporter.line(&format!("        {}{on}", node.id));
                        }
                        if let Some(recorder) = &shared.options.recorder {
                            recorder.started(w.node, &job::log_path(shared.run_dir, node));
                        }
                        let (tx, action, i) = (tx.clone(), &actions[w.node], w.node);
                        scope.spawn(move |_| job::run(i, action, m, shared, &tx));
                    }
                    Ok(None) => {
                        if revive(members, &mut seats, &node.platform, node.builder, reporter)
                            || running > 0
                        {
                            still.push(w);
                        } else {
                            let gone: Vec<String> = seats
                                .iter()
                                .zip(members)
                                .filter_map(|(s, m)| {
                                    s.left
                                        .as_ref()
                                        .map(|why| format!("{} left the pool ({why})", m.name()))
                                })
                                .collect();
                            let reason = format!(
                                "no builder left that builds {}: {}",
                                node.platform,
                                gone.join("; ")
                            );
                            reporter.failed(w.node, &reason);
                            outcomes[w.node] = Some(Outcome::failed(reason));
                            finish(
                                &mut queue,
                                plan,
                                &mut outcomes,
                                reporter,
                                w.node,
                                queue::Outcome::Failed,
                            );
                        }
                    }
                    Err(reason) => {
                        reporter.failed(w.node, &reason);
                        outcomes[w.node] = Some(Outcome::failed(reason));
                        finish(
                            &mut queue,
                            plan,
                            &mut outcomes,
                            reporter,
                            w.node,
                            queue::Outcome::Failed,
                        );
                    }
                }
            }
            waiting = still;
            // Nothing running and nothing waiting: the queue is done, stopped, or every
            // remaining node was skipped.
            if running == 0 && (waiting.is_empty() || queue.is_stopped()) {
                break;
            }
            let Ok(event) = rx.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            if let Event::Started { .. } | Event::Step { .. } = event {
                reporter.event(&event);
                continue;
            }
            if let Event::Retried { node, retry } = &event {
                retries[*node].push(retry.to_string());
                reporter.event(&event);
                continue;
            }
            let (node, member) = match &event {
                Event::Done { node, member, .. } | Event::Failed { node, member, .. } => {
                    (*node, *member)
                }
                _ => continue,
            };
            running -= 1;
            seats[member].running -= 1;
            if let Some(recorder) = &shared.options.recorder {
                recorder.finished(node);
            }
            // An infrastructure failure: the member may leave; the node is tried again.
            if let Event::Failed {
                reason,
                infra: Some(infra),
                ..
            } = &event
                && !interrupt::interrupted()
                && attempts[node] < shared.options.retries
            {
                let attempt = attempts[node] + 1;
                let on = members[member].name();
                if let report::Infra::Gone(why) = infra
                    && seats[member].alive
                {
                    seats[member].alive = false;
                    seats[member].left = Some(why.clone());
                    seats[member].last_probe = Some(Instant::now());
                    reporter.line(&format!("builder {on} left the pool: {why}"));
                }
                let wait = crate::retry::backoff(attempt);
                let retry = crate::retry::Retry {
                    attempt,
                    what: format!("on {on}"),
                    reason: reason.clone(),
                    wait,
                };
                reporter.requeued(node, &retry);
                retries[node].push(retry.to_string());
                waiting.push(Waiting {
                    node,
                    attempt,
                    not_before: Instant::now() + wait,
                });
                continue;
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
                    let outcome = match actions[node] {
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
                _ => continue,
            };
            outcomes[node] = Some(outcome);
            finish(&mut queue, plan, &mut outcomes, reporter, node, result);
            if result == queue::Outcome::Failed && shared.options.fail_fast && !queue.is_stopped() {
                queue.stop();
                waiting.clear();
                reporter.line("--fail-fast: no new builds are started");
            }
        }
    });
    Ok(Drained {
        outcomes: outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::NotStarted))
            .collect(),
        ran_on,
        retries,
    })
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

/// `--push` in a pool for selected nodes whose keys the registry already had: every target
/// made from the image by digest. Returns each node's push error.
fn push_cached_remote(
    session: &Session,
    plan: &Plan,
    decided: &Decided,
    options: &BuildOptions,
    registry: Option<&Registry>,
    remote: &remote::Remote,
    run_dir: &std::path::Path,
) -> Vec<Option<String>> {
    let mut errors: Vec<Option<String>> = vec![None; plan.nodes.len()];
    let (Some(publish), Some(registry)) = (&options.publish, registry) else {
        return errors;
    };
    let cancel = interrupt::install();
    let log = run_dir.join("push-cached.log");
    for (i, node) in plan.nodes.iter().enumerate() {
        if decided.actions[i] == Action::Cached && node.selected {
            let result = job::push_from_registry(
                i,
                node,
                remote,
                &session.config,
                publish,
                registry,
                &log,
                cancel,
            );
            errors[i] = result.err();
        }
    }
    errors
}

/// Marks a node finished in the queue and records what it skipped.
fn finish(
    queue: &mut DependencyQueue,
    plan: &Plan,
    outcomes: &mut [Option<Outcome>],
    reporter: &mut Reporter,
    node: usize,
    outcome: queue::Outcome,
) {
    let Ok(skipped) = queue.finish(node, outcome) else {
        return;
    };
    for s in skipped {
        let reason = format!(
            "depends on {}, which failed",
            plan.nodes[s.failed_ancestor].id
        );
        reporter.skipped(s.node, &reason);
        outcomes[s.node] = Some(Outcome::Skipped(reason));
    }
}

/// Each node's push error and push retries.
type CachedPushes = (Vec<Option<String>>, Vec<Vec<crate::retry::Retry>>);

/// `--push` for selected nodes that are already cached: their tags, pushed where the
/// registry does not have them yet. Returns each node's push error and retries.
fn push_cached(
    session: &Session,
    prepared: &Prepared,
    decided: &Decided,
    options: &BuildOptions,
    registry: Option<&Registry>,
    reporter: &Reporter,
) -> Result<CachedPushes, Error> {
    let plan = &prepared.plan;
    let mut errors: Vec<Option<String>> = vec![None; plan.nodes.len()];
    let mut retries: Vec<Vec<crate::retry::Retry>> = vec![Vec::new(); plan.nodes.len()];
    let (Some(publish), Some(registry)) = (&options.publish, registry) else {
        return Ok((errors, retries));
    };
    let mut items = Vec::new();
    let mut owner = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        if decided.actions[i] != Action::Cached || !node.selected {
            continue;
        }
        if let Some(ns) = publish.targets.for_arch(&node.arch) {
            let images = &prepared.images;
            for item in crate::publish::push_items(&session.config, node, ns, publish.uniq, images)
            {
                items.push(item);
                owner.push(i);
            }
        }
    }
    if items.is_empty() {
        return Ok((errors, retries));
    }
    let mut out = reporter.human();
    let mut err = std::io::stderr();
    let pushed = crate::publish::push_all(
        &items,
        &prepared.images,
        publish,
        registry,
        &mut out,
        &mut err,
    )?;
    for failure in pushed.failures {
        let text = failure.describe(&items);
        let slot = &mut errors[owner[failure.item]];
        match slot {
            Some(existing) => existing.push_str(&format!("; {text}")),
            None => *slot = Some(text),
        }
    }
    for (item, retry) in pushed.retries {
        retries[owner[item]].push(retry);
    }
    Ok((errors, retries))
}

/// `--dry-run`: what each node would need, and the exact commands; nothing changes.
fn dry_run(
    session: &Session,
    prepared: &Prepared,
    decided: &Decided,
    options: &BuildOptions,
    registry: Option<&Registry>,
    reporter: &Reporter,
) -> Result<(), Error> {
    let plan = &prepared.plan;
    for command in &decided.retags {
        reporter.line(&format!("would tag: {}", command.display()));
    }
    for &i in &plan.order_indexes() {
        let node = &plan.nodes[i];
        let ancestor = if node.selected { "" } else { " (ancestor)" };
        match &decided.actions[i] {
            Action::Cached => reporter.line(&format!(
                "cached  {}{ancestor} ({})",
                node.id, node.cache_tag
            )),
            Action::Unneeded => reporter.line(&format!(
                "unneeded {}{ancestor}: no build here uses it",
                node.id
            )),
            Action::Fail(reason) => reporter.line(&format!("FAILS   {}: {reason}", node.id)),
            Action::Pull => reporter.line(&format!(
                "pull    {}{ancestor}\n        {}",
                node.id,
                pull_display(&node.cache_tag)
            )),
            Action::Twin(first) => reporter.line(&format!(
                "tag     {}{ancestor}: the same key as {}",
                node.id, plan.nodes[*first].id
            )),
            Action::Build | Action::Import => reporter.line(&format!(
                "build   {}{ancestor}\n        context: {} at {}:{}\n        {}",
                node.id,
                node.git_url,
                &node.git_commit[..12.min(node.git_commit.len())],
                node.directory,
                node.command.display()
            )),
        }
    }
    if let (Some(publish), Some(registry)) = (&options.publish, registry) {
        let cached: Vec<usize> = (0..plan.nodes.len())
            .filter(|&i| decided.actions[i] == Action::Cached && plan.nodes[i].selected)
            .collect();
        let mut items = Vec::new();
        for &i in &cached {
            let node = &plan.nodes[i];
            if let Some(ns) = publish.targets.for_arch(&node.arch) {
                items.extend(crate::publish::push_items(
                    &session.config,
                    node,
                    ns,
                    publish.uniq,
                    &prepared.images,
                ));
            }
        }
        let mut err = std::io::stderr();
        crate::publish::push_all(
            &items,
            &prepared.images,
            publish,
            registry,
            &mut reporter.human(),
            &mut err,
        )?;
        for (i, node) in plan.nodes.iter().enumerate() {
            if !decided.actions[i].runs() || !node.selected {
                continue;
            }
            if let Some(ns) = publish.targets.for_arch(&node.arch) {
                for item in crate::publish::push_items(
                    &session.config,
                    node,
                    ns,
                    publish.uniq,
                    &prepared.images,
                ) {
                    reporter.line(&format!("would push {} after building", item.target));
                }
            }
        }
    }
    Ok(())
}

fn pull_display(reference: &str) -> String {
    DockerCommand::docker(&["pull", reference]).display()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
