//! Sources: each (entry, architecture)'s commit in the git cache, its Dockerfile read and
//! scanned for parent images.
//!
//! Invariants: a source is resolved at most once per run (memoized by what it reads:
//! URL, commit, directory, file and builder), fetching uses no network when the commit is
//! already cached, a commit fetched by its id or taken from a local repository still needs
//! its GitFetch to name a ref of the repository (as bashbrew requires), and every failure
//! names the entry (`repo:tag`), the architecture, the URL, the commit and what git
//! answered. Before many sources are read, their missing commits are fetched first,
//! [`FetchSettings::jobs`] repositories at a time ([`Sources::prefetch`]): network fetches
//! wait on latency, so they overlap far beyond the number of cores; one repository's
//! commits are fetched one after another. A fetch that fails because the network did (no connection, a reset, a 5xx)
//! is tried again up to `--retries` times with backoff, each retry printed on stderr; a
//! commit or ref the server does not have is not.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::dockerfile::{self, Scan};
use crate::error::Error;
use crate::git::{self, FetchSettings, GitCache, GitError, Mirror};
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
    /// SOURCE_DATE_EPOCH: the commit's time (the later of author and committer, as in
    /// bashbrew); no history needed (docs/cache-keys.md).
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

/// What one fetch is about: URL, GitFetch, commit.
type FetchKey = (String, String, String);

/// The git cache plus how GitRepo values resolve; memoizes sources.
pub struct Sources {
    cache: GitCache,
    library: PathBuf,
    mirrors: Vec<Mirror>,
    memo: Mutex<HashMap<Key, Arc<Source>>>,
    /// Fetches [`Sources::prefetch`] tried and that failed, reported by the first source
    /// that needs them (not tried again).
    failed: Mutex<HashMap<FetchKey, GitError>>,
    /// `--retries`: fetch attempts after a network fault.
    retries: u32,
}

impl Sources {
    pub fn open(
        cache_dir: &Path,
        library: &Path,
        mirrors: Vec<Mirror>,
        fetch: FetchSettings,
    ) -> Result<Sources, Error> {
        let cache = GitCache::open_with(cache_dir, fetch).map_err(|source| Error::Git {
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
            failed: Mutex::new(HashMap::new()),
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

    /// The resolved URL, GitFetch and GitCommit of `entry` on `arch`: what is fetched.
    pub fn fetch_target(&self, entry: &Entry, arch: &str) -> (String, String, String) {
        self.key(entry, arch).fetch_key()
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
        let fetching = || format!("fetching {} from {}", key.commit, key.url);
        if let Some(e) = lock(&self.failed).remove(&key.fetch_key()) {
            return Err(fail(fetching(), e));
        }
        self.fetch_checked(&format!("{id} ({arch})"), &key.fetch_key())
            .map_err(|e| fail(fetching(), e))?;
        let tree = self
            .cache
            .tree_id(&key.commit, &key.directory)
            .map_err(|e| fail(format!("reading Directory {:?}", key.directory), e))?;
        let source_date_epoch = self
            .cache
            .source_date_epoch(&key.commit)
            .map_err(|e| fail(format!("reading commit {}", key.commit), e))?;
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

    /// Resolves many sources: their commits fetched first ([`Sources::prefetch`]), then
    /// read in parallel; the first error (in input order) wins, after all were tried.
    pub fn resolve_all(
        &self,
        items: &[(String, &Entry, String)],
    ) -> Result<Vec<Arc<Source>>, Error> {
        self.prefetch(items);
        let failed: Vec<bool> = {
            let failed = lock(&self.failed);
            items
                .iter()
                .map(|(_, entry, arch)| failed.contains_key(&self.key(entry, arch).fetch_key()))
                .collect()
        };
        let results: Vec<Option<Result<Arc<Source>, Error>>> = items
            .par_iter()
            .zip(&failed)
            .map(|((id, entry, arch), &failed)| (!failed).then(|| self.source(id, entry, arch)))
            .collect();
        items
            .iter()
            .zip(results)
            .map(|((id, entry, arch), result)| match result {
                Some(result) => result,
                None => self.source(id, entry, arch),
            })
            .collect()
    }

    /// Gets one commit into the cache when it is missing. As in bashbrew, GitFetch must name
    /// a ref of the repository, even when the commit came by its id or from a local
    /// repository (checked when keg had to get it).
    fn fetch_checked(&self, id: &str, (url, fetch_ref, commit): &FetchKey) -> Result<(), GitError> {
        if crate::debug::enabled() && !self.cache.has_commit(commit) {
            crate::debug::git(format_args!(
                "fetch {url} {commit} (then {fetch_ref}:, if the commit is refused)"
            ));
        }
        let fetched = self.ensure_commit(id, url, fetch_ref, commit)?;
        if matches!(fetched, git::Fetched::ById | git::Fetched::Local)
            && !self.cache.remote_has_ref(url, fetch_ref)?
        {
            return Err(GitError::NoSuchRef {
                url: url.clone(),
                fetch_ref: fetch_ref.clone(),
                commit: commit.clone(),
            });
        }
        Ok(())
    }

    /// Fetches every commit `items` need that the cache lacks: up to
    /// [`FetchSettings::jobs`] repositories at a time, each repository's commits one after
    /// another. Failures are kept for [`Sources::source`] to report.
    pub fn prefetch(&self, items: &[(String, &Entry, String)]) {
        // Per URL: (who asked first, for messages; what to fetch).
        let mut groups: HashMap<String, Vec<(String, FetchKey)>> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (id, entry, arch) in items {
            let key = self.key(entry, arch).fetch_key();
            if seen.insert(key.clone()) && !self.cache.is_ready(&key.2) {
                groups
                    .entry(key.0.clone())
                    .or_default()
                    .push((format!("{id} ({arch})"), key));
            }
        }
        let mut queue: Vec<Vec<(String, FetchKey)>> = groups.into_values().collect();
        // Popped from the end: the largest groups first, so that no long one starts last.
        queue.sort_by_key(Vec::len);
        let threads = self.cache.settings().jobs.clamp(1, queue.len().max(1));
        let queue = Mutex::new(queue);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let Some(group) = lock(&queue).pop() else {
                            break;
                        };
                        for (id, key) in group {
                            if let Err(e) = self.fetch_checked(&id, &key) {
                                lock(&self.failed).insert(key, e);
                            }
                        }
                    }
                });
            }
        });
    }

    fn lock_memo(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Source>>> {
        lock(&self.memo)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Key {
    fn fetch_key(&self) -> FetchKey {
        (
            self.url.clone(),
            self.fetch_ref.clone(),
            self.commit.clone(),
        )
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
