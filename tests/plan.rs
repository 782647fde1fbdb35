//! The planner end to end over real git repositories: graph, order, keys and their
//! properties, shards, JSON/DOT/text output. Docker is made unreachable (DOCKER_HOST points
//! at nothing), so `built` is null and outputs are the same on every machine.

mod common;

use std::collections::{HashMap, HashSet};

use common::{GitRepo, Test};
use serde_json::Value;

struct Fixture {
    t: Test,
    src: GitRepo,
}

const APP: &str = "ARG BASE=base-img:1\nFROM ${BASE} AS runtime\nFROM golang:1.22 AS build\nRUN go build -o /app\nFROM runtime\nCOPY --from=build /app /app\n";

fn fixture() -> Fixture {
    let t = Test::new();
    let src = t.git_repo("src");
    src.file("base/Dockerfile", "FROM debian:bookworm\n")
        .file("base/alpine/Dockerfile", "FROM alpine:3.20\n")
        .file("app/Dockerfile", APP)
        .file("app/arm/Dockerfile", "FROM base-img:1\n")
        .file(
            "tool/Dockerfile",
            "FROM base-img:shared\nCOPY --from=app-img:1 /app /app\n",
        )
        .file(
            "win/Dockerfile",
            "FROM mcr.microsoft.com/windows/servercore:ltsc2022\n",
        )
        .file("lone/Dockerfile", "FROM busybox\n");
    let commit = src.commit("first");
    write_library(&t, &commit);
    Fixture { t, src }
}

fn write_library(t: &Test, commit: &str) {
    let head = format!("Maintainers: T (@t)\nGitRepo: ../src\nGitCommit: {commit}\n");
    t.manifest(
        "base-img",
        &format!("{head}\nTags: 1, latest\nSharedTags: shared\nArchitectures: amd64, arm64v8\nDirectory: base\n\nTags: 1-alpine\nSharedTags: shared\nDirectory: base/alpine\n"),
    );
    t.manifest(
        "app-img",
        &format!("{head}Builder: buildkit\n\nTags: 1\nArchitectures: amd64, arm64v8\nDirectory: app\narm64v8-Directory: app/arm\n"),
    );
    t.manifest("tool-img", &format!("{head}\nTags: 1\nDirectory: tool\n"));
    t.manifest(
        "win-img",
        &format!("{head}\nTags: 1\nDirectory: win\nConstraints: windowsservercore-ltsc2022\n"),
    );
    t.manifest("lone-img", &format!("{head}\nTags: 1\nDirectory: lone\n"));
}

impl Fixture {
    fn plan(&self, extra: &[&str]) -> Value {
        let mut args = vec!["plan", "--json"];
        args.extend(extra);
        let run = self.run(&args);
        assert_eq!(run.code, 0, "{run:?}");
        serde_json::from_str(&run.stdout).unwrap()
    }

    fn run(&self, args: &[&str]) -> common::Run {
        self.t
            .command(args)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .unwrap()
            .into()
    }

    fn keys(&self) -> HashMap<String, String> {
        keys(&self.plan(&["--all"]))
    }
}

fn keys(plan: &Value) -> HashMap<String, String> {
    common::node_field(plan, "key")
}

#[test]
fn graph_order_and_skips() {
    let f = fixture();
    let run = f.run(&["plan", "--json", "--all"]);
    run.success();
    assert_eq!(
        run.stderr,
        "skipping \"win-img:1\" (due to unsatisfactory constraints [\"windowsservercore-ltsc2022\"])\n"
    );
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(plan["version"], 2);
    assert_eq!(
        plan["order"],
        serde_json::json!([
            "base-img:1@amd64",
            "base-img:1-alpine@amd64",
            "lone-img:1@amd64",
            "app-img:1@amd64",
            "tool-img:1@amd64"
        ])
    );
    let node = |id: &str| {
        plan["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap()
            .clone()
    };
    let app = node("app-img:1@amd64");
    let base = node("base-img:1@amd64");
    assert_eq!(
        app["parents"],
        serde_json::json!([
            {"ref": "base-img:1", "node": "base-img:1@amd64", "image": base["cache_tag"], "cache_ref": base["cache_ref"]},
            {"ref": "golang:1.22", "node": null, "image": null}
        ])
    );
    assert_eq!(app["depends_on"], serde_json::json!(["base-img:1@amd64"]));
    assert_eq!(app["provisional"], true);
    assert_eq!(app["built"], Value::Null);
    assert_eq!(app["builder"], "buildkit");
    let tool = node("tool-img:1@amd64");
    // A shared-tag parent resolves to the first entry that has it; COPY --from another repo.
    assert_eq!(
        tool["depends_on"],
        serde_json::json!(["base-img:1@amd64", "app-img:1@amd64"])
    );
    let argv: Vec<&str> = tool["command"]["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(&argv[..4], ["docker", "build", "--rm", "--force-rm"]);
    assert_eq!(tool["command"]["env"]["DOCKER_BUILDKIT"], "0");
    assert!(argv.contains(&tool["cache_tag"].as_str().unwrap()));
    assert_eq!(argv.last(), Some(&"-"));
}

#[test]
fn arch_overrides_make_their_own_nodes() {
    let f = fixture();
    let plan = f.plan(&["--arch", "arm64v8", "--all"]);
    let ids: Vec<&str> = plan["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids, ["base-img:1@arm64v8", "app-img:1@arm64v8"]);
    let app = &plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "app-img:1@arm64v8")
        .unwrap();
    assert_eq!(app["directory"], "app/arm");
    assert_eq!(app["platform"], "linux/arm64/v8");
    assert_eq!(
        app["provisional"], false,
        "its only parent is built in the plan"
    );
}

#[test]
fn several_architectures_plan_one_node_each_with_parents_in_the_same_architecture() {
    let f = fixture();
    let both = f.plan(&["--arch", "amd64", "--arch", "arm64v8", "--all"]);
    let all = f.plan(&["--arch", "all", "--all"]);
    assert_eq!(
        keys(&both),
        keys(&all),
        "`all` is every architecture of the entries"
    );
    let nodes = both["nodes"].as_array().unwrap();
    let find = |id: &str| nodes.iter().find(|n| n["id"] == id).unwrap();
    assert_eq!(
        find("app-img:1@arm64v8")["depends_on"],
        serde_json::json!(["base-img:1@arm64v8"])
    );
    assert_eq!(
        find("app-img:1@amd64")["depends_on"],
        serde_json::json!(["base-img:1@amd64"])
    );
    // tool-img is amd64 only: no arm64v8 node, and no skip note for it either.
    assert!(nodes.iter().all(|n| n["id"] != "tool-img:1@arm64v8"));
    let run = f.run(&["--arch", "amd64,arm64v8", "plan", "--all"]);
    assert!(
        !run.stderr.contains("due to architecture"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.starts_with("plan: 7 nodes for amd64, arm64v8 "),
        "{}",
        run.stdout
    );
    // Each architecture's node is the one its single-architecture plan has.
    let arm = keys(&f.plan(&["--arch", "arm64v8", "--all"]));
    for (id, key) in arm {
        assert_eq!(keys(&both)[&id], key, "{id}");
    }
}

#[test]
fn keys_do_not_depend_on_the_selection() {
    let f = fixture();
    let all = f.keys();
    // Each selection plans its in-library ancestors too, with the same keys as --all.
    for selection in [
        &["tool-img"][..],
        &["app-img"],
        &["app-img:1"],
        &["base-img:1-alpine", "lone-img"],
    ] {
        let plan = f.plan(selection);
        for (id, key) in keys(&plan) {
            assert_eq!(all[&id], key, "{id} when planning {selection:?}");
        }
        let ancestors: Vec<&str> = plan["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["selected"] == false)
            .map(|n| n["id"].as_str().unwrap())
            .collect();
        let want: &[&str] = match selection[0] {
            "tool-img" => &["base-img:1@amd64", "app-img:1@amd64"],
            "app-img" | "app-img:1" => &["base-img:1@amd64"],
            _ => &[],
        };
        assert_eq!(ancestors, want, "{selection:?}");
    }
    // Ancestors carry no names: only their cache tags.
    let plan = f.plan(&["app-img"]);
    let base = &plan["nodes"].as_array().unwrap()[1];
    assert_eq!(base["id"], "base-img:1@amd64");
    assert_eq!(base["images"], serde_json::json!([]));
    let text = f.run(&["plan", "app-img"]);
    assert!(
        text.stdout
            .starts_with("plan: 2 nodes (1 selected, 1 ancestor planned for its key) for amd64"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("  unknown  (ancestor)\n"),
        "{}",
        text.stdout
    );
    // The shards of --all carry the same keys too.
    for part in ["1/2", "2/2"] {
        for (id, key) in keys(&f.plan(&["--all", "--shard", part])) {
            assert_eq!(all[&id], key, "{id} in shard {part}");
        }
    }
}

#[test]
fn keys_ignore_unrelated_commits() {
    let f = fixture();
    let before = f.keys();
    f.src.file("README.md", "docs only\n");
    let commit = f.src.commit("unrelated");
    write_library(&f.t, &commit);
    assert_eq!(f.keys(), before);
}

#[test]
fn a_changed_dockerfile_changes_its_node_and_descendants_only() {
    let f = fixture();
    let before = f.keys();
    f.src.file("app/Dockerfile", &format!("{APP}RUN true\n"));
    let commit = f.src.commit("change app");
    write_library(&f.t, &commit);
    let after = f.keys();
    let changed: HashSet<&str> = before
        .keys()
        .filter(|id| before[*id] != after[*id])
        .map(String::as_str)
        .collect();
    assert_eq!(
        changed,
        HashSet::from(["app-img:1@amd64", "tool-img:1@amd64"])
    );
}

#[test]
fn keys_are_the_same_with_another_cache() {
    let f = fixture();
    let one = f.keys();
    let other =
        f.t.command(&["plan", "--json", "--all"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env("BASHBREW_CACHE", f.t.path().join("another-cache"))
            .output()
            .unwrap();
    assert!(other.status.success());
    assert_eq!(keys(&serde_json::from_slice(&other.stdout).unwrap()), one);
}

#[test]
fn shards_partition_and_are_closed_under_depends_on() {
    let f = fixture();
    let full = f.plan(&["--all"]);
    let all: HashSet<String> = keys(&full).into_keys().collect();
    for parts in 1..=4 {
        let mut seen: HashSet<String> = HashSet::new();
        for part in 1..=parts {
            let spec = format!("{part}/{parts}");
            let plan = f.plan(&["--all", "--shard", &spec]);
            let ids: HashSet<String> = keys(&plan).into_keys().collect();
            for node in plan["nodes"].as_array().unwrap() {
                for dep in node["depends_on"].as_array().unwrap() {
                    assert!(ids.contains(dep.as_str().unwrap()), "{spec}: {dep} missing");
                }
            }
            // Nobody outside the shard depends on it either.
            for node in full["nodes"].as_array().unwrap() {
                let inside = ids.contains(node["id"].as_str().unwrap());
                for dep in node["depends_on"].as_array().unwrap() {
                    assert_eq!(ids.contains(dep.as_str().unwrap()), inside, "{spec}");
                }
            }
            assert!(ids.is_disjoint(&seen), "{spec} overlaps");
            seen.extend(ids);
        }
        assert_eq!(seen, all, "{parts} parts");
    }
    let bad = f.run(&["plan", "--shard", "3/2", "--all"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("invalid --shard \"3/2\""),
        "{}",
        bad.stderr
    );
}

#[test]
fn json_snapshot() {
    let f = fixture();
    let run = f.run(&["plan", "--json", "app-img", "base-img:1"]);
    run.success();
    let root = f.t.path().canonicalize().unwrap();
    let text = run.stdout.replace(&root.display().to_string(), "$TMP");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/plan.json");
    if std::env::var_os("KEG_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let want = std::fs::read_to_string(path).expect("snapshot (KEG_UPDATE_SNAPSHOTS=1 writes it)");
    assert_eq!(text, want);
}

#[test]
fn text_dot_and_explain() {
    let f = fixture();
    let text = f.run(&["plan", "app-img", "base-img:1"]);
    text.success();
    let key = |id: &str| keys(&f.plan(&["app-img", "base-img:1"]))[id][..12].to_string();
    assert_eq!(
        text.stdout,
        format!(
            "plan: 2 nodes for amd64 (no Docker engine: build status unknown)\n\nlevel 0\n  base-img:1@amd64  [classic]  key {} (provisional)  unknown\n      tags: base-img:1 base-img:latest base-img:shared\n      from: debian:bookworm\n\nlevel 1\n  app-img:1@amd64  [buildkit]  key {} (provisional)  unknown\n      tags: app-img:1\n      from: base-img:1 (base-img:1@amd64), golang:1.22\n",
            key("base-img:1@amd64"),
            key("app-img:1@amd64")
        )
    );
    let dot = f.run(&["plan", "--dot", "app-img", "base-img:1"]);
    assert!(dot.stdout.starts_with("digraph keg {\n"));
    assert!(
        dot.stdout
            .contains("\"base-img:1@amd64\" -> \"app-img:1@amd64\";\n"),
        "{}",
        dot.stdout
    );
    assert!(dot.stdout.contains("\"golang:1.22\" [style=dashed];\n"));
    let explain = f.run(&["plan", "--explain", "app-img"]);
    explain.success();
    let lines: Vec<&str> = explain.stdout.lines().collect();
    assert_eq!(lines[0], "node: app-img:1@amd64");
    // base-img:1 is in the library: its key counts, selected or not.
    assert!(
        lines[2].starts_with("provisional inputs: golang:1.22 "),
        "{}",
        lines[2]
    );
    // The printed JSON is exactly what was hashed.
    let hashed = lines[4];
    let digest = sha256(hashed.as_bytes());
    assert_eq!(lines[1], format!("key: {digest}"));
    let inputs: Value = serde_json::from_str(hashed).unwrap();
    assert_eq!(inputs["version"], 2);
    assert_eq!(
        inputs["parents"][0],
        serde_json::json!({"ref": "base-img:1", "key": f.keys()["base-img:1@amd64"]})
    );
    assert_eq!(
        inputs["parents"][1],
        serde_json::json!({"ref": "golang:1.22", "image": null})
    );
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
