//! Rules: raw paragraphs to a validated [`Manifest`], collecting every problem with its span.
//!
//! bashbrew's `manifest/rfc2822.go` is the reference for valid files: inheritance from the
//! global paragraph, defaults, list splitting, de-duplication and the merging of entries that
//! build the same artifacts all match it. Where bashbrew is silent or unsafe keg is stricter
//! (see docs/manifest.md). Invariants: validation never stops at the first problem; a
//! paragraph with an error does not reach the model; the model is returned only when there
//! are no errors (warnings may accompany it).

use std::collections::{HashMap, HashSet};

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
    let text = String::from_utf8_lossy(bytes);
    let index = LineIndex::new(&text);
    let mut v = Validator {
        file,
        index: &index,
        diagnostics: Vec::new(),
        manifest: Manifest::default(),
        tag_owner: HashMap::new(),
        shared_tag_owner: HashMap::new(),
    };
    v.check_utf8(bytes);
    let paragraphs = parse::paragraphs(&text);
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
    manifest: Manifest,
    /// Which entry has each tag, and the first entry with each shared tag.
    tag_owner: HashMap<String, usize>,
    shared_tag_owner: HashMap<String, usize>,
}

/// One list item with the byte offset of its first character.
struct Item {
    text: String,
    offset: usize,
}

impl Validator<'_> {
    fn error(&mut self, span: Span, message: String) {
        let d = self
            .index
            .diagnostic(Severity::Error, self.file, span, message);
        self.diagnostics.push(d);
    }

    fn warning(&mut self, span: Span, message: String) {
        let d = self
            .index
            .diagnostic(Severity::Warning, self.file, span, message);
        self.diagnostics.push(d);
    }

    fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
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

    fn paragraph(&mut self, paragraph: &RawParagraph<'_>, global: bool) {
        let errors_before = self.errors();
        for stray in &paragraph.stray_lines {
            self.stray_line(stray);
        }
        let mut entry = if global {
            Entry::defaults()
        } else {
            let mut entry = self.manifest.global.clone();
            entry.tags.clear();
            entry
        };
        entry.span = self.index.span(paragraph.offset, 0);
        let mut seen: Vec<(&str, usize)> = Vec::with_capacity(paragraph.fields.len());
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
        dedup_sorted(&mut entry.architectures);
        dedup_keep_order(&mut entry.shared_tags);
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
            return;
        }
        self.entry_requirements(&entry, head, &seen);
        let valid = self.errors() == errors_before;
        self.add_entry(entry, tags_field, valid);
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

    fn field(&mut self, entry: &mut Entry, field: &RawField<'_>) {
        if LIST_FIELDS.contains(&field.name) {
            let items = self.list_items(field);
            self.list_field(entry, field.name, items);
        } else if SCALAR_FIELDS.contains(&field.name) {
            if let Some((value, offset)) = self.scalar(field) {
                self.scalar_field(entry, field.name, value, offset);
            }
        } else if let Some((prefix, suffix)) = arch_field(field.name) {
            if !arch::is_known(prefix) {
                let span = self.index.span(field.name_offset, prefix.len());
                self.error(
                    span,
                    format!(
                        "unknown architecture {prefix:?} in {}: expected one of {}",
                        field.name,
                        arch::names().collect::<Vec<_>>().join(", ")
                    ),
                );
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

    fn list_items(&mut self, field: &RawField<'_>) -> Vec<Item> {
        let mut items = Vec::new();
        let mut current = String::new();
        let mut start = None;
        let mut finish = |current: &mut String, start: &mut Option<usize>, end: usize| {
            let text = current.trim_matches(['\n', '\r', '\t', ' ']).to_string();
            items.push(Item {
                text,
                offset: start.take().unwrap_or(end),
            });
            current.clear();
        };
        for (i, piece) in field.pieces.iter().enumerate() {
            if i > 0 {
                current.push('\n');
            }
            for (at, c) in piece.text.char_indices() {
                if c == ',' {
                    finish(&mut current, &mut start, piece.offset + at);
                    continue;
                }
                if start.is_none() && !matches!(c, ' ' | '\t' | '\r') {
                    start = Some(piece.offset + at);
                }
                current.push(c);
            }
        }
        let (offset, len) = field.value_range();
        finish(&mut current, &mut start, offset + len);
        if items.len() == 1 && items[0].text.is_empty() {
            // An empty SharedTags or Architectures keeps the inherited list (as in bashbrew);
            // the required lists need values.
            if matches!(field.name, "Maintainers" | "Tags") {
                let span = self.index.span(offset, 0);
                self.error(
                    span,
                    format!(
                        "{} has no value: expected a comma-separated list",
                        field.name
                    ),
                );
            }
            return Vec::new();
        }
        let mut kept = Vec::new();
        for item in items {
            if let Some(line_break) = item.text.find('\n') {
                let span = self.index.span(item.offset, line_break);
                self.error(
                    span,
                    format!(
                        "invalid {} value {:?}: one item spans two lines; expected a comma between items",
                        field.name,
                        item.text.replace('\n', " ")
                    ),
                );
            } else if item.text.is_empty() {
                let span = self.index.span(item.offset, 0);
                self.error(
                    span,
                    format!(
                        "invalid {} value: empty item (a stray comma?); expected a comma-separated list",
                        field.name
                    ),
                );
            } else {
                kept.push(item);
            }
        }
        kept
    }

    fn list_field(&mut self, entry: &mut Entry, name: &str, items: Vec<Item>) {
        let mut values = Vec::with_capacity(items.len());
        for item in items {
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
                None => values.push(item.text),
            }
        }
        match name {
            "Maintainers" => entry.maintainers.extend(values),
            "Tags" => entry.tags.extend(values),
            "SharedTags" if !values.is_empty() => entry.shared_tags = values,
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
        let tags_string = entry.tags.join(", ");
        let span = tags_field.map_or(entry.span, |f| {
            let (offset, len) = f.value_range();
            self.index.span(offset, len)
        });
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        let tags_of = |i: &usize| self.manifest.entries[*i].tags.join(", ");
        for tag in &entry.tags {
            if let Some(other) = self.tag_owner.get(tag) {
                problems.push(format!(
                    "Tags {tags_string:?} includes duplicate tag: {tag:?} (duplicated in {:?})",
                    tags_of(other)
                ));
            } else if let Some(other) = self.shared_tag_owner.get(tag) {
                problems.push(format!(
                    "Tags {tags_string:?} includes tag conflicting with a shared tag: {tag:?} (shared tag in {:?})",
                    tags_of(other)
                ));
            } else if !seen.insert(tag) {
                problems.push(format!(
                    "Tags {tags_string:?} includes duplicate tag: {tag:?}"
                ));
            }
        }
        for tag in &entry.shared_tags {
            if let Some(other) = self.tag_owner.get(tag) {
                problems.push(format!(
                    "Tags {tags_string:?} includes conflicting shared tag: {tag:?} (duplicated in {:?})",
                    tags_of(other)
                ));
            } else if !seen.insert(tag) {
                problems.push(format!(
                    "Tags {tags_string:?} includes duplicate tag: {tag:?} (in SharedTags)"
                ));
            }
        }
        if !problems.is_empty() || !valid {
            for problem in problems {
                self.error(span, problem);
            }
            return;
        }
        let entries = &mut self.manifest.entries;
        let target = entries
            .iter()
            .position(|e| e.same_build_artifacts(&entry))
            .unwrap_or(entries.len());
        for tag in &entry.tags {
            self.tag_owner.insert(tag.clone(), target);
        }
        for tag in &entry.shared_tags {
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

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `^\w[\w.-]{0,127}$` with Go's ASCII-only `\w`.
pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    chars.next().is_some_and(is_word)
        && tag.len() <= 128
        && chars.all(|c| is_word(c) || c == '.' || c == '-')
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
    let cleaned = clean_path(path);
    cleaned == ".." || cleaned.starts_with("../")
}

/// Go's `path.Clean`: the shortest equivalent path, lexically.
pub fn clean_path(path: &str) -> String {
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

fn dedup_keep_order(values: &mut Vec<String>) {
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
