//! Parents pinned by key, end to end on the rig's engine: keys that do not depend on the
//! selection, ancestors built when missing (or named with `--no-parents`), builds that use
//! the parents their keys hashed whatever the engine has under the parents' names, and the
//! architectures of one run built at the same time.
//!
//! `#[ignore]`d like the other engine tests: `scripts/test` runs them with
//! `--include-ignored` after scripts/setup-docker (with `--qemu`); a missing engine fails them.
//! Every test uses image names unique to it and removes them.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use common::{GitRepo, Run, Test, docker_output as docker, results};
use serde_json::Value;

const BASE: &str = "keg-test/busybox:latest";
/// amd64 and arm64 busybox in one list, made by the rig.
const MULTI: &str = "127.0.0.1:5000/keg-test/busybox:multi";

#[track_caller]
fn docker_ok(args: &[&str]) -> String {
    let (ok, text) = docker(args);
    assert!(ok, "docker {args:?}: {text}");
    text
}

fn image_id(reference: &str) -> Option<String> {
    let (ok, text) = docker(&["image", "inspect", "--format", "{{.Id}}", reference]);
    ok.then(|| text.trim().to_string())
}

/// Every local image reference containing `prefix`.
fn images_with(prefix: &str) -> Vec<String> {
    docker_ok(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
        .lines()
        .filter(|l| l.contains(prefix))
        .map(str::to_string)
        .collect()
}

/// A library of three repositories in one git repository: `base` (classic) <- `mid`
/// (BuildKit) <- `leaf` (`leaf:1` BuildKit, `leaf:c` classic).
struct Fixture {
    t: Test,
    src: GitRepo,
    prefix: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        common::remove_images(None, |image| image.contains(&self.prefix));
    }
}

impl Fixture {
    fn new(test: &str) -> Fixture {
        let (ok, version) = docker(&["version", "--format", "{{.Server.Version}}"]);
        assert!(
            ok,
            "no Docker engine: run scripts/setup-docker first ({version})"
        );
        let t = Test::new();
        let prefix = common::unique("kp", test);
        let src = t.git_repo("src");
        let f = Fixture { t, src, prefix };
        f.src
            .file(
                "base/Dockerfile",
                &format!("FROM {BASE}\nRUN echo base-{} > /base.txt\n", f.prefix),
            )
            .file(
                "mid/Dockerfile",
                &format!(
                    "FROM {}:1\nRUN cat /base.txt > /mid.txt && echo mid >> /mid.txt\n",
                    f.repo("base")
                ),
            );
        f.leaves("");
        f
    }

    fn repo(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn id(&self, name: &str, tag: &str) -> String {
        format!("{}:{tag}@amd64", self.repo(name))
    }

    /// Writes the leaves' Dockerfiles (with `extra` appended), commits and writes the
    /// manifests at the new commit.
    fn leaves(&self, extra: &str) {
        let mid = self.repo("mid");
        self.src
            .file(
                "leaf/Dockerfile",
                &format!("FROM {mid}:1\nRUN cat /mid.txt > /leaf.txt{extra}\nCMD [\"cat\", \"/leaf.txt\"]\n"),
            )
            .file(
                "leafc/Dockerfile",
                &format!("FROM {mid}:1\nRUN cat /mid.txt > /leaf.txt{extra}\nCMD [\"cat\", \"/leaf.txt\"]\n"),
            );
        let commit = self.src.commit("leaves");
        let head = format!("Maintainers: T (@t)\nGitRepo: ../src\nGitCommit: {commit}\n");
        self.t.manifest(
            &self.repo("base"),
            &format!("{head}\nTags: 1\nDirectory: base\nBuilder: classic\n"),
        );
        self.t.manifest(
            &self.repo("mid"),
            &format!("{head}\nTags: 1\nDirectory: mid\nBuilder: buildkit\n"),
        );
        self.t.manifest(
            &self.repo("leaf"),
            &format!("{head}\nTags: 1\nDirectory: leaf\nBuilder: buildkit\n\nTags: c\nDirectory: leafc\nBuilder: classic\n"),
        );
    }

    fn args<'a>(&'a self, cache_repo: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec![args[0], "--cache-repo", cache_repo];
        all.extend(&args[1..]);
        all
    }

    fn run(&self, args: &[&str]) -> Run {
        let cache_repo = format!("{}/cache", self.prefix);
        self.t.run(&self.args(&cache_repo, args))
    }

    fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let cache_repo = format!("{}/cache", self.prefix);
        let mut command = self.t.command(&self.args(&cache_repo, args));
        command.envs(env.iter().copied());
        command.output().expect("keg runs").into()
    }

    /// Node id -> key of `plan --json ARGS`.
    fn keys(&self, args: &[&str]) -> HashMap<String, String> {
        let mut all = vec!["plan", "--json"];
        all.extend(args);
        let run = self.run(&all);
        run.success();
        let plan: Value = serde_json::from_str(&run.stdout).unwrap();
        common::node_field(&plan, "key")
    }
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn one_key_per_content_whatever_the_selection() {
    let f = Fixture::new("keys");
    let all = f.keys(&["--all"]);
    assert_eq!(all.len(), 4, "{all:?}");
    let first = f.run(&["build", "--pull", "never", "--all"]);
    first.success();
    assert!(
        results(&first).values().all(|r| r == "built"),
        "{}",
        first.stdout
    );
    // One repository, one tag: nothing to build, and every node in them has --all's key.
    let leaf = f.repo("leaf");
    let leaf_c = format!("{leaf}:c");
    for selection in [&leaf, &leaf_c] {
        let again = f.run(&["build", "--pull", "never", selection]);
        again.success();
        let got = results(&again);
        assert!(got.values().all(|r| r == "cached"), "{}", again.stdout);
        assert!(
            got.contains_key(&f.id("mid", "1")) && got.contains_key(&f.id("base", "1")),
            "the ancestors are in the run: {}",
            again.stdout
        );
        assert!(again.stdout.contains("0 built"), "{}", again.stdout);
        for (id, key) in f.keys(&[selection]) {
            assert_eq!(all[&id], key, "{id} when building {selection}");
        }
    }
    for shard in ["1/2", "2/2"] {
        for (id, key) in f.keys(&["--all", "--shard", shard]) {
            assert_eq!(all[&id], key, "{id} in shard {shard}");
        }
    }
    let (_, out) = docker(&["run", "--rm", &format!("{leaf}:1")]);
    assert_eq!(out.trim(), format!("base-{}\nmid", f.prefix));
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn missing_ancestors_are_built_first_or_named() {
    let f = Fixture::new("ancestors");
    let keys = f.keys(&["--all"]);
    let leaf = f.repo("leaf");
    // Nothing of this library exists in the engine: --no-parents names what is missing.
    let refused = f.run(&["build", "--pull", "never", "--no-parents", &leaf]);
    assert_eq!(refused.code, 1, "{refused:#?}");
    for name in ["mid", "base"] {
        let id = f.id(name, "1");
        assert!(
            refused
                .stderr
                .contains(&format!("- {id} (key {})", keys[&id])),
            "{}",
            refused.stderr
        );
    }
    assert!(
        refused.stderr.contains("--no-parents"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        images_with(&f.prefix),
        Vec::<String>::new(),
        "no side effects"
    );

    // Without it, the ancestors are built first, as ancestors.
    let run = f.run(&["build", "--pull", "never", &leaf]);
    run.success();
    let want: BTreeMap<String, String> = [
        (f.id("base", "1"), "built"),
        (f.id("mid", "1"), "built"),
        (f.id("leaf", "1"), "built"),
        (f.id("leaf", "c"), "built"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    assert_eq!(results(&run), want, "{}", run.stdout);
    let line = |needle: String| {
        run.stdout
            .lines()
            .position(|l| l.contains(&needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}: {}", run.stdout))
    };
    assert!(
        line(format!("built   {}", f.id("base", "1")))
            < line(format!("start   {}", f.id("mid", "1")))
    );
    assert!(
        line(format!("built   {}", f.id("mid", "1")))
            < line(format!("start   {}", f.id("leaf", "1")))
    );
    for name in ["base", "mid"] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(&f.id(name, "1")) && l.contains("ancestor of the selection")),
            "{}",
            run.stdout
        );
        // An ancestor has its cache tag only: its names are not the selection's to set.
        assert_eq!(image_id(&format!("{}:1", f.repo(name))), None);
    }
    let (_, out) = docker(&["run", "--rm", &format!("{leaf}:c")]);
    assert_eq!(out.trim(), format!("base-{}\nmid", f.prefix));
    // Now that they exist, --no-parents has nothing to refuse.
    let again = f.run(&["build", "--pull", "never", "--no-parents", &leaf]);
    again.success();
}

/// A parent's name pointed at another image by hand: the children still build on the
/// parent their keys hashed, and the name is left as the user set it.
fn overwritten_parent_tag(test: &str, env: &[(&str, &str)]) {
    let f = Fixture::new(test);
    f.run_env(env, &["build", "--pull", "never", "--all"])
        .success();
    let mid = format!("{}:1", f.repo("mid"));
    docker_ok(&["tag", BASE, &mid]);
    let overwritten = image_id(&mid);
    f.leaves(" && echo v2 >> /leaf.txt");
    let leaf = f.repo("leaf");
    let run = f.run_env(env, &["build", "--pull", "never", &leaf]);
    run.success();
    let got = results(&run);
    assert_eq!(got[&f.id("leaf", "1")], "built", "{}", run.stdout);
    assert_eq!(got[&f.id("leaf", "c")], "built", "{}", run.stdout);
    assert_eq!(got[&f.id("mid", "1")], "cached", "{}", run.stdout);
    for tag in ["1", "c"] {
        let (ok, out) = docker(&["run", "--rm", &format!("{leaf}:{tag}")]);
        assert!(ok, "{out}");
        assert_eq!(
            out.trim(),
            format!("base-{}\nmid\nv2", f.prefix),
            "{leaf}:{tag}"
        );
    }
    assert_eq!(
        image_id(&mid),
        overwritten,
        "the user's tag is left as it was"
    );
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn a_parent_tag_overwritten_by_hand_changes_nothing() {
    overwritten_parent_tag("overwritten", &[]);
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn without_named_contexts_parents_are_pinned_by_name() {
    // An engine without named build contexts: every build holds its parents' names.
    overwritten_parent_tag("pinned", &[("KEG_ENGINE_FEATURES", "none")]);
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker --qemu); scripts/test runs it"]
fn architectures_build_at_the_same_time() {
    let binfmt = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    assert!(
        binfmt.is_ok_and(|b| b.starts_with("enabled")),
        "arm64 emulation is not registered: run scripts/setup-docker --qemu"
    );
    let f = Fixture::new("arches");
    let base = f.repo("abase");
    let child = f.repo("achild");
    f.src
        .file(
            "abase/Dockerfile",
            &format!("FROM {MULTI}\nRUN sleep 2 && uname -m > /arch\n"),
        )
        .file(
            "achild/Dockerfile",
            &format!(
                "FROM {base}:1\nRUN sleep 1 && cat /arch > /child\nCMD [\"cat\", \"/child\"]\n"
            ),
        );
    let commit = f.src.commit("arches");
    let head = format!(
        "Maintainers: T (@t)\nGitRepo: ../src\nGitCommit: {commit}\nArchitectures: amd64, arm64v8\n"
    );
    f.t.manifest(
        &base,
        &format!("{head}\nTags: 1\nDirectory: abase\nBuilder: buildkit\n"),
    );
    f.t.manifest(
        &child,
        &format!("{head}\nTags: 1\nDirectory: achild\nBuilder: classic\n"),
    );
    let args = ["--arch", "amd64,arm64v8"];
    let run = f.run(&["build", args[0], args[1], "--jobs", "4", &base, &child]);
    run.success();
    // Replay the event lines: at some moment nodes of both architectures ran together.
    let mut running: HashSet<String> = HashSet::new();
    let mut together = false;
    for line in run.stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.get(1..3) {
            Some(["start", id]) => {
                running.insert(id.to_string());
            }
            Some(["built", id]) => {
                running.remove(*id);
            }
            _ => {}
        }
        let arches: HashSet<&str> = running
            .iter()
            .filter_map(|id| id.rsplit_once('@').map(|(_, a)| a))
            .collect();
        together |= arches.len() == 2;
    }
    assert!(
        together,
        "no two architectures ran at once:\n{}",
        run.stdout
    );
    // Each architecture's child was built on its own architecture's parent.
    let plan: Value = {
        let mut all = vec!["plan", "--json", args[0], args[1], child.as_str()];
        all.retain(|a| !a.is_empty());
        serde_json::from_str(&f.run(&all).stdout).unwrap()
    };
    for node in plan["nodes"].as_array().unwrap() {
        if node["repo"] != child.as_str() {
            continue;
        }
        let platform = node["platform"].as_str().unwrap();
        let tag = node["cache_tag"].as_str().unwrap();
        let (ok, out) = docker(&["run", "--rm", "--platform", platform, tag]);
        assert!(ok, "{out}");
        let want = if platform.contains("arm64") {
            "aarch64"
        } else {
            "x86_64"
        };
        assert_eq!(out.trim(), want, "{}", node["id"]);
    }
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn nodes_with_one_key_build_it_once() {
    let f = Fixture::new("twins");
    // Two repositories building the same Directory of the same commit: one content, one key.
    let commit = f.src.commit("twins");
    for name in ["twin-a", "twin-b"] {
        f.t.manifest(
            &f.repo(name),
            &format!("Maintainers: T (@t)\nGitRepo: ../src\nGitCommit: {commit}\n\nTags: 1\nDirectory: mid\nBuilder: buildkit\n"),
        );
    }
    let (a, b) = (f.repo("twin-a"), f.repo("twin-b"));
    let keys = f.keys(&[&a, &b]);
    assert_eq!(keys[&f.id("twin-a", "1")], keys[&f.id("twin-b", "1")]);
    let run = f.run(&["build", "--pull", "never", "--jobs", "4", &a, &b]);
    run.success();
    let got = results(&run);
    assert_eq!(got[&f.id("twin-a", "1")], "built", "{}", run.stdout);
    assert_eq!(got[&f.id("twin-b", "1")], "cached", "{}", run.stdout);
    assert_eq!(
        image_id(&format!("{a}:1")),
        image_id(&format!("{b}:1")),
        "both names point at the one image"
    );
}
