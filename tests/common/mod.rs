//! A test builder: temp libraries (and later git repos), the built binary, whole outputs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const C1: &str = "0123456789abcdef0123456789abcdef01234567";
pub const C2: &str = "89abcdef0123456789abcdef0123456789abcdef";

/// A name part unique to this process and moment (`<kind><pid>-<test>-<nanos>`), for image
/// and registry names that tests running in parallel must not share.
pub fn unique(kind: &str, test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .subsec_nanos();
    format!("{kind}{}-{test}-{nanos:x}", std::process::id())
}

/// A temporary directory with a `library/` in it.
pub struct Test {
    pub dir: tempfile::TempDir,
}

/// What a run of keg produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Test {
    pub fn new() -> Test {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("library")).expect("library dir");
        Test { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn library(&self) -> PathBuf {
        self.path().join("library")
    }

    /// Writes `library/<name>`.
    pub fn manifest(&self, name: &str, text: &str) -> &Test {
        std::fs::write(self.library().join(name), text).expect("write manifest");
        self
    }

    /// A `keg` command run in the test directory with a clean bashbrew environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keg"));
        cmd.current_dir(self.path()).args(args);
        for var in [
            "BASHBREW_LIBRARY",
            "BASHBREW_ARCH",
            "BASHBREW_NAMESPACE",
            "BASHBREW_CONSTRAINTS",
            "BASHBREW_CACHE",
            "KEG_GIT_MIRRORS",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("BASHBREW_CACHE", self.path().join("cache"));
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().expect("run keg");
        Run::from(output)
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn success(&self) -> &Run {
        assert_eq!(self.code, 0, "keg failed: {self:#?}");
        self
    }
}

/// A git repository in the test directory, built with git2.
pub struct GitRepo {
    pub path: PathBuf,
    repo: git2::Repository,
}

impl Test {
    /// Creates `<test>/<name>` as a git repository.
    pub fn git_repo(&self, name: &str) -> GitRepo {
        let path = self.path().join(name);
        let repo = git2::Repository::init(&path).expect("git init");
        GitRepo { path, repo }
    }
}

impl GitRepo {
    /// Writes a file in the work tree (creating directories).
    pub fn file(&self, path: &str, content: &str) -> &GitRepo {
        let full = self.path.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
        self
    }

    pub fn remove(&self, path: &str) -> &GitRepo {
        std::fs::remove_file(self.path.join(path)).unwrap();
        self
    }

    /// Commits the whole work tree on the current branch; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        let mut index = self.repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::new(
            "Test",
            "test@example.com",
            &git2::Time::new(1_700_000_000, 0),
        )
        .unwrap();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
            .to_string()
    }

    /// The `file://` URL of the repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }
}

/// A `git daemon` on 127.0.0.1 serving every repository under a directory; killed on drop.
pub struct Daemon {
    child: std::process::Child,
    pub port: u16,
}

impl Daemon {
    /// The `git://` URL of `<base>/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a `git daemon` serving `base` (`--export-all`); fails the test when git's daemon
/// is not installed.
pub fn git_daemon(base: &Path) -> Option<Daemon> {
    use std::time::{Duration, Instant};
    let exec_path = Command::new("git").arg("--exec-path").output().ok()?;
    let exec_path = PathBuf::from(String::from_utf8(exec_path.stdout).ok()?.trim());
    let binary = exec_path.join("git-daemon");
    assert!(
        binary.exists(),
        "git daemon is not installed ({}): run scripts/install-prerequisites",
        binary.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    // The daemon binary itself, not `git daemon`: killing a `git` wrapper would leave its
    // git-daemon child running (and holding the test's output pipes).
    let child = Command::new(binary)
        .arg("--reuseaddr")
        .arg("--export-all")
        .arg("--listen=127.0.0.1")
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let daemon = Daemon { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "git daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(daemon)
}

/// A TCP proxy on 127.0.0.1 to `127.0.0.1:target` that delays every chunk it forwards
/// (at most `chunk` bytes) by `delay`: a slow network for one test, without touching the
/// machine's loopback. Runs until the test process ends.
pub fn slow_proxy(target: u16, delay: std::time::Duration, chunk: usize) -> u16 {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let port = listener.local_addr().expect("proxy address").port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone(), server.try_clone()),
                (server.try_clone(), client.try_clone()),
            ]
            .into_iter()
            .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
            {
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; chunk];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                std::thread::sleep(delay);
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = to.shutdown(Shutdown::Write);
                });
            }
        }
    });
    port
}

/// Runs `git -C dir args...`, returning stdout; panics with stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `git fsck --full` of a repository: panics unless it exits 0 without an error, a missing
/// or a broken object (dangling objects of borrowed mirrors are fine).
pub fn assert_fsck_clean(repo: &Path) {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["fsck", "--full", "--no-dangling"])
        .output()
        .expect("run git fsck");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = text.lines().any(|l| {
        let l = l.to_lowercase();
        (l.contains("error") || l.contains("missing") || l.contains("broken") || l.contains("bad"))
            && !l.starts_with("notice")
    });
    assert!(
        out.status.success() && !bad,
        "git fsck of {} is not clean:\n{text}",
        repo.display()
    );
}

/// Writes `image` (a local image) as an OCI image layout into `dest`: `docker save`, which
/// writes one since Docker 25, unpacked.
pub fn oci_layout(image: &str, dest: &Path) {
    std::fs::create_dir_all(dest).expect("layout dir");
    let save = Command::new("sh")
        .arg("-c")
        .arg(r#"docker save "$1" | tar -x -C "$2""#)
        .arg("sh")
        .arg(image)
        .arg(dest)
        .output()
        .expect("sh runs");
    assert!(
        save.status.success(),
        "docker save {image} | tar -x: {}",
        String::from_utf8_lossy(&save.stderr)
    );
    assert!(
        dest.join("index.json").is_file(),
        "no index.json in the saved {image}"
    );
}

/// The rows of keg's summary table (after the `node  result ...` header, up to the blank
/// line), each split into its words; `not started` is one word.
pub fn summary_rows(stdout: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut in_table = false;
    for line in stdout.lines() {
        if line.starts_with("node ") {
            in_table = true;
            continue;
        }
        if in_table && line.trim().is_empty() {
            break;
        }
        if in_table {
            let line = line.replacen(" not started ", " not-started ", 1);
            let words = line
                .split_whitespace()
                .map(|w| w.replace("not-started", "not started"));
            out.push(words.collect());
        }
    }
    out
}

/// The result column of the summary table, per node id.
pub fn results(run: &Run) -> std::collections::BTreeMap<String, String> {
    summary_rows(&run.stdout)
        .into_iter()
        .filter(|row| row.len() >= 2)
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect()
}

/// The engine's images (on docker context `context`, or the default engine) whose repository
/// `mine` claims, removed: by name, then by id those whose every reference is claimed (an
/// image left untagged because a child still needed it, as classic builds chain parents,
/// or kept with a repository but no tag, pulled by digest). An image that also has a name
/// not claimed (the rig's base image under a test's tag) keeps it. For the fixtures'
/// `Drop`s; never fails a test.
#[allow(dead_code)]
pub fn remove_images(context: Option<&str>, mine: impl Fn(&str) -> bool) {
    let docker = |args: &[&str]| {
        let mut cmd = Command::new("docker");
        if let Some(context) = context {
            cmd.args(["--context", context]);
        }
        cmd.args(args).output().ok()
    };
    let Some(out) = docker(&[
        "image",
        "ls",
        "--no-trunc",
        "--format",
        "{{.Repository}} {{.Tag}} {{.ID}}",
    ]) else {
        return;
    };
    // id -> (some reference is claimed, every reference is claimed)
    let mut by_id: std::collections::BTreeMap<String, (bool, bool)> = Default::default();
    let mut names = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut fields = line.split(' ');
        let (Some(repository), Some(tag), Some(id)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let claimed = repository != "<none>" && mine(&format!("{repository}:{tag}"));
        let entry = by_id.entry(id.to_string()).or_insert((false, true));
        entry.0 |= claimed;
        entry.1 &= claimed;
        if claimed && tag != "<none>" {
            names.push(format!("{repository}:{tag}"));
        }
    }
    names.sort();
    names.dedup();
    let ids: Vec<String> = by_id
        .into_iter()
        .filter(|(_, (some, every))| *some && *every)
        .map(|(id, _)| id)
        .collect();
    // Names first, then the ids in a few passes (a parent goes once its children have).
    for batch in std::iter::once(names).chain(std::iter::repeat_n(ids, 3)) {
        if batch.is_empty() {
            continue;
        }
        let mut args = vec!["rmi", "-f"];
        args.extend(batch.iter().map(String::as_str));
        let _ = docker(&args);
    }
}

/// Fails the test unless a Docker engine answers (engine tests must fail, not skip, without
/// the rig).
#[allow(dead_code)]
pub fn require_engine() {
    let ok = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "no Docker engine: run scripts/setup-docker first");
}

/// `docker ARGS...`'s stdout (empty when it fails: callers assert on what they expect).
#[allow(dead_code)]
pub fn docker_stdout(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker client is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `docker ARGS...`: whether it succeeded, and its stdout followed by its stderr.
#[allow(dead_code)]
pub fn docker_output(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker client is installed");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Node id -> the string `field` of every node of a `plan --json`.
#[allow(dead_code)]
pub fn node_field(
    plan: &serde_json::Value,
    field: &str,
) -> std::collections::HashMap<String, String> {
    plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_string(),
                n[field].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
