//! Dockerfile parent scanning: which images a Dockerfile builds on.
//!
//! [`scan`] splits Dockerfile text into instructions the way BuildKit's parser does, then records
//! the parents those instructions name.
//!
//! Splitting follows BuildKit:
//! * parser directives (`# syntax=...`, `# escape=...`, `# check=...`) count only in the leading
//!   run of directive lines; the first blank line, other comment or instruction ends them;
//! * a line ending in the escape character (`\` by default, `` ` `` after an `escape` directive)
//!   continues on the next line; comment lines and blank lines inside a continuation are skipped;
//! * heredoc bodies of `RUN`/`COPY`/`ADD` (also under `ONBUILD`) are skipped: `<<EOF`, `<<-EOF`
//!   (terminator may be indented with tabs), quoted `<<"EOF"` / `<<'EOF'`, several per line;
//! * instruction names are case-insensitive; a UTF-8 BOM and CRLF line endings are accepted.
//!
//! What counts as a parent:
//! * the image of every `FROM` (`--platform` and other flags are not images), after substituting
//!   the global `ARG`s (those before the first `FROM`): `$NAME`, `${NAME}`, `${NAME:-word}`,
//!   `${NAME:+word}`, `${NAME:?word}` and their colon-less forms;
//! * `COPY --from=X` and `ADD --from=X` (only the `--from=X` spelling, as in BuildKit);
//! * `from=X` in any `RUN --mount=...` (any mount type, keys in any order).
//!
//! A stage named by a parent reference — by name (case-insensitive) or, in `--from` and `from=`,
//! by index — stands for that stage's own resolved parent and is not a new parent. External
//! references are normalized by [`normalize_ref`]: an implicit `:latest` is made explicit (a
//! registry port is not a tag), digests are kept, and `scratch` stays `scratch`.
//!
//! Invariants:
//! * [`scan`] never panics and always terminates, whatever the input;
//! * problems are [`Warning`]s, never errors: references keg cannot resolve statically, unknown
//!   stage indexes, unterminated heredocs, bad directives. A `FROM` whose image cannot be
//!   resolved (an `ARG` without a default, an undeclared variable, ...) keeps its reference
//!   exactly as written (e.g. `${BASE}`), so stages built on it still answer, and
//!   [`Scan::unresolved_from`] returns its warning;
//! * a `--from`/`from=` value containing a variable is not expanded (BuildKit rejects variables
//!   in `--from`), so it is reported and not counted.

use std::collections::{HashMap, HashSet};
use std::fmt;

/// What a Dockerfile says about its parents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scan {
    /// Every external parent image, normalized, in order of first appearance: `FROM` values that
    /// are not stage references, plus `COPY`/`ADD --from` and `RUN --mount` `from=` images that
    /// are not stages.
    ///
    /// Each image is listed once. bashbrew's `Froms` keeps duplicates and even repeats a stage's
    /// parent each time the stage is referenced; keg treats this as the set of images the build
    /// needs (per-stage detail is in [`Scan::stage_froms`]). An unresolved `FROM` contributes its
    /// reference as written.
    pub froms: Vec<String>,
    /// For each stage in order: its parent as resolved (external image, normalized; for a stage
    /// that is `FROM` another stage, the resolved external image of that stage).
    pub stage_froms: Vec<String>,
    /// Stage names (lowercased) in order; `None` for unnamed stages.
    pub stage_names: Vec<Option<String>>,
    /// Non-fatal problems, ordered by line, e.g. a `FROM` using an `ARG` without a default.
    pub warnings: Vec<Warning>,
}

impl Scan {
    /// The last stage's resolved FROM (the image the build produces is based on it).
    pub fn last_stage_from(&self) -> Option<&str> {
        self.stage_froms.last().map(String::as_str)
    }

    /// The first warning about a `FROM` whose image cannot be resolved statically (for example
    /// one using an `ARG` without a default). Building this Dockerfile must fail with its message.
    pub fn unresolved_from(&self) -> Option<&Warning> {
        self.warnings.iter().find(|warning| {
            let prefix = format!("Dockerfile line {}: FROM ", warning.line);
            warning.message.starts_with(&prefix)
        })
    }
}

/// A non-fatal problem found while scanning; `message` is self-contained (it names the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line of the instruction.
    pub line: usize,
    pub message: String,
}

impl Warning {
    fn new(line: usize, detail: impl fmt::Display) -> Self {
        Self {
            line,
            message: format!("Dockerfile line {line}: {detail}"),
        }
    }
}

/// Scans Dockerfile text. Never panics, on any input (including invalid syntax, empty input,
/// a lone `\` at EOF, unterminated heredocs, CRLF line endings, a BOM); never loops forever.
pub fn scan(text: &str) -> Scan {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|line| line.trim_end_matches(['\r', '\n']))
        .collect();
    let mut scanner = Scanner::default();
    let escape = read_directives(&lines, &mut scanner.scan.warnings);
    for instruction in split_instructions(&lines, escape, &mut scanner.scan.warnings) {
        scanner.apply(&instruction, escape);
    }
    scanner.scan.warnings.sort_by_key(|warning| warning.line);
    scanner.scan
}

/// Normalizes an image reference (`debian` -> `debian:latest`, ports aren't tags, digests kept,
/// `scratch` stays `scratch`).
pub fn normalize_ref(reference: &str) -> String {
    let last_component = reference
        .rsplit_once('/')
        .map_or(reference, |(_, last)| last);
    let keep = reference.is_empty()
        || reference == "scratch"
        || reference.contains('@')
        || last_component.contains(':');
    if keep {
        reference.to_owned()
    } else {
        format!("{reference}:latest")
    }
}

// ---------------------------------------------------------------------------------------------
// Splitting text into instructions
// ---------------------------------------------------------------------------------------------

/// One instruction: its logical line (continuations joined) and the line it starts on.
struct Instruction {
    line: usize,
    text: String,
}

/// Reads the parser directives at the top of the file; returns the escape character.
fn read_directives(lines: &[&str], warnings: &mut Vec<Warning>) -> char {
    let mut escape = '\\';
    let mut seen = HashSet::new();
    for (index, text) in lines.iter().enumerate() {
        let Some((key, value)) = parse_directive(text) else {
            break;
        };
        let line = index + 1;
        if !seen.insert(key.clone()) {
            let detail = format!("parser directive {key} is repeated; keg uses the first one");
            warnings.push(Warning::new(line, detail));
            continue;
        }
        match (key.as_str(), value) {
            ("escape", "\\") => escape = '\\',
            ("escape", "`") => escape = '`',
            ("escape", _) => {
                let detail = format!("escape parser directive `{value}` is not \\ or `; using \\");
                warnings.push(Warning::new(line, detail));
            }
            ("syntax", _) if !is_dockerfile_frontend(value) => {
                let detail = format!(
                    "syntax parser directive selects the frontend {value}; \
                     keg reads the file as a standard Dockerfile"
                );
                warnings.push(Warning::new(line, detail));
            }
            _ => {}
        }
    }
    escape
}

/// `# key=value` with a known key (lowercased), as BuildKit recognizes directives.
fn parse_directive(line: &str) -> Option<(String, &str)> {
    let (key, value) = line.trim_start().strip_prefix('#')?.split_once('=')?;
    let (key, value) = (key.trim(), value.trim());
    let mut key_chars = key.chars();
    let well_formed = key_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && key_chars.all(|c| c.is_ascii_alphanumeric())
        && !value.is_empty();
    let key = key.to_ascii_lowercase();
    let known = matches!(key.as_str(), "syntax" | "escape" | "check");
    (well_formed && known).then_some((key, value))
}

/// Whether a `# syntax=` value names the standard Dockerfile frontend.
fn is_dockerfile_frontend(image: &str) -> bool {
    let image = image.strip_prefix("docker.io/").unwrap_or(image);
    let repository = image.split([':', '@']).next().unwrap_or(image);
    matches!(
        repository,
        "docker/dockerfile" | "docker/dockerfile-upstream"
    )
}

/// Joins continuation lines into instructions, skipping comments, blank lines and heredoc bodies.
fn split_instructions(
    lines: &[&str],
    escape: char,
    warnings: &mut Vec<Warning>,
) -> Vec<Instruction> {
    let mut instructions = Vec::new();
    let mut lines = lines.iter().enumerate();
    while let Some((index, first)) = lines.next() {
        let first = first.trim_start();
        if first.starts_with('#') {
            continue;
        }
        let (start, mut continued) = strip_continuation(first, escape);
        let mut text = start.to_owned();
        while continued {
            let Some((_, next)) = lines.next() else {
                break;
            };
            let trimmed = next.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (part, more) = strip_continuation(next, escape);
            text.push_str(part);
            continued = more;
        }
        if text.trim().is_empty() {
            continue;
        }
        let line = index + 1;
        for (terminator, strip_tabs) in heredocs(&text) {
            let terminated = lines.any(|(_, body)| {
                let body = if strip_tabs {
                    body.trim_start_matches('\t')
                } else {
                    body
                };
                body == terminator
            });
            if !terminated {
                let detail = format!("heredoc <<{terminator} is not terminated");
                warnings.push(Warning::new(line, detail));
                break;
            }
        }
        instructions.push(Instruction { line, text });
    }
    instructions
}

/// Strips a trailing escape character (and spaces or tabs after it); says whether the line
/// continues on the next one.
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    match line.trim_end_matches([' ', '\t']).strip_suffix(escape) {
        Some(kept) => (kept, true),
        None => (line, false),
    }
}

/// The heredocs an instruction opens, in order: (terminator, whether leading tabs are stripped).
fn heredocs(text: &str) -> Vec<(String, bool)> {
    if !text.contains("<<") {
        return Vec::new();
    }
    let mut words = split_words(text, '\\').into_iter();
    let mut command = words.next().unwrap_or_default().to_ascii_lowercase();
    if command == "onbuild" {
        command = words.next().unwrap_or_default().to_ascii_lowercase();
    }
    if !matches!(command.as_str(), "run" | "copy" | "add") {
        return Vec::new();
    }
    words.filter_map(heredoc).collect()
}

/// A word that opens a heredoc (`<<EOF`, `3<<-"EOF"`, ...), as BuildKit recognizes them.
fn heredoc(word: &str) -> Option<(String, bool)> {
    let rest = word
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    if rest.contains('<') {
        return None;
    }
    let terminator = unquote(rest);
    (!terminator.is_empty()).then_some((terminator, strip_tabs))
}

// ---------------------------------------------------------------------------------------------
// Instructions
// ---------------------------------------------------------------------------------------------

/// Accumulates a [`Scan`] instruction by instruction.
#[derive(Default)]
struct Scanner {
    scan: Scan,
    args: GlobalArgs,
    seen_from: bool,
    stage_by_name: HashMap<String, usize>,
    listed_froms: HashSet<String>,
}

impl Scanner {
    fn apply(&mut self, instruction: &Instruction, escape: char) {
        let line = instruction.line;
        let (command, arguments) = split_command(&instruction.text);
        match command.to_ascii_lowercase().as_str() {
            "arg" if !self.seen_from => self.args.declare(arguments, escape),
            "from" => self.from(line, arguments, escape),
            "copy" | "add" => {
                let command = command.to_ascii_uppercase();
                for flag in extract_flags(arguments).0 {
                    if let Some(source) = flag.strip_prefix("--from=") {
                        self.source(line, &format!("{command} --from={source}"), source);
                    }
                }
            }
            "run" => {
                for flag in extract_flags(arguments).0 {
                    let Some(options) = flag.strip_prefix("--mount=") else {
                        continue;
                    };
                    let from = split_csv(options).into_iter().rev().find_map(|field| {
                        let (key, value) = field.split_once('=')?;
                        key.eq_ignore_ascii_case("from").then(|| value.to_owned())
                    });
                    if let Some(source) = from {
                        self.source(line, &format!("RUN --mount from={source}"), &source);
                    }
                }
            }
            _ => {}
        }
    }

    fn from(&mut self, line: usize, arguments: &str, escape: char) {
        self.seen_from = true;
        let words: Vec<&str> = extract_flags(arguments).1.split_whitespace().collect();
        let Some(&image) = words.first() else {
            self.warn(line, "FROM names no image");
            return;
        };
        let name = match words[..] {
            [_, keyword, name] if keyword.eq_ignore_ascii_case("as") => Some(name.to_lowercase()),
            _ => None,
        };
        let parent = match self.args.expand(image, escape) {
            Ok(expanded) if expanded.is_empty() => {
                self.warn(line, format!("FROM {image} expands to an empty image name"));
                self.external(image.to_owned())
            }
            Ok(expanded) => match self.stage_parent(&expanded) {
                Some(parent) => parent,
                None => self.external(normalize_ref(&expanded)),
            },
            Err(unresolved) => {
                self.warn(line, unresolved.describe(image));
                self.external(image.to_owned())
            }
        };
        if let Some(name) = &name {
            let index = self.scan.stage_froms.len();
            self.stage_by_name.entry(name.clone()).or_insert(index);
        }
        self.scan.stage_froms.push(parent);
        self.scan.stage_names.push(name);
    }

    /// A `--from=`/`from=` source: a stage name or index, or else an external image.
    fn source(&mut self, line: usize, what: &str, source: &str) {
        if source.is_empty() || self.stage_parent(source).is_some() {
            return;
        }
        if source.contains('$') {
            let detail = format!(
                "{what} uses a variable, which keg does not expand; it is not counted as a parent"
            );
            self.warn(line, detail);
            return;
        }
        if source.bytes().all(|byte| byte.is_ascii_digit()) {
            let stages = self.scan.stage_froms.len();
            if !source.parse::<usize>().is_ok_and(|index| index < stages) {
                let detail =
                    format!("{what} refers to stage {source}, but only {stages} are defined");
                self.warn(line, detail);
            }
            return;
        }
        self.external(normalize_ref(source));
    }

    /// The resolved parent of the stage with this name (case-insensitive), if any.
    fn stage_parent(&self, name: &str) -> Option<String> {
        self.stage_by_name
            .get(&name.to_lowercase())
            .and_then(|&index| self.scan.stage_froms.get(index))
            .cloned()
    }

    /// Lists an external parent (once) and returns it.
    fn external(&mut self, reference: String) -> String {
        if self.listed_froms.insert(reference.clone()) {
            self.scan.froms.push(reference.clone());
        }
        reference
    }

    fn warn(&mut self, line: usize, detail: impl fmt::Display) {
        self.scan.warnings.push(Warning::new(line, detail));
    }
}

/// Splits an instruction into its command word and the rest.
fn split_command(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.split_once(char::is_whitespace) {
        Some((command, rest)) => (command, rest.trim_start()),
        None => (text, ""),
    }
}

// ---------------------------------------------------------------------------------------------
// Global ARGs and variable substitution
// ---------------------------------------------------------------------------------------------

/// Arguments BuildKit sets from the build platform; their values are unknown before a build.
const PLATFORM_ARGS: [&str; 8] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
];

/// Nesting depth of `${...}` beyond which a word is treated as malformed.
const MAX_NESTING: usize = 32;

/// The `ARG`s declared before the first `FROM`: the only variables a `FROM` can use.
#[derive(Default)]
struct GlobalArgs(HashMap<String, ArgValue>);

enum ArgValue {
    Default(String),
    NoDefault,
    /// The default itself cannot be resolved statically.
    Unresolved(Unresolved),
}

/// What a variable lookup found.
enum Lookup {
    Set(String),
    /// Unset at build time (keg passes no build arguments); holds the reason to report when a
    /// value is required.
    Unset(Unresolved),
    /// Set at build time to a value keg cannot know.
    Unknown(Unresolved),
}

impl Lookup {
    fn value(self) -> Result<String, Unresolved> {
        match self {
            Lookup::Set(value) => Ok(value),
            Lookup::Unset(unresolved) | Lookup::Unknown(unresolved) => Err(unresolved),
        }
    }
}

/// Why a word cannot be resolved statically.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unresolved {
    NoDefault(String),
    Undeclared(String),
    Platform(String),
    Required(String),
    Unsupported(String),
    Malformed,
}

impl Unresolved {
    /// The warning detail for `FROM image`; it starts with `FROM ` (see [`Scan::unresolved_from`]).
    fn describe(&self, image: &str) -> String {
        match self {
            Unresolved::NoDefault(name) => format!(
                "FROM {image} uses ${{{name}}}, which has no default value \
                 (ARG {name} without a default before the first FROM)"
            ),
            Unresolved::Undeclared(name) => format!(
                "FROM {image} uses ${{{name}}}, which is not declared \
                 (no ARG {name} before the first FROM)"
            ),
            Unresolved::Platform(name) => format!(
                "FROM {image} uses ${{{name}}}, which is set from the build platform \
                 and cannot be resolved statically"
            ),
            Unresolved::Required(name) => {
                format!("FROM {image} uses ${{{name}:?...}}, but {name} is empty")
            }
            Unresolved::Unsupported(name) => {
                format!("FROM {image} uses a substitution of ${{{name}}} that keg does not support")
            }
            Unresolved::Malformed => {
                format!("FROM {image} has an unterminated quote or ${{...}} substitution")
            }
        }
    }
}

impl GlobalArgs {
    /// Records `ARG name[=default] ...`; defaults may use earlier global ARGs.
    fn declare(&mut self, arguments: &str, escape: char) {
        for word in split_words(arguments, escape) {
            match word.split_once('=') {
                Some((name, default)) => {
                    let value = match self.expand(default, escape) {
                        Ok(value) => ArgValue::Default(value),
                        Err(unresolved) => ArgValue::Unresolved(unresolved),
                    };
                    self.0.insert(name.to_owned(), value);
                }
                None => {
                    self.0.entry(word.to_owned()).or_insert(ArgValue::NoDefault);
                }
            }
        }
    }

    /// Expands a word as BuildKit's shell lexer would (quotes, escapes, substitutions).
    fn expand(&self, word: &str, escape: char) -> Result<String, Unresolved> {
        Expander {
            chars: word.chars().collect(),
            pos: 0,
            depth: 0,
            escape,
            args: self,
        }
        .word(None)
    }

    fn lookup(&self, name: &str) -> Lookup {
        match self.0.get(name) {
            Some(ArgValue::Default(value)) => Lookup::Set(value.clone()),
            _ if PLATFORM_ARGS.contains(&name) => {
                Lookup::Unknown(Unresolved::Platform(name.to_owned()))
            }
            Some(ArgValue::NoDefault) => Lookup::Unset(Unresolved::NoDefault(name.to_owned())),
            Some(ArgValue::Unresolved(unresolved)) => Lookup::Unknown(unresolved.clone()),
            None => Lookup::Unset(Unresolved::Undeclared(name.to_owned())),
        }
    }
}

/// A cursor over one word being expanded.
struct Expander<'a> {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    escape: char,
    args: &'a GlobalArgs,
}

impl Expander<'_> {
    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        self.pos += usize::from(c.is_some());
        c
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// Expands up to `stop` (consumed; missing is malformed) or to the end when `stop` is `None`.
    /// Always consumes its input; the first problem met is returned.
    fn word(&mut self, stop: Option<char>) -> Result<String, Unresolved> {
        if self.depth == MAX_NESTING {
            self.pos = self.chars.len();
            return Err(Unresolved::Malformed);
        }
        self.depth += 1;
        let mut out = Ok(String::new());
        let result = loop {
            let Some(c) = self.next() else {
                break if stop.is_some() {
                    Err(Unresolved::Malformed)
                } else {
                    out
                };
            };
            if Some(c) == stop {
                break out;
            }
            let piece = match c {
                _ if c == self.escape => Ok(self.next().map(String::from).unwrap_or_default()),
                '\'' => self.single_quoted(),
                '"' => self.double_quoted(),
                '$' => self.dollar(),
                _ => Ok(c.to_string()),
            };
            append(&mut out, piece);
        };
        self.depth -= 1;
        result
    }

    fn single_quoted(&mut self) -> Result<String, Unresolved> {
        let mut out = String::new();
        loop {
            match self.next() {
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
                None => return Err(Unresolved::Malformed),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, Unresolved> {
        let mut out = Ok(String::new());
        loop {
            let piece = match self.next() {
                Some('"') => return out,
                None => return Err(Unresolved::Malformed),
                Some('$') => self.dollar(),
                Some(c) if c == self.escape => match self.peek() {
                    Some(next) if next == '"' || next == '$' || next == self.escape => {
                        self.pos += 1;
                        Ok(next.to_string())
                    }
                    _ => Ok(c.to_string()),
                },
                Some(c) => Ok(c.to_string()),
            };
            append(&mut out, piece);
        }
    }

    /// After a `$`: `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME+word}`, ... or a literal `$`.
    fn dollar(&mut self) -> Result<String, Unresolved> {
        if self.peek() != Some('{') {
            let name = self.name();
            return if name.is_empty() {
                Ok("$".to_owned())
            } else {
                self.args.lookup(&name).value()
            };
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return self.word(Some('}')).and(Err(Unresolved::Malformed));
        }
        let colon = self.peek() == Some(':');
        self.pos += usize::from(colon);
        let operator = self.next();
        let lookup = self.args.lookup(&name);
        // With a colon, an empty value counts as unset.
        let set = |value: &str| !(colon && value.is_empty());
        match operator {
            Some('}') if !colon => lookup.value(),
            Some('}') => Err(Unresolved::Unsupported(name)),
            Some(operator @ ('-' | '+' | '?')) => {
                let word = self.word(Some('}'));
                if word == Err(Unresolved::Malformed) {
                    return word;
                }
                match (operator, lookup) {
                    (_, Lookup::Unknown(unresolved)) => Err(unresolved),
                    ('-', Lookup::Set(value)) if set(&value) => Ok(value),
                    ('-', _) => word,
                    ('+', Lookup::Set(value)) if set(&value) => word,
                    ('+', _) => Ok(String::new()),
                    (_, Lookup::Set(value)) if set(&value) => Ok(value),
                    (_, Lookup::Set(_)) => Err(Unresolved::Required(name)),
                    (_, Lookup::Unset(unresolved)) => Err(unresolved),
                }
            }
            Some(_) => self.word(Some('}')).and(Err(Unresolved::Unsupported(name))),
            None => Err(Unresolved::Malformed),
        }
    }

    fn name(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }
}

/// Appends a piece to an expansion, keeping the first problem.
fn append(out: &mut Result<String, Unresolved>, piece: Result<String, Unresolved>) {
    if let Ok(text) = out {
        match piece {
            Ok(piece) => text.push_str(&piece),
            Err(unresolved) => *out = Err(unresolved),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Words, flags and CSV
// ---------------------------------------------------------------------------------------------

/// Splits off the first word of `text` (which starts with a non-space): whitespace ends it
/// outside quotes, and `escape` protects the next character (except inside single quotes).
fn take_word(text: &str, escape: char) -> (&str, &str) {
    let mut quote = None;
    let mut chars = text.char_indices();
    while let Some((index, c)) = chars.next() {
        match quote {
            None if c.is_whitespace() => return text.split_at(index),
            Some(open) if c == open => quote = None,
            Some('\'') => {}
            _ if c == escape => {
                chars.next();
            }
            None if c == '\'' || c == '"' => quote = Some(c),
            _ => {}
        }
    }
    (text, "")
}

/// Splits text into whitespace-separated words, keeping quotes and escapes as written.
fn split_words(text: &str, escape: char) -> Vec<&str> {
    let mut words = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (word, after) = take_word(rest, escape);
        words.push(word);
        rest = after.trim_start();
    }
    words
}

/// Removes quotes and backslash escapes from a word.
fn unquote(word: &str) -> String {
    let mut out = String::new();
    let mut quote = None;
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(open) if c == open => quote = None,
            Some('\'') => out.push(c),
            _ if c == '\\' => out.extend(chars.next()),
            None if c == '\'' || c == '"' => quote = Some(c),
            _ => out.push(c),
        }
    }
    out
}

/// Splits the leading `--flag` words (unquoted) off an instruction's arguments, as BuildKit's
/// builder-flag parser does; a bare `--` ends the flags. Returns the flags and the rest.
fn extract_flags(arguments: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = arguments.trim_start();
    while rest.starts_with("--") {
        let (word, after) = take_word(rest, '\\');
        rest = after.trim_start();
        let flag = unquote(word);
        if flag == "--" {
            break;
        }
        flags.push(flag);
    }
    (flags, rest)
}

/// Splits one CSV record (the `--mount` options): commas separate fields outside double quotes,
/// and `""` inside quotes is a literal quote.
fn split_csv(record: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = record.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        dockerfile: &'static str,
        froms: &'static [&'static str],
        /// (resolved parent, stage name) per stage.
        stages: &'static [(&'static str, Option<&'static str>)],
        /// (line, text the message contains).
        warnings: &'static [(usize, &'static str)],
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    const CASES: &[Case] = &[
        Case {
            name: "debian single stage",
            dockerfile: r#"FROM debian:bookworm-slim
RUN set -eux; \
	apt-get update; \
	apt-get install -y --no-install-recommends ca-certificates curl; \
	rm -rf /var/lib/apt/lists/*
ENV LANG C.UTF-8
CMD ["bash"]
"#,
            froms: &["debian:bookworm-slim"],
            stages: &[("debian:bookworm-slim", None)],
            warnings: &[],
        },
        Case {
            name: "implicit latest",
            dockerfile: "FROM debian\nCMD [\"bash\"]\n",
            froms: &["debian:latest"],
            stages: &[("debian:latest", None)],
            warnings: &[],
        },
        Case {
            name: "golang builder with --platform, alpine runtime",
            dockerfile: r#"FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS build
WORKDIR /src
COPY . .
ARG TARGETOS TARGETARCH
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app .

FROM alpine:3.20
RUN apk add --no-cache ca-certificates
COPY --from=build /out/app /usr/local/bin/app
ENTRYPOINT ["app"]
"#,
            froms: &["golang:1.22-alpine", "alpine:3.20"],
            stages: &[("golang:1.22-alpine", Some("build")), ("alpine:3.20", None)],
            warnings: &[],
        },
        Case {
            name: "untagged builder with --platform",
            dockerfile: r#"FROM --platform=$BUILDPLATFORM golang AS build
RUN go build -o /app .
FROM scratch
COPY --from=build /app /app
"#,
            froms: &["golang:latest", "scratch"],
            stages: &[("golang:latest", Some("build")), ("scratch", None)],
            warnings: &[],
        },
        Case {
            name: "lowercase instructions and mixed-case stage names",
            dockerfile: r#"from alpine:3.20 as Base
run apk add --no-cache bash
From BASE As final
copy --from=base /etc/os-release /os-release
"#,
            froms: &["alpine:3.20"],
            stages: &[
                ("alpine:3.20", Some("base")),
                ("alpine:3.20", Some("final")),
            ],
            warnings: &[],
        },
        Case {
            name: "COPY --from stages, images, flag order",
            dockerfile: r#"FROM golang:1.22-alpine AS build
RUN go build -o /app .
FROM alpine:3.20
COPY --from=build /app /usr/local/bin/app
COPY --from=docker.io/library/busybox:1.36-uclibc /bin/busybox /bin/
COPY --chown=1000:1000 --link --from=tianon/gosu /usr/local/bin/gosu /usr/local/bin/
ADD --chmod=755 --from=BUILD /app /app2
copy --from=nginx:1.27-alpine /etc/nginx /etc/nginx
"#,
            froms: &[
                "golang:1.22-alpine",
                "alpine:3.20",
                "docker.io/library/busybox:1.36-uclibc",
                "tianon/gosu:latest",
                "nginx:1.27-alpine",
            ],
            stages: &[("golang:1.22-alpine", Some("build")), ("alpine:3.20", None)],
            warnings: &[],
        },
        Case {
            name: "COPY --from stage indexes",
            dockerfile: r#"FROM bash:5
RUN echo foo > /foo
FROM scratch
COPY --from=0 /foo /foo
FROM scratch
COPY --chown=1234:5678 --from=1 /foo /foo
"#,
            froms: &["bash:5", "scratch"],
            stages: &[("bash:5", None), ("scratch", None), ("scratch", None)],
            warnings: &[],
        },
        Case {
            name: "COPY --from index out of range",
            dockerfile: "FROM alpine AS a\nCOPY --from=3 / /\n",
            froms: &["alpine:latest"],
            stages: &[("alpine:latest", Some("a"))],
            warnings: &[(2, "COPY --from=3 refers to stage 3, but only 1 are defined")],
        },
        Case {
            name: "COPY --from X is not a --from flag",
            dockerfile: "FROM alpine\nCOPY --from busybox /bin/busybox /bin/\n",
            froms: &["alpine:latest"],
            stages: &[("alpine:latest", None)],
            warnings: &[],
        },
        Case {
            name: "RUN --mount from= in any key order and mount type",
            dockerfile: r#"FROM golang:1.22-bookworm AS build
RUN --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=bind,from=busybox,target=/x \
    --mount=from=build,type=cache,target=/y \
    --mount=target=/usr/local/go,from=golang:1.21,source=/usr/local/go \
    --mount=type=secret,id=token \
    --network=none \
    go build ./...
FROM debian:bookworm-slim
RUN --mount=type=bind,from=0,source=/go/bin,target=/out cp /out/app /usr/local/bin/
RUN --mount="type=bind,FROM=tianon/gosu:1.17,target=/g" true
RUN --mount=type=tmpfs,target=/tmp echo from=ignored:1
"#,
            froms: &[
                "golang:1.22-bookworm",
                "busybox:latest",
                "golang:1.21",
                "debian:bookworm-slim",
                "tianon/gosu:1.17",
            ],
            stages: &[
                ("golang:1.22-bookworm", Some("build")),
                ("debian:bookworm-slim", None),
            ],
            warnings: &[],
        },
        Case {
            name: "windows servercore with backtick escape",
            dockerfile: r#"# escape=`

FROM mcr.microsoft.com/windows/servercore:ltsc2022 AS build
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
ENV GOLANG_VERSION 1.22.5
RUN $url = ('https://dl.google.com/go/go{0}.windows-amd64.zip' -f $env:GOLANG_VERSION); `
	Write-Host ('Downloading {0} ...' -f $url); `
	Invoke-WebRequest -Uri $url -OutFile 'go.zip'; `
	`
	Expand-Archive go.zip -DestinationPath C:\; `
	Remove-Item go.zip -Force
WORKDIR C:\
FROM mcr.microsoft.com/windows/nanoserver:ltsc2022
COPY --from=build C:\go C:\go
"#,
            froms: &[
                "mcr.microsoft.com/windows/servercore:ltsc2022",
                "mcr.microsoft.com/windows/nanoserver:ltsc2022",
            ],
            stages: &[
                (
                    "mcr.microsoft.com/windows/servercore:ltsc2022",
                    Some("build"),
                ),
                ("mcr.microsoft.com/windows/nanoserver:ltsc2022", None),
            ],
            warnings: &[],
        },
        Case {
            name: "escape directive with odd spacing and case",
            dockerfile: "#  ESCAPE = `\n# syntax=docker/dockerfile:1.7\nFROM busybox\nRUN echo `\nFROM alpine\n",
            froms: &["busybox:latest"],
            stages: &[("busybox:latest", None)],
            warnings: &[],
        },
        Case {
            name: "escape directive after an instruction is a comment",
            dockerfile: "FROM busybox\n# escape=`\nRUN echo `\nFROM alpine\n",
            froms: &["busybox:latest", "alpine:latest"],
            stages: &[("busybox:latest", None), ("alpine:latest", None)],
            warnings: &[],
        },
        Case {
            name: "escape directive after a blank line is a comment",
            dockerfile: "\n# escape=`\nFROM busybox\nRUN echo \\\nFROM alpine\n",
            froms: &["busybox:latest"],
            stages: &[("busybox:latest", None)],
            warnings: &[],
        },
        Case {
            name: "escape directive after another comment is a comment",
            dockerfile: "# a comment\n# escape=`\nFROM busybox\nRUN echo \\\nFROM alpine\n",
            froms: &["busybox:latest"],
            stages: &[("busybox:latest", None)],
            warnings: &[],
        },
        Case {
            name: "invalid escape directive and custom frontend",
            dockerfile: "# syntax=example.com/custom/frontend:1\n# escape=|\nFROM alpine\n",
            froms: &["alpine:latest"],
            stages: &[("alpine:latest", None)],
            warnings: &[
                (1, "keg reads the file as a standard Dockerfile"),
                (2, "escape parser directive `|` is not \\ or `"),
            ],
        },
        Case {
            name: "heredocs hide FROM-looking lines",
            dockerfile: r#"# syntax=docker/dockerfile:1
FROM debian:bookworm-slim
RUN <<EOF
set -eux
FROM not-a-parent:1
EOF
RUN <<FILE1 cat > /file1 && cat <<-"FILE2" > /file2
FROM nope:1
FILE1
	FROM nope:2
	FILE2
COPY <<'EOT' /usr/local/bin/entrypoint.sh
#!/bin/sh
FROM nope:3
EOT
FROM alpine:3.20
"#,
            froms: &["debian:bookworm-slim", "alpine:3.20"],
            stages: &[("debian:bookworm-slim", None), ("alpine:3.20", None)],
            warnings: &[],
        },
        Case {
            name: "heredoc opened after a continuation, and under ONBUILD",
            dockerfile: r#"FROM alpine:3.20
RUN --mount=type=cache,target=/var/cache/apk \
    <<EOF
apk add curl
FROM nope
EOF
ONBUILD RUN <<SCRIPT
FROM nope:2
SCRIPT
"#,
            froms: &["alpine:3.20"],
            stages: &[("alpine:3.20", None)],
            warnings: &[],
        },
        Case {
            name: "quoted << is not a heredoc",
            dockerfile: "FROM alpine\nRUN echo \"<<EOF\"\nFROM debian\n",
            froms: &["alpine:latest", "debian:latest"],
            stages: &[("alpine:latest", None), ("debian:latest", None)],
            warnings: &[],
        },
        Case {
            name: "heredoc terminator with trailing space does not end <<EOF",
            dockerfile: "FROM alpine\nRUN <<EOF\nEOF \nFROM nope\nEOF\nFROM debian\n",
            froms: &["alpine:latest", "debian:latest"],
            stages: &[("alpine:latest", None), ("debian:latest", None)],
            warnings: &[],
        },
        Case {
            name: "unterminated heredoc",
            dockerfile: "FROM alpine:3.20\nRUN <<EOF\necho hi\nFROM nope\n",
            froms: &["alpine:3.20"],
            stages: &[("alpine:3.20", None)],
            warnings: &[(2, "heredoc <<EOF is not terminated")],
        },
        Case {
            name: "comments and blank lines inside continuations",
            dockerfile: r#"FROM debian:bookworm
RUN set -eux; \
# a comment at column 0 \
	apt-get update; \

	apt-get install -y --no-install-recommends ca-certificates; \
	# an indented comment without a backslash
	rm -rf /var/lib/apt/lists/*
FROM scratch
"#,
            froms: &["debian:bookworm", "scratch"],
            stages: &[("debian:bookworm", None), ("scratch", None)],
            warnings: &[],
        },
        Case {
            name: "blank line inside a continuation joins the next instruction",
            dockerfile: "FROM alpine\nRUN echo hi \\\n\nFROM debian\n",
            froms: &["alpine:latest"],
            stages: &[("alpine:latest", None)],
            warnings: &[],
        },
        Case {
            name: "CRLF line endings",
            dockerfile: "FROM alpine:3.20 AS build\r\nRUN apk add --no-cache \\\r\n\tcurl\r\nFROM scratch\r\nCOPY --from=build / /\r\n",
            froms: &["alpine:3.20", "scratch"],
            stages: &[("alpine:3.20", Some("build")), ("scratch", None)],
            warnings: &[],
        },
        Case {
            name: "BOM, CRLF and backtick escape",
            dockerfile: "\u{feff}# escape=`\r\nFROM mcr.microsoft.com/windows/nanoserver:ltsc2022\r\nRUN echo `\r\n  C:\\\r\nFROM scratch\r\n",
            froms: &["mcr.microsoft.com/windows/nanoserver:ltsc2022", "scratch"],
            stages: &[
                ("mcr.microsoft.com/windows/nanoserver:ltsc2022", None),
                ("scratch", None),
            ],
            warnings: &[],
        },
        Case {
            name: "registry with port",
            dockerfile: "FROM localhost:5000/foo AS a\nFROM registry.example.com:5000/team/app:1.2\n",
            froms: &[
                "localhost:5000/foo:latest",
                "registry.example.com:5000/team/app:1.2",
            ],
            stages: &[
                ("localhost:5000/foo:latest", Some("a")),
                ("registry.example.com:5000/team/app:1.2", None),
            ],
            warnings: &[],
        },
        Case {
            name: "digests",
            dockerfile: "FROM debian@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nFROM alpine:3.20@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
            froms: &[
                "debian@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "alpine:3.20@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ],
            stages: &[
                (
                    "debian@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                    None,
                ),
                (
                    "alpine:3.20@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                    None,
                ),
            ],
            warnings: &[],
        },
        Case {
            name: "scratch",
            dockerfile: "FROM scratch\nCOPY hello /\nCMD [\"/hello\"]\n",
            froms: &["scratch"],
            stages: &[("scratch", None)],
            warnings: &[],
        },
        Case {
            name: "stage chains resolve to the external image",
            dockerfile: "FROM debian AS base\nFROM base AS build\nFROM build\n",
            froms: &["debian:latest"],
            stages: &[
                ("debian:latest", Some("base")),
                ("debian:latest", Some("build")),
                ("debian:latest", None),
            ],
            warnings: &[],
        },
        Case {
            name: "stage named like an image",
            dockerfile: "FROM debian:bookworm AS debian\nFROM debian\n",
            froms: &["debian:bookworm"],
            stages: &[
                ("debian:bookworm", Some("debian")),
                ("debian:bookworm", None),
            ],
            warnings: &[],
        },
        Case {
            name: "duplicate parents are listed once",
            dockerfile: "FROM debian:bookworm AS a\nFROM debian:bookworm AS b\nFROM debian\nCOPY --from=debian:bookworm / /\n",
            froms: &["debian:bookworm", "debian:latest"],
            stages: &[
                ("debian:bookworm", Some("a")),
                ("debian:bookworm", Some("b")),
                ("debian:latest", None),
            ],
            warnings: &[],
        },
        Case {
            name: "ARG default in ${}",
            dockerfile: "ARG DEBIAN_SUITE=bookworm\nFROM debian:${DEBIAN_SUITE}-slim\n",
            froms: &["debian:bookworm-slim"],
            stages: &[("debian:bookworm-slim", None)],
            warnings: &[],
        },
        Case {
            name: "ARG default using an earlier ARG, $NAME form",
            dockerfile: r#"ARG GOLANG_VERSION=1.22
ARG BUILDER=golang:$GOLANG_VERSION-alpine
FROM --platform=$BUILDPLATFORM $BUILDER AS build
FROM alpine:3.20
COPY --from=build /out /
"#,
            froms: &["golang:1.22-alpine", "alpine:3.20"],
            stages: &[("golang:1.22-alpine", Some("build")), ("alpine:3.20", None)],
            warnings: &[],
        },
        Case {
            name: "several ARGs on one line, quoted default",
            dockerfile: "ARG REGISTRY=\"registry.example.com:5000\" IMAGE=app\nFROM ${REGISTRY}/team/${IMAGE}\n",
            froms: &["registry.example.com:5000/team/app:latest"],
            stages: &[("registry.example.com:5000/team/app:latest", None)],
            warnings: &[],
        },
        Case {
            name: "${NAME:-default} with an ARG without default",
            dockerfile: "ARG ALPINE_VERSION\nFROM alpine:${ALPINE_VERSION:-3.20}\n",
            froms: &["alpine:3.20"],
            stages: &[("alpine:3.20", None)],
            warnings: &[],
        },
        Case {
            name: "${NAME:+word} set and empty",
            dockerfile: "ARG VARIANT=slim\nARG NONE=\nFROM debian:bookworm${VARIANT:+-$VARIANT}\nFROM debian:bookworm${NONE:+-$NONE}\n",
            froms: &["debian:bookworm-slim", "debian:bookworm"],
            stages: &[("debian:bookworm-slim", None), ("debian:bookworm", None)],
            warnings: &[],
        },
        Case {
            name: "ARG without default keeps the reference as written",
            dockerfile: r#"ARG BASE
FROM ${BASE} AS base
RUN echo hi
FROM base
COPY --from=base / /
"#,
            froms: &["${BASE}"],
            stages: &[("${BASE}", Some("base")), ("${BASE}", None)],
            warnings: &[(
                2,
                "FROM ${BASE} uses ${BASE}, which has no default value (ARG BASE without a default before the first FROM)",
            )],
        },
        Case {
            name: "undeclared variable",
            dockerfile: "FROM alpine:$ALPINE_VERSION\n",
            froms: &["alpine:$ALPINE_VERSION"],
            stages: &[("alpine:$ALPINE_VERSION", None)],
            warnings: &[(1, "uses ${ALPINE_VERSION}, which is not declared")],
        },
        Case {
            name: "ARG after the first FROM is not global",
            dockerfile: "ARG TAG=3.20\nFROM alpine:$TAG\nARG TAG=3.19\nFROM alpine:$TAG\nARG LATER=1\nFROM debian:$LATER\n",
            froms: &["alpine:3.20", "debian:$LATER"],
            stages: &[
                ("alpine:3.20", None),
                ("alpine:3.20", None),
                ("debian:$LATER", None),
            ],
            warnings: &[(6, "uses ${LATER}, which is not declared")],
        },
        Case {
            name: "platform argument in the image",
            dockerfile: "FROM --platform=$BUILDPLATFORM tonistiigi/xx:1.4 AS xx\nFROM golang:1.22-$TARGETOS\n",
            froms: &["tonistiigi/xx:1.4", "golang:1.22-$TARGETOS"],
            stages: &[
                ("tonistiigi/xx:1.4", Some("xx")),
                ("golang:1.22-$TARGETOS", None),
            ],
            warnings: &[(2, "uses ${TARGETOS}, which is set from the build platform")],
        },
        Case {
            name: "variables in --from are not expanded",
            dockerfile: "ARG SRC=busybox\nFROM alpine\nCOPY --from=${SRC} /bin/busybox /bin/\nRUN --mount=type=bind,from=$SRC,target=/b true\n",
            froms: &["alpine:latest"],
            stages: &[("alpine:latest", None)],
            warnings: &[
                (3, "COPY --from=${SRC} uses a variable"),
                (4, "RUN --mount from=$SRC uses a variable"),
            ],
        },
        Case {
            name: "quoted image",
            dockerfile: "FROM \"alpine:3.20\" AS q\n",
            froms: &["alpine:3.20"],
            stages: &[("alpine:3.20", Some("q"))],
            warnings: &[],
        },
        Case {
            name: "FROM without an image",
            dockerfile: "FROM --platform=linux/amd64\nFROM alpine\n",
            froms: &["alpine:latest"],
            stages: &[("alpine:latest", None)],
            warnings: &[(1, "FROM names no image")],
        },
        Case {
            name: "empty input",
            dockerfile: "",
            froms: &[],
            stages: &[],
            warnings: &[],
        },
        Case {
            name: "lone backslash at EOF",
            dockerfile: "FROM alpine\nRUN echo \\",
            froms: &["alpine:latest"],
            stages: &[("alpine:latest", None)],
            warnings: &[],
        },
    ];

    #[test]
    fn table() {
        for case in CASES {
            let scan = scan(case.dockerfile);
            let name = case.name;
            assert_eq!(scan.froms, case.froms, "{name}: froms");
            let stage_froms: Vec<&str> = case.stages.iter().map(|stage| stage.0).collect();
            let stage_names: Vec<Option<&str>> = case.stages.iter().map(|stage| stage.1).collect();
            assert_eq!(scan.stage_froms, stage_froms, "{name}: stage_froms");
            let names: Vec<Option<&str>> = scan.stage_names.iter().map(Option::as_deref).collect();
            assert_eq!(names, stage_names, "{name}: stage_names");
            assert_eq!(
                scan.last_stage_from(),
                stage_froms.last().copied(),
                "{name}: last_stage_from"
            );
            assert_eq!(
                scan.warnings.len(),
                case.warnings.len(),
                "{name}: warnings {:?}",
                scan.warnings
            );
            for (warning, &(line, text)) in scan.warnings.iter().zip(case.warnings) {
                assert_eq!(warning.line, line, "{name}: {warning:?}");
                assert!(warning.message.contains(text), "{name}: {warning:?}");
            }
        }
    }

    #[test]
    fn unresolved_from_message_is_self_contained() {
        let scan = scan("# syntax=docker/dockerfile:1\nARG BASE\nFROM ${BASE}\n");
        let warning = scan.unresolved_from().expect("unresolved FROM");
        assert_eq!(warning.line, 3);
        assert_eq!(
            warning.message,
            "Dockerfile line 3: FROM ${BASE} uses ${BASE}, which has no default value \
             (ARG BASE without a default before the first FROM)"
        );
        assert_eq!(scan.last_stage_from(), Some("${BASE}"));
    }

    #[test]
    fn unresolved_from_ignores_other_warnings() {
        for dockerfile in [
            "FROM alpine\nRUN <<EOF\nFROM nope\n",
            "ARG X=a\nFROM alpine\nCOPY --from=$X / /\n",
        ] {
            let scanned = scan(dockerfile);
            assert_eq!(scanned.warnings.len(), 1, "{dockerfile}");
            assert_eq!(scanned.unresolved_from(), None, "{dockerfile}");
        }
    }

    #[test]
    fn substitution_forms() {
        let cases = [
            ("ARG A=x\nFROM img:${A-y}", "img:x"),
            ("ARG A=\nFROM img:v${A-y}", "img:v"),
            ("ARG A=\nFROM img:${A:-y}", "img:y"),
            ("FROM img:${UNDECLARED:-y}", "img:y"),
            ("ARG A\nFROM img:v${A+y}", "img:v"),
            ("ARG A=\nFROM img:v${A+y}", "img:vy"),
            ("ARG A=x\nFROM img:${A:?must-be-set}", "img:x"),
            ("ARG A=x\nFROM 'img':\"$A\"", "img:x"),
            ("ARG A=x\nFROM img:\\$A", "img:$A"),
            ("ARG A=x B=${A}y C=${B:-z}z\nFROM img:$C", "img:xyz"),
            ("ARG A=1\nARG A\nFROM img:$A", "img:1"),
            ("ARG TARGETARCH=amd64\nFROM img:$TARGETARCH", "img:amd64"),
        ];
        for (dockerfile, expected) in cases {
            let scan = scan(dockerfile);
            assert_eq!(scan.last_stage_from(), Some(expected), "{dockerfile}");
            assert_eq!(scan.warnings, [], "{dockerfile}");
        }
    }

    #[test]
    fn unresolvable_substitutions() {
        let cases = [
            ("ARG A\nFROM img:${A:?}", "which has no default value"),
            ("ARG A=\nFROM img:${A:?}", "but A is empty"),
            (
                "ARG A=1.2.3\nFROM img:${A%.*}",
                "substitution of ${A} that keg does not support",
            ),
            ("ARG A=x\nFROM img:${A", "unterminated"),
            ("FROM 'img", "unterminated"),
            (
                "ARG A\nARG B=$A\nFROM img:${B:-x}",
                "uses ${A}, which has no default value",
            ),
            ("ARG A=\nFROM $A", "expands to an empty image name"),
        ];
        for (dockerfile, expected) in cases {
            let scan = scan(dockerfile);
            let warning = scan.unresolved_from().expect(dockerfile);
            assert!(
                warning.message.contains(expected),
                "{dockerfile}: {warning:?}"
            );
        }
    }

    #[test]
    fn normalize() {
        let cases = [
            ("debian", "debian:latest"),
            ("debian:bookworm", "debian:bookworm"),
            ("library/debian", "library/debian:latest"),
            ("localhost:5000/foo", "localhost:5000/foo:latest"),
            ("localhost:5000/foo:1", "localhost:5000/foo:1"),
            ("foo@sha256:abc", "foo@sha256:abc"),
            ("foo:1.0@sha256:abc", "foo:1.0@sha256:abc"),
            (
                "localhost:5000/foo@sha256:abc",
                "localhost:5000/foo@sha256:abc",
            ),
            ("scratch", "scratch"),
            ("", ""),
        ];
        for (reference, expected) in cases {
            assert_eq!(normalize_ref(reference), expected, "{reference}");
        }
        assert_eq!(
            normalize_ref(&format!("debian@{DIGEST}")),
            format!("debian@{DIGEST}")
        );
    }

    #[test]
    fn duplicate_directive_keeps_the_first() {
        let scan = scan("# escape=`\n# escape=\\\nFROM a\nRUN x `\nFROM b\n");
        assert_eq!(scan.froms, ["a:latest"]);
        assert_eq!(scan.warnings.len(), 1);
        assert!(scan.warnings[0].message.contains("repeated"));
    }

    /// Structural invariants every scan must satisfy.
    fn check_invariants(text: &str) {
        let scan = scan(text);
        assert_eq!(scan.stage_froms.len(), scan.stage_names.len(), "{text:?}");
        assert_eq!(
            scan.last_stage_from(),
            scan.stage_froms.last().map(String::as_str)
        );
        let unique: HashSet<&String> = scan.froms.iter().collect();
        assert_eq!(unique.len(), scan.froms.len(), "{text:?}");
        assert!(scan.warnings.windows(2).all(|w| w[0].line <= w[1].line));
        for stage_from in &scan.stage_froms {
            assert!(scan.froms.contains(stage_from), "{text:?}");
        }
    }

    #[test]
    fn every_prefix_of_every_case() {
        for case in CASES {
            let text = case.dockerfile;
            for (end, _) in text.char_indices().chain([(text.len(), ' ')]) {
                check_invariants(&text[..end]);
            }
        }
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }
    }

    #[test]
    fn random_bytes() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let len = rng.below(300);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            check_invariants(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn random_dockerfile_tokens() {
        const TOKENS: &[&str] = &[
            "FROM ",
            "from ",
            "ARG ",
            "RUN ",
            "COPY ",
            "ADD ",
            "ONBUILD ",
            " AS ",
            " as ",
            "x",
            "alpine",
            ":3.20",
            "@sha256:ab",
            "/",
            "localhost:5000",
            "scratch",
            "0",
            "1",
            " ",
            "\t",
            "\n",
            "\r\n",
            "\\",
            "`",
            "#",
            "# escape=`\n",
            "# escape=\\\n",
            "<<",
            "<<-",
            "EOF",
            "\"",
            "'",
            "$",
            "{",
            "}",
            ":-",
            ":+",
            ":?",
            "%",
            "=",
            ",",
            "--from=",
            "--mount=",
            "type=bind,",
            "from=",
            "--platform=$BUILDPLATFORM ",
            "--",
            "\u{feff}",
            "é",
            "${A",
            "${",
        ];
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for _ in 0..3000 {
            let count = rng.below(60);
            let text: String = (0..count)
                .map(|_| TOKENS[rng.below(TOKENS.len())])
                .collect();
            check_invariants(&text);
        }
    }

    #[test]
    fn deep_nesting_is_malformed_not_a_stack_overflow() {
        let image = format!("img:{}x{}", "${A:-".repeat(10_000), "}".repeat(10_000));
        let scan = scan(&format!("FROM {image}\n"));
        assert_eq!(scan.stage_froms, [image]);
        assert!(scan.unresolved_from().is_some());
    }
}
