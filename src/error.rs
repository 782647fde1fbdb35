//! keg's one error type: every way a command can fail, with the data to explain it.
//!
//! Invariants: `Display` renders a complete message for people (manifest problems render
//! every diagnostic with `--> file:line:col`, the source line and carets); `exit_code` is 2
//! for bad input or a failed prerequisite and 1 only for failed builds.

use std::path::PathBuf;

use crate::span::{Diagnostic, Severity};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more manifest files are invalid; every problem of every file.
    #[error("{}", render_diagnostics(.0))]
    Manifest(Vec<Diagnostic>),

    #[error("need at least one repo (either explicitly or via \"--all\")")]
    NoRepos,

    #[error("unable to find a manifest named {name:?} (in {library:?})")]
    RepoNotFound { name: String, library: PathBuf },

    #[error("tag not found in manifest for {repo:?}: {tag:?}")]
    TagNotFound { repo: String, tag: String },

    /// Flags that do not fit together, or a required one that is missing.
    #[error("{0}")]
    Flags(String),

    #[error("invalid {option} {value:?}: {expected}")]
    Usage {
        option: &'static str,
        value: String,
        expected: String,
    },

    #[error("{context} {path:?}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("writing output: {0}")]
    Output(std::io::Error),

    /// A git operation for an entry failed; `what` names the entry, URL, commit or path.
    #[error("{what}: {source}")]
    Git {
        what: String,
        source: Box<crate::git::GitError>,
    },

    #[error("{what}: {source}")]
    Context {
        what: String,
        source: Box<crate::context::ContextError>,
    },

    #[error("dependency cycle: {cycle}")]
    Cycle { cycle: String },

    #[error("failed to resolve argument as repo or tag {arg:?}")]
    Unresolved { arg: String },

    #[error(
        "no Docker engine answers (`docker info`: {said}): start one, e.g. with scripts/setup-docker"
    )]
    NoEngine { said: String },

    #[error(
        "there is no `docker` command on PATH: install the Docker client (e.g. scripts/setup-docker)"
    )]
    NoDockerClient,

    #[error("docker: {0}")]
    Engine(String),

    #[error("interrupted")]
    Interrupted,

    /// A `cat --format` template that does not parse or fails to execute: bashbrew's
    /// context line, then Go's message (`template: NAME:LINE:COL: ...`).
    #[error("{context}\n{message}")]
    Template { context: String, message: String },

    /// `remote arches`: a registry that cannot be reached or answers an error.
    #[error("{context}: {message}")]
    Remote { context: String, message: String },

    #[error("{}", build_failed(*failed, *skipped, *not_started, *push_failed))]
    BuildFailed {
        failed: usize,
        skipped: usize,
        not_started: usize,
        push_failed: usize,
    },

    /// `--no-parents`, and ancestors of the selection have no image anywhere.
    #[error(
        "--no-parents: {} of the selection {} no image for {} key in the engine or the registry cache:\n{}\nbuild {} first, or leave out --no-parents",
        if missing.len() == 1 { "an ancestor" } else { "ancestors" },
        if missing.len() == 1 { "has" } else { "have" },
        if missing.len() == 1 { "its" } else { "their" },
        missing.iter().map(|(id, key)| format!("- {id} (key {key})")).collect::<Vec<_>>().join("\n"),
        if missing.len() == 1 { "it" } else { "them" },
    )]
    MissingAncestors { missing: Vec<(String, String)> },

    /// `tag`, `push` or `put-shared`: every failure, collected.
    #[error("failed {action}:\n{}", failures.iter().map(|f| format!("- {f}")).collect::<Vec<_>>().join("\n"))]
    PublishFailed {
        action: &'static str,
        failures: Vec<String>,
    },
}

impl From<crate::docker::NoEngine> for Error {
    fn from(why: crate::docker::NoEngine) -> Error {
        match why {
            crate::docker::NoEngine::NoClient => Error::NoDockerClient,
            crate::docker::NoEngine::NoDaemon(said) => Error::NoEngine { said },
            crate::docker::NoEngine::Interrupted => Error::Interrupted,
        }
    }
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::BuildFailed { .. }
            | Error::PublishFailed { .. }
            | Error::MissingAncestors { .. }
            | Error::Remote { .. } => 1,
            Error::Interrupted => 130,
            _ => 2,
        }
    }
}

fn build_failed(failed: usize, skipped: usize, not_started: usize, push_failed: usize) -> String {
    let mut parts = vec![format!("{failed} failed"), format!("{skipped} skipped")];
    if not_started > 0 {
        parts.push(format!("{not_started} not started"));
    }
    if push_failed > 0 {
        parts.push(format!("{push_failed} pushes failed"));
    }
    parts.join(", ")
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let mut files: Vec<&str> = diagnostics.iter().map(|d| d.file.as_str()).collect();
    files.dedup();
    let rendered: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
    let plural = if errors == 1 { "" } else { "s" };
    let in_files = if files.len() == 1 {
        files[0].to_string()
    } else {
        format!("{} files", files.len())
    };
    format!(
        "{}\n\n{errors} error{plural} in {in_files}",
        rendered.join("\n\n")
    )
}
