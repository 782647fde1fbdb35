//! Publishing: `tag`, `push` and `put-shared`, bashbrew's commands with its flags and
//! semantics, plus the push that `build --push` runs after each node.
//!
//! Each architecture's images go to a target namespace: `--arch-namespace ARCH=NS`
//! (BASHBREW_ARCH_NAMESPACES) for that architecture, else `--target-namespace`, else
//! `--namespace`. Invariants: registry state is read with one query per distinct reference,
//! all queries concurrently, before anything is changed; a tag whose registry image already
//! equals the local one is not pushed, and a manifest list whose members are unchanged is not
//! put, unless `--force`; shared tags are never pushed directly, only put as lists; every
//! failure is collected and reported at the end (exit 1), never only the first; `--dry-run`
//! prints the exact commands and runs none (it still reads the registry, as bashbrew does).
//! A tag whose registry cannot be reached at all is not pushed: it fails with that reason
//! (an answer keg cannot use, e.g. an auth scheme, still lets docker try). Registry queries,
//! pushes and list puts that fail for a transient reason (a connection, a 5xx) are tried
//! again up to `--retries` times, each retry printed; every docker call has a time limit;
//! Ctrl-C during the registry queries ends keg at once ([`interrupt::abortable`]).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::AtomicBool;

use crate::config::Config;
use crate::docker::DockerCommand;
use crate::error::Error;
use crate::interrupt;
use crate::library::Repo;
use crate::plan::{Node, Plan};
use crate::process;
use crate::registry::{self, QUERY_THREADS, Registry, concurrently};
use crate::retry::{self, Retry};

/// How long one `docker push` or `imagetools create` may take.
const PUSH_LIMIT: std::time::Duration = process::TRANSFER_LIMIT;
/// How long one `docker tag` may take.
const TAG_LIMIT: std::time::Duration = process::QUERY_LIMIT;
/// Pushes in flight at once (each `docker push` already uploads layers in parallel).
const PUSH_THREADS: usize = 4;

/// Where each architecture's images are tagged and pushed.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// `--target-namespace`, else `--namespace`.
    pub default: Option<String>,
    /// `--arch-namespace ARCH=NS`.
    pub per_arch: BTreeMap<String, String>,
}

impl Targets {
    /// Validates `--target-namespace`, `--namespace` and `--arch-namespace` values.
    pub fn new(
        target_namespace: Option<&str>,
        namespace: &str,
        arch_namespaces: &[String],
    ) -> Result<Targets, Error> {
        let clean = |ns: &str| ns.trim().trim_matches('/').to_string();
        let default = target_namespace
            .map(clean)
            .filter(|ns| !ns.is_empty())
            .or_else(|| Some(clean(namespace)).filter(|ns| !ns.is_empty()));
        Ok(Targets {
            default,
            per_arch: parse_arch_namespaces(arch_namespaces)?,
        })
    }

    /// The namespace `arch`'s images go to.
    pub fn for_arch(&self, arch: &str) -> Option<&str> {
        self.per_arch
            .get(arch)
            .or(self.default.as_ref())
            .map(String::as_str)
    }

    /// Checks that every architecture has a namespace and that no two architectures share
    /// one (their images would overwrite each other's tags).
    pub fn check(&self, arches: &[String], command: &str) -> Result<(), Error> {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for arch in arches {
            let Some(ns) = self.for_arch(arch) else {
                return Err(Error::Flags(format!(
                    "`{command}` needs a target namespace for {arch}: --target-namespace NS or --arch-namespace {arch}=NS"
                )));
            };
            if let Some(other) = seen.insert(ns, arch) {
                return Err(Error::Flags(format!(
                    "{other} and {arch} would both go to {ns}: give each architecture its own namespace with --arch-namespace ARCH=NS"
                )));
            }
        }
        Ok(())
    }
}

/// Parses `ARCH=NS` items (BASHBREW_ARCH_NAMESPACES is `amd64 = ns, arm64v8 = ns`).
pub fn parse_arch_namespaces(items: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for item in items.iter().filter(|i| !i.trim().is_empty()) {
        let parsed = item
            .split_once('=')
            .map(|(a, ns)| (a.trim(), ns.trim().trim_matches('/')))
            .filter(|(a, ns)| crate::arch::is_known(a) && !ns.is_empty());
        let Some((arch, ns)) = parsed else {
            return Err(Error::Usage {
                option: "--arch-namespace",
                value: item.clone(),
                expected: format!(
                    "expected ARCH=NAMESPACE with ARCH one of {}",
                    crate::arch::names().collect::<Vec<_>>().join(", ")
                ),
            });
        };
        out.insert(arch.to_string(), ns.to_string());
    }
    Ok(out)
}

/// `NS/repo` (bashbrew's `path.Join`).
fn join(namespace: &str, repo: &str) -> String {
    if namespace.is_empty() {
        repo.to_string()
    } else {
        format!("{namespace}/{repo}")
    }
}

/// Ctrl-C and SIGTERM stop the docker children (each in its own process group) and the run.
fn interruptible() -> &'static AtomicBool {
    interrupt::install()
}

fn check_interrupted() -> Result<(), Error> {
    interrupt::check()
}

/// The end of a command: interrupted, every failure at once (exit 1), or Ok.
fn finished(action: &'static str, failures: Vec<String>) -> Result<(), Error> {
    check_interrupted()?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::PublishFailed { action, failures })
    }
}

/// What `tag` and `push` do.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub targets: Targets,
    pub dry_run: bool,
    pub force: bool,
    pub uniq: bool,
    /// `--retries`: attempts of a push after a transient failure.
    pub retries: u32,
}

/// The local image a node's tags come from: its cache tag when built, else `[ns/]repo:tag`.
fn source_image(config: &Config, node: &Node, tag: &str) -> String {
    if node.built == Some(true) {
        node.cache_tag.clone()
    } else {
        format!("{}:{tag}", config.image_repo(&node.repo))
    }
}

/// `keg tag`: tags every node's tags and shared tags as `TARGET/repo:tag`. A node whose
/// image is only in its registry cache repo (built by a pool) is pulled by key first.
pub fn tag(
    config: &Config,
    plan: &Plan,
    images: &HashMap<String, String>,
    options: &PublishOptions,
    registry: &Registry,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let mut failures = Vec::new();
    let cancel = interruptible();
    let remote = in_registry(plan, registry, true);
    let mut images = images.clone();
    for i in plan.order_indexes() {
        let node = &plan.nodes[i];
        let Some(ns) = options.targets.for_arch(&node.arch) else {
            continue;
        };
        let pulled;
        let node = if remote.contains_key(&i) {
            let pull = DockerCommand::docker(&["pull", &node.cache_tag]);
            if options.dry_run {
                writeln!(out, "  {}", pull.display()).map_err(Error::Output)?;
            } else if let Err(reason) = process::run(&pull, None, cancel, Some(PUSH_LIMIT)) {
                failures.push(format!("{}: {reason}", node.cache_tag));
                continue;
            } else if let Some(id) = crate::docker::Engine::image_id(&node.cache_tag) {
                images.insert(node.cache_tag.clone(), id);
            }
            let mut copy = node.clone();
            copy.built = Some(true);
            pulled = copy;
            &pulled
        } else {
            node
        };
        let mut tags: Vec<&String> = node.tags.iter().chain(&node.shared_tags).collect();
        if options.uniq {
            tags.truncate(1);
        }
        for tag in tags {
            check_interrupted()?;
            let source = source_image(config, node, tag);
            let target = format!("{}:{tag}", join(ns, &node.repo));
            writeln!(out, "Tagging {target}").map_err(Error::Output)?;
            let cmd = DockerCommand::docker(&["tag", &source, &target]);
            if options.dry_run {
                writeln!(out, "  {}", cmd.display()).map_err(Error::Output)?;
            } else if !images.contains_key(&target) || images.get(&target) != images.get(&source) {
                out.flush().map_err(Error::Output)?;
                if let Err(reason) = process::run(&cmd, None, cancel, Some(TAG_LIMIT)) {
                    failures.push(format!("{target}: {reason}"));
                }
            }
        }
    }
    finished("tagging", failures)
}

/// One tag to push: the target reference and the local image it must point at.
#[derive(Debug, Clone)]
pub struct PushItem {
    pub target: String,
    /// The reference the target is tagged from.
    pub source: String,
    /// The local image id, None when there is no local image.
    pub image: Option<String>,
}

/// The tags `push` pushes for a node: its Tags (never SharedTags), first only with `uniq`.
pub fn push_items(
    config: &Config,
    node: &Node,
    namespace: &str,
    uniq: bool,
    images: &HashMap<String, String>,
) -> Vec<PushItem> {
    let take = if uniq { 1 } else { node.tags.len() };
    node.tags
        .iter()
        .take(take)
        .map(|tag| {
            let source = source_image(config, node, tag);
            PushItem {
                target: format!("{}:{tag}", join(namespace, &node.repo)),
                image: images.get(&source).cloned(),
                source,
            }
        })
        .collect()
}

/// `keg push`: tags and pushes every node's tags, skipping those the registry already has.
pub fn push(
    config: &Config,
    plan: &Plan,
    images: &HashMap<String, String>,
    options: &PublishOptions,
    registry: &Registry,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Error> {
    // Nodes whose key is in a registry cache repo (every node a pool built, and every node
    // built with a registry --cache-repo): their tags are made there from that image by
    // digest (`docker buildx imagetools create`), so a tag is exactly the image of record
    // and nothing is pulled or uploaded again.
    let remote = in_registry(plan, registry, false);
    for retry in registry::take_retries() {
        writeln!(err, "retry   {retry}").map_err(Error::Output)?;
    }
    let mut items = Vec::new();
    let mut copies: Vec<(String, String)> = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        let Some(ns) = options.targets.for_arch(&node.arch) else {
            continue;
        };
        let node_items = push_items(config, node, ns, options.uniq, images);
        match remote.get(&i) {
            Some(digest) => {
                let repo = node.cache_tag.rsplit_once(':').map_or("", |(r, _)| r);
                let image = format!("{repo}@{digest}");
                copies.extend(
                    node_items
                        .into_iter()
                        .map(|item| (item.target, image.clone())),
                );
            }
            None => items.extend(node_items),
        }
    }
    let report = push_all(&items, images, options, registry, out, err)?;
    for (i, retry) in &report.retries {
        writeln!(err, "retry   {}: {retry}", items[*i].target).map_err(Error::Output)?;
    }
    let mut failures: Vec<String> = report.failures.iter().map(|f| f.describe(&items)).collect();
    failures.extend(copy_all(&copies, options, registry, out, err)?);
    finished("pushing", failures)
}

/// The nodes whose cache repo is a registry that has their key (only those the local
/// engine lacks with `missing_locally`): node index -> digest, one query each, all at once.
pub fn in_registry(
    plan: &Plan,
    registry: &Registry,
    missing_locally: bool,
) -> HashMap<usize, String> {
    let wanted: Vec<usize> = (0..plan.nodes.len())
        .filter(|&i| {
            let node = &plan.nodes[i];
            (!missing_locally || node.built != Some(true))
                && node
                    .cache_tag
                    .rsplit_once(':')
                    .is_some_and(|(repo, _)| crate::docker::in_registry(repo))
        })
        .collect();
    let references: Vec<String> = wanted
        .iter()
        .map(|&i| plan.nodes[i].cache_tag.clone())
        .collect();
    let answers = interrupt::abortable(|| registry.manifests(&references));
    wanted
        .into_iter()
        .zip(answers)
        .filter_map(|(i, answer)| Some((i, answer.ok()??.digest)))
        .collect()
}

/// `push` of tags whose image is in the registry: `imagetools create -t TARGET IMAGE@DIGEST`
/// unless the target already has that digest. Returns the failures.
fn copy_all(
    copies: &[(String, String)],
    options: &PublishOptions,
    registry: &Registry,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Vec<String>, Error> {
    let cancel = interruptible();
    let mut failures = Vec::new();
    let targets: Vec<String> = copies.iter().map(|(t, _)| t.clone()).collect();
    // What each target holds: its digest and its members' (imagetools create wraps one
    // manifest in an index).
    let answers: Vec<Result<Vec<String>, registry::RegistryError>> = if options.force {
        copies.iter().map(|_| Ok(Vec::new())).collect()
    } else {
        let answers = interrupt::abortable(|| registry.manifests(&targets));
        for retry in registry::take_retries() {
            writeln!(err, "retry   {retry}").map_err(Error::Output)?;
        }
        answers
            .into_iter()
            .map(|a| {
                a.map(|found| match found {
                    Some(m) => std::iter::once(m.digest)
                        .chain(m.manifests.into_iter().map(|d| d.digest))
                        .collect(),
                    None => Vec::new(),
                })
            })
            .collect()
    };
    for ((target, image), found) in copies.iter().zip(answers) {
        check_interrupted()?;
        let digest = image.rsplit_once('@').map_or("", |(_, d)| d);
        let found = match found {
            Err(reason) if reason.unreachable() => {
                failures.push(format!("{target}: the registry is unreachable: {reason}"));
                continue;
            }
            Err(_) => Vec::new(),
            Ok(found) => found,
        };
        if found.iter().any(|d| d == digest) {
            writeln!(err, "skipping {target} (remote image matches local)")
                .map_err(Error::Output)?;
            continue;
        }
        writeln!(out, "Pushing {target}").map_err(Error::Output)?;
        let cmd = DockerCommand::docker(&["buildx", "imagetools", "create", "-t", target, image]);
        if options.dry_run {
            writeln!(out, "  {}", cmd.display()).map_err(Error::Output)?;
            continue;
        }
        out.flush().map_err(Error::Output)?;
        let mut noted = Vec::new();
        let copied = retry::run(
            options.retries,
            cancel,
            &format!("of `{}`", cmd.display()),
            |reason: &String| retry::transient(reason),
            |r| noted.push(r),
            || process::run(&cmd, None, cancel, Some(PUSH_LIMIT)),
        );
        for retry in noted {
            writeln!(err, "retry   {target}: {retry}").map_err(Error::Output)?;
        }
        if let Err(reason) = copied {
            failures.push(format!("{target}: {reason}"));
        }
    }
    Ok(failures)
}

/// A tag that could not be pushed: its index in the items, and why.
#[derive(Debug, Clone)]
pub struct PushFailure {
    pub item: usize,
    pub reason: String,
}

impl PushFailure {
    /// `target: reason`.
    pub fn describe(&self, items: &[PushItem]) -> String {
        format!("{}: {}", items[self.item].target, self.reason)
    }
}

/// What [`push_all`] did not manage, and what it had to try again.
#[derive(Debug, Default)]
pub struct PushReport {
    pub failures: Vec<PushFailure>,
    /// Retries of registry queries and pushes, by index into the items, in order.
    pub retries: Vec<(usize, Retry)>,
}

/// Pushes `items`: one registry query each (all at once), then the pushes that are needed.
/// Returns the failures and retries, by index into `items`; prints `Tagging`, `Pushing`
/// and `skipping` lines as bashbrew does.
pub fn push_all(
    items: &[PushItem],
    images: &HashMap<String, String>,
    options: &PublishOptions,
    registry: &Registry,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<PushReport, Error> {
    let mut failures = Vec::new();
    let mut retries: Vec<(usize, Retry)> = Vec::new();
    let cancel = interruptible();
    let remote: Vec<Option<Result<Vec<String>, registry::RegistryError>>> = if options.force {
        items.iter().map(|_| None).collect()
    } else {
        let answers = interrupt::abortable(|| {
            concurrently(items, QUERY_THREADS, |item| {
                let answer = registry.image_identities(&item.target);
                (answer, registry::take_retries())
            })
        });
        answers
            .into_iter()
            .enumerate()
            .map(|(i, (answer, noted))| {
                retries.extend(noted.into_iter().map(|r| (i, r)));
                Some(answer)
            })
            .collect()
    };
    let mut to_push: Vec<usize> = Vec::new();
    for (i, (item, remote)) in items.iter().zip(remote).enumerate() {
        let Some(image) = &item.image else {
            failures.push(PushFailure {
                item: i,
                reason: format!("there is no local image {} (build it first)", item.source),
            });
            continue;
        };
        match remote {
            Some(Ok(ids)) if ids.contains(image) => {
                writeln!(err, "skipping {} (remote image matches local)", item.target)
                    .map_err(Error::Output)?;
                continue;
            }
            Some(Err(reason)) if reason.unreachable() => {
                // A push would hang or fail the same way: the reason is the registry's.
                failures.push(PushFailure {
                    item: i,
                    reason: format!("the registry is unreachable: {reason}"),
                });
                continue;
            }
            Some(Err(reason)) => {
                writeln!(
                    err,
                    "warning: cannot ask the registry about {reason}; pushing"
                )
                .map_err(Error::Output)?;
            }
            _ => {}
        }
        if images.get(&item.target) != Some(image) {
            let cmd = DockerCommand::docker(&["tag", &item.source, &item.target]);
            writeln!(out, "Tagging {}", item.target).map_err(Error::Output)?;
            if options.dry_run {
                writeln!(out, "  {}", cmd.display()).map_err(Error::Output)?;
            } else if let Err(reason) = process::run(&cmd, None, cancel, Some(TAG_LIMIT)) {
                failures.push(PushFailure { item: i, reason });
                continue;
            }
        }
        writeln!(out, "Pushing {}", item.target).map_err(Error::Output)?;
        if options.dry_run {
            let cmd = DockerCommand::docker(&["push", &item.target]);
            writeln!(out, "  {}", cmd.display()).map_err(Error::Output)?;
        } else {
            to_push.push(i);
        }
    }
    out.flush().map_err(Error::Output)?;
    // The tags of one repository one after another (the first uploads the blobs, the rest
    // only their manifests; and registries race on concurrent writes of one manifest),
    // repositories at once.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in to_push {
        let repository = |i: usize| {
            let target = &items[i].target;
            target.rsplit_once(':').map_or(target.as_str(), |(r, _)| r)
        };
        match groups
            .iter_mut()
            .find(|g| repository(g[0]) == repository(i))
        {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    let results = concurrently(&groups, PUSH_THREADS, |group| {
        let mut failed = Vec::new();
        let mut noted = Vec::new();
        for &i in group {
            let push = DockerCommand::docker(&["push", &items[i].target]);
            let pushed = retry::run(
                options.retries,
                cancel,
                &format!("of `{}`", push.display()),
                |reason: &String| retry::transient(reason),
                |r| noted.push((i, r)),
                || process::run(&push, None, cancel, Some(PUSH_LIMIT)),
            );
            if let Err(reason) = pushed {
                failed.push(PushFailure { item: i, reason });
            }
        }
        (failed, noted)
    });
    for (failed, noted) in results {
        failures.extend(failed);
        retries.extend(noted);
    }
    check_interrupted()?;
    failures.sort_by_key(|f| f.item);
    Ok(PushReport { failures, retries })
}

/// What `put-shared` does.
#[derive(Debug, Clone)]
pub struct SharedOptions {
    /// `--target-namespace`, else `--namespace`.
    pub target_namespace: String,
    pub arch_namespaces: BTreeMap<String, String>,
    pub single_arch: bool,
    pub dry_run: bool,
    pub force: bool,
    /// `--retries`: attempts of a registry query or a list put after a transient failure.
    pub retries: u32,
}

/// One manifest list to put: its tags and the per-architecture images it joins.
struct Group {
    target_repo: String,
    tags: Vec<String>,
    members: Vec<String>,
}

/// `keg put-shared`: one manifest list per entry (its Tags) and per shared-tag group, from
/// the per-architecture images `ARCH-NS/repo:first-tag`, with `docker buildx imagetools
/// create`; lists whose members are unchanged are skipped.
pub fn put_shared(
    config: &Config,
    repos: &[Repo],
    options: &SharedOptions,
    registry: &Registry,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Error> {
    let mut groups: Vec<Group> = Vec::new();
    for repo in repos {
        let target_repo = join(&options.target_namespace, &repo.name);
        let mut entry_groups: Vec<(Vec<String>, Vec<&crate::manifest::Entry>)> = Vec::new();
        if !options.single_arch {
            for entry in repo.entries() {
                entry_groups.push((entry.tags.clone(), vec![entry]));
            }
        }
        if repo.tag.is_none() {
            for group in repo.manifest.shared_tag_groups() {
                let entries = group
                    .entries
                    .iter()
                    .map(|&i| &repo.manifest.entries[i])
                    .collect();
                entry_groups.push((group.shared_tags, entries));
            }
        } else {
            writeln!(
                err,
                "warning: a single tag was requested -- skipping SharedTags"
            )
            .map_err(Error::Output)?;
        }
        for (tags, entries) in entry_groups {
            let mut members = Vec::new();
            for entry in entries {
                for arch in &entry.architectures {
                    if options.single_arch && *arch != config.arch {
                        continue;
                    }
                    let Some(ns) = options.arch_namespaces.get(arch) else {
                        writeln!(
                            err,
                            "warning: no arch-namespace specified for {arch:?}; skipping ({:?})",
                            repo.entry_id(entry)
                        )
                        .map_err(Error::Output)?;
                        continue;
                    };
                    members.push(format!("{}:{}", join(ns, &repo.name), entry.tags[0]));
                }
            }
            groups.push(Group {
                target_repo: target_repo.clone(),
                tags,
                members,
            });
        }
    }

    // Every registry question at once: each member and, unless --force, each target tag.
    let mut refs: Vec<String> = Vec::new();
    for group in &groups {
        refs.extend(group.members.iter().cloned());
        if !options.force {
            refs.extend(
                group
                    .tags
                    .iter()
                    .map(|t| format!("{}:{t}", group.target_repo)),
            );
        }
    }
    refs.sort();
    refs.dedup();
    let asked = interrupt::abortable(|| {
        concurrently(&refs, QUERY_THREADS, |r| {
            (registry.manifest_digests(r), registry::take_retries())
        })
    });
    let mut answers: HashMap<&String, Result<Vec<String>, registry::RegistryError>> =
        HashMap::new();
    for (reference, (answer, retries)) in refs.iter().zip(asked) {
        for retry in retries {
            writeln!(err, "retry   {reference}: {retry}").map_err(Error::Output)?;
        }
        answers.insert(reference, answer);
    }
    let digests = |r: &String| -> Vec<String> {
        let mut d = answers
            .get(r)
            .and_then(|a| a.as_ref().ok())
            .cloned()
            .unwrap_or_default();
        d.sort();
        d
    };

    let mut failures = Vec::new();
    let cancel = interruptible();
    for group in &groups {
        check_interrupted()?;
        let first = format!("{}:{}", group.target_repo, group.tags[0]);
        if group.members.is_empty() {
            writeln!(err, "skipping {first} (nothing to push)").map_err(Error::Output)?;
            continue;
        }
        let mut expected: Vec<String> = Vec::new();
        let mut sources: Vec<String> = Vec::new();
        let mut unanswered: Vec<String> = Vec::new();
        for member in &group.members {
            if let Some(Err(reason)) = answers.get(member) {
                writeln!(err, "warning: {reason}").map_err(Error::Output)?;
                unanswered.push(if reason.unreachable() {
                    format!("the registry is unreachable: {reason}")
                } else {
                    reason.to_string()
                });
            }
            let found = digests(member);
            if found.len() != 1 {
                writeln!(
                    err,
                    "warning: expected 1 image for {member:?}; got {}",
                    found.len()
                )
                .map_err(Error::Output)?;
            }
            let repo = member.rsplit_once(':').map_or(member.as_str(), |(r, _)| r);
            sources.extend(found.iter().map(|d| format!("{repo}@{d}")));
            expected.extend(found);
        }
        expected.sort();
        if !unanswered.is_empty() {
            // Without every member's answer, a list would leave out images that may exist.
            failures.push(format!(
                "{first}: cannot ask the registry about its images: {}",
                unanswered.join("; ")
            ));
            continue;
        }
        if expected.is_empty() {
            failures.push(format!(
                "{first}: none of its images is in the registry ({})",
                group.members.join(", ")
            ));
            continue;
        }
        let mut tags: Vec<&String> = Vec::new();
        for tag in &group.tags {
            let image = format!("{}:{tag}", group.target_repo);
            if !options.force && digests(&image) == expected {
                writeln!(
                    err,
                    "skipping {image} ({} remote digests up-to-date)",
                    expected.len()
                )
                .map_err(Error::Output)?;
                continue;
            }
            tags.push(tag);
        }
        let Some(first_tag) = tags.first() else {
            continue;
        };
        let id = format!("{}:{first_tag}", group.target_repo);
        writeln!(out, "Putting {id}").map_err(Error::Output)?;
        let mut argv: Vec<String> = vec!["buildx".into(), "imagetools".into(), "create".into()];
        for tag in &tags {
            argv.extend(["-t".into(), format!("{}:{tag}", group.target_repo)]);
        }
        argv.extend(sources);
        let cmd = DockerCommand::docker(&argv.iter().map(String::as_str).collect::<Vec<_>>());
        if options.dry_run {
            writeln!(out, "  {}", cmd.display()).map_err(Error::Output)?;
            continue;
        }
        out.flush().map_err(Error::Output)?;
        let mut noted = Vec::new();
        let put = retry::run(
            options.retries,
            cancel,
            &format!("of putting {id}"),
            |reason: &String| retry::transient(reason),
            |r| noted.push(r),
            || process::run(&cmd, None, cancel, Some(PUSH_LIMIT)),
        );
        for retry in noted {
            writeln!(err, "retry   {id}: {retry}").map_err(Error::Output)?;
        }
        if let Err(reason) = put {
            writeln!(
                err,
                "warning: failed putting {id}, skipping (collecting errors)"
            )
            .map_err(Error::Output)?;
            failures.push(format!("{id}: {reason}"));
        }
    }
    finished("putting groups", failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_namespaces_parse_like_bashbrew_env() {
        let items: Vec<String> = "amd64 = 127.0.0.1:5000/amd64, arm64v8=ns/arm64v8/"
            .split(',')
            .map(str::to_string)
            .collect();
        let parsed = parse_arch_namespaces(&items).unwrap();
        assert_eq!(parsed["amd64"], "127.0.0.1:5000/amd64");
        assert_eq!(parsed["arm64v8"], "ns/arm64v8");
        for bad in ["amd64", "arm64=ns", "amd64=", "=ns"] {
            let err = parse_arch_namespaces(&[bad.to_string()]).unwrap_err();
            assert!(err.to_string().contains("ARCH=NAMESPACE"), "{bad}: {err}");
        }
    }

    #[test]
    fn targets_need_one_namespace_per_architecture() {
        let arches = vec!["amd64".to_string(), "arm64v8".to_string()];
        let one = Targets::new(Some("ns"), "", &[]).unwrap();
        assert_eq!(one.for_arch("arm64v8"), Some("ns"));
        assert!(one.check(&arches[..1], "push").is_ok());
        let err = one.check(&arches, "push").unwrap_err().to_string();
        assert!(
            err.contains("amd64 and arm64v8 would both go to ns"),
            "{err}"
        );
        let per_arch = Targets::new(None, "lib", &["arm64v8=arm".to_string()]).unwrap();
        assert_eq!(per_arch.for_arch("amd64"), Some("lib"));
        assert!(per_arch.check(&arches, "push").is_ok());
        let none = Targets::new(None, "", &[]).unwrap();
        let err = none.check(&arches[..1], "push").unwrap_err().to_string();
        assert!(err.contains("needs a target namespace for amd64"), "{err}");
    }
}
