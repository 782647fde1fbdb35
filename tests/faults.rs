//! Faults: a docker client whose background child holds the pipes, Ctrl-C and SIGTERM, a
//! registry that answers 503 or never answers, a registry that is down, a build that runs
//! past `--timeout`, a failing RUN step with retries on; and `--progress json` throughout.
//!
//! The tests without an engine use a `docker` shim on PATH (it plays a client whose child
//! outlives it, which no real engine can be made to do on purpose) and a fake registry (a
//! small HTTP server on loopback). The engine tests are `#[ignore]`d like tests/build.rs:
//! `scripts/test` runs them on the rig, where a missing engine fails them.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Run, Test, docker_stdout as docker, require_engine};
use serde_json::Value;

/// The rig's base image (scripts/setup-docker).
const BASE: &str = "keg-test/busybox:latest";

// ---------------------------------------------------------------------------------------
// Helpers

/// Writes an executable file without this process ever holding it open for writing (a fork
/// of another test thread inheriting the descriptor would make its exec fail with ETXTBSY).
fn write_executable(path: &Path, text: &str) {
    let mut sh = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod +x \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh runs");
    sh.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    assert!(sh.wait().unwrap().success());
}

/// Whether a process whose command line contains `pattern` exists.
fn running(pattern: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .expect("pgrep (procps) is installed")
        .status
        .success()
}

/// Waits up to `limit` for no process matching `pattern`; whether none is left.
fn gone_within(pattern: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !running(pattern) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

/// Waits for `child` at most `limit`: its exit code and how long it took; kills it and
/// fails when it does not end in time.
fn wait_within(child: &mut Child, limit: Duration) -> (Option<i32>, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("keg did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads a child's pipe on a thread; the text once it closes.
fn collect(stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stream).read_to_string(&mut text);
        text
    })
}

/// Every stdout line parsed as one JSON event (a line that does not parse fails the test).
fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect()
}

/// The summary event's `node -> result`.
fn summary_results(summary: &Value) -> BTreeMap<String, String> {
    summary["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap().to_string(),
                n["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Checks the event stream's shape: a version on every event, one closing summary, and
/// each node's last outcome event equal to its result in the summary. Returns the summary.
fn check_events(events: &[Value]) -> Value {
    assert!(!events.is_empty(), "no events");
    for event in events {
        assert_eq!(event["version"], 1, "{event}");
        for field in [
            "event",
            "time",
            "node",
            "key",
            "builder",
            "duration_ms",
            "log",
            "error",
        ] {
            assert!(event.get(field).is_some(), "no {field} in {event}");
        }
    }
    let summary = events.last().unwrap().clone();
    assert_eq!(summary["event"], "summary", "the last event is the summary");
    let summaries = events.iter().filter(|e| e["event"] == "summary").count();
    assert_eq!(summaries, 1);
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for event in events {
        let kind = event["event"].as_str().unwrap();
        let outcome = match kind {
            "built" | "pulled" | "cached" | "unneeded" | "failed" | "skipped" => kind,
            "not-started" => "not started",
            _ => continue,
        };
        last.insert(
            event["node"].as_str().unwrap().to_string(),
            outcome.to_string(),
        );
    }
    let results = summary_results(&summary);
    assert_eq!(last, results, "each node's last event is its result");
    for (label, key) in [
        ("built", "built"),
        ("cached", "cached"),
        ("failed", "failed"),
        ("skipped", "skipped"),
        ("not started", "not_started"),
    ] {
        let n = results.values().filter(|r| *r == label).count();
        assert_eq!(summary["counts"][key], n, "{key}: {summary}");
    }
    summary
}

/// The node ids of events of one kind.
fn nodes_of(events: &[Value], kind: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == kind)
        .map(|e| e["node"].as_str().unwrap_or("-").to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// A docker shim whose background child holds the pipes

/// A library of one buildkit entry (`<repo>:1`) and a `docker` shim on PATH that answers
/// the engine queries as an engine would, and whose every call leaves a background child
/// (`hold-<marker>.sh`, a `sleep 90`) holding its stdout and stderr. With `hang`, a build
/// also runs on until killed; it writes `build-started` first.
struct Shim {
    t: Test,
    repo: String,
    bin: PathBuf,
    marker: String,
}

fn shim(test: &str, hang: bool) -> Shim {
    let t = Test::new();
    let marker = common::unique("hold", test);
    let bin = t.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let hold = bin.join(format!("{marker}.sh"));
    write_executable(&hold, "sleep 90\n");
    let started = t.path().join("build-started");
    let hang_line = if hang { "  sleep 90\n" } else { "" };
    write_executable(
        &bin.join("docker"),
        &format!(
            r#"#!/bin/sh
# Every call leaves a child holding our stdout and stderr.
(sh {hold} &)
case "$1" in
  info) echo '26.1.5|linux|x86_64|[]|buildx=v0.13.1 '; exit 0 ;;
  version) echo '26.1.5'; exit 0 ;;
  image) if [ "$2" = ls ] && [ -f {images} ]; then cat {images}; fi; exit 0 ;;
  tag) exit 0 ;;
esac
if [ "$1 $2" = "buildx build" ]; then
  touch {started}
{hang_line}  echo 'ERROR: failed to solve: process "/bin/sh -c false" did not complete successfully: exit code: 1' >&2
  exit 1
fi
echo "shim: unexpected docker $*" >&2
exit 1
"#,
            hold = hold.display(),
            started = started.display(),
            images = t.path().join("images").display(),
        ),
    );
    let src = t.git_repo("src");
    src.file("app/Dockerfile", "FROM busybox:latest\nRUN false\n");
    let commit = src.commit("app");
    let repo = common::unique("shim", test);
    t.manifest(
        &repo,
        &format!(
            "Maintainers: T (@t)\nGitRepo: ../src\nGitCommit: {commit}\n\nTags: 1\nDirectory: app\nBuilder: buildkit\n"
        ),
    );
    Shim {
        t,
        repo,
        bin,
        marker,
    }
}

impl Shim {
    fn command(&self, args: &[&str]) -> Command {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = self.t.command(args);
        command.env("PATH", path);
        command.env_remove("KEG_PROGRESS");
        command
    }

    fn started(&self) -> bool {
        self.t.path().join("build-started").exists()
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        let _ = Command::new("pkill").args(["-f", &self.marker]).status();
    }
}

#[test]
fn a_docker_client_whose_child_holds_the_pipes_does_not_hang_keg() {
    let s = shim("pipes", false);
    let start = Instant::now();
    let out = s
        .command(&["build", "--pull", "never", "--progress", "json", &s.repo])
        .output()
        .unwrap();
    let run = Run::from(out);
    let took = start.elapsed();
    // Each of `docker info`, `docker image ls` and the build exits at once, but its child
    // would keep the pipes open for 90 s.
    assert!(took < Duration::from_secs(20), "took {took:?}: {run:#?}");
    assert_eq!(run.code, 1, "{run:#?}");
    let events = events(&run.stdout);
    let summary = check_events(&events);
    let id = format!("{}:1@amd64", s.repo);
    assert_eq!(nodes_of(&events, "started"), std::slice::from_ref(&id));
    assert_eq!(nodes_of(&events, "failed"), [id]);
    assert_eq!(nodes_of(&events, "retried"), Vec::<String>::new());
    let failed = events.iter().find(|e| e["event"] == "failed").unwrap();
    assert_eq!(failed["error"], "docker exited with status 1");
    assert!(failed["log"].as_str().unwrap().ends_with(".log"));
    assert_eq!(summary["counts"]["failed"], 1);
    // For people, on stderr: the failure with its log's last lines, and the table.
    assert!(
        run.stderr.contains("did not complete successfully"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("0 built, 0 cached, 1 failed"));
    assert!(
        gone_within(&s.marker, Duration::from_secs(5)),
        "a child of the docker shim outlived keg"
    );
}

#[test]
fn sigint_and_sigterm_stop_a_build_within_seconds_and_leave_nothing_behind() {
    for (name, number) in [("SIGINT", libc::SIGINT), ("SIGTERM", libc::SIGTERM)] {
        let s = shim(&name.to_lowercase(), true);
        let mut child = s
            .command(&["build", "--pull", "never", &s.repo])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !s.started() {
            assert!(Instant::now() < deadline, "{name}: the build never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        assert!(running(&s.marker), "the shim's child runs");
        signal(&child, number);
        let (code, took) = wait_within(&mut child, Duration::from_secs(20));
        let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
        assert_eq!(code, Some(130), "{name}\n{stdout}\n{stderr}");
        assert!(took < Duration::from_secs(5), "{name}: {took:?}");
        assert!(
            stdout.contains("interrupted: stopping the running builds"),
            "{name}: {stdout}"
        );
        assert!(stderr.ends_with("interrupted\n"), "{name}: {stderr}");
        assert!(
            gone_within(&s.marker, Duration::from_secs(2)),
            "{name}: a child of the docker shim outlived keg"
        );
    }
}

#[test]
fn a_silent_build_without_a_tty_gets_a_heartbeat() {
    let s = shim("heartbeat", true);
    let id = format!("{}:1@amd64", s.repo);
    for progress in ["plain", "json"] {
        let mut child = s
            .command(&[
                "build",
                "--pull",
                "never",
                "--heartbeat",
                "1s",
                "--progress",
                progress,
                &s.repo,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !s.started() {
            assert!(Instant::now() < deadline, "the build never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(3500));
        signal(&child, libc::SIGINT);
        let (code, _) = wait_within(&mut child, Duration::from_secs(20));
        assert_eq!(code, Some(130));
        let stdout = stdout.join().unwrap();
        let beats: Vec<&str> = stdout
            .lines()
            .filter(|l| {
                l.get(9..).is_some_and(|t| t.starts_with("running "))
                    || l.contains(r#""event":"heartbeat""#)
            })
            .collect();
        assert!((2..=5).contains(&beats.len()), "{progress}: {stdout}");
        if progress == "json" {
            let beat: Value = serde_json::from_str(beats[0]).unwrap();
            assert_eq!(beat["event"], "heartbeat");
            assert_eq!(beat["running"][0]["node"], id.as_str());
            assert_eq!(beat["running"][0]["action"], "build");
            assert!(beat["running"][0]["duration_ms"].as_u64().unwrap() >= 1000);
        } else {
            // `HH:MM:SS running repo:1@amd64 (build, 1s)`
            let text = &beats[0][9..];
            assert!(
                text.starts_with(&format!("running {id} (build, ")) && text.ends_with("s)"),
                "{text}"
            );
        }
        s.t.path().join("build-started").exists().then(|| {
            std::fs::remove_file(s.t.path().join("build-started")).unwrap();
        });
    }
}

#[test]
fn the_tty_progress_bar_counts_what_runs_and_is_not_shown_when_nothing_does() {
    let s = shim("tty", false);
    let id = format!("{}:1@amd64", s.repo);
    // One build: the bar counts it.
    let run = Run::from(
        s.command(&["build", "--pull", "never", "--progress", "tty", &s.repo])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("/1 done"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("start   {id} (build)")));
    // Cached (the engine lists the node's cache tag): nothing runs, no bar, no `0/0`.
    let plan = Run::from(s.command(&["plan", "--json", &s.repo]).output().unwrap());
    let plan: Value = serde_json::from_str(&plan.stdout).expect("plan --json");
    let cache_tag = plan["nodes"][0]["cache_tag"].as_str().unwrap().to_string();
    std::fs::write(
        s.t.path().join("images"),
        format!("{cache_tag} sha256:{}\n", "a".repeat(64)),
    )
    .unwrap();
    let run = Run::from(
        s.command(&["build", "--pull", "never", "--progress", "tty", &s.repo])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stderr.contains(&format!("cached  {id}")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(" done"), "no bar: {}", run.stderr);
    assert!(
        run.stdout.contains("0 built, 1 cached, 0 failed"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_git_fetch_that_cannot_connect_is_retried() {
    let t = Test::new();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("git://{}/r.git", closed.local_addr().unwrap());
    drop(closed);
    t.manifest(
        "r",
        &format!(
            "Maintainers: T (@t)\nGitRepo: {url}\nGitCommit: {}\n\nTags: 1\n",
            common::C1
        ),
    );
    for (retries, lines) in [("2", 2), ("0", 0)] {
        let run = t.run(&["fetch", "--retries", retries, "r"]);
        assert_eq!(run.code, 2, "{run:#?}");
        let retried: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("retry "))
            .collect();
        assert_eq!(retried.len(), lines, "{}", run.stderr);
        if lines > 0 {
            assert!(
                retried[0].starts_with(&format!(
                    "retry   r:1 (amd64): attempt 1 of fetching {} from {url} failed (",
                    &common::C1[..12]
                )) && retried[0].ends_with("retried after 1s"),
                "{}",
                retried[0]
            );
        }
        assert!(run.stderr.contains("cannot fetch commit"), "{}", run.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// A fake registry

/// A registry on loopback answering manifest GETs from a closure; logs `METHOD path` of
/// every request keg made (its User-Agent starts with `keg/`).
struct FakeRegistry {
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

type Answer = (u16, Vec<(&'static str, String)>, String);

impl FakeRegistry {
    fn start(answer: impl Fn(&str, usize) -> Answer + Send + Sync + 'static) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let answer = Arc::new(answer);
        let counts: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
        let shared = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (answer, log, counts) = (answer.clone(), shared.clone(), counts.clone());
                std::thread::spawn(move || serve(stream, &*answer, &log, &counts));
            }
        });
        FakeRegistry { addr, log }
    }

    /// How many times keg asked for `path`.
    fn asked(&self, path: &str) -> usize {
        let log = self.log.lock().unwrap();
        log.iter().filter(|l| *l == &format!("GET {path}")).count()
    }
}

fn serve(
    stream: TcpStream,
    answer: &(dyn Fn(&str, usize) -> Answer + Send + Sync),
    log: &Mutex<Vec<String>>,
    counts: &Mutex<BTreeMap<String, usize>>,
) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut keg = false;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        keg |= lower.starts_with("user-agent:") && lower.contains("keg/");
    }
    let nth = {
        let mut counts = counts.lock().unwrap();
        let n = counts.entry(path.to_string()).or_default();
        *n += 1;
        *n
    };
    if keg {
        log.lock().unwrap().push(format!("{method} {path}"));
    }
    let (status, headers, body) = answer(path, nth);
    let mut text = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(&body);
    let _ = writer.write_all(text.as_bytes());
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A library with one entry `<repo>:1` (amd64) for put-shared; no git needed.
fn put_shared_library(test: &str) -> (Test, String) {
    let t = Test::new();
    let repo = common::unique("ps", test);
    t.manifest(
        &repo,
        &format!("Maintainers: T (@t)\nGitRepo: https://example.invalid/r.git\nGitCommit: {}\n\nTags: 1\nDirectory: app\n", common::C1),
    );
    (t, repo)
}

fn put_shared(t: &Test, registry: &str, repo: &str, retries: &str) -> Run {
    t.run(&[
        "put-shared",
        "--dry-run",
        "--retries",
        retries,
        "--target-namespace",
        &format!("{registry}/lib"),
        "--arch-namespace",
        &format!("amd64={registry}/amd64"),
        repo,
    ])
}

#[test]
fn a_registry_that_answers_503_twice_is_asked_again_and_the_answer_used() {
    let (t, repo) = put_shared_library("503");
    let manifest = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":2},"layers":[]}"#;
    let digest = sha256(manifest);
    let member = format!("/v2/amd64/{repo}/manifests/1");
    let wanted = member.clone();
    let fake = FakeRegistry::start(move |path, nth| {
        if path == wanted && nth <= 2 {
            let body = r#"{"errors":[{"code":"UNAVAILABLE","message":"try again"}]}"#;
            (503, Vec::new(), body.to_string())
        } else if path == wanted {
            let ct = "application/vnd.oci.image.manifest.v1+json".to_string();
            (200, vec![("Content-Type", ct)], manifest.to_string())
        } else {
            let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#;
            (404, Vec::new(), body.to_string())
        }
    });
    let run = put_shared(&t, &fake.addr, &repo, "2");
    run.success();
    assert_eq!(fake.asked(&member), 3, "two 503s, then the answer");
    let target = format!("{}/lib/{repo}:1", fake.addr);
    assert_eq!(
        run.stdout,
        format!(
            "Putting {target}\n  docker buildx imagetools create -t {target} {}/amd64/{repo}@{digest}\n",
            fake.addr
        )
    );
    let retries: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("retry "))
        .collect();
    assert_eq!(retries.len(), 2, "{}", run.stderr);
    let reference = format!("{}/amd64/{repo}:1", fake.addr);
    assert!(
        retries[0].starts_with(&format!(
            "retry   {reference}: attempt 1 of the registry query for {reference} failed ("
        )) && retries[0].contains("HTTP 503")
            && retries[0].ends_with("retried after 1s")
            && retries[1].contains("attempt 2 ")
            && retries[1].ends_with("retried after 2s"),
        "{retries:#?}"
    );
}

#[test]
fn put_shared_says_why_it_has_no_images_only_when_the_registry_answered() {
    // Always 503: after the retries, the reason is the registry's answer.
    let (t, repo) = put_shared_library("down");
    let broken = FakeRegistry::start(|_, _| (503, Vec::new(), "down for maintenance".into()));
    let run = put_shared(&t, &broken.addr, &repo, "1");
    assert_eq!(run.code, 1, "{run:#?}");
    let member = format!("/v2/amd64/{repo}/manifests/1");
    assert_eq!(broken.asked(&member), 2, "one retry");
    let first = format!("{}/lib/{repo}:1", broken.addr);
    assert!(
        run.stderr.contains(&format!(
            "- {first}: cannot ask the registry about its images: "
        )) && run.stderr.contains("HTTP 503"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("none of its images"), "{}", run.stderr);

    // Nothing listens: unreachable.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let run = put_shared(&t, &addr, &repo, "0");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains("cannot ask the registry about its images: the registry is unreachable"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("none of its images"), "{}", run.stderr);

    // The registry answers that it has none: then, and only then, that is the reason.
    let empty = FakeRegistry::start(|_, _| {
        let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#;
        (404, Vec::new(), body.to_string())
    });
    let run = put_shared(&t, &empty.addr, &repo, "2");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains(&format!(
            "- {}/lib/{repo}:1: none of its images is in the registry",
            empty.addr
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("retry"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------
// On the engine

/// A temp library whose repositories are all named `<prefix>-NAME`, and cleanup of every
/// image under the prefix.
struct Engine {
    t: Test,
    prefix: String,
}

impl Engine {
    fn new(test: &str) -> Engine {
        require_engine();
        Engine {
            t: Test::new(),
            prefix: common::unique("kf", test),
        }
    }

    fn repo(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// One entry per `(name, Dockerfile)`, each `<prefix>-name:1`, buildkit, one commit.
    fn library(&self, entries: &[(&str, String)]) {
        let src = self.t.git_repo("src");
        for (name, dockerfile) in entries {
            src.file(&format!("{name}/Dockerfile"), dockerfile);
        }
        let commit = src.commit("c");
        for (name, _) in entries {
            self.t.manifest(
                &self.repo(name),
                &format!("Maintainers: T (@t)\nGitRepo: ../src\nGitCommit: {commit}\n\nTags: 1\nDirectory: {name}\nBuilder: buildkit\n"),
            );
        }
    }

    fn keg(&self, args: &[&str]) -> Command {
        let cache_repo = format!("{}/cache", self.prefix);
        let mut all = args.to_vec();
        if matches!(args[0], "build" | "push") {
            all.extend(["--cache-repo", &cache_repo]);
        }
        let mut command = self.t.command(&all);
        command.env_remove("KEG_PROGRESS");
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::from(self.keg(args).output().unwrap())
    }

    fn images(&self) -> Vec<String> {
        docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
            .lines()
            .filter(|l| l.contains(&self.prefix))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let mine = self.images();
        if !mine.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(mine.iter().map(String::as_str));
            docker(&args);
        }
    }
}

/// `(result, note)` per node of the summary table in `text`.
fn table(text: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines().skip_while(|l| !l.starts_with("node "));
    let header = lines.next().unwrap_or_default();
    let note_at = header.find("note").unwrap_or(header.len());
    for line in lines.take_while(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let id = words.next().unwrap().to_string();
        let result = words.next().unwrap().to_string();
        let note = line.get(note_at..).unwrap_or("").trim().to_string();
        out.insert(id, (result, note));
    }
    out
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn a_build_past_its_timeout_fails_in_time_leaving_no_process_and_no_tag() {
    let e = Engine::new("timeout");
    let marker = common::unique("slow", "timeout");
    let slow = e.repo("slow");
    e.library(&[
        (
            "slow",
            format!("FROM {BASE}\nRUN sleep 300 && echo {marker}\n"),
        ),
        ("child", format!("FROM {slow}:1\nRUN true\n")),
    ]);
    let start = Instant::now();
    let mut child = e
        .keg(&[
            "build",
            "--pull",
            "never",
            "--timeout",
            "8s",
            &slow,
            &e.repo("child"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    // The step runs in a container of the engine: its command line is visible here.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !running(&marker) {
        assert!(Instant::now() < deadline, "the slow step never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _) = wait_within(&mut child, Duration::from_secs(60));
    let took = start.elapsed();
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    // The limit, plus the docker client's grace to end its session.
    assert!(took < Duration::from_secs(40), "{took:?}");
    let rows = table(&stdout);
    let (result, note) = &rows[&format!("{slow}:1@amd64")];
    assert_eq!(result, "failed", "{stdout}");
    assert_eq!(note, "timed out after 8s", "{stdout}");
    let (result, note) = &rows[&format!("{}:1@amd64", e.repo("child"))];
    assert_eq!(result, "skipped", "{stdout}");
    assert_eq!(note, &format!("depends on {slow}:1@amd64, which failed"));
    assert!(
        gone_within(&slow, Duration::from_secs(5)),
        "a docker process of the timed-out build is left"
    );
    assert!(
        gone_within(&marker, Duration::from_secs(20)),
        "the timed-out step still runs in the engine"
    );
    // Only the alias of the external parent (made before the builds) may exist.
    let made: Vec<String> = e
        .images()
        .into_iter()
        .filter(|i| !i.contains("/cache:from-"))
        .collect();
    assert_eq!(made, Vec::<String>::new(), "a timed-out build tags nothing");
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn a_failing_run_step_is_attempted_once_and_json_events_match_the_summary() {
    let e = Engine::new("json");
    let fail = e.repo("fail");
    e.library(&[
        ("base", format!("FROM {BASE}\nRUN echo base > /base.txt\n")),
        (
            "fail",
            format!("FROM {BASE}\nRUN echo failing on purpose && exit 3\n"),
        ),
        ("after", format!("FROM {fail}:1\n")),
    ]);
    let names = [e.repo("base"), fail.clone(), e.repo("after")];
    let mut args = vec![
        "build",
        "--pull",
        "never",
        "--retries",
        "2",
        "--progress",
        "json",
    ];
    args.extend(names.iter().map(String::as_str));
    let id = |name: &str| format!("{}:1@amd64", e.repo(name));
    for (round, base) in [(1, "built"), (2, "cached")] {
        let run = e.run(&args);
        assert_eq!(run.code, 1, "round {round}: {run:#?}");
        let events = events(&run.stdout);
        let summary = check_events(&events);
        let results = summary_results(&summary);
        let want: BTreeMap<String, String> = [
            (id("base"), base),
            (id("fail"), "failed"),
            (id("after"), "skipped"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
        assert_eq!(results, want, "round {round}");
        // The failed step: one attempt, no retry anywhere.
        let started: Vec<String> = nodes_of(&events, "started");
        assert_eq!(
            started.iter().filter(|n| **n == id("fail")).count(),
            1,
            "round {round}: {started:?}"
        );
        assert_eq!(nodes_of(&events, "retried"), Vec::<String>::new());
        assert_eq!(summary["counts"]["retried"], 0);
        let failed = events.iter().find(|e| e["event"] == "failed").unwrap();
        assert_eq!(failed["node"], id("fail"));
        assert!(failed["duration_ms"].as_u64().is_some(), "{failed}");
        let log = std::fs::read_to_string(failed["log"].as_str().unwrap()).unwrap();
        assert!(log.contains("exit code: 3"), "{log}");
        assert_eq!(
            log.matches("\n$ docker").count() + usize::from(log.starts_with("$ docker")),
            1,
            "{log}"
        );
        let skipped = events.iter().find(|e| e["event"] == "skipped").unwrap();
        assert_eq!(
            skipped["error"],
            format!("depends on {}, which failed", id("fail"))
        );
        // Every line for people is on stderr, the table too.
        assert!(run.stderr.contains("failing on purpose"), "{}", run.stderr);
        assert!(
            table(&run.stderr).contains_key(&id("fail")),
            "{}",
            run.stderr
        );
    }
}

/// A TCP listener that accepts connections and never answers; the sockets stay open.
fn silent_registry() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    addr
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn build_push_to_a_registry_that_is_down_reports_cached_nodes_with_their_push_errors() {
    let e = Engine::new("down");
    let base = e.repo("base");
    e.library(&[
        ("base", format!("FROM {BASE}\nRUN echo base > /base.txt\n")),
        ("app", format!("FROM {base}:1\nRUN echo app > /app.txt\n")),
    ]);
    let names = [base.clone(), e.repo("app")];
    let mut args = vec!["build", "--pull", "never"];
    args.extend(names.iter().map(String::as_str));
    e.run(&args).success();

    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let down = closed.local_addr().unwrap().to_string();
    drop(closed);
    let target = format!("{down}/ns");
    args.extend(["--push", "--target-namespace", &target, "--retries", "1"]);
    let run = e.run(&args);
    assert_eq!(run.code, 1, "{run:#?}");
    let rows = table(&run.stdout);
    assert_eq!(rows.len(), 2, "{}", run.stdout);
    for name in ["base", "app"] {
        let (result, note) = &rows[&format!("{}:1@amd64", e.repo(name))];
        assert_eq!(result, "cached", "{}", run.stdout);
        let own = format!(
            "push failed: {target}/{}:1: the registry is unreachable",
            e.repo(name)
        );
        assert!(note.starts_with(&own), "{name}: {note}");
        assert!(
            note.contains("connection refused") || note.contains("Connection refused"),
            "{note}"
        );
        assert!(
            note.contains("attempt 1 of the registry query"),
            "its retry: {note}"
        );
    }
    assert!(
        run.stdout.contains(
            "0 built, 2 cached, 0 failed, 0 skipped, 0 not started, 2 pushes failed, 2 retried"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("0 failed, 0 skipped, 2 pushes failed"),
        "{}",
        run.stderr
    );

    // The same as JSON events: cached, then each push's retry and error.
    args.extend(["--progress", "json"]);
    let run = e.run(&args);
    assert_eq!(run.code, 1, "{run:#?}");
    let events = events(&run.stdout);
    let summary = check_events(&events);
    assert_eq!(summary["counts"]["cached"], 2);
    assert_eq!(summary["counts"]["push_failed"], 2);
    assert_eq!(summary["counts"]["retried"], 2);
    for name in ["base", "app"] {
        let id = format!("{}:1@amd64", e.repo(name));
        let mine: Vec<&str> = events
            .iter()
            .filter(|e| e["node"] == id.as_str())
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(mine, ["cached", "retried", "pushed"], "{id}");
        let pushed = events
            .iter()
            .find(|e| e["node"] == id.as_str() && e["event"] == "pushed")
            .unwrap();
        assert!(
            pushed["error"]
                .as_str()
                .unwrap()
                .contains("the registry is unreachable"),
            "{pushed}"
        );
    }
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn a_registry_that_never_answers_is_bounded_and_an_interrupt_leaves_no_docker_behind() {
    let e = Engine::new("silent");
    let app = e.repo("app");
    e.library(&[("app", format!("FROM {BASE}\nRUN echo app > /app.txt\n"))]);
    e.run(&["build", "--pull", "never", &app]).success();
    let silent = silent_registry();
    let target = format!("{silent}/ns");
    let publish = |command: &str| {
        let mut c = e.keg(&[command, "--target-namespace", &target, &app]);
        if command == "build" {
            c.args(["--pull", "never", "--push"]);
        }
        // Short reads, so the test is quick; `docker buildx imagetools inspect` is bounded
        // by connect + read.
        c.env("KEG_REGISTRY_TIMEOUT", "2s");
        c
    };
    for command in ["push", "build"] {
        // Left alone: ends within the bound, the push failed for the registry's reason.
        let start = Instant::now();
        let run = Run::from(publish(command).output().unwrap());
        let took = start.elapsed();
        assert_eq!(run.code, 1, "{command}: {run:#?}");
        assert!(took < Duration::from_secs(30), "{command}: {took:?}");
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(
            all.contains("the registry is unreachable"),
            "{command}: {all}"
        );
        assert!(
            gone_within(&silent, Duration::from_secs(2)),
            "{command}: a docker process asking {silent} is left"
        );

        // Interrupted while `docker buildx imagetools inspect` waits for the registry.
        for number in [libc::SIGINT, libc::SIGTERM] {
            let mut child = publish(command)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stderr = collect(child.stderr.take().unwrap());
            let deadline = Instant::now() + Duration::from_secs(30);
            while !running(&format!("imagetools inspect --raw {silent}")) {
                assert!(
                    Instant::now() < deadline,
                    "{command}: no buildx query started"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            signal(&child, number);
            let (code, took) = wait_within(&mut child, Duration::from_secs(20));
            let stderr = stderr.join().unwrap();
            assert_eq!(code, Some(130), "{command}: {stderr}");
            assert!(took < Duration::from_secs(3), "{command}: {took:?}");
            assert!(
                gone_within(&silent, Duration::from_secs(2)),
                "{command}: a docker process asking {silent} survived the interrupt"
            );
        }
    }
}
