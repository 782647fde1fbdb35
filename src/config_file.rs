//! bashbrew's `--config` flags file: default flags, per command, in `<config>/flags`
//! (bashbrew's `cmd/bashbrew/config.go`).
//!
//! The file is RFC 2822-style paragraphs (comment lines, starting with `#`, are dropped):
//!
//! ```text
//! # every command
//! Library: /srv/official-images/library
//! Namespace: tianon
//!
//! Commands: list, cat
//! BuildOrder: true
//! ```
//!
//! Fields: `Commands` (the paragraph applies to those commands, else to all), `Library`,
//! `Cache`, `Debug`, `Unique`, `BuildOrder`, `Pull`, `Arch`, `Namespace`, `Constraints`,
//! `ExclusiveConstraints`, `ApplyConstraints`, `ArchNamespaces`. Later paragraphs override
//! earlier ones field by field; a command's own values override the all-commands ones.
//!
//! Invariants: as in bashbrew, a value applies only where the flag was not given on the
//! command line and its environment variable is unset or empty, and only to commands that
//! have the flag; a missing file is no error. Unlike bashbrew, an invalid value (a boolean
//! that is not one, an unknown `Pull`) is an error naming `file:line:column`, and an unknown
//! field a warning.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::span::{Diagnostic, LineIndex, Severity, Span};

/// A value with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Value {
    text: String,
    span: Span,
}

/// One command's (or every command's) defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Defaults {
    fields: HashMap<&'static str, Value>,
    lists: HashMap<&'static str, (Vec<String>, Span)>,
}

const SCALARS: &[&str] = &[
    "Library",
    "Cache",
    "Debug",
    "Unique",
    "BuildOrder",
    "Pull",
    "Arch",
    "Namespace",
    "ExclusiveConstraints",
    "ApplyConstraints",
];
const LISTS: &[&str] = &["Constraints", "ArchNamespaces"];

impl Defaults {
    /// bashbrew's `FlagsConfigEntry.Apply`: non-empty values of `other` win.
    fn apply(&mut self, other: &Defaults) {
        for (k, v) in &other.fields {
            if !v.text.is_empty() {
                self.fields.insert(k, v.clone());
            }
        }
        for (k, v) in &other.lists {
            if !v.0.is_empty() {
                self.lists.insert(k, v.clone());
            }
        }
    }
}

/// A parsed flags file.
#[derive(Debug, Default)]
pub struct FlagsFile {
    path: String,
    text: String,
    by_command: HashMap<String, Defaults>,
    pub warnings: Vec<Diagnostic>,
}

/// `--config DIR` (or BASHBREW_CONFIG), else `$XDG_CONFIG_HOME/bashbrew`, else
/// `~/.config/bashbrew`.
pub fn config_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".config")
        });
    base.join("bashbrew")
}

/// Reads `<dir>/flags`; None when there is no such file.
pub fn load(dir: &Path) -> Result<Option<FlagsFile>, Error> {
    let path = dir.join("flags");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&path.to_string_lossy(), &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            context: "reading the flags file",
            path,
            source,
        }),
    }
}

/// Parses a flags file; syntax errors carry `file:line:column`.
pub fn parse(path: &str, text: &str) -> Result<FlagsFile, Error> {
    let index = LineIndex::new(text);
    let mut file = FlagsFile {
        path: path.to_string(),
        text: text.to_string(),
        ..FlagsFile::default()
    };
    let mut problems = Vec::new();
    let mut paragraph: Vec<(usize, &str)> = Vec::new();
    let mut offset = 0;
    let mut lines: Vec<(usize, &str)> = Vec::new();
    for line in text.split_inclusive('\n') {
        lines.push((offset, line.trim_end_matches(['\n', '\r'])));
        offset += line.len();
    }
    lines.push((text.len(), ""));
    for (at, line) in lines {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !paragraph.is_empty() {
                file.paragraph(&index, &paragraph, &mut problems);
                paragraph.clear();
            }
            continue;
        }
        paragraph.push((at, line));
    }
    if problems
        .iter()
        .any(|d: &Diagnostic| d.severity == Severity::Error)
    {
        return Err(Error::Manifest(problems));
    }
    file.warnings = problems;
    Ok(file)
}

impl FlagsFile {
    fn paragraph(
        &mut self,
        index: &LineIndex<'_>,
        lines: &[(usize, &str)],
        problems: &mut Vec<Diagnostic>,
    ) {
        // Fields with their continuation lines joined.
        let mut fields: Vec<(usize, String, usize, String)> = Vec::new();
        for &(at, line) in lines {
            if line.starts_with([' ', '\t']) {
                match fields.last_mut() {
                    Some(field) => {
                        field.3.push('\n');
                        field.3.push_str(line.trim());
                    }
                    None => problems.push(index.diagnostic(
                        Severity::Error,
                        &self.path,
                        index.span(at, line.len()),
                        "continuation line without a field: expected `Field: value` before it",
                    )),
                }
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                problems.push(index.diagnostic(
                    Severity::Error,
                    &self.path,
                    index.span(at + line.len(), 0),
                    format!(
                        "expected `:` after field name `{}` (a line is `Field: value`)",
                        line.trim()
                    ),
                ));
                continue;
            };
            let value_at = at + name.len() + 1 + (value.len() - value.trim_start().len());
            fields.push((
                at,
                name.trim().to_string(),
                value_at,
                value.trim().to_string(),
            ));
        }
        let mut defaults = Defaults::default();
        let mut commands: Vec<String> = Vec::new();
        for (at, name, value_at, value) in fields {
            let span = index.span(value_at, value.len());
            let known = |list: &[&'static str]| {
                list.iter().copied().find(|k| k.eq_ignore_ascii_case(&name))
            };
            let split = |v: &str| -> Vec<String> {
                v.split(',')
                    .map(|i| i.trim_matches(['\n', '\r', '\t', ' ']).to_string())
                    .filter(|i| !i.is_empty())
                    .collect()
            };
            if name.eq_ignore_ascii_case("Commands") {
                commands = split(&value);
            } else if let Some(k) = known(SCALARS) {
                defaults.fields.insert(k, Value { text: value, span });
            } else if let Some(k) = known(LISTS) {
                defaults.lists.insert(k, (split(&value), span));
            } else {
                problems.push(index.diagnostic(
                    Severity::Warning,
                    &self.path,
                    index.span(at, name.len()),
                    format!("unknown field `{name}` in the flags file is ignored"),
                ));
            }
        }
        if commands.is_empty() {
            commands.push(String::new());
        }
        for command in commands {
            self.by_command.entry(command).or_default().apply(&defaults);
        }
    }

    /// bashbrew's `ApplyTo(cmd)`: the all-commands defaults with the command's own on top.
    fn for_command(&self, command: &str) -> Defaults {
        let mut out = self.by_command.get("").cloned().unwrap_or_default();
        if !command.is_empty()
            && let Some(own) = self.by_command.get(command)
        {
            out.apply(own);
        }
        out
    }

    fn error(&self, span: Span, message: String) -> Error {
        let index = LineIndex::new(&self.text);
        Error::Manifest(vec![index.diagnostic(
            Severity::Error,
            &self.path,
            span,
            message,
        )])
    }

    fn boolean(&self, value: &Value) -> Result<bool, Error> {
        match value.text.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            other => Err(self.error(
                value.span,
                format!("invalid boolean {other:?}: expected true or false (or 1, 0, t, f)"),
            )),
        }
    }
}

/// Whether an environment variable is set to something (bashbrew's `isEnvVarSet`).
fn env_set(name: &str) -> bool {
    !name.is_empty() && std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// Whether `id` was given on the command line (before or after the command).
fn on_command_line(matches: &ArgMatches, id: &str) -> bool {
    let given = |m: &ArgMatches| {
        m.try_get_raw(id).is_ok_and(|v| v.is_some())
            && m.value_source(id) == Some(ValueSource::CommandLine)
    };
    given(matches)
        || matches
            .subcommand()
            .is_some_and(|(_, sub)| given(sub) || sub.subcommand().is_some_and(|(_, s)| given(s)))
}

/// Applies the flags file's defaults to the parsed command line.
pub fn apply(file: &FlagsFile, cli: &mut Cli, matches: &ArgMatches) -> Result<(), Error> {
    let command = matches.subcommand_name().unwrap_or("");
    let defaults = file.for_command(command);
    let free = |id: &str, env: &str| !on_command_line(matches, id) && !env_set(env);
    let g = &mut cli.global;
    if let Some(v) = defaults.fields.get("Library")
        && free("library", "BASHBREW_LIBRARY")
    {
        g.library = PathBuf::from(&v.text);
    }
    if let Some(v) = defaults.fields.get("Cache")
        && free("cache", "BASHBREW_CACHE")
    {
        g.cache = Some(PathBuf::from(&v.text));
    }
    if let Some(v) = defaults.fields.get("Debug")
        && free("debug", "BASHBREW_DEBUG")
    {
        g.debug = file.boolean(v)?;
    }
    if let Some(v) = defaults.fields.get("Arch")
        && free("arch", "BASHBREW_ARCH")
    {
        g.arch = vec![v.text.clone()];
    }
    if let Some(v) = defaults.fields.get("Namespace")
        && free("namespace", "BASHBREW_NAMESPACE")
    {
        g.namespace = v.text.clone();
    }
    if let Some(v) = defaults.fields.get("ExclusiveConstraints")
        && free("exclusive_constraints", "")
    {
        g.exclusive_constraints = file.boolean(v)?;
    }
    if let Some((list, _)) = defaults.lists.get("Constraints")
        && free("constraints", "BASHBREW_CONSTRAINTS")
    {
        g.constraints = list.clone();
    }
    if let Some((list, _)) = defaults.lists.get("ArchNamespaces")
        && free("arch_namespaces", "BASHBREW_ARCH_NAMESPACES")
    {
        g.arch_namespaces = list.clone();
    }
    // Flags of the command itself, where it has them.
    let local = |key: &str, id: &str, env: &str| -> Option<&Value> {
        defaults.fields.get(key).filter(|_| free(id, env))
    };
    let unique = local("Unique", "uniq", "");
    let build_order = local("BuildOrder", "build_order", "");
    let apply_constraints = local("ApplyConstraints", "apply_constraints", "");
    let pull = local("Pull", "pull", "BASHBREW_PULL");
    let set = |flag: &mut bool, value: Option<&Value>| -> Result<(), Error> {
        if let Some(v) = value {
            *flag = file.boolean(v)?;
        }
        Ok(())
    };
    match &mut cli.command {
        Command::List {
            uniq,
            apply_constraints: ac,
            build_order: bo,
            ..
        } => {
            set(uniq, unique)?;
            set(ac, apply_constraints)?;
            set(bo, build_order)?;
        }
        Command::Build { uniq, pull: p, .. } => {
            set(uniq, unique)?;
            if let Some(v) = pull {
                *p = clap::ValueEnum::from_str(&v.text, true).map_err(|_| {
                    file.error(
                        v.span,
                        format!(
                            "invalid Pull {:?}: expected always, missing or never",
                            v.text
                        ),
                    )
                })?;
            }
        }
        Command::Tag { uniq, .. } | Command::Push { uniq, .. } => set(uniq, unique)?,
        Command::From { lineage, .. }
        | Command::Parents { lineage, .. }
        | Command::Children { lineage, .. } => {
            set(&mut lineage.uniq, unique)?;
            set(&mut lineage.apply_constraints, apply_constraints)?;
        }
        Command::Fetch {
            apply_constraints: ac,
            ..
        } => set(ac, apply_constraints)?,
        Command::Cat {
            build_order: bo, ..
        } => set(bo, build_order)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# defaults for everything
Library: /lib
Namespace: ns
Constraints: a, b

# list only
Commands: list, cat
BuildOrder: true
Namespace: list-ns

Commands: list
Unique: 1
";

    #[test]
    fn paragraphs_merge_like_bashbrew() {
        let file = parse("flags", FILE).unwrap();
        let list = file.for_command("list");
        assert_eq!(list.fields["Library"].text, "/lib");
        assert_eq!(list.fields["Namespace"].text, "list-ns");
        assert_eq!(list.fields["BuildOrder"].text, "true");
        assert_eq!(list.fields["Unique"].text, "1");
        assert_eq!(list.lists["Constraints"].0, vec!["a", "b"]);
        let cat = file.for_command("cat");
        assert!(!cat.fields.contains_key("Unique"));
        let build = file.for_command("build");
        assert_eq!(build.fields["Namespace"].text, "ns");
        assert!(!build.fields.contains_key("BuildOrder"));
    }

    #[test]
    fn bad_lines_and_values_are_reported_with_positions() {
        let err = parse("flags", "Library: /x\nno colon\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("flags:2:9"), "{err}");
        let file = parse("flags", "Debug: maybe\nTagz: x\n").unwrap();
        assert_eq!(file.warnings.len(), 1);
        let err = file
            .boolean(&file.for_command("").fields["Debug"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("flags:1:8") && err.contains("invalid boolean \"maybe\""),
            "{err}"
        );
    }
}
