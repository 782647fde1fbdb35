//! The deterministic build context: the tree at `<commit>:<dir>` as a tar stream.
//!
//! Job: stream the directory a Dockerfile is built from out of the git cache, so that a
//! commit maps to exactly one byte sequence on every machine (and so to one sha256).
//!
//! Invariants of the stream:
//! - Entries are named relative to `dir` and come in byte order of their full names, where a
//!   directory's name ends with `/` and precedes its contents. (Each tree's entries are sorted
//!   by that key before walking, which is git's own tree order; a depth-first walk in that
//!   order is then globally byte-sorted because no name contains `/`. This matches
//!   `git archive <commit>:<dir>` entry for entry, except for a submodule `s` next to a name
//!   like `s.txt`: git sorts gitlinks as files (`s` < `s.txt`), keg as the directory `s/`
//!   it becomes.)
//! - Directories are entries with a trailing `/`, mode 0755; regular files are 0755 if git
//!   records any execute bit, else 0644; symlinks are symlinks (target = blob content, mode
//!   0777, as `git archive` writes them). Submodules (gitlinks) become empty directories, as in
//!   `git archive`, and are listed in [`ContextStats::submodules`] for the caller to report.
//! - Every entry has mtime = the commit's committer time (clamped at 0), uid = gid = 0 and
//!   empty user and group names; no other metadata varies.
//! - Format: POSIX ustar. Names longer than 100 bytes use the ustar prefix field when they
//!   can be split at a `/`, otherwise a PAX extended header (`path`, or `linkpath` for long
//!   symlink targets) precedes the entry. Files of 8 GiB or more use the base-256 size
//!   encoding (read by GNU tar and Go's archive/tar). The stream ends with two zero blocks and
//!   is not padded to a 10 KiB record.
//! - Memory: one blob at a time. Loose objects are streamed through libgit2's object
//!   database reader; packed objects (everything keg fetches) cannot be streamed by libgit2 and
//!   are inflated whole, so the bound is the largest single file plus small buffers.

use std::io::{self, BufWriter, Read, Write};

use git2::{ObjectType, Odb, Oid, Repository, Tree};
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use crate::git::{EntryKind, GitCache, GitError, hex};

const BLOCK: usize = 512;
/// Output buffer; large blob writes bypass it.
const BUFFER: usize = 64 * 1024;

/// What went into a context stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextStats {
    /// Regular files.
    pub files: u64,
    pub symlinks: u64,
    /// Directories, including the empty directories standing for submodules.
    pub directories: u64,
    /// Total size of the regular files.
    pub content_bytes: u64,
    /// Length of the tar stream.
    pub tar_bytes: u64,
    /// Paths (relative to the context directory) of submodules, whose content is not in the
    /// context; the caller should report them.
    pub submodules: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("cannot read {path:?} at commit {commit}: {reason}")]
    Read {
        commit: String,
        path: String,
        reason: String,
    },
    #[error("{path:?} at commit {commit} has an unsupported git file mode {mode:o}")]
    UnsupportedMode {
        commit: String,
        path: String,
        mode: i32,
    },
    #[error("cannot write the build context: {0}")]
    Write(#[source] io::Error),
}

/// Writes the tree at `<commit>:<dir>` to `out` as a tar stream (see the module invariants)
/// and returns what it contained. `out` is buffered internally.
pub fn write_context<W: Write>(
    cache: &GitCache,
    commit: &str,
    dir: &str,
    out: W,
) -> Result<ContextStats, ContextError> {
    cache.with_repo(|repo| {
        let c = cache.find_commit(repo, commit)?;
        let root = cache.subtree(repo, &c, commit, dir)?;
        let odb = repo.odb().map_err(cache.err())?;
        let mut tar = TarStream {
            out: BufWriter::with_capacity(BUFFER, out),
            mtime: u64::try_from(c.time().seconds()).unwrap_or(0),
            commit,
            stats: ContextStats::default(),
        };
        tar.tree(cache, repo, &odb, &root)?;
        tar.finish()
    })
}

/// The sha256 (lowercase hex) of the [`write_context`] stream, computed without storing it,
/// together with the stream's stats.
pub fn context_sha256(
    cache: &GitCache,
    commit: &str,
    dir: &str,
) -> Result<(String, ContextStats), ContextError> {
    let mut hasher = HashWriter(Sha256::new());
    let stats = write_context(cache, commit, dir, &mut hasher)?;
    Ok((hex(&hasher.0.finalize()), stats))
}

struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A tree entry about to be written; `key` is its name, plus `/` if it becomes a directory.
struct Item {
    key: Vec<u8>,
    id: Oid,
    mode: i32,
}

/// The entries of `tree`, in byte order of their keys.
fn sorted_items(tree: &Tree) -> Vec<Item> {
    let mut items: Vec<Item> = tree
        .iter()
        .map(|entry| {
            let mut key = entry.name_bytes().to_vec();
            if matches!(
                EntryKind::from_mode(entry.filemode()),
                EntryKind::Directory | EntryKind::Submodule
            ) {
                key.push(b'/');
            }
            Item {
                key,
                id: entry.id(),
                mode: entry.filemode(),
            }
        })
        .collect();
    items.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    items
}

struct TarStream<'a, W: Write> {
    out: BufWriter<W>,
    mtime: u64,
    commit: &'a str,
    stats: ContextStats,
}

impl<W: Write> TarStream<'_, W> {
    /// Writes every entry under `root`, depth first, with an explicit stack.
    fn tree(
        &mut self,
        cache: &GitCache,
        repo: &Repository,
        odb: &Odb,
        root: &Tree,
    ) -> Result<(), ContextError> {
        // (length of the parent's path prefix, remaining entries of that directory)
        let mut stack = vec![(0, sorted_items(root).into_iter())];
        let mut path = Vec::new();
        while let Some((prefix_len, entries)) = stack.last_mut() {
            let Some(item) = entries.next() else {
                stack.pop();
                continue;
            };
            path.truncate(*prefix_len);
            path.extend_from_slice(&item.key);
            match EntryKind::from_mode(item.mode) {
                EntryKind::Directory => {
                    self.header(&path, EntryType::Directory, 0o755, 0, b"")?;
                    self.stats.directories += 1;
                    let tree = repo.find_tree(item.id).map_err(cache.err())?;
                    stack.push((path.len(), sorted_items(&tree).into_iter()));
                }
                EntryKind::Submodule => {
                    self.header(&path, EntryType::Directory, 0o755, 0, b"")?;
                    self.stats.directories += 1;
                    let name = String::from_utf8_lossy(&path[..path.len() - 1]);
                    self.stats.submodules.push(name.into_owned());
                }
                EntryKind::File { executable } => {
                    let mode = if executable { 0o755 } else { 0o644 };
                    self.file(repo, odb, item.id, &path, mode)?;
                }
                EntryKind::Symlink => {
                    let target = repo
                        .find_blob(item.id)
                        .map_err(|e| self.read_err(&path, e.message()))?;
                    self.header(&path, EntryType::Symlink, 0o777, 0, target.content())?;
                    self.stats.symlinks += 1;
                }
                EntryKind::Unknown => {
                    return Err(ContextError::UnsupportedMode {
                        commit: self.commit.to_owned(),
                        path: String::from_utf8_lossy(&path).into_owned(),
                        mode: item.mode,
                    });
                }
            }
        }
        Ok(())
    }

    /// A regular file: streamed if the object database can, else read whole.
    fn file(
        &mut self,
        repo: &Repository,
        odb: &Odb,
        id: Oid,
        path: &[u8],
        mode: u32,
    ) -> Result<(), ContextError> {
        let size = match odb.reader(id) {
            Ok((mut reader, size, ObjectType::Blob)) => {
                self.header(path, EntryType::Regular, mode, size as u64, b"")?;
                let mut buf = vec![0; BUFFER];
                let mut left = size;
                while left > 0 {
                    let want = left.min(buf.len());
                    let n = reader
                        .read(&mut buf[..want])
                        .map_err(|e| self.read_err(path, &e.to_string()))?;
                    if n == 0 {
                        return Err(self.read_err(path, "the object is shorter than its header"));
                    }
                    self.put(&buf[..n])?;
                    left -= n;
                }
                size
            }
            // Packed objects cannot be streamed by libgit2.
            _ => {
                let blob = repo
                    .find_blob(id)
                    .map_err(|e| self.read_err(path, e.message()))?;
                self.header(path, EntryType::Regular, mode, blob.size() as u64, b"")?;
                self.put(blob.content())?;
                blob.size()
            }
        };
        self.pad(size)?;
        self.stats.files += 1;
        self.stats.content_bytes += size as u64;
        Ok(())
    }

    /// Writes the header of one entry, preceded by a PAX header if a name does not fit.
    fn header(
        &mut self,
        path: &[u8],
        kind: EntryType,
        mode: u32,
        size: u64,
        link: &[u8],
    ) -> Result<(), ContextError> {
        let mut pax = Vec::new();
        let (prefix, name) = ustar_split(path).unwrap_or_else(|| {
            pax_record(&mut pax, "path", path);
            (&[][..], &path[..path.len().min(100)])
        });
        if link.len() > 100 {
            pax_record(&mut pax, "linkpath", link);
        }
        if !pax.is_empty() {
            let mut pax_name = b"PaxHeaders.0/".to_vec();
            pax_name.extend_from_slice(base_name(path));
            pax_name.truncate(100);
            let header = self.make_header(&[], &pax_name, EntryType::XHeader, 0o644, pax.len());
            self.put(header.as_bytes())?;
            self.put(&pax)?;
            self.pad(pax.len())?;
        }
        let mut header = self.make_header(prefix, name, kind, mode, 0);
        header.set_size(size);
        let link = &link[..link.len().min(100)];
        header.as_mut_bytes()[157..157 + link.len()].copy_from_slice(link);
        header.set_cksum();
        self.put(header.as_bytes())
    }

    fn make_header(
        &self,
        prefix: &[u8],
        name: &[u8],
        kind: EntryType,
        mode: u32,
        size: usize,
    ) -> Header {
        let mut header = Header::new_ustar();
        let bytes = header.as_mut_bytes();
        bytes[..name.len()].copy_from_slice(name);
        bytes[345..345 + prefix.len()].copy_from_slice(prefix);
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.mtime);
        header.set_size(size as u64);
        header.set_cksum();
        header
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), ContextError> {
        self.out.write_all(bytes).map_err(ContextError::Write)?;
        self.stats.tar_bytes += bytes.len() as u64;
        Ok(())
    }

    /// Zero padding after `len` bytes of entry data, up to the next block.
    fn pad(&mut self, len: usize) -> Result<(), ContextError> {
        let rem = len % BLOCK;
        if rem == 0 {
            return Ok(());
        }
        self.put(&[0; BLOCK][..BLOCK - rem])
    }

    fn finish(mut self) -> Result<ContextStats, ContextError> {
        self.put(&[0; 2 * BLOCK])?;
        self.out.flush().map_err(ContextError::Write)?;
        Ok(self.stats)
    }

    fn read_err(&self, path: &[u8], reason: &str) -> ContextError {
        ContextError::Read {
            commit: self.commit.to_owned(),
            path: String::from_utf8_lossy(path).into_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// Splits `path` into ustar (prefix, name) fields: name ≤ 100 bytes, prefix ≤ 155, split at
/// the leftmost `/` that works; `None` if it cannot fit.
fn ustar_split(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= 100 {
        return Some((&[], path));
    }
    (0..path.len() - 1)
        .filter(|&i| path[i] == b'/')
        .find(|&i| i <= 155 && path.len() - i - 1 <= 100)
        .map(|i| (&path[..i], &path[i + 1..]))
}

/// The last component of an entry name (ignoring a trailing `/`).
fn base_name(path: &[u8]) -> &[u8] {
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// Appends one PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}
