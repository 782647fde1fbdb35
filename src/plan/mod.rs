//! The plan: every node (entry x architecture) to build, the edges between them, the order,
//! and each node's cache key, computed before anything runs and without Docker.
//!
//! Invariants: a plan is data (serde) and a pure function of the library, the sources in
//! git, the options and (when an engine answers) one batched listing of local images; node
//! ids are `repo:first-tag@arch` and unique; `order` lists every node after all of its
//! `depends_on`; a dependency cycle is an error naming the whole cycle.

pub mod ancestors;
pub mod graph;
pub mod key;
pub mod render;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

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
pub const PLAN_VERSION: u32 = 2;

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
    /// False for an ancestor of the selection, planned for its key (and built only when a
    /// selected node needs it and no image for its key exists).
    pub selected: bool,
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
    /// Image references this node is tagged with (`[ns/]repo:tag`, shared tags included):
    /// selected nodes of the first architecture only.
    pub images: Vec<String>,
    pub command: DockerCommand,
    /// SOURCE_DATE_EPOCH of the build (the newest commit that changed the Directory).
    pub source_date_epoch: i64,
    /// The OCI labels the build sets (also in `command`).
    #[serde(skip)]
    pub labels: Vec<(String, String)>,
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
    /// The local image the build uses for it (the parent node's cache tag, or an external
    /// image's per-platform alias), whatever the engine has under the reference's name;
    /// null when the name itself is used (`scratch`, or an external image not pulled yet).
    pub image: Option<String>,
    /// The parent node's registry cache ref, imported by the build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_ref: Option<String>,
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

/// One (entry, architecture) before keys are known: selected, or an ancestor of one.
struct Slot {
    repo: Repo,
    /// Index into the repository's manifest entries.
    entry: usize,
    arch: String,
    selected: bool,
}

impl Slot {
    fn entry(&self) -> &crate::manifest::Entry {
        &self.repo.manifest.entries[self.entry]
    }

    fn id(&self) -> String {
        format!("{}@{}", self.repo.entry_id(self.entry()), self.arch)
    }
}

/// The image repositories a plan's keys and steps look up in the engine: the cache
/// repository (cache tags, parent aliases), every node's image repositories and every
/// parent's (by the name the Dockerfile gives). A plan made without images names them all (images change keys and
/// `built`, never which nodes and parents there are), so the engine can be asked about
/// these alone ([`crate::docker::Engine::images_of`]).
pub fn engine_interest(plan: &Plan, cache_repo: &str) -> std::collections::BTreeSet<String> {
    use crate::docker::repository_of;
    let mut out = std::collections::BTreeSet::new();
    out.insert(cache_repo.to_string());
    for node in &plan.nodes {
        for image in &node.images {
            out.insert(repository_of(image).to_string());
        }
        // Every parent by name, in the plan or not: builds that pin parents by name look up
        // what each name holds now.
        for parent in &node.parents {
            if parent.reference != "scratch" {
                out.insert(repository_of(&parent.reference).to_string());
            }
        }
    }
    out
}

/// Makes the plan for `repos`. `images` is the engine's image list when one answers.
///
/// Every in-library ancestor of a selected node is in the plan too (`selected: false`),
/// found through its Dockerfile's parents and fetched as needed, so that each key is the
/// same whatever was selected: a node's key hashes its parents' keys, never what an engine
/// happens to have under their names.
pub fn make(
    session: &Session,
    repos: &[Repo],
    options: &PlanOptions,
    images: Option<&HashMap<String, String>>,
) -> Result<Plan, Error> {
    let config = &session.config;
    let mut notes = SkipNotes::default();
    let mut slots: Vec<Slot> = Vec::new();
    let mut seen_entries = HashSet::new();
    for arch in &options.arches {
        let arch_config = crate::config::Config {
            arch: arch.clone(),
            ..config.clone()
        };
        for repo in repos {
            for &index in &repo.selected {
                let entry = &repo.manifest.entries[index];
                let id = (repo.path.clone(), index, arch.clone());
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
                    repo: repo.clone(),
                    entry: index,
                    arch: arch.clone(),
                    selected: true,
                });
            }
        }
    }

    // Which slot produces each image reference, per architecture: selected slots first.
    let mut producers: HashMap<(String, String), usize> = HashMap::new();
    let register = |producers: &mut HashMap<(String, String), usize>, i: usize, slot: &Slot| {
        for image in node_images(config, slot) {
            producers.entry((slot.arch.clone(), image)).or_insert(i);
        }
        let entry = slot.entry();
        for tag in entry.tags.iter().chain(&entry.shared_tags) {
            let plain = normalize_ref(&format!("{}:{tag}", slot.repo.name));
            producers.entry((slot.arch.clone(), plain)).or_insert(i);
        }
    };
    for (i, slot) in slots.iter().enumerate() {
        register(&mut producers, i, slot);
    }

    // Sources, then the ancestors they name, wave by wave, until none is new.
    let mut sources: Vec<Arc<Source>> = Vec::new();
    let mut library = ancestors::Producers::new(session);
    let mut wave = 0..slots.len();
    while !wave.is_empty() {
        let items: Vec<(String, &crate::manifest::Entry, String)> = slots[wave.clone()]
            .iter()
            .map(|s| (s.repo.entry_id(s.entry()), s.entry(), s.arch.clone()))
            .collect();
        sources.extend(session.sources()?.resolve_all(&items)?);
        let next = slots.len();
        for i in wave {
            let arch = slots[i].arch.clone();
            for reference in sources[i].froms() {
                let normalized = normalize_ref(&reference);
                if reference == "scratch"
                    || producers.contains_key(&(arch.clone(), normalized.clone()))
                {
                    continue;
                }
                if let Some((repo, entry)) = library.find(&normalized, &arch)? {
                    let id = (repo.path.clone(), entry, arch.clone());
                    let slot = Slot {
                        repo,
                        entry,
                        arch: arch.clone(),
                        selected: false,
                    };
                    if seen_entries.insert(id) {
                        slots.push(slot);
                        register(&mut producers, slots.len() - 1, &slots[slots.len() - 1]);
                    }
                }
            }
        }
        wave = next..slots.len();
    }

    let ids: Vec<String> = slots.iter().map(Slot::id).collect();
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

    let mut nodes: Vec<Option<Node>> = vec![None; slots.len()];
    for &i in &order {
        let slot = &slots[i];
        let source = &sources[i];
        let platform = arch::platform(&slot.arch)
            .map(|p| p.to_string())
            .unwrap_or_default();
        let built = |p: usize| nodes[p].as_ref().expect("parents come first in the order");
        let parent_inputs = parents[i]
            .iter()
            .map(|(reference, node)| match node {
                Some(p) => ParentInput::Built {
                    reference: reference.clone(),
                    key: built(*p).key.clone(),
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
        let plan_parents: Vec<Parent> = parents[i]
            .iter()
            .map(|(reference, p)| Parent {
                reference: reference.clone(),
                node: p.map(|p| ids[p].clone()),
                image: match p {
                    Some(p) => Some(built(*p).cache_tag.clone()),
                    None => pinned_external(reference, &slot.arch, options, images),
                },
                cache_ref: p.map(|p| built(p).cache_ref.clone()),
            })
            .collect();
        let node = node(
            slot,
            source,
            plan_parents,
            inputs,
            platform,
            options,
            config,
            images,
            ids[i].clone(),
        );
        nodes[i] = Some(node);
    }
    Ok(Plan {
        version: PLAN_VERSION,
        order: order.iter().map(|&i| ids[i].clone()).collect(),
        nodes: nodes.into_iter().flatten().collect(),
    })
}

/// `[ns/]repo:tag` for every tag and shared tag, normalized.
fn node_images(config: &crate::config::Config, slot: &Slot) -> Vec<String> {
    let image = config.image_repo(&slot.repo.name);
    let entry = slot.entry();
    entry
        .tags
        .iter()
        .chain(&entry.shared_tags)
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

/// The local image an external parent is pinned to on `arch`: its per-platform alias, once
/// keg has made one (after a pull, or for a local image of the right platform).
fn pinned_external(
    reference: &str,
    arch: &str,
    options: &PlanOptions,
    images: Option<&HashMap<String, String>>,
) -> Option<String> {
    let alias = key::parent_alias(&options.cache_repo, arch, reference);
    (reference != "scratch" && images?.contains_key(&alias)).then_some(alias)
}

#[allow(clippy::too_many_arguments)]
fn node(
    slot: &Slot,
    source: &Source,
    parents: Vec<Parent>,
    inputs: KeyInputs,
    platform: String,
    options: &PlanOptions,
    config: &crate::config::Config,
    images: Option<&HashMap<String, String>>,
    id: String,
) -> Node {
    let entry = slot.entry();
    let content_key = inputs.key();
    let cache_tag = key::cache_tag(&options.cache_repo, &content_key);
    let git_repo = entry.arch_git_repo(&slot.arch).to_string();
    let cache_ref = key::cache_ref(
        &options.cache_repo,
        key::Slot {
            repo: &slot.repo.name,
            git_repo: &git_repo,
            git_fetch: &source.fetch_ref,
            directory: &source.directory,
            file: &source.file,
            arch: &slot.arch,
        },
    );
    // Names are the selected nodes' of the first architecture: one engine holds one image
    // per name, and a name must not flip between architectures while builds run.
    let primary = options.arches.first() == Some(&slot.arch);
    let mut image_refs = if slot.selected && primary {
        node_images(config, slot)
    } else {
        Vec::new()
    };
    if options.uniq {
        image_refs.truncate(1);
    }
    let mut tags = vec![cache_tag.clone()];
    tags.extend(image_refs.iter().cloned());
    // Without a cache export, a registry cache travels inline in an image pushed to the ref.
    if options.build.registry_cache
        && !crate::docker::exports_registry_cache(&options.build)
        && source.builder == Builder::Buildkit
    {
        tags.push(cache_ref.clone());
    }
    let labels = vec![
        (
            "org.opencontainers.image.source".to_string(),
            git_repo.clone(),
        ),
        (
            "org.opencontainers.image.revision".to_string(),
            source.commit.clone(),
        ),
        // The entry's SOURCE_DATE_EPOCH: reproducible, unlike the time of the build.
        (
            "org.opencontainers.image.created".to_string(),
            crate::utc::rfc3339(source.source_date_epoch),
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
                parent_cache_refs: dedup(parents.iter().filter_map(|p| p.cache_ref.clone())),
                contexts: parents
                    .iter()
                    .filter_map(|p| Some((p.reference.clone(), p.image.clone()?)))
                    .collect(),
                labels: labels.clone(),
                source_date_epoch: Some(source.source_date_epoch),
                via: Default::default(),
                output: Default::default(),
            },
            &options.build,
        )
    };
    let depends_on = dedup(parents.iter().filter_map(|p| p.node.clone()));
    Node {
        id,
        repo: slot.repo.name.clone(),
        selected: slot.selected,
        tags: entry.tags.clone(),
        shared_tags: entry.shared_tags.clone(),
        arch: slot.arch.clone(),
        platform,
        builder: source.builder,
        git_repo,
        git_url: source.url.clone(),
        git_fetch: source.fetch_ref.clone(),
        git_commit: source.commit.clone(),
        tree: source.tree.clone(),
        directory: source.directory.clone(),
        file: source.file.clone(),
        parents,
        depends_on,
        provisional: !inputs.provisional_inputs().is_empty(),
        key: content_key,
        built: images.map(|images| images.contains_key(&cache_tag)),
        cache_tag,
        cache_ref,
        images: image_refs,
        command,
        source_date_epoch: source.source_date_epoch,
        labels,
        blocked: source.scan.unresolved_from().map(|w| w.message.clone()),
        inputs,
    }
}

impl Node {
    /// The registry cache refs of its parents in the plan, each once.
    pub fn parent_cache_refs(&self) -> Vec<String> {
        dedup(self.parents.iter().filter_map(|p| p.cache_ref.clone()))
    }
}

/// The items in first-seen order, each once.
fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}
