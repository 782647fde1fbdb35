//! Build execution: the plan, run for real on a Docker engine.
//!
//! [`build`] reads as its steps: [`prepare`] (external parents in place, the final plan),
//! [`actions`] (what each node needs: nothing, a pull of its key's image from the registry
//! cache, a build), the cached nodes' names and pushes, then [`drain`]: every ready node of
//! every architecture from one [`queue`] onto the members of the run ([`pool`]), `--jobs`
//! at a time each, each node running a [`job`]; at the end, names keg moved are settled
//! ([`names`]) and the summary printed.
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
pub mod drain;
pub mod job;
pub mod names;
pub mod pool;
pub mod prepare;
pub mod queue;
pub mod remote;
pub mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::docker::{DockerCommand, Engine};
use crate::error::Error;
use crate::interrupt;
use crate::library::Repo;
use crate::plan::{Plan, PlanOptions};
use crate::process;
use crate::registry::Registry;
use crate::report::{self, Outcome, Reporter, Row};
use crate::session::Session;
use actions::{Action, Decided};
use prepare::Prepared;

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

/// `--jobs` when not given: twice the number of CPUs, at least 4. A build mostly waits on
/// the engine (container create, commit, tags), not on keg's CPU: on the 2-core rig (Docker
/// 26, containerd image store) 20 trivial classic builds took 24 s with 1 job, 15 s with 2,
/// 14 s with 4 and 13 s with 8 (bench/first-builds.sh, docs/performance.md), while a job
/// count of the number of cores left the engine idle between a build's steps.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_mul(2)
        .max(4)
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

    let (prepared, decided, externals) = plan_and_decide(
        session,
        repos,
        &mut options,
        &engine,
        members.is_some(),
        registry.as_ref(),
        &early,
    )?;
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
        .join(crate::utc::rfc3339(now()).replace(':', ""));
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
    let mut reporter = reporter(plan, &decided.actions, &run_dir, &members, &options);
    let drained = drain::drain(
        &decided.actions,
        &shared,
        &mut reporter,
        &mut push_errors,
        cached_retries,
    )?;

    settle_names(
        plan,
        &drained.outcomes,
        &members,
        remote.as_ref().map(|_| &local_names),
        &mut reporter,
    );
    let rows = rows(
        plan,
        drained,
        push_errors,
        remote.is_some().then_some(&members[..]),
    );
    if let Some(recorder) = &options.recorder {
        recorder.outcomes(&rows);
    }
    reporter.summary(&rows);
    interrupt::check()?;
    verdict(&rows)
}

/// The reporter of the run's nodes (what each is, where its log goes, whether it runs).
fn reporter(
    plan: &Plan,
    actions: &[Action],
    run_dir: &std::path::Path,
    members: &[pool::Member],
    options: &BuildOptions,
) -> Reporter {
    let nodes = plan
        .nodes
        .iter()
        .zip(actions)
        .map(|(node, action)| report::NodeInfo {
            id: node.id.clone(),
            key: node.key.clone(),
            builder: node.builder.as_str().to_string(),
            log: Some(job::log_path(run_dir, node).display().to_string()),
            runs: action.runs(),
            ancestor: !node.selected,
        })
        .collect();
    Reporter::new(nodes, options.progress, options.heartbeat)
        .with_members(members.iter().map(|m| m.name().to_string()).collect())
}

/// The summary's rows; `pool`: the members, named in each row.
fn rows(
    plan: &Plan,
    drained: drain::Drained,
    push_errors: Vec<Option<String>>,
    pool: Option<&[pool::Member]>,
) -> Vec<Row> {
    plan.nodes
        .iter()
        .enumerate()
        .zip(drained.outcomes)
        .zip(push_errors)
        .map(|(((i, node), outcome), push_error)| Row {
            outcome,
            ancestor: !node.selected,
            push_error,
            builder: pool
                .zip(drained.ran_on[i])
                .map(|(members, m)| members[m].name().to_string()),
            retries: drained.retries[i].clone(),
        })
        .collect()
}

/// Plans the run and decides what each node needs: with a pool, from the registry alone;
/// else from the engine, with the external parents put in place first (a missing ancestor
/// under `--no-parents` is refused before anything changes in the engine). Also returns
/// the external parents' registry digests (a pool's).
fn plan_and_decide(
    session: &Session,
    repos: &[Repo],
    options: &mut BuildOptions,
    engine: &Engine,
    pool: bool,
    registry: Option<&Registry>,
    early: &Reporter,
) -> Result<(Prepared, Decided, HashMap<String, String>), Error> {
    if let (true, Some(registry)) = (pool, registry) {
        // The pool: the registry is the store, the local engine is not asked.
        options.plan.engine_platform = None;
        let (prepared, externals) = remote::plan(session, repos, options, registry)?;
        for retry in crate::registry::take_retries() {
            early.query_retried(&retry);
        }
        let decided = actions::decide(&prepared, Some(registry), options, true, early)?;
        return Ok((prepared, decided, externals));
    }
    let mut prepared = prepare::plan(session, repos, options, engine)?;
    if options.no_parents {
        actions::decide(&prepared, registry, options, false, early)?;
    }
    prepared.place_parents(session, repos, options, engine, early)?;
    let decided = actions::decide(&prepared, registry, options, false, early)?;
    Ok((prepared, decided, HashMap::new()))
}

/// Points every name keg moved at its final image: on the local engine, the selected node's
/// that owns it; on a pool's engines, what it was before the run.
fn settle_names(
    plan: &Plan,
    outcomes: &[Outcome],
    members: &[pool::Member],
    local: Option<&names::Names>,
    reporter: &mut Reporter,
) {
    let owners: HashMap<String, String> = plan
        .nodes
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| outcome.has_image())
        .flat_map(|(node, _)| {
            node.images
                .iter()
                .map(|name| (name.clone(), node.cache_tag.clone()))
        })
        .collect();
    let none = HashMap::new();
    let all = members
        .iter()
        .map(|m| (&m.names, if m.local { &owners } else { &none }))
        .chain(local.map(|names| (names, &owners)));
    let cancel = interrupt::install();
    for (names, owners) in all {
        for command in names.settle(owners) {
            if let Err(reason) = process::run(&command, None, cancel, Some(job::TAG_LIMIT)) {
                reporter.line(&format!("warning: {reason}"));
            }
        }
    }
}

/// Ok when every node has its image and every push succeeded; else the counts (exit 1).
fn verdict(rows: &[Row]) -> Result<(), Error> {
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
