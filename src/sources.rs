//! Sources: each (entry, architecture)'s commit in the git cache, its Dockerfile read and
//! scanned for parent images.
//!
//! Invariants: a source is resolved at most once per run (memoized by what it reads:
//! URL, commit, directory, file and builder), fetching uses no network when the commit is
//! already cached, a commit fetched by its id still needs its GitFetch to name a ref of the
//! repository (as bashbrew requires), and every failure names the entry (`repo:tag`), the
//! architecture, the URL, the commit and what git answered. A fetch that fails because the
//! network did (no connection, a reset, a 5xx) is tried again up to `--retries` times with
//! backoff, each retry printed on stderr; a commit or ref the server does not have is not.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::dockerfile::{self, Scan};
use crate::error::Error;
use crate::git::{self, GitCache, GitError, Mirror};
use crate::manifest::validate::clean_path;
use crate::manifest::{Builder, Entry};

/// What keg knows about one entry on one architecture from its sources.
#[derive(Debug, Clone)]
pub struct Source {
    /// The GitRepo after mirrors and relative-path resolution.
    pub url: String,
    pub fetch_ref: String,
    pub commit: String,
    pub directory: String,
    pub file: String,
    pub builder: Builder,
    /// The git tree id of `<commit>:<directory>`: the build context's content.
    pub tree: String,
    /// The Dockerfile's parents (empty for oci-import).
    pub scan: Scan,
    /// SOURCE_DATE_EPOCH: the time of the newest commit that changed the directory.
    pub source_date_epoch: i64,
}

impl Source {
    /// The external parents in order, as bashbrew's `ArchDockerFroms` reports them
    /// (`scratch` for oci-import).
    pub fn froms(&self) -> Vec<String> {
        match self.builder {
            Builder::OciImport => vec!["scratch".to_string()],
            _ => self.scan.froms.clone(),
        }
    }

    /// Where the Dockerfile is in the repository.
    pub fn dockerfile_path(&self) -> String {
        join_path(&self.directory, &self.file)
    }
}

/// `dir/file` with `.` directories dropped.
pub fn join_path(dir: &str, file: &str) -> String {
    if dir == "." || dir.is_empty() {
        file.to_string()
    } else {
        format!("{dir}/{file}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    url: String,
    fetch_ref: String,
    commit: String,
    directory: String,
    file: String,
    builder: &'static str,
}

/// The git cache plus how GitRepo values resolve; memoizes sources.
pub struct Sources {
    cache: GitCache,
    library: PathBuf,
    mirrors: Vec<Mirror>,
    memo: Mutex<HashMap<Key, Arc<Source>>>,
    /// `--retries`: fetch attempts after a network fault.
    retries: u32,
}

impl Sources {
    pub fn open(cache_dir: &Path, library: &Path, mirrors: Vec<Mirror>) -> Result<Sources, Error> {
        let cache = GitCache::open(cache_dir).map_err(|source| Error::Git {
            what: format!("opening the git cache in {}", cache_dir.display()),
            source: Box::new(source),
        })?;
        Ok(Sources {
            cache,
            // Relative GitRepo paths resolve against the library; keep them absolute, so a
            // plan says exactly what was fetched.
            library: library
                .canonicalize()
                .unwrap_or_else(|_| library.to_path_buf()),
            mirrors,
            memo: Mutex::new(HashMap::new()),
            retries: 0,
        })
    }

    /// The same sources, fetching again up to `retries` times after a network fault.
    pub fn with_retries(mut self, retries: u32) -> Sources {
        self.retries = retries;
        self
    }

    /// [`GitCache::ensure_commit`], tried again after network faults; `id` names the entry.
    fn ensure_commit(
        &self,
        id: &str,
        url: &str,
        fetch_ref: &str,
        commit: &str,
    ) -> Result<git::Fetched, GitError> {
        crate::retry::run(
            self.retries,
            &crate::interrupt::INTERRUPTED,
            &format!("of fetching {} from {url}", short(commit)),
            network_fault,
            |retry| eprintln!("retry   {id}: {retry}"),
            || self.cache.ensure_commit(url, fetch_ref, commit),
        )
    }

    pub fn cache(&self) -> &GitCache {
        &self.cache
    }

    fn key(&self, entry: &Entry, arch: &str) -> Key {
        let url = git::resolve_url(entry.arch_git_repo(arch), &self.library, &self.mirrors);
        Key {
            // A local path, cleaned (`/lib/../src` is `/src`).
            url: if url.starts_with('/') {
                clean_path(&url)
            } else {
                url
            },
            fetch_ref: entry.arch_git_fetch(arch).to_string(),
            commit: entry.arch_git_commit(arch).to_string(),
            directory: entry.arch_directory(arch).to_string(),
            file: entry.arch_file(arch).to_string(),
            builder: entry.arch_builder(arch).as_str(),
        }
    }

    /// Fetches (when needed) and reads the source of `entry` on `arch`; `id` names the entry
    /// in messages (`repo:tag`).
    pub fn source(&self, id: &str, entry: &Entry, arch: &str) -> Result<Arc<Source>, Error> {
        let key = self.key(entry, arch);
        if let Some(found) = self.lock_memo().get(&key) {
            return Ok(Arc::clone(found));
        }
        let fail = |what: String, source| Error::Git {
            what: format!("{id} ({arch}): {what}"),
            source: Box::new(source),
        };
        if crate::debug::enabled() && !self.cache.has_commit(&key.commit) {
            crate::debug::git(format_args!(
                "fetch {} {} (then {}:, if the commit is refused)",
                key.url, key.commit, key.fetch_ref
            ));
        }
        let fetched = self
            .ensure_commit(
                &format!("{id} ({arch})"),
                &key.url,
                &key.fetch_ref,
                &key.commit,
            )
            .map_err(|e| fail(format!("fetching {} from {}", key.commit, key.url), e))?;
        // As in bashbrew, GitFetch must name a ref of the repository, even when the server
        // hands out the commit by its id (checked when keg had to fetch it).
        if fetched == git::Fetched::ById {
            let what = || format!("fetching {} from {}", key.commit, key.url);
            let has_ref = self
                .cache
                .remote_has_ref(&key.url, &key.fetch_ref)
                .map_err(|e| fail(what(), e))?;
            if !has_ref {
                return Err(fail(
                    what(),
                    git::GitError::NoSuchRef {
                        url: key.url.clone(),
                        fetch_ref: key.fetch_ref.clone(),
                        commit: key.commit.clone(),
                    },
                ));
            }
        }
        let tree = self
            .cache
            .tree_id(&key.commit, &key.directory)
            .map_err(|e| fail(format!("reading Directory {:?}", key.directory), e))?;
        let source_date_epoch = self
            .cache
            .last_change_time(&key.commit, &key.directory)
            .map_err(|e| fail(format!("reading the history of {:?}", key.directory), e))?;
        let builder = Builder::parse(key.builder).unwrap_or(Builder::Classic);
        let scan = if builder == Builder::OciImport {
            Scan::default()
        } else {
            let path = join_path(&key.directory, &key.file);
            crate::debug::git(format_args!("show {}:{path}", key.commit));
            let bytes = self
                .cache
                .read_file(&key.commit, &path)
                .map_err(|e| fail(format!("reading the Dockerfile {path:?}"), e))?;
            let scan = dockerfile::scan(&String::from_utf8_lossy(&bytes));
            for warning in &scan.warnings {
                eprintln!(
                    "warning: {id} ({arch}): {path} at {}: {}",
                    short(&key.commit),
                    warning.message
                );
            }
            scan
        };
        let source = Arc::new(Source {
            url: key.url.clone(),
            fetch_ref: key.fetch_ref.clone(),
            commit: key.commit.clone(),
            directory: key.directory.clone(),
            file: key.file.clone(),
            builder,
            tree,
            scan,
            source_date_epoch,
        });
        let mut memo = self.lock_memo();
        Ok(Arc::clone(memo.entry(key).or_insert(source)))
    }

    /// Resolves many sources in parallel; the first error (in input order) wins, after all
    /// were tried.
    pub fn resolve_all(
        &self,
        items: &[(String, &Entry, String)],
    ) -> Result<Vec<Arc<Source>>, Error> {
        items
            .par_iter()
            .map(|(id, entry, arch)| self.source(id, entry, arch))
            .collect::<Vec<_>>()
            .into_iter()
            .collect()
    }

    fn lock_memo(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Source>>> {
        self.memo
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What git says when the network failed, lowercase: worth another attempt.
const NETWORK_FAULTS: &[&str] = &[
    "failed to connect",
    "failed to resolve address",
    "could not resolve",
    "timed out",
    "early eof",
    "unexpected http status code: 5",
];

/// Whether a failed fetch may succeed on another attempt: the server could not be reached,
/// or the connection broke (not a commit or ref it does not have).
fn network_fault(error: &GitError) -> bool {
    if !matches!(error, GitError::FetchFailed { .. }) {
        return false;
    }
    let text = error.to_string().to_lowercase();
    crate::retry::transient(&text) || NETWORK_FAULTS.iter().any(|fault| text.contains(fault))
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch_failed(by_id: &str, by_ref: &str) -> GitError {
        GitError::FetchFailed {
            url: "https://example.invalid/r.git".into(),
            commit: "0".repeat(40),
            fetch_ref: "refs/heads/main".into(),
            by_id: by_id.into(),
            by_ref: by_ref.into(),
        }
    }

    #[test]
    fn only_network_faults_are_retried() {
        for fault in [
            "failed to connect to example.invalid: Connection refused",
            "unexpected http status code: 503",
            "failed to resolve address for example.invalid: Name or service not known",
            "early EOF",
        ] {
            assert!(network_fault(&fetch_failed(fault, fault)), "{fault}");
        }
        assert!(!network_fault(&fetch_failed(
            "the server did not send it",
            "couldn't find remote ref refs/heads/main"
        )));
        assert!(!network_fault(&GitError::InvalidCommit {
            commit: "x".into()
        }));
    }
}
