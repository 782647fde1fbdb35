//! The plan: every node (entry x architecture) to build, the edges between them, the order,
//! and each node's cache key, computed before anything runs and without Docker.
//!
//! Invariants: a plan is data (serde) and a pure function of the library, the sources in
//! git, the options and (when an engine answers) one batched listing of local images; node
//! ids are `repo:first-tag@arch` and unique; `order` lists every node after all of its
//! `depends_on`; a dependency cycle is an error naming the whole cycle.

pub mod graph;
pub mod key;
pub mod render;

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::arch;
use crate::docker::{BuildSettings, BuildSpec, DockerCommand, build_command};
use crate::dockerfile::normalize_ref;
use crate::error::Error;
use crate::library::Repo;
use crate::manifest::Builder;
use crate::query::SkipNotes;
use crate::session::Session;
use crate::sources::Source;
use key::{KeyInputs, ParentInput};

/// The JSON format's version (docs/plan.md).
pub const PLAN_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub version: u32,
    pub nodes: Vec<Node>,
    /// Node ids in build order.
    pub order: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// `repo:first-tag@arch`.
    pub id: String,
    pub repo: String,
    pub tags: Vec<String>,
    pub shared_tags: Vec<String>,
    pub arch: String,
    pub platform: String,
    pub builder: Builder,
    /// The GitRepo as the manifest gives it, and as keg fetches it.
    pub git_repo: String,
    pub git_url: String,
    pub git_fetch: String,
    pub git_commit: String,
    /// The git tree id of the build context.
    pub tree: String,
    pub directory: String,
    pub file: String,
    pub parents: Vec<Parent>,
    /// Ids of the nodes this one is built on.
    pub depends_on: Vec<String>,
    pub key: String,
    /// True when an external parent's image id was unknown (see docs/cache-keys.md).
    pub provisional: bool,
    pub cache_tag: String,
    pub cache_ref: String,
    /// Whether the cache tag exists in the engine; null without an engine.
    pub built: Option<bool>,
    /// Image references this node is tagged with (`[ns/]repo:tag`, shared tags included).
    pub images: Vec<String>,
    pub command: DockerCommand,
    /// Why the node cannot be built (e.g. a FROM using an ARG without a default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    #[serde(skip)]
    pub inputs: KeyInputs,
}

#[derive(Debug, Clone, Serialize)]
pub struct Parent {
    #[serde(rename = "ref")]
    pub reference: String,
    /// The id of the node that builds it, or null for an image from outside the plan.
    pub node: Option<String>,
}

/// What a plan is made for.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub arches: Vec<String>,
    /// Tag only each entry's first tag (`--uniq`).
    pub uniq: bool,
    pub cache_repo: String,
    pub build: BuildSettings,
    /// The engine's own platform (`linux/amd64`) when one answers: for other platforms a
    /// local external image only counts through its per-platform alias (see
    /// [`key::parent_alias`]), since its plain name may hold another platform's image.
    pub engine_platform: Option<String>,
}

/// One selected (entry, architecture) before keys are known.
struct Slot<'a> {
    repo: &'a Repo,
    entry: &'a crate::manifest::Entry,
    arch: String,
}

/// Makes the plan for `repos`. `images` is the engine's image list when one answers.
pub fn make(
    session: &Session,
    repos: &[Repo],
    options: &PlanOptions,
    images: Option<&HashMap<String, String>>,
) -> Result<Plan, Error> {
    let config = &session.config;
    let mut notes = SkipNotes::default();
    let mut slots: Vec<Slot<'_>> = Vec::new();
    let mut seen_entries = HashSet::new();
    for arch in &options.arches {
        let arch_config = crate::config::Config {
            arch: arch.clone(),
            ..config.clone()
        };
        for repo in repos {
            for entry in repo.entries() {
                let id = (repo.path.clone(), entry.tags[0].clone(), arch.clone());
                // With several architectures, an entry without one is simply not planned
                // for it; the notes are for what a single --arch excludes.
                let other_arch = options.arches.len() > 1 && !entry.has_architecture(arch);
                if other_arch
                    || seen_entries.contains(&id)
                    || notes.skips(&arch_config, repo, entry)
                {
                    continue;
                }
                seen_entries.insert(id);
                slots.push(Slot {
                    repo,
                    entry,
                    arch: arch.clone(),
                });
            }
        }
    }

    let items: Vec<(String, &crate::manifest::Entry, String)> = slots
        .iter()
        .map(|s| (s.repo.entry_id(s.entry), s.entry, s.arch.clone()))
        .collect();
    let sources = session.sources()?.resolve_all(&items)?;

    // Which node produces each image reference, per architecture.
    let mut producers: HashMap<(String, String), usize> = HashMap::new();
    for (i, slot) in slots.iter().enumerate() {
        for image in node_images(config, slot) {
            producers.entry((slot.arch.clone(), image)).or_insert(i);
        }
        for tag in slot.entry.tags.iter().chain(&slot.entry.shared_tags) {
            let plain = normalize_ref(&format!("{}:{tag}", slot.repo.name));
            producers.entry((slot.arch.clone(), plain)).or_insert(i);
        }
    }

    let ids: Vec<String> = slots
        .iter()
        .map(|s| format!("{}@{}", s.repo.entry_id(s.entry), s.arch))
        .collect();
    let parents: Vec<Vec<(String, Option<usize>)>> = slots
        .iter()
        .zip(&sources)
        .enumerate()
        .map(|(i, (slot, source))| {
            source
                .froms()
                .into_iter()
                .map(|reference| {
                    let node = producers
                        .get(&(slot.arch.clone(), normalize_ref(&reference)))
                        .copied()
                        .filter(|&p| p != i);
                    (reference, node)
                })
                .collect()
        })
        .collect();

    let edges: Vec<(usize, usize)> = parents
        .iter()
        .enumerate()
        .flat_map(|(child, ps)| ps.iter().filter_map(move |(_, p)| p.map(|p| (p, child))))
        .collect();
    let order = graph::order(&ids, &edges)?;

    let mut keys: Vec<String> = vec![String::new(); slots.len()];
    let mut nodes: Vec<Option<Node>> = vec![None; slots.len()];
    for &i in &order {
        let slot = &slots[i];
        let source = &sources[i];
        let platform = arch::platform(&slot.arch)
            .map(|p| p.to_string())
            .unwrap_or_default();
        let parent_inputs = parents[i]
            .iter()
            .map(|(reference, node)| match node {
                Some(p) => ParentInput::Built {
                    reference: reference.clone(),
                    key: keys[*p].clone(),
                },
                None => ParentInput::External {
                    reference: reference.clone(),
                    image: external_image(reference, &slot.arch, &platform, options, images),
                },
            })
            .collect();
        let inputs = KeyInputs {
            version: key::KEY_VERSION,
            tree: source.tree.clone(),
            file: source.file.clone(),
            builder: source.builder.as_str().to_string(),
            arch: slot.arch.clone(),
            platform: platform.clone(),
            parents: parent_inputs,
            build_args: options.build.build_args.clone(),
            buildkit_syntax: options.build.buildkit_syntax.clone(),
        };
        let node = node(
            slot,
            source,
            &ids,
            &parents[i],
            inputs,
            platform,
            options,
            config,
            images,
            ids[i].clone(),
        );
        keys[i] = node.key.clone();
        nodes[i] = Some(node);
    }
    Ok(Plan {
        version: PLAN_VERSION,
        order: order.iter().map(|&i| ids[i].clone()).collect(),
        nodes: nodes.into_iter().flatten().collect(),
    })
}

/// `[ns/]repo:tag` for every tag and shared tag, normalized.
fn node_images(config: &crate::config::Config, slot: &Slot<'_>) -> Vec<String> {
    let image = config.image_repo(&slot.repo.name);
    slot.entry
        .tags
        .iter()
        .chain(&slot.entry.shared_tags)
        .map(|tag| format!("{image}:{tag}"))
        .collect()
}

/// The image id of an external parent for `arch`, when the engine has it (`scratch`
/// always): the per-platform alias keg tags after pulling, else, on the engine's own
/// platform only, the image under the reference itself.
fn external_image(
    reference: &str,
    arch: &str,
    platform: &str,
    options: &PlanOptions,
    images: Option<&HashMap<String, String>>,
) -> Option<String> {
    if reference == "scratch" {
        return Some("scratch".to_string());
    }
    let images = images?;
    let alias = key::parent_alias(&options.cache_repo, arch, reference);
    if let Some(id) = images.get(&alias) {
        return Some(id.clone());
    }
    let native = options
        .engine_platform
        .as_ref()
        .is_none_or(|engine| platform == engine || platform.starts_with(&format!("{engine}/")));
    if native {
        images.get(reference).cloned()
    } else {
        None
    }
}

#[allow(clippy::too_many_arguments)]
fn node(
    slot: &Slot<'_>,
    source: &Source,
    ids: &[String],
    parents: &[(String, Option<usize>)],
    inputs: KeyInputs,
    platform: String,
    options: &PlanOptions,
    config: &crate::config::Config,
    images: Option<&HashMap<String, String>>,
    id: String,
) -> Node {
    let content_key = inputs.key();
    let cache_tag = key::cache_tag(&options.cache_repo, &content_key);
    let cache_ref = key::cache_ref(
        &options.cache_repo,
        &slot.repo.name,
        &source.directory,
        &source.file,
        &slot.arch,
    );
    let mut image_refs = node_images(config, slot);
    if options.uniq {
        image_refs.truncate(1);
    }
    let mut tags = vec![cache_tag.clone()];
    tags.extend(image_refs.iter().cloned());
    // With the docker driver a registry cache travels inline in an image pushed to the ref.
    if options.build.registry_cache
        && options.build.builder.is_none()
        && source.builder == Builder::Buildkit
    {
        tags.push(cache_ref.clone());
    }
    let labels = vec![
        (
            "org.opencontainers.image.source".to_string(),
            slot.entry.arch_git_repo(&slot.arch).to_string(),
        ),
        (
            "org.opencontainers.image.revision".to_string(),
            source.commit.clone(),
        ),
        // The entry's SOURCE_DATE_EPOCH: reproducible, unlike the time of the build.
        (
            "org.opencontainers.image.created".to_string(),
            crate::report::rfc3339(source.source_date_epoch),
        ),
    ];
    let command = if source.builder == Builder::OciImport {
        // No build: the layout is imported (src/oci.rs) and tagged with `tags`.
        crate::oci::load_command()
    } else {
        build_command(
            &BuildSpec {
                builder: source.builder,
                platform: &platform,
                file: &source.file,
                tags,
                cache_ref: &cache_ref,
                labels,
                source_date_epoch: Some(source.source_date_epoch),
            },
            &options.build,
        )
    };
    let mut depends_on: Vec<String> = Vec::new();
    for p in parents.iter().filter_map(|(_, p)| *p) {
        if !depends_on.contains(&ids[p]) {
            depends_on.push(ids[p].clone());
        }
    }
    Node {
        id,
        repo: slot.repo.name.clone(),
        tags: slot.entry.tags.clone(),
        shared_tags: slot.entry.shared_tags.clone(),
        arch: slot.arch.clone(),
        platform,
        builder: source.builder,
        git_repo: slot.entry.arch_git_repo(&slot.arch).to_string(),
        git_url: source.url.clone(),
        git_fetch: source.fetch_ref.clone(),
        git_commit: source.commit.clone(),
        tree: source.tree.clone(),
        directory: source.directory.clone(),
        file: source.file.clone(),
        parents: parents
            .iter()
            .map(|(reference, p)| Parent {
                reference: reference.clone(),
                node: p.map(|p| ids[p].clone()),
            })
            .collect(),
        depends_on,
        provisional: !inputs.provisional_inputs().is_empty(),
        key: content_key,
        built: images.map(|images| images.contains_key(&cache_tag)),
        cache_tag,
        cache_ref,
        images: image_refs,
        command,
        blocked: source.scan.unresolved_from().map(|w| w.message.clone()),
        inputs,
    }
}
