//! Build execution: the plan, run for real on a Docker engine.
//!
//! [`queue`] is a generic ready queue (longest critical path first) that knows nothing about
//! Docker; [`docker`] builds argv and asks the engine questions in batches; [`worker`] runs
//! one build. [`build`] drives them: one listing of local images, pulls of missing external
//! parents, cached nodes re-tagged without building, then a rayon pool of `--jobs` workers
//! fed from the queue. Invariants: only this thread prints (workers send events); a failed
//! node skips exactly its descendants; Ctrl-C or SIGTERM stops handing out work, terminates
//! the running docker children, waits for them, prints the summary and exits 130.

pub mod docker;
pub mod queue;
pub mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::library::Repo;
use crate::plan::{self, Plan, PlanOptions};
use crate::report::{Event, Outcome, Reporter};
use crate::session::Session;
use docker::{DockerCommand, Engine};
use queue::DependencyQueue;

/// When external parents are pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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
    /// `--report`: what ran when, for the HTML page (four calls below, marked `recorder`).
    pub recorder: Option<std::sync::Arc<crate::record::RunRecorder>>,
}

/// Set by the Ctrl-C / SIGTERM handler.
pub(crate) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Builds `repos` for every architecture of the options; Ok only when every node is built
/// or cached.
///
/// Architectures are built one after another, each as its own plan: one engine has one
/// image per local name (`repo:tag`, a parent `FROM` name), so two architectures' builds
/// cannot share those names at the same time. Each phase pulls external parents for its own
/// platform; failures are summed over the phases.
pub fn build(session: &Session, repos: &[Repo], options: &BuildOptions) -> Result<(), Error> {
    let engine = Engine::detect().ok_or(Error::NoEngine)?;
    let mut options = options.clone();
    options.plan.engine_platform = Some(engine.platform.clone());
    let arches = &options.plan.arches;
    if arches.len() <= 1 {
        return build_arch(session, repos, &options, &engine);
    }
    let (mut failed, mut skipped) = (0, 0);
    for arch in arches {
        let mut one = options.clone();
        one.plan.arches = vec![arch.clone()];
        println!("== {arch}");
        match build_arch(session, repos, &one, &engine) {
            Ok(()) => {}
            Err(Error::BuildFailed {
                failed: f,
                skipped: s,
            }) => {
                failed += f;
                skipped += s;
            }
            Err(e) => return Err(e),
        }
    }
    if failed + skipped > 0 {
        return Err(Error::BuildFailed { failed, skipped });
    }
    Ok(())
}

/// Builds one architecture's plan.
fn build_arch(
    session: &Session,
    repos: &[Repo],
    options: &BuildOptions,
    engine: &Engine,
) -> Result<(), Error> {
    let list = |engine: &Engine| engine.images().map_err(|e| Error::Engine(e.to_string()));
    let mut images = list(engine)?;
    let mut plan = plan::make(session, repos, &options.plan, Some(&images))?;
    let n = plan.nodes.len();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    let mut reporter = Reporter::new(plan.nodes.iter().map(|n| n.id.clone()).collect(), 0);

    // External parents, pulled per --pull for this platform; never images built in this
    // run. After a pull the image is also tagged with its per-platform alias; before a
    // build, a name holding another platform's image is pointed back at this one's alias.
    let arch = options.plan.arches.first().cloned().unwrap_or_default();
    let platform = crate::arch::platform(&arch)
        .map(|p| p.to_string())
        .unwrap_or_default();
    let steps = parent_steps(&plan, &images, options, &arch, &platform);
    let mut pull_failures: HashMap<String, String> = HashMap::new();
    let mut changed = false;
    for step in &steps {
        let (reference, commands) = match step {
            ParentStep::Pull { reference, alias } => {
                let argv = ["docker", "pull", "--platform", &platform, reference]
                    .map(String::from)
                    .to_vec();
                let tag = ["docker", "tag", reference, alias]
                    .map(String::from)
                    .to_vec();
                (reference, vec![argv, tag])
            }
            ParentStep::Restore { reference, alias } => {
                let tag = ["docker", "tag", alias, reference]
                    .map(String::from)
                    .to_vec();
                (reference, vec![tag])
            }
            ParentStep::Adopt { reference, alias } => {
                let tag = ["docker", "tag", reference, alias]
                    .map(String::from)
                    .to_vec();
                (reference, vec![tag])
            }
        };
        for argv in commands {
            let cmd = DockerCommand {
                env: Default::default(),
                argv,
            };
            if options.dry_run {
                reporter.line(&format!("would run: {}", cmd.display()));
                continue;
            }
            if cmd.argv[1] == "pull" {
                reporter.line(&format!("pull    {reference} ({platform})"));
            }
            changed = true;
            if let Err(reason) = worker::run_simple(&cmd, None, &INTERRUPTED) {
                pull_failures.insert(reference.clone(), reason);
                break;
            }
        }
    }
    if changed {
        // Keys use the pulled images' ids: final, not provisional.
        images = list(engine)?;
        plan = plan::make(session, repos, &options.plan, Some(&images))?;
    }

    let index: HashMap<&str, usize> = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let edges: Vec<(usize, usize)> = plan
        .nodes
        .iter()
        .enumerate()
        .flat_map(|(child, node)| node.depends_on.iter().map(move |d| (child, d)))
        .filter_map(|(child, d)| index.get(d.as_str()).map(|&p| (child, p)))
        .collect();
    let mut queue = DependencyQueue::new(&vec![1; n], &edges).map_err(|e| Error::Cycle {
        cycle: e.to_string(),
    })?;

    // Nodes that are done or doomed before anything runs.
    let mut retags: Vec<DockerCommand> = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        let failed_parent = node
            .parents
            .iter()
            .find_map(|p| pull_failures.get(&p.reference).map(|r| (p, r)));
        if let Some(reason) = &node.blocked {
            outcomes[i] = Some(Outcome::Failed(reason.clone()));
        } else if let Some((parent, reason)) = failed_parent {
            outcomes[i] = Some(Outcome::Failed(format!(
                "pulling {} failed: {reason}",
                parent.reference
            )));
        } else if node.built == Some(true) {
            outcomes[i] = Some(Outcome::Cached);
            let id = images.get(&node.cache_tag);
            for image in &node.images {
                if images.get(image) != id {
                    retags.push(DockerCommand {
                        env: Default::default(),
                        argv: vec![
                            "docker".into(),
                            "tag".into(),
                            node.cache_tag.clone(),
                            image.clone(),
                        ],
                    });
                }
            }
        }
    }

    // `--push`: one registry client for the whole run (shared connections and tokens), and
    // the nodes already built, pushed before anything builds.
    let registry = options
        .publish
        .as_ref()
        .map(|_| crate::registry::Registry::new());
    let cached: Vec<usize> = (0..n)
        .filter(|&i| matches!(outcomes[i], Some(Outcome::Cached)))
        .collect();
    if let Some(recorder) = &options.recorder {
        recorder.phase(&plan);
    }
    if options.dry_run {
        dry_run(&plan, &outcomes, &retags, &reporter)?;
        if let (Some(publish), Some(registry)) = (&options.publish, &registry) {
            push_nodes(
                session,
                &plan,
                &cached,
                &images,
                publish,
                registry,
                &mut outcomes,
            )?;
            for i in (0..n).filter(|&i| outcomes[i].is_none()) {
                let node = &plan.nodes[i];
                if let Some(ns) = publish.targets.for_arch(&node.arch) {
                    for item in
                        crate::publish::push_items(&session.config, node, ns, publish.uniq, &images)
                    {
                        reporter.line(&format!("would push {} after building", item.target));
                    }
                }
            }
        }
        return Ok(());
    }
    for cmd in &retags {
        if let Err(reason) = worker::run_simple(cmd, None, &INTERRUPTED) {
            return Err(Error::Engine(reason));
        }
    }
    if let (Some(publish), Some(registry)) = (&options.publish, &registry) {
        // Cached nodes are pushed first (one registry query each, all at once), so other
        // shards can pull them while this one builds.
        push_nodes(
            session,
            &plan,
            &cached,
            &images,
            publish,
            registry,
            &mut outcomes,
        )?;
    }
    for (i, outcome) in outcomes.clone().iter().enumerate() {
        match outcome {
            Some(Outcome::Cached) => {
                reporter.line(&format!("cached  {}", plan.nodes[i].id));
                finish(
                    &mut queue,
                    &plan,
                    &mut outcomes,
                    &reporter,
                    i,
                    queue::Outcome::Success,
                );
            }
            Some(Outcome::Failed(reason)) => {
                reporter.line(&format!("FAILED  {}: {reason}", plan.nodes[i].id));
                finish(
                    &mut queue,
                    &plan,
                    &mut outcomes,
                    &reporter,
                    i,
                    queue::Outcome::Failed,
                );
            }
            _ => {}
        }
    }

    let to_build = outcomes.iter().filter(|o| o.is_none()).count();
    reporter = Reporter::new(plan.nodes.iter().map(|n| n.id.clone()).collect(), to_build);
    let run_dir = options
        .log_dir
        .join(crate::report::rfc3339(now()).replace(':', ""));
    std::fs::create_dir_all(&run_dir).map_err(|source| Error::Io {
        context: "creating the log directory",
        path: run_dir.clone(),
        source,
    })?;
    install_signal_handler();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs.max(1))
        .thread_name(|i| format!("keg-build-{i}"))
        .build()
        .map_err(|e| Error::Engine(format!("cannot start the worker pool: {e}")))?;
    let cache = session.sources()?.cache();
    let (tx, rx) = mpsc::channel::<Event>();
    let mut running = 0usize;
    let mut started: HashMap<usize, Instant> = HashMap::new();
    pool.in_place_scope(|scope| {
        loop {
            if INTERRUPTED.load(Ordering::SeqCst) && !queue.is_stopped() {
                queue.stop();
                reporter.line("interrupted: stopping the running builds");
            }
            while running < options.jobs.max(1) {
                let Some(i) = queue.pop() else { break };
                running += 1;
                started.insert(i, Instant::now());
                reporter.event(&Event::Started { node: i });
                let node = &plan.nodes[i];
                let log = run_dir.join(format!("{}.log", file_name(&node.id)));
                if let Some(recorder) = &options.recorder {
                    recorder.started(i, &log);
                }
                let tx = tx.clone();
                let registry_push = registry_push(node, &options.plan);
                let publish = options.publish.as_ref().zip(registry.as_ref());
                let config = &session.config;
                scope.spawn(move |_| {
                    let start = Instant::now();
                    let context = worker::ContextSource {
                        cache,
                        commit: &node.git_commit,
                        directory: &node.directory,
                    };
                    let mut result = if node.builder == crate::manifest::Builder::OciImport {
                        import_layout(cache, node, &log)
                    } else {
                        worker::run_build(i, &node.command, context, &log, &tx, &INTERRUPTED)
                    };
                    if let (Ok(()), Some(push)) = (&result, registry_push) {
                        result = worker::run_simple(&push, Some(&log), &INTERRUPTED)
                            .map_err(|e| format!("pushing the registry cache failed: {e}"));
                    }
                    if let (Ok(()), Some((publish, registry))) = (&result, publish) {
                        result = push_built(config, node, publish, registry, &log);
                    }
                    let elapsed = start.elapsed();
                    let event = match result {
                        Ok(()) => Event::Built { node: i, elapsed },
                        Err(reason) => Event::Failed {
                            node: i,
                            elapsed,
                            reason,
                            tail: worker::tail(&log, worker::TAIL_LINES),
                            log: log.display().to_string(),
                        },
                    };
                    let _ = tx.send(event);
                });
            }
            // Nothing running and nothing ready: the queue is done, stopped, or every
            // remaining node was skipped.
            if running == 0 {
                break;
            }
            let event = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(event) => event,
                Err(_) => continue,
            };
            reporter.event(&event);
            if let (Some(recorder), Event::Built { node, .. } | Event::Failed { node, .. }) =
                (&options.recorder, &event)
            {
                recorder.finished(*node);
            }
            match event {
                Event::Built { node, elapsed } => {
                    running -= 1;
                    outcomes[node] = Some(Outcome::Built(elapsed));
                    finish(
                        &mut queue,
                        &plan,
                        &mut outcomes,
                        &reporter,
                        node,
                        queue::Outcome::Success,
                    );
                }
                Event::Failed { node, reason, .. } => {
                    running -= 1;
                    let interrupted = INTERRUPTED.load(Ordering::SeqCst);
                    outcomes[node] = Some(if interrupted {
                        Outcome::Failed("interrupted".to_string())
                    } else {
                        Outcome::Failed(reason)
                    });
                    finish(
                        &mut queue,
                        &plan,
                        &mut outcomes,
                        &reporter,
                        node,
                        queue::Outcome::Failed,
                    );
                    if options.fail_fast && !queue.is_stopped() {
                        queue.stop();
                        reporter.line("--fail-fast: no new builds are started");
                    }
                }
                Event::Started { .. } | Event::Step { .. } => {}
            }
            let c = queue.counts();
            reporter.counts(&format!(
                "{} running, {} failed, {} skipped",
                c.running, c.failed, c.skipped
            ));
        }
    });

    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::NotStarted))
        .collect();
    if let Some(recorder) = &options.recorder {
        recorder.outcomes(&outcomes);
    }
    reporter.summary(&outcomes);
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Failed(_)))
        .count();
    let skipped = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Skipped(_) | Outcome::NotStarted))
        .count();
    if failed + skipped > 0 {
        return Err(Error::BuildFailed { failed, skipped });
    }
    Ok(())
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

/// What happens to one external parent before this architecture's builds.
enum ParentStep {
    /// `docker pull [--platform P] REF`, then `docker tag REF ALIAS`.
    Pull { reference: String, alias: String },
    /// `docker tag ALIAS REF`: the name holds another platform's image.
    Restore { reference: String, alias: String },
    /// `docker tag REF ALIAS`: the name holds this platform's image, not yet aliased.
    Adopt { reference: String, alias: String },
}

/// The external parents to pull (per `--pull`), to point back at this platform's image, or
/// to alias. `missing` means: no image for this platform, neither under the alias nor under
/// the name (one `docker image inspect` for the platforms of the names).
fn parent_steps(
    plan: &Plan,
    images: &HashMap<String, String>,
    options: &BuildOptions,
    arch: &str,
    platform: &str,
) -> Vec<ParentStep> {
    let mut references: Vec<String> = Vec::new();
    for node in &plan.nodes {
        for parent in &node.parents {
            if parent.node.is_none()
                && parent.reference != "scratch"
                && !references.contains(&parent.reference)
            {
                references.push(parent.reference.clone());
            }
        }
    }
    let present: Vec<&str> = references
        .iter()
        .filter(|r| images.contains_key(*r))
        .map(String::as_str)
        .collect();
    let platforms: HashMap<String, String> = match Engine::platforms(&present) {
        Ok(platforms) => present
            .iter()
            .map(|r| r.to_string())
            .zip(platforms)
            .collect(),
        Err(_) => HashMap::new(),
    };
    let mut out = Vec::new();
    for reference in references {
        let alias = plan::key::parent_alias(&options.plan.cache_repo, arch, &reference);
        let have_alias = images.contains_key(&alias);
        let name_fits = platforms
            .get(&reference)
            .is_some_and(|p| docker::platform_matches(p, platform));
        let pull = match options.pull {
            Pull::Always => true,
            Pull::Missing => !have_alias && !name_fits,
            Pull::Never => false,
        };
        if pull {
            out.push(ParentStep::Pull { reference, alias });
        } else if have_alias {
            if images.get(&alias) != images.get(&reference) {
                out.push(ParentStep::Restore { reference, alias });
            }
        } else if name_fits {
            out.push(ParentStep::Adopt { reference, alias });
        }
    }
    out
}

/// `--push` for nodes that are already built: their tags, pushed where the registry does
/// not have them yet. A node whose push fails is marked failed.
fn push_nodes(
    session: &Session,
    plan: &Plan,
    nodes: &[usize],
    images: &HashMap<String, String>,
    publish: &crate::publish::PublishOptions,
    registry: &crate::registry::Registry,
    outcomes: &mut [Option<Outcome>],
) -> Result<(), Error> {
    let mut items = Vec::new();
    let mut owner = Vec::new();
    for &i in nodes {
        let node = &plan.nodes[i];
        if let Some(ns) = publish.targets.for_arch(&node.arch) {
            for item in crate::publish::push_items(&session.config, node, ns, publish.uniq, images)
            {
                items.push(item);
                owner.push(i);
            }
        }
    }
    if items.is_empty() {
        return Ok(());
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let failures = crate::publish::push_all(&items, images, publish, registry, &mut out, &mut err)?;
    for failure in failures {
        let text = failure.describe(&items);
        eprintln!("FAILED  push {text}");
        outcomes[owner[failure.item]] = Some(Outcome::Failed(format!("push failed: {text}")));
    }
    Ok(())
}

/// An oci-import node: the layout's image for the node's platform, verified, loaded and
/// tagged with the cache tag and every image name.
fn import_layout(
    cache: &crate::git::GitCache,
    node: &plan::Node,
    log: &std::path::Path,
) -> Result<(), String> {
    let platform = crate::arch::platform(&node.arch)
        .ok_or_else(|| format!("unknown architecture {}", node.arch))?;
    // The log starts here, as a build's does.
    std::fs::write(
        log,
        format!(
            "$ {}  # oci-import of {}\n",
            node.command.display(),
            node.file
        ),
    )
    .map_err(|e| format!("cannot create log {}: {e}", log.display()))?;
    let selected = crate::oci::select_in_git(
        cache,
        &node.git_commit,
        &node.directory,
        &node.file,
        &platform,
    )
    .map_err(|e| e.to_string())?;
    let mut tags = vec![node.cache_tag.clone()];
    tags.extend(node.images.iter().cloned());
    crate::oci::import(cache, &node.git_commit, &selected, &tags, log, &INTERRUPTED)
}

/// `--push` in a worker, right after the node is built; output goes to the node's log.
fn push_built(
    config: &crate::cli::Config,
    node: &plan::Node,
    publish: &crate::publish::PublishOptions,
    registry: &crate::registry::Registry,
    log: &std::path::Path,
) -> Result<(), String> {
    let Some(ns) = publish.targets.for_arch(&node.arch) else {
        return Ok(());
    };
    let mut images = HashMap::new();
    if let Some(id) = Engine::image_id(&node.cache_tag) {
        images.insert(node.cache_tag.clone(), id);
    }
    let mut node = node.clone();
    node.built = Some(true);
    let items = crate::publish::push_items(config, &node, ns, publish.uniq, &images);
    let mut text: Vec<u8> = Vec::new();
    let mut err_text: Vec<u8> = Vec::new();
    let failures =
        crate::publish::push_all(&items, &images, publish, registry, &mut text, &mut err_text)
            .map_err(|e| e.to_string())?;
    if let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(log) {
        use std::io::Write;
        let _ = file.write_all(&text);
        let _ = file.write_all(&err_text);
    }
    if failures.is_empty() {
        Ok(())
    } else {
        let text: Vec<String> = failures.iter().map(|f| f.describe(&items)).collect();
        Err(format!("push failed: {}", text.join("; ")))
    }
}

/// With the docker driver, a BuildKit node's registry cache is pushed as an image.
fn registry_push(node: &plan::Node, options: &PlanOptions) -> Option<DockerCommand> {
    (options.build.registry_cache
        && options.build.builder.is_none()
        && node.builder == crate::manifest::Builder::Buildkit)
        .then(|| DockerCommand {
            env: Default::default(),
            argv: vec!["docker".into(), "push".into(), node.cache_ref.clone()],
        })
}

fn dry_run(
    plan: &Plan,
    outcomes: &[Option<Outcome>],
    retags: &[DockerCommand],
    reporter: &Reporter,
) -> Result<(), Error> {
    for cmd in retags {
        reporter.line(&format!("would tag: {}", cmd.display()));
    }
    for &i in &plan.order_indexes() {
        let node = &plan.nodes[i];
        match &outcomes[i] {
            Some(Outcome::Cached) => {
                reporter.line(&format!("cached  {} ({})", node.id, node.cache_tag))
            }
            Some(Outcome::Failed(reason)) => {
                reporter.line(&format!("FAILS   {}: {reason}", node.id))
            }
            _ => reporter.line(&format!(
                "build   {}\n        context: {} at {}:{}\n        {}",
                node.id,
                node.git_url,
                &node.git_commit[..12.min(node.git_commit.len())],
                node.directory,
                node.command.display()
            )),
        }
    }
    Ok(())
}

pub(crate) fn install_signal_handler() {
    // A second install (e.g. in tests running builds in one process) keeps the first.
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A node id as a file name.
fn file_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
