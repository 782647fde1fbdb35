//! The library: manifest files in a directory, and the repository arguments that name them.
//!
//! Arguments resolve as bashbrew's: `repo`, `repo:tag` (a tag, or a shared tag naming every
//! entry that has it), or a path to a manifest file (`./x`, `dir/x`, `/abs/x`); `--all` is
//! every file of the library, sorted by name. Invariants: every file is read and validated
//! once per run, in parallel; either every named manifest is valid, or the error holds every
//! problem of every invalid file (no partial result).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::Error;
use crate::manifest::{self, Manifest};
use crate::span::Diagnostic;

/// A repository as a command argument selects it.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The repository name (the manifest's file name).
    pub name: String,
    /// The tag named in the argument, if any.
    pub tag: Option<String>,
    /// The path the manifest was read from.
    pub path: PathBuf,
    pub manifest: Arc<Manifest>,
    /// Indexes into `manifest.entries` of the selected entries, in file order: all of them,
    /// or those the tag names.
    pub selected: Vec<usize>,
}

impl Repo {
    pub fn entries(&self) -> impl Iterator<Item = &manifest::Entry> {
        self.selected.iter().map(|&i| &self.manifest.entries[i])
    }

    /// `repo:first-tag` for an entry (bashbrew's EntryIdentifier).
    pub fn entry_id(&self, entry: &manifest::Entry) -> String {
        format!("{}:{}", self.name, entry.tags[0])
    }
}

/// Every warning produced while loading, and the repositories.
pub struct Loaded {
    pub repos: Vec<Repo>,
    pub warnings: Vec<Diagnostic>,
}

/// The argument list bashbrew builds: every library file for `--all`, then the arguments.
pub fn arguments(library: &Path, all: bool, args: &[String]) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    if all {
        let read = std::fs::read_dir(library).map_err(|source| Error::Io {
            context: "reading library directory",
            path: library.to_path_buf(),
            source,
        })?;
        let mut names: Vec<String> = read
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| !name.starts_with('.'))
            .collect();
        names.sort();
        out.extend(
            names
                .into_iter()
                .map(|n| library.join(n).to_string_lossy().into_owned()),
        );
    }
    out.extend(args.iter().cloned());
    if out.is_empty() {
        return Err(Error::NoRepos);
    }
    Ok(out)
}

/// Splits `dir/name:tag` into (`dir/name`, `name`, `tag`).
fn split_argument(arg: &str) -> (&str, &str, Option<&str>) {
    let base_start = arg.rfind('/').map_or(0, |i| i + 1);
    let base = &arg[base_start..];
    match base.find(':') {
        Some(i) if i > 0 => (&arg[..base_start + i], &base[..i], Some(&base[i + 1..])),
        _ => (arg, base, None),
    }
}

/// Where the manifest for a (tag-less) argument is: the argument as a path when it looks
/// like one, else the file of that name in the library.
fn locate(library: &Path, arg: &str) -> Option<PathBuf> {
    let path = Path::new(arg);
    let mut candidates = Vec::new();
    if path.is_absolute() || arg.contains('/') {
        candidates.push(path.to_path_buf());
    }
    if !path.is_absolute() {
        candidates.push(library.join(path));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// Reads and validates every manifest the arguments name, in parallel, and selects entries.
pub fn load(library: &Path, args: &[String]) -> Result<Loaded, Error> {
    // Finding a file costs a stat: done in parallel too (`--all` names every file).
    let found: Vec<Option<PathBuf>> = args
        .par_iter()
        .map(|arg| locate(library, split_argument(arg).0))
        .collect();
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut index: HashMap<PathBuf, usize> = HashMap::with_capacity(args.len());
    let mut located = Vec::with_capacity(args.len());
    for (arg, path) in args.iter().zip(found) {
        let (file_arg, name, tag) = split_argument(arg);
        let path = path.ok_or_else(|| Error::RepoNotFound {
            name: file_arg.to_string(),
            library: library.to_path_buf(),
        })?;
        let at = *index.entry(path).or_insert_with_key(|path| {
            paths.push(path.clone());
            paths.len() - 1
        });
        located.push((at, name.to_string(), tag.map(str::to_string)));
    }

    let results: Vec<Result<manifest::Parsed, Vec<Diagnostic>>> = paths
        .par_iter()
        .map(|path| {
            let display = path.to_string_lossy();
            match std::fs::read(path) {
                Ok(bytes) => manifest::parse(&display, &bytes),
                Err(e) => Err(vec![io_diagnostic(&display, &e)]),
            }
        })
        .collect();

    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut parsed: Vec<Option<Arc<Manifest>>> = Vec::with_capacity(paths.len());
    for result in results {
        match result {
            Ok(ok) => {
                warnings.extend(ok.warnings);
                parsed.push(Some(Arc::new(ok.manifest)));
            }
            Err(diagnostics) => {
                problems.extend(diagnostics);
                parsed.push(None);
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::Manifest(problems));
    }

    let mut repos = Vec::with_capacity(located.len());
    for (at, name, tag) in located {
        let path = paths[at].clone();
        let manifest = Arc::clone(parsed[at].as_ref().expect("no problems, so parsed"));
        let selected = match &tag {
            None => (0..manifest.entries.len()).collect(),
            Some(tag) => {
                let selected = manifest.entries_for_tag(tag);
                if selected.is_empty() {
                    return Err(Error::TagNotFound {
                        repo: name,
                        tag: tag.clone(),
                    });
                }
                selected
            }
        };
        repos.push(Repo {
            name,
            tag,
            path,
            manifest,
            selected,
        });
    }
    Ok(Loaded { repos, warnings })
}

fn io_diagnostic(file: &str, error: &std::io::Error) -> Diagnostic {
    let index = crate::span::LineIndex::new("");
    index.diagnostic(
        crate::span::Severity::Error,
        file,
        index.span(0, 0),
        format!("cannot read the file: {error}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_arguments_like_bashbrew() {
        let cases = [
            ("debian", ("debian", "debian", None)),
            ("debian:bookworm", ("debian", "debian", Some("bookworm"))),
            ("./lib/debian:12", ("./lib/debian", "debian", Some("12"))),
            ("/abs/lib/x", ("/abs/lib/x", "x", None)),
            ("lib:v/x", ("lib:v/x", "x", None)),
        ];
        for (arg, want) in cases {
            assert_eq!(split_argument(arg), want, "{arg}");
        }
    }
}
