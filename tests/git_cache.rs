//! Integration tests for the git cache (`keg::git`) and the build context (`keg::context`).
//!
//! Every test builds real repositories with git2 in temporary directories and fetches from
//! them through `file://` URLs, plain paths or a `git daemon` on 127.0.0.1: no network. The
//! `git` CLI is the reference for `git archive` and `git log`.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use common::git_daemon;

use git2::{IndexEntry, IndexTime, Oid, Repository, Signature, Time};
use keg::context::{ContextError, context_sha256, write_context};
use keg::git::{Fetched, GitCache, GitError, Mirror, parse_mirror, parse_mirrors, resolve_url};
use tempfile::TempDir;

const T1: i64 = 1_600_000_000;
const T2: i64 = 1_600_000_100;
const T3: i64 = 1_600_000_200;
const T4: i64 = 1_600_000_300;
const T5: i64 = 1_600_000_400;

/// An upstream repository and the commits the tests use.
struct Upstream {
    _dir: TempDir,
    /// Directory holding the repository (`<root>/upstream`), for relative-path tests.
    root: PathBuf,
    path: PathBuf,
    /// main: c1 -> c2 (changes other/ only) -> c4 (merge of c2 and c3).
    c1: Oid,
    c2: Oid,
    /// On `feature` only: changes app/a.txt.
    c3: Oid,
    c4: Oid,
    /// On no ref at all.
    dangling: Oid,
}

impl Upstream {
    fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }
}

enum Node<'a> {
    File(&'a [u8]),
    Exec(&'a [u8]),
    Link(&'a str),
    Gitlink(Oid),
}

fn signature(time: i64) -> Signature<'static> {
    Signature::new("Test", "test@example.com", &Time::new(time, 0)).unwrap()
}

fn tree(repo: &Repository, nodes: &[(&str, Node)]) -> Oid {
    let mut index = git2::Index::new().unwrap();
    for (path, node) in nodes {
        let (mode, id) = match node {
            Node::File(data) => (0o100644, repo.blob(data).unwrap()),
            Node::Exec(data) => (0o100755, repo.blob(data).unwrap()),
            Node::Link(target) => (0o120000, repo.blob(target.as_bytes()).unwrap()),
            Node::Gitlink(id) => (0o160000, *id),
        };
        index
            .add(&IndexEntry {
                ctime: IndexTime::new(0, 0),
                mtime: IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode,
                uid: 0,
                gid: 0,
                file_size: 0,
                id,
                flags: path.len().min(0xfff) as u16,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            })
            .unwrap();
    }
    index.write_tree_to(repo).unwrap()
}

fn commit(repo: &Repository, update: Option<&str>, tree: Oid, parents: &[Oid], time: i64) -> Oid {
    let tree = repo.find_tree(tree).unwrap();
    let parents: Vec<_> = parents
        .iter()
        .map(|p| repo.find_commit(*p).unwrap())
        .collect();
    let parents: Vec<_> = parents.iter().collect();
    let sig = signature(time);
    repo.commit(update, &sig, &sig, "test", &tree, &parents)
        .unwrap()
}

const LONG_DIR: &str =
    "app/a-directory-with-a-rather-long-name-to-push-paths-past-one-hundred-bytes";

fn upstream() -> Upstream {
    let dir = TempDir::new().unwrap();
    let root = dir.path().to_owned();
    let path = root.join("upstream");
    let repo = Repository::init(&path).unwrap();
    let long_file = format!("{LONG_DIR}/and-a-file-name-that-is-long-too.txt");
    let long_component = format!("app/{}", "x".repeat(120));
    let long_target = "t".repeat(150);
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let app = |a_txt: &'static [u8], other: &'static [u8]| {
        vec![
            ("Dockerfile", Node::File(b"FROM scratch\n")),
            ("app/Dockerfile", Node::File(b"FROM busybox\nCOPY . /app\n")),
            ("app/run.sh", Node::Exec(b"#!/bin/sh\necho hi\n")),
            ("app/a.txt", Node::File(a_txt)),
            ("app/a/b", Node::File(b"b\n")),
            ("app/a-b", Node::File(b"a-b\n")),
            ("app/a0", Node::File(b"")),
            ("app/link", Node::Link("a.txt")),
            (
                "app/sub",
                Node::Gitlink(Oid::from_str(&"1".repeat(40)).unwrap()),
            ),
            ("app/deep/x/y/z.txt", Node::File(b"deep\n")),
            ("other/file", Node::File(other)),
        ]
    };
    let mut first = app(b"one\n", b"other 1\n");
    first.push((&long_file, Node::File(b"long\n")));
    first.push((&long_component, Node::File(b"long component\n")));
    first.push(("app/long-link", Node::Link(&long_target)));
    first.push(("app/big.bin", Node::File(&big)));
    let t1 = tree(&repo, &first);
    let c1 = commit(&repo, Some("refs/heads/main"), t1, &[], T1);
    repo.set_head("refs/heads/main").unwrap();

    let mut second = app(b"one\n", b"other 2\n");
    second.extend(first.drain(11..));
    let t2 = tree(&repo, &second);
    let c2 = commit(&repo, Some("refs/heads/main"), t2, &[c1], T2);

    let mut third = app(b"three\n", b"other 1\n");
    third.extend(second.drain(11..));
    let t3 = tree(&repo, &third);
    let c3 = commit(&repo, None, t3, &[c1], T3);
    repo.reference("refs/heads/feature", c3, true, "").unwrap();

    // The merge keeps app/ from c3 and other/ from c2.
    let mut merged = app(b"three\n", b"other 2\n");
    merged.extend(third.drain(11..));
    let t4 = tree(&repo, &merged);
    let c4 = commit(&repo, Some("refs/heads/main"), t4, &[c2, c3], T4);
    repo.reference("refs/tags/v1", c2, true, "").unwrap();

    let dangling = commit(&repo, None, t1, &[c4], T5);
    Upstream {
        _dir: dir,
        root,
        path,
        c1,
        c2,
        c3,
        c4,
        dangling,
    }
}

fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn cache() -> (TempDir, GitCache) {
    let dir = TempDir::new().unwrap();
    let cache = GitCache::open(dir.path()).unwrap();
    (dir, cache)
}

fn s(oid: Oid) -> String {
    oid.to_string()
}

// ---------------------------------------------------------------------------------------
// URLs and mirrors

#[test]
fn resolve_url_forms() {
    let base = Path::new("/srv/library");
    for url in [
        "https://github.com/docker-library/busybox.git",
        "http://example.com/repo.git",
        "git://example.com/repo.git",
        "git@github.com:docker-library/busybox.git",
        "github.com:busybox.git",
        "ssh://git@github.com/docker-library/busybox.git",
        "file:///srv/repos/busybox.git",
        "/srv/repos/busybox",
    ] {
        assert_eq!(resolve_url(url, base, &[]), url);
    }
    assert_eq!(resolve_url("busybox", base, &[]), "/srv/library/busybox");
    assert_eq!(
        resolve_url("./repos/a:b", base, &[]),
        "/srv/library/repos/a:b"
    );
    assert_eq!(
        resolve_url("../repos/x", base, &[]),
        "/srv/library/../repos/x"
    );
}

#[test]
fn mirrors_parse_and_longest_prefix_wins() {
    assert_eq!(
        parse_mirror("https://github.com/=/mirror/gh/").unwrap(),
        Mirror {
            prefix: "https://github.com/".into(),
            replacement: "/mirror/gh/".into()
        }
    );
    for bad in ["no-equals", "=/x", "https://x/="] {
        assert!(
            matches!(parse_mirror(bad), Err(GitError::InvalidMirror { .. })),
            "{bad}"
        );
    }
    let mirrors = parse_mirrors(
        "https://github.com/=/m/gh/, https://github.com/docker-library/=file:///m/dl/,,",
    )
    .unwrap();
    assert_eq!(mirrors.len(), 2);
    let base = Path::new("/lib");
    assert_eq!(
        resolve_url(
            "https://github.com/docker-library/busybox.git",
            base,
            &mirrors
        ),
        "file:///m/dl/busybox.git"
    );
    assert_eq!(
        resolve_url("https://github.com/tianon/x.git", base, &mirrors),
        "/m/gh/tianon/x.git"
    );
    assert_eq!(
        resolve_url("https://gitlab.com/x.git", base, &mirrors),
        "https://gitlab.com/x.git"
    );
    assert!(parse_mirrors("").unwrap().is_empty());
}

#[test]
fn mirrored_url_fetches_offline() {
    let up = upstream();
    let (_d, cache) = cache();
    let mirrors = [parse_mirror(&format!("https://example.com/={}/", up.root.display())).unwrap()];
    let url = resolve_url(
        "https://example.com/upstream",
        Path::new("/nowhere"),
        &mirrors,
    );
    assert_eq!(
        cache
            .ensure_commit(&url, "refs/heads/main", &s(up.c2))
            .unwrap(),
        Fetched::Local
    );
}

// ---------------------------------------------------------------------------------------
// ensure_commit

#[test]
fn git_cache_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<GitCache>();
}

#[test]
fn fetch_by_file_url_then_present_without_network() {
    let up = upstream();
    let (_d, cache) = cache();
    assert!(!cache.has_commit(&s(up.c1)));
    assert_eq!(
        cache
            .ensure_commit(&up.url(), "refs/heads/main", &s(up.c1))
            .unwrap(),
        Fetched::Local
    );
    assert!(cache.has_commit(&s(up.c1)));
    let repo = Repository::open_bare(cache.repo_path()).unwrap();
    let pin = repo
        .find_reference(&format!("refs/keg/commits/{}", up.c1))
        .unwrap();
    assert_eq!(pin.target(), Some(up.c1));
    assert!(
        repo.remotes().unwrap().is_empty(),
        "no remote is written to config"
    );
    assert!(repo.find_reference("refs/keg/tmp/fetch").is_err());
    let mut config = repo.config().unwrap();
    assert_eq!(config.snapshot().unwrap().get_str("gc.auto").unwrap(), "0");
    // Linked, not copied: the cache's object files are the upstream's (same inodes), and
    // no alternates are needed.
    assert!(!cache.repo_path().join("objects/info/alternates").exists());
    let object = |root: &Path, oid: Oid| {
        let hex = oid.to_string();
        root.join(&hex[..2]).join(&hex[2..])
    };
    use std::os::unix::fs::MetadataExt;
    let inode = |p: PathBuf| std::fs::metadata(p).unwrap().ino();
    assert_eq!(
        inode(object(&cache.repo_path().join("objects"), up.c1)),
        inode(object(&up.path.join(".git/objects"), up.c1))
    );

    // The source disappears: a present commit needs no network, and the links remain.
    std::fs::remove_dir_all(&up.path).unwrap();
    assert_eq!(
        cache
            .ensure_commit(&up.url(), "refs/heads/main", &s(up.c1))
            .unwrap(),
        Fetched::AlreadyPresent
    );
    // And a fresh handle on the same cache directory sees it too.
    let again = GitCache::open(cache.repo_path().parent().unwrap()).unwrap();
    assert_eq!(
        again
            .ensure_commit(&up.url(), "refs/heads/main", &s(up.c1))
            .unwrap(),
        Fetched::AlreadyPresent
    );
    assert_eq!(
        again.read_file(&s(up.c1), "Dockerfile").unwrap(),
        b"FROM scratch\n"
    );
}

#[test]
fn fetch_by_relative_path() {
    let up = upstream();
    let (_d, cache) = cache();
    let url = resolve_url("upstream", &up.root, &[]);
    assert_eq!(url, up.path.to_string_lossy());
    // c3 is not on main, but the server sends it when asked for its id.
    assert_eq!(
        cache
            .ensure_commit(&url, "refs/heads/main", &s(up.c3))
            .unwrap(),
        Fetched::Local
    );
    // The whole upstream object database is linked.
    for c in [up.c1, up.c4, up.dangling] {
        assert_eq!(
            cache.ensure_commit(&url, "refs/heads/main", &s(c)).unwrap(),
            Fetched::AlreadyPresent
        );
    }
}

#[test]
fn missing_commit_and_bad_arguments_are_clear_errors() {
    let up = upstream();
    let (_d, cache) = cache();
    let absent = "0123456789abcdef0123456789abcdef01234567";
    let err = cache
        .ensure_commit(&up.url(), "refs/heads/main", absent)
        .unwrap_err();
    assert!(matches!(err, GitError::CommitNotOnRef { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(absent) && msg.contains(&up.url()) && msg.contains("refs/heads/main"),
        "{msg}"
    );
    assert!(!cache.has_commit(absent));

    // A commit on no ref at all is still in the local repository's object database, which
    // the first attempt above linked into the cache.
    assert_eq!(
        cache
            .ensure_commit(&up.url(), "refs/heads/main", &s(up.dangling))
            .unwrap(),
        Fetched::AlreadyPresent
    );

    let err = cache
        .ensure_commit(&up.url(), "refs/heads/nope", absent)
        .unwrap_err();
    assert!(matches!(err, GitError::MissingRemoteRef { .. }), "{err:?}");
    assert!(err.to_string().contains("refs/heads/nope"));

    let err = cache
        .ensure_commit("/does/not/exist", "refs/heads/main", absent)
        .unwrap_err();
    assert!(matches!(err, GitError::FetchFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("/does/not/exist"), "{err}");

    for bad in ["abc", &"g".repeat(40), ""] {
        assert!(matches!(
            cache.ensure_commit(&up.url(), "refs/heads/main", bad),
            Err(GitError::InvalidCommit { .. })
        ));
    }
    for bad in ["main", "refs/heads/a..b", "refs/heads/"] {
        assert!(matches!(
            cache.ensure_commit(&up.url(), bad, &s(up.c1)),
            Err(GitError::InvalidFetchRef { .. })
        ));
    }
}

#[test]
fn server_refusing_commit_ids_falls_back_to_the_fetch_ref() {
    let up = upstream();
    let daemon = git_daemon(&up.root).expect("git daemon starts on 127.0.0.1");
    let url = format!("git://127.0.0.1:{}/upstream", daemon.port);
    let (_d, cache) = cache();
    // git daemon does not allow fetching unadvertised ids: only the ref gets c3, the
    // ref's tip, at depth 1.
    assert_eq!(
        cache
            .ensure_commit(&url, "refs/heads/feature", &s(up.c3))
            .unwrap(),
        Fetched::ViaRef
    );
    assert!(cache.is_shallow(&s(up.c3)));
    assert!(!cache.has_commit(&s(up.c1)));
    let repo = Repository::open_bare(cache.repo_path()).unwrap();
    let tracking = || -> Vec<String> {
        repo.references_glob("refs/keg/remotes/*")
            .unwrap()
            .map(|r| r.unwrap().name().unwrap().to_owned())
            .collect()
    };
    assert_eq!(tracking().len(), 1);
    assert!(
        tracking()[0].ends_with("/heads/feature"),
        "{:?}",
        tracking()
    );
    // c1 is behind main's tip: the ref is deepened until it arrives.
    assert_eq!(
        cache
            .ensure_commit(&url, "refs/heads/main", &s(up.c1))
            .unwrap(),
        Fetched::ViaRef
    );
    assert!(cache.has_commit(&s(up.c1)) && !cache.is_shallow(&s(up.c1)));
    assert_eq!(tracking().len(), 2);
    assert_eq!(
        cache
            .ensure_commit(&url, "refs/heads/main", &s(up.c2))
            .unwrap(),
        Fetched::AlreadyPresent
    );
    // The dangling commit is reachable from no ref: a clear error with what git said.
    let err = cache
        .ensure_commit(&url, "refs/heads/main", &s(up.dangling))
        .unwrap_err();
    match &err {
        GitError::CommitNotOnRef { by_id, .. } => assert!(!by_id.is_empty()),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains(&url));
}

#[test]
fn concurrent_threads_and_caches_share_one_directory() {
    let up = Arc::new(upstream());
    let dir = TempDir::new().unwrap();
    let shared = Arc::new(GitCache::open(dir.path()).unwrap());
    let commits = [up.c1, up.c2, up.c3, up.c4];
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let up = Arc::clone(&up);
            let shared = Arc::clone(&shared);
            let dir = dir.path().to_owned();
            std::thread::spawn(move || {
                // Half the threads share one GitCache, the others open their own.
                let own;
                let cache: &GitCache = if i % 2 == 0 {
                    &shared
                } else {
                    own = GitCache::open(&dir).unwrap();
                    &own
                };
                let mut results = Vec::new();
                for k in 0..commits.len() {
                    let c = commits[(k + i) % commits.len()];
                    let r = cache
                        .ensure_commit(&up.url(), "refs/heads/main", &s(c))
                        .unwrap();
                    assert_eq!(
                        cache.read_file(&s(c), "Dockerfile").unwrap(),
                        b"FROM scratch\n"
                    );
                    results.push(r);
                }
                results
            })
        })
        .collect();
    let results: Vec<Fetched> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    // The first thread links the upstream's objects; every commit is then present.
    let linked = results.iter().filter(|r| **r == Fetched::Local).count();
    assert!((1..=4).contains(&linked), "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Fetched::Local | Fetched::AlreadyPresent)),
        "{results:?}"
    );
    for c in commits {
        assert!(shared.has_commit(&s(c)));
    }
}

const CHILD_ENV: &str = "KEG_TEST_CHILD_FETCH";

/// Does nothing unless re-invoked by `concurrent_processes_share_one_cache`.
#[test]
fn child_process_fetch() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let cache = GitCache::open(Path::new(parts[0])).unwrap();
    for commit in &parts[2..] {
        cache
            .ensure_commit(parts[1], "refs/heads/main", commit)
            .unwrap();
        assert!(cache.has_commit(commit));
    }
}

#[test]
fn concurrent_processes_share_one_cache() {
    let up = upstream();
    let dir = TempDir::new().unwrap();
    let spec = |commits: &[Oid]| {
        let mut spec = format!("{}|{}", dir.path().display(), up.url());
        for c in commits {
            spec.push('|');
            spec.push_str(&s(*c));
        }
        spec
    };
    let exe = std::env::current_exe().unwrap();
    let children: Vec<Child> = [spec(&[up.c2, up.c4, up.c3]), spec(&[up.c3, up.c2, up.c4])]
        .into_iter()
        .map(|spec| {
            Command::new(&exe)
                .args(["child_process_fetch", "--exact", "--test-threads=1"])
                .env(CHILD_ENV, spec)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let cache = GitCache::open(dir.path()).unwrap();
    for c in [up.c1, up.c2, up.c3, up.c4] {
        assert!(cache.has_commit(&s(c)));
        assert_eq!(
            cache
                .ensure_commit("/nowhere", "refs/heads/main", &s(c))
                .unwrap(),
            Fetched::AlreadyPresent
        );
    }
}

// ---------------------------------------------------------------------------------------
// Reading

#[test]
fn reads_files_trees_and_times() {
    let up = upstream();
    let (_d, cache) = cache();
    cache
        .ensure_commit(&up.url(), "refs/heads/main", &s(up.c4))
        .unwrap();
    let c1 = s(up.c1);
    assert_eq!(
        cache.read_file(&c1, "app/Dockerfile").unwrap(),
        b"FROM busybox\nCOPY . /app\n"
    );
    assert_eq!(
        cache.read_file(&c1, "./app//Dockerfile").unwrap(),
        b"FROM busybox\nCOPY . /app\n"
    );
    assert_eq!(cache.read_file(&s(up.c3), "app/a.txt").unwrap(), b"three\n");

    for (dir, spec) in [
        (".", format!("{c1}^{{tree}}")),
        ("", format!("{c1}^{{tree}}")),
        ("app", format!("{c1}:app")),
        ("app/deep/x", format!("{c1}:app/deep/x")),
    ] {
        let want = String::from_utf8(git(&up.path, &["rev-parse", &spec])).unwrap();
        assert_eq!(cache.tree_id(&c1, dir).unwrap(), want.trim(), "{dir}");
    }
    assert_eq!(cache.commit_time(&c1).unwrap(), T1);
    assert_eq!(cache.commit_time(&s(up.c4)).unwrap(), T4);
    // SOURCE_DATE_EPOCH is the commit's own time, whatever the directory's history.
    for (commit, time) in [(up.c1, T1), (up.c2, T2), (up.c3, T3), (up.c4, T4)] {
        assert_eq!(cache.source_date_epoch(&s(commit)).unwrap(), time);
    }
}

#[test]
fn read_errors_name_commit_and_path() {
    let up = upstream();
    let (_d, cache) = cache();
    cache
        .ensure_commit(&up.url(), "refs/heads/main", &s(up.c1))
        .unwrap();
    let c1 = s(up.c1);
    let err = cache.read_file(&c1, "app/Nope").unwrap_err();
    assert!(matches!(err, GitError::MissingPath { .. }), "{err:?}");
    assert!(err.to_string().contains("app/Nope") && err.to_string().contains(&c1));
    assert!(matches!(
        cache.read_file(&c1, "app"),
        Err(GitError::NotAFile {
            found: "a directory",
            ..
        })
    ));
    assert!(matches!(
        cache.read_file(&c1, "app/link"),
        Err(GitError::NotAFile {
            found: "a symlink",
            ..
        })
    ));
    assert!(matches!(
        cache.read_file(&c1, "app/sub"),
        Err(GitError::NotAFile {
            found: "a submodule",
            ..
        })
    ));
    assert!(matches!(
        cache.read_file(&c1, "../etc/passwd"),
        Err(GitError::InvalidPath { .. })
    ));
    assert!(matches!(
        cache.tree_id(&c1, "nope"),
        Err(GitError::MissingPath { .. })
    ));
    assert!(matches!(
        cache.tree_id(&c1, "Dockerfile"),
        Err(GitError::NotADirectory { .. })
    ));
    let absent = "0123456789abcdef0123456789abcdef01234567";
    for err in [
        cache.read_file(absent, "Dockerfile").unwrap_err(),
        cache.tree_id(absent, ".").unwrap_err(),
        cache.commit_time(absent).unwrap_err(),
    ] {
        assert!(matches!(err, GitError::MissingCommit { .. }), "{err:?}");
        assert!(err.to_string().contains(absent));
    }
    assert!(matches!(
        cache.commit_time("HEAD"),
        Err(GitError::InvalidCommit { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Build contexts

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    path: String,
    kind: u8,
    mode: u32,
    size: u64,
    mtime: u64,
    link: Option<String>,
    content: Vec<u8>,
}

fn entries(tar_bytes: &[u8]) -> Vec<Entry> {
    let mut archive = tar::Archive::new(tar_bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut content).unwrap();
            let header = e.header();
            Entry {
                path: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                kind: header.entry_type().as_byte(),
                mode: header.mode().unwrap(),
                size: header.entry_size().unwrap(),
                mtime: header.mtime().unwrap(),
                link: e
                    .link_name_bytes()
                    .map(|l| String::from_utf8(l.into_owned()).unwrap()),
                content,
            }
        })
        .filter(|e| e.kind != b'g')
        .collect()
}

fn context(cache: &GitCache, commit: Oid, dir: &str) -> Vec<u8> {
    let mut out = Vec::new();
    write_context(cache, &s(commit), dir, &mut out).unwrap();
    out
}

#[test]
fn context_entries_match_git_archive() {
    let up = upstream();
    let (_d, cache) = cache();
    cache
        .ensure_commit(&up.url(), "refs/heads/main", &s(up.c4))
        .unwrap();
    for (commit, dir) in [
        (up.c1, "app"),
        (up.c1, "."),
        (up.c4, "app"),
        (up.c2, "other"),
        (up.c1, LONG_DIR),
    ] {
        let ours = context(&cache, commit, dir);
        let spec = if dir == "." {
            s(commit) + "^{tree}"
        } else {
            format!("{commit}:{dir}")
        };
        let theirs = git(
            &up.path,
            &[
                "-c",
                "tar.umask=022",
                "archive",
                "--format=tar",
                &format!("--mtime=@{}", cache.commit_time(&s(commit)).unwrap()),
                &spec,
            ],
        );
        let (ours_e, theirs_e) = (entries(&ours), entries(&theirs));
        assert_eq!(ours_e, theirs_e, "{commit}:{dir}");
        let names: Vec<&str> = ours_e.iter().map(|e| e.path.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "byte-sorted by full name");
        assert_eq!(ours.len() % 512, 0);
    }
    let app = entries(&context(&cache, up.c1, "app"));
    let tricky = ["a-b", "a.txt", "a/", "a/b", "a0"];
    let names: Vec<&str> = app
        .iter()
        .map(|e| e.path.as_str())
        .filter(|n| tricky.contains(n))
        .collect();
    assert_eq!(names, tricky);
    let by_name: HashMap<&str, &Entry> = app.iter().map(|e| (e.path.as_str(), e)).collect();
    assert_eq!(by_name["run.sh"].mode, 0o755);
    assert_eq!(by_name["a.txt"].mode, 0o644);
    assert_eq!(by_name["a/"].mode, 0o755);
    assert_eq!(by_name["link"].link.as_deref(), Some("a.txt"));
    assert_eq!(by_name["sub/"].kind, b'5');
    assert!(app.iter().all(|e| e.mtime == T1 as u64));
}

#[test]
fn context_headers_are_normalised() {
    let up = upstream();
    let (_d, cache) = cache();
    cache
        .ensure_commit(&up.url(), "refs/heads/main", &s(up.c1))
        .unwrap();
    let tar_bytes = context(&cache, up.c1, "app");
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        assert!(h.as_ustar().is_some(), "ustar headers");
    }
}

#[test]
fn context_is_identical_across_caches_and_object_storage() {
    let up = upstream();
    let (_a, one) = cache();
    let (_b, two) = cache();
    one.ensure_commit(&up.url(), "refs/heads/main", &s(up.c1))
        .unwrap();
    two.ensure_commit(&up.url(), "refs/heads/main", &s(up.c4))
        .unwrap();
    let (sum_one, stats) = context_sha256(&one, &s(up.c1), "app").unwrap();
    let (sum_two, _) = context_sha256(&two, &s(up.c1), "app").unwrap();
    assert_eq!(sum_one, sum_two);
    assert_eq!(sum_one.len(), 64);

    // A cache whose objects are loose (streamed through the odb reader) gives the same bytes.
    let (_c, loose) = cache();
    copy_dir(
        &up.path.join(".git/objects"),
        &loose.repo_path().join("objects"),
    );
    let (sum_loose, _) = context_sha256(&loose, &s(up.c1), "app").unwrap();
    assert_eq!(sum_loose, sum_one);

    // The digest is the digest of the written stream.
    use sha2::Digest;
    let bytes = context(&one, up.c1, "app");
    let want: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sum_one, want);
    assert_eq!(stats.tar_bytes, bytes.len() as u64);

    // A different directory or commit gives a different context.
    assert_ne!(context_sha256(&two, &s(up.c3), "app").unwrap().0, sum_one);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn context_stats_report_submodules() {
    let up = upstream();
    let (_d, cache) = cache();
    cache
        .ensure_commit(&up.url(), "refs/heads/main", &s(up.c1))
        .unwrap();
    let mut out = Vec::new();
    let stats = write_context(&cache, &s(up.c1), "app", &mut out).unwrap();
    assert_eq!(stats.submodules, ["sub"]);
    assert_eq!(stats.symlinks, 2);
    // a/, deep/, deep/x/, deep/x/y/, the long directory, sub/
    assert_eq!(stats.directories, 6);
    assert_eq!(stats.files, 10);
    let sizes: u64 = entries(&out)
        .iter()
        .filter(|e| e.kind == b'0')
        .map(|e| e.size)
        .sum();
    assert_eq!(stats.content_bytes, sizes);
    assert_eq!(stats.tar_bytes, out.len() as u64);
}

#[test]
fn context_errors() {
    let up = upstream();
    let (_d, cache) = cache();
    cache
        .ensure_commit(&up.url(), "refs/heads/main", &s(up.c1))
        .unwrap();
    let mut out = Vec::new();
    let c1 = s(up.c1);
    let err = write_context(&cache, &c1, "nope", &mut out).unwrap_err();
    assert!(
        matches!(err, ContextError::Git(GitError::MissingPath { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("nope") && err.to_string().contains(&c1));
    let err = write_context(&cache, &c1, "app/Dockerfile", &mut out).unwrap_err();
    assert!(
        matches!(err, ContextError::Git(GitError::NotADirectory { .. })),
        "{err:?}"
    );
    let absent = "0123456789abcdef0123456789abcdef01234567";
    let err = context_sha256(&cache, absent, ".").unwrap_err();
    assert!(
        matches!(err, ContextError::Git(GitError::MissingCommit { .. })),
        "{err:?}"
    );
    assert!(
        out.is_empty(),
        "nothing is written before the tree is found"
    );

    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let err = write_context(&cache, &c1, "app", Broken).unwrap_err();
    assert!(matches!(err, ContextError::Write(_)), "{err:?}");
}

#[test]
fn source_date_epoch_is_the_later_of_author_and_committer_time() {
    let dir = TempDir::new().unwrap();
    let repo = Repository::init(dir.path().join("up")).unwrap();
    let t = tree(&repo, &[("Dockerfile", Node::File(b"FROM scratch\n"))]);
    let tree = repo.find_tree(t).unwrap();
    let (early, late) = (signature(T1), signature(T3));
    // Rebased: authored late, committed early; and the usual way round.
    let rebased = repo
        .commit(Some("refs/heads/main"), &late, &early, "x", &tree, &[])
        .unwrap();
    let plain = repo.commit(None, &early, &late, "y", &tree, &[]).unwrap();
    let (_d, cache) = cache();
    let url = format!("file://{}", dir.path().join("up").display());
    for c in [rebased, plain] {
        cache.ensure_commit(&url, "refs/heads/main", &s(c)).unwrap();
        assert_eq!(cache.source_date_epoch(&s(c)).unwrap(), T3);
    }
    assert_eq!(cache.commit_time(&s(rebased)).unwrap(), T1);
}
