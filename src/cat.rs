//! `cat --format`: each repository argument printed through a Go text/template over
//! bashbrew's data model, as bashbrew's `cmd-cat.go` does.
//!
//! Invariants: the template is parsed once, before any repository is printed (a parse error
//! prints nothing); each repository's output is buffered and written whole, with a newline
//! added when it does not end with one; a failure stops at that repository, after the
//! previous ones were written. Dockerfiles (`.ArchDockerFroms`, ...) come from keg's git
//! cache through the [`Session`], fetched only when a template asks for them.

use std::cell::RefCell;
use std::io::Write;

use crate::error::Error;
use crate::library::Repo;
use crate::manifest::Entry;
use crate::query::SkipNotes;
use crate::session::Session;
use crate::template::value::{EntryRef, RepoRef};
use crate::template::{Froms, Host, RepoData, Template, Value, gofmt};

/// Where the template comes from, for bashbrew's messages.
pub enum Source<'s> {
    /// `--format TEXT`
    Format(&'s str),
    /// `--format-file PATH` (its contents)
    File { path: &'s str, text: String },
}

impl Source<'_> {
    fn name(&self) -> &str {
        match self {
            Source::Format(_) => "--format",
            Source::File { path, .. } => path,
        }
    }

    fn text(&self) -> &str {
        match self {
            Source::Format(text) => text,
            Source::File { text, .. } => text,
        }
    }

    /// bashbrew's `failed parsing --format "..."` / `--format-file "..."`.
    fn parse_context(&self) -> String {
        match self {
            Source::Format(text) => {
                format!("failed parsing --format {}", gofmt::quote(text, false))
            }
            Source::File { path, .. } => {
                format!("failed parsing --format-file {}", gofmt::quote(path, false))
            }
        }
    }
}

/// Parses the template (reporting errors as bashbrew does).
pub fn parse(source: &Source<'_>) -> Result<Template, Error> {
    Template::parse(source.name(), source.text()).map_err(|e| Error::Template {
        context: source.parse_context(),
        message: e.0,
    })
}

/// Prints every repository through the template.
pub fn cat(
    session: &Session,
    repos: &[Repo],
    template: &Template,
    out: &mut impl Write,
) -> Result<(), Error> {
    let data: Vec<RepoData<'_>> = repos.iter().map(repo_data).collect();
    let notes = RefCell::new(SkipNotes::default());
    let mut buffer = String::new();
    for (i, (repo, data)) in repos.iter().zip(&data).enumerate() {
        let host = CatHost {
            session,
            index: i as i64,
            notes: &notes,
        };
        buffer.clear();
        template
            .execute(Value::Repo(RepoRef::Borrowed(data)), &host, &mut buffer)
            .map_err(|e| Error::Template {
                context: format!(
                    "failed executing template for repo {}",
                    gofmt::quote(&argument(repo), false)
                ),
                message: e.0,
            })?;
        out.write_all(buffer.as_bytes()).map_err(Error::Output)?;
        if !buffer.ends_with('\n') {
            out.write_all(b"\n").map_err(Error::Output)?;
        }
    }
    Ok(())
}

/// The repository argument as bashbrew names it in messages (`repo` or `repo:tag`).
fn argument(repo: &Repo) -> String {
    match &repo.tag {
        Some(tag) => format!("{}:{tag}", repo.name),
        None => repo.name.clone(),
    }
}

/// bashbrew's `Repo` for a loaded argument.
fn repo_data(repo: &Repo) -> RepoData<'_> {
    RepoData {
        name: repo.name.clone(),
        tag: repo.tag.clone(),
        manifest: &repo.manifest,
        tag_entries: match repo.tag {
            Some(_) => repo.entries().map(EntryRef::Borrowed).collect(),
            None => Vec::new(),
        },
        library: Some(repo),
    }
}

struct CatHost<'s> {
    session: &'s Session,
    index: i64,
    notes: &'s RefCell<SkipNotes>,
}

impl CatHost<'_> {
    fn library<'r>(&self, repo: &RepoData<'r>) -> Result<&'r Repo, String> {
        repo.library
            .ok_or_else(|| format!("{}: no manifest file for this repository", repo.name))
    }
}

impl<'a> Host<'a> for CatHost<'_> {
    fn arch(&self) -> &str {
        &self.session.config.arch
    }

    fn namespace(&self) -> &str {
        &self.session.config.namespace
    }

    fn arch_namespace(&self, arch: &str) -> String {
        // bashbrew: `SplitN(mapping, "=", 2)`, both sides trimmed; the last one wins.
        let mut found = String::new();
        for item in &self.session.config.arch_namespaces {
            if let Some((a, ns)) = item.split_once('=')
                && a.trim() == arch
            {
                found = ns.trim().to_string();
            }
        }
        found
    }

    fn index(&self) -> i64 {
        self.index
    }

    fn git_cache(&self) -> Result<String, String> {
        let sources = self.session.sources().map_err(|e| e.to_string())?;
        Ok(sources.cache().repo_path().to_string_lossy().into_owned())
    }

    fn dockerfile(&self, repo: &RepoData<'a>, entry: &Entry, arch: &str) -> Result<Froms, String> {
        let library = self.library(repo)?;
        let source = self
            .session
            .source(library, entry, arch)
            .map_err(|e| e.to_string())?;
        Ok(Froms {
            froms: source.froms(),
            last_stage: match source.builder {
                crate::manifest::Builder::OciImport => "scratch".to_string(),
                _ => source
                    .scan
                    .last_stage_from()
                    .unwrap_or_default()
                    .to_string(),
            },
        })
    }

    fn git_time(&self, repo: &RepoData<'a>, entry: &Entry, arch: &str) -> Result<i64, String> {
        let library = self.library(repo)?;
        let source = self
            .session
            .source(library, entry, arch)
            .map_err(|e| e.to_string())?;
        let sources = self.session.sources().map_err(|e| e.to_string())?;
        sources
            .cache()
            .commit_time(&source.commit)
            .map_err(|e| e.to_string())
    }

    fn image_id(&self, image: &str) -> Result<String, String> {
        let inspect = crate::docker::DockerCommand::docker(&["inspect", "-f", "{{.Id}}", image]);
        let output = crate::process::output(
            &inspect,
            &crate::interrupt::INTERRUPTED,
            Some(crate::process::QUERY_LIMIT),
        )?;
        if output.code != 0 {
            return Err(format!(
                "command: docker inspect -f \"{{{{.Id}}}}\" {image}: {}",
                output.stderr.trim()
            ));
        }
        Ok(output.stdout.trim().to_string())
    }

    fn skip_constraints(&self, repo: &RepoData<'a>, entry: &Entry) -> bool {
        match repo.library {
            Some(library) => self
                .notes
                .borrow_mut()
                .skips(&self.session.config, library, entry),
            None => crate::query::skip_reason(&self.session.config, entry).is_some(),
        }
    }

    fn sorted_entries(
        &self,
        repo: &RepoData<'a>,
        apply_constraints: bool,
    ) -> Result<Vec<EntryRef<'a>>, String> {
        let library = self.library(repo)?;
        let sorted = crate::lineage::build_order(
            self.session,
            std::slice::from_ref(library),
            apply_constraints,
        )
        .map_err(|e| e.to_string())?;
        let order = sorted
            .first()
            .map(|r| r.selected.clone())
            .unwrap_or_default();
        Ok(order
            .into_iter()
            .map(|i| EntryRef::Borrowed(&repo.manifest.entries[i]))
            .collect())
    }
}
