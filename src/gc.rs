//! `keg gc`: upkeep of the git cache and of the engine's cache images.
//!
//! The git cache only ever grows while keg fetches: one pack per network fetch, one pin per
//! commit. `gc` keeps what the current library needs and packs it:
//! - it first plans the whole library on every architecture it names (which fetches and
//!   pins every commit a manifest names), so nothing the current plan needs can go;
//! - drops the pins of commits no manifest of the library names any more, pins whose
//!   commit cannot be read any more (a local mirror that disappeared), tracking refs of URLs
//!   no manifest uses, leftovers of killed processes (staging repositories, scratch refs,
//!   half-moved packs) and alternates whose directory is gone;
//! - then, with the `git` CLI, packs the refs and repacks everything still reachable into one
//!   pack (`git repack -a -d`) and prunes the rest. Packs hard-linked from a local mirror
//!   stay as they are (a `.keep`) while the mirror still has them, since sharing costs no
//!   space; once the mirror dropped them, what the pins need from them is repacked. Objects
//!   borrowed through alternates stay in the mirror (`-l`), unless `--dissociate` copies
//!   them in and forgets the mirrors.
//!
//! In the engine it removes `<cache-repo>:<key>` tags whose key is in no current plan,
//! except the `--keep N` most recent other builds of each node (a node being its repository,
//! Directory, File and architecture: the slot of its cache ref). keg appends one line per
//! build to `<cache>/built-keys.log` ([`record_built`]). A cache image with no record there
//! was not built with this cache (another library, another machine's keg sharing the
//! engine, or a record deleted): it is left alone, since keg cannot tell whose it is. Only
//! tags are removed (`docker image rm` without `--force`): an image that still has other
//! tags, or a container, stays.
//!
//! Invariants: `--dry-run` changes nothing and prints what would change; every git change
//! happens under the cache lock; a key of the current plan is never removed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::docker::Engine;
use crate::error::Error;
use crate::git::{self, GitCache, GitError};
use crate::library::Repo;
use crate::plan::{self, PlanOptions};
use crate::session::Session;

/// The record of builds, in the cache directory.
pub const BUILT_LOG: &str = "built-keys.log";

/// What `keg gc` does.
#[derive(Debug, Clone)]
pub struct GcOptions {
    pub dry_run: bool,
    /// Cache images of other builds kept per node, newest first.
    pub keep: usize,
    /// Copy objects borrowed through alternates into the cache and forget those mirrors.
    pub dissociate: bool,
    /// How the current plan is made (its architectures are replaced by every architecture
    /// of the library).
    pub plan: PlanOptions,
}

/// Appends `<unix time> <cache tag> <cache ref>` to `<cache>/built-keys.log`: which node
/// (slot) a cache key was built for, and when. One `write` of a short line in append mode,
/// so concurrent keg processes do not interleave.
pub fn record_built(cache_dir: &Path, cache_tag: &str, cache_ref: &str) {
    let line = format!("{} {cache_tag} {cache_ref}\n", now());
    let _ = std::fs::create_dir_all(cache_dir);
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cache_dir.join(BUILT_LOG))
    {
        let _ = file.write_all(line.as_bytes());
    }
}

/// Runs `keg gc` over `repos` (the whole library).
pub fn gc(
    session: &Session,
    repos: &[Repo],
    options: &GcOptions,
    out: &mut impl Write,
) -> Result<(), Error> {
    let engine = Engine::detect().ok();

    // The current plan: every entry on every architecture the library names. Making it
    // fetches and pins every commit it needs, before anything is dropped.
    let mut arches: Vec<String> = Vec::new();
    for repo in repos {
        for entry in repo.entries() {
            for arch in &entry.architectures {
                if !arches.contains(arch) {
                    arches.push(arch.clone());
                }
            }
        }
    }
    let arches: Vec<String> = crate::arch::names()
        .filter(|a| arches.iter().any(|x| x == a))
        .map(str::to_string)
        .collect();
    let plan_options = PlanOptions {
        arches,
        engine_platform: engine.as_ref().map(|e| e.platform.clone()),
        ..options.plan.clone()
    };
    let named = plan::make(session, repos, &plan_options, None)?;
    let images = match &engine {
        Some(engine) => Some(
            engine
                .images_of(&plan::engine_interest(&named, &plan_options.cache_repo))
                .map_err(|e| Error::Engine(e.to_string()))?,
        ),
        None => None,
    };
    let plan = match &images {
        Some(images) => plan::make(session, repos, &plan_options, Some(images))?,
        None => named,
    };

    let sources = session.sources()?;
    let mut commits: HashSet<String> = HashSet::new();
    let mut urls: HashSet<String> = HashSet::new();
    for repo in repos {
        for entry in repo.entries() {
            for arch in &entry.architectures {
                let (url, _, commit) = sources.fetch_target(entry, arch);
                urls.insert(git::url_hash(&url));
                commits.insert(commit);
            }
        }
    }
    let cache = sources.cache();
    let git_error = |what: &str, e: GitError| Error::Git {
        what: format!("gc of {}: {what}", cache.repo_path().display()),
        source: Box::new(e),
    };
    git_gc(cache, &commits, &urls, options, out).map_err(|e| git_error("git", e))?;

    match (&engine, &images) {
        (Some(_), Some(images)) => {
            let current: HashSet<&str> = plan.nodes.iter().map(|n| n.key.as_str()).collect();
            engine_gc(
                &session.config.cache,
                &plan_options.cache_repo,
                images,
                &current,
                options,
                out,
            )?;
        }
        _ => writeln!(
            out,
            "engine: no Docker engine answers; no cache image was looked at"
        )
        .map_err(Error::Output)?,
    }
    Ok(())
}

/// What the git cache holds, for the before / after line.
struct Footprint {
    packs: usize,
    pack_bytes: u64,
    loose_refs: usize,
}

fn footprint(repo: &Path) -> Footprint {
    let mut packs = 0;
    let mut pack_bytes = 0;
    if let Ok(dir) = std::fs::read_dir(repo.join("objects/pack")) {
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pack") {
                packs += 1;
            }
            pack_bytes += entry.metadata().map_or(0, |m| m.len());
        }
    }
    Footprint {
        packs,
        pack_bytes,
        loose_refs: count_files(&repo.join("refs")),
    }
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .map(|e| {
                let path = e.path();
                if path.is_dir() { count_files(&path) } else { 1 }
            })
            .sum()
    })
}

fn git_gc(
    cache: &GitCache,
    commits: &HashSet<String>,
    urls: &HashSet<String>,
    options: &GcOptions,
    out: &mut impl Write,
) -> Result<(), GitError> {
    let started = Instant::now();
    let path = cache.repo_path().to_owned();
    let _lock = cache.lock()?;
    cache.finish_interrupted_link();
    let before = footprint(&path);
    let repo = git2::Repository::open_bare(&path).map_err(cache.err())?;

    // Refs to drop, with why.
    let mut drop: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut pins = 0usize;
    for reference in repo.references_glob("refs/keg/*").map_err(cache.err())? {
        let reference = reference.map_err(cache.err())?;
        let Ok(name) = reference.name().map(str::to_owned) else {
            continue;
        };
        if let Some(id) = name.strip_prefix(git::PIN_PREFIX) {
            pins += 1;
            if !commits.contains(id) {
                drop.insert(name, "no manifest names this commit");
            } else if reference
                .target()
                .is_none_or(|oid| repo.find_commit(oid).is_err())
            {
                drop.insert(name, "the commit cannot be read (a local mirror is gone)");
            }
        } else if let Some(rest) = name
            .strip_prefix(git::REMOTES_PREFIX)
            .or_else(|| name.strip_prefix(git::COMPLETE_PREFIX))
        {
            let hash = rest.split('/').next().unwrap_or_default();
            if !urls.contains(hash) {
                drop.insert(name, "no manifest uses this URL");
            }
        } else if name.starts_with("refs/keg/tmp/") {
            drop.insert(name, "left by an interrupted fetch");
        }
    }
    let alternates = git::read_alternates(&path).map_err(io(&path, "reading alternates"))?;
    let (kept_alternates, gone): (Vec<String>, Vec<String>) = alternates
        .into_iter()
        .partition(|dir| Path::new(dir).is_dir());
    let orphans = orphan_packs(&path);

    let verb = if options.dry_run {
        "would drop"
    } else {
        "dropping"
    };
    let w = |out: &mut dyn Write, line: String| writeln!(out, "{line}");
    for (name, why) in &drop {
        let _ = w(out, format!("git: {verb} {name} ({why})"));
    }
    for dir in &gone {
        let _ = w(out, format!("git: {verb} alternate {dir} (gone)"));
    }
    for pack in &orphans {
        let _ = w(
            out,
            format!("git: {verb} {} (a pack without index)", pack.display()),
        );
    }
    let dropped_pins = drop
        .keys()
        .filter(|n| n.starts_with(git::PIN_PREFIX))
        .count();
    if options.dry_run {
        let _ = w(
            out,
            format!(
                "git: would keep {} of {pins} pins; would repack {} packs ({})",
                pins - dropped_pins,
                before.packs,
                mib(before.pack_bytes)
            ),
        );
        return Ok(());
    }

    for name in drop.keys() {
        if let Ok(mut reference) = repo.find_reference(name) {
            reference.delete().map_err(cache.err())?;
        }
    }
    if !gone.is_empty() {
        git::write_alternates(&path, &kept_alternates).map_err(io(&path, "writing alternates"))?;
    }
    for pack in &orphans {
        for ext in ["pack", "keep", "rev"] {
            let _ = std::fs::remove_file(pack.with_extension(ext));
        }
    }
    // Packs hard-linked from a local repository stay out of the repack (their `.keep`)
    // while the repository still has them: sharing them costs no space. Once it dropped
    // them (repacked, removed), the cache's link is the only copy: the repack takes what
    // the pins need from them and drops the rest.
    let mut released = 0;
    for keep in linked_packs(&path) {
        use std::os::unix::fs::MetadataExt;
        let shared = std::fs::metadata(keep.with_extension("pack")).is_ok_and(|m| m.nlink() > 1);
        if !shared && std::fs::remove_file(&keep).is_ok() {
            released += 1;
        }
    }
    git::sweep_staging(&path);
    // Shallow entries whose history is here after all (or whose commit is gone) are stale;
    // git keeps them, and a stale entry would hide history from the repack.
    let mut shallow = git::read_shallow(&path).map_err(io(&path, "reading shallow"))?;
    let stale: Vec<git2::Oid> = shallow
        .iter()
        .copied()
        .filter(|c| repo.find_commit(*c).is_err() || git::parents_present(&repo, *c))
        .collect();
    if !stale.is_empty() {
        for c in &stale {
            shallow.remove(c);
        }
        git::write_shallow(&path, &shallow).map_err(io(&path, "writing shallow"))?;
    }
    drop_lock_leftovers(&path);

    run_git(&path, &["pack-refs", "--all", "--prune"])?;
    let mut repack = vec!["repack", "-a", "-d", "-q"];
    if !options.dissociate {
        repack.push("-l");
    }
    run_git(&path, &repack)?;
    run_git(&path, &["prune", "--expire=now"])?;
    if options.dissociate {
        git::write_alternates(&path, &[]).map_err(io(&path, "writing alternates"))?;
    }
    let after = footprint(&path);
    let _ = w(
        out,
        format!(
            "git: kept {} of {pins} pins; {} packs ({}) and {} loose refs -> {} packs ({}) and {} loose refs in {:.2} s; {} packs still shared with local repositories, {released} no longer{}",
            pins - dropped_pins,
            before.packs,
            mib(before.pack_bytes),
            before.loose_refs,
            after.packs,
            mib(after.pack_bytes),
            after.loose_refs,
            started.elapsed().as_secs_f64(),
            linked_packs(&path).len(),
            if options.dissociate {
                "; alternates copied in and dropped"
            } else {
                ""
            }
        ),
    );
    Ok(())
}

/// `.lock` files git or libgit2 left in the ref store and `packed-refs.lock`: with the cache
/// lock held no keg process writes, so they are leftovers of killed processes.
fn drop_lock_leftovers(path: &Path) {
    let _ = std::fs::remove_file(path.join("packed-refs.lock"));
    let _ = std::fs::remove_file(path.join("shallow.lock"));
    remove_lock_files(&path.join("refs"));
}

fn remove_lock_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            remove_lock_files(&path);
        } else if path.extension().is_some_and(|e| e == "lock") {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The `.keep` files keg wrote for packs hard-linked from local repositories.
fn linked_packs(path: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(path.join("objects/pack")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "keep")
                && std::fs::read_to_string(p).is_ok_and(|t| t.starts_with(git::KEEP_PREFIX))
        })
        .collect()
}

/// Packs without their `.idx`: a merge killed between the two renames.
fn orphan_packs(path: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(path.join("objects/pack")) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack") && !p.with_extension("idx").exists())
        .collect();
    out.sort();
    out
}

fn io<'a>(path: &'a Path, what: &'static str) -> impl Fn(std::io::Error) -> GitError + 'a {
    move |source| GitError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Runs `git -C <repo> args...`; fails with git's message.
fn run_git(repo: &Path, args: &[&str]) -> Result<(), GitError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| GitError::GitCommand {
            args: args.join(" "),
            message: format!("cannot run git (needed by keg gc): {e}"),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(GitError::GitCommand {
        args: args.join(" "),
        message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Removes the engine's cache tags of keys in no current plan, but the `keep` newest per
/// node.
fn engine_gc(
    cache_dir: &Path,
    cache_repo: &str,
    images: &HashMap<String, String>,
    current: &HashSet<&str>,
    options: &GcOptions,
    out: &mut impl Write,
) -> Result<(), Error> {
    let prefix = format!("{cache_repo}:");
    let cached: BTreeSet<&str> = images
        .keys()
        .filter_map(|r| r.strip_prefix(&prefix))
        .filter(|tag| tag.len() == 64 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    // key -> (time, slot) of its newest build record.
    let mut records: HashMap<String, (i64, String)> = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(cache_dir.join(BUILT_LOG)) {
        for line in text.lines() {
            let mut parts = line.split(' ');
            let (Some(time), Some(tag), Some(slot)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(time), Some(key)) = (time.parse::<i64>(), tag.strip_prefix(&prefix)) else {
                continue;
            };
            let newer = records.get(key).is_none_or(|(t, _)| *t <= time);
            if newer {
                records.insert(key.to_string(), (time, slot.to_string()));
            }
        }
    }
    let mut by_slot: HashMap<&str, Vec<(i64, &str)>> = HashMap::new();
    let mut remove: Vec<String> = Vec::new();
    let mut kept_current = 0;
    let mut foreign = 0;
    for key in &cached {
        if current.contains(key) {
            kept_current += 1;
            continue;
        }
        match records.get(*key) {
            Some((time, slot)) => by_slot.entry(slot).or_default().push((*time, key)),
            None => foreign += 1,
        }
    }
    let mut kept_recent = 0;
    for builds in by_slot.values_mut() {
        builds.sort_by(|a, b| b.cmp(a));
        kept_recent += builds.len().min(options.keep);
        remove.extend(
            builds
                .iter()
                .skip(options.keep)
                .map(|(_, key)| format!("{prefix}{key}")),
        );
    }
    remove.sort();
    let verb = if options.dry_run {
        "would remove"
    } else {
        "removing"
    };
    for tag in &remove {
        writeln!(out, "engine: {verb} {tag}").map_err(Error::Output)?;
    }
    let mut failed = Vec::new();
    if !options.dry_run {
        for chunk in remove.chunks(100) {
            let output = Command::new("docker")
                .args(["image", "rm"])
                .args(chunk)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| Error::Engine(format!("docker image rm: {e}")))?;
            if !output.status.success() {
                failed.extend(
                    String::from_utf8_lossy(&output.stderr)
                        .lines()
                        .map(str::to_string),
                );
            }
        }
    }
    writeln!(
        out,
        "engine: {} {} of {} cache images; kept {kept_current} of the current plan, {kept_recent} recent (--keep {}) and {foreign} not built with this cache",
        if options.dry_run { "would remove" } else { "removed" },
        remove.len() - failed.len().min(remove.len()),
        cached.len(),
        options.keep
    )
    .map_err(Error::Output)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Engine(format!(
            "some cache images could not be removed:\n{}",
            failed.join("\n")
        )))
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
