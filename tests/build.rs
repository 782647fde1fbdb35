//! End to end against the real Docker engine, buildx and registry from scripts/setup-docker.
//!
//! These tests are `#[ignore]`d so a plain `cargo test` stays Docker-free; `scripts/test`
//! (and so CI) sets up the rig and runs them with `--include-ignored`, where a missing
//! engine fails them. Every test uses image names unique to it and removes its images.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{GitRepo, Run, Test, docker_stdout as docker, require_engine, results};

const BASE: &str = "keg-test/busybox:latest";

/// `docker builder prune -af` empties the engine's whole build cache, which breaks builds
/// running at that moment: the test that prunes holds this exclusively, the others share it.
static ENGINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared_engine() -> std::sync::RwLockReadGuard<'static, ()> {
    ENGINE.read().unwrap_or_else(|e| e.into_inner())
}

/// A unique prefix for image names, and cleanup of every image under it.
struct Names {
    prefix: String,
}

impl Names {
    fn new(test: &str) -> Names {
        Names {
            prefix: common::unique("kt", test),
        }
    }

    fn repo(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        common::remove_images(None, |image| image.contains(&self.prefix));
    }
}

struct Library {
    t: Test,
    n: Names,
    repos: [GitRepo; 3],
}

/// 8 entries over 3 git repositories: cross-repository parents, multi-stage builds, both
/// builders, a failing entry and its child.
fn library(test: &str) -> Library {
    require_engine();
    let t = Test::new();
    let n = Names::new(test);
    let base = n.repo("base");
    let app = n.repo("app");
    let one = t.git_repo("one");
    one.file(
        "base/Dockerfile",
        &format!("FROM {BASE}\nRUN echo base > /base.txt\nCMD [\"cat\", \"/base.txt\"]\n"),
    )
    .file(
        "base2/Dockerfile",
        &format!("FROM {BASE}\nRUN echo base2 > /base2.txt\nCMD [\"cat\", \"/base2.txt\"]\n"),
    );
    let two = t.git_repo("two");
    two.file(
        "app/Dockerfile",
        &format!("FROM {base}:1 AS build\nRUN echo app > /app.txt\n\nFROM {base}:1\nCOPY --from=build /app.txt /app.txt\nCMD [\"cat\", \"/app.txt\"]\n"),
    )
    .file(
        "classic/Dockerfile",
        &format!("FROM {base}:1 AS build\nRUN echo classic > /c.txt\nFROM {base}:1\nCOPY --from=build /c.txt /c.txt\nCMD [\"cat\", \"/c.txt\"]\n"),
    )
    .file("fail/Dockerfile", &format!("FROM {base}:1\nRUN echo failing on purpose && exit 3\n"));
    let three = t.git_repo("three");
    three
        .file("tool/Dockerfile", &format!("FROM {app}:1\nRUN echo tool >> /app.txt\n"))
        .file(
            "tool2/Dockerfile",
            &format!("FROM {}:1\nCOPY --from={app}:1 /app.txt /from-app.txt\nCMD [\"cat\", \"/from-app.txt\"]\n", n.repo("base2")),
        )
        .file("after-fail/Dockerfile", &format!("FROM {}:1\n", n.repo("fail")));
    let lib = Library {
        t,
        n,
        repos: [one, two, three],
    };
    lib.commit_all();
    lib
}

impl Library {
    /// Commits every repository and writes the manifests at the new commits.
    fn commit_all(&self) {
        let [one, two, three] = &self.repos;
        let (c1, c2, c3) = (one.commit("c"), two.commit("c"), three.commit("c"));
        let m = |name: &str, text: String| {
            self.t
                .manifest(&self.n.repo(name), &format!("Maintainers: T (@t)\n{text}"))
        };
        m(
            "base",
            format!(
                "GitRepo: {}\nGitCommit: {c1}\n\nTags: 1, latest\nDirectory: base\nBuilder: classic\n",
                one.url()
            ),
        );
        m(
            "base2",
            format!(
                "GitRepo: {}\nGitCommit: {c1}\n\nTags: 1\nDirectory: base2\nBuilder: buildkit\n",
                one.url()
            ),
        );
        m(
            "app",
            format!(
                "GitRepo: ../two\nGitCommit: {c2}\n\nTags: 1, latest\nDirectory: app\nBuilder: buildkit\n\nTags: classic\nDirectory: classic\n"
            ),
        );
        m(
            "fail",
            format!("GitRepo: ../two\nGitCommit: {c2}\n\nTags: 1\nDirectory: fail\n"),
        );
        m(
            "tool",
            format!(
                "GitRepo: ../three\nGitCommit: {c3}\nBuilder: buildkit\n\nTags: 1\nDirectory: tool\n\nTags: 2\nDirectory: tool2\n"
            ),
        );
        m(
            "after",
            format!("GitRepo: ../three\nGitCommit: {c3}\n\nTags: 1\nDirectory: after-fail\n"),
        );
    }

    fn build(&self, extra: &[&str]) -> Run {
        let mut args = vec!["build", "--jobs", "4", "--pull", "never", "--cache-repo"];
        let cache_repo = format!("{}/cache", self.n.prefix);
        args.push(&cache_repo);
        args.extend(extra);
        self.t.run(&args)
    }

    fn id(&self, name: &str, tag: &str) -> String {
        format!("{}:{tag}@amd64", self.n.repo(name))
    }

    fn ok_repos(&self) -> Vec<String> {
        ["base", "base2", "app", "tool"]
            .iter()
            .map(|r| self.n.repo(r))
            .collect()
    }
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn builds_isolate_failures_cache_and_rebuild_exactly_what_changed() {
    let _engine = shared_engine();
    let lib = library("main");
    // 1. Everything: the failing entry fails, its child is skipped, the rest is built.
    let first = lib.build(&["--all"]);
    assert_eq!(first.code, 1, "{first:#?}");
    let want: BTreeMap<String, String> = [
        (lib.id("app", "1"), "built"),
        (lib.id("app", "classic"), "built"),
        (lib.id("base", "1"), "built"),
        (lib.id("base2", "1"), "built"),
        (lib.id("tool", "1"), "built"),
        (lib.id("tool", "2"), "built"),
        (lib.id("fail", "1"), "failed"),
        (lib.id("after", "1"), "skipped"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    assert_eq!(results(&first), want, "{}", first.stdout);
    assert!(
        first.stdout.contains("failing on purpose"),
        "a failure prints its log's last lines"
    );
    assert!(
        first
            .stdout
            .contains(&format!("depends on {}, which failed", lib.id("fail", "1")))
    );

    // Every image exists under every tag and runs.
    let runs = [
        ("base", "1", "base"),
        ("base", "latest", "base"),
        ("base2", "1", "base2"),
        ("app", "1", "app"),
        ("app", "latest", "app"),
        ("app", "classic", "classic"),
        ("tool", "1", "app\ntool"),
        ("tool", "2", "app"),
    ];
    for (repo, tag, text) in runs {
        let image = format!("{}:{tag}", lib.n.repo(repo));
        assert_eq!(docker(&["run", "--rm", &image]).trim(), text, "{image}");
    }

    // 2. A second build of the good repositories builds nothing.
    let repos = lib.ok_repos();
    let mut args: Vec<&str> = repos.iter().map(String::as_str).collect();
    let second = lib.build(&args);
    assert_eq!(second.code, 0, "{second:#?}");
    assert!(
        results(&second).values().all(|r| r == "cached"),
        "{}",
        second.stdout
    );

    // 3. One Dockerfile changed: exactly it and its descendants are rebuilt.
    lib.repos[1].file(
        "app/Dockerfile",
        &format!("FROM {}:1 AS build\nRUN echo app v2 > /app.txt\n\nFROM {}:1\nCOPY --from=build /app.txt /app.txt\nCMD [\"cat\", \"/app.txt\"]\n", lib.n.repo("base"), lib.n.repo("base")),
    );
    lib.commit_all();
    let third = lib.build(&args);
    assert_eq!(third.code, 0, "{third:#?}");
    let rebuilt: Vec<String> = results(&third)
        .into_iter()
        .filter(|(_, r)| r == "built")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        rebuilt,
        [lib.id("app", "1"), lib.id("tool", "1"), lib.id("tool", "2")]
    );
    assert_eq!(
        docker(&["run", "--rm", &format!("{}:2", lib.n.repo("tool"))]).trim(),
        "app v2"
    );

    // 4. A dry run changes nothing and shows the argv.
    args.push("--dry-run");
    let dry = lib.build(&args);
    assert_eq!(dry.code, 0, "{dry:#?}");
    assert!(dry.stdout.contains("cached "), "{}", dry.stdout);
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn interrupt_leaves_no_docker_build_behind() {
    let _engine = shared_engine();
    require_engine();
    let t = Test::new();
    let n = Names::new("int");
    let r = t.git_repo("src");
    r.file("slow/Dockerfile", &format!("FROM {BASE}\nRUN sleep 60\n"));
    let c = r.commit("slow");
    let repo = n.repo("slow");
    t.manifest(&repo, &format!("Maintainers: T (@t)\nGitRepo: ../src\nGitCommit: {c}\n\nTags: 1\nDirectory: slow\nBuilder: buildkit\n"));
    let mut child = t
        .command(&["build", "--pull", "never", &repo])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until docker is building.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pgrep(&repo) {
        assert!(Instant::now() < deadline, "the build never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        !pgrep(&repo),
        "a docker process for {repo} survived the interrupt"
    );
    let images = docker(&["image", "ls", "--format", "{{.Repository}}"]);
    assert!(!images.contains(&repo), "an interrupted build must not tag");
}

fn pgrep(pattern: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn registry_cache_round_trip() {
    let _engine = ENGINE.write().unwrap_or_else(|e| e.into_inner());
    require_engine();
    let t = Test::new();
    let n = Names::new("cache");
    let r = t.git_repo("src");
    let repo = n.repo("c");
    let version = |v: &str| {
        r.file(
            "c/Dockerfile",
            &format!("FROM {BASE}\nRUN sleep 2 && echo expensive > /e.txt\nRUN echo {v} > /v.txt\nCMD [\"cat\", \"/e.txt\", \"/v.txt\"]\n"),
        );
        let c = r.commit(v);
        t.manifest(&repo, &format!("Maintainers: T (@t)\nGitRepo: ../src\nGitCommit: {c}\n\nTags: 1\nDirectory: c\nBuilder: buildkit\n"));
    };
    let registry =
        std::env::var("KEG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_string());
    let cache_repo = format!("{registry}/{}/cache", n.prefix);
    let logs = t.path().join("logs");
    let build = || {
        let _ = std::fs::remove_dir_all(&logs);
        t.run(&[
            "build",
            "--pull",
            "never",
            "--cache-repo",
            &cache_repo,
            "--log-dir",
            logs.to_str().unwrap(),
            &repo,
        ])
    };
    let log = || {
        let file = std::fs::read_dir(&logs)
            .unwrap()
            .flatten()
            .flat_map(|run| std::fs::read_dir(run.path()).unwrap().flatten())
            .next()
            .unwrap();
        std::fs::read_to_string(file.path()).unwrap()
    };
    // A machine that starts empty: none of this test's images, no build cache.
    let wipe = || {
        let out = docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
        for image in out.lines().filter(|l| l.contains(&n.prefix)) {
            docker(&["rmi", "-f", image]);
        }
        docker(&["builder", "prune", "-af"]);
    };

    version("v1");
    let first = build();
    assert_eq!(first.code, 0, "{first:#?}");
    let text = log();
    assert!(
        text.contains(&format!("type=registry,ref={cache_repo}:ref-"))
            && text.contains(",mode=max"),
        "the build exports its layers to its cache ref: {text}"
    );

    // The same key on an empty machine: the registry has its image, which is pulled.
    wipe();
    let second = build();
    assert_eq!(second.code, 0, "{second:#?}");
    assert_eq!(results(&second).values().collect::<Vec<_>>(), ["pulled"]);
    assert_eq!(
        docker(&["run", "--rm", &format!("{repo}:1")]).trim(),
        "expensive\nv1"
    );

    // A version bump on an empty machine: a new key, built from the cache ref's layers.
    wipe();
    version("v2");
    let third = build();
    assert_eq!(third.code, 0, "{third:#?}");
    assert_eq!(results(&third).values().collect::<Vec<_>>(), ["built"]);
    let text = log();
    assert!(text.contains("importing cache manifest from"), "{text}");
    // The slow step never runs: BuildKit reports it CACHED, or (with the containerd image
    // store, which unpacks what it reuses) as its cached layer extracted, in no time.
    let step = text
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix('#')?;
            let (number, what) = rest.split_once(' ')?;
            what.contains("RUN sleep 2 && echo expensive")
                .then(|| format!("#{number} "))
        })
        .unwrap_or_else(|| panic!("no slow step in the log: {text}"));
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&step)).collect();
    let done = lines
        .iter()
        .find_map(|l| l.strip_prefix(&format!("{step}DONE ")))
        .and_then(|t| t.trim_end_matches('s').parse::<f64>().ok());
    let imported = lines
        .iter()
        .any(|l| l.ends_with("CACHED") || l.contains(" extracting sha256:"));
    assert!(
        imported && done.is_none_or(|secs| secs < 1.0),
        "the slow step is imported, not run: {lines:#?}"
    );
    assert_eq!(
        docker(&["run", "--rm", &format!("{repo}:1")]).trim(),
        "expensive\nv2"
    );
}
