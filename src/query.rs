//! Query commands that need only manifests: `list` and `cat`.
//!
//! Invariant: stdout is byte-identical to bashbrew's for the same arguments and options;
//! messages about skipped entries go to stderr, once per entry, as bashbrew prints them.

use std::collections::HashSet;
use std::io::{self, Write};

use serde::Serialize;

use crate::config::Config;
use crate::library::Repo;
use crate::manifest::{Entry, write};

#[derive(Debug, Clone, Copy, Default)]
pub struct ListOptions {
    pub uniq: bool,
    pub only_repos: bool,
    pub apply_constraints: bool,
    pub arch_filter: bool,
}

/// Why an entry does not build on this host (bashbrew's `SkipConstraints`), or None.
pub fn skip_reason(config: &Config, entry: &Entry) -> Option<String> {
    if !entry.has_architecture(&config.arch) {
        return Some(format!(
            "due to architecture {:?}; only {:?} supported",
            config.arch,
            entry.architectures.join(", ")
        ));
    }
    if entry.constraints.is_empty() {
        return config
            .exclusive_constraints
            .then(|| "due to exclusive constraints".to_string());
    }
    let unsatisfied: Vec<String> = entry
        .constraints
        .iter()
        .filter(|c| match c.strip_prefix('!') {
            Some(unwanted) => config.constraints.iter().any(|g| g == unwanted),
            None => !config.constraints.iter().any(|g| g == *c),
        })
        .map(|c| format!("{:?}", c.trim_start_matches('!')))
        .collect();
    (!unsatisfied.is_empty()).then(|| {
        format!(
            "due to unsatisfactory constraints [{}]",
            unsatisfied.join(" ")
        )
    })
}

/// Prints each skip message once per process: a command may plan twice (keg lists the
/// engine's images for what a first plan names, then plans with them).
#[derive(Default)]
pub struct SkipNotes(HashSet<String>);

impl SkipNotes {
    /// True when `entry` is skipped; prints the reason to stderr the first time.
    pub fn skips(&mut self, config: &Config, repo: &Repo, entry: &Entry) -> bool {
        static PRINTED: std::sync::Mutex<Option<HashSet<String>>> = std::sync::Mutex::new(None);
        let Some(reason) = skip_reason(config, entry) else {
            return false;
        };
        let id = repo.entry_id(entry);
        if self.0.insert(id.clone()) {
            let mut printed = PRINTED.lock().unwrap_or_else(|e| e.into_inner());
            if printed.get_or_insert_with(HashSet::new).insert(id.clone()) {
                eprintln!("skipping {id:?} ({reason})");
            }
        }
        true
    }
}

/// `repo:tag` for every tag and shared tag of an entry (only the first with `uniq`).
pub fn entry_tags(config: &Config, repo: &Repo, entry: &Entry, uniq: bool) -> Vec<String> {
    let image = config.image_repo(&repo.name);
    let all = entry.tags.iter().chain(&entry.shared_tags);
    let take = if uniq { 1 } else { usize::MAX };
    all.take(take).map(|tag| format!("{image}:{tag}")).collect()
}

pub fn list(
    config: &Config,
    repos: &[Repo],
    options: ListOptions,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut notes = SkipNotes::default();
    let mut line = Vec::new();
    for repo in repos {
        if options.only_repos {
            match &repo.tag {
                None => writeln!(out, "{}", config.image_repo(&repo.name))?,
                Some(_) => {
                    let first = &repo.manifest.entries[repo.selected[0]];
                    for tag in entry_tags(config, repo, first, options.uniq) {
                        writeln!(out, "{tag}")?;
                    }
                }
            }
            continue;
        }
        // `repo:tag` lines as `entry_tags` makes them, written straight to `out`: `list --all`
        // prints every tag of the library, so no strings per tag.
        let image = config.image_repo(&repo.name);
        line.clear();
        line.extend_from_slice(image.as_bytes());
        line.push(b':');
        let prefix = line.len();
        for entry in repo.entries() {
            if options.apply_constraints && notes.skips(config, repo, entry) {
                continue;
            }
            if options.arch_filter && !entry.has_architecture(&config.arch) {
                continue;
            }
            let take = if options.uniq { 1 } else { usize::MAX };
            for tag in entry.tags.iter().chain(&entry.shared_tags).take(take) {
                line.truncate(prefix);
                line.extend_from_slice(tag.as_bytes());
                line.push(b'\n');
                out.write_all(&line)?;
            }
        }
    }
    Ok(())
}

/// bashbrew's default `cat` output: each repository's normalized manifest (or, for a
/// `repo:tag` argument, the selected entries in full), separated by a blank line.
pub fn cat(repos: &[Repo], out: &mut impl Write) -> io::Result<()> {
    for (i, repo) in repos.iter().enumerate() {
        if i > 0 {
            out.write_all(b"\n\n")?;
        }
        let text = match repo.tag {
            None => write::manifest_text(&repo.manifest),
            Some(_) => repo
                .entries()
                .map(write::entry_text)
                .collect::<Vec<_>>()
                .join("\n\n"),
        };
        out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct CatJson<'a> {
    repo: &'a str,
    file: String,
    global: &'a Entry,
    entries: Vec<&'a Entry>,
}

/// The parsed model as JSON: one object per argument (see docs/manifest.md).
pub fn cat_json(repos: &[Repo], out: &mut impl Write) -> io::Result<()> {
    let docs: Vec<CatJson<'_>> = repos
        .iter()
        .map(|repo| CatJson {
            repo: &repo.name,
            file: repo.path.to_string_lossy().into_owned(),
            global: &repo.manifest.global,
            entries: repo.entries().collect(),
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &docs)?;
    writeln!(out)
}

/// `keg context`: the build context of a `repo:tag` on `--arch`, as a tar or its sha256.
pub fn context(
    session: &crate::session::Session,
    repo: &Repo,
    sha256: bool,
    out: &mut impl Write,
) -> Result<(), crate::Error> {
    use crate::Error;
    let entry = repo.entries().next().ok_or_else(|| Error::TagNotFound {
        repo: repo.name.clone(),
        tag: repo.tag.clone().unwrap_or_default(),
    })?;
    let arch = &session.config.arch;
    let source = session.source(repo, entry, arch)?;
    let id = repo.entry_id(entry);
    let what = format!(
        "{id} ({arch}): build context {:?} at {}",
        source.directory, source.commit
    );
    let cache = session.sources()?.cache();
    let stats = if sha256 {
        let (digest, stats) =
            crate::context::context_sha256(cache, &source.commit, &source.directory).map_err(
                |source| Error::Context {
                    what,
                    source: Box::new(source),
                },
            )?;
        writeln!(out, "{digest}").map_err(Error::Output)?;
        stats
    } else {
        crate::context::write_context(cache, &source.commit, &source.directory, &mut *out).map_err(
            |source| Error::Context {
                what,
                source: Box::new(source),
            },
        )?
    };
    for submodule in &stats.submodules {
        eprintln!(
            "warning: {id}: submodule {submodule:?} is not part of the build context (git does not store its content in this repository)"
        );
    }
    Ok(())
}
