//! One command's view of the world: the validated config, the library, and (opened on first
//! use) the git sources. Shared by the query commands and the planner.
//!
//! Invariants: each manifest argument is loaded once; the git cache is opened only by
//! commands that need sources, so `list` and `cat` never touch it.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::config::Config;
use crate::error::Error;
use crate::library::{self, Repo};
use crate::manifest::Entry;
use crate::sources::{Source, Sources};

pub struct Session {
    pub config: Config,
    sources: OnceLock<Sources>,
    repos: HashMap<String, Result<Repo, String>>,
}

impl Session {
    pub fn new(config: Config) -> Session {
        Session {
            config,
            sources: OnceLock::new(),
            repos: HashMap::new(),
        }
    }

    /// The git sources, opening the cache on first use.
    pub fn sources(&self) -> Result<&Sources, Error> {
        if let Some(sources) = self.sources.get() {
            return Ok(sources);
        }
        let sources = Sources::open(
            &self.config.cache,
            &self.config.library,
            self.config.git_mirrors.clone(),
            self.config.fetch,
        )?
        .with_retries(self.config.retries);
        Ok(self.sources.get_or_init(|| sources))
    }

    /// The source of an entry on an architecture.
    pub fn source(&self, repo: &Repo, entry: &Entry, arch: &str) -> Result<Arc<Source>, Error> {
        self.sources()?.source(&repo.entry_id(entry), entry, arch)
    }

    /// The parents of an entry on each of `arches`, de-duplicated in order (bashbrew's
    /// ArchDockerFroms over several architectures).
    pub fn froms(
        &self,
        repo: &Repo,
        entry: &Entry,
        arches: &[String],
    ) -> Result<Vec<String>, Error> {
        let mut froms: Vec<String> = Vec::new();
        for arch in arches {
            for from in self.source(repo, entry, arch)?.froms() {
                if !froms.contains(&from) {
                    froms.push(from);
                }
            }
        }
        Ok(froms)
    }

    /// Loads a repository argument (`repo`, `repo:tag`, a path); None when no manifest or
    /// tag matches it (an image from outside the library). Invalid manifests are errors.
    pub fn lookup(&mut self, arg: &str) -> Result<Option<Repo>, Error> {
        if !self.repos.contains_key(arg) {
            let loaded = match library::load(&self.config.library, &[arg.to_string()]) {
                Ok(mut loaded) => Ok(loaded.repos.remove(0)),
                Err(e @ (Error::RepoNotFound { .. } | Error::TagNotFound { .. })) => {
                    Err(e.to_string())
                }
                Err(e) => return Err(e),
            };
            self.repos.insert(arg.to_string(), loaded);
        }
        Ok(self.repos[arg].as_ref().ok().cloned())
    }

    /// The architectures to read an entry's sources for: `--arch` alone when filtering,
    /// else every architecture the entry supports (bashbrew's `entryArches`).
    pub fn entry_arches(&self, entry: &Entry, filtered: bool) -> Vec<String> {
        if filtered {
            vec![self.config.arch.clone()]
        } else {
            entry.architectures.clone()
        }
    }
}
