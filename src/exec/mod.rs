//! Build execution: the plan, run for real on a Docker engine.
//!
//! [`build`] reads as its steps: [`prepare`] (external parents in place, the final plan),
//! [`actions`] (what each node needs: nothing, a pull of its key's image from the registry
//! cache, a build), the cached nodes' names and pushes, then [`drain`]: every ready node of
//! every architecture from one [`queue`] onto a pool of `--jobs` workers, each running a
//! [`job`]; at the end, names keg moved are settled ([`names`]) and the summary printed.
//!
//! Invariants: only this thread prints (workers send events); a node's parents are the
//! images its key hashed, whatever the engine has under their names; a failed node skips
//! exactly its descendants, a failed push skips nothing; Ctrl-C or SIGTERM stops handing out
//! work, terminates the running docker children, waits for them, prints the summary and
//! exits 130.

pub mod actions;
pub mod job;
pub mod names;
pub mod prepare;
pub mod queue;
pub mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use crate::docker::{DockerCommand, Engine};
use crate::error::Error;
use crate::interrupt;
use crate::library::Repo;
use crate::plan::{Plan, PlanOptions};
use crate::process;
use crate::registry::Registry;
use crate::report::{Event, Outcome, Reporter, Row};
use crate::session::Session;
use actions::{Action, Decided};
use names::Names;
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
}

/// Builds `repos` for every architecture of the options at once; Ok only when every node
/// has its image and every push succeeded.
pub fn build(session: &Session, repos: &[Repo], options: &BuildOptions) -> Result<(), Error> {
    let engine = Engine::detect()?;
    let cancel = interrupt::install();
    let mut options = options.clone();
    options.plan.engine_platform = Some(engine.platform.clone());
    options.plan.build.features = Engine::features(Some(&engine));
    let early = Reporter::new(Vec::new(), 0);

    let prepared = prepare::prepare(session, repos, &options, &engine, &early)?;
    let registry =
        (options.plan.build.registry_cache || options.publish.is_some()).then(Registry::new);
    let decided = actions::decide(&prepared, registry.as_ref(), &options, &early)?;
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
    let mut push_errors = push_cached(session, &prepared, &decided, &options, registry.as_ref())?;

    let plan = &prepared.plan;
    let names = Names::new(&prepared.images);
    let run_dir = options
        .log_dir
        .join(crate::report::rfc3339(now()).replace(':', ""));
    std::fs::create_dir_all(&run_dir).map_err(|source| Error::Io {
        context: "creating the log directory",
        path: run_dir.clone(),
        source,
    })?;
    let shared = job::Shared {
        cache: session.sources()?.cache(),
        config: &session.config,
        options: &options,
        registry: registry.as_ref(),
        names: &names,
        run_dir: &run_dir,
        cancel,
    };
    let to_run = decided.actions.iter().filter(|a| a.runs()).count();
    let mut reporter = Reporter::new(plan.nodes.iter().map(|n| n.id.clone()).collect(), to_run);
    let outcomes = drain(
        plan,
        &decided.actions,
        &shared,
        &mut reporter,
        &mut push_errors,
    )?;

    // Names keg moved go to their owners' images, or back to what they were.
    let owners: HashMap<String, String> = plan
        .nodes
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.has_image())
        .flat_map(|(node, _)| {
            node.images
                .iter()
                .map(|name| (name.clone(), node.cache_tag.clone()))
        })
        .collect();
    for command in names.settle(&owners) {
        if let Err(reason) = process::run(&command, None, cancel, Some(job::TAG_LIMIT)) {
            reporter.line(&format!("warning: {reason}"));
        }
    }

    let rows: Vec<Row> = plan
        .nodes
        .iter()
        .zip(outcomes)
        .zip(push_errors)
        .map(|((node, outcome), push_error)| Row {
            outcome,
            ancestor: !node.selected,
            push_error,
        })
        .collect();
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

/// The queue's edges, `(dependent, dependency)`.
fn queue_edges(plan: &Plan) -> Vec<(usize, usize)> {
    plan.edges().into_iter().map(|(p, c)| (c, p)).collect()
}

/// Runs every node that needs it, ready nodes first by critical path, at most `--jobs` at a
/// time; returns each node's outcome.
fn drain(
    plan: &Plan,
    actions: &[Action],
    shared: &job::Shared<'_>,
    reporter: &mut Reporter,
    push_errors: &mut [Option<String>],
) -> Result<Vec<Outcome>, Error> {
    let n = plan.nodes.len();
    let mut queue =
        DependencyQueue::new(&vec![1; n], &queue_edges(plan)).map_err(|e| Error::Cycle {
            cycle: e.to_string(),
        })?;
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    for (i, action) in actions.iter().enumerate() {
        let (outcome, result) = match action {
            Action::Cached => (Outcome::Cached, queue::Outcome::Success),
            Action::Unneeded => (Outcome::Unneeded, queue::Outcome::Success),
            Action::Fail(reason) => (Outcome::failed(reason.clone()), queue::Outcome::Failed),
            _ => continue,
        };
        match &outcome {
            Outcome::Cached if plan.nodes[i].selected => {
                reporter.line(&format!("cached  {}", plan.nodes[i].id))
            }
            Outcome::Failed { reason, .. } => {
                reporter.line(&format!("FAILED  {}: {reason}", plan.nodes[i].id))
            }
            _ => {}
        }
        outcomes[i] = Some(outcome);
        finish(&mut queue, plan, &mut outcomes, reporter, i, result);
    }

    let jobs = shared.options.jobs.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("keg-build-{i}"))
        .build()
        .map_err(|e| Error::Engine(format!("cannot start the worker pool: {e}")))?;
    let (tx, rx) = mpsc::channel::<Event>();
    let mut running = 0usize;
    pool.in_place_scope(|scope| {
        loop {
            if interrupt::interrupted() && !queue.is_stopped() {
                queue.stop();
                reporter.line("interrupted: stopping the running builds");
            }
            while running < jobs {
                let Some(i) = queue.pop() else { break };
                running += 1;
                reporter.event(&Event::Started {
                    node: i,
                    action: actions[i].verb(),
                });
                let (tx, node, action) = (tx.clone(), &plan.nodes[i], &actions[i]);
                scope.spawn(move |_| job::run(i, node, action, shared, &tx));
            }
            // Nothing running and nothing ready: the queue is done, stopped, or every
            // remaining node was skipped.
            if running == 0 {
                break;
            }
            let Ok(event) = rx.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            reporter.event(&event);
            let (node, outcome, result) = match event {
                Event::Done {
                    node,
                    elapsed,
                    pulled,
                    pushed,
                } => {
                    if let Some(Err(reason)) = pushed {
                        push_errors[node] = Some(reason);
                    }
                    let outcome = if pulled {
                        Outcome::Pulled(elapsed)
                    } else {
                        Outcome::Built(elapsed)
                    };
                    (node, outcome, queue::Outcome::Success)
                }
                Event::Failed {
                    node,
                    reason,
                    elapsed,
                    ..
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
                    (node, outcome, queue::Outcome::Failed)
                }
                Event::Started { .. } | Event::Step { .. } => continue,
            };
            running -= 1;
            outcomes[node] = Some(outcome);
            finish(&mut queue, plan, &mut outcomes, reporter, node, result);
            if result == queue::Outcome::Failed && shared.options.fail_fast && !queue.is_stopped() {
                queue.stop();
                reporter.line("--fail-fast: no new builds are started");
            }
            let c = queue.counts();
            reporter.counts(&format!(
                "{} running, {} failed, {} skipped",
                c.running, c.failed, c.skipped
            ));
        }
    });
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::NotStarted))
        .collect())
}

/// Marks a node finished in the queue and records what it skipped.
fn finish(
    queue: &mut DependencyQueue,
    plan: &Plan,
    outcomes: &mut [Option<Outcome>],
    reporter: &Reporter,
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
        reporter.line(&format!("skipped {}: {reason}", plan.nodes[s.node].id));
        outcomes[s.node] = Some(Outcome::Skipped(reason));
    }
}

/// `--push` for selected nodes that are already cached: their tags, pushed where the
/// registry does not have them yet. Returns each node's push error.
fn push_cached(
    session: &Session,
    prepared: &Prepared,
    decided: &Decided,
    options: &BuildOptions,
    registry: Option<&Registry>,
) -> Result<Vec<Option<String>>, Error> {
    let plan = &prepared.plan;
    let mut errors: Vec<Option<String>> = vec![None; plan.nodes.len()];
    let (Some(publish), Some(registry)) = (&options.publish, registry) else {
        return Ok(errors);
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
        return Ok(errors);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let failures = crate::publish::push_all(
        &items,
        &prepared.images,
        publish,
        registry,
        &mut out,
        &mut err,
    )?;
    for failure in failures {
        let text = failure.describe(&items);
        let slot = &mut errors[owner[failure.item]];
        match slot {
            Some(existing) => existing.push_str(&format!("; {text}")),
            None => *slot = Some(text),
        }
    }
    Ok(errors)
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
        let stdout = std::io::stdout();
        let mut err = std::io::stderr();
        crate::publish::push_all(
            &items,
            &prepared.images,
            publish,
            registry,
            &mut stdout.lock(),
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
    DockerCommand {
        env: Default::default(),
        argv: vec!["docker".into(), "pull".into(), reference.into()],
    }
    .display()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
