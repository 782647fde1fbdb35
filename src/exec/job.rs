//! One node's work on a worker thread, on one member of the run: pull its key's image, build
//! it, or import its layout; then push what `--cache-repo` and `--push` ask for. Sends one
//! closing event, saying for a failure whether it was the infrastructure's, after a
//! `Retried` event for each push or registry query of the node that was tried again.
//!
//! Invariants: the parents a build uses are exactly those its key hashed: BuildKit gets them
//! as named contexts; a classic build, or any build on an engine without named contexts,
//! holds their names pointing at the pinned images for its whole duration
//! ([`super::names`]); a node's own names are held while it builds, so no other build sees
//! them flip; a failed push is reported with the node, never as a failed build; a failure is
//! the infrastructure's only when the build did not fail a step and the member no longer
//! answers, or the output names a connection or registry fault.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::BuildOptions;
use super::actions::Action;
use super::names::{self, Names};
use super::pool::Member;
use super::remote::{self, Remote};
use super::worker;
use crate::config::Config;
use crate::docker::{self, DockerCommand, Engine};
use crate::git::GitCache;
use crate::manifest::Builder;
use crate::plan::{Node, Plan};
use crate::process;
use crate::registry::Registry;
use crate::report::{Event, Infra};

/// How long one `docker push` or `docker pull` of a node's image may take.
const TRANSFER_LIMIT: Duration = Duration::from_secs(30 * 60);
/// How long one `docker tag` may take.
pub const TAG_LIMIT: Duration = names::TAG_LIMIT;

/// What every job of a run shares.
pub struct Shared<'a> {
    pub cache: &'a GitCache,
    pub config: &'a Config,
    pub options: &'a BuildOptions,
    pub registry: Option<&'a Registry>,
    pub plan: &'a Plan,
    pub members: &'a [Member],
    /// With a pool: the registry is the store.
    pub remote: Option<&'a Remote>,
    /// The local engine's names (the only member's without a pool).
    pub local_names: &'a Names,
    pub run_dir: &'a Path,
    pub cancel: &'a AtomicBool,
}

/// The node's log file in this run's directory.
pub fn log_path(run_dir: &Path, node: &Node) -> PathBuf {
    let name: String = node
        .id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    run_dir.join(format!("{name}.log"))
}

/// Runs `action` for node `i` on member `m` and sends its closing event.
pub fn run(i: usize, action: &Action, m: usize, shared: &Shared<'_>, events: &Sender<Event>) {
    let node = &shared.plan.nodes[i];
    let member = &shared.members[m];
    let start = Instant::now();
    let log = log_path(shared.run_dir, node);
    // Registry queries retried on this thread from here on are this node's.
    let _ = crate::registry::take_retries();
    let result = match (shared.remote, action) {
        (None, Action::Pull) => pull(node, shared, &log),
        (None, Action::Import) => import(node, shared, &log),
        (None, Action::Twin(_)) => name(node, shared.local_names, shared, &log),
        (None, _) => build(i, node, member, shared, &log, events),
        (Some(remote), _) => pooled(i, action, member, remote, shared, &log, events),
    };
    let elapsed = start.elapsed();
    let event = match result {
        Ok(()) => Event::Done {
            node: i,
            member: m,
            elapsed,
            pulled: *action == Action::Pull,
            pushed: push(
                i,
                node,
                shared,
                &log,
                matches!(action, Action::Build | Action::Import),
                events,
            ),
        },
        Err(reason) => {
            let infra = infra(&reason, &log, member, shared.cancel);
            Event::Failed {
                node: i,
                member: m,
                elapsed,
                reason,
                infra,
                tail: worker::tail(&log, worker::TAIL_LINES),
                log: log.display().to_string(),
            }
        }
    };
    for retry in crate::registry::take_retries() {
        let _ = events.send(Event::Retried { node: i, retry });
    }
    let _ = events.send(event);
}

/// Lines that say a build step failed: never the infrastructure's fault.
const STEP_FAILED: &[&str] = &[
    "did not complete successfully: exit code",
    "returned a non-zero code",
    "failed to solve: process",
    "failed to compute cache key",
    "dockerfile parse error",
];

/// Whether a failure was the infrastructure's, and how: the member no longer answers, or
/// the output names a connection or registry fault. A failed step, a timeout or an interrupt
/// never is.
fn infra(reason: &str, log: &Path, member: &Member, cancel: &AtomicBool) -> Option<Infra> {
    if cancel.load(std::sync::atomic::Ordering::SeqCst) || reason.starts_with("timed out") {
        return None;
    }
    let mut text = worker::tail(log, 80).join("\n");
    text.push('\n');
    text.push_str(reason);
    let text = text.to_lowercase();
    if STEP_FAILED.iter().any(|marker| text.contains(marker)) {
        return None;
    }
    if let Err(why) = member.probe() {
        return Some(Infra::Gone(why));
    }
    crate::retry::transient(&text).then_some(Infra::Transient)
}

/// The `(name, image)` pairs a build must hold with their names re-pointed: every pinned
/// parent, unless BuildKit gets them as named contexts.
fn parent_names(node: &Node, options: &BuildOptions) -> Vec<(String, String)> {
    let named = node.builder == Builder::Buildkit && options.plan.build.features.named_contexts;
    if named {
        return Vec::new();
    }
    node.parents
        .iter()
        .filter_map(|p| Some((p.reference.clone(), p.image.clone()?)))
        .collect()
}

/// `(name, cache tag)` for every name of the node.
fn own_names(node: &Node) -> Vec<(String, String)> {
    node.images
        .iter()
        .map(|name| (name.clone(), node.cache_tag.clone()))
        .collect()
}

/// Streams the node's context into `command` (its log to `log`, step lines as events).
fn stream(
    i: usize,
    node: &Node,
    command: &DockerCommand,
    shared: &Shared<'_>,
    log: &Path,
    events: &Sender<Event>,
) -> Result<(), String> {
    let context = worker::ContextSource {
        cache: shared.cache,
        commit: &node.git_commit,
        directory: &node.directory,
    };
    worker::run_build(
        i,
        command,
        context,
        log,
        events,
        shared.cancel,
        shared.options.timeout,
    )
}

fn build(
    i: usize,
    node: &Node,
    member: &Member,
    shared: &Shared<'_>,
    log: &Path,
    events: &Sender<Event>,
) -> Result<(), String> {
    let parents = parent_names(node, shared.options);
    // The log starts with the re-tags, if any; the build's own output follows.
    let _ = std::fs::write(log, "");
    let _hold = member
        .names
        .hold(&parents, &own_names(node), Some(log), shared.cancel)?;
    stream(i, node, &node.command, shared, log, events)?;
    for name in &node.images {
        member.names.tagged(name, &node.cache_tag);
    }
    Ok(())
}

fn pull(node: &Node, shared: &Shared<'_>, log: &Path) -> Result<(), String> {
    let _ = std::fs::write(log, "");
    let pull = DockerCommand::docker(&["pull", &node.cache_tag]);
    process::run(&pull, Some(log), shared.cancel, Some(TRANSFER_LIMIT))?;
    name(node, shared.local_names, shared, log)
}

/// Points the node's names at its key's image (holding them does).
fn name(node: &Node, names: &Names, shared: &Shared<'_>, log: &Path) -> Result<(), String> {
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log);
    names.hold(&own_names(node), &[], Some(log), shared.cancel)?;
    Ok(())
}

/// An oci-import node: the layout's image for the node's platform, verified, loaded and
/// tagged with the cache tag and every image name.
fn import(node: &Node, shared: &Shared<'_>, log: &Path) -> Result<(), String> {
    let platform = crate::arch::platform(&node.arch)
        .ok_or_else(|| format!("unknown architecture {}", node.arch))?;
    std::fs::write(
        log,
        format!(
            "$ {}  # oci-import of {}\n",
            node.command.display(),
            node.file
        ),
    )
    .map_err(|e| format!("cannot create log {}: {e}", log.display()))?;
    let _hold = shared
        .local_names
        .hold(&[], &own_names(node), Some(log), shared.cancel)?;
    let selected = crate::oci::select_in_git(
        shared.cache,
        &node.git_commit,
        &node.directory,
        &node.file,
        &platform,
    )
    .map_err(|e| e.to_string())?;
    let mut tags = vec![node.cache_tag.clone()];
    tags.extend(node.images.iter().cloned());
    crate::oci::import(
        shared.cache,
        &node.git_commit,
        &selected,
        &tags,
        log,
        shared.cancel,
    )?;
    for name in &node.images {
        shared.local_names.tagged(name, &node.cache_tag);
    }
    Ok(())
}

/// A node of a pool run: its image made on `member` and pushed by key (or found there), its
/// digest recorded for its children, and, with `--load`, pulled into the local engine.
fn pooled(
    i: usize,
    action: &Action,
    member: &Member,
    remote: &Remote,
    shared: &Shared<'_>,
    log: &Path,
    events: &Sender<Event>,
) -> Result<(), String> {
    let _ = std::fs::write(log, "");
    let registry = shared.registry.ok_or("a pool needs the registry client")?;
    let node = &shared.plan.nodes[i];
    match action {
        Action::Twin(first) => {
            let digest = remote
                .digest(*first)
                .ok_or_else(|| format!("no digest for {}", shared.plan.nodes[*first].id))?;
            remote.set_digest(i, digest);
        }
        Action::Pull => {}
        Action::Import => {
            import(node, shared, log)?;
            let local = DockerCommand::docker(&["push", &node.cache_tag]);
            process::run(&local, Some(log), shared.cancel, Some(TRANSFER_LIMIT))?;
            remote.set_digest(i, remote::registry_digest(registry, &node.cache_tag)?);
        }
        _ if node.builder == Builder::Buildkit => {
            let metadata = log.with_extension("metadata.json");
            let command = remote::buildkit_command(node, member, remote, shared.options, &metadata);
            stream(i, node, &command, shared, log, events)?;
            let digest = match remote::metadata_digest(&metadata) {
                Some(digest) => digest,
                None => remote::registry_digest(registry, &node.cache_tag)?,
            };
            remote.set_digest(i, digest);
        }
        _ => {
            let pins = remote::classic_parents(node, member, remote, log, shared.cancel)?;
            let _hold = member.names.hold(&pins, &[], Some(log), shared.cancel)?;
            let command = remote::classic_command(node, member, shared.options);
            stream(i, node, &command, shared, log, events)?;
            let digest = remote::push_cache_tag(node, member, registry, log, shared.cancel)?;
            remote.set_digest(i, digest);
        }
    }
    if shared.options.load && node.selected {
        remote::load(i, shared.plan, remote, log, shared.cancel)?;
        name(node, shared.local_names, shared, log)?;
    }
    Ok(())
}

/// After the node's image exists: its key's image to the registry cache (when the node was
/// made on the local engine), the inline cache image of engines without cache export, and
/// `--push`. None when nothing was pushed.
fn push(
    i: usize,
    node: &Node,
    shared: &Shared<'_>,
    log: &Path,
    made_here: bool,
    events: &Sender<Event>,
) -> Option<Result<(), String>> {
    let settings = &shared.options.plan.build;
    let mut commands: Vec<DockerCommand> = Vec::new();
    if made_here && settings.registry_cache && shared.remote.is_none() {
        commands.push(DockerCommand::docker(&["push", &node.cache_tag]));
        if node.builder == Builder::Buildkit && !docker::exports_registry_cache(settings) {
            commands.push(DockerCommand::docker(&["push", &node.cache_ref]));
        }
    }
    let publish = shared
        .options
        .publish
        .as_ref()
        .zip(shared.registry)
        .filter(|_| node.selected);
    if commands.is_empty() && publish.is_none() {
        return None;
    }
    let mut failures: Vec<String> = Vec::new();
    for command in &commands {
        if let Err(reason) = process::run(command, Some(log), shared.cancel, Some(TRANSFER_LIMIT)) {
            failures.push(reason);
        }
    }
    if let Some((publish, registry)) = publish {
        let pushed = match shared.remote {
            Some(remote) => push_from_registry(
                i,
                node,
                remote,
                shared.config,
                publish,
                registry,
                log,
                shared.cancel,
            ),
            None => push_built(i, shared.config, node, publish, registry, log, events),
        };
        if let Err(reason) = pushed {
            failures.push(reason);
        }
    }
    Some(if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    })
}

/// `--push` in a pool: every target made from the node's image in the registry by digest.
#[allow(clippy::too_many_arguments)]
pub fn push_from_registry(
    i: usize,
    node: &Node,
    remote: &Remote,
    config: &Config,
    publish: &crate::publish::PublishOptions,
    registry: &Registry,
    log: &Path,
    cancel: &AtomicBool,
) -> Result<(), String> {
    let Some(ns) = publish.targets.for_arch(&node.arch) else {
        return Ok(());
    };
    let digest = remote
        .digest(i)
        .ok_or_else(|| format!("no digest for {}", node.id))?;
    let targets: Vec<String> =
        crate::publish::push_items(config, node, ns, publish.uniq, &Default::default())
            .into_iter()
            .map(|item| item.target)
            .collect();
    let image = format!("{}@{digest}", remote.cache_repo);
    remote::push_by_digest(&targets, &image, &digest, registry, log, cancel)
}

/// `--push` in a worker, right after the node's image exists; output goes to its log, each
/// retry to its log and as an event.
fn push_built(
    i: usize,
    config: &Config,
    node: &Node,
    publish: &crate::publish::PublishOptions,
    registry: &Registry,
    log: &Path,
    events: &Sender<Event>,
) -> Result<(), String> {
    let Some(ns) = publish.targets.for_arch(&node.arch) else {
        return Ok(());
    };
    let mut images = std::collections::HashMap::new();
    if let Some(id) = Engine::image_id(&node.cache_tag) {
        images.insert(node.cache_tag.clone(), id);
    }
    let mut node = node.clone();
    node.built = Some(true);
    let items = crate::publish::push_items(config, &node, ns, publish.uniq, &images);
    let mut text: Vec<u8> = Vec::new();
    let mut err_text: Vec<u8> = Vec::new();
    let pushed =
        crate::publish::push_all(&items, &images, publish, registry, &mut text, &mut err_text)
            .map_err(|e| e.to_string())?;
    if let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(log) {
        use std::io::Write;
        let _ = file.write_all(&text);
        let _ = file.write_all(&err_text);
        for (item, retry) in &pushed.retries {
            let _ = writeln!(file, "retry {}: {retry}", items[*item].target);
        }
    }
    for (_, retry) in pushed.retries {
        let _ = events.send(Event::Retried { node: i, retry });
    }
    if pushed.failures.is_empty() {
        Ok(())
    } else {
        let text: Vec<String> = pushed.failures.iter().map(|f| f.describe(&items)).collect();
        Err(text.join("; "))
    }
}
