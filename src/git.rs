//! The git cache: one bare repository shared by every GitRepo of every library.
//!
//! Job: make sure the commits named by manifests are available locally
//! ([`GitCache::ensure_commit`]) and read sources at those commits straight from the object
//! database, without ever checking anything out ([`GitCache::read_file`],
//! [`GitCache::tree_id`], [`GitCache::commit_time`], [`GitCache::last_change_time`]).
//!
//! Invariants:
//! - All upstreams share one bare repository at `<cache>/git`. Remotes are anonymous: nothing
//!   about an upstream is ever written into the repository config. gc is disabled in the
//!   config for the benefit of the `git` CLI; libgit2 itself never collects garbage.
//! - Every commit keg has fetched is pinned by `refs/keg/commits/<id>`, and a pin is created
//!   only after the commit is known to be in the object database, so a pin implies the commit
//!   and everything reachable from it is present.
//! - A commit that is already present and pinned costs no network and no lock.
//! - Writes (fetch + ref updates) happen under an exclusive file lock on `<cache>/git/keg.lock`
//!   and re-check for the commit after taking it, so several threads and several keg
//!   processes can share a cache. libgit2 writes packs and refs atomically (temp file +
//!   rename); fetches land in `refs/keg/tmp/fetch` first and the durable refs are created
//!   afterwards, so an interrupted fetch leaves no half-written durable ref.
//! - [`GitCache`] is `Send + Sync`: `git2::Repository` is not `Sync`, so each operation checks
//!   a handle out of a small pool and returns it afterwards.
//!
//! URLs are resolved by the caller with [`resolve_url`] (mirrors, then relative paths
//! against the library directory) before being handed to [`GitCache::ensure_commit`].

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use git2::{
    AutotagOption, Commit, ErrorCode, FetchOptions, FetchPrune, Oid, Reference, Repository,
    RepositoryInitOptions, Tree,
};
use sha2::{Digest, Sha256};

/// Name of the environment variable holding comma-separated mirrors (see [`parse_mirrors`]).
pub const MIRRORS_ENV: &str = "KEG_GIT_MIRRORS";

/// Ref namespace pinning every commit keg needs: `refs/keg/commits/<id>`.
const PIN_PREFIX: &str = "refs/keg/commits/";
/// Where GitFetch refs are tracked: `refs/keg/remotes/<url hash>/<ref without "refs/">`.
const REMOTES_PREFIX: &str = "refs/keg/remotes/";
/// Scratch ref every fetch writes to; only ever touched under the cache lock.
const TMP_REF: &str = "refs/keg/tmp/fetch";
/// Lock file guarding writes, inside the bare repository.
const LOCK_FILE: &str = "keg.lock";

/// Errors of the git cache. Fetch errors name the URL, commit and ref; the caller adds the
/// `repo:tag` that asked for them.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot create the git cache directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open or create the git cache at {path}: {source}")]
    Open { path: PathBuf, source: git2::Error },
    #[error("cannot lock the git cache ({path}): {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid commit id {commit:?}: expected 40 hexadecimal characters")]
    InvalidCommit { commit: String },
    #[error("invalid GitFetch {fetch_ref:?}: expected a full ref name such as refs/heads/main")]
    InvalidFetchRef { fetch_ref: String },
    #[error("invalid path {path:?} in a git tree: `..` is not allowed")]
    InvalidPath { path: String },
    #[error("invalid git mirror {spec:?}: {reason}")]
    InvalidMirror { spec: String, reason: &'static str },
    #[error(
        "cannot fetch commit {commit} from {url}: fetching the commit id failed ({by_id}), \
         and fetching {fetch_ref} failed ({by_ref})"
    )]
    FetchFailed {
        url: String,
        commit: String,
        fetch_ref: String,
        by_id: String,
        by_ref: String,
    },
    #[error(
        "cannot fetch commit {commit} from {url}: {url} has no {fetch_ref} \
         (fetching the commit id failed too: {by_id})"
    )]
    MissingRemoteRef {
        url: String,
        commit: String,
        fetch_ref: String,
        by_id: String,
    },
    #[error(
        "cannot fetch commit {commit} from {url}: it is not reachable from {fetch_ref} \
         (fetching the commit id failed: {by_id})"
    )]
    CommitNotOnRef {
        url: String,
        commit: String,
        fetch_ref: String,
        by_id: String,
    },
    #[error(
        "{url} has no {fetch_ref} (the GitFetch): a GitFetch must name a branch or tag of the \
         repository, even though commit {commit} could be fetched by its id"
    )]
    NoSuchRef {
        url: String,
        fetch_ref: String,
        commit: String,
    },
    #[error("commit {commit} is not in the git cache")]
    MissingCommit { commit: String },
    #[error("{path:?} does not exist at commit {commit}")]
    MissingPath { commit: String, path: String },
    #[error("{path:?} at commit {commit} is {found}, not a directory")]
    NotADirectory {
        commit: String,
        path: String,
        found: &'static str,
    },
    #[error("{path:?} at commit {commit} is {found}, not a regular file")]
    NotAFile {
        commit: String,
        path: String,
        found: &'static str,
    },
    #[error("git cache {path}: {source}")]
    Repo { path: PathBuf, source: git2::Error },
}

/// What [`GitCache::ensure_commit`] had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// The commit was already in the cache (possibly fetched meanwhile by someone else);
    /// no network was used.
    AlreadyPresent,
    /// Fetched by asking the server for the commit id itself.
    ById,
    /// The server refused the commit id; fetched via the GitFetch ref.
    ViaRef,
}

/// A URL rewrite for offline CI: URLs starting with `prefix` have it replaced by
/// `replacement` (a URL or a local path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub prefix: String,
    pub replacement: String,
}

/// Parses `URL_PREFIX=LOCAL_URL_OR_PATH` (split at the first `=`; both sides non-empty).
pub fn parse_mirror(spec: &str) -> Result<Mirror, GitError> {
    let invalid = |reason| GitError::InvalidMirror {
        spec: spec.to_owned(),
        reason,
    };
    let (prefix, replacement) = spec
        .split_once('=')
        .ok_or_else(|| invalid("expected URL_PREFIX=LOCAL_URL_OR_PATH"))?;
    let (prefix, replacement) = (prefix.trim(), replacement.trim());
    if prefix.is_empty() {
        return Err(invalid("the URL prefix is empty"));
    }
    if replacement.is_empty() {
        return Err(invalid("the replacement is empty"));
    }
    Ok(Mirror {
        prefix: prefix.to_owned(),
        replacement: replacement.to_owned(),
    })
}

/// Parses a comma-separated list of mirrors, as found in [`MIRRORS_ENV`]; empty items are
/// ignored.
pub fn parse_mirrors(list: &str) -> Result<Vec<Mirror>, GitError> {
    list.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(parse_mirror)
        .collect()
}

/// Turns a GitRepo value into the URL or path to fetch from.
///
/// First the longest matching mirror prefix is replaced (the first listed wins a tie); a
/// mirrored URL is used as is, so relative mirror paths are relative to the working
/// directory. Otherwise, a plain relative path (not `scheme://`, not scp-like
/// `[user@]host:path`) is resolved against `base_dir`, the library directory — a keg
/// extension letting a library point at repositories beside it.
pub fn resolve_url(url: &str, base_dir: &Path, mirrors: &[Mirror]) -> String {
    let best =
        mirrors
            .iter()
            .filter(|m| url.starts_with(&m.prefix))
            .fold(None::<&Mirror>, |best, m| match best {
                Some(b) if b.prefix.len() >= m.prefix.len() => Some(b),
                _ => Some(m),
            });
    if let Some(m) = best {
        return format!("{}{}", m.replacement, &url[m.prefix.len()..]);
    }
    if is_local_path(url) && Path::new(url).is_relative() {
        // `components()` drops `.` components, so `./repo` becomes `<base>/repo`.
        return base_dir
            .join(url)
            .components()
            .collect::<PathBuf>()
            .to_string_lossy()
            .into_owned();
    }
    url.to_owned()
}

/// Whether `url` is a plain path rather than `scheme://...` or scp-like `[user@]host:path`
/// (git's rule: a `:` before any `/` means ssh).
fn is_local_path(url: &str) -> bool {
    if url.contains("://") {
        return false;
    }
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => slash < colon,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Caps how much of the pack files libgit2 keeps mapped (its defaults on 64-bit are 1 GiB
/// windows and 8 GiB in total), so streaming a large context keeps the resident set small:
/// every page of a mapped window that was read counts as resident until the window is
/// unmapped. With 256 MiB allowed, `keg context` of a 512 MiB directory (largest file
/// 16 MiB) peaked at 283 MiB; with 4 MiB windows and 16 MiB in total it peaks at 44 MiB
/// (16 MiB of windows, the largest blob, the rest) and is as fast within noise
/// (bench/context.sh: 32 MiB in total gave 60 MiB, 8 MiB gave 35 MiB and ~5% slower).
fn limit_pack_mappings() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: called once, before this process opens any repository through the cache.
        unsafe {
            let _ = git2::opts::set_mwindow_size(4 << 20);
            let _ = git2::opts::set_mwindow_mapped_limit(16 << 20);
        }
    });
}

/// The shared git cache. Cheap to share between threads (`&GitCache` is all you need).
pub struct GitCache {
    path: PathBuf,
    /// Idle repository handles; see the module invariants.
    handles: Mutex<Vec<Repository>>,
    /// git:// URLs already warned about by this cache.
    warned: Mutex<HashSet<String>>,
}

impl GitCache {
    /// Opens the cache under `cache_dir`, creating the bare repository `<cache_dir>/git`
    /// (with gc disabled) if it does not exist yet.
    pub fn open(cache_dir: &Path) -> Result<GitCache, GitError> {
        limit_pack_mappings();
        let path = cache_dir.join("git");
        let repo = match Repository::open_bare(&path) {
            Ok(repo) => repo,
            Err(_) => create(&path)?,
        };
        Ok(GitCache {
            path,
            handles: Mutex::new(vec![repo]),
            warned: Mutex::new(HashSet::new()),
        })
    }

    /// The bare repository's path (`<cache_dir>/git`).
    pub fn repo_path(&self) -> &Path {
        &self.path
    }

    /// Whether the commit's object is in the cache (`false` for a malformed id).
    pub fn has_commit(&self, commit: &str) -> bool {
        let Ok(oid) = parse_commit(commit) else {
            return false;
        };
        self.with_repo(|repo| Ok::<_, GitError>(repo.find_commit(oid).is_ok()))
            .unwrap_or(false)
    }

    /// Makes sure `commit` is in the cache and pinned, fetching it from `url` if needed.
    ///
    /// `url` must already be resolved ([`resolve_url`]). If the commit is present no network
    /// is used. Otherwise the commit id itself is fetched (servers may refuse), then
    /// `fetch_ref` (GitFetch, e.g. `refs/heads/main`) is fetched into
    /// `refs/keg/remotes/<url hash>/...`, and the commit must then be present.
    pub fn ensure_commit(
        &self,
        url: &str,
        fetch_ref: &str,
        commit: &str,
    ) -> Result<Fetched, GitError> {
        let oid = parse_commit(commit)?;
        if !fetch_ref.starts_with("refs/") || !Reference::is_valid_name(fetch_ref) {
            return Err(GitError::InvalidFetchRef {
                fetch_ref: fetch_ref.to_owned(),
            });
        }
        if self.with_repo(|repo| Ok::<_, GitError>(is_pinned(repo, oid)))? {
            return Ok(Fetched::AlreadyPresent);
        }

        let _lock = self.lock()?;
        self.with_repo(|repo| {
            // Another thread or process may have fetched it while we waited for the lock.
            repo.odb()
                .and_then(|odb| odb.refresh())
                .map_err(self.err())?;
            if repo.find_commit(oid).is_ok() {
                self.pin(repo, oid)?;
                return Ok(Fetched::AlreadyPresent);
            }
            self.warn_if_unauthenticated(url);

            let id_spec = format!("+{oid}:{TMP_REF}");
            let by_id = match fetch(repo, url, &id_spec) {
                Ok(()) => {
                    take_tmp_ref(repo).map_err(self.err())?;
                    if repo.find_commit(oid).is_ok() {
                        self.pin(repo, oid)?;
                        return Ok(Fetched::ById);
                    }
                    "the server did not send it".to_owned()
                }
                Err(e) => e.message().to_owned(),
            };

            let ref_spec = format!("+{fetch_ref}:{TMP_REF}");
            if let Err(e) = fetch(repo, url, &ref_spec) {
                return Err(GitError::FetchFailed {
                    url: url.to_owned(),
                    commit: oid.to_string(),
                    fetch_ref: fetch_ref.to_owned(),
                    by_id,
                    by_ref: e.message().to_owned(),
                });
            }
            let Some(tip) = take_tmp_ref(repo).map_err(self.err())? else {
                return Err(GitError::MissingRemoteRef {
                    url: url.to_owned(),
                    commit: oid.to_string(),
                    fetch_ref: fetch_ref.to_owned(),
                    by_id,
                });
            };
            let tracking = format!(
                "{REMOTES_PREFIX}{}/{}",
                url_hash(url),
                &fetch_ref["refs/".len()..]
            );
            repo.reference(&tracking, tip, true, "keg: fetch")
                .map_err(self.err())?;
            if repo.find_commit(oid).is_err() {
                return Err(GitError::CommitNotOnRef {
                    url: url.to_owned(),
                    commit: oid.to_string(),
                    fetch_ref: fetch_ref.to_owned(),
                    by_id,
                });
            }
            self.pin(repo, oid)?;
            Ok(Fetched::ViaRef)
        })
    }

    /// Whether the repository at `url` has the ref `fetch_ref` (one ref listing, no fetch).
    pub fn remote_has_ref(&self, url: &str, fetch_ref: &str) -> Result<bool, GitError> {
        self.with_repo(|repo| {
            let mut remote = repo.remote_anonymous(url).map_err(self.err())?;
            remote.connect(git2::Direction::Fetch).map_err(self.err())?;
            let found = remote
                .list()
                .map_err(self.err())?
                .iter()
                .any(|head| head.name() == fetch_ref);
            Ok(found)
        })
    }

    /// The bytes of the blob at `<commit>:<path>` (e.g. `Directory/File`).
    pub fn read_file(&self, commit: &str, path: &str) -> Result<Vec<u8>, GitError> {
        self.with_repo(|repo| {
            let root = self.find_commit(repo, commit)?.tree().map_err(self.err())?;
            let entry = lookup(&root, path).map_err(|e| self.path_err(e, commit, path))?;
            match entry.kind {
                EntryKind::File { .. } => {
                    let blob = repo.find_blob(entry.id).map_err(self.err())?;
                    Ok(blob.content().to_vec())
                }
                other => Err(GitError::NotAFile {
                    commit: commit.to_owned(),
                    path: path.to_owned(),
                    found: other.describe(),
                }),
            }
        })
    }

    /// The id of the tree at `<commit>:<dir>` (`.` or an empty string is the root tree).
    pub fn tree_id(&self, commit: &str, dir: &str) -> Result<String, GitError> {
        self.with_repo(|repo| {
            let c = self.find_commit(repo, commit)?;
            Ok(self.subtree(repo, &c, commit, dir)?.id().to_string())
        })
    }

    /// The commit's committer time, in seconds since the epoch.
    pub fn commit_time(&self, commit: &str) -> Result<i64, GitError> {
        self.with_repo(|repo| Ok(self.find_commit(repo, commit)?.time().seconds()))
    }

    /// The committer time of the newest commit, reachable from `commit`, that changed `dir`:
    /// what `git log -1 --format=%ct <commit> -- <dir>` prints. As in git's default history
    /// simplification, a commit whose `dir` equals a parent's is not a change and the walk
    /// continues through the first such parent only, so this is one walk down the history:
    /// O(history) in the worst case.
    pub fn last_change_time(&self, commit: &str, dir: &str) -> Result<i64, GitError> {
        let parts = split_path(dir)?;
        self.with_repo(|repo| {
            let mut current = self.find_commit(repo, commit)?;
            self.subtree(repo, &current, commit, dir)?;
            let dir_id = |c: &Commit| -> Result<Option<Oid>, GitError> {
                let tree = c.tree().map_err(self.err())?;
                if parts.is_empty() {
                    return Ok(Some(tree.id()));
                }
                match tree.get_path(Path::new(&parts.join("/"))) {
                    Ok(entry) => Ok(Some(entry.id())),
                    Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
                    Err(e) => Err(self.err()(e)),
                }
            };
            loop {
                let mine = dir_id(&current)?;
                let mut unchanged_in = None;
                for parent in current.parents() {
                    if dir_id(&parent)? == mine {
                        unchanged_in = Some(parent);
                        break;
                    }
                }
                match unchanged_in {
                    Some(parent) => current = parent,
                    None => return Ok(current.time().seconds()),
                }
            }
        })
    }

    /// Runs `f` with a repository handle checked out of the pool.
    pub(crate) fn with_repo<T, E: From<GitError>>(
        &self,
        f: impl FnOnce(&Repository) -> Result<T, E>,
    ) -> Result<T, E> {
        let idle = lock_ignoring_poison(&self.handles).pop();
        let repo = match idle {
            Some(repo) => repo,
            None => Repository::open_bare(&self.path).map_err(|source| GitError::Open {
                path: self.path.clone(),
                source,
            })?,
        };
        let result = f(&repo);
        lock_ignoring_poison(&self.handles).push(repo);
        result
    }

    /// The commit named `commit`, or [`GitError::MissingCommit`].
    pub(crate) fn find_commit<'r>(
        &self,
        repo: &'r Repository,
        commit: &str,
    ) -> Result<Commit<'r>, GitError> {
        let oid = parse_commit(commit)?;
        repo.find_commit(oid).map_err(|e| match e.code() {
            ErrorCode::NotFound => GitError::MissingCommit {
                commit: commit.to_owned(),
            },
            _ => self.err()(e),
        })
    }

    /// The tree at `<commit>:<dir>`; `commit` is only used for error messages.
    pub(crate) fn subtree<'r>(
        &self,
        repo: &'r Repository,
        c: &Commit<'r>,
        commit: &str,
        dir: &str,
    ) -> Result<Tree<'r>, GitError> {
        let root = c.tree().map_err(self.err())?;
        let entry = lookup(&root, dir).map_err(|e| self.path_err(e, commit, dir))?;
        match entry.kind {
            EntryKind::Directory => repo.find_tree(entry.id).map_err(self.err()),
            other => Err(GitError::NotADirectory {
                commit: commit.to_owned(),
                path: dir.to_owned(),
                found: other.describe(),
            }),
        }
    }

    /// Maps an unexpected libgit2 error to [`GitError::Repo`].
    pub(crate) fn err(&self) -> impl Fn(git2::Error) -> GitError + '_ {
        |source| GitError::Repo {
            path: self.path.clone(),
            source,
        }
    }

    fn path_err(&self, e: LookupError, commit: &str, path: &str) -> GitError {
        match e {
            LookupError::Invalid => GitError::InvalidPath {
                path: path.to_owned(),
            },
            LookupError::Git(e) if e.code() == ErrorCode::NotFound => GitError::MissingPath {
                commit: commit.to_owned(),
                path: path.to_owned(),
            },
            LookupError::Git(e) => self.err()(e),
        }
    }

    fn pin(&self, repo: &Repository, oid: Oid) -> Result<(), GitError> {
        repo.reference(&format!("{PIN_PREFIX}{oid}"), oid, true, "keg: pin")
            .map(drop)
            .map_err(self.err())
    }

    fn lock(&self) -> Result<File, GitError> {
        lock_file(&self.path)
    }

    fn warn_if_unauthenticated(&self, url: &str) {
        if url.starts_with("git://") && lock_ignoring_poison(&self.warned).insert(url.to_owned()) {
            eprintln!("warning: {url} uses the unauthenticated git:// protocol; prefer https://");
        }
    }
}

/// Creates (or finishes creating) the bare repository at `path`, under the cache lock.
fn create(path: &Path) -> Result<Repository, GitError> {
    fs::create_dir_all(path).map_err(|source| GitError::CreateDir {
        path: path.to_owned(),
        source,
    })?;
    let _lock = lock_file(path)?;
    let open_err = |source| GitError::Open {
        path: path.to_owned(),
        source,
    };
    if let Ok(repo) = Repository::open_bare(path) {
        return Ok(repo);
    }
    let repo =
        Repository::init_opts(path, RepositoryInitOptions::new().bare(true)).map_err(open_err)?;
    let mut config = repo.config().map_err(open_err)?;
    for (key, value) in [
        ("gc.auto", "0"),
        ("gc.autoDetach", "false"),
        ("gc.autoPackLimit", "0"),
        ("maintenance.auto", "false"),
        ("core.logAllRefUpdates", "false"),
    ] {
        config.set_str(key, value).map_err(open_err)?;
    }
    Ok(repo)
}

/// Takes the exclusive cache lock; it is released when the returned file is dropped.
fn lock_file(repo_path: &Path) -> Result<File, GitError> {
    let path = repo_path.join(LOCK_FILE);
    let lock_err = |source| GitError::Lock {
        path: path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_err)?;
    fs4::FileExt::lock(&file).map_err(lock_err)?;
    Ok(file)
}

fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Parses a full 40-hex commit id (short ids are refused: `Oid::from_str` would pad them).
fn parse_commit(commit: &str) -> Result<Oid, GitError> {
    let invalid = || GitError::InvalidCommit {
        commit: commit.to_owned(),
    };
    if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    Oid::from_str(commit).map_err(|_| invalid())
}

fn is_pinned(repo: &Repository, oid: Oid) -> bool {
    repo.find_reference(&format!("{PIN_PREFIX}{oid}"))
        .is_ok_and(|r| r.target() == Some(oid))
        && repo.find_commit(oid).is_ok()
}

/// One fetch of `refspec` from `url` through an anonymous remote, without tags or FETCH_HEAD.
fn fetch(repo: &Repository, url: &str, refspec: &str) -> Result<(), git2::Error> {
    if let Ok(mut stale) = repo.find_reference(TMP_REF) {
        stale.delete()?;
    }
    let mut remote = repo.remote_anonymous(url)?;
    let mut options = FetchOptions::new();
    options
        .download_tags(AutotagOption::None)
        .update_fetchhead(false)
        .prune(FetchPrune::Off);
    remote.fetch(&[refspec], Some(&mut options), None)
}

/// Removes the scratch ref, returning where it pointed (`None`: the fetch created nothing).
fn take_tmp_ref(repo: &Repository) -> Result<Option<Oid>, git2::Error> {
    match repo.find_reference(TMP_REF) {
        Ok(mut r) => {
            let target = r.target();
            r.delete()?;
            Ok(target)
        }
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A short stable name for an upstream URL, used in the tracking ref namespace.
fn url_hash(url: &str) -> String {
    hex(&Sha256::digest(url.as_bytes())[..8])
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The normal components of a path inside a tree; `.` and empty components are dropped.
fn split_path(path: &str) -> Result<Vec<&str>, GitError> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(GitError::InvalidPath {
            path: path.to_owned(),
        });
    }
    Ok(parts)
}

/// What a path resolved to inside a tree.
struct Found {
    id: Oid,
    kind: EntryKind,
}

enum LookupError {
    Invalid,
    Git(git2::Error),
}

fn lookup(root: &Tree, path: &str) -> Result<Found, LookupError> {
    let parts = split_path(path).map_err(|_| LookupError::Invalid)?;
    if parts.is_empty() {
        return Ok(Found {
            id: root.id(),
            kind: EntryKind::Directory,
        });
    }
    let entry = root
        .get_path(Path::new(&parts.join("/")))
        .map_err(LookupError::Git)?;
    Ok(Found {
        id: entry.id(),
        kind: EntryKind::from_mode(entry.filemode()),
    })
}

/// The kind of a git tree entry, from its mode (what git itself goes by).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Directory,
    /// A regular file; executable when any execute bit is set (as `git archive` decides).
    File {
        executable: bool,
    },
    Symlink,
    /// A gitlink: a submodule's commit, whose content is not in this repository.
    Submodule,
    Unknown,
}

impl EntryKind {
    pub(crate) fn from_mode(filemode: i32) -> EntryKind {
        match filemode & 0o170000 {
            0o040000 => EntryKind::Directory,
            0o100000 => EntryKind::File {
                executable: filemode & 0o111 != 0,
            },
            0o120000 => EntryKind::Symlink,
            0o160000 => EntryKind::Submodule,
            _ => EntryKind::Unknown,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            EntryKind::Directory => "a directory",
            EntryKind::File { .. } => "a regular file",
            EntryKind::Symlink => "a symlink",
            EntryKind::Submodule => "a submodule",
            EntryKind::Unknown => "an entry of unknown type",
        }
    }
}
