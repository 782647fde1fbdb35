//! Sources end to end: real git repositories made with git2 in temp dirs, a library pointing
//! at them by `file://` URL and by a path relative to the library; fetch, from, parents,
//! children, build order, cycles and build contexts. No network, no Docker.

mod common;

use common::{GitRepo, Test};

struct Fixture {
    t: Test,
    a: GitRepo,
    b: GitRepo,
}

fn fixture() -> Fixture {
    let t = Test::new();
    let a = t.git_repo("src-a");
    a.file("base/Dockerfile", "FROM debian:bookworm\nRUN echo base\n");
    a.file(
        "app/Dockerfile",
        "# syntax=docker/dockerfile:1\nARG BASE=base-img:1\nFROM golang:1.22 AS build\nRUN go build\n\nFROM ${BASE}\nCOPY --from=build /x /x\n",
    );
    let commit_a = a.commit("first");
    let b = t.git_repo("src-b");
    b.file(
        "tool/Dockerfile",
        "FROM scratch\nCOPY --from=app-img:latest /x /x\nRUN --mount=type=bind,from=base-img:1,target=/b true\n",
    );
    b.file("oci/index.json", "{}\n");
    let commit_b = b.commit("first");
    let url = a.url();
    t.manifest(
        "base-img",
        &format!("Maintainers: T (@t)\nGitRepo: {url}\nGitCommit: {commit_a}\n\nTags: 1, latest\nSharedTags: shared\nDirectory: base\n"),
    );
    t.manifest(
        "app-img",
        &format!("Maintainers: T (@t)\nGitRepo: {url}\nGitCommit: {commit_a}\nBuilder: buildkit\n\nTags: latest\nDirectory: app\n"),
    );
    t.manifest(
        "tool-img",
        &format!("Maintainers: T (@t)\nGitRepo: ../src-b\nGitCommit: {commit_b}\n\nTags: 1\nDirectory: tool\n\nTags: oci\nDirectory: oci\nFile: index.json\nBuilder: oci-import\n"),
    );
    Fixture { t, a, b }
}

#[test]
fn from_lists_every_external_parent_in_order() {
    let f = fixture();
    let run = f.t.run(&["from", "--all"]);
    run.success();
    assert_eq!(
        run.stdout,
        "app-img:latest: golang:1.22 base-img:1\nbase-img:1: debian:bookworm\nbase-img:latest: debian:bookworm\nbase-img:shared: debian:bookworm\ntool-img:1: scratch app-img:latest base-img:1\ntool-img:oci: scratch\n"
    );
    let uniq = f.t.run(&["from", "--uniq", "base-img"]);
    assert_eq!(uniq.stdout, "base-img:1: debian:bookworm\n");
}

#[test]
fn fetch_needs_no_network_once_cached() {
    let f = fixture();
    f.t.run(&["fetch", "--all"]).success();
    // The sources are gone; everything is answered from the cache (local repositories'
    // objects are hard-linked into it).
    std::fs::remove_dir_all(&f.a.path).unwrap();
    std::fs::remove_dir_all(&f.b.path).unwrap();
    let run = f.t.run(&["from", "tool-img:1"]);
    run.success();
    assert_eq!(
        run.stdout,
        "tool-img:1: scratch app-img:latest base-img:1\n"
    );
}

#[test]
fn fetch_failures_name_entry_url_and_commit() {
    let f = fixture();
    let missing = "0123456789abcdef0123456789abcdef01234567";
    f.t.manifest(
        "gone",
        &format!(
            "Maintainers: T (@t)\nGitRepo: {}\nGitCommit: {missing}\n\nTags: 1\n",
            f.a.url()
        ),
    );
    let run = f.t.run(&["fetch", "gone"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.starts_with(
            "gone:1 (amd64): fetching 0123456789abcdef0123456789abcdef01234567 from file://"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn parents_and_children_walk_the_library() {
    let f = fixture();
    let cases: &[(&[&str], &str)] = &[
        (
            &["parents", "tool-img:1"],
            "app-img:latest\nbase-img:1\ngolang:1.22\nbase-img:1\ndebian:bookworm\ndebian:bookworm\n",
        ),
        (
            &["parents", "--uniq", "tool-img:1"],
            "app-img:latest\nbase-img:1\ngolang:1.22\ndebian:bookworm\n",
        ),
        (
            &["parents", "--depth", "1", "tool-img:1"],
            "app-img:latest\nbase-img:1\n",
        ),
        (
            &["children", "debian"],
            "base-img:1\napp-img:latest\ntool-img:1\ntool-img:1\n",
        ),
        (
            &["children", "--uniq", "debian:bookworm"],
            "base-img:1\napp-img:latest\ntool-img:1\n",
        ),
        (
            &["children", "--depth", "1", "base-img"],
            "app-img:latest\ntool-img:1\n",
        ),
        (
            &["children", "base-img:shared"],
            "app-img:latest\ntool-img:1\ntool-img:1\n",
        ),
        (&["children", "golang:1.22"], "app-img:latest\ntool-img:1\n"),
    ];
    for (args, want) in cases {
        let run = f.t.run(args);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (0, *want),
            "keg {args:?}: {}",
            run.stderr
        );
    }
    let unknown = f.t.run(&["children", "nothing-uses-this"]);
    assert_eq!(unknown.code, 2);
    assert_eq!(
        unknown.stderr,
        "failed to resolve argument as repo or tag \"nothing-uses-this\"\n"
    );
}

#[test]
fn build_order_puts_parents_first() {
    let f = fixture();
    let run = f.t.run(&[
        "list",
        "--build-order",
        "--uniq",
        "tool-img",
        "app-img",
        "base-img",
    ]);
    run.success();
    assert_eq!(
        run.stdout,
        "base-img:1\napp-img:latest\ntool-img:1\ntool-img:oci\n"
    );
    let no_sort = f.t.run(&[
        "list",
        "--build-order",
        "--no-sort",
        "--uniq",
        "tool-img",
        "base-img",
    ]);
    assert_eq!(no_sort.stdout, "tool-img:1\ntool-img:oci\nbase-img:1\n");
}

#[test]
fn cycles_are_errors_naming_every_member() {
    let t = Test::new();
    let r = t.git_repo("src");
    r.file("x/Dockerfile", "FROM y-img:1\n")
        .file("y/Dockerfile", "FROM z-img:1\n")
        .file("z/Dockerfile", "FROM x-img:1\n");
    let c = r.commit("cycle");
    for (name, dir) in [("x-img", "x"), ("y-img", "y"), ("z-img", "z")] {
        t.manifest(name, &format!("Maintainers: T (@t)\nGitRepo: ../src\nGitCommit: {c}\n\nTags: 1\nDirectory: {dir}\n"));
    }
    let order = t.run(&["list", "--build-order", "--all"]);
    assert_eq!(order.code, 2);
    assert_eq!(
        order.stderr,
        "dependency cycle: x-img -> z-img -> y-img -> x-img\n"
    );
    let plan = t.run(&["plan", "--all"]);
    assert_eq!(plan.code, 2);
    assert_eq!(
        plan.stderr,
        "dependency cycle: x-img:1@amd64 -> z-img:1@amd64 -> y-img:1@amd64 -> x-img:1@amd64\n"
    );
    // Walks terminate on a cycle.
    let parents = t.run(&["parents", "x-img"]);
    assert_eq!(
        (parents.code, parents.stdout.as_str()),
        (0, "y-img:1\nz-img:1\nx-img:1\ny-img:1\nz-img:1\n")
    );
    let children = t.run(&["children", "x-img"]);
    assert_eq!(children.code, 0, "{children:?}");
}

#[test]
fn contexts_are_deterministic_and_match_git_archive() {
    let f = fixture();
    f.a.file("base/sub/data.txt", "data\n")
        .file("base/run.sh", "#!/bin/sh\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let script = f.a.path.join("base/run.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("sub/data.txt", f.a.path.join("base/link")).unwrap();
    }
    let commit = f.a.commit("more files");
    f.t.manifest(
        "base-img",
        &format!(
            "Maintainers: T (@t)\nGitRepo: {}\nGitCommit: {commit}\n\nTags: 1\nDirectory: base\n",
            f.a.url()
        ),
    );
    let one = f.t.run(&["context", "--sha256", "base-img:1"]);
    one.success();
    let other =
        f.t.command(&["context", "--sha256", "base-img:1"])
            .env("BASHBREW_CACHE", f.t.path().join("other-cache"))
            .output()
            .unwrap();
    assert_eq!(String::from_utf8_lossy(&other.stdout), one.stdout);
    assert_eq!(one.stdout.trim().len(), 64);

    let tar = f.t.command(&["context", "base-img:1"]).output().unwrap();
    assert!(tar.status.success());
    let ours = tar_listing(&tar.stdout);
    let archive = std::process::Command::new("git")
        .args([
            "-c",
            "tar.umask=0022",
            "archive",
            "--format=tar",
            &format!("{commit}:base"),
        ])
        .current_dir(&f.a.path)
        .output()
        .unwrap();
    assert!(archive.status.success());
    assert_eq!(ours, tar_listing(&archive.stdout));
    // Every entry carries the commit time (git archive of a tree uses the current time).
    let mut archive = tar::Archive::new(&tar.stdout[..]);
    for entry in archive.entries().unwrap() {
        assert_eq!(entry.unwrap().header().mtime().unwrap(), 1_700_000_000);
    }
    assert!(
        ours.iter().any(|e| e.starts_with("run.sh 0755")),
        "{ours:?}"
    );
    assert!(
        ours.iter()
            .any(|e| e.starts_with("link symlink sub/data.txt")),
        "{ours:?}"
    );
}

/// name, mode or link, size and content of every entry (pax headers skipped).
fn tar_listing(bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let kind = header.entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let mut content = String::new();
        let line = if kind.is_symlink() {
            format!(
                "{path} symlink {}",
                entry.link_name().unwrap().unwrap().display()
            )
        } else {
            std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
            format!(
                "{path} {:04o} {} {content:?}",
                header.mode().unwrap() & 0o7777,
                header.size().unwrap()
            )
        };
        out.push(line);
    }
    out.sort();
    out
}
