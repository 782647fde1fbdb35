//! A pool of BuildKit builders on the rig's two engines (`scripts/setup-docker --nodes 2`:
//! docker contexts and builders keg-node-1 and keg-node-2), sharing results through the
//! rig's registry: a DAG spread over both, the registry as the cache of record, a builder
//! lost in the middle of a run, and `plan --matrix`.
//!
//! `#[ignore]`d like the other engine tests: `scripts/test` runs them with
//! `--include-ignored`; a missing engine, second engine or registry fails them. The tests
//! of this file run one at a time (one of them stops the second engine).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{GitRepo, Run, Test, docker_output as docker};
use serde_json::Value;

const BASE: &str = "127.0.0.1:5000/keg-test/busybox:latest";
const BUILDERS: [&str; 2] = ["keg-node-1", "keg-node-2"];

/// One test at a time: the fault test stops keg-node-2.
static POOL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

fn registry() -> String {
    std::env::var("KEG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_string())
}

fn require_pool() {
    for builder in BUILDERS {
        let (ok, text) = docker(&[
            "--context",
            builder,
            "version",
            "--format",
            "{{.Server.Version}}",
        ]);
        assert!(
            ok,
            "engine {builder} does not answer ({text}): run scripts/setup-docker --nodes 2"
        );
    }
}

/// The result and builder columns of the summary table, per node id.
fn results(run: &Run) -> BTreeMap<String, (String, String)> {
    common::summary_rows(&run.stdout)
        .into_iter()
        .filter(|row| row.len() >= 4)
        .map(|row| (row[0].clone(), (row[1].clone(), row[3].clone())))
        .collect()
}

/// A library of `roots` repositories' worth of nodes in one git repository:
/// `<p>-root:R` (BuildKit), `<p>-mid:R-a` / `:R-b` (BuildKit, FROM root), `<p>-leaf:R`
/// (classic, FROM mid a, COPY --from mid b), `<p>-top:R` (BuildKit, FROM leaf, COPY --from
/// the next root). Every step records its parents' markers, so running a top image shows
/// what it was built on. `sleep` seconds in every RUN.
struct Fixture {
    t: Test,
    src: GitRepo,
    prefix: String,
    roots: usize,
}

impl Fixture {
    fn new(test: &str, roots: usize, sleep: u32) -> Fixture {
        require_pool();
        let t = Test::new();
        let prefix = common::unique("kq", test);
        let src = t.git_repo("src");
        let f = Fixture {
            t,
            src,
            prefix,
            roots,
        };
        let p = &f.prefix;
        for r in 1..=roots {
            let next = r % roots + 1;
            f.src
                .file(
                    &format!("root{r}/Dockerfile"),
                    &format!("FROM {BASE}\nRUN sleep {sleep} && echo root{r} > /root.txt\n"),
                )
                .file(
                    &format!("mid{r}a/Dockerfile"),
                    &format!("FROM {p}-root:{r}\nRUN sleep {sleep} && cat /root.txt > /mid.txt && echo mid{r}a >> /mid.txt\n"),
                )
                .file(
                    &format!("mid{r}b/Dockerfile"),
                    &format!("FROM {p}-root:{r}\nRUN sleep {sleep} && echo mid{r}b > /b.txt\n"),
                )
                .file(
                    &format!("leaf{r}/Dockerfile"),
                    &format!("FROM {p}-mid:{r}-a\nCOPY --from={p}-mid:{r}-b /b.txt /b.txt\nRUN sleep {sleep} && cat /mid.txt /b.txt > /leaf.txt && echo leaf{r} >> /leaf.txt\n"),
                )
                .file(
                    &format!("top{r}/Dockerfile"),
                    &format!("FROM {p}-leaf:{r}\nCOPY --from={p}-root:{next} /root.txt /next.txt\nRUN sleep {sleep} && cat /leaf.txt /next.txt > /top.txt\nCMD [\"cat\", \"/top.txt\"]\n"),
                );
        }
        let commit = f.src.commit("pool");
        let head = format!("Maintainers: T (@t)\nGitRepo: ../src\nGitCommit: {commit}\n");
        let mut root = format!("{head}Builder: buildkit\n");
        let mut mid = format!("{head}Builder: buildkit\n");
        let mut leaf = format!("{head}Builder: classic\n");
        let mut top = format!("{head}Builder: buildkit\n");
        for r in 1..=roots {
            root.push_str(&format!("\nTags: {r}\nDirectory: root{r}\n"));
            mid.push_str(&format!(
                "\nTags: {r}-a\nDirectory: mid{r}a\n\nTags: {r}-b\nDirectory: mid{r}b\n"
            ));
            leaf.push_str(&format!("\nTags: {r}\nDirectory: leaf{r}\n"));
            top.push_str(&format!("\nTags: {r}\nDirectory: top{r}\n"));
        }
        f.t.manifest(&format!("{p}-root"), &root);
        f.t.manifest(&format!("{p}-mid"), &mid);
        f.t.manifest(&format!("{p}-leaf"), &leaf);
        f.t.manifest(&format!("{p}-top"), &top);
        f
    }

    fn nodes(&self) -> usize {
        self.roots * 5
    }

    fn cache_repo(&self) -> String {
        format!("{}/{}/cache", registry(), self.prefix)
    }

    /// `keg build --all` on both builders, with the git cache `cache`.
    fn command(&self, cache: &str, extra: &[&str]) -> Command {
        let cache_repo = self.cache_repo();
        let mut args = vec!["build", "--all", "--cache-repo", &cache_repo];
        for builder in BUILDERS {
            args.extend(["--builder", builder]);
        }
        args.extend(extra);
        let mut command = self.t.command(&args);
        command.env("BASHBREW_CACHE", self.t.path().join(cache));
        command
    }

    fn build(&self, cache: &str, extra: &[&str]) -> Run {
        self.command(cache, extra)
            .output()
            .expect("keg runs")
            .into()
    }

    /// Node id -> cache tag, from `plan --json --all`.
    fn cache_tags(&self) -> HashMap<String, String> {
        let cache_repo = self.cache_repo();
        let run = self
            .t
            .run(&["plan", "--json", "--all", "--cache-repo", &cache_repo]);
        run.success();
        let plan: Value = serde_json::from_str(&run.stdout).unwrap();
        common::node_field(&plan, "cache_tag")
    }

    /// Runs every top image from the registry: each shows the chain it was built on.
    fn check_images(&self) {
        let tags = self.cache_tags();
        for r in 1..=self.roots {
            let next = r % self.roots + 1;
            let tag = &tags[&format!("{}-top:{r}@amd64", self.prefix)];
            let (ok, out) = docker(&["pull", "-q", tag]);
            assert!(ok, "{tag}: {out}");
            let run = Command::new("docker")
                .args(["run", "--rm", tag])
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&run.stdout);
            assert!(
                run.status.success(),
                "{tag}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
            assert_eq!(
                out.trim(),
                format!("root{r}\nmid{r}a\nmid{r}b\nleaf{r}\nroot{next}"),
                "top:{r}"
            );
            let _ = docker(&["rmi", tag]);
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for context in BUILDERS {
            common::remove_images(Some(context), |image| image.contains(&self.prefix));
        }
    }
}

#[test]
#[ignore = "needs the Docker rig with two engines (scripts/setup-docker --nodes 2); scripts/test runs it"]
fn a_pool_builds_a_dag_once_and_the_registry_remembers() {
    let _one = serial();
    let f = Fixture::new("dag", 4, 1);
    assert!(f.nodes() >= 20);
    let first = f.build("cache", &["--jobs", "2"]);
    first.success();
    let got = results(&first);
    assert_eq!(got.len(), f.nodes(), "{}", first.stdout);
    assert!(got.values().all(|(r, _)| r == "built"), "{}", first.stdout);
    let used: HashSet<&str> = got.values().map(|(_, b)| b.as_str()).collect();
    assert_eq!(
        used,
        HashSet::from(BUILDERS),
        "both builders work: {}",
        first.stdout
    );
    // Some parent and child ran on different builders (the child got its parent by digest).
    let cache_repo = f.cache_repo();
    let plan =
        f.t.run(&["plan", "--json", "--all", "--cache-repo", &cache_repo]);
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    let crossed = plan["nodes"].as_array().unwrap().iter().any(|node| {
        let child = &got[node["id"].as_str().unwrap()].1;
        node["depends_on"]
            .as_array()
            .unwrap()
            .iter()
            .any(|parent| &got[parent.as_str().unwrap()].1 != child)
    });
    assert!(crossed, "no edge crossed builders: {}", first.stdout);
    f.check_images();

    // A second run, and a third on a fresh git cache: the registry has every key.
    for cache in ["cache", "fresh-cache"] {
        let again = f.build(cache, &["--jobs", "2"]);
        again.success();
        assert!(
            results(&again).values().all(|(r, _)| r == "cached"),
            "{cache}: {}",
            again.stdout
        );
        assert!(again.stdout.contains("0 built"), "{}", again.stdout);
    }

    // push and tag work from the registry: the local engine has none of these images.
    let root = format!("{}-root", f.prefix);
    let target = format!("{}/{}-pub", registry(), f.prefix);
    let cache_repo = f.cache_repo();
    let push = f.t.run(&[
        "push",
        &root,
        "--target-namespace",
        &target,
        "--cache-repo",
        &cache_repo,
    ]);
    push.success();
    let tags = f.cache_tags();
    let registry_client = keg::registry::Registry::new();
    for r in 1..=f.roots {
        let cached = registry_client
            .manifest(&tags[&format!("{root}:{r}@amd64")])
            .unwrap()
            .unwrap();
        let pushed = registry_client
            .manifest(&format!("{target}/{root}:{r}"))
            .unwrap()
            .unwrap_or_else(|| panic!("{root}:{r} was not pushed: {push:#?}"));
        // The target is the image of record (wrapped in an index by imagetools create).
        let members: Vec<&str> = pushed.manifests.iter().map(|m| m.digest.as_str()).collect();
        assert!(
            pushed.digest == cached.digest || members == [cached.digest.as_str()],
            "{root}:{r} pushed by digest: {pushed:?} vs {cached:?}"
        );
    }
    let again = f.t.run(&[
        "push",
        &root,
        "--target-namespace",
        &target,
        "--cache-repo",
        &cache_repo,
    ]);
    again.success();
    assert!(!again.stdout.contains("Pushing"), "{}", again.stdout);
    let local_ns = format!("{}-tagged", f.prefix);
    let tag = f.t.run(&[
        "tag",
        &format!("{root}:1"),
        "--target-namespace",
        &local_ns,
        "--cache-repo",
        &cache_repo,
    ]);
    tag.success();
    let (ok, out) = docker(&["image", "inspect", &format!("{local_ns}/{root}:1")]);
    assert!(ok, "tag pulled the image by key and tagged it: {out}");

    // A pool needs a registry to share results through.
    let local =
        f.t.command(&[
            "build",
            "--all",
            "--builder",
            "keg-node-1",
            "--builder",
            "keg-node-2",
            "--cache-repo",
            "kq/cache",
        ])
        .output()
        .unwrap();
    assert_eq!(local.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&local.stderr);
    assert!(
        stderr.contains("builders share results through a registry"),
        "{stderr}"
    );
}

/// Restarts keg-node-2 (through the rig's script) when dropped.
struct RestartNode2;

impl Drop for RestartNode2 {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/setup-docker");
        let status = Command::new(script)
            .args(["--nodes", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "could not restart keg-node-2: run scripts/setup-docker --nodes 2"
        );
    }
}

#[test]
#[ignore = "needs the Docker rig with two engines (scripts/setup-docker --nodes 2); scripts/test runs it"]
fn a_builder_lost_mid_run_leaves_the_pool_and_its_nodes_finish_elsewhere() {
    let _one = serial();
    let f = Fixture::new("fault", 3, 4);
    let mut child = f
        .command("cache", &["--jobs", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let restart = RestartNode2;
    // Once something runs on keg-node-2, stop its engine.
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in lines.by_ref() {
        let line = line.unwrap();
        text.push_str(&line);
        text.push('\n');
        if line.ends_with("on keg-node-2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing ran on keg-node-2:\n{text}"
        );
    }
    std::thread::sleep(Duration::from_secs(1));
    let pid = std::fs::read_to_string("/var/run/keg-node-2/docker.pid").unwrap();
    let pid: i32 = pid.trim().parse().unwrap();
    // SAFETY: signalling the rig's second engine, which the guard restarts.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    for line in lines {
        text.push_str(&line.unwrap());
        text.push('\n');
    }
    let status = child.wait().unwrap();
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: text,
        stderr: String::new(),
    };
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains("builder keg-node-2 left the pool"),
        "{}",
        run.stdout
    );
    let got = results(&run);
    assert!(got.values().all(|(r, _)| r == "built"), "{}", run.stdout);
    let retried: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("attempt 1 on keg-node-2 failed"))
        .collect();
    assert!(
        !retried.is_empty(),
        "the summary shows the retries: {}",
        run.stdout
    );
    assert!(run.stdout.contains(" retried in "), "{}", run.stdout);
    drop(restart);
    f.check_images();
}

#[test]
#[ignore = "needs the Docker rig with two engines (scripts/setup-docker --nodes 2); scripts/test runs it"]
fn matrix_shards_build_everything_once() {
    let _one = serial();
    let f = Fixture::new("matrix", 3, 0);
    let cache_repo = f.cache_repo();
    let run = f.t.run(&[
        "plan",
        "--matrix",
        "2",
        "--all",
        "--cache-repo",
        &cache_repo,
    ]);
    run.success();
    let matrix: Value = serde_json::from_str(&run.stdout).unwrap();
    let shards = matrix.as_array().unwrap();
    // The shards cover the plan exactly once.
    let mut seen: Vec<String> = Vec::new();
    for shard in shards {
        seen.extend(
            shard["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string()),
        );
    }
    let mut all: Vec<String> = f.cache_tags().into_keys().collect();
    all.sort();
    seen.sort();
    assert_eq!(seen, all);
    // The commands run as printed, one after another, on one machine: each builds its own
    // nodes, once.
    let mut built: Vec<String> = Vec::new();
    for shard in shards {
        let command = shard["command"].as_str().unwrap();
        let keg = env!("CARGO_BIN_EXE_keg");
        let line = format!(
            "{} --builder keg-node-1 --builder keg-node-2",
            command.replacen("keg ", &format!("{keg} "), 1)
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(&line)
            .current_dir(f.t.path())
            .env("BASHBREW_CACHE", f.t.path().join("cache"))
            .output()
            .unwrap();
        let run = Run::from(out);
        assert_eq!(run.code, 0, "{line}: {run:#?}");
        let got = results(&run);
        let ids: Vec<String> = shard["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        assert_eq!(got.keys().cloned().collect::<Vec<_>>(), {
            let mut sorted = ids.clone();
            sorted.sort();
            sorted
        });
        built.extend(
            got.into_iter()
                .filter(|(_, (r, _))| r == "built")
                .map(|(id, _)| id),
        );
    }
    built.sort();
    assert_eq!(built, all, "every node built exactly once");
    f.check_images();
}
