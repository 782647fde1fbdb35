//! Cold start: shallow fetches over a network transport, local mirrors hard-linked (or
//! borrowed through alternates), parallel fetches (killed and re-run, two processes at
//! once), and `keg gc`.
//!
//! Upstreams are git repositories made in temp dirs, served by `git daemon` on 127.0.0.1
//! (a real network transport) or used as local mirrors; a slow TCP proxy stretches fetches
//! so that a SIGKILL lands in the middle of them. No Docker, except the `#[ignore]`d tests
//! at the end (run by scripts/test with the rig).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{
    Daemon, GitRepo, Run, Test, assert_fsck_clean, git, git_daemon, require_engine, slow_proxy,
};

/// An upstream with a history: c1 -> c2 (adds a 2 MiB blob) -> c3 (removes it) -> c4.
struct Upstream {
    t: Test,
    src: GitRepo,
    c: [String; 4],
}

fn upstream() -> Upstream {
    let t = Test::new();
    let src = t.git_repo("src");
    src.file(
        "base/Dockerfile",
        "FROM keg-test/busybox:latest\nRUN echo base > /base\n",
    );
    src.file(
        "app/Dockerfile",
        "FROM busybox:1 AS tools\nFROM cold-base:1\nCOPY --from=tools /bin/true /true\nCOPY . /app\n",
    );
    src.file("app/data.txt", "one\n");
    let c1 = src.commit("c1");
    let big: String = (0..(2 << 20) / 16)
        .map(|i| format!("{:015x}\n", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    src.file("old/big.txt", &big);
    src.file("app/data.txt", "two\n");
    let c2 = src.commit("c2");
    src.remove("old/big.txt");
    src.file("app/data.txt", "three\n");
    let c3 = src.commit("c3");
    src.file("base/extra.txt", "extra\n");
    let c4 = src.commit("c4");
    // As hosting services do: any reachable commit may be asked for by id.
    git(
        &src.path,
        &["config", "uploadpack.allowAnySHA1InWant", "true"],
    );
    Upstream {
        t,
        src,
        c: [c1, c2, c3, c4],
    }
}

impl Upstream {
    /// Writes the library: cold-base at c4, cold-app at c4 (`1`) and at c1 (`old`), plus
    /// `extra` more (tag, commit, directory) entries of cold-app.
    fn library(&self, url: &str, extra: &[(&str, &str, &str)]) {
        let [c1, _, _, c4] = &self.c;
        self.t.manifest(
            "cold-base",
            &format!(
                "Maintainers: T (@t)\nGitRepo: {url}\nGitCommit: {c4}\n\nTags: 1\nDirectory: base\n"
            ),
        );
        let mut app = format!(
            "Maintainers: T (@t)\nGitRepo: {url}\n\nTags: 1\nGitCommit: {c4}\nDirectory: app\n\nTags: old\nGitCommit: {c1}\nDirectory: app\n"
        );
        for (tag, commit, dir) in extra {
            app.push_str(&format!(
                "\nTags: {tag}\nGitCommit: {commit}\nDirectory: {dir}\n"
            ));
        }
        self.t.manifest("cold-app", &app);
    }

    fn daemon(&self) -> Daemon {
        git_daemon(self.t.path()).expect("git daemon starts on 127.0.0.1")
    }

    /// keg with `--cache <test>/<cache>`, no engine (plans are the same on every machine).
    fn keg(&self, cache: &str, args: &[&str]) -> Run {
        self.keg_env(cache, args, &[])
    }

    fn keg_env(&self, cache: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self
            .t
            .command(&["--cache", &self.cache(cache).display().to_string()]);
        cmd.args(args)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .envs(env.iter().copied());
        Run::from(cmd.output().expect("run keg"))
    }

    fn cache(&self, name: &str) -> PathBuf {
        self.t.path().join(name)
    }
}

/// Bytes of every pack in a repository.
fn pack_bytes(repo: &Path) -> u64 {
    std::fs::read_dir(repo.join("objects/pack"))
        .map(|d| {
            d.flatten()
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}

fn pack_files(repo: &Path) -> usize {
    std::fs::read_dir(repo.join("objects/pack")).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
            .count()
    })
}

fn shallow_list(repo: &Path) -> Vec<String> {
    std::fs::read_to_string(repo.join("shallow"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn rev_count(repo: &Path, commit: &str) -> usize {
    git(repo, &["rev-list", "--count", commit])
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_shallow_cache_serves_the_same_as_a_full_one() {
    let up = upstream();
    let daemon = up.daemon();
    up.library(&daemon.url("src"), &[]);
    let [c1, c2, c3, c4] = up.c.clone();

    up.keg("shallow", &["fetch", "--all"]).success();
    up.keg("full", &["--unshallow", "fetch", "--all"]).success();
    let (shallow, full) = (
        up.cache("shallow").join("git"),
        up.cache("full").join("git"),
    );

    // The shallow cache has the two commits alone; the full one their histories.
    let mut listed = shallow_list(&shallow);
    listed.sort();
    let mut want = vec![c1.clone(), c4.clone()];
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(rev_count(&shallow, &c4), 1);
    assert!(shallow_list(&full).is_empty());
    assert_eq!(rev_count(&full, &c4), 4);
    // ... and never received the blob only c2 had.
    let (small, big) = (pack_bytes(&shallow), pack_bytes(&full));
    assert!(big > small + (1 << 20), "shallow {small} bytes, full {big}");
    assert_fsck_clean(&shallow);
    assert_fsck_clean(&full);

    // Every answer is the same, byte for byte.
    for args in [
        &["from", "--all"][..],
        &["list", "--build-order", "--all"],
        &["plan", "--all", "--json"],
        &["plan", "--all", "--explain"],
        &["context", "cold-app:1", "--sha256"],
        &["context", "cold-app:old", "--sha256"],
        &["context", "cold-base:1"],
    ] {
        let a = up.keg("shallow", args);
        let b = up.keg("full", args);
        a.success();
        assert_eq!(a.stdout, b.stdout, "keg {args:?}");
        assert!(!a.stdout.is_empty());
    }
    // SOURCE_DATE_EPOCH is the commit's time, known without history.
    let plan = up.keg("shallow", &["plan", "--all", "--json"]).stdout;
    assert!(plan.contains("SOURCE_DATE_EPOCH=1700000000"), "{plan}");

    // Another commit of the same repository, later, into the shallow cache: works, shallow.
    up.library(&daemon.url("src"), &[("mid", &c3, "app")]);
    up.keg("shallow", &["fetch", "--all"]).success();
    assert!(shallow_list(&shallow).contains(&c3));
    assert_eq!(rev_count(&shallow, &c3), 1);
    assert_eq!(
        up.keg("shallow", &["context", "cold-app:mid", "--sha256"])
            .stdout,
        up.keg("full", &["context", "cold-app:mid", "--sha256"])
            .stdout
    );
    assert_fsck_clean(&shallow);

    // KEG_GIT_DEPTH=0 turns it off: the shallow commits get their history.
    up.keg_env("shallow", &["fetch", "--all"], &[("KEG_GIT_DEPTH", "0")])
        .success();
    assert!(
        shallow_list(&shallow).is_empty(),
        "{:?}",
        shallow_list(&shallow)
    );
    assert_eq!(rev_count(&shallow, &c4), 4);
    assert_eq!(rev_count(&shallow, &c2), 2);
    assert_fsck_clean(&shallow);
}

#[test]
fn a_commit_behind_the_ref_tip_deepens_only_that_ref() {
    let up = upstream();
    // No fetching by id: the server only sends refs.
    git(
        &up.src.path,
        &["config", "uploadpack.allowAnySHA1InWant", "false"],
    );
    let daemon = up.daemon();
    up.library(&daemon.url("src"), &[]);
    let run = up.keg("cache", &["fetch", "--all"]);
    run.success();
    let cache = up.cache("cache").join("git");
    // c4 is the tip (depth 1); c1 is behind it, so the ref was deepened for it.
    assert_eq!(rev_count(&cache, &up.c[0]), 1);
    assert_eq!(rev_count(&cache, &up.c[3]), 4);
    assert_fsck_clean(&cache);
    up.keg("full", &["--unshallow", "fetch", "--all"]).success();
    for tag in ["cold-app:old", "cold-app:1"] {
        let shallow = up.keg("cache", &["context", tag, "--sha256"]);
        shallow.success();
        assert_eq!(
            shallow.stdout,
            up.keg("full", &["context", tag, "--sha256"]).stdout
        );
    }
}

/// `n` repositories `r<i>` under `<test>/many`, each with a 1 MiB incompressible file and a
/// Dockerfile, and a manifest per repository with GitRepo `<url_base>/r<i>`.
fn many_repositories(t: &Test, n: usize, url_base: &str) {
    for i in 0..n {
        let repo = t.git_repo(&format!("many/r{i}"));
        let mut state = 0x2545_f491_4f6c_dd1d_u64 ^ (i as u64);
        let noise: String = (0..(1 << 20) / 17)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                format!("{state:016x}\n")
            })
            .collect();
        repo.file("noise.txt", &noise);
        repo.file(
            "Dockerfile",
            &format!("FROM keg-test/busybox:latest\nRUN echo {i}\n"),
        );
        let commit = repo.commit("only");
        git(
            &repo.path,
            &["config", "uploadpack.allowAnySHA1InWant", "true"],
        );
        t.manifest(
            &format!("many-{i}"),
            &format!(
                "Maintainers: T (@t)\nGitRepo: {url_base}/r{i}\nGitCommit: {commit}\n\nTags: 1\n"
            ),
        );
    }
}

/// [`many_repositories`] served by `git daemon` on 127.0.0.1 through a [`slow_proxy`]
/// (`delay` per `chunk` bytes); the daemon lives as long as the value returned.
fn served_repositories(t: &Test, n: usize, delay: Duration, chunk: usize) -> Daemon {
    let root = t.path().join("many");
    std::fs::create_dir_all(&root).unwrap();
    let daemon = git_daemon(&root).expect("git daemon starts on 127.0.0.1");
    let proxy = slow_proxy(daemon.port, delay, chunk);
    many_repositories(t, n, &format!("git://127.0.0.1:{proxy}"));
    daemon
}

fn staging_leftovers(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("git/keg-staging")).map_or(0, |d| d.count())
}

fn pins(cache: &Path) -> usize {
    git(&cache.join("git"), &["for-each-ref", "refs/keg/commits/"])
        .lines()
        .count()
}

#[test]
fn sigkill_during_a_parallel_fetch_then_a_rerun_leaves_a_consistent_cache() {
    let t = Test::new();
    // ~2 MB/s a connection: each 1 MiB repository takes about half a second to arrive.
    let _daemon = served_repositories(&t, 12, Duration::from_millis(4), 8192);
    let cache = t.path().join("cache");
    let fetch = || {
        let mut cmd = t.command(&["fetch", "--all"]);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    };
    let mut interrupted = false;
    for kill_after in [150, 350, 600, 900] {
        let mut child = fetch().spawn().unwrap();
        std::thread::sleep(Duration::from_millis(kill_after));
        // Child::kill is SIGKILL: no cleanup runs.
        let _ = child.kill();
        let _ = child.wait();
        interrupted |= staging_leftovers(&cache) > 0;
    }
    assert!(interrupted, "no kill landed in the middle of a fetch");
    t.run(&["fetch", "--all"]).success();
    assert_eq!(pins(&cache), 12);
    assert_fsck_clean(&cache.join("git"));
    for i in 0..12 {
        t.run(&["context", &format!("many-{i}:1"), "--sha256"])
            .success();
    }
    // gc clears what the killed processes left.
    let mut gc = t.command(&["gc"]);
    gc.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    Run::from(gc.output().unwrap()).success();
    assert_eq!(staging_leftovers(&cache), 0);
    assert_eq!(pins(&cache), 12);
    assert_fsck_clean(&cache.join("git"));
}

#[test]
fn two_processes_fetch_into_one_cache_at_once() {
    let t = Test::new();
    let _daemon = served_repositories(&t, 8, Duration::from_millis(1), 16384);
    let children: Vec<_> = (0..2)
        .map(|_| t.command(&["fetch", "--all"]).spawn().unwrap())
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let cache = t.path().join("cache");
    assert_eq!(pins(&cache), 8);
    assert_eq!(staging_leftovers(&cache), 0);
    assert_fsck_clean(&cache.join("git"));
}

#[test]
fn one_fetch_job_or_many_give_the_same_cache() {
    let t = Test::new();
    let _daemon = served_repositories(&t, 6, Duration::from_millis(2), 16384);
    // Fetch-jobs 1 and the default into two caches: the same pins and contexts either way.
    t.run(&["--fetch-jobs", "1", "fetch", "--all"]).success();
    let parallel = t.path().join("parallel");
    t.run(&["--cache", &parallel.display().to_string(), "fetch", "--all"])
        .success();
    assert_eq!(pins(&parallel), 6);
    for i in 0..6 {
        let tag = format!("many-{i}:1");
        assert_eq!(
            t.run(&["context", &tag, "--sha256"]).stdout,
            t.run(&[
                "--cache",
                &parallel.display().to_string(),
                "context",
                &tag,
                "--sha256"
            ])
            .stdout
        );
    }
}

/// The inode of every `.pack` in a repository.
fn pack_inodes(repo: &Path) -> Vec<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut out: Vec<u64> = std::fs::read_dir(repo.join("objects/pack"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                .map(|e| e.metadata().unwrap().ino())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

impl Upstream {
    /// `git clone --mirror` (or with `extra` arguments) of the upstream to `to`.
    fn clone_to(&self, to: &Path, extra: &[&str]) {
        let mut args = vec!["clone", "-q", "--mirror"];
        args.extend_from_slice(extra);
        let (from, to) = (
            self.src.path.display().to_string(),
            to.display().to_string(),
        );
        args.extend([from.as_str(), to.as_str()]);
        git(self.t.path(), &args);
    }
}

#[test]
fn a_local_mirror_is_linked_not_copied() {
    let up = upstream();
    let mirrors = up.t.path().join("mirrors");
    std::fs::create_dir_all(&mirrors).unwrap();
    let mirror = mirrors.join("src.git");
    up.clone_to(&mirror, &[]);
    up.library("https://git.example.com/src.git", &[]);
    let flag = format!("https://git.example.com/={}/", mirrors.display());
    let keg = |args: &[&str]| {
        let mut all = vec!["--git-mirror", &flag];
        all.extend_from_slice(args);
        up.keg("cache", &all)
    };
    keg(&["fetch", "--all"]).success();
    let cache = up.cache("cache").join("git");
    // The cache's pack is the mirror's file: same inode, nothing copied, no alternates.
    assert_eq!(pack_inodes(&cache), pack_inodes(&mirror));
    assert!(!cache.join("objects/info/alternates").exists());
    assert_fsck_clean(&cache);
    let sha = keg(&["context", "cold-app:1", "--sha256"]);
    sha.success();

    // The mirror gets a new commit: only what is new is linked.
    up.src.file("app/data.txt", "five\n");
    let c5 = up.src.commit("c5");
    git(&mirror, &["fetch", "-q"]);
    up.library("https://git.example.com/src.git", &[("five", &c5, "app")]);
    keg(&["fetch", "--all"]).success();
    assert_eq!(pack_inodes(&cache).len(), pack_inodes(&mirror).len());
    assert_fsck_clean(&cache);

    // The mirror is repacked and pruned: the cache keeps its links.
    git(&mirror, &["repack", "-a", "-d", "-f", "-q"]);
    git(&mirror, &["prune", "--expire=now"]);
    assert_eq!(
        keg(&["context", "cold-app:1", "--sha256"]).stdout,
        sha.stdout
    );
    assert_fsck_clean(&cache);
    // gc folds the packs the mirror no longer shares into the cache's own pack.
    let gc = keg(&["gc"]);
    gc.success();
    assert!(gc.stdout.contains("0 packs still shared"), "{}", gc.stdout);
    assert_eq!(pack_files(&cache), 1, "{}", gc.stdout);
    assert_eq!(
        keg(&["context", "cold-app:1", "--sha256"]).stdout,
        sha.stdout
    );
    assert_fsck_clean(&cache);

    // The mirror disappears: the cache does not need it.
    std::fs::remove_dir_all(&mirror).unwrap();
    for tag in ["cold-app:1", "cold-app:old", "cold-app:five", "cold-base:1"] {
        keg(&["context", tag, "--sha256"]).success();
    }
    assert_fsck_clean(&cache);
}

#[test]
fn a_mirror_that_cannot_be_linked_is_borrowed_through_alternates() {
    let up = upstream();
    let mirrors = up.t.path().join("mirrors");
    std::fs::create_dir_all(&mirrors).unwrap();
    // A `--shared` clone borrows its objects itself: linking its files would not bring them.
    let mirror = mirrors.join("src.git");
    up.clone_to(&mirror, &["--shared"]);
    up.library("https://git.example.com/src.git", &[]);
    let flag = format!("https://git.example.com/={}/", mirrors.display());
    let keg = |args: &[&str]| {
        let mut all = vec!["--git-mirror", &flag];
        all.extend_from_slice(args);
        up.keg("cache", &all)
    };
    keg(&["fetch", "--all"]).success();
    let cache = up.cache("cache").join("git");
    let alternates = std::fs::read_to_string(cache.join("objects/info/alternates")).unwrap();
    assert_eq!(
        alternates.trim(),
        mirror
            .join("objects")
            .canonicalize()
            .unwrap()
            .display()
            .to_string()
    );
    assert_eq!(pack_bytes(&cache), 0, "nothing is copied");
    assert_fsck_clean(&cache);
    let sha = keg(&["context", "cold-app:1", "--sha256"]);
    sha.success();

    // The mirror disappears: a clear error naming the commit and where it was looked for.
    std::fs::remove_dir_all(&mirror).unwrap();
    let run = keg(&["context", "cold-app:1", "--sha256"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(&up.c[3])
            && run.stderr.contains(&mirror.display().to_string())
            && run.stderr.contains("keg gc --dissociate"),
        "{}",
        run.stderr
    );
    // Back again: borrowed again.
    up.clone_to(&mirror, &["--shared"]);
    assert_eq!(
        keg(&["context", "cold-app:1", "--sha256"]).stdout,
        sha.stdout
    );

    // gc --dissociate copies what the pins need and forgets the mirror.
    keg(&["gc", "--dissociate"]).success();
    assert!(!cache.join("objects/info/alternates").exists());
    std::fs::remove_dir_all(&mirror).unwrap();
    assert_eq!(
        keg(&["context", "cold-app:1", "--sha256"]).stdout,
        sha.stdout
    );
    assert_eq!(keg(&["context", "cold-app:old", "--sha256"]).code, 0);
    assert_fsck_clean(&cache);
}

#[test]
fn gc_keeps_everything_the_current_plan_needs() {
    let up = upstream();
    let daemon = up.daemon();
    let url = daemon.url("src");
    let [c1, c2, c3, c4] = up.c.clone();
    // An entry at c2 and one from a second URL, both dropped from the library later.
    let other = up.t.git_repo("other");
    other.file("Dockerfile", "FROM keg-test/busybox:latest\n");
    let other_commit = other.commit("other");
    git(
        &other.path,
        &["config", "uploadpack.allowAnySHA1InWant", "true"],
    );
    up.library(&url, &[("two", &c2, "app")]);
    up.t.manifest(
        "cold-other",
        &format!(
            "Maintainers: T (@t)\nGitRepo: {}\nGitCommit: {other_commit}\n\nTags: 1\n",
            daemon.url("other")
        ),
    );
    up.keg("cache", &["fetch", "--all"]).success();
    let cache = up.cache("cache").join("git");
    assert_eq!(pins(&up.cache("cache")), 4);
    assert_eq!(pack_files(&cache), 4, "one pack per fetch");

    // The library moves on: c2 and the other repository are no longer named, c3 is new.
    std::fs::remove_file(up.t.library().join("cold-other")).unwrap();
    up.library(&url, &[("mid", &c3, "app")]);
    let plan_before = up.keg("cache", &["plan", "--all", "--json"]);
    plan_before.success();

    let dry = up.keg("cache", &["gc", "--dry-run"]);
    dry.success();
    assert!(
        dry.stdout
            .contains(&format!("would drop refs/keg/commits/{c2}")),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains(&format!("refs/keg/commits/{other_commit}"))
    );
    assert_eq!(pins(&up.cache("cache")), 5, "--dry-run changes nothing");

    let run = up.keg("cache", &["gc"]);
    run.success();
    assert!(run.stdout.contains("kept 3 of 5 pins"), "{}", run.stdout);
    let kept = git(
        &cache,
        &["for-each-ref", "--format=%(refname)", "refs/keg/"],
    );
    for c in [&c1, &c3, &c4] {
        assert!(kept.contains(&format!("refs/keg/commits/{c}")), "{kept}");
    }
    assert!(
        !kept.contains(&c2) && !kept.contains(&other_commit),
        "{kept}"
    );
    assert_eq!(pack_files(&cache), 1, "one pack after gc");
    assert_fsck_clean(&cache);

    // Everything the plan needs is still there: no network any more, same answers.
    drop(daemon);
    assert_eq!(
        up.keg("cache", &["plan", "--all", "--json"]).stdout,
        plan_before.stdout
    );
    for tag in ["cold-app:1", "cold-app:old", "cold-app:mid", "cold-base:1"] {
        up.keg("cache", &["context", tag, "--sha256"]).success();
    }
    // The dropped commits are gone from the object database.
    let gone = Command::new("git")
        .arg("-C")
        .arg(&cache)
        .args(["cat-file", "-e", &other_commit])
        .status()
        .unwrap();
    assert!(!gone.success(), "the other repository's commit was pruned");
}

// ---------------------------------------------------------------------------------------
// On the Docker rig

/// Every image whose reference contains the prefix is removed on drop.
struct Images(String);

impl Drop for Images {
    fn drop(&mut self) {
        let out = Command::new("docker")
            .args(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mine: Vec<&str> = out.lines().filter(|l| l.contains(&self.0)).collect();
        if !mine.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "-f"])
                .args(mine)
                .output();
        }
    }
}

fn cache_tags(repository: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["image", "ls", repository, "--format", "{{.Tag}}"])
        .output()
        .expect("docker image ls");
    let mut tags: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|t| t.len() == 64)
        .map(str::to_owned)
        .collect();
    tags.sort();
    tags
}

/// The `"key"` of every node in `plan --json`, by node id.
fn keys(plan_json: &str) -> Vec<(String, String, Option<bool>)> {
    let plan: serde_json::Value = serde_json::from_str(plan_json).expect("plan JSON");
    plan["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_owned(),
                n["key"].as_str().unwrap().to_owned(),
                n["built"].as_bool(),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker)"]
fn a_build_from_a_shallow_cache_is_found_built_from_a_full_one() {
    require_engine();
    let prefix = common::unique("kc", "shallow");
    let _images = Images(prefix.clone());
    let t = Test::new();
    let src = t.git_repo("src");
    src.file(
        "base/Dockerfile",
        &format!("FROM keg-test/busybox:latest\nRUN echo {prefix} > /base\n"),
    );
    src.file(
        "app/Dockerfile",
        &format!("FROM {prefix}-base:1\nCOPY . /app\n"),
    );
    src.file("app/data.txt", "one\n");
    let c1 = src.commit("c1");
    src.file("app/data.txt", "two\n");
    let c2 = src.commit("c2");
    git(
        &src.path,
        &["config", "uploadpack.allowAnySHA1InWant", "true"],
    );
    let daemon = git_daemon(t.path()).expect("git daemon starts on 127.0.0.1");
    let url = daemon.url("src");
    t.manifest(
        &format!("{prefix}-base"),
        &format!(
            "Maintainers: T (@t)\nGitRepo: {url}\nGitCommit: {c1}\n\nTags: 1\nDirectory: base\n"
        ),
    );
    t.manifest(
        &format!("{prefix}-app"),
        &format!("Maintainers: T (@t)\nGitRepo: {url}\n\nTags: 1\nGitCommit: {c2}\nDirectory: app\n\nTags: old\nGitCommit: {c1}\nDirectory: app\n"),
    );
    let cache_repo = format!("{prefix}/cache");
    let keg = |cache: &str, args: &[&str]| {
        let mut cmd = t.command(&["--cache", &t.path().join(cache).display().to_string()]);
        cmd.args(args).args(["--cache-repo", &cache_repo]);
        Run::from(cmd.output().expect("run keg"))
    };
    let build = keg("shallow", &["build", "--all"]);
    build.success();
    assert!(shallow_list(&t.path().join("shallow/git")).contains(&c2));
    let shallow_plan = keys(&keg("shallow", &["plan", "--all", "--json"]).stdout);
    let mut full = t.command(&[
        "--cache",
        &t.path().join("full").display().to_string(),
        "--unshallow",
        "plan",
        "--all",
        "--json",
        "--cache-repo",
        &cache_repo,
    ]);
    let full_plan = Run::from(full.output().unwrap());
    full_plan.success();
    assert!(shallow_list(&t.path().join("full/git")).is_empty());
    let full_plan = keys(&full_plan.stdout);
    assert_eq!(full_plan.len(), 3);
    assert_eq!(shallow_plan, full_plan, "same keys, all built");
    assert!(full_plan.iter().all(|(_, _, built)| *built == Some(true)));
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker)"]
fn gc_removes_cache_images_of_old_keys_but_never_the_plans() {
    require_engine();
    let prefix = common::unique("kc", "gc");
    let _images = Images(prefix.clone());
    let t = Test::new();
    let src = t.git_repo("src");
    let cache_repo = format!("{prefix}/cache");
    let mut built: Vec<String> = Vec::new();
    let keg = |args: &[&str]| {
        let mut cmd = t.command(args);
        cmd.args(["--cache-repo", &cache_repo]);
        Run::from(cmd.output().expect("run keg"))
    };
    for version in 1..=3 {
        src.file(
            "Dockerfile",
            &format!("FROM keg-test/busybox:latest\nRUN echo {prefix}-{version} > /v\n"),
        );
        let commit = src.commit(&format!("v{version}"));
        t.manifest(
            &format!("{prefix}-app"),
            &format!("Maintainers: T (@t)\nGitRepo: ../src\nGitCommit: {commit}\n\nTags: 1\n"),
        );
        keg(&["build", "--all"]).success();
        let new: Vec<String> = cache_tags(&cache_repo)
            .into_iter()
            .filter(|k| !built.contains(k))
            .collect();
        assert_eq!(new.len(), 1, "one new cache image per version");
        built.extend(new);
    }
    // An image under the cache repository that this cache did not build: left alone.
    let foreign = "f".repeat(64);
    let tag = Command::new("docker")
        .args([
            "tag",
            "keg-test/busybox:latest",
            &format!("{cache_repo}:{foreign}"),
        ])
        .status()
        .unwrap();
    assert!(tag.success());
    let current = keys(&keg(&["plan", "--all", "--json"]).stdout)[0].1.clone();
    assert_eq!(current, built[2]);

    let dry = keg(&["gc", "--dry-run", "--keep", "0"]);
    dry.success();
    assert!(
        dry.stdout
            .contains(&format!("would remove {cache_repo}:{}", built[0]))
    );
    assert_eq!(
        cache_tags(&cache_repo).len(),
        4,
        "--dry-run removes nothing"
    );

    let keep1 = keg(&["gc", "--keep", "1"]);
    keep1.success();
    let mut want = vec![built[1].clone(), built[2].clone(), foreign.clone()];
    want.sort();
    assert_eq!(cache_tags(&cache_repo), want, "{}", keep1.stdout);

    let keep0 = keg(&["gc", "--keep", "0"]);
    keep0.success();
    let mut want = vec![built[2].clone(), foreign.clone()];
    want.sort();
    assert_eq!(cache_tags(&cache_repo), want, "{}", keep0.stdout);
    // What the plan needs is still built.
    let plan = keys(&keg(&["plan", "--all", "--json"]).stdout);
    assert_eq!(plan[0].2, Some(true));
}

#[test]
fn a_linking_killed_halfway_is_finished_before_anything_is_pinned() {
    let up = upstream();
    // Only c4 is named: nothing else would link the rest.
    up.t.manifest(
        "cold-base",
        &format!(
            "Maintainers: T (@t)\nGitRepo: {}\nGitCommit: {}\n\nTags: 1\nDirectory: base\n",
            up.src.url(),
            up.c[3]
        ),
    );
    // A cache where a killed keg had linked c4's commit object from the upstream, but not
    // its trees and blobs: the marker names what it was linking.
    let cache = up.cache("cache").join("git");
    git(
        up.t.path(),
        &["init", "-q", "--bare", &cache.display().to_string()],
    );
    let objects = up.src.path.join(".git/objects").canonicalize().unwrap();
    let c4 = &up.c[3];
    std::fs::create_dir_all(cache.join("objects").join(&c4[..2])).unwrap();
    std::fs::hard_link(
        objects.join(&c4[..2]).join(&c4[2..]),
        cache.join("objects").join(&c4[..2]).join(&c4[2..]),
    )
    .unwrap();
    std::fs::write(cache.join("keg-linking"), objects.display().to_string()).unwrap();
    // The commit looks present; keg finishes the linking before it pins it.
    up.keg("cache", &["fetch", "--all"]).success();
    assert!(!cache.join("keg-linking").exists());
    assert_fsck_clean(&cache);
    assert_eq!(
        up.keg("cache", &["context", "cold-base:1", "--sha256"])
            .code,
        0
    );
}
