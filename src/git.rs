//! The git cache: one bare repository shared by every GitRepo of every library.
//!
//! Job: make sure the commits named by manifests are available locally
//! ([`GitCache::ensure_commit`]) and read sources at those commits straight from the object
//! database, without ever checking anything out ([`GitCache::read_file`],
//! [`GitCache::tree_id`], [`GitCache::source_date_epoch`]). keg never reads history: every
//! read is of one commit and its tree, which is what makes shallow fetches safe.
//!
//! How a missing commit gets in:
//! - **Local repositories** (a path or `file://` URL naming a repository on this machine: a
//!   `--git-mirror` to a path, a relative GitRepo) are not fetched from: their pack files
//!   and loose objects are hard-linked into the cache ([`Fetched::Local`]). Nothing is
//!   copied or re-packed, and the cache does not depend on the repository afterwards. When
//!   links are impossible (another filesystem, another user's files, a repository that
//!   borrows objects itself), its object directory is added to the cache's
//!   `objects/info/alternates` instead, and the cache depends on it (docs/cache-keys.md).
//! - **Network transports** fetch exactly the commit, at depth [`FetchSettings::depth`]
//!   (1 by default: the commit and its tree, no history; 0 = full history), into a private
//!   *staging* repository under `<cache>/git/keg-staging/` whose alternates point at the
//!   cache. Only the fetch's result is merged into the cache, under the lock: the shallow
//!   boundary, then the pack files (renamed), then the refs. Fetches of different
//!   repositories therefore run in parallel, in one process or several.
//!
//! Invariants:
//! - All upstreams share one bare repository at `<cache>/git`. Remotes are anonymous: nothing
//!   about an upstream is ever written into the repository config. gc is disabled in the
//!   config for the benefit of the `git` CLI; libgit2 itself never collects garbage.
//! - Every commit keg has fetched is pinned by `refs/keg/commits/<id>`, and a pin is created
//!   only after the commit is known to be in the object database (its own or an alternate
//!   mirror's). Everything reachable from a pinned commit is present, except history cut off
//!   at a commit listed in `shallow` (git's own convention, which `git fsck` checks).
//! - A commit that is already present and pinned costs no network and no lock.
//! - Writes to the cache (alternates, `shallow`, pack files, refs) happen under an exclusive
//!   file lock on `<cache>/git/keg.lock` and re-check for the commit after taking it, so
//!   several threads and several keg processes can share a cache. Network transfers happen
//!   outside the lock, in staging repositories. Each step of a merge is atomic (rename), and
//!   they are ordered so that a process killed at any point leaves a consistent cache: a
//!   `shallow` entry before the commit it describes, a pack's `.idx` after its `.pack`, a
//!   pin last. Staging repositories of dead processes are removed by the next fetch. Linking
//!   a local repository's objects runs under the lock with a marker file naming it, and a
//!   writer that finds the marker finishes that linking before it pins anything.
//! - Fetches of one URL are serialized within a process (the second benefits from the
//!   first); different URLs proceed in parallel.
//! - [`GitCache`] is `Send + Sync`: `git2::Repository` is not `Sync`, so each operation checks
//!   a handle out of a small pool and returns it afterwards. A handle opened before the
//!   alternates changed is replaced (libgit2 reads alternates when a repository is opened).
//!
//! URLs are resolved by the caller with [`resolve_url`] (mirrors, then relative paths
//! against the library directory) before being handed to [`GitCache::ensure_commit`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use git2::{
    AutotagOption, Commit, ErrorCode, FetchOptions, FetchPrune, ObjectType, Oid, Reference,
    Repository, RepositoryInitOptions, Tree,
};
use sha2::{Digest, Sha256};

/// Name of the environment variable holding comma-separated mirrors (see [`parse_mirrors`]).
pub const MIRRORS_ENV: &str = "KEG_GIT_MIRRORS";

/// Ref namespace pinning every commit keg needs: `refs/keg/commits/<id>`.
pub(crate) const PIN_PREFIX: &str = "refs/keg/commits/";
/// Where GitFetch refs are tracked: `refs/keg/remotes/<url hash>/<ref without "refs/">`.
pub(crate) const REMOTES_PREFIX: &str = "refs/keg/remotes/";
/// `refs/keg/complete/<url hash>`: the last commit fetched from that URL with its whole
/// history, offered to the server as a `have` by the next full-history fetch.
pub(crate) const COMPLETE_PREFIX: &str = "refs/keg/complete/";
/// Scratch ref every fetch writes to (in a staging repository).
const TMP_REF: &str = "refs/keg/tmp/fetch";
/// The `have` hint in a staging repository.
const HAVE_REF: &str = "refs/keg/have";
/// Lock file guarding writes, inside the bare repository.
const LOCK_FILE: &str = "keg.lock";
/// Present while a local repository's objects are being hard-linked in (names it).
const LINKING_MARKER: &str = "keg-linking";
/// Staging repositories, inside the bare repository.
pub(crate) const STAGING_DIR: &str = "keg-staging";
/// libgit2's `GIT_FETCH_DEPTH_UNSHALLOW`: fetch the history behind shallow commits.
const UNSHALLOW: i32 = i32::MAX;

/// How network fetches are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchSettings {
    /// Commits of history to fetch with each commit: 1 (the default) is the commit alone,
    /// 0 is the whole history. `--unshallow` / `KEG_GIT_DEPTH=0` set 0.
    pub depth: u32,
    /// Repositories fetched at the same time (network fetches wait on latency, not CPU).
    pub jobs: usize,
}

/// The environment variable setting [`FetchSettings::depth`].
pub const DEPTH_ENV: &str = "KEG_GIT_DEPTH";
/// The environment variable setting [`FetchSettings::jobs`].
pub const FETCH_JOBS_ENV: &str = "KEG_FETCH_JOBS";

impl Default for FetchSettings {
    fn default() -> FetchSettings {
        FetchSettings { depth: 1, jobs: 16 }
    }
}

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
    #[error(
        "commit {commit} was in the git cache, read from {url}, which is gone or no longer has \
         it ({reason}); restore it, point the GitRepo or --git-mirror at a copy, or run \
         `keg gc --dissociate` while local mirrors are still there"
    )]
    Vanished {
        commit: String,
        url: String,
        reason: String,
    },
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
    #[error("git cache: {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`git {args}` failed: {message}")]
    GitCommand { args: String, message: String },
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
    /// Found in a repository on this machine: its pack files and loose objects were
    /// hard-linked into the cache (nothing copied or re-packed), or, when links are
    /// impossible, its object directory became an alternate of the cache.
    Local,
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
    settings: FetchSettings,
    /// Idle repository handles with the [`GitCache::generation`] they were opened at.
    handles: Mutex<Vec<(u64, Repository)>>,
    /// Bumped whenever this process changes the cache's alternates (or may have seen
    /// another process change them): older handles are reopened.
    generation: AtomicU64,
    /// One mutex per URL: fetches of one URL are serialized within this process.
    urls: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// git:// URLs already warned about by this cache.
    warned: Mutex<HashSet<String>>,
    /// (URL, ref) -> whether the repository at URL has the ref, as seen while fetching.
    refs_seen: Mutex<HashMap<(String, String), bool>>,
    /// Whether this process already removed dead processes' staging repositories.
    swept: std::sync::Once,
}

impl GitCache {
    /// Opens the cache under `cache_dir` with the default [`FetchSettings`], creating the
    /// bare repository `<cache_dir>/git` (with gc disabled) if it does not exist yet.
    pub fn open(cache_dir: &Path) -> Result<GitCache, GitError> {
        GitCache::open_with(cache_dir, FetchSettings::default())
    }

    /// [`GitCache::open`] with explicit fetch settings.
    pub fn open_with(cache_dir: &Path, settings: FetchSettings) -> Result<GitCache, GitError> {
        limit_pack_mappings();
        let path = cache_dir.join("git");
        let repo = match Repository::open_bare(&path) {
            Ok(repo) => repo,
            Err(_) => create(&path)?,
        };
        Ok(GitCache {
            path,
            settings,
            handles: Mutex::new(vec![(0, repo)]),
            generation: AtomicU64::new(0),
            urls: Mutex::new(HashMap::new()),
            warned: Mutex::new(HashSet::new()),
            refs_seen: Mutex::new(HashMap::new()),
            swept: std::sync::Once::new(),
        })
    }

    /// The bare repository's path (`<cache_dir>/git`).
    pub fn repo_path(&self) -> &Path {
        &self.path
    }

    /// How this cache fetches.
    pub fn settings(&self) -> FetchSettings {
        self.settings
    }

    /// Whether the commit's object is in the cache (`false` for a malformed id).
    pub fn has_commit(&self, commit: &str) -> bool {
        let Ok(oid) = parse_commit(commit) else {
            return false;
        };
        self.with_repo(|repo| Ok::<_, GitError>(repo.find_commit(oid).is_ok()))
            .unwrap_or(false)
    }

    /// Whether [`GitCache::ensure_commit`] has nothing to do for `commit`: it is present and
    /// pinned (and, with a depth of 0, not shallow).
    pub fn is_ready(&self, commit: &str) -> bool {
        let Ok(oid) = parse_commit(commit) else {
            return false;
        };
        self.with_repo(|repo| self.is_ready_in(repo, oid))
            .unwrap_or(false)
    }

    /// Whether the commit is in the cache with its history cut off (a `shallow` entry).
    pub fn is_shallow(&self, commit: &str) -> bool {
        parse_commit(commit).is_ok_and(|oid| {
            read_shallow(&self.path)
                .map(|s| s.contains(&oid))
                .unwrap_or(false)
        })
    }

    /// Makes sure `commit` is in the cache and pinned, getting it from `url` if needed.
    ///
    /// `url` must already be resolved ([`resolve_url`]). If the commit is present no network
    /// is used. A local repository's objects are linked in (see the module documentation).
    /// Otherwise the commit id itself is fetched (servers may refuse), then `fetch_ref`
    /// (GitFetch, e.g. `refs/heads/main`) is fetched into `refs/keg/remotes/<url hash>/...`
    /// (deepened to its whole history when a shallow tip is not enough), and the commit must
    /// then be present. With a depth of 0, a commit present but shallow gets its history.
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
        if self.with_repo(|repo| self.is_ready_in(repo, oid))? {
            return Ok(Fetched::AlreadyPresent);
        }

        let url_mutex = {
            let mut urls = lock_ignoring_poison(&self.urls);
            Arc::clone(urls.entry(url.to_owned()).or_default())
        };
        let _same_url = lock_ignoring_poison(&url_mutex);
        // Another thread or process may have brought it in meanwhile; a fresh handle sees
        // alternates added since this process opened its handles.
        {
            let repo = self.fresh()?;
            if self.is_ready_in(&repo, oid)? {
                self.bump();
                return Ok(Fetched::AlreadyPresent);
            }
            if repo.find_commit(oid).is_ok() && !self.wants_history(oid)? {
                let _lock = self.lock()?;
                self.finish_interrupted_link();
                self.pin(&repo, oid)?;
                self.bump();
                return Ok(Fetched::AlreadyPresent);
            }
        }
        // A pin whose commit cannot be read: it was borrowed (alternates) from a local
        // repository that is gone (or pruned it). Whatever the GitRepo resolves to now is tried.
        let was_pinned = self.with_repo(|repo| {
            Ok::<_, GitError>(repo.find_reference(&format!("{PIN_PREFIX}{oid}")).is_ok())
        })?;
        let result = match local_repository(url) {
            Some(mirror) => self.take_local(url, &mirror, fetch_ref, oid),
            None => {
                self.warn_if_unauthenticated(url);
                self.fetch_staged(url, fetch_ref, oid)
            }
        };
        match result {
            Err(
                e @ (GitError::FetchFailed { .. }
                | GitError::MissingRemoteRef { .. }
                | GitError::CommitNotOnRef { .. }),
            ) if was_pinned => Err(GitError::Vanished {
                commit: oid.to_string(),
                url: url.to_owned(),
                reason: e.to_string(),
            }),
            other => other,
        }
    }

    /// Pinned, present, and (with a depth of 0) not shallow.
    fn is_ready_in(&self, repo: &Repository, oid: Oid) -> Result<bool, GitError> {
        Ok(is_pinned(repo, oid) && !self.wants_history(oid)?)
    }

    /// With a depth of 0, whether `oid` is listed in `shallow` (its history is missing).
    fn wants_history(&self, oid: Oid) -> Result<bool, GitError> {
        if self.settings.depth != 0 {
            return Ok(false);
        }
        Ok(read_shallow(&self.path)
            .map_err(|source| self.io_err("reading", "shallow", source))?
            .contains(&oid))
    }

    /// Takes `oid` from the local repository `mirror`: hard-links its pack files and loose
    /// objects into the cache (or, when that is impossible, adds its object directory to
    /// the cache's alternates), then pins the commit.
    fn take_local(
        &self,
        url: &str,
        mirror: &Repository,
        fetch_ref: &str,
        oid: Oid,
    ) -> Result<Fetched, GitError> {
        let objects = mirror.commondir().join("objects");
        let objects = objects.canonicalize().unwrap_or(objects);
        let _lock = self.lock()?;
        self.finish_interrupted_link();
        // A shallow mirror's boundary is the cache's too: written before its objects.
        let mut shallow =
            read_shallow(&self.path).map_err(|s| self.io_err("reading", "shallow", s))?;
        let mirror_shallow = read_shallow(mirror.commondir()).unwrap_or_default();
        if !mirror_shallow.is_subset(&shallow) {
            shallow.extend(mirror_shallow);
            write_shallow(&self.path, &shallow)
                .map_err(|s| self.io_err("writing", "shallow", s))?;
        }
        let linked = self
            .link_mirror(&objects)
            .map_err(|s| self.io_err("linking objects from", &objects.to_string_lossy(), s))?;
        if !linked
            && add_alternate(&self.path, &objects)
                .map_err(|s| self.io_err("writing", "objects/info/alternates", s))?
        {
            self.bump();
        }
        lock_ignoring_poison(&self.refs_seen).insert(
            (url.to_owned(), fetch_ref.to_owned()),
            mirror.find_reference(fetch_ref).is_ok(),
        );
        let repo = self.fresh()?;
        if repo.find_commit(oid).is_err() {
            let by_id = format!("the local repository {url} does not have it");
            return Err(if mirror.find_reference(fetch_ref).is_ok() {
                GitError::CommitNotOnRef {
                    url: url.to_owned(),
                    commit: oid.to_string(),
                    fetch_ref: fetch_ref.to_owned(),
                    by_id,
                }
            } else {
                GitError::MissingRemoteRef {
                    url: url.to_owned(),
                    commit: oid.to_string(),
                    fetch_ref: fetch_ref.to_owned(),
                    by_id,
                }
            });
        }
        // A commit that was shallow in the cache has its history now, if the mirror has it.
        if shallow.contains(&oid) && parents_present(&repo, oid) {
            shallow.remove(&oid);
            write_shallow(&self.path, &shallow)
                .map_err(|s| self.io_err("writing", "shallow", s))?;
        }
        self.pin(&repo, oid)?;
        Ok(Fetched::Local)
    }

    /// Hard-links a local repository's objects into the cache (see [`link_objects`]), with
    /// a marker file while it runs: a process killed in the middle leaves objects whose
    /// closure may be incomplete, so the next writer finishes the job first
    /// ([`GitCache::finish_interrupted_link`]). Whether linking was possible.
    fn link_mirror(&self, objects: &Path) -> std::io::Result<bool> {
        let marker = self.path.join(LINKING_MARKER);
        fs::write(&marker, objects.to_string_lossy().as_bytes())?;
        let linked = link_objects(objects, &self.path.join("objects"))?;
        fs::remove_file(&marker)?;
        Ok(linked)
    }

    /// Under the lock: finishes a hard-linking that a killed process left half done.
    pub(crate) fn finish_interrupted_link(&self) {
        let marker = self.path.join(LINKING_MARKER);
        if let Ok(objects) = fs::read_to_string(&marker) {
            let objects = PathBuf::from(objects.trim());
            if objects.is_dir() {
                let _ = link_objects(&objects, &self.path.join("objects"));
            }
            let _ = fs::remove_file(&marker);
        }
    }

    /// Fetches `oid` over the network into a staging repository, then merges it.
    fn fetch_staged(&self, url: &str, fetch_ref: &str, oid: Oid) -> Result<Fetched, GitError> {
        let deepen = self.wants_history(oid)?;
        let depth = match self.settings.depth {
            0 if deepen => UNSHALLOW,
            0 => 0,
            n => i32::try_from(n).unwrap_or(UNSHALLOW),
        };
        let hint = if self.settings.depth == 0 {
            self.with_repo(|repo| Ok::<_, GitError>(complete_hint(repo, url)))?
        } else {
            None
        };
        let initial: BTreeSet<Oid> = if deepen {
            [oid].into()
        } else {
            BTreeSet::new()
        };
        let stage = self.stage(&initial, hint)?;
        // The commit is in the staging repository's object database, and not cut off there
        // when its history is what we came for.
        let need_history = deepen || self.settings.depth == 0;
        let arrived = |stage: &Staging| -> Result<bool, GitError> {
            Ok(stage.repo.find_commit(oid).is_ok()
                && (!need_history || !stage.shallow().map_err(self.staging_err())?.contains(&oid)))
        };

        let id_spec = format!("+{oid}:{TMP_REF}");
        let by_id = match fetch(&stage.repo, url, &id_spec, depth) {
            Ok(advertised) => {
                self.saw_refs(url, fetch_ref, &advertised);
                take_tmp_ref(&stage.repo).map_err(self.err())?;
                if arrived(&stage)? {
                    self.merge(
                        stage,
                        oid,
                        &initial,
                        url,
                        None,
                        depth == 0 || depth == UNSHALLOW,
                    )?;
                    return Ok(Fetched::ById);
                }
                "the server did not send it".to_owned()
            }
            Err(e) => e.message().to_owned(),
        };

        let ref_spec = format!("+{fetch_ref}:{TMP_REF}");
        let failed = |e: git2::Error, by_id: &str| GitError::FetchFailed {
            url: url.to_owned(),
            commit: oid.to_string(),
            fetch_ref: fetch_ref.to_owned(),
            by_id: by_id.to_owned(),
            by_ref: e.message().to_owned(),
        };
        let advertised =
            fetch(&stage.repo, url, &ref_spec, depth).map_err(|e| failed(e, &by_id))?;
        self.saw_refs(url, fetch_ref, &advertised);
        let Some(mut tip) = take_tmp_ref(&stage.repo).map_err(self.err())? else {
            return Err(GitError::MissingRemoteRef {
                url: url.to_owned(),
                commit: oid.to_string(),
                fetch_ref: fetch_ref.to_owned(),
                by_id,
            });
        };
        let mut history = depth == 0 || depth == UNSHALLOW;
        if !arrived(&stage)? && !history {
            // The commit is behind the tip: deepen to the ref's whole history.
            fetch(&stage.repo, url, &ref_spec, UNSHALLOW).map_err(|e| failed(e, &by_id))?;
            tip = take_tmp_ref(&stage.repo)
                .map_err(self.err())?
                .unwrap_or(tip);
            history = true;
        }
        if !arrived(&stage)? {
            return Err(GitError::CommitNotOnRef {
                url: url.to_owned(),
                commit: oid.to_string(),
                fetch_ref: fetch_ref.to_owned(),
                by_id,
            });
        }
        let tracking = format!(
            "{REMOTES_PREFIX}{}/{}",
            url_hash(url),
            &fetch_ref["refs/".len()..]
        );
        self.merge(stage, oid, &initial, url, Some((tracking, tip)), history)?;
        Ok(Fetched::ViaRef)
    }

    /// Creates a staging repository: bare, its alternates pointing at the cache's objects,
    /// `shallow` listing `initial`, and `hint` (a commit of the cache) as its only ref.
    /// Created under the cache lock so that [`GitCache::sweep`] never sees one unlocked.
    fn stage(&self, initial: &BTreeSet<Oid>, hint: Option<Oid>) -> Result<Staging, GitError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let _lock = self.lock()?;
        self.swept.call_once(|| {
            sweep_staging(&self.path);
        });
        let root = self.path.join(STAGING_DIR);
        fs::create_dir_all(&root).map_err(|s| self.io_err("creating", STAGING_DIR, s))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "{}-{}-{nanos:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = root.join(&name);
        let lock_path = root.join(format!("{name}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|s| self.io_err("creating", "a staging lock", s))?;
        fs4::FileExt::lock(&lock).map_err(|source| GitError::Lock {
            path: lock_path.clone(),
            source,
        })?;
        let guard = StagingDir {
            dir: dir.clone(),
            lock_path,
            _lock: lock,
        };
        Repository::init_opts(&dir, RepositoryInitOptions::new().bare(true)).map_err(self.err())?;
        let objects = self.path.join("objects");
        let objects = objects.canonicalize().unwrap_or(objects);
        fs::write(
            dir.join("objects/info/alternates"),
            format!("{}\n", objects.display()),
        )
        .map_err(self.staging_err())?;
        write_shallow(&dir, initial).map_err(self.staging_err())?;
        // Opened after the alternates are written: libgit2 reads them when it opens.
        let repo = Repository::open_bare(&dir).map_err(self.err())?;
        if let Some(hint) = hint {
            repo.reference(HAVE_REF, hint, true, "keg: have")
                .map_err(self.err())?;
        }
        Ok(Staging { repo, guard })
    }

    /// Moves a staging repository's result into the cache, under the lock: `shallow`
    /// first, then the packs, then the refs (see the module invariants). `history`: the
    /// fetch brought whole histories, which may complete older shallow commits.
    fn merge(
        &self,
        stage: Staging,
        oid: Oid,
        initial: &BTreeSet<Oid>,
        url: &str,
        tracking: Option<(String, Oid)>,
        history: bool,
    ) -> Result<(), GitError> {
        let staged = stage.shallow().map_err(self.staging_err())?;
        let _lock = self.lock()?;
        self.finish_interrupted_link();
        let repo = self.fresh()?;
        let odb = repo.odb().map_err(self.err())?;
        let shallow_err = |s| self.io_err("writing", "shallow", s);
        let mut shallow =
            read_shallow(&self.path).map_err(|s| self.io_err("reading", "shallow", s))?;
        // 1. New boundaries, before the commits they describe; not for a commit the cache
        //    already had (with its history, or listed already).
        let added: Vec<Oid> = staged
            .difference(initial)
            .copied()
            .filter(|c| !shallow.contains(c) && !odb.exists(*c))
            .collect();
        if !added.is_empty() {
            shallow.extend(added);
            write_shallow(&self.path, &shallow).map_err(shallow_err)?;
        }
        // 2. The objects: each pack's `.idx` after its `.pack`.
        move_packs(
            &stage.guard.dir.join("objects/pack"),
            &self.path.join("objects/pack"),
        )
        .map_err(|s| self.io_err("moving packs into", "objects/pack", s))?;
        odb.refresh().map_err(self.err())?;
        if repo.find_commit(oid).is_err() {
            return Err(GitError::MissingCommit {
                commit: oid.to_string(),
            });
        }
        // 3. Boundaries whose history arrived: the deepened ones and, after a fetch of whole
        //    histories, any older one it completed.
        let completed: Vec<Oid> = shallow
            .iter()
            .copied()
            .filter(|c| {
                (initial.contains(c) && !staged.contains(c))
                    || (history && parents_present(&repo, *c))
            })
            .collect();
        if !completed.is_empty() {
            for c in &completed {
                shallow.remove(c);
            }
            write_shallow(&self.path, &shallow).map_err(shallow_err)?;
        }
        // 4. The refs, the pin last.
        if let Some((name, tip)) = tracking {
            self.set_ref(&repo, &name, tip)?;
        }
        if self.settings.depth == 0 {
            self.set_ref(&repo, &format!("{COMPLETE_PREFIX}{}", url_hash(url)), oid)?;
        }
        self.pin(&repo, oid)?;
        self.bump();
        Ok(())
    }

    /// Records whether `url` advertised `fetch_ref` in a fetch this process made.
    fn saw_refs(&self, url: &str, fetch_ref: &str, advertised: &HashSet<String>) {
        lock_ignoring_poison(&self.refs_seen).insert(
            (url.to_owned(), fetch_ref.to_owned()),
            advertised.contains(fetch_ref),
        );
    }

    /// Whether the repository at `url` has the ref `fetch_ref`: known without a round trip
    /// when this process fetched from `url` (the fetch's own ref advertisement, or the local
    /// repository's refs), else one ref listing, no fetch.
    pub fn remote_has_ref(&self, url: &str, fetch_ref: &str) -> Result<bool, GitError> {
        if let Some(known) =
            lock_ignoring_poison(&self.refs_seen).get(&(url.to_owned(), fetch_ref.to_owned()))
        {
            return Ok(*known);
        }
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

    /// SOURCE_DATE_EPOCH for a build at `commit`: the later of its author and committer
    /// times, as bashbrew computes it (`gitfs.CommitTime`). It needs the commit alone, no
    /// history, so it is the same in a shallow cache and a full one (docs/cache-keys.md).
    pub fn source_date_epoch(&self, commit: &str) -> Result<i64, GitError> {
        self.with_repo(|repo| {
            let c = self.find_commit(repo, commit)?;
            Ok(c.time().seconds().max(c.author().when().seconds()))
        })
    }

    /// Runs `f` with a repository handle checked out of the pool.
    pub(crate) fn with_repo<T, E: From<GitError>>(
        &self,
        f: impl FnOnce(&Repository) -> Result<T, E>,
    ) -> Result<T, E> {
        let current = self.generation.load(Ordering::Acquire);
        let idle = lock_ignoring_poison(&self.handles).pop();
        let repo = match idle {
            Some((generation, repo)) if generation >= current => repo,
            _ => self.fresh()?,
        };
        let result = f(&repo);
        lock_ignoring_poison(&self.handles).push((current, repo));
        result
    }

    /// A newly opened handle: it sees the alternates as they are now.
    fn fresh(&self) -> Result<Repository, GitError> {
        Repository::open_bare(&self.path).map_err(|source| GitError::Open {
            path: self.path.clone(),
            source,
        })
    }

    /// Retires every pooled handle (the alternates may have changed).
    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
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

    fn staging_err(&self) -> impl Fn(std::io::Error) -> GitError + '_ {
        |source| self.io_err("writing", STAGING_DIR, source)
    }

    fn io_err(&self, what: &'static str, file: &str, source: std::io::Error) -> GitError {
        GitError::Io {
            what,
            path: self.path.join(file),
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
        self.set_ref(repo, &format!("{PIN_PREFIX}{oid}"), oid)
    }

    /// Creates or moves a ref, under the cache lock. A `<ref>.lock` left by a killed keg
    /// process would make libgit2 refuse: with the cache lock held no keg process is
    /// writing that ref, so the stale lock is removed and the write retried once.
    pub(crate) fn set_ref(&self, repo: &Repository, name: &str, oid: Oid) -> Result<(), GitError> {
        match repo.reference(name, oid, true, "keg") {
            Ok(_) => Ok(()),
            Err(e) if e.code() == ErrorCode::Locked => {
                let _ = fs::remove_file(self.path.join(format!("{name}.lock")));
                repo.reference(name, oid, true, "keg")
                    .map(drop)
                    .map_err(self.err())
            }
            Err(e) => Err(self.err()(e)),
        }
    }

    /// Takes the exclusive cache lock; it is released when the returned file is dropped.
    pub(crate) fn lock(&self) -> Result<File, GitError> {
        lock_file(&self.path)
    }

    fn warn_if_unauthenticated(&self, url: &str) {
        if url.starts_with("git://") && lock_ignoring_poison(&self.warned).insert(url.to_owned()) {
            eprintln!("warning: {url} uses the unauthenticated git:// protocol; prefer https://");
        }
    }
}

/// A staging repository (see the module documentation). Fields drop in order: the
/// repository is closed before its directory is removed.
struct Staging {
    repo: Repository,
    guard: StagingDir,
}

impl Staging {
    /// The staging repository's `shallow` entries.
    fn shallow(&self) -> std::io::Result<BTreeSet<Oid>> {
        read_shallow(&self.guard.dir)
    }
}

/// A staging repository's directory and its lock, held while it is in use; both are
/// removed when dropped (or, after a crash, by the next [`sweep_staging`]).
struct StagingDir {
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(&self.lock_path);
    }
}

/// Removes the staging repositories of processes that are gone: their lock is free. Runs
/// under the cache lock, and staging repositories are only created under it, so a new one
/// is always locked before anyone can see it.
pub(crate) fn sweep_staging(repo_path: &Path) -> usize {
    let root = repo_path.join(STAGING_DIR);
    let Ok(entries) = fs::read_dir(&root) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "lock") {
            let Ok(file) = OpenOptions::new().write(true).open(&path) else {
                continue;
            };
            if fs4::FileExt::try_lock(&file).is_ok() {
                let _ = fs::remove_dir_all(path.with_extension(""));
                let _ = fs::remove_file(&path);
                removed += 1;
            }
        } else if path.is_dir() && !path.with_extension("lock").exists() {
            // A directory whose lock file is gone: its owner finished removing it, or died
            // doing so.
            let _ = fs::remove_dir_all(&path);
            removed += 1;
        }
    }
    removed
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
pub(crate) fn parse_commit(commit: &str) -> Result<Oid, GitError> {
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

/// The repository a resolved URL names when it is on this machine (a path or `file://`).
fn local_repository(url: &str) -> Option<Repository> {
    let path = match url.strip_prefix("file://") {
        Some(path) => path,
        None if is_local_path(url) => url,
        None => return None,
    };
    Repository::open_ext(
        path,
        git2::RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .ok()
}

/// The cache's last complete-history commit from `url`, if it is still there.
fn complete_hint(repo: &Repository, url: &str) -> Option<Oid> {
    let target = repo
        .find_reference(&format!("{COMPLETE_PREFIX}{}", url_hash(url)))
        .ok()?
        .target()?;
    repo.find_commit(target).is_ok().then_some(target)
}

/// One fetch of `refspec` from `url` through an anonymous remote, without tags or FETCH_HEAD.
/// `depth` 0 is the whole history, [`UNSHALLOW`] the history behind shallow commits.
/// Returns the names of the refs the server advertised (the same connection: no extra
/// round trip).
fn fetch(
    repo: &Repository,
    url: &str,
    refspec: &str,
    depth: i32,
) -> Result<HashSet<String>, git2::Error> {
    if let Ok(mut stale) = repo.find_reference(TMP_REF) {
        stale.delete()?;
    }
    let mut remote = repo.remote_anonymous(url)?;
    remote.connect(git2::Direction::Fetch)?;
    let advertised = remote
        .list()?
        .iter()
        .map(|head| head.name().to_owned())
        .collect();
    let mut options = FetchOptions::new();
    options
        .download_tags(AutotagOption::None)
        .update_fetchhead(false)
        .prune(FetchPrune::Off)
        .depth(depth);
    remote.download(&[refspec], Some(&mut options))?;
    remote.disconnect()?;
    remote.update_tips(
        None,
        git2::RemoteUpdateFlags::empty(),
        AutotagOption::None,
        Some("keg: fetch"),
    )?;
    Ok(advertised)
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

/// The commits listed in `<git_dir>/shallow` (none when the file does not exist).
pub(crate) fn read_shallow(git_dir: &Path) -> std::io::Result<BTreeSet<Oid>> {
    match fs::read_to_string(git_dir.join("shallow")) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|line| Oid::from_str(line.trim()).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e),
    }
}

/// Replaces `<git_dir>/shallow` atomically (removes it when `commits` is empty).
pub(crate) fn write_shallow(git_dir: &Path, commits: &BTreeSet<Oid>) -> std::io::Result<()> {
    let path = git_dir.join("shallow");
    if commits.is_empty() {
        return match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let text: String = commits.iter().map(|c| format!("{c}\n")).collect();
    replace_file(&path, text.as_bytes())
}

/// Writes `path` through a temp file beside it and a rename: a process killed at any point
/// leaves the old file or the new one. (No fsync: like git's own defaults, the cache is
/// safe against killed processes, not against power loss; a sync per fetch, under the
/// lock, would serialize parallel fetches on the disk.)
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("keg-tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    drop(file);
    fs::rename(&tmp, path)
}

/// The object directories listed in `<git_dir>/objects/info/alternates`.
pub(crate) fn read_alternates(git_dir: &Path) -> std::io::Result<Vec<String>> {
    match fs::read_to_string(git_dir.join("objects/info/alternates")) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Replaces the alternates list.
pub(crate) fn write_alternates(git_dir: &Path, dirs: &[String]) -> std::io::Result<()> {
    let path = git_dir.join("objects/info/alternates");
    if dirs.is_empty() {
        return match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    fs::create_dir_all(git_dir.join("objects/info"))?;
    let text: String = dirs.iter().map(|d| format!("{d}\n")).collect();
    replace_file(&path, text.as_bytes())
}

/// Hard-links every object of the object directory `from` that `to` lacks: each complete
/// pack (`.pack`, then a `.keep` naming it keg's, then `.idx`, which makes it visible) and
/// each loose object. Files are immutable in git, so a link shares them at no cost, and
/// survives the source repository being repacked, pruned or removed. `Ok(false)` when
/// links cannot be made (another filesystem, a file of another user) or `from` borrows
/// objects itself (it has alternates): the caller falls back to alternates.
fn link_objects(from: &Path, to: &Path) -> std::io::Result<bool> {
    use std::io::ErrorKind;
    if from.join("info/alternates").exists() {
        return Ok(false);
    }
    // Ok(true): linked or already there; Ok(false): links impossible.
    let link = |source: &Path, target: &Path| -> std::io::Result<bool> {
        match fs::hard_link(source, target) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(true),
            // The source repository is repacking: what is gone is in a new pack.
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
            Err(e)
                if e.kind() == ErrorKind::CrossesDevices
                    || e.kind() == ErrorKind::PermissionDenied
                    || e.raw_os_error() == Some(libc::EPERM) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    };
    let (from_packs, to_packs) = (from.join("pack"), to.join("pack"));
    if let Ok(entries) = fs::read_dir(&from_packs) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".idx")) else {
                continue;
            };
            if to_packs.join(format!("{stem}.idx")).exists() {
                continue;
            }
            if !link(
                &from_packs.join(format!("{stem}.pack")),
                &to_packs.join(format!("{stem}.pack")),
            )? {
                return Ok(false);
            }
            fs::write(
                to_packs.join(format!("{stem}.keep")),
                format!("{KEEP_PREFIX}{}\n", from.display()),
            )?;
            for ext in ["rev", "idx"] {
                let source = from_packs.join(format!("{stem}.{ext}"));
                if source.exists() && !link(&source, &to_packs.join(format!("{stem}.{ext}")))? {
                    return Ok(false);
                }
            }
        }
    }
    for entry in fs::read_dir(from)?.flatten() {
        let name = entry.file_name();
        let Some(dir) = name.to_str() else { continue };
        if dir.len() != 2 || !dir.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(objects) = fs::read_dir(entry.path()) else {
            continue;
        };
        for object in objects.flatten() {
            let target = to.join(dir).join(object.file_name());
            if target.exists() {
                continue;
            }
            fs::create_dir_all(to.join(dir))?;
            if !link(&object.path(), &target)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// How `.keep` files of packs keg hard-linked from a local repository start.
pub(crate) const KEEP_PREFIX: &str = "keg: linked from ";

/// Adds `objects` to the alternates unless listed; whether it was added.
fn add_alternate(git_dir: &Path, objects: &Path) -> std::io::Result<bool> {
    let mut dirs = read_alternates(git_dir)?;
    let line = objects.to_string_lossy().into_owned();
    if dirs.contains(&line) {
        return Ok(false);
    }
    dirs.push(line);
    write_alternates(git_dir, &dirs)?;
    Ok(true)
}

/// Whether every parent of commit `oid`, as its object records them (not as `shallow`
/// hides them), is in the object database.
pub(crate) fn parents_present(repo: &Repository, oid: Oid) -> bool {
    let Ok(odb) = repo.odb() else {
        return false;
    };
    let Ok(object) = odb.read(oid) else {
        return false;
    };
    if object.kind() != ObjectType::Commit {
        return false;
    }
    let data = object.data();
    let header = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(data, |end| &data[..end]);
    String::from_utf8_lossy(header)
        .lines()
        .filter_map(|line| line.strip_prefix("parent "))
        .all(|id| Oid::from_str(id.trim()).is_ok_and(|id| odb.exists(id)))
}

/// Moves every complete pack (`.pack` with its `.idx`) from `from` into `to`: the `.pack`
/// first, the `.idx` (which makes the pack visible to git and libgit2) last.
fn move_packs(from: &Path, to: &Path) -> std::io::Result<()> {
    let Ok(entries) = fs::read_dir(from) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "pack") || !path.with_extension("idx").exists() {
            continue;
        }
        let Some(name) = path.file_name() else {
            continue;
        };
        let target = to.join(name);
        fs::rename(&path, &target)?;
        for ext in ["rev", "idx"] {
            let side = path.with_extension(ext);
            if side.exists() {
                fs::rename(&side, target.with_extension(ext))?;
            }
        }
    }
    Ok(())
}

/// A short stable name for an upstream URL, used in the tracking ref namespaces.
pub(crate) fn url_hash(url: &str) -> String {
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
