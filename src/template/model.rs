//! bashbrew's data model as templates see it: `*main.Repo`, `*manifest.Manifest2822`,
//! `manifest.Manifest2822Entry`, `manifest.SharedTagGroup`, `*architecture.OCIPlatform` and
//! `time.Time`, with their fields and their methods (with Go's signatures, so argument counts
//! and types are checked as Go checks them).
//!
//! Invariants: names, signatures and results follow bashbrew's `cmd/bashbrew/repo.go`,
//! `docker.go`, `git.go` and `manifest/rfc2822.go`; a method called on a nil pointer fails
//! as Go's does (`runtime error: invalid memory address or nil pointer dereference`); what
//! needs the outside world (Dockerfiles from the git cache, commit times, the host's
//! settings) goes through [`Host`].

use std::rc::Rc;

use crate::manifest::{Entry, Manifest, write};

use super::value::{
    EntryRef, EntryVal, List, ListType, NIL_ARCH_VALUES, NIL_ARCHITECTURES, NIL_CONSTRAINTS,
    NIL_MAINTAINERS, NIL_SHARED_TAGS, NIL_TAGS, OwnedEntry, PtrType, RepoRef, Str, Value,
};

/// Go's nil pointer dereference, as `text/template` reports a panic in a method.
pub const NIL_DEREFERENCE: &str =
    "runtime error: invalid memory address or nil pointer dereference";

/// One repository argument of `cat` (bashbrew's `Repo`).
#[derive(Debug)]
pub struct RepoData<'a> {
    pub name: String,
    /// `TagName` (`""` when the argument names no tag).
    pub tag: Option<String>,
    pub manifest: &'a Manifest,
    /// `TagEntries`: the entries the tag names (none without a tag).
    pub tag_entries: Vec<EntryRef<'a>>,
    /// keg's view of the same repository, for sources; None for one made by `EntryRepo`
    /// from an entry that is not in a loaded manifest.
    pub library: Option<&'a crate::library::Repo>,
}

impl<'a> RepoData<'a> {
    /// `TagEntry`: the first of `TagEntries`, or a nil pointer.
    pub fn tag_entry(&self) -> Value<'a> {
        match self.tag_entries.first() {
            Some(e) => entry_ptr(e.clone()),
            None => Value::NilPtr(PtrType::Entry),
        }
    }

    /// `TagEntries` (a nil slice without a tag).
    pub fn tag_entries(&self) -> List<'a> {
        if self.tag.is_none() {
            return List::nil(ListType::EntryPtrs);
        }
        List::owned(
            ListType::EntryPtrs,
            self.tag_entries.iter().cloned().map(entry_ptr).collect(),
        )
    }

    /// `Entries()`: every entry without a tag, else `TagEntries`.
    pub fn entries(&self) -> List<'a> {
        if self.tag.is_some() {
            return self.tag_entries();
        }
        List::owned(
            ListType::EntryPtrs,
            self.manifest
                .entries
                .iter()
                .map(|e| entry_ptr(EntryRef::Borrowed(e)))
                .collect(),
        )
    }

    /// `Tags(namespace, uniq, entry)`: `namespace/repo:tag` for every tag and shared tag.
    pub fn tags(&self, namespace: &str, uniq: bool, entry: &Entry) -> Vec<String> {
        // Go's `path.Join(namespace, repo)`.
        let repo = if namespace.is_empty() {
            crate::manifest::validate::clean_path(&self.name)
        } else {
            crate::manifest::validate::clean_path(&format!("{namespace}/{}", self.name))
        };
        let take = if uniq { 1 } else { usize::MAX };
        entry
            .tags
            .iter()
            .chain(&entry.shared_tags)
            .take(take)
            .map(|tag| format!("{repo}:{tag}"))
            .collect()
    }
}

/// `manifest.SharedTagGroup`.
#[derive(Debug)]
pub struct Group<'a> {
    pub shared_tags: Vec<String>,
    pub entries: Vec<&'a Entry>,
}

impl<'a> Group<'a> {
    pub fn shared_tags_value(&self) -> List<'a> {
        List::owned(
            ListType::Strings,
            self.shared_tags.iter().map(|t| Value::string(t)).collect(),
        )
    }

    pub fn entries_value(&self) -> List<'a> {
        List::owned(
            ListType::EntryPtrs,
            self.entries
                .iter()
                .map(|e| entry_ptr(EntryRef::Borrowed(e)))
                .collect(),
        )
    }
}

/// What templates need from the world outside the manifests.
pub trait Host<'a> {
    /// `--arch`.
    fn arch(&self) -> &str;
    /// `--namespace`.
    fn namespace(&self) -> &str;
    /// The `--arch-namespace` of an architecture (`""` when none).
    fn arch_namespace(&self, arch: &str) -> String;
    /// The index of the repository argument being printed (`i`).
    fn index(&self) -> i64;
    /// The git cache's path, created if needed (`gitCache`).
    fn git_cache(&self) -> Result<String, String>;
    /// The Dockerfile's parents of an entry on an architecture, fetching its commit into the
    /// git cache if needed.
    fn dockerfile(&self, repo: &RepoData<'a>, entry: &Entry, arch: &str) -> Result<Froms, String>;
    /// The time of the entry's commit on an architecture (`ArchGitTime`).
    fn git_time(&self, repo: &RepoData<'a>, entry: &Entry, arch: &str) -> Result<i64, String>;
    /// Whether `--arch` and the constraints exclude an entry (printing why, once).
    fn skip_constraints(&self, repo: &RepoData<'a>, entry: &Entry) -> bool;
    /// The id the Docker engine has for an image (`docker inspect -f '{{.Id}}' IMAGE`).
    fn image_id(&self, image: &str) -> Result<String, String>;
    /// The repository's entries in build order.
    fn sorted_entries(
        &self,
        repo: &RepoData<'a>,
        apply_constraints: bool,
    ) -> Result<Vec<EntryRef<'a>>, String>;
}

/// What a Dockerfile says about parents.
#[derive(Debug, Clone, Default)]
pub struct Froms {
    /// Every external parent (`FROM`, `COPY --from`, ...).
    pub froms: Vec<String>,
    /// The last stage's parent.
    pub last_stage: String,
}

pub fn entry_ptr(entry: EntryRef<'_>) -> Value<'_> {
    Value::Entry(EntryVal {
        entry,
        ptr: true,
        addressable: false,
    })
}

fn entry_value(entry: EntryRef<'_>) -> Value<'_> {
    Value::Entry(EntryVal {
        entry,
        ptr: false,
        addressable: true,
    })
}

/// A Go parameter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Bool,
    Int,
    /// `interface {}`
    Any,
    /// `reflect.Value` (the builtins' parameters: anything, including no value)
    RValue,
    EntryPtr,
    Entry,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Any => "interface {}",
            Ty::RValue => "reflect.Value",
            Ty::EntryPtr => "*manifest.Manifest2822Entry",
            Ty::Entry => "manifest.Manifest2822Entry",
        }
    }
}

/// A function's or method's parameters.
#[derive(Debug, Clone, Copy)]
pub struct Sig {
    pub params: &'static [Ty],
    pub variadic: Option<Ty>,
}

impl Sig {
    pub const fn fixed(params: &'static [Ty]) -> Sig {
        Sig {
            params,
            variadic: None,
        }
    }

    pub const fn variadic(params: &'static [Ty], rest: Ty) -> Sig {
        Sig {
            params,
            variadic: Some(rest),
        }
    }

    /// Go's `NumIn()`: the variadic parameter counts as one.
    pub fn num_in(&self) -> usize {
        self.params.len() + usize::from(self.variadic.is_some())
    }
}

/// A method of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    // Entry
    String,
    MaintainersString,
    TagsString,
    SharedTagsString,
    ArchitecturesString,
    ConstraintsString,
    HasTag,
    HasSharedTag,
    HasArchitecture,
    ArchGitRepo,
    ArchGitFetch,
    ArchGitCommit,
    ArchDirectory,
    ArchFile,
    ArchBuilder,
    ClearDefaults,
    SameBuildArtifacts,
    Clone,
    InvalidMaintainers,
    // Manifest
    GetTag,
    GetSharedTag,
    GetAllSharedTags,
    GetSharedTagGroups,
    // Repo
    Identifier,
    EntryIdentifier,
    EntryRepo,
    SkipConstraints,
    Entries,
    Tags,
    ArchLastStageFrom,
    DockerFroms,
    ArchDockerFroms,
    DockerFrom,
    ArchDockerFrom,
    ArchGitTime,
    SortedEntries,
    DockerCacheName,
    // time.Time
    Unix,
}

const STR: &[Ty] = &[Ty::Str];
const NONE: &[Ty] = &[];

/// The method `name` of a value's type, if it has one (nil pointers have their type's).
pub fn method(receiver: &Value<'_>, name: &str) -> Option<(Method, Sig)> {
    use Method as M;
    let entry = || -> Option<(Method, Sig)> {
        Some(match name {
            "String" => (M::String, Sig::fixed(NONE)),
            "MaintainersString" => (M::MaintainersString, Sig::fixed(NONE)),
            "TagsString" => (M::TagsString, Sig::fixed(NONE)),
            "SharedTagsString" => (M::SharedTagsString, Sig::fixed(NONE)),
            "ArchitecturesString" => (M::ArchitecturesString, Sig::fixed(NONE)),
            "ConstraintsString" => (M::ConstraintsString, Sig::fixed(NONE)),
            "HasTag" => (M::HasTag, Sig::fixed(STR)),
            "HasSharedTag" => (M::HasSharedTag, Sig::fixed(STR)),
            "HasArchitecture" => (M::HasArchitecture, Sig::fixed(STR)),
            "ArchGitRepo" => (M::ArchGitRepo, Sig::fixed(STR)),
            "ArchGitFetch" => (M::ArchGitFetch, Sig::fixed(STR)),
            "ArchGitCommit" => (M::ArchGitCommit, Sig::fixed(STR)),
            "ArchDirectory" => (M::ArchDirectory, Sig::fixed(STR)),
            "ArchFile" => (M::ArchFile, Sig::fixed(STR)),
            "ArchBuilder" => (M::ArchBuilder, Sig::fixed(STR)),
            "ClearDefaults" => (M::ClearDefaults, Sig::fixed(&[Ty::Entry])),
            "SameBuildArtifacts" => (M::SameBuildArtifacts, Sig::fixed(&[Ty::Entry])),
            "Clone" => (M::Clone, Sig::fixed(NONE)),
            "InvalidMaintainers" => (M::InvalidMaintainers, Sig::fixed(NONE)),
            _ => return None,
        })
    };
    match receiver {
        Value::Entry(_) | Value::NilPtr(PtrType::Entry) => entry(),
        Value::Manifest(_) | Value::NilPtr(PtrType::Manifest) => Some(match name {
            "String" => (M::String, Sig::fixed(NONE)),
            "GetTag" => (M::GetTag, Sig::fixed(STR)),
            "GetSharedTag" => (M::GetSharedTag, Sig::fixed(STR)),
            "GetAllSharedTags" => (M::GetAllSharedTags, Sig::fixed(NONE)),
            "GetSharedTagGroups" => (M::GetSharedTagGroups, Sig::fixed(NONE)),
            _ => return None,
        }),
        Value::Repo(_) | Value::NilPtr(PtrType::Repo) => Some(match name {
            "Identifier" => (M::Identifier, Sig::fixed(NONE)),
            "EntryIdentifier" => (M::EntryIdentifier, Sig::fixed(&[Ty::EntryPtr])),
            "EntryRepo" => (M::EntryRepo, Sig::fixed(&[Ty::EntryPtr])),
            "SkipConstraints" => (M::SkipConstraints, Sig::fixed(&[Ty::EntryPtr])),
            "Entries" => (M::Entries, Sig::fixed(NONE)),
            "Tags" => (M::Tags, Sig::fixed(&[Ty::Str, Ty::Bool, Ty::EntryPtr])),
            "ArchLastStageFrom" => (M::ArchLastStageFrom, Sig::fixed(&[Ty::Str, Ty::EntryPtr])),
            "DockerFroms" => (M::DockerFroms, Sig::fixed(&[Ty::EntryPtr])),
            "ArchDockerFroms" => (M::ArchDockerFroms, Sig::fixed(&[Ty::Str, Ty::EntryPtr])),
            "DockerFrom" => (M::DockerFrom, Sig::fixed(&[Ty::EntryPtr])),
            "ArchDockerFrom" => (M::ArchDockerFrom, Sig::fixed(&[Ty::Str, Ty::EntryPtr])),
            "ArchGitTime" => (M::ArchGitTime, Sig::fixed(&[Ty::Str, Ty::EntryPtr])),
            "SortedEntries" => (M::SortedEntries, Sig::fixed(&[Ty::Bool])),
            "DockerCacheName" => (M::DockerCacheName, Sig::fixed(&[Ty::EntryPtr])),
            _ => return None,
        }),
        Value::Platform(_) | Value::NilPtr(PtrType::Platform) => match name {
            "String" => Some((M::String, Sig::fixed(NONE))),
            _ => None,
        },
        Value::Time(_) => match name {
            "String" => Some((M::String, Sig::fixed(NONE))),
            "Unix" => Some((M::Unix, Sig::fixed(NONE))),
            _ => None,
        },
        _ => None,
    }
}

/// An entry's fields, in the declaration order of bashbrew's `Manifest2822Entry`.
pub const ENTRY_FIELDS: &[&str] = &[
    "Maintainers",
    "Tags",
    "SharedTags",
    "Architectures",
    "GitRepo",
    "GitFetch",
    "GitCommit",
    "Directory",
    "File",
    "Builder",
    "ArchValues",
    "Constraints",
];

/// Whether a pointer type's struct has a field of that name (for Go's "nil pointer
/// evaluating" message).
pub fn has_field(ptr: PtrType, name: &str) -> bool {
    match ptr {
        PtrType::Entry => ENTRY_FIELDS.contains(&name),
        PtrType::Manifest => matches!(name, "Global" | "Entries"),
        PtrType::Repo => matches!(
            name,
            "RepoName" | "TagName" | "Manifest" | "TagEntry" | "TagEntries"
        ),
        PtrType::Platform => matches!(
            name,
            "OS" | "Architecture" | "Variant" | "OSVersion" | "OSFeatures"
        ),
    }
}

/// The field `name` of a (non-nil) struct value.
pub fn field<'a>(receiver: &Value<'a>, name: &str) -> Option<Value<'a>> {
    match receiver {
        Value::Entry(e) => entry_field(&e.entry, name),
        Value::Manifest(m) => match name {
            "Global" => Some(entry_value(EntryRef::Borrowed(&m.global))),
            "Entries" => Some(Value::List(List::owned(
                ListType::Entries,
                m.entries
                    .iter()
                    .map(|e| entry_value(EntryRef::Borrowed(e)))
                    .collect(),
            ))),
            _ => None,
        },
        Value::Repo(r) => {
            let r = r.data();
            match name {
                "RepoName" => Some(Value::string(&r.name)),
                "TagName" => Some(Value::string(r.tag.as_deref().unwrap_or(""))),
                "Manifest" => Some(Value::Manifest(r.manifest)),
                "TagEntry" => Some(r.tag_entry()),
                "TagEntries" => Some(Value::List(r.tag_entries())),
                _ => None,
            }
        }
        Value::Platform(p) => match name {
            "OS" => Some(Value::string(&p.os)),
            "Architecture" => Some(Value::string(&p.architecture)),
            "Variant" => Some(Value::string(&p.variant)),
            "OSVersion" => Some(Value::string("")),
            "OSFeatures" => Some(Value::List(List::nil(ListType::Strings))),
            _ => None,
        },
        Value::Group(g) => match name {
            "SharedTags" => Some(Value::List(g.shared_tags_value())),
            "Entries" => Some(Value::List(g.entries_value())),
            _ => None,
        },
        _ => None,
    }
}

fn entry_field<'a>(entry: &EntryRef<'a>, name: &str) -> Option<Value<'a>> {
    Some(match name {
        "Maintainers" => Value::List(entry.list(NIL_MAINTAINERS, |e| &e.maintainers)),
        "Tags" => Value::List(entry.list(NIL_TAGS, |e| &e.tags)),
        "SharedTags" => Value::List(entry.list(NIL_SHARED_TAGS, |e| &e.shared_tags)),
        "Architectures" => Value::List(entry.list(NIL_ARCHITECTURES, |e| &e.architectures)),
        "Constraints" => Value::List(entry.list(NIL_CONSTRAINTS, |e| &e.constraints)),
        "GitRepo" => entry.string(|e| &e.git_repo),
        "GitFetch" => entry.string(|e| &e.git_fetch),
        "GitCommit" => entry.string(|e| &e.git_commit),
        "Directory" => entry.string(|e| &e.directory),
        "File" => entry.string(|e| &e.file),
        "Builder" => entry.string(|e| &e.builder),
        "ArchValues" => Value::Map(entry.arch_values()),
        _ => return None,
    })
}

/// `entry.Arch<Field>(arch)`: the architecture's value when set and non-empty, else the
/// entry's.
pub fn arch_value<'e>(entry: &'e Entry, arch: &str, field: &str) -> &'e str {
    if let Some(value) = entry.arch_values.get(&format!("{arch}-{field}"))
        && !value.is_empty()
    {
        return value;
    }
    match field {
        "GitRepo" => &entry.git_repo,
        "GitFetch" => &entry.git_fetch,
        "GitCommit" => &entry.git_commit,
        "Directory" => &entry.directory,
        "File" => &entry.file,
        _ => &entry.builder,
    }
}

/// `manifest.DefaultManifestEntry` (nil Maintainers, Tags, SharedTags and Constraints).
pub fn default_entry() -> OwnedEntry {
    OwnedEntry {
        entry: Entry::defaults(),
        nil: NIL_MAINTAINERS | NIL_TAGS | NIL_SHARED_TAGS | NIL_CONSTRAINTS | NIL_ARCH_VALUES,
    }
}

/// `entry.ClearDefaults(defaults)`: cleared list fields become nil slices.
pub fn clear_defaults(entry: &EntryRef<'_>, defaults: &EntryRef<'_>) -> OwnedEntry {
    let e = entry.entry();
    let d = defaults.entry();
    // Go compares the joined lists: equal lists (both empty too) are cleared to nil.
    // Go's ClearDefaults starts from a deep clone, which always has an ArchValues map.
    let mut nil = entry.nil_mask() & !super::value::NIL_ARCH_VALUES;
    for (bit, a, b) in [
        (NIL_MAINTAINERS, &e.maintainers, &d.maintainers),
        (NIL_TAGS, &e.tags, &d.tags),
        (NIL_SHARED_TAGS, &e.shared_tags, &d.shared_tags),
        (NIL_ARCHITECTURES, &e.architectures, &d.architectures),
        (NIL_CONSTRAINTS, &e.constraints, &d.constraints),
    ] {
        if a == b {
            nil |= bit;
        }
    }
    OwnedEntry {
        entry: write::clear_defaults(e, d),
        nil,
    }
}

/// A failure of a method, as `error calling NAME: ...` reports it.
pub type CallResult<'a> = Result<Value<'a>, String>;

/// Calls `method` on `receiver` with checked arguments.
pub fn call<'a>(
    host: &dyn Host<'a>,
    receiver: &Value<'a>,
    method: Method,
    args: &[Value<'a>],
) -> CallResult<'a> {
    use Method as M;
    let str_arg = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or("");
    match receiver {
        Value::NilPtr(_) => Err(NIL_DEREFERENCE.to_string()),
        Value::Entry(ev) => {
            let e = ev.entry.entry();
            let join = |list: &Vec<String>| Value::string(&list.join(", "));
            Ok(match method {
                M::String => Value::string(&write::entry_text(e)),
                M::MaintainersString => join(&e.maintainers),
                M::TagsString => join(&e.tags),
                M::SharedTagsString => join(&e.shared_tags),
                M::ArchitecturesString => join(&e.architectures),
                M::ConstraintsString => join(&e.constraints),
                M::HasTag => Value::Bool(e.has_tag(str_arg(0))),
                M::HasSharedTag => Value::Bool(e.has_shared_tag(str_arg(0))),
                M::HasArchitecture => Value::Bool(e.has_architecture(str_arg(0))),
                M::ArchGitRepo => Value::string(arch_value(e, str_arg(0), "GitRepo")),
                M::ArchGitFetch => Value::string(arch_value(e, str_arg(0), "GitFetch")),
                M::ArchGitCommit => Value::string(arch_value(e, str_arg(0), "GitCommit")),
                M::ArchDirectory => Value::string(arch_value(e, str_arg(0), "Directory")),
                M::ArchFile => Value::string(arch_value(e, str_arg(0), "File")),
                M::ArchBuilder => Value::string(arch_value(e, str_arg(0), "Builder")),
                M::ClearDefaults => {
                    let defaults = entry_arg(args, 0)?;
                    Value::owned_entry(clear_defaults(&ev.entry, &defaults))
                }
                M::SameBuildArtifacts => {
                    let other = entry_arg(args, 0)?;
                    Value::Bool(e.same_build_artifacts(other.entry()))
                }
                M::Clone => Value::owned_entry(OwnedEntry {
                    entry: e.clone(),
                    nil: 0,
                }),
                M::InvalidMaintainers => Value::List(List::owned(ListType::Strings, Vec::new())),
                _ => return Err(format!("no method {method:?} on entries")),
            })
        }
        Value::Manifest(m) => Ok(match method {
            M::String => Value::string(&write::manifest_text(m)),
            M::GetTag => match m.get_tag(str_arg(0)) {
                Some(e) => entry_ptr(EntryRef::Borrowed(e)),
                None => Value::NilPtr(PtrType::Entry),
            },
            M::GetSharedTag => Value::List(List::owned(
                ListType::EntryPtrs,
                m.shared_tag_entries(str_arg(0))
                    .into_iter()
                    .map(|i| entry_ptr(EntryRef::Borrowed(&m.entries[i])))
                    .collect(),
            )),
            M::GetAllSharedTags => Value::List(List::owned(
                ListType::Strings,
                m.all_shared_tags()
                    .into_iter()
                    .map(|t| Value::Str(Str::Borrowed(t)))
                    .collect(),
            )),
            M::GetSharedTagGroups => Value::List(List::owned(
                ListType::Groups,
                m.shared_tag_groups()
                    .into_iter()
                    .map(|g| {
                        Value::Group(Rc::new(Group {
                            shared_tags: g.shared_tags,
                            entries: g.entries.iter().map(|&i| &m.entries[i]).collect(),
                        }))
                    })
                    .collect(),
            )),
            _ => return Err(format!("no method {method:?} on manifests")),
        }),
        Value::Repo(r) => repo_call(host, r, method, args),
        Value::Platform(p) => Ok(Value::string(&p.string())),
        Value::Time(t) => Ok(match method {
            M::Unix => Value::Int(*t),
            _ => Value::string(&super::gofmt::format_time(*t)),
        }),
        other => Err(format!("no method {method:?} on {}", other.type_name())),
    }
}

/// The entry an argument holds (a nil pointer dereferences as Go's would).
fn entry_arg<'a>(args: &[Value<'a>], i: usize) -> Result<EntryRef<'a>, String> {
    match args.get(i) {
        Some(Value::Entry(e)) => Ok(e.entry.clone()),
        _ => Err(NIL_DEREFERENCE.to_string()),
    }
}

fn repo_call<'a>(
    host: &dyn Host<'a>,
    repo: &RepoRef<'a>,
    method: Method,
    args: &[Value<'a>],
) -> CallResult<'a> {
    use Method as M;
    let r = repo.data();
    let str_arg = |i: usize| {
        args.get(i)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let strings = |items: Vec<String>| {
        Value::List(List::owned(
            ListType::Strings,
            items.iter().map(|s| Value::string(s)).collect(),
        ))
    };
    Ok(match method {
        M::Identifier => Value::string(&match r.tag_entries.first() {
            Some(e) => format!("{}:{}", r.name, first_tag(e.entry())?),
            None => r.name.clone(),
        }),
        M::EntryIdentifier => {
            let e = entry_arg(args, 0)?;
            Value::string(&format!("{}:{}", r.name, first_tag(e.entry())?))
        }
        M::EntryRepo => {
            let e = entry_arg(args, 0)?;
            let tag = first_tag(e.entry())?.to_string();
            Value::Repo(RepoRef::Owned(Rc::new(RepoData {
                name: r.name.clone(),
                tag: Some(tag),
                manifest: r.manifest,
                tag_entries: vec![e],
                library: r.library,
            })))
        }
        M::SkipConstraints => {
            let e = entry_arg(args, 0)?;
            Value::Bool(host.skip_constraints(r, e.entry()))
        }
        M::Entries => Value::List(r.entries()),
        M::Tags => {
            let e = entry_arg(args, 2)?;
            let uniq = matches!(args.get(1), Some(Value::Bool(true)));
            strings(r.tags(&str_arg(0), uniq, e.entry()))
        }
        M::ArchLastStageFrom | M::ArchDockerFrom => {
            let e = entry_arg(args, 1)?;
            let froms = host.dockerfile(r, e.entry(), &str_arg(0))?;
            Value::string(&froms.last_stage)
        }
        M::DockerFrom => {
            let e = entry_arg(args, 0)?;
            let froms = host.dockerfile(r, e.entry(), host.arch())?;
            Value::string(&froms.last_stage)
        }
        M::DockerFroms => {
            let e = entry_arg(args, 0)?;
            strings(host.dockerfile(r, e.entry(), host.arch())?.froms)
        }
        M::ArchDockerFroms => {
            let e = entry_arg(args, 1)?;
            strings(host.dockerfile(r, e.entry(), &str_arg(0))?.froms)
        }
        M::ArchGitTime => {
            let e = entry_arg(args, 1)?;
            Value::Time(host.git_time(r, e.entry(), &str_arg(0))?)
        }
        M::DockerCacheName => {
            // bashbrew's dockerBuildUniqueBits for --arch: the source, the builder when
            // given, and the engine's id of every parent; sha256 of them, one a line.
            let e = entry_arg(args, 0)?;
            let entry = e.entry();
            let arch = host.arch().to_string();
            let mut bits: Vec<String> = ["GitRepo", "GitCommit", "Directory", "File"]
                .iter()
                .map(|f| arch_value(entry, &arch, f).to_string())
                .collect();
            let builder = arch_value(entry, &arch, "Builder");
            if !builder.is_empty() {
                bits.push(builder.to_string());
            }
            for from in host.dockerfile(r, entry, &arch)?.froms {
                bits.push(if from == "scratch" {
                    from
                } else {
                    host.image_id(&from)?
                });
            }
            use sha2::Digest;
            let digest = sha2::Sha256::digest(bits.join("\n").as_bytes());
            Value::string(&format!("bashbrew/cache:{}", crate::git::hex(&digest)))
        }
        M::SortedEntries => {
            let apply = matches!(args.first(), Some(Value::Bool(true)));
            let sorted = host.sorted_entries(r, apply)?;
            Value::List(List::owned(
                ListType::EntryPtrs,
                sorted.into_iter().map(entry_ptr).collect(),
            ))
        }
        _ => return Err(format!("no method {method:?} on repositories")),
    })
}

/// `entry.Tags[0]` (an entry without tags panics in Go).
fn first_tag(entry: &Entry) -> Result<&str, String> {
    entry
        .tags
        .first()
        .map(String::as_str)
        .ok_or_else(|| "runtime error: index out of range [0] with length 0".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_defaults_makes_nil_lists_like_go() {
        let global = Entry {
            maintainers: vec!["A (@a)".into()],
            architectures: vec!["amd64".into()],
            git_repo: "https://x".into(),
            git_fetch: "refs/heads/master".into(),
            directory: ".".into(),
            file: "Dockerfile".into(),
            ..Entry::default()
        };
        let defaults = EntryRef::Owned(Rc::new(default_entry()));
        let cleared = clear_defaults(&EntryRef::Borrowed(&global), &defaults);
        // Tags, SharedTags and Constraints equal the defaults' (empty): cleared to nil;
        // Architectures equal [amd64]: cleared; Maintainers differ: kept.
        assert_eq!(
            cleared.nil,
            NIL_TAGS | NIL_SHARED_TAGS | NIL_CONSTRAINTS | NIL_ARCHITECTURES
        );
        assert_eq!(cleared.entry.maintainers, vec!["A (@a)".to_string()]);
        assert_eq!(cleared.entry.git_fetch, "");
    }
}
