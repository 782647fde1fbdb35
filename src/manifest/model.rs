//! The validated manifest: global defaults and entries, as bashbrew models them.
//!
//! Invariants (established by `validate`): every entry has at least one tag and a GitRepo,
//! GitFetch and GitCommit; architectures are known, de-duplicated and sorted; directories are
//! path-cleaned and stay inside the repository; no tag appears twice in a manifest; arch
//! override keys are `<arch>-<overridable field>`, where an unknown arch is kept (`cat`
//! prints it back, as bashbrew does) but never looked up.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::span::Span;

/// The fields an architecture prefix may override (`arm64v8-GitCommit`).
pub const ARCH_FIELDS: &[&str] = &[
    "GitRepo",
    "GitFetch",
    "GitCommit",
    "Directory",
    "File",
    "Builder",
];

/// How an entry is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Builder {
    /// `docker buildx build` (BuildKit).
    Buildkit,
    /// `DOCKER_BUILDKIT=0 docker build` (also what an empty Builder means).
    Classic,
    /// Import an OCI image layout committed in git.
    OciImport,
}

impl Builder {
    /// Parses a manifest value; the empty value means the classic builder.
    pub fn parse(value: &str) -> Option<Builder> {
        match value {
            "" | "classic" => Some(Builder::Classic),
            "buildkit" => Some(Builder::Buildkit),
            "oci-import" => Some(Builder::OciImport),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Builder::Buildkit => "buildkit",
            Builder::Classic => "classic",
            Builder::OciImport => "oci-import",
        }
    }
}

/// One paragraph of a manifest after inheritance from the global paragraph.
///
/// String fields hold the values exactly as bashbrew keeps them (an empty Builder stays
/// empty), so that `cat` can print them back; typed accessors give the effective values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    pub maintainers: Vec<String>,
    pub tags: Vec<String>,
    pub shared_tags: Vec<String>,
    pub architectures: Vec<String>,
    pub git_repo: String,
    pub git_fetch: String,
    pub git_commit: String,
    pub directory: String,
    pub file: String,
    pub builder: String,
    /// Architecture-specific values, keyed `<arch>-<Field>`; sorted, so iteration order is the
    /// order `cat` prints them in.
    pub arch_values: BTreeMap<String, String>,
    pub constraints: Vec<String>,
    /// Where the entry's paragraph starts.
    #[serde(skip)]
    pub span: Span,
}

impl Entry {
    /// The defaults every manifest starts from.
    pub fn defaults() -> Entry {
        Entry {
            architectures: vec![crate::arch::DEFAULT.to_string()],
            git_fetch: "refs/heads/master".to_string(),
            directory: ".".to_string(),
            file: "Dockerfile".to_string(),
            ..Entry::default()
        }
    }

    fn arch_value<'a>(&'a self, arch: &str, field: &str, fallback: &'a str) -> &'a str {
        match self.arch_values.get(&format!("{arch}-{field}")) {
            Some(value) if !value.is_empty() => value,
            _ => fallback,
        }
    }

    pub fn arch_git_repo(&self, arch: &str) -> &str {
        self.arch_value(arch, "GitRepo", &self.git_repo)
    }

    pub fn arch_git_fetch(&self, arch: &str) -> &str {
        self.arch_value(arch, "GitFetch", &self.git_fetch)
    }

    pub fn arch_git_commit(&self, arch: &str) -> &str {
        self.arch_value(arch, "GitCommit", &self.git_commit)
    }

    pub fn arch_directory(&self, arch: &str) -> &str {
        self.arch_value(arch, "Directory", &self.directory)
    }

    pub fn arch_file(&self, arch: &str) -> &str {
        self.arch_value(arch, "File", &self.file)
    }

    /// The effective builder for `arch` (validation guarantees the value parses).
    pub fn arch_builder(&self, arch: &str) -> Builder {
        Builder::parse(self.arch_value(arch, "Builder", &self.builder)).unwrap_or(Builder::Classic)
    }

    pub fn has_architecture(&self, arch: &str) -> bool {
        self.architectures.iter().any(|a| a == arch)
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    pub fn has_shared_tag(&self, tag: &str) -> bool {
        self.shared_tags.iter().any(|t| t == tag)
    }

    /// True when `self` and `other` build the same artifacts, so their tags can be merged
    /// (bashbrew's `SameBuildArtifacts`).
    pub fn same_build_artifacts(&self, other: &Entry) -> bool {
        // The fields most likely to differ come first: this runs for every pair of entries.
        self.directory == other.directory
            && self.git_commit == other.git_commit
            && self.file == other.file
            && self.git_repo == other.git_repo
            && self.git_fetch == other.git_fetch
            && self.architectures == other.architectures
            && self.builder == other.builder
            && self.constraints == other.constraints
            && non_empty(&self.arch_values).eq(non_empty(&other.arch_values))
    }
}

fn non_empty(values: &BTreeMap<String, String>) -> impl Iterator<Item = (&String, &String)> {
    values.iter().filter(|(_, v)| !v.is_empty())
}

/// A parsed and validated manifest file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The first paragraph, with the built-in defaults filled in.
    pub global: Entry,
    /// Every entry, in file order, with entries that build the same artifacts merged.
    pub entries: Vec<Entry>,
}

impl Manifest {
    /// The entry that has `tag` among its Tags.
    pub fn get_tag(&self, tag: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.has_tag(tag))
    }

    /// The indexes of the entries that have `tag` among their SharedTags.
    pub fn shared_tag_entries(&self, tag: &str) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&i| self.entries[i].has_shared_tag(tag))
            .collect()
    }

    /// Every shared tag, in order of first appearance.
    pub fn all_shared_tags(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for tag in self.entries.iter().flat_map(|e| &e.shared_tags) {
            if !out.contains(&tag.as_str()) {
                out.push(tag);
            }
        }
        out
    }

    /// The shared tags grouped by the exact set of entries that carry them, in order of
    /// first appearance (bashbrew's `GetSharedTagGroups`): each group becomes one manifest
    /// list pushed under all of its tags.
    pub fn shared_tag_groups(&self) -> Vec<SharedTagGroup> {
        let mut groups: Vec<SharedTagGroup> = Vec::new();
        for tag in self.all_shared_tags() {
            let entries = self.shared_tag_entries(tag);
            match groups.iter_mut().find(|g| g.entries == entries) {
                Some(group) => group.shared_tags.push(tag.to_string()),
                None => groups.push(SharedTagGroup {
                    shared_tags: vec![tag.to_string()],
                    entries,
                }),
            }
        }
        groups
    }

    /// The indexes of the entries a tag names: the entry with that tag, or every entry with
    /// that shared tag.
    pub fn entries_for_tag(&self, tag: &str) -> Vec<usize> {
        match self.entries.iter().position(|e| e.has_tag(tag)) {
            Some(i) => vec![i],
            None => self.shared_tag_entries(tag),
        }
    }
}

/// Shared tags that name the same entries (indexes into [`Manifest::entries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedTagGroup {
    pub shared_tags: Vec<String>,
    pub entries: Vec<usize>,
}
