//! A test builder: temp libraries (and later git repos), the built binary, whole outputs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const C1: &str = "0123456789abcdef0123456789abcdef01234567";
pub const C2: &str = "89abcdef0123456789abcdef0123456789abcdef";

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
