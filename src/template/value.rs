//! Template values: what Go's `reflect.Value` stands for in `text/template`, for the values
//! bashbrew's templates see (strings, numbers, lists, and its data model).
//!
//! Invariants: every value knows its Go type name (for error messages and `printf "%T"`),
//! whether it is a nil pointer or a nil slice (`json` prints those as `null`), and is cheap to
//! clone: model values borrow from the loaded manifests, owned ones are reference-counted.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::manifest::{Entry, Manifest};

use super::model::{Group, RepoData};

/// A string, borrowed from the data or owned.
#[derive(Clone, Debug)]
pub enum Str<'a> {
    Borrowed(&'a str),
    Owned(Rc<str>),
}

impl std::ops::Deref for Str<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Str::Borrowed(s) => s,
            Str::Owned(s) => s,
        }
    }
}

/// The Go element type of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    /// `[]string`
    Strings,
    /// `[]interface {}`
    Any,
    /// `[]*manifest.Manifest2822Entry`
    EntryPtrs,
    /// `[]manifest.Manifest2822Entry`
    Entries,
    /// `[]manifest.SharedTagGroup`
    Groups,
}

impl ListType {
    pub fn name(self) -> &'static str {
        match self {
            ListType::Strings => "[]string",
            ListType::Any => "[]interface {}",
            ListType::EntryPtrs => "[]*manifest.Manifest2822Entry",
            ListType::Entries => "[]manifest.Manifest2822Entry",
            ListType::Groups => "[]manifest.SharedTagGroup",
        }
    }
}

/// The items of a list.
#[derive(Clone, Debug)]
pub enum Items<'a> {
    /// A nil slice.
    Nil,
    /// A `[]string` borrowed from the model.
    Strs(&'a [String]),
    Owned(Rc<Vec<Value<'a>>>),
}

#[derive(Clone, Debug)]
pub struct List<'a> {
    pub ty: ListType,
    pub items: Items<'a>,
}

impl<'a> List<'a> {
    pub fn strings(items: &'a [String]) -> List<'a> {
        List {
            ty: ListType::Strings,
            items: Items::Strs(items),
        }
    }

    pub fn owned(ty: ListType, items: Vec<Value<'a>>) -> List<'a> {
        List {
            ty,
            items: Items::Owned(Rc::new(items)),
        }
    }

    pub fn nil(ty: ListType) -> List<'a> {
        List {
            ty,
            items: Items::Nil,
        }
    }

    pub fn len(&self) -> usize {
        match &self.items {
            Items::Nil => 0,
            Items::Strs(s) => s.len(),
            Items::Owned(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_nil(&self) -> bool {
        matches!(self.items, Items::Nil)
    }

    /// The element at `i` (which must be in range), addressable as slice elements are.
    pub fn get(&self, i: usize) -> Value<'a> {
        match &self.items {
            Items::Nil => Value::Invalid,
            Items::Strs(s) => Value::Str(Str::Borrowed(&s[i])),
            Items::Owned(v) => v[i].clone().addressable(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Value<'a>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// `list[from..to]`, as Go slices it (sharing no state: values are cheap to clone).
    pub fn slice(&self, from: usize, to: usize) -> List<'a> {
        match &self.items {
            Items::Nil => self.clone(),
            Items::Strs(s) => List::strings(&s[from..to]),
            Items::Owned(v) => List::owned(self.ty, v[from..to].to_vec()),
        }
    }
}

/// An entry the data model hands out: one of the loaded manifests' entries, or one made while
/// the template runs (`ClearDefaults`, `defaults`), whose list fields may be nil.
#[derive(Clone, Debug)]
pub enum EntryRef<'a> {
    Borrowed(&'a Entry),
    Owned(Rc<OwnedEntry>),
}

/// An entry made during execution, with Go's nil-ness of its list fields.
#[derive(Clone, Debug, Default)]
pub struct OwnedEntry {
    pub entry: Entry,
    /// Bits of [`NIL_MAINTAINERS`] ... [`NIL_CONSTRAINTS`]: list fields that are nil slices.
    pub nil: u8,
}

pub const NIL_MAINTAINERS: u8 = 1;
pub const NIL_TAGS: u8 = 2;
pub const NIL_SHARED_TAGS: u8 = 4;
pub const NIL_ARCHITECTURES: u8 = 8;
pub const NIL_CONSTRAINTS: u8 = 16;
/// `ArchValues` is a nil map.
pub const NIL_ARCH_VALUES: u8 = 32;

/// A `map[string]string` (an entry's `ArchValues`).
#[derive(Clone, Debug)]
pub enum MapRef<'a> {
    Nil,
    Borrowed(&'a BTreeMap<String, String>),
    Owned(Rc<BTreeMap<String, String>>),
}

impl MapRef<'_> {
    pub fn map(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            MapRef::Nil => None,
            MapRef::Borrowed(m) => Some(m),
            MapRef::Owned(m) => Some(m),
        }
    }

    pub fn len(&self) -> usize {
        self.map().map_or(0, BTreeMap::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> EntryRef<'a> {
    pub fn entry(&self) -> &Entry {
        match self {
            EntryRef::Borrowed(e) => e,
            EntryRef::Owned(o) => &o.entry,
        }
    }

    pub fn nil_mask(&self) -> u8 {
        match self {
            EntryRef::Borrowed(_) => 0,
            EntryRef::Owned(o) => o.nil,
        }
    }

    /// A list field as a template value: borrowed when the entry is, nil when Go's is.
    pub fn list(&self, bit: u8, pick: fn(&Entry) -> &Vec<String>) -> List<'a> {
        match self {
            EntryRef::Borrowed(e) => List::strings(pick(e)),
            EntryRef::Owned(o) if o.nil & bit != 0 => List::nil(ListType::Strings),
            EntryRef::Owned(o) => List::owned(
                ListType::Strings,
                pick(&o.entry)
                    .iter()
                    .map(|s| Value::Str(Str::Owned(Rc::from(s.as_str()))))
                    .collect(),
            ),
        }
    }

    /// `ArchValues` as a template value.
    pub fn arch_values(&self) -> MapRef<'a> {
        match self {
            EntryRef::Borrowed(e) => MapRef::Borrowed(&e.arch_values),
            EntryRef::Owned(o) if o.nil & NIL_ARCH_VALUES != 0 => MapRef::Nil,
            EntryRef::Owned(o) => MapRef::Owned(Rc::new(o.entry.arch_values.clone())),
        }
    }

    /// A string field as a template value.
    pub fn string(&self, pick: fn(&Entry) -> &String) -> Value<'a> {
        match self {
            EntryRef::Borrowed(e) => Value::Str(Str::Borrowed(pick(e))),
            EntryRef::Owned(o) => Value::string(pick(&o.entry).as_str()),
        }
    }
}

/// `manifest.Manifest2822Entry` or `*manifest.Manifest2822Entry`.
#[derive(Clone, Debug)]
pub struct EntryVal<'a> {
    pub entry: EntryRef<'a>,
    /// A pointer (`*manifest.Manifest2822Entry`) rather than a struct value.
    pub ptr: bool,
    /// A struct value that Go could take the address of (a slice element or a field of a
    /// pointed-to struct), so it may be passed where a pointer is wanted.
    pub addressable: bool,
}

/// `*main.Repo`.
#[derive(Clone, Debug)]
pub enum RepoRef<'a> {
    Borrowed(&'a RepoData<'a>),
    Owned(Rc<RepoData<'a>>),
}

impl<'a> RepoRef<'a> {
    pub fn data(&self) -> &RepoData<'a> {
        match self {
            RepoRef::Borrowed(r) => r,
            RepoRef::Owned(r) => r,
        }
    }
}

/// The pointer types a nil pointer can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtrType {
    Entry,
    Platform,
    Repo,
    Manifest,
}

impl PtrType {
    pub fn name(self) -> &'static str {
        match self {
            PtrType::Entry => "*manifest.Manifest2822Entry",
            PtrType::Platform => "*architecture.OCIPlatform",
            PtrType::Repo => "*main.Repo",
            PtrType::Manifest => "*manifest.Manifest2822",
        }
    }
}

/// `*architecture.OCIPlatform` (bashbrew's `ocispec.Platform`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

impl Platform {
    pub fn of(p: crate::arch::Platform) -> Platform {
        Platform {
            os: p.os.to_string(),
            architecture: p.architecture.to_string(),
            variant: p.variant.unwrap_or_default().to_string(),
        }
    }

    /// `path.Join(OS, Architecture, Variant)`.
    pub fn string(&self) -> String {
        [&self.os, &self.architecture, &self.variant]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// A template value (Go's `reflect.Value` in `text/template`).
#[derive(Clone, Debug, Default)]
pub enum Value<'a> {
    /// No value at all (`reflect.Value{}`): prints `<no value>`.
    #[default]
    Invalid,
    /// A nil `interface{}`: prints `<nil>`.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Str<'a>),
    List(List<'a>),
    /// `map[string]string`.
    Map(MapRef<'a>),
    Entry(EntryVal<'a>),
    /// A typed nil pointer.
    NilPtr(PtrType),
    Repo(RepoRef<'a>),
    Manifest(&'a Manifest),
    Platform(Rc<Platform>),
    Group(Rc<Group<'a>>),
    /// `time.Time`, in seconds since the epoch (UTC).
    Time(i64),
}

impl<'a> Value<'a> {
    pub fn string(s: &str) -> Value<'a> {
        Value::Str(Str::Owned(Rc::from(s)))
    }

    pub fn entry_ptr(entry: &'a Entry) -> Value<'a> {
        Value::Entry(EntryVal {
            entry: EntryRef::Borrowed(entry),
            ptr: true,
            addressable: false,
        })
    }

    /// An entry struct value that is not addressable (a function's result).
    pub fn owned_entry(entry: OwnedEntry) -> Value<'a> {
        Value::Entry(EntryVal {
            entry: EntryRef::Owned(Rc::new(entry)),
            ptr: false,
            addressable: false,
        })
    }

    /// The same value, marked addressable (as a slice element or struct field is).
    pub fn addressable(self) -> Value<'a> {
        match self {
            Value::Entry(mut e) if !e.ptr => {
                e.addressable = true;
                Value::Entry(e)
            }
            other => other,
        }
    }

    pub fn is_valid(&self) -> bool {
        !matches!(self, Value::Invalid)
    }

    /// Go's type name (`reflect.Type.String()`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Invalid => "<invalid reflect.Value>",
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(l) => l.ty.name(),
            Value::Map(_) => "map[string]string",
            Value::Entry(e) if e.ptr => "*manifest.Manifest2822Entry",
            Value::Entry(_) => "manifest.Manifest2822Entry",
            Value::NilPtr(t) => t.name(),
            Value::Repo(_) => "*main.Repo",
            Value::Manifest(_) => "*manifest.Manifest2822",
            Value::Platform(_) => "*architecture.OCIPlatform",
            Value::Group(_) => "manifest.SharedTagGroup",
            Value::Time(_) => "time.Time",
        }
    }

    /// Go's `reflect.Kind` name, for messages that print kinds.
    pub fn is_pointer(&self) -> bool {
        matches!(
            self,
            Value::NilPtr(_)
                | Value::Repo(_)
                | Value::Manifest(_)
                | Value::Platform(_)
                | Value::Entry(EntryVal { ptr: true, .. })
        )
    }

    /// Go's truth (`template.IsTrue`): false, 0, nil and empty things are false; structs
    /// are true.
    pub fn truth(&self) -> bool {
        match self {
            Value::Invalid | Value::Nil | Value::NilPtr(_) => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Entry(_)
            | Value::Repo(_)
            | Value::Manifest(_)
            | Value::Platform(_)
            | Value::Group(_)
            | Value::Time(_) => true,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}
