//! The normalized manifest text bashbrew's `cat` prints.
//!
//! Invariant: for every valid manifest the output is byte-identical to bashbrew's
//! `Manifest2822.String()`: the global paragraph with built-in defaults cleared, then each
//! entry with the values it shares with the global paragraph cleared, fields in canonical
//! order, paragraphs separated by one blank line, no trailing newline.

use std::fmt::Write;

use super::model::{Entry, Manifest};

const SEPARATOR: &str = ", ";

/// One paragraph: every non-empty field, in canonical order.
pub fn entry_text(entry: &Entry) -> String {
    let mut out = String::new();
    let mut line = |name: &str, value: &str| {
        if !value.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            let _ = write!(out, "{name}: {value}");
        }
    };
    line("Maintainers", &entry.maintainers.join(SEPARATOR));
    line("Tags", &entry.tags.join(SEPARATOR));
    line("SharedTags", &entry.shared_tags.join(SEPARATOR));
    line("Architectures", &entry.architectures.join(SEPARATOR));
    line("GitRepo", &entry.git_repo);
    line("GitFetch", &entry.git_fetch);
    line("GitCommit", &entry.git_commit);
    line("Directory", &entry.directory);
    line("File", &entry.file);
    line("Builder", &entry.builder);
    for (key, value) in &entry.arch_values {
        line(key, value);
    }
    line("Constraints", &entry.constraints.join(SEPARATOR));
    out
}

/// `entry` without the values it shares with `defaults` (bashbrew's `ClearDefaults`).
pub fn clear_defaults(entry: &Entry, defaults: &Entry) -> Entry {
    let mut out = entry.clone();
    if out.maintainers == defaults.maintainers {
        out.maintainers.clear();
    }
    if out.tags == defaults.tags {
        out.tags.clear();
    }
    if out.shared_tags == defaults.shared_tags {
        out.shared_tags.clear();
    }
    if out.architectures == defaults.architectures {
        out.architectures.clear();
    }
    for (field, default) in [
        (&mut out.git_repo, &defaults.git_repo),
        (&mut out.git_fetch, &defaults.git_fetch),
        (&mut out.git_commit, &defaults.git_commit),
        (&mut out.directory, &defaults.directory),
        (&mut out.file, &defaults.file),
        (&mut out.builder, &defaults.builder),
    ] {
        if field == default {
            field.clear();
        }
    }
    for (key, value) in &defaults.arch_values {
        if !value.is_empty() && out.arch_values.get(key) == Some(value) {
            out.arch_values.remove(key);
        }
    }
    if out.constraints == defaults.constraints {
        out.constraints.clear();
    }
    out
}

/// The whole manifest, normalized (bashbrew's `Manifest2822.String()`).
pub fn manifest_text(manifest: &Manifest) -> String {
    let mut paragraphs = vec![entry_text(&clear_defaults(
        &manifest.global,
        &Entry::defaults(),
    ))];
    paragraphs.extend(
        manifest
            .entries
            .iter()
            .map(|e| entry_text(&clear_defaults(e, &manifest.global))),
    );
    paragraphs.join("\n\n")
}
