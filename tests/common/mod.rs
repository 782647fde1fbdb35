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
