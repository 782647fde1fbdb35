//! What each node of a prepared plan needs before the queue runs: nothing (its key's image
//! is in the engine), a pull of `<cache-repo>:<key>` from the registry, a build (or an
//! oci-import), or nothing at all because it is an ancestor no build needs.
//!
//! Invariants: an image is looked for in this order: the engine (one listing), the registry
//! cache repo (one query per key, all at once), a build; an ancestor of the selection is
//! pulled or built only when a node that builds uses it as a parent; with `--no-parents`, an
//! ancestor that would have to be built is an error naming it and its key, raised before
//! anything runs.

use std::collections::HashMap;

use super::BuildOptions;
use super::prepare::Prepared;
use crate::docker::DockerCommand;
use crate::error::Error;
use crate::manifest::Builder;
use crate::registry::Registry;
use crate::report::Reporter;

/// What one node needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The engine has its key's image.
    Cached,
    /// An ancestor that nothing to build needs.
    Unneeded,
    /// `docker pull <cache-repo>:<key>`.
    Pull,
    Build,
    /// `Builder: oci-import`: loaded from the layout in git.
    Import,
    /// Another node of the run has the same key (the same content): that one makes the
    /// image, this one only gets its names.
    Twin(usize),
    /// It cannot be built: why.
    Fail(String),
}

impl Action {
    /// The verb of a node that runs (`build`, `pull`, `import`).
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Import => "import",
            Action::Twin(_) => "tag",
            _ => "build",
        }
    }

    pub fn runs(&self) -> bool {
        matches!(
            self,
            Action::Pull | Action::Build | Action::Import | Action::Twin(_)
        )
    }
}

/// Every node's action, the re-tags that point cached nodes' names at their images, and the
/// registry digests of the keys found there.
pub struct Decided {
    pub actions: Vec<Action>,
    pub retags: Vec<DockerCommand>,
    pub digests: HashMap<usize, String>,
}

/// Decides what each node needs; asks the registry about keys the engine lacks when the
/// cache repo is in one. With a `pool`, the registry is the only store: a key it has is
/// cached (pulled into the local engine only for `--load`).
pub fn decide(
    prepared: &Prepared,
    registry: Option<&Registry>,
    options: &BuildOptions,
    pool: bool,
    reporter: &Reporter,
) -> Result<Decided, Error> {
    let plan = &prepared.plan;
    let images = &prepared.images;
    let mut actions: Vec<Option<Action>> = plan
        .nodes
        .iter()
        .map(|node| {
            let failed_parent = node.parents.iter().find_map(|p| {
                prepared
                    .pull_failures
                    .get(&(node.arch.clone(), p.reference.clone()))
                    .map(|reason| format!("pulling {} failed: {reason}", p.reference))
            });
            if let Some(reason) = &node.blocked {
                Some(Action::Fail(reason.clone()))
            } else if let Some(reason) = failed_parent {
                Some(Action::Fail(reason))
            } else if node.built == Some(true) && !pool {
                Some(Action::Cached)
            } else {
                None
            }
        })
        .collect();

    // The registry cache repo, asked once per missing key.
    let mut digests = HashMap::new();
    if let (true, Some(registry)) = (options.plan.build.registry_cache, registry) {
        let missing: Vec<usize> = (0..plan.nodes.len())
            .filter(|&i| actions[i].is_none())
            .collect();
        let references: Vec<String> = missing
            .iter()
            .map(|&i| plan.nodes[i].cache_tag.clone())
            .collect();
        let answers = crate::interrupt::abortable(|| registry.manifests(&references));
        for retry in crate::registry::take_retries() {
            reporter.query_retried(&retry);
        }
        let mut warned = false;
        for (&i, answer) in missing.iter().zip(answers) {
            match answer {
                Ok(Some(manifest)) => {
                    digests.insert(i, manifest.digest);
                    let load = !pool || (options.load && plan.nodes[i].selected);
                    actions[i] = Some(if load { Action::Pull } else { Action::Cached });
                }
                Ok(None) => {}
                Err(e) if !warned => {
                    warned = true;
                    reporter.line(&format!(
                        "warning: cannot ask the registry cache ({e}); building what the engine lacks"
                    ));
                }
                Err(_) => {}
            }
        }
    }
    let mut actions: Vec<Action> = plan
        .nodes
        .iter()
        .zip(actions)
        .map(|(node, action)| {
            action.unwrap_or(if node.builder == Builder::OciImport {
                Action::Import
            } else {
                Action::Build
            })
        })
        .collect();

    // Ancestors: only what a build uses, children before parents.
    let index: HashMap<&str, usize> = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut needed: Vec<bool> = plan.nodes.iter().map(|n| n.selected).collect();
    for i in plan.order_indexes().into_iter().rev() {
        if needed[i] && matches!(actions[i], Action::Build | Action::Import) {
            for parent in &plan.nodes[i].depends_on {
                if let Some(&p) = index.get(parent.as_str()) {
                    needed[p] = true;
                }
            }
        }
    }
    for (i, action) in actions.iter_mut().enumerate() {
        if !needed[i] && *action != Action::Cached {
            *action = Action::Unneeded;
        }
    }
    if options.no_parents {
        let missing: Vec<(String, String)> = plan
            .nodes
            .iter()
            .zip(&actions)
            .filter(|(node, action)| {
                !node.selected && matches!(action, Action::Build | Action::Import)
            })
            .map(|(node, _)| (node.id.clone(), node.key.clone()))
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingAncestors { missing });
        }
    }

    // Nodes with the same key: the first makes the image, the others wait for it.
    let mut first: HashMap<&str, usize> = HashMap::new();
    for i in plan.order_indexes() {
        if matches!(actions[i], Action::Build | Action::Import | Action::Pull) {
            match first.get(plan.nodes[i].key.as_str()) {
                Some(&twin) => actions[i] = Action::Twin(twin),
                None => {
                    first.insert(&plan.nodes[i].key, i);
                }
            }
        }
    }

    // Cached selected nodes: names that point elsewhere are pointed at the key's image.
    let mut retags = Vec::new();
    for (node, action) in plan.nodes.iter().zip(&actions) {
        if *action != Action::Cached {
            continue;
        }
        let id = images.get(&node.cache_tag);
        for image in node.images.iter().filter(|image| images.get(*image) != id) {
            retags.push(DockerCommand::docker(&["tag", &node.cache_tag, image]));
        }
    }
    Ok(Decided {
        actions,
        retags,
        digests,
    })
}
