//! Rules: raw paragraphs to a validated [`Manifest`], collecting every problem with its span.
//!
//! bashbrew's `manifest/rfc2822.go` is the reference for valid files: inheritance from the
//! global paragraph, defaults, list splitting, de-duplication and the merging of entries that
//! build the same artifacts all match it. Where bashbrew is silent or unsafe keg is stricter
//! (see docs/manifest.md). Invariants: validation never stops at the first problem; a
//! paragraph with an error does not reach the model; the model is returned only when there
//! are no errors (warnings may accompany it).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::model::{ARCH_FIELDS, Builder, Entry, Manifest};
use super::parse::{self, Piece, RawField, RawParagraph};
use crate::arch;
use crate::span::{Diagnostic, LineIndex, Severity, Span};

/// A manifest that passed validation, with the warnings it produced.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub manifest: Manifest,
    pub warnings: Vec<Diagnostic>,
}

const LIST_FIELDS: &[&str] = &[
    "Maintainers",
    "Tags",
    "SharedTags",
    "Architectures",
    "Constraints",
];
const SCALAR_FIELDS: &[&str] = &[
    "GitRepo",
    "GitFetch",
    "GitCommit",
    "Directory",
    "File",
    "Builder",
];

const MAINTAINERS_FORMAT: &str =
    "Full Name <contact-email-or-url> (@github-handle) OR Full Name (@github-handle)";

/// Parses and validates one manifest file. `file` names it in diagnostics.
///
/// On success the warnings come with the model; on failure every diagnostic, errors and
/// warnings, sorted by position.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Parsed, Vec<Diagnostic>> {
    // Valid UTF-8 (the usual case) is borrowed as is; only invalid input is copied, with its
    // bad bytes replaced, and reported.
    let (text, valid_utf8) = match std::str::from_utf8(bytes) {
        Ok(text) => (Cow::Borrowed(text), true),
        Err(_) => (String::from_utf8_lossy(bytes), false),
    };
    let index = LineIndex::new(&text);
    let mut v = Validator {
        file,
        index: &index,
        diagnostics: Vec::new(),
        error_count: 0,
        manifest: Manifest::default(),
        tag_owner: FastMap::default(),
        shared_tag_owner: FastMap::default(),
        artifacts: FastMap::default(),
        next_same_artifacts: Vec::new(),
        keys: Keys::default(),
        fields_seen: Vec::new(),
        items: Vec::new(),
    };
    if !valid_utf8 {
        v.check_utf8(bytes);
    }
    let paragraphs = parse::paragraphs(&text);
    // Sized once for the whole file: growing these (entries are large) showed in profiles.
    v.manifest
        .entries
        .reserve(paragraphs.len().saturating_sub(1));
    v.next_same_artifacts.reserve(paragraphs.len());
    v.artifacts.reserve(paragraphs.len());
    v.tag_owner.reserve(paragraphs.len() * 4);
    for (i, paragraph) in paragraphs.iter().enumerate() {
        v.paragraph(paragraph, i == 0);
    }
    if paragraphs.is_empty() {
        let span = index.span(0, 0);
        v.error(
            span,
            "missing Maintainers: the file has no paragraphs".to_string(),
        );
    }
    let Validator {
        mut diagnostics,
        manifest,
        ..
    } = v;
    diagnostics.sort_by_key(|d| (d.span.offset, d.severity));
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        Err(diagnostics)
    } else {
        Ok(Parsed {
            manifest,
            warnings: diagnostics,
        })
    }
}

struct Validator<'a> {
    file: &'a str,
    index: &'a LineIndex<'a>,
    diagnostics: Vec<Diagnostic>,
    /// How many of `diagnostics` are errors.
    error_count: usize,
    manifest: Manifest,
    /// Which entry has each tag, and the first entry with each shared tag; keyed by the
    /// tags' text in the source (no copies).
    tag_owner: FastMap<Cow<'a, str>, usize>,
    shared_tag_owner: FastMap<Cow<'a, str>, usize>,
    /// Entries bucketed by a hash of what most often tells builds apart (Directory and
    /// GitCommit): the first and last entry of each bucket, and for every entry the next one
    /// in its bucket, so finding an entry to merge into does not compare against them all.
    artifacts: FastMap<u64, (usize, usize)>,
    next_same_artifacts: Vec<Option<usize>>,
    /// The current paragraph's Tags and SharedTags as source text, item for item the same
    /// as the entry's `tags` and `shared_tags`.
    keys: Keys<'a>,
    /// Buffers reused from paragraph to paragraph and field to field.
    fields_seen: Vec<(&'a str, usize)>,
    items: Vec<Item<'a>>,
}

#[derive(Default)]
struct Keys<'a> {
    tags: Vec<Cow<'a, str>>,
    shared: Vec<Cow<'a, str>>,
    /// The global paragraph's SharedTags, which entries without their own inherit.
    global_shared: Vec<Cow<'a, str>>,
}

/// Maps keyed by a manifest's own short strings (tags): no untrusted key flooding to guard
/// against, so a cheap hash beats SipHash, which showed up in profiles.
type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
type FastSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// The multiply-rotate hash of rustc's FxHasher, a few lines instead of a dependency.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }

    fn write_usize(&mut self, i: usize) {
        self.write(&i.to_le_bytes());
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the low bits weak; hashbrown picks buckets with them.
        self.0.rotate_left(26)
    }
}

/// One list item with the byte offset of its first character.
struct Item<'t> {
    /// Borrowed from the source when the item lies on one line (the usual case).
    text: Cow<'t, str>,
    offset: usize,
}

/// What list items are trimmed of.
const ITEM_SPACE: [char; 4] = ['\n', '\r', '\t', ' '];

impl<'a> Validator<'a> {
    fn error(&mut self, span: Span, message: String) {
        let d = self
            .index
            .diagnostic(Severity::Error, self.file, span, message);
        self.diagnostics.push(d);
        self.error_count += 1;
    }

    fn warning(&mut self, span: Span, message: String) {
        let d = self
            .index
            .diagnostic(Severity::Warning, self.file, span, message);
        self.diagnostics.push(d);
    }

    fn errors(&self) -> usize {
        self.error_count
    }

    fn check_utf8(&mut self, bytes: &[u8]) {
        let mut consumed = 0;
        let mut lossy_offset = 0;
        for chunk in bytes.utf8_chunks() {
            consumed += chunk.valid().len();
            lossy_offset += chunk.valid().len();
            if !chunk.invalid().is_empty() {
                let span = self.index.span(lossy_offset, '\u{fffd}'.len_utf8());
                let shown: Vec<String> = chunk
                    .invalid()
                    .iter()
                    .map(|b| format!("0x{b:02x}"))
                    .collect();
                self.error(
                    span,
                    format!(
                        "invalid UTF-8 at byte {consumed} ({}): manifests must be UTF-8 text",
                        shown.join(" ")
                    ),
                );
                consumed += chunk.invalid().len();
                lossy_offset += '\u{fffd}'.len_utf8();
            }
        }
    }

    fn paragraph(&mut self, paragraph: &RawParagraph<'a>, global: bool) {
        let errors_before = self.errors();
        self.keys.tags.clear();
        self.keys.shared.clear();
        for stray in &paragraph.stray_lines {
            self.stray_line(stray);
        }
        let mut entry = if global {
            Entry::defaults()
        } else {
            self.inherited(paragraph)
        };
        entry.span = self.index.span(paragraph.offset, 0);
        let mut seen = std::mem::take(&mut self.fields_seen);
        seen.clear();
        let mut tags_field = None;
        for field in &paragraph.fields {
            if let Some(&(_, first)) = seen.iter().find(|(name, _)| *name == field.name) {
                let line = self.index.span(first, 0).line;
                let span = self.index.span(field.name_offset, field.name.len());
                self.error(
                    span,
                    format!(
                        "{} given twice in one paragraph (first at line {line}): expected each field at most once",
                        field.name
                    ),
                );
                continue;
            }
            seen.push((field.name, field.name_offset));
            if field.name == "Tags" {
                tags_field = Some(field);
            }
            self.field(&mut entry, field);
        }
        if !global {
            // A list given with no valid value keeps the inherited one.
            let defaults = &self.manifest.global;
            if entry.architectures.is_empty() {
                entry.architectures.clone_from(&defaults.architectures);
            }
            if entry.shared_tags.is_empty() {
                entry.shared_tags.clone_from(&defaults.shared_tags);
                self.keys.shared.clone_from(&self.keys.global_shared);
            }
        }
        dedup_sorted(&mut entry.architectures);
        dedup_keep_order(&mut entry.shared_tags);
        dedup_keep_order(&mut self.keys.shared);
        debug_assert!(entry.tags.iter().eq(self.keys.tags.iter()));
        debug_assert!(entry.shared_tags.iter().eq(self.keys.shared.iter()));
        let head = self.index.span(
            paragraph.offset,
            paragraph.fields.first().map_or(0, |f| f.name.len()),
        );
        if global {
            if entry.maintainers.is_empty() && !seen.iter().any(|(n, _)| *n == "Maintainers") {
                self.error(
                    head,
                    "missing Maintainers: the first (global) paragraph must name the maintainers"
                        .to_string(),
                );
            }
            if let Some(tags) = tags_field {
                let span = self.index.span(tags.name_offset, tags.name.len());
                self.error(
                    span,
                    "global Tags not permitted: the first paragraph holds defaults; tags belong to entries".to_string(),
                );
            }
            self.manifest.global = entry;
            self.keys.global_shared = std::mem::take(&mut self.keys.shared);
            self.fields_seen = seen;
            return;
        }
        self.entry_requirements(&entry, head, &seen);
        self.fields_seen = seen;
        let valid = self.errors() == errors_before;
        self.add_entry(entry, tags_field, valid);
    }

    /// A new entry with the global paragraph's values, except those `paragraph` replaces
    /// (its scalar fields; SharedTags and Architectures are filled in afterwards when the
    /// paragraph gives none), which are not copied only to be overwritten.
    fn inherited(&self, paragraph: &RawParagraph<'a>) -> Entry {
        let defaults = &self.manifest.global;
        let given = |name: &str| paragraph.fields.iter().any(|f| f.name == name);
        let scalar = |name: &str, value: &String| {
            if given(name) {
                String::new()
            } else {
                value.clone()
            }
        };
        Entry {
            maintainers: defaults.maintainers.clone(),
            tags: Vec::new(),
            shared_tags: Vec::new(),
            architectures: Vec::new(),
            git_repo: scalar("GitRepo", &defaults.git_repo),
            git_fetch: scalar("GitFetch", &defaults.git_fetch),
            git_commit: scalar("GitCommit", &defaults.git_commit),
            directory: scalar("Directory", &defaults.directory),
            file: scalar("File", &defaults.file),
            builder: scalar("Builder", &defaults.builder),
            arch_values: defaults.arch_values.clone(),
            constraints: defaults.constraints.clone(),
            span: defaults.span,
        }
    }

    fn stray_line(&mut self, stray: &Piece<'_>) {
        if stray.text.starts_with([' ', '\t']) {
            let lead = stray.text.len() - stray.text.trim_start().len();
            let span = self
                .index
                .span(stray.offset + lead, stray.text.trim().len());
            self.error(
                span,
                "continuation line without a field: expected `Field: value` before it, with no blank line between"
                    .to_string(),
            );
            return;
        }
        let word = stray
            .text
            .find([':', ' ', '\t', '#'])
            .unwrap_or(stray.text.len());
        let (span, message) = if word == 0 {
            (
                self.index.span(stray.offset, 1),
                "expected a field name before `:`".to_string(),
            )
        } else {
            (
                self.index.span(stray.offset + word, 0),
                format!(
                    "expected `:` after field name `{}` (a line is `Field: value`)",
                    &stray.text[..word]
                ),
            )
        };
        self.error(span, message);
    }

    fn field(&mut self, entry: &mut Entry, field: &RawField<'a>) {
        if LIST_FIELDS.contains(&field.name) {
            self.list_items(field);
            self.list_field(entry, field.name);
        } else if SCALAR_FIELDS.contains(&field.name) {
            if let Some((value, offset)) = self.scalar(field) {
                self.scalar_field(entry, field.name, value, offset);
            }
        } else if let Some((prefix, suffix)) = arch_field(field.name) {
            if !arch::is_known(prefix) {
                // As in bashbrew, the value is kept (and printed back by `cat`), but no
                // build uses it: a new upstream architecture must not break every run.
                let span = self.index.span(field.name_offset, prefix.len());
                self.warning(
                    span,
                    format!(
                        "unknown architecture {prefix:?} in {}: it is kept but never used (known: {})",
                        field.name,
                        arch::names().collect::<Vec<_>>().join(", ")
                    ),
                );
                if let Some((value, _)) = self.scalar(field) {
                    entry.arch_values.insert(field.name.to_string(), value);
                }
                return;
            }
            if let Some((value, offset)) = self.scalar(field)
                && (value.is_empty() || self.check_scalar(suffix, &value, offset))
            {
                let value = if suffix == "Directory" && !value.is_empty() {
                    clean_path(&value)
                } else {
                    value
                };
                entry.arch_values.insert(field.name.to_string(), value);
            }
        } else {
            let hint = suggestion(field.name)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            let span = self.index.span(field.name_offset, field.name.len());
            self.warning(
                span,
                format!("unknown field `{}` is ignored{hint}", field.name),
            );
        }
    }

    /// The items of a list field into `self.items`, reporting empty ones and ones that span
    /// lines.
    fn list_items(&mut self, field: &RawField<'a>) {
        let mut items = std::mem::take(&mut self.items);
        items.clear();
        if let [piece] = field.pieces[..] {
            // One line: items are slices of it, no copies. (A byte loop: `split` and `find`
            // set up a memchr search per call, which dominated for these short strings.)
            let bytes = piece.text.as_bytes();
            let mut start = 0;
            for end in (0..=bytes.len()).filter(|&i| i == bytes.len() || bytes[i] == b',') {
                let part = &piece.text[start..end];
                let text = part.trim_matches(ITEM_SPACE);
                let offset = if text.is_empty() {
                    end
                } else {
                    end - part.trim_start_matches(ITEM_SPACE).len()
                };
                items.push(Item {
                    text: Cow::Borrowed(text),
                    offset: piece.offset + offset,
                });
                start = end + 1;
            }
        } else {
            Self::multi_line_items(field, &mut items);
        }
        let (offset, _) = field.value_range();
        if items.len() == 1 && items[0].text.is_empty() {
            // An empty list is an error, as in bashbrew (its decoder reads one empty item),
            // except Constraints, which may be empty.
            if field.name != "Constraints" {
                let span = self.index.span(offset, 0);
                self.error(
                    span,
                    format!(
                        "{} has no value: expected a comma-separated list",
                        field.name
                    ),
                );
            }
            items.clear();
            self.items = items;
            return;
        }
        items.retain(|item| {
            // Only items built from several lines can hold a line break.
            let line_break = match &item.text {
                Cow::Owned(text) => text.find('\n'),
                Cow::Borrowed(_) => None,
            };
            if let Some(line_break) = line_break {
                let span = self.index.span(item.offset, line_break);
                self.error(
                    span,
                    format!(
                        "invalid {} value {:?}: one item spans two lines; expected a comma between items",
                        field.name,
                        item.text.replace('\n', " ")
                    ),
                );
                false
            } else if item.text.is_empty() {
                let span = self.index.span(item.offset, 0);
                self.error(
                    span,
                    format!(
                        "invalid {} value: empty item (a stray comma?); expected a comma-separated list",
                        field.name
                    ),
                );
                false
            } else {
                true
            }
        });
        self.items = items;
    }

    /// Items of a value with continuation lines. An item may run across a line break (which
    /// `list_items` reports); one that does not is still a slice of its line.
    fn multi_line_items(field: &RawField<'a>, items: &mut Vec<Item<'a>>) {
        // The parts of the current item: (offset, text) of its share of each line.
        let mut parts: Vec<(usize, &'a str)> = Vec::new();
        let finish = |parts: &mut Vec<(usize, &'a str)>, end: usize, items: &mut Vec<Item<'a>>| {
            let start = parts.iter().find_map(|&(at, text)| {
                text.find(|c| !matches!(c, ' ' | '\t' | '\r'))
                    .map(|i| at + i)
            });
            let mut filled = parts
                .iter()
                .map(|&(_, text)| text.trim_matches(ITEM_SPACE))
                .filter(|text| !text.is_empty());
            let text = match (filled.next(), filled.next()) {
                (None, _) => Cow::Borrowed(""),
                (Some(one), None) => Cow::Borrowed(one),
                _ => {
                    let lines: Vec<&str> = parts.iter().map(|&(_, text)| text).collect();
                    Cow::Owned(lines.join("\n").trim_matches(ITEM_SPACE).to_string())
                }
            };
            items.push(Item {
                text,
                offset: start.unwrap_or(end),
            });
            parts.clear();
        };
        for piece in field.pieces.iter() {
            let mut at = 0;
            while let Some(comma) = piece.text[at..].find(',') {
                parts.push((piece.offset + at, &piece.text[at..at + comma]));
                finish(&mut parts, piece.offset + at + comma, items);
                at += comma + 1;
            }
            parts.push((piece.offset + at, &piece.text[at..]));
        }
        let (offset, len) = field.value_range();
        finish(&mut parts, offset + len, items);
    }

    /// Checks the items `list_items` left in `self.items` and sets the field.
    fn list_field(&mut self, entry: &mut Entry, name: &str) {
        let mut items = std::mem::take(&mut self.items);
        let mut values = Vec::with_capacity(items.len());
        let mut keys = Vec::new();
        for item in items.drain(..) {
            let problem = match name {
                "Maintainers" if !valid_maintainer(&item.text) => Some(format!(
                    "invalid Maintainers: {:?} (expected format {MAINTAINERS_FORMAT:?})",
                    item.text
                )),
                "Tags" | "SharedTags" if !valid_tag(&item.text) => Some(format!(
                    "invalid {name} value {:?}: expected a tag of ASCII letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, at most 128 characters",
                    item.text
                )),
                "Architectures" if !arch::is_known(&item.text) => Some(format!(
                    "invalid Architectures value {:?}: expected one of {}",
                    item.text,
                    arch::names().collect::<Vec<_>>().join(", ")
                )),
                _ => None,
            };
            match problem {
                Some(message) => {
                    let span = self.index.span(item.offset, item.text.len());
                    self.error(span, message);
                }
                None => {
                    values.push(item.text.to_string());
                    if matches!(name, "Tags" | "SharedTags") {
                        keys.push(item.text);
                    }
                }
            }
        }
        self.items = items;
        match name {
            "Maintainers" => entry.maintainers.extend(values),
            "Tags" => {
                entry.tags.extend(values);
                self.keys.tags.extend(keys);
            }
            "SharedTags" if !values.is_empty() => {
                entry.shared_tags = values;
                self.keys.shared = keys;
            }
            "Architectures" if !values.is_empty() => entry.architectures = values,
            "Constraints" => entry.constraints.extend(values),
            _ => {}
        }
    }

    /// The single-line value of a scalar field, trimmed, with its offset.
    fn scalar(&mut self, field: &RawField<'_>) -> Option<(String, usize)> {
        if let Some(extra) = field.pieces.get(1) {
            let span = self.index.span(extra.offset, extra.text.len());
            self.error(
                span,
                format!(
                    "{} takes a single value: expected no continuation line",
                    field.name
                ),
            );
            return None;
        }
        let piece = field.pieces[0];
        Some((piece.text.trim_end().to_string(), piece.offset))
    }

    fn scalar_field(&mut self, entry: &mut Entry, name: &str, value: String, offset: usize) {
        if value.is_empty() && name != "Builder" {
            let span = self.index.span(offset, 0);
            self.error(
                span,
                format!("{name} has no value: expected a value after `:`"),
            );
            return;
        }
        if !self.check_scalar(name, &value, offset) {
            return;
        }
        match name {
            "GitRepo" => entry.git_repo = value,
            "GitFetch" => entry.git_fetch = value,
            "GitCommit" => entry.git_commit = value,
            "Directory" if is_clean(&value) => entry.directory = value,
            "Directory" => entry.directory = clean_path(&value),
            "File" => entry.file = value,
            "Builder" => entry.builder = value,
            _ => {}
        }
    }

    /// Checks a value of an overridable field (`name` without arch prefix); reports and
    /// returns false when it is invalid.
    fn check_scalar(&mut self, name: &str, value: &str, offset: usize) -> bool {
        let problem = match name {
            "GitFetch" if !valid_git_fetch(value) => {
                "expected \"refs/heads/...\" or \"refs/tags/...\" (no `*`, `?` or `:`)".to_string()
            }
            "GitCommit" if !valid_commit(value) => {
                "expected a full 40- or 64-hex commit id (lowercase), not a tag, ref or abbreviation"
                    .to_string()
            }
            "Directory" | "File" => match path_problem(name, value) {
                Some(problem) => problem.to_string(),
                None => return true,
            },
            "Builder" if Builder::parse(value).is_none() => {
                "expected buildkit, classic or oci-import (or no value for the default, classic)"
                    .to_string()
            }
            _ => return true,
        };
        let span = self.index.span(offset, value.len());
        self.error(span, format!("invalid {name} {value:?}: {problem}"));
        false
    }

    /// Checks what an entry needs after inheritance; `given` holds the fields its paragraph
    /// names (a field given with an invalid value is reported there, not as missing).
    fn entry_requirements(&mut self, entry: &Entry, head: Span, given: &[(&str, usize)]) {
        let is_given = |field: &str| given.iter().any(|(g, _)| *g == field);
        if entry.tags.is_empty() {
            if is_given("Tags") {
                return; // reported where the invalid tags are
            }
            self.error(
                head,
                "missing Tags: every entry after the first paragraph needs at least one tag"
                    .to_string(),
            );
            return;
        }
        let missing: Vec<&str> = [
            ("GitRepo", &entry.git_repo),
            ("GitFetch", &entry.git_fetch),
            ("GitCommit", &entry.git_commit),
        ]
        .iter()
        .filter(|(name, value)| value.is_empty() && !is_given(name))
        .map(|(name, _)| *name)
        .collect();
        if !missing.is_empty() {
            self.error(
                head,
                format!(
                    "Tags {:?} missing {}: expected it here or in the global paragraph",
                    entry.tags.join(", "),
                    missing.join(", ")
                ),
            );
        }
    }

    /// bashbrew's AddEntry: the three tag checks, then (when `valid`) merge into an entry
    /// that builds the same artifacts, or append.
    fn add_entry(&mut self, entry: Entry, tags_field: Option<&RawField<'_>>, valid: bool) {
        let tags_string = || entry.tags.join(", ");
        let mut problems = Vec::new();
        let mut seen = Seen::new(self.keys.tags.len() + self.keys.shared.len());
        let tags_of = |i: &usize| self.manifest.entries[*i].tags.join(", ");
        for tag in &self.keys.tags {
            let tag: &str = tag;
            if let Some(other) = self.tag_owner.get(tag) {
                problems.push(format!(
                    "Tags {:?} includes duplicate tag: {tag:?} (duplicated in {:?})",
                    tags_string(),
                    tags_of(other)
                ));
            } else if let Some(other) = self.shared_tag_owner.get(tag) {
                problems.push(format!(
                    "Tags {:?} includes tag conflicting with a shared tag: {tag:?} (shared tag in {:?})",
                    tags_string(),
                    tags_of(other)
                ));
            } else if !seen.insert(tag) {
                problems.push(format!(
                    "Tags {:?} includes duplicate tag: {tag:?}",
                    tags_string()
                ));
            }
        }
        for tag in &self.keys.shared {
            let tag: &str = tag;
            if let Some(other) = self.tag_owner.get(tag) {
                problems.push(format!(
                    "Tags {:?} includes conflicting shared tag: {tag:?} (duplicated in {:?})",
                    tags_string(),
                    tags_of(other)
                ));
            } else if !seen.insert(tag) {
                problems.push(format!(
                    "Tags {:?} includes duplicate tag: {tag:?} (in SharedTags)",
                    tags_string()
                ));
            }
        }
        if !problems.is_empty() || !valid {
            let span = tags_field.map_or(entry.span, |f| {
                let (offset, len) = f.value_range();
                self.index.span(offset, len)
            });
            for problem in problems {
                self.error(span, problem);
            }
            return;
        }
        let entries = &mut self.manifest.entries;
        let bucket = artifacts_hash(&entry);
        let mut candidate = self.artifacts.get(&bucket).map(|&(first, _)| first);
        let mut target = entries.len();
        while let Some(i) = candidate {
            if entries[i].same_build_artifacts(&entry) {
                target = i;
                break;
            }
            candidate = self.next_same_artifacts[i];
        }
        if target == entries.len() {
            self.next_same_artifacts.push(None);
            match self.artifacts.get_mut(&bucket) {
                Some((_, last)) => {
                    self.next_same_artifacts[*last] = Some(target);
                    *last = target;
                }
                None => {
                    self.artifacts.insert(bucket, (target, target));
                }
            }
        }
        for tag in &self.keys.tags {
            self.tag_owner.insert(tag.clone(), target);
        }
        for tag in &self.keys.shared {
            self.shared_tag_owner.entry(tag.clone()).or_insert(target);
        }
        if target == entries.len() {
            entries.push(entry);
        } else {
            let existing = &mut entries[target];
            existing.tags.extend(entry.tags);
            existing.shared_tags.extend(entry.shared_tags);
            dedup_keep_order(&mut existing.shared_tags);
        }
    }
}

/// The bucket of entries that may build the same artifacts as `entry` (equal Directory and
/// GitCommit); `Entry::same_build_artifacts` decides.
fn artifacts_hash(entry: &Entry) -> u64 {
    let mut hasher = FxHasher::default();
    entry.directory.hash(&mut hasher);
    entry.git_commit.hash(&mut hasher);
    hasher.finish()
}

/// The tags of one entry seen so far: a short list searched in place, without an
/// allocation (entries have a handful of tags), a hash set for long ones.
#[allow(clippy::large_enum_variant)] // one short-lived value on the stack, by design
enum Seen<'e> {
    Few([&'e str; 16], usize),
    Many(FastSet<&'e str>),
}

impl<'e> Seen<'e> {
    fn new(capacity: usize) -> Self {
        if capacity <= 16 {
            Seen::Few([""; 16], 0)
        } else {
            Seen::Many(FastSet::with_capacity_and_hasher(
                capacity,
                Default::default(),
            ))
        }
    }

    /// Adds `tag`; false when it was there already.
    fn insert(&mut self, tag: &'e str) -> bool {
        match self {
            Seen::Few(tags, len) if tags[..*len].contains(&tag) => false,
            Seen::Few(tags, len) => {
                tags[*len] = tag;
                *len += 1;
                true
            }
            Seen::Many(tags) => tags.insert(tag),
        }
    }
}

/// Splits `arm64v8-GitCommit` into (`arm64v8`, `GitCommit`) for an overridable field.
fn arch_field(name: &str) -> Option<(&str, &str)> {
    let (prefix, suffix) = name.rsplit_once('-')?;
    ARCH_FIELDS
        .contains(&suffix)
        .then_some((prefix, suffix))
        .filter(|(prefix, _)| !prefix.is_empty())
}

/// A known field name close to an unknown one, for "did you mean".
fn suggestion(name: &str) -> Option<String> {
    let (prefix, base) = match name.rsplit_once('-') {
        Some((prefix, base)) if arch::is_known(prefix) => (format!("{prefix}-"), base),
        _ => (String::new(), name),
    };
    let candidates: Vec<&str> = if prefix.is_empty() {
        LIST_FIELDS.iter().chain(SCALAR_FIELDS).copied().collect()
    } else {
        ARCH_FIELDS.to_vec()
    };
    candidates
        .into_iter()
        .map(|c| {
            (
                edit_distance(&base.to_ascii_lowercase(), &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| format!("{prefix}{c}"))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `^\w[\w.-]{0,127}$` with Go's ASCII-only `\w` (so bytes will do: any non-ASCII
/// character fails).
pub fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    bytes.first().is_some_and(|&b| is_word_byte(b))
        && bytes.len() <= 128
        && bytes[1..]
            .iter()
            .all(|&b| is_word_byte(b) || b == b'.' || b == b'-')
}

/// `^refs/(heads|tags)/[^*?:]+$`
fn valid_git_fetch(value: &str) -> bool {
    let rest = value
        .strip_prefix("refs/heads/")
        .or_else(|| value.strip_prefix("refs/tags/"));
    rest.is_some_and(|r| !r.is_empty() && !r.contains(['*', '?', ':', '\n']))
}

fn valid_commit(value: &str) -> bool {
    (value.len() == 40 || value.len() == 64)
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// bashbrew's maintainer format:
/// `^([^\s<>()][^<>()]*)(?:\s+<([^\s<>()]+)>)?\s+[(]@([^\s<>()]+)[)]$`
fn valid_maintainer(value: &str) -> bool {
    let special = |c: char| matches!(c, '<' | '>' | '(' | ')');
    let token = |s: &str| !s.is_empty() && !s.chars().any(|c| special(c) || is_go_space(c));
    let Some(rest) = value.strip_suffix(')') else {
        return false;
    };
    let Some((before, handle)) = rest.rsplit_once("(@") else {
        return false;
    };
    if !token(handle) {
        return false;
    }
    let Some(before) = strip_required_space(before) else {
        return false;
    };
    let name = match before.strip_suffix('>') {
        Some(rest) => {
            let Some((name, email)) = rest.rsplit_once('<') else {
                return false;
            };
            if !token(email) {
                return false;
            }
            match strip_required_space(name) {
                Some(name) => name,
                None => return false,
            }
        }
        None => before,
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| !special(c) && !is_go_space(c)) && !chars.any(special)
}

fn is_go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

/// `s` without its trailing whitespace, when it has at least one whitespace character there.
fn strip_required_space(s: &str) -> Option<&str> {
    let trimmed = s.trim_end_matches(is_go_space);
    (trimmed.len() < s.len()).then_some(trimmed)
}

/// Directory must stay inside the repository, File inside Directory (the build context).
fn path_problem(name: &str, value: &str) -> Option<&'static str> {
    if value.starts_with('/') {
        Some("expected a relative path, not an absolute one")
    } else if leaves_root(value) && name == "File" {
        Some("the path leaves the Directory (`..`), so it would not be in the build context")
    } else if leaves_root(value) {
        Some("the path leaves the repository (`..`); expected a path inside it")
    } else {
        None
    }
}

fn leaves_root(path: &str) -> bool {
    if is_clean(path) {
        return false; // a clean path has no `..`
    }
    let cleaned = clean_path(path);
    cleaned == ".." || cleaned.starts_with("../")
}

/// True when `path.Clean` would return `path` unchanged and it has no `..` (the usual
/// Directory value: `1.2/alpine`), so cleaning needs no work.
fn is_clean(path: &str) -> bool {
    if path == "." || path == "/" {
        return true;
    }
    let relative = path.strip_prefix('/').unwrap_or(path).as_bytes();
    // Every part between slashes is non-empty and neither `.` nor `..`.
    let mut part = 0..0;
    for (i, &b) in relative.iter().chain([b'/'].iter()).enumerate() {
        if b == b'/' {
            if matches!(&relative[part.start..i], b"" | b"." | b"..") {
                return false;
            }
            part = i + 1..i + 1;
        }
    }
    true
}

/// Go's `path.Clean`: the shortest equivalent path, lexically.
pub fn clean_path(path: &str) -> String {
    if is_clean(path) {
        return path.to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

fn dedup_sorted(values: &mut Vec<String>) {
    values.sort();
    values.dedup();
}

fn dedup_keep_order<T: PartialEq>(values: &mut Vec<T>) {
    let mut i = 0;
    while i < values.len() {
        if values[..i].contains(&values[i]) {
            values.remove(i);
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests;
