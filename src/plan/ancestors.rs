//! Which library entry produces an image reference: how a plan finds the in-library
//! ancestors of what was selected, so that a node's key never depends on the selection.
//!
//! Invariants: a reference names a library entry only when it is `[docker.io/][library/]
//! [<namespace>/]<repo>:<tag>` with `library/<repo>` a manifest file whose entry has that tag
//! (or shared tag) on the architecture; each manifest file is read at most once per plan;
//! nothing is fetched here (the planner fetches only the entries it adds).

use std::collections::HashMap;

use crate::error::Error;
use crate::library::{self, Repo};
use crate::session::Session;

/// The library's entries, looked up by the image references they produce.
pub struct Producers<'s> {
    session: &'s Session,
    /// Repository name -> its manifest (None: no such file in the library).
    repos: HashMap<String, Option<Repo>>,
}

impl<'s> Producers<'s> {
    pub fn new(session: &'s Session) -> Producers<'s> {
        Producers {
            session,
            repos: HashMap::new(),
        }
    }

    /// The repository and entry index that produce `reference` (normalized, with a tag) on
    /// `arch`, if the library has one. An invalid manifest is an error, as for a selected one.
    pub fn find(&mut self, reference: &str, arch: &str) -> Result<Option<(Repo, usize)>, Error> {
        let Some((name, tag)) = library_name(reference, &self.session.config.namespace) else {
            return Ok(None);
        };
        if !self.repos.contains_key(&name) {
            let library = &self.session.config.library;
            let repo = if library.join(&name).is_file() {
                let mut loaded = library::load(library, std::slice::from_ref(&name))?;
                Some(loaded.repos.remove(0))
            } else {
                None
            };
            self.repos.insert(name.clone(), repo);
        }
        let Some(repo) = &self.repos[&name] else {
            return Ok(None);
        };
        let found = repo
            .manifest
            .entries_for_tag(&tag)
            .into_iter()
            .find(|&i| repo.manifest.entries[i].has_architecture(arch));
        Ok(found.map(|i| (repo.clone(), i)))
    }
}

/// `(repo, tag)` when `reference` can name a library entry: Docker Hub's `library/`
/// namespace or `namespace` (keg's `--namespace`) may prefix it; any other path cannot.
pub fn library_name(reference: &str, namespace: &str) -> Option<(String, String)> {
    if reference.contains('@') {
        return None;
    }
    let (name, tag) = match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (reference, "latest"),
    };
    let name = name
        .strip_prefix("docker.io/")
        .or_else(|| name.strip_prefix("index.docker.io/"))
        .unwrap_or(name);
    let name = name.strip_prefix("library/").unwrap_or(name);
    let namespace = namespace.trim_matches('/');
    let name = match name
        .strip_prefix(namespace)
        .and_then(|n| n.strip_prefix('/'))
    {
        Some(rest) if !namespace.is_empty() => rest,
        _ => name,
    };
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    (plain && !tag.is_empty()).then(|| (name.to_string(), tag.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_that_can_name_library_entries() {
        type Case<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>);
        let cases: &[Case<'_>] = &[
            ("keg-hello:1", "", Some(("keg-hello", "1"))),
            ("keg-hello", "", Some(("keg-hello", "latest"))),
            ("docker.io/library/php:8", "", Some(("php", "8"))),
            ("library/php:8", "", Some(("php", "8"))),
            ("index.docker.io/php:8", "", Some(("php", "8"))),
            ("ns/php:8", "ns", Some(("php", "8"))),
            ("ns/php:8", "", None),
            (
                "127.0.0.1:5000/ns/php:8",
                "127.0.0.1:5000/ns",
                Some(("php", "8")),
            ),
            ("keg-test/busybox:latest", "", None),
            ("127.0.0.1:5000/php:8", "", None),
            ("php@sha256:abc", "", None),
            ("../etc:1", "", None),
            ("scratch", "", Some(("scratch", "latest"))),
        ];
        for (reference, namespace, want) in cases {
            let got = library_name(reference, namespace);
            let want = want.map(|(n, t)| (n.to_string(), t.to_string()));
            assert_eq!(got, want, "{reference} (namespace {namespace:?})");
        }
    }
}
