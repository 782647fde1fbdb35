//! The validated settings of one run: what every stage after the command line works with.
//!
//! Invariants: this module knows nothing of clap or of how values were given (flags,
//! environment, config files); a [`Config`] only ever holds checked values, made once by
//! `cli` and then shared read-only by every stage.

use std::path::PathBuf;

use crate::arch;

/// Validated global settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub library: PathBuf,
    /// The architecture single-architecture commands (list, from, ...) act for: the first
    /// `--arch`.
    pub arch: String,
    /// Every `--arch` given, in order, without `all`.
    pub arches: Vec<String>,
    /// `--arch all`: every architecture the selected entries support.
    pub all_arches: bool,
    pub namespace: String,
    pub constraints: Vec<String>,
    pub exclusive_constraints: bool,
    pub no_sort: bool,
    pub cache: PathBuf,
    pub git_mirrors: Vec<crate::git::Mirror>,
    /// How network fetches are made (depth, parallel repositories).
    pub fetch: crate::git::FetchSettings,
    /// `--retries`: attempts after a transient fault (git fetch, registry, engine).
    pub retries: u32,
    /// `--arch-namespace` items as given (`ARCH=NS`), parsed where they are used.
    pub arch_namespaces: Vec<String>,
    /// `--debug`: docker and git operations are shown as they run.
    pub debug: bool,
}

impl Config {
    /// The architectures `plan`/`build`/`tag`/`push` act for, in the table's order for
    /// `--arch all` (the union of the entries' Architectures), else as given.
    pub fn plan_arches(&self, repos: &[crate::library::Repo]) -> Vec<String> {
        if !self.all_arches {
            return self.arches.clone();
        }
        let mut wanted: std::collections::BTreeSet<&str> =
            self.arches.iter().map(String::as_str).collect();
        for repo in repos {
            for entry in repo.entries() {
                wanted.extend(entry.architectures.iter().map(String::as_str));
            }
        }
        arch::names()
            .filter(|a| wanted.contains(a))
            .map(str::to_string)
            .collect()
    }

    /// `NS/repo` or `repo` (bashbrew's `path.Join(namespace, repo)`).
    pub fn image_repo(&self, repo: &str) -> String {
        let ns = self.namespace.trim_matches('/');
        if ns.is_empty() {
            repo.to_string()
        } else {
            format!("{ns}/{repo}")
        }
    }
}

/// `$XDG_CACHE_HOME/keg`, else `~/.cache/keg`.
pub fn default_cache() -> PathBuf {
    let home = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    home.join("keg")
}
