//! Publishing end to end: two architectures (one emulated with qemu), a cross-repository
//! parent, a shared tag spanning both architectures and an oci-import entry, built, pushed
//! into per-architecture namespaces on the rig's registry (127.0.0.1:5000) and joined into
//! manifest lists with `put-shared`.
//!
//! `#[ignore]`d like the other engine tests: `scripts/test` sets up the rig (with
//! `--qemu`) and runs them with `--include-ignored`, where a missing engine, registry,
//! or emulator fails them.

mod common;

use common::{Run, Test, docker_output as docker};

const REGISTRY: &str = "127.0.0.1:5000";
/// A list with linux/amd64 and linux/arm64 busybox images, made by the rig.
const MULTI: &str = "127.0.0.1:5000/keg-test/busybox:multi";

fn require_rig() {
    let (ok, text) = docker(&["buildx", "imagetools", "inspect", MULTI]);
    assert!(
        ok && text.contains("linux/arm64"),
        "the rig's multi-arch base image is missing: run scripts/setup-docker --qemu\n{text}"
    );
    let binfmt = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    assert!(
        binfmt.is_ok_and(|b| b.starts_with("enabled")),
        "arm64 emulation is not registered: run scripts/setup-docker --qemu"
    );
}

/// Platforms of a registry reference, as `docker buildx imagetools inspect` shows them.
fn platforms(reference: &str) -> Vec<String> {
    let (ok, text) = docker(&["buildx", "imagetools", "inspect", reference]);
    assert!(ok, "inspect {reference}: {text}");
    let mut out: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Platform:"))
        .map(|p| p.trim().to_string())
        .collect();
    out.sort();
    out
}

struct Fixture {
    t: Test,
    prefix: String,
    local: Vec<String>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        common::remove_images(None, |image| {
            image.contains(&self.prefix) || self.local.iter().any(|n| image.starts_with(n))
        });
    }
}

impl Fixture {
    fn keg(&self, args: &[&str]) -> Run {
        let cache_repo = format!("{}/cache", self.prefix);
        let mut all = vec!["--arch", "amd64,arm64v8"];
        all.extend(args);
        if matches!(args[0], "build" | "push" | "tag" | "plan") {
            all.extend(["--cache-repo", &cache_repo]);
        }
        self.t.run(&all)
    }

    fn arch_namespaces(&self) -> String {
        format!(
            "amd64={REGISTRY}/{p}-amd64,arm64v8={REGISTRY}/{p}-arm64v8",
            p = self.prefix
        )
    }

    fn target(&self, repo: &str) -> String {
        format!("{REGISTRY}/{}-lib/{repo}", self.prefix)
    }
}

fn fixture() -> Fixture {
    require_rig();
    let prefix = common::unique("kp", "pub");
    let t = Test::new();
    let (base, app, imported) = (
        format!("{prefix}-base"),
        format!("{prefix}-app"),
        format!("{prefix}-imported"),
    );
    let src = t.git_repo("src");
    src.file(
        "base/Dockerfile",
        &format!("FROM {MULTI}\nRUN echo \"base on $(uname -m)\" > /hello.txt\n"),
    )
    .file(
        "app/Dockerfile",
        &format!(
            "FROM {base}:1\nRUN echo \"app on $(uname -m)\" >> /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n"
        ),
    );
    // An OCI layout of the amd64 base image, committed like any source.
    common::oci_layout("keg-test/busybox:latest", &src.path.join("layout"));
    let commit = src.commit("sources");
    let head = format!("Maintainers: T (@t)\nGitRepo: ../src\nGitCommit: {commit}\n");
    t.manifest(
        &base,
        &format!(
            "{head}Architectures: amd64, arm64v8\nBuilder: buildkit\n\nTags: 1, latest\nDirectory: base\n"
        ),
    );
    t.manifest(
        &app,
        &format!(
            "{head}Directory: app\n\nTags: 1-amd64\nSharedTags: 1\nArchitectures: amd64\n\nTags: 1-arm64\nSharedTags: 1\nArchitectures: arm64v8\n"
        ),
    );
    t.manifest(
        &imported,
        &format!("{head}\nTags: 1\nBuilder: oci-import\nDirectory: layout\nFile: index.json\n"),
    );
    Fixture {
        t,
        local: vec![base, app, imported],
        prefix,
    }
}

#[test]
#[ignore = "needs the Docker rig with qemu: scripts/setup-docker --qemu"]
fn two_architectures_are_built_pushed_and_joined_into_lists() {
    let f = fixture();
    let (base, app, imported) = (&f.local[0], &f.local[1], &f.local[2]);

    let plan = f.keg(&["plan", "--all", "--json"]);
    plan.success();
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let mut ids: Vec<(String, Vec<String>)> = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let deps = n["depends_on"].as_array().unwrap();
            let deps = deps.iter().map(|d| d.as_str().unwrap().to_string());
            (n["id"].as_str().unwrap().to_string(), deps.collect())
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            (
                format!("{app}:1-amd64@amd64"),
                vec![format!("{base}:1@amd64")]
            ),
            (
                format!("{app}:1-arm64@arm64v8"),
                vec![format!("{base}:1@arm64v8")]
            ),
            (format!("{base}:1@amd64"), vec![]),
            (format!("{base}:1@arm64v8"), vec![]),
            (format!("{imported}:1@amd64"), vec![]),
        ],
        "parents resolve within each architecture"
    );

    f.keg(&["build", "--all"]).success();
    let namespaces = f.arch_namespaces();
    let tag = f.keg(&["tag", "--all", "--arch-namespace", &namespaces]);
    tag.success();
    assert_eq!(
        tag.stdout.matches("Tagging ").count(),
        9,
        "tags and shared tags of every node:\n{}",
        tag.stdout
    );
    assert!(tag.stdout.contains(&format!(
        "Tagging {REGISTRY}/{}-arm64v8/{app}:1\n",
        f.prefix
    )));
    let push = f.keg(&["push", "--all", "--arch-namespace", &namespaces]);
    push.success();
    assert_eq!(
        push.stdout.matches("Pushing ").count(),
        7,
        "every tag of every node, never a shared tag:\n{}",
        push.stdout
    );
    let target_namespace = format!("{REGISTRY}/{}-lib", f.prefix);
    let put_shared = [
        "put-shared",
        "--all",
        "--target-namespace",
        &target_namespace,
        "--arch-namespace",
        &namespaces,
    ];
    let put = f.keg(&put_shared);
    put.success();
    assert_eq!(put.stdout.matches("Putting ").count(), 5, "{}", put.stdout);

    let both = vec!["linux/amd64".to_string(), "linux/arm64".to_string()];
    assert_eq!(platforms(&format!("{}:1", f.target(base))), both);
    assert_eq!(platforms(&format!("{}:latest", f.target(base))), both);
    assert_eq!(
        platforms(&format!("{}:1", f.target(app))),
        both,
        "the shared tag spans the two entries"
    );
    assert_eq!(
        platforms(&format!("{}:1-arm64", f.target(app))),
        vec!["linux/arm64".to_string()]
    );
    assert_eq!(
        platforms(&format!("{}:1", f.target(imported))),
        vec!["linux/amd64".to_string()]
    );

    for (platform, machine) in [("linux/arm64", "aarch64"), ("linux/amd64", "x86_64")] {
        let (ok, text) = docker(&[
            "run",
            "--rm",
            "--pull",
            "always",
            "--platform",
            platform,
            &format!("{}:1", f.target(app)),
        ]);
        assert!(ok, "{text}");
        assert!(
            text.contains(&format!("base on {machine}\napp on {machine}\n")),
            "{platform}: {text}"
        );
    }

    // Nothing changed: nothing is pushed or put again.
    let push = f.keg(&["push", "--all", "--arch-namespace", &namespaces]);
    push.success();
    assert!(!push.stdout.contains("Pushing"), "{}", push.stdout);
    assert_eq!(
        push.stderr.matches("(remote image matches local)").count(),
        7,
        "{}",
        push.stderr
    );
    let put = f.keg(&put_shared);
    put.success();
    assert!(!put.stdout.contains("Putting"), "{}", put.stdout);
    assert_eq!(
        put.stderr.matches("remote digests up-to-date").count(),
        6,
        "{}",
        put.stderr
    );

    // Dry runs print the exact commands and change nothing.
    let dry = f.keg(&[
        "put-shared",
        "--all",
        "--force",
        "--dry-run",
        "--target-namespace",
        &target_namespace,
        "--arch-namespace",
        &namespaces,
    ]);
    dry.success();
    assert!(
        dry.stdout.contains(&format!(
            "  docker buildx imagetools create -t {}:1 {REGISTRY}/{}-amd64/{app}@sha256:",
            f.target(app),
            f.prefix
        )),
        "{}",
        dry.stdout
    );
}

#[test]
#[ignore = "needs the Docker rig: scripts/setup-docker --qemu"]
fn an_oci_layout_with_a_wrong_digest_fails_clearly() {
    let f = fixture();
    let imported = &f.local[2];
    // Corrupt the config blob (the smallest) and commit it under the same name.
    let src = f.t.path().join("src");
    let blobs = src.join("layout/blobs/sha256");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("layout/index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blobs.join(manifest_digest.trim_start_matches("sha256:"))).unwrap(),
    )
    .unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let path = blobs.join(config.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    let repo = git2::Repository::open(&src).unwrap();
    let mut git_index = repo.index().unwrap();
    git_index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    let tree = repo.find_tree(git_index.write_tree().unwrap()).unwrap();
    let sig =
        git2::Signature::new("T", "t@example.com", &git2::Time::new(1_700_000_000, 0)).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    let commit = repo
        .commit(Some("HEAD"), &sig, &sig, "corrupt", &tree, &[&head])
        .unwrap()
        .to_string();
    f.t.manifest(
        imported,
        &format!(
            "Maintainers: T (@t)\nGitRepo: ../src\nGitCommit: {commit}\n\nTags: 1\nBuilder: oci-import\nDirectory: layout\nFile: index.json\n"
        ),
    );
    let cache_repo = format!("{}/cache", f.prefix);
    let run = f.t.run(&["build", imported, "--cache-repo", &cache_repo]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stdout.contains(&config) && run.stdout.contains("digest"),
        "the failure names the blob and its digest:\n{}",
        run.stdout
    );
    let (exists, _) = docker(&["image", "inspect", &format!("{imported}:1")]);
    assert!(!exists, "no image is tagged from a corrupt layout");
}

#[test]
#[ignore = "needs the Docker rig: scripts/setup-docker --qemu"]
fn build_push_pushes_each_node_once() {
    let f = fixture();
    let base = &f.local[0];
    let cache_repo = format!("{}/cache", f.prefix);
    let target = format!("{REGISTRY}/{}-pushed", f.prefix);
    let build = |extra: &[&str]| {
        let mut args = vec!["build", base, "--cache-repo", &cache_repo];
        args.extend(extra);
        f.t.run(&args)
    };
    let dry = build(&["--push", "--target-namespace", &target, "--dry-run"]);
    dry.success();
    assert!(
        dry.stdout
            .contains(&format!("would push {target}/{base}:1 after building")),
        "{}",
        dry.stdout
    );
    let first = build(&["--target-namespace", &target]);
    first.success();
    let (ok, text) = docker(&[
        "buildx",
        "imagetools",
        "inspect",
        "--raw",
        &format!("{target}/{base}:latest"),
    ]);
    assert!(ok, "the built node was pushed: {text}");
    let log_dir = f.t.path().join("cache/logs");
    let logs = walk(&log_dir);
    assert!(
        logs.iter()
            .any(|l| l.contains(&format!("Pushing {target}/{base}:1"))),
        "the push is in the node's log"
    );
    // Cached now: pushed again only if the registry lacks it, and it does not.
    let second = build(&["--push", "--target-namespace", &target]);
    second.success();
    assert!(second.stdout.contains("cached"), "{}", second.stdout);
    assert!(!second.stdout.contains("Pushing"), "{}", second.stdout);
    assert_eq!(
        second
            .stderr
            .matches("(remote image matches local)")
            .count(),
        2,
        "{}",
        second.stderr
    );
}

/// The text of every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            out.push(text);
        }
    }
    out
}
