//! One node's work on a worker thread: pull its key's image, build it, or import its
//! layout; then push what `--cache-repo` and `--push` ask for. Sends one closing event.
//!
//! Invariants: the parents a build uses are exactly those its key hashed: BuildKit gets them
//! as named contexts (in the node's command); a classic build, or any build on an engine
//! without named contexts, holds their names pointing at the pinned images for its whole
//! duration ([`super::names`]); a node's own names are held while it builds, so no other
//! build sees them flip; a failed push is reported with the node, never as a failed build.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::BuildOptions;
use super::actions::Action;
use super::names::{self, Names};
use super::worker;
use crate::config::Config;
use crate::docker::{self, DockerCommand, Engine};
use crate::git::GitCache;
use crate::manifest::Builder;
use crate::plan::Node;
use crate::process;
use crate::registry::Registry;
use crate::report::Event;

/// How long one `docker push` or `docker pull` of a node's image may take.
const TRANSFER_LIMIT: Duration = Duration::from_secs(30 * 60);

/// What every job of a run shares.
pub struct Shared<'a> {
    pub cache: &'a GitCache,
    pub config: &'a Config,
    pub options: &'a BuildOptions,
    pub registry: Option<&'a Registry>,
    pub names: &'a Names,
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

/// Runs `action` for node `i` and sends its closing event.
pub fn run(i: usize, node: &Node, action: &Action, shared: &Shared<'_>, events: &Sender<Event>) {
    let start = Instant::now();
    let log = log_path(shared.run_dir, node);
    let result = match action {
        Action::Pull => pull(node, shared, &log),
        Action::Import => import(node, shared, &log),
        _ => build(i, node, shared, &log, events),
    };
    let elapsed = start.elapsed();
    let event = match result {
        Ok(()) => Event::Done {
            node: i,
            elapsed,
            pulled: *action == Action::Pull,
            pushed: push(node, shared, &log, *action != Action::Pull),
        },
        Err(reason) => Event::Failed {
            node: i,
            elapsed,
            reason,
            tail: worker::tail(&log, worker::TAIL_LINES),
            log: log.display().to_string(),
        },
    };
    let _ = events.send(event);
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

fn build(
    i: usize,
    node: &Node,
    shared: &Shared<'_>,
    log: &Path,
    events: &Sender<Event>,
) -> Result<(), String> {
    let own: Vec<(String, String)> = node
        .images
        .iter()
        .map(|name| (name.clone(), node.cache_tag.clone()))
        .collect();
    let parents = parent_names(node, shared.options);
    // The log starts with the re-tags, if any; the build's own output follows.
    let _ = std::fs::write(log, "");
    let _hold = shared
        .names
        .hold(&parents, &own, Some(log), shared.cancel)?;
    let context = worker::ContextSource {
        cache: shared.cache,
        commit: &node.git_commit,
        directory: &node.directory,
    };
    worker::run_build(
        i,
        &node.command,
        context,
        log,
        events,
        shared.cancel,
        shared.options.timeout,
    )?;
    for name in &node.images {
        shared.names.tagged(name, &node.cache_tag);
    }
    Ok(())
}

fn pull(node: &Node, shared: &Shared<'_>, log: &Path) -> Result<(), String> {
    let _ = std::fs::write(log, "");
    let pull = docker_command(&["pull", &node.cache_tag]);
    process::run(&pull, Some(log), shared.cancel, Some(TRANSFER_LIMIT))?;
    let own: Vec<(String, String)> = node
        .images
        .iter()
        .map(|name| (name.clone(), node.cache_tag.clone()))
        .collect();
    // Holding the names points them at the pulled image.
    shared.names.hold(&own, &[], Some(log), shared.cancel)?;
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
    let own: Vec<(String, String)> = node
        .images
        .iter()
        .map(|name| (name.clone(), node.cache_tag.clone()))
        .collect();
    let _hold = shared.names.hold(&[], &own, Some(log), shared.cancel)?;
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
        shared.names.tagged(name, &node.cache_tag);
    }
    Ok(())
}

/// After the node's image exists: its key's image to the registry cache (when the node was
/// made here), the inline cache image of engines without cache export, and `--push`.
/// None when nothing was pushed.
fn push(
    node: &Node,
    shared: &Shared<'_>,
    log: &Path,
    made_here: bool,
) -> Option<Result<(), String>> {
    let settings = &shared.options.plan.build;
    let mut commands: Vec<DockerCommand> = Vec::new();
    if made_here && settings.registry_cache {
        commands.push(docker_command(&["push", &node.cache_tag]));
        if node.builder == Builder::Buildkit && !docker::exports_registry_cache(settings) {
            commands.push(docker_command(&["push", &node.cache_ref]));
        }
    }
    let publish = shared.options.publish.as_ref().zip(shared.registry);
    if commands.is_empty() && publish.is_none() {
        return None;
    }
    let mut failures: Vec<String> = Vec::new();
    for command in &commands {
        if let Err(reason) = process::run(command, Some(log), shared.cancel, Some(TRANSFER_LIMIT)) {
            failures.push(reason);
        }
    }
    if let Some((publish, registry)) = publish
        && let Err(reason) = push_built(shared.config, node, publish, registry, log)
    {
        failures.push(reason);
    }
    Some(if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    })
}

/// `--push` in a worker, right after the node's image exists; output goes to its log.
fn push_built(
    config: &Config,
    node: &Node,
    publish: &crate::publish::PublishOptions,
    registry: &Registry,
    log: &Path,
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
        Err(text.join("; "))
    }
}

fn docker_command(args: &[&str]) -> DockerCommand {
    DockerCommand {
        env: Default::default(),
        argv: std::iter::once("docker")
            .chain(args.iter().copied())
            .map(str::to_string)
            .collect(),
    }
}

/// How long one `docker tag` may take (re-exported for the executor's own re-tags).
pub const TAG_LIMIT: Duration = names::TAG_LIMIT;
