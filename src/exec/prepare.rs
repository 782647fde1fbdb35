//! Before anything builds: the external parents of every architecture in place (pulled per
//! `--pull`, each under a per-platform alias), and the plan whose keys hash their image ids.
//!
//! Invariants: one `docker image ls` before and (only when something changed) one after;
//! the steps of one reference run in order (a pull, then the alias of what it pulled), the
//! steps of different references at once; a failed pull is recorded against its reference
//! and architecture, and only the nodes that need it fail; nothing changes in a dry run.

use std::collections::HashMap;

use rayon::prelude::*;

use super::{BuildOptions, Pull};
use crate::docker::{self, DockerCommand, Engine};
use crate::error::Error;
use crate::interrupt;
use crate::library::Repo;
use crate::plan::{self, Plan};
use crate::process;
use crate::report::Reporter;
use crate::session::Session;

/// How long one `docker pull` may take.
const PULL_LIMIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// The plan ready to run, with the engine's images it was made from.
pub struct Prepared {
    pub plan: Plan,
    pub images: HashMap<String, String>,
    /// `(arch, reference)` of external parents whose pull failed, and why.
    pub pull_failures: HashMap<(String, String), String>,
}

/// What happens to one external parent on one architecture before the builds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    arch: String,
    reference: String,
    platform: String,
    alias: String,
    /// `docker pull --platform P REF` first; else the name already holds this platform's
    /// image and only needs its alias.
    pull: bool,
}

impl Step {
    /// The pull (when wanted), then `docker tag REF ALIAS`.
    fn commands(&self) -> Vec<DockerCommand> {
        let mut out = Vec::new();
        if self.pull {
            out.push(DockerCommand::docker(&[
                "pull",
                "--platform",
                &self.platform,
                &self.reference,
            ]));
        }
        out.push(DockerCommand::docker(&[
            "tag",
            &self.reference,
            &self.alias,
        ]));
        out
    }
}

/// Lists the engine's images and plans with them; the external parents are not in place
/// yet ([`Prepared::place_parents`]).
pub fn plan(
    session: &Session,
    repos: &[Repo],
    options: &BuildOptions,
    engine: &Engine,
) -> Result<Prepared, Error> {
    // A first plan names every image the keys and steps look up; the engine is asked about
    // those alone (a full listing costs ~9 ms an image with the containerd image store).
    let named = options.make_plan(session, repos, &HashMap::new())?;
    let images = engine
        .images_of(&interest(&named, options))
        .map_err(|e| Error::Engine(e.to_string()))?;
    let plan = options.make_plan(session, repos, &images)?;
    Ok(Prepared {
        plan,
        images,
        pull_failures: HashMap::new(),
    })
}

impl Prepared {
    /// Brings the external parents in place (pulled per `--pull`, aliased per platform) and
    /// re-plans when that changed anything, so keys hash the images the builds will use. A
    /// dry run only prints the commands.
    pub fn place_parents(
        &mut self,
        session: &Session,
        repos: &[Repo],
        options: &BuildOptions,
        engine: &Engine,
        reporter: &Reporter,
    ) -> Result<(), Error> {
        let steps = steps(&self.plan, &self.images, options);
        if options.dry_run {
            for step in &steps {
                for command in step.commands() {
                    reporter.line(&format!("would run: {}", command.display()));
                }
            }
            return Ok(());
        }
        if steps.is_empty() {
            return Ok(());
        }
        // One group per reference: its architectures' steps one after another.
        let mut groups: Vec<Vec<&Step>> = Vec::new();
        for step in &steps {
            match groups.iter_mut().find(|g| g[0].reference == step.reference) {
                Some(group) => group.push(step),
                None => groups.push(vec![step]),
            }
            if step.pull {
                reporter.line(&format!("pull    {} ({})", step.reference, step.platform));
            }
        }
        let cancel = interrupt::install();
        let failures: Vec<((String, String), String)> = groups
            .par_iter()
            .flat_map_iter(|group| {
                let mut failed = Vec::new();
                for step in group {
                    for command in step.commands() {
                        let limit = Some(PULL_LIMIT);
                        if let Err(reason) = process::run(&command, None, cancel, limit) {
                            failed.push(((step.arch.clone(), step.reference.clone()), reason));
                            break;
                        }
                    }
                }
                failed
            })
            .collect();
        interrupt::check()?;
        self.pull_failures.extend(failures);
        // Keys use the pulled images' ids: final, not provisional.
        self.images = engine
            .images_of(&interest(&self.plan, options))
            .map_err(|e| Error::Engine(e.to_string()))?;
        self.plan = options.make_plan(session, repos, &self.images)?;
        Ok(())
    }
}

/// The image repositories a build looks up in the engine: the plan's
/// ([`crate::plan::engine_interest`]) and, with `--push`, each node's repository in every
/// target namespace.
fn interest(plan: &Plan, options: &BuildOptions) -> std::collections::BTreeSet<String> {
    let mut out = crate::plan::engine_interest(plan, &options.plan.cache_repo);
    if let Some(publish) = &options.publish {
        let namespaces: Vec<&String> = publish
            .targets
            .default
            .iter()
            .chain(publish.targets.per_arch.values())
            .collect();
        for node in &plan.nodes {
            for ns in &namespaces {
                out.insert(format!("{ns}/{}", node.repo));
            }
        }
    }
    out
}

/// The external parents to pull (per `--pull`) or to alias, per architecture. "Missing"
/// means: no image for the platform, neither under the alias nor under the name (one
/// `docker image inspect` for the platforms of the names).
fn steps(plan: &Plan, images: &HashMap<String, String>, options: &BuildOptions) -> Vec<Step> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for node in &plan.nodes {
        for parent in &node.parents {
            let item = (node.arch.clone(), parent.reference.clone());
            if parent.node.is_none() && parent.reference != "scratch" && !wanted.contains(&item) {
                wanted.push(item);
            }
        }
    }
    let mut present: Vec<&str> = wanted
        .iter()
        .map(|(_, r)| r.as_str())
        .filter(|r| images.contains_key(*r))
        .collect();
    present.sort_unstable();
    present.dedup();
    let platforms: HashMap<&str, String> = match Engine::platforms(&present) {
        Ok(platforms) => present.iter().copied().zip(platforms).collect(),
        Err(_) => HashMap::new(),
    };
    let mut out = Vec::new();
    for (arch, reference) in wanted.iter().cloned() {
        let platform = crate::arch::platform(&arch)
            .map(|p| p.to_string())
            .unwrap_or_default();
        let alias = plan::key::parent_alias(&options.plan.cache_repo, &arch, &reference);
        let have_alias = images.contains_key(&alias);
        let name_fits = platforms
            .get(reference.as_str())
            .is_some_and(|p| docker::platform_matches(p, &platform));
        let pull = match options.pull {
            Pull::Always => true,
            Pull::Missing => !have_alias && !name_fits,
            Pull::Never => false,
        };
        if pull || (!have_alias && name_fits) {
            out.push(Step {
                arch,
                reference,
                platform,
                alias,
                pull,
            });
        }
    }
    out
}
