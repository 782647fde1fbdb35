//! Commands about parents and children: `from`, `parents`, `children`, and the build order
//! of `list --build-order` (bashbrew's `cmd-from.go`, `cmd-parents.go`, `cmd-children.go`
//! and `sort.go`).
//!
//! Invariant: stdout matches bashbrew's for the same library, arguments and options; walks
//! over parents and children visit each image at most once per level and stop at `--depth`,
//! so a cycle can never make them loop forever.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use crate::error::Error;
use crate::library::Repo;
use crate::manifest::Entry;
use crate::order::Network;
use crate::query::{SkipNotes, entry_tags};
use crate::session::Session;

/// Which entries and architectures a command looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    pub apply_constraints: bool,
    pub arch_filter: bool,
}

impl Filter {
    fn filtered(self) -> bool {
        self.apply_constraints || self.arch_filter
    }

    /// True when the entry is left out (printing bashbrew's skip message once).
    fn skips(self, session: &Session, notes: &mut SkipNotes, repo: &Repo, entry: &Entry) -> bool {
        (self.apply_constraints && notes.skips(&session.config, repo, entry))
            || (self.arch_filter && !entry.has_architecture(&session.config.arch))
    }
}

fn io_error(e: io::Error) -> Error {
    Error::Output(e)
}

/// `keg from`: `repo:tag: parent parent` for every tag of every selected entry.
pub fn from(
    session: &Session,
    repos: &[Repo],
    uniq: bool,
    filter: Filter,
    out: &mut impl Write,
) -> Result<(), Error> {
    let mut notes = SkipNotes::default();
    for repo in repos {
        for entry in repo.entries() {
            if filter.skips(session, &mut notes, repo, entry) {
                continue;
            }
            let arches = session.entry_arches(entry, filter.filtered());
            let froms = session.froms(repo, entry, &arches)?.join(" ");
            for tag in entry_tags(&session.config, repo, entry, uniq) {
                writeln!(out, "{tag}: {froms}").map_err(io_error)?;
            }
        }
    }
    Ok(())
}

/// `keg parents`: the parents of each argument, level by level up to `depth` (0: all).
pub fn parents(
    session: &mut Session,
    args: &[String],
    depth: usize,
    uniq: bool,
    filter: Filter,
    out: &mut impl Write,
) -> Result<(), Error> {
    if args.is_empty() {
        return Err(Error::NoRepos);
    }
    let mut notes = SkipNotes::default();
    let mut seen = HashSet::new();
    for arg in args {
        let mut lookup = vec![arg.clone()];
        let mut lookup_arches: Vec<String> = Vec::new();
        let mut level = 0;
        let mut visited: HashSet<String> = HashSet::new();
        // As bashbrew: de-duplicated within a level only. Without a cycle no walk is deeper
        // than the number of distinct images seen; with one, that bound ends it.
        while !lookup.is_empty() && (depth == 0 || level < depth) && level <= visited.len() {
            let mut next: Vec<String> = Vec::new();
            for name in &lookup {
                visited.insert(name.clone());
                let repo = match session.lookup(name)? {
                    Some(repo) => repo,
                    None if level > 0 => continue,
                    None => {
                        // The top-level argument must exist: report why it does not.
                        crate::library::load(&session.config.library, std::slice::from_ref(name))?;
                        continue;
                    }
                };
                for entry in repo.entries() {
                    if filter.skips(session, &mut notes, &repo, entry) {
                        continue;
                    }
                    if level == 0 {
                        for arch in session.entry_arches(entry, filter.filtered()) {
                            if !lookup_arches.contains(&arch) {
                                lookup_arches.push(arch);
                            }
                        }
                    }
                    let arches: Vec<String> = lookup_arches
                        .iter()
                        .filter(|a| entry.has_architecture(a))
                        .cloned()
                        .collect();
                    let froms = session.froms(&repo, entry, &arches)?;
                    for from in froms.into_iter().filter(|f| f != "scratch") {
                        if !next.contains(&from) {
                            next.push(from.clone());
                        }
                        if uniq && !seen.insert(from.clone()) {
                            continue;
                        }
                        writeln!(out, "{from}").map_err(io_error)?;
                    }
                }
            }
            lookup = next;
            level += 1;
        }
    }
    Ok(())
}

/// `keg children`: the entries in the library built on each argument (an image reference,
/// a `repo:tag`, or a repository), level by level up to `depth` (0: all).
pub fn children(
    session: &Session,
    all: &[Repo],
    args: &[String],
    depth: usize,
    uniq: bool,
    filter: Filter,
    out: &mut impl Write,
) -> Result<(), Error> {
    if args.is_empty() {
        return Err(Error::NoRepos);
    }
    let config = &session.config;
    let mut notes = SkipNotes::default();
    // Canonical tags (every tag -> the entry's first tag) and each tag's architectures.
    let mut canonical: HashMap<String, String> = HashMap::new();
    let mut arches: Ordered = Ordered::default();
    let mut selected: Vec<(&Repo, &Entry)> = Vec::new();
    for repo in all {
        for entry in repo.entries() {
            if filter.skips(session, &mut notes, repo, entry) {
                continue;
            }
            let tags = entry_tags(config, repo, entry, false);
            for tag in &tags {
                canonical
                    .entry(tag.clone())
                    .or_insert_with(|| tags[0].clone());
            }
            for arch in session.entry_arches(entry, filter.filtered()) {
                arches.add(&tags[0], &arch);
            }
            selected.push((repo, entry));
        }
    }
    let mut kids = Ordered::default();
    let mut repo_tags = Ordered::default();
    for (repo, entry) in selected {
        let ns_repo = config.image_repo(&repo.name);
        let tag = format!("{ns_repo}:{}", entry.tags[0]);
        repo_tags.add(&ns_repo, &tag);
        for arch in session.entry_arches(entry, filter.filtered()) {
            for from in session.source(repo, entry, &arch)?.froms() {
                let from = match canonical.get(&from) {
                    Some(canon) => canon.clone(),
                    None => {
                        arches.add(&from, &arch);
                        from
                    }
                };
                kids.add(&from, &tag);
                if let Some((from_repo, _)) = from.split_once(':') {
                    repo_tags.add(from_repo, &from);
                }
            }
        }
    }

    let mut seen = HashSet::new();
    for arg in args {
        let ns_arg = config.image_repo(arg);
        let tags: Vec<String> = if kids.has(arg) {
            vec![arg.clone()]
        } else if let Some(tag) = canonical.get(arg) {
            vec![tag.clone()]
        } else if repo_tags.has(&ns_arg) {
            repo_tags.get(&ns_arg).to_vec()
        } else if repo_tags.has(arg) {
            repo_tags.get(arg).to_vec()
        } else {
            return Err(Error::Unresolved { arg: arg.clone() });
        };
        for tag in tags {
            let supported = arches.get(&tag).to_vec();
            let mut lookup = vec![tag];
            let mut visited: HashSet<String> = HashSet::new();
            let mut level = 0;
            while !lookup.is_empty() && (depth == 0 || level < depth) && level <= visited.len() {
                let mut next = Vec::new();
                for tag in &lookup {
                    visited.insert(tag.clone());
                    for kid in kids.get(tag) {
                        if !arches.get(kid).iter().any(|a| supported.contains(a)) {
                            continue;
                        }
                        next.push(kid.clone());
                        if uniq && !seen.insert(kid.clone()) {
                            continue;
                        }
                        writeln!(out, "{kid}").map_err(io_error)?;
                    }
                }
                lookup = next;
                level += 1;
            }
        }
    }
    Ok(())
}

/// A map from a key to a de-duplicated list, both in insertion order.
#[derive(Default)]
struct Ordered {
    index: HashMap<String, usize>,
    lists: Vec<Vec<String>>,
}

impl Ordered {
    fn add(&mut self, key: &str, value: &str) {
        let i = *self.index.entry(key.to_string()).or_insert_with(|| {
            self.lists.push(Vec::new());
            self.lists.len() - 1
        });
        if !self.lists[i].iter().any(|v| v == value) {
            self.lists[i].push(value.to_string());
        }
    }

    fn has(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    fn get(&self, key: &str) -> &[String] {
        self.index.get(key).map_or(&[], |&i| &self.lists[i])
    }
}

/// A repository (or one entry of it) as a node of bashbrew's sort.
struct SortItem<'a> {
    repo: &'a Repo,
    /// The entries this node stands for.
    entries: Vec<&'a Entry>,
    /// `repo` or `repo:first-tag` (bashbrew's Identifier).
    name: String,
    /// Whether the node names a tag (preferred over a whole repository for duplicates).
    tagged: bool,
}

/// bashbrew's `sortRepoObjects`: the items in build order.
fn sort_items<'a>(
    session: &Session,
    items: Vec<SortItem<'a>>,
    apply_constraints: bool,
) -> Result<Vec<SortItem<'a>>, Error> {
    if session.config.no_sort || items.len() <= 1 {
        return Ok(items);
    }
    let config = &session.config;
    let mut net = Network::default();
    let mut canonical: HashMap<String, (usize, bool)> = HashMap::new();
    let mut node_of = Vec::with_capacity(items.len());
    for item in &items {
        let node = net.add_node(&item.name);
        node_of.push(node);
        for entry in &item.entries {
            // With and without the namespace, so `--namespace` still sorts official images.
            let plain = entry
                .tags
                .iter()
                .chain(&entry.shared_tags)
                .map(|t| format!("{}:{t}", item.repo.name));
            let spaced = entry_tags(config, item.repo, entry, false);
            for tag in plain.chain(spaced) {
                if canonical.get(&tag).is_some_and(|(_, tagged)| *tagged) {
                    continue;
                }
                canonical.insert(tag, (node, item.tagged));
            }
        }
    }
    let mut notes = SkipNotes::default();
    for item in &items {
        for entry in &item.entries {
            if apply_constraints && notes.skips(config, item.repo, entry) {
                continue;
            }
            let arches = session.entry_arches(entry, apply_constraints);
            for from in session.froms(item.repo, entry, &arches)? {
                let Some(&(from_node, _)) = canonical.get(&from) else {
                    continue;
                };
                for tag in entry_tags(config, item.repo, entry, false) {
                    if let Some(&(tag_node, _)) = canonical.get(&tag)
                        && tag_node != from_node
                    {
                        net.add_edge(from_node, tag_node);
                    }
                }
            }
        }
    }
    let order = net.sort().map_err(|cycle| Error::Cycle {
        cycle: cycle.to_string(),
    })?;
    // Several items may share a node name; bashbrew keeps the last value for a name.
    let mut by_node: HashMap<usize, usize> = HashMap::new();
    for (i, &node) in node_of.iter().enumerate() {
        by_node.insert(node, i);
    }
    let mut slots: Vec<Option<SortItem<'a>>> = items.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .filter_map(|node| by_node.get(&node).and_then(|&i| slots[i].take()))
        .collect())
}

/// The repositories in build order (bashbrew's `sortRepos`), entries untouched, as `cat
/// --build-order` sorts them. Duplicate arguments keep their first occurrence.
pub fn sort_repos(
    session: &Session,
    repos: &[Repo],
    apply_constraints: bool,
) -> Result<Vec<Repo>, Error> {
    let mut unique: Vec<&Repo> = Vec::new();
    for repo in repos {
        if !unique
            .iter()
            .any(|r| r.path == repo.path && r.tag == repo.tag)
        {
            unique.push(repo);
        }
    }
    let items: Vec<SortItem<'_>> = unique
        .iter()
        .map(|repo| SortItem {
            repo,
            entries: repo.entries().collect(),
            name: match &repo.tag {
                Some(_) => repo.entry_id(&repo.manifest.entries[repo.selected[0]]),
                None => repo.name.clone(),
            },
            tagged: repo.tag.is_some(),
        })
        .collect();
    let sorted = if repos.len() <= 1 {
        items
    } else {
        sort_items(session, items, apply_constraints)?
    };
    Ok(sorted.into_iter().map(|item| item.repo.clone()).collect())
}

/// The repositories in build order, each with its entries in build order (bashbrew's
/// `sortRepos` then `SortedEntries`). Duplicate arguments keep their first occurrence.
pub fn build_order(
    session: &Session,
    repos: &[Repo],
    apply_constraints: bool,
) -> Result<Vec<Repo>, Error> {
    let sorted = sort_repos(session, repos, apply_constraints)?;
    let mut out = Vec::with_capacity(sorted.len());
    for repo in &sorted {
        let entry_items: Vec<SortItem<'_>> = repo
            .selected
            .iter()
            .map(|&i| {
                let entry = &repo.manifest.entries[i];
                SortItem {
                    repo,
                    entries: vec![entry],
                    name: repo.entry_id(entry),
                    tagged: true,
                }
            })
            .collect();
        let entries = sort_items(session, entry_items, apply_constraints)?;
        let selected: Vec<usize> = entries
            .iter()
            .map(|item| {
                let target: *const Entry = item.entries[0];
                repo.manifest
                    .entries
                    .iter()
                    .position(|e| std::ptr::eq(e, target))
                    .unwrap_or(0)
            })
            .collect();
        out.push(Repo {
            selected,
            ..repo.clone()
        });
    }
    Ok(out)
}

/// `keg fetch`: every selected entry's commit into the git cache, in parallel.
pub fn fetch(session: &Session, repos: &[Repo], filter: Filter) -> Result<(), Error> {
    let mut notes = SkipNotes::default();
    let mut items = Vec::new();
    for repo in repos {
        for entry in repo.entries() {
            if filter.skips(session, &mut notes, repo, entry) {
                continue;
            }
            for arch in session.entry_arches(entry, filter.filtered()) {
                items.push((repo.entry_id(entry), entry, arch));
            }
        }
    }
    session.sources()?.resolve_all(&items)?;
    Ok(())
}
