//! `Builder: oci-import` end to end: OCI layouts written by `docker save` from an image of the
//! engine, committed to a git repository, selected and imported through `keg::oci` into the
//! real engine.
//!
//! `#[ignore]`d like tests/build.rs: `scripts/test` runs them with `--include-ignored` after
//! scripts/setup-docker; a missing engine fails them.
//! Every test makes its own image (unique label and layer), so image ids never collide
//! between tests, and removes every image it made.

mod common;

use std::process::{Command, Output, Stdio};
use std::sync::atomic::AtomicBool;

use common::{GitRepo, Test};
use keg::arch::{self, Platform};
use keg::git::GitCache;
use keg::oci::{self, OciError, Selected};

const BASE: &str = "keg-test/busybox:latest";
const LAYOUT: &str = "img";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (see scripts/setup-docker): {e}"))
}

/// Runs a command that must succeed; returns its trimmed stdout.
#[track_caller]
fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The id `reference` has in the engine, if it exists.
fn image_id(reference: &str) -> Option<String> {
    let out = run(
        "docker",
        &["image", "inspect", "--format", "{{.Id}}", reference],
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn require_tools() {
    let engine = run("docker", &["version", "--format", "{{.Server.Version}}"]);
    assert!(
        engine.status.success(),
        "no Docker engine: run scripts/setup-docker first"
    );
    assert!(
        image_id(BASE).is_some(),
        "{BASE} is missing: run scripts/setup-docker"
    );
}

/// The ids of the images labelled `keg.test=<marker>` (every image a layout test makes
/// carries its own marker).
fn marked(marker: &str) -> Vec<String> {
    let out = ok(
        "docker",
        &[
            "image",
            "ls",
            "--quiet",
            "--no-trunc",
            "--filter",
            &format!("label=keg.test={marker}"),
        ],
    );
    let mut ids: Vec<String> = out.lines().map(str::to_owned).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// `.RootFS.Layers` of a local image: the same in every image store.
fn layers(reference: &str) -> Vec<String> {
    let out = ok(
        "docker",
        &[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            reference,
        ],
    );
    serde_json::from_str(&out).unwrap()
}

/// The engine's platform, as keg names it (the base image is built for it).
fn host_platform() -> Platform {
    let os_arch = ok(
        "docker",
        &[
            "image",
            "inspect",
            "--format",
            "{{.Os}}/{{.Architecture}}",
            BASE,
        ],
    );
    arch::ARCHITECTURES
        .iter()
        .map(|(_, p)| *p)
        .find(|p| format!("{}/{}", p.os, p.architecture) == os_arch)
        .unwrap_or_else(|| panic!("no keg architecture for {os_arch}"))
}

/// A unique prefix for this test's image names; removes its images (and `ids`) on drop.
struct Names {
    prefix: String,
    ids: Vec<String>,
}

impl Names {
    fn new(test: &str) -> Names {
        Names {
            prefix: common::unique("kt", &format!("oci-{test}")),
            ids: Vec::new(),
        }
    }

    fn repo(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        let out = run(
            "docker",
            &["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
        );
        let listing = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut args = vec!["rmi", "-f"];
        args.extend(listing.lines().filter(|l| l.contains(&self.prefix)));
        args.extend(self.ids.iter().map(String::as_str));
        if args.len() > 2 {
            run("docker", &args);
        }
    }
}

/// A git repository holding an OCI layout under `img/` (saved by docker from a fresh image
/// with a unique layer), and a git cache with its commit.
struct Layout {
    t: Test,
    repo: GitRepo,
    cache: GitCache,
    commit: String,
    /// What the source image's layer says (`cat /keg-oci-test`).
    marker: String,
}

impl Layout {
    fn new(n: &mut Names) -> Layout {
        require_tools();
        let t = Test::new();
        let repo = t.git_repo("layouts");
        let marker = n.repo("marker");
        let source = format!("{}:1", n.repo("source"));
        let dockerfile =
            format!("FROM {BASE}\nLABEL keg.test={marker}\nRUN echo {marker} > /keg-oci-test\n");
        let mut build = Command::new("docker");
        build
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", &source, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = build.spawn().expect("docker build");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(dockerfile.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "docker build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        common::oci_layout(&source, &repo.path.join(LAYOUT));
        // The source image goes: the imported image must come from the layout alone.
        ok("docker", &["rmi", &source]);
        assert!(repo.path.join(LAYOUT).join("index.json").is_file());
        let commit = repo.commit("an OCI layout");
        let cache = GitCache::open(&t.path().join("cache")).unwrap();
        let layout = Layout {
            t,
            repo,
            cache,
            commit: String::new(),
            marker,
        };
        let commit = layout.fetch(&commit);
        Layout { commit, ..layout }
    }

    /// Makes `commit` of the test repository available in the cache; returns it.
    fn fetch(&self, commit: &str) -> String {
        let head = git2::Repository::open(&self.repo.path)
            .unwrap()
            .head()
            .unwrap()
            .name()
            .unwrap()
            .to_owned();
        self.cache
            .ensure_commit(&self.repo.url(), &head, commit)
            .unwrap();
        commit.to_owned()
    }

    fn select(&self, commit: &str, platform: &Platform) -> Result<Selected, OciError> {
        oci::select_in_git(&self.cache, commit, LAYOUT, "index.json", platform)
    }
}

fn no_cancel() -> AtomicBool {
    AtomicBool::new(false)
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn imports_a_saved_layout_and_points_every_tag_at_it() {
    let mut n = Names::new("import");
    let layout = Layout::new(&mut n);
    let platform = host_platform();
    let selected = layout.select(&layout.commit, &platform).unwrap();
    assert_eq!(selected.layers.len(), 2, "{selected:#?}");
    assert_eq!(selected.index_path, "img/index.json");
    assert_eq!(selected.platform, platform.to_string());
    assert!(selected.layers[0].path.starts_with("img/blobs/sha256/"));
    assert_eq!(
        marked(&layout.marker),
        Vec::<String>::new(),
        "the image must not exist before the import"
    );

    // One tag already names another image: the import must move it.
    let moved = format!("{}:1", n.repo("a"));
    ok("docker", &["tag", BASE, &moved]);
    let registry = format!("127.0.0.1:5000/{}:x", n.repo("c"));
    let tags = vec![moved.clone(), n.repo("b"), registry.clone()];
    let log = layout.t.path().join("import.log");
    oci::import(
        &layout.cache,
        &layout.commit,
        &selected,
        &tags,
        &log,
        &no_cancel(),
    )
    .unwrap();

    let imported = marked(&layout.marker);
    n.ids.extend(imported.iter().cloned());
    assert_eq!(imported.len(), 1, "{imported:?}");
    let id = image_id(&moved).unwrap();
    assert_eq!(layers(&moved), selected.diff_ids());
    for tag in [&moved, &format!("{}:latest", n.repo("b")), &registry] {
        assert_eq!(image_id(tag).as_deref(), Some(id.as_str()), "{tag}");
    }
    assert_ne!(image_id(BASE).as_deref(), Some(id.as_str()));
    assert_eq!(ok("docker", &["run", "--rm", &moved, "echo", "hi"]), "hi");
    assert_eq!(
        ok(
            "docker",
            &["run", "--rm", &registry, "cat", "/keg-oci-test"]
        ),
        layout.marker
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("$ docker load"), "{text}");
    assert!(text.contains(&format!("Loaded image: {moved}")), "{text}");

    // Importing again is harmless, and appends to the log.
    oci::import(
        &layout.cache,
        &layout.commit,
        &selected,
        &tags[..1],
        &log,
        &no_cancel(),
    )
    .unwrap();
    assert_eq!(image_id(&moved).as_deref(), Some(id.as_str()));
    let again = std::fs::read_to_string(&log).unwrap();
    assert!(again.len() > text.len() && again.starts_with(&text));

    // A platform the layout does not have: the message lists what it has.
    let s390x = arch::platform("s390x").unwrap();
    let err = layout.select(&layout.commit, &s390x).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no manifest for platform linux/s390x in img/index.json; the index has: {platform}"
        )
    );
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn an_altered_layer_byte_fails_and_creates_no_image() {
    let mut n = Names::new("corrupt");
    let layout = Layout::new(&mut n);
    let platform = host_platform();
    let good = layout.select(&layout.commit, &platform).unwrap();

    // Flip one byte in the middle of the top layer and commit that.
    let layer = good.layers.last().unwrap();
    let file = layout.repo.path.join(&layer.path);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let bad = layout.fetch(&layout.repo.commit("one layer byte altered"));
    assert_ne!(bad, layout.commit);

    let err = layout.select(&bad, &platform).unwrap_err();
    let OciError::DigestMismatch {
        path,
        expected,
        actual,
    } = &err
    else {
        panic!("expected a digest mismatch, got {err}");
    };
    assert_eq!(path, &layer.path);
    assert_eq!(expected, &layer.digest);
    assert_eq!(
        err.to_string(),
        format!(
            "blob {} has digest {actual} (expected {})",
            layer.path, layer.digest
        )
    );

    // Importing the good selection from the altered commit: the blob is verified again as
    // it is read, docker load is stopped, and nothing is created.
    let tag = format!("{}:1", n.repo("never"));
    let log = layout.t.path().join("corrupt.log");
    let reason = oci::import(
        &layout.cache,
        &bad,
        &good,
        std::slice::from_ref(&tag),
        &log,
        &no_cancel(),
    )
    .unwrap_err();
    assert_eq!(reason, err.to_string());
    let created = marked(&layout.marker);
    n.ids.extend(created.iter().cloned());
    assert_eq!(
        created,
        Vec::<String>::new(),
        "a failed import created an image"
    );
    assert_eq!(image_id(&tag), None);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("$ docker load"), "{text}");
    assert!(!text.contains("Loaded image"), "{text}");
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn a_cancelled_import_creates_no_image() {
    let mut n = Names::new("cancel");
    let layout = Layout::new(&mut n);
    let selected = layout.select(&layout.commit, &host_platform()).unwrap();
    let tag = format!("{}:1", n.repo("never"));
    let log = layout.t.path().join("cancel.log");
    let reason = oci::import(
        &layout.cache,
        &layout.commit,
        &selected,
        std::slice::from_ref(&tag),
        &log,
        &AtomicBool::new(true),
    )
    .unwrap_err();
    assert_eq!(reason, "interrupted");
    let created = marked(&layout.marker);
    n.ids.extend(created.iter().cloned());
    assert_eq!(
        created,
        Vec::<String>::new(),
        "a cancelled import created an image"
    );
    assert_eq!(image_id(&tag), None);
}
