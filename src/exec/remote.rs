//! A pool of builders with the registry as the shared store: every node's image is pushed as
//! `<cache-repo>:<key>` and reaches its children by digest, so no builder depends on
//! another's local images, and the registry is the cache of record.
//!
//! Invariants: external parents are resolved to digests in their registries before planning
//! (one query each, all at once), and keys hash those digests; a BuildKit node gets every
//! parent as `--build-context REF=docker-image://<repo>@<digest>` and pushes its result by
//! key, reporting its digest through buildx's metadata file; a classic node runs on an
//! engine of the pool, where its parents are pulled by digest and held under their names;
//! nothing is loaded into the local engine unless `--load`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use super::BuildOptions;
use super::pool::Member;
use super::prepare::Prepared;
use crate::docker::{self, BuildSpec, Output};
use crate::error::Error;
use crate::library::Repo;
use crate::manifest::Builder;
use crate::plan::{Node, Plan};
use crate::process;
use crate::registry::Registry;
use crate::session::Session;

/// How long one pull or push of a node's image may take.
const TRANSFER_LIMIT: Duration = Duration::from_secs(30 * 60);

/// What the jobs of a pool run share.
pub struct Remote {
    /// External references -> the digest their registry gives them.
    pub externals: HashMap<String, String>,
    /// Node index -> the digest of `<cache-repo>:<key>` in the registry, once known.
    pub digests: Mutex<HashMap<usize, String>>,
    /// The registry repository of the cache (`HOST/REPO`).
    pub cache_repo: String,
    /// Node id -> index.
    pub index: HashMap<String, usize>,
}

impl Remote {
    pub fn digest(&self, node: usize) -> Option<String> {
        self.digests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node)
            .cloned()
    }

    pub fn set_digest(&self, node: usize, digest: String) {
        self.digests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node, digest);
    }

    /// `<cache-repo>@<digest>` of a node that has its image in the registry.
    pub fn pinned(&self, node: usize) -> Option<String> {
        self.digest(node)
            .map(|digest| format!("{}@{digest}", self.cache_repo))
    }

    /// Every parent of `node` that is pinned: (reference as written, image by digest).
    fn pins(&self, node: &Node) -> Vec<(String, String)> {
        node.parents
            .iter()
            .filter_map(|p| {
                let image = match &p.node {
                    Some(id) => self.pinned(*self.index.get(id)?)?,
                    None => {
                        let digest = self.externals.get(&p.reference)?;
                        format!("{}@{digest}", without_digest(&p.reference))
                    }
                };
                Some((p.reference.clone(), image))
            })
            .collect()
    }
}

/// `repo:tag@digest` -> `repo:tag`.
fn without_digest(reference: &str) -> &str {
    reference.split_once('@').map_or(reference, |(r, _)| r)
}

/// Plans with every external parent resolved in its registry, so keys hash registry
/// digests; a parent no registry knows makes its nodes fail before anything runs.
pub fn plan(
    session: &Session,
    repos: &[Repo],
    options: &BuildOptions,
    registry: &Registry,
) -> Result<(Prepared, HashMap<String, String>), Error> {
    let first = options.make_plan(session, repos, &HashMap::new())?;
    let mut references: Vec<String> = first
        .nodes
        .iter()
        .flat_map(|n| n.parents.iter())
        .filter(|p| p.node.is_none() && p.reference != "scratch")
        .map(|p| p.reference.clone())
        .collect();
    references.sort();
    references.dedup();
    let mut externals = HashMap::new();
    let mut failures = HashMap::new();
    for (reference, answer) in references.iter().zip(registry.manifests(&references)) {
        let reason = match answer {
            Ok(Some(manifest)) => {
                externals.insert(reference.clone(), manifest.digest);
                continue;
            }
            Ok(None) => "its registry does not have it".to_string(),
            Err(e) => e.to_string(),
        };
        for arch in &options.plan.arches {
            failures.insert(
                (arch.clone(), reference.clone()),
                format!("cannot resolve it for the pool: {reason}"),
            );
        }
    }
    let plan = options.make_plan(session, repos, &externals)?;
    Ok((
        Prepared {
            plan,
            images: HashMap::new(),
            pull_failures: failures,
        },
        externals,
    ))
}

/// The node's BuildKit argv on `member`: parents by digest, the result pushed by key.
pub fn buildkit_command(
    node: &Node,
    member: &Member,
    remote: &Remote,
    options: &BuildOptions,
    metadata: &Path,
) -> docker::DockerCommand {
    let spec = BuildSpec {
        builder: Builder::Buildkit,
        platform: &node.platform,
        file: &node.file,
        tags: vec![node.cache_tag.clone()],
        cache_ref: &node.cache_ref,
        parent_cache_refs: node.parent_cache_refs(),
        contexts: remote.pins(node),
        labels: node.labels.clone(),
        source_date_epoch: Some(node.source_date_epoch),
        via: member.via(),
        output: Output::Push {
            name: node.cache_tag.clone(),
            metadata_file: metadata.display().to_string(),
        },
    };
    let mut settings = options.plan.build.clone();
    settings.features.named_contexts = true;
    settings.features.cache_export = true;
    docker::build_command(&spec, &settings)
}

/// Pulls the classic node's parents by digest on `member`'s engine; the `(name, image)`
/// pairs its build must hold.
pub fn classic_parents(
    node: &Node,
    member: &Member,
    remote: &Remote,
    log: &Path,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<Vec<(String, String)>, String> {
    let pins = remote.pins(node);
    for (_, image) in &pins {
        process::run(
            &member.docker(&["pull", image]),
            Some(log),
            cancel,
            Some(TRANSFER_LIMIT),
        )?;
    }
    Ok(pins)
}

/// The classic node's argv on `member`'s engine (its result tagged with the cache tag
/// only; [`push_cache_tag`] sends it to the registry).
pub fn classic_command(
    node: &Node,
    member: &Member,
    options: &BuildOptions,
) -> docker::DockerCommand {
    let spec = BuildSpec {
        builder: node.builder,
        platform: &node.platform,
        file: &node.file,
        tags: vec![node.cache_tag.clone()],
        cache_ref: &node.cache_ref,
        parent_cache_refs: Vec::new(),
        contexts: Vec::new(),
        labels: node.labels.clone(),
        source_date_epoch: Some(node.source_date_epoch),
        via: member.via(),
        output: Output::Local,
    };
    docker::build_command(&spec, &options.plan.build)
}

/// `docker push <cache tag>` from `member`'s engine; the digest the registry now has.
pub fn push_cache_tag(
    node: &Node,
    member: &Member,
    registry: &Registry,
    log: &Path,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<String, String> {
    process::run(
        &member.docker(&["push", &node.cache_tag]),
        Some(log),
        cancel,
        Some(TRANSFER_LIMIT),
    )?;
    registry_digest(registry, &node.cache_tag)
}

/// The digest the registry has for `reference`.
pub fn registry_digest(registry: &Registry, reference: &str) -> Result<String, String> {
    match registry.manifest(reference) {
        Ok(Some(manifest)) => Ok(manifest.digest),
        Ok(None) => Err(format!("the registry has no {reference} after the push")),
        Err(e) => Err(format!("asking the registry about {reference}: {e}")),
    }
}

/// The digest buildx wrote to its metadata file (`containerimage.digest`).
pub fn metadata_digest(path: &Path) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
    value["containerimage.digest"].as_str().map(str::to_string)
}

/// `--load`: the node's image pulled by digest into the local engine, tagged with its cache
/// tag; its names follow through the local engine's name holds.
pub fn load(
    node: usize,
    plan: &Plan,
    remote: &Remote,
    log: &Path,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<(), String> {
    let image = remote
        .pinned(node)
        .ok_or_else(|| format!("no digest for {}", plan.nodes[node].id))?;
    let docker = docker::DockerCommand::docker;
    process::run(
        &docker(&["pull", &image]),
        Some(log),
        cancel,
        Some(TRANSFER_LIMIT),
    )?;
    process::run(
        &docker(&["tag", &image, &plan.nodes[node].cache_tag]),
        Some(log),
        cancel,
        Some(TRANSFER_LIMIT),
    )
}

/// `--push` from the registry: each target tag made from the node's image by digest with
/// `docker buildx imagetools create` (no local image needed), unless the target already
/// has that digest.
pub fn push_by_digest(
    targets: &[String],
    image: &str,
    digest: &str,
    registry: &Registry,
    log: &Path,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<(), String> {
    let mut failures = Vec::new();
    for target in targets {
        // imagetools create wraps one manifest in an index: a member counts too.
        if let Ok(Some(found)) = registry.manifest(target)
            && (found.digest == digest || found.manifests.iter().any(|m| m.digest == digest))
        {
            continue;
        }
        let command =
            docker::DockerCommand::docker(&["buildx", "imagetools", "create", "-t", target, image]);
        if let Err(reason) = process::run(&command, Some(log), cancel, Some(TRANSFER_LIMIT)) {
            failures.push(format!("{target}: {reason}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
