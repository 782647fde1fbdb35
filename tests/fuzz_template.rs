//! Property tests of the `cat --format` template engine ([`keg::template`]).
//!
//! - Templates assembled from the language's pieces (delimiters with and without trim
//!   markers, keywords, fields and method calls of bashbrew's model, every function, literals,
//!   pipes, parentheses, variables) and arbitrary text: parsing and executing them over a
//!   real manifest never panics, ends in bounded time, and gives the same result twice.
//! - A parse error always reads `template: NAME:LINE: ...` with a line inside the template; an
//!   execution error `template: NAME:LINE:COL: executing "..." at <...>: ...`.
//!
//! - Deeply nested templates end in output or Go's depth errors, never a stack overflow.
//!
//! KEG_FUZZ_CASES sets the number of cases (scripts/fuzz runs a long pass).

use std::time::{Duration, Instant};

use keg::manifest;
use keg::template::model::{Froms, Host, RepoData};
use keg::template::value::{EntryRef, RepoRef};
use keg::template::{Template, Value};
use proptest::prelude::*;

const BOUND: Duration = Duration::from_secs(5);

fn cases() -> u32 {
    std::env::var("KEG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

const MANIFEST: &str = "Maintainers: Jane (@jane)
GitRepo: https://example.com/x.git
Architectures: amd64, arm64v8

Tags: 1.0, 1, latest
SharedTags: stable
GitCommit: 0123456789abcdef0123456789abcdef01234567
Directory: 1
arm64v8-Directory: 1/arm

Tags: 1.0-alpine, alpine
SharedTags: stable
Architectures: amd64
GitCommit: 0123456789abcdef0123456789abcdef01234567
Directory: 1/alpine
Constraints: !aufs
";

struct FuzzHost;

impl<'a> Host<'a> for FuzzHost {
    fn arch(&self) -> &str {
        "amd64"
    }
    fn namespace(&self) -> &str {
        "ns"
    }
    fn arch_namespace(&self, arch: &str) -> String {
        format!("{arch}ns")
    }
    fn index(&self) -> i64 {
        1
    }
    fn git_cache(&self) -> Result<String, String> {
        Ok("/cache/git".into())
    }
    fn dockerfile(
        &self,
        _: &RepoData<'a>,
        e: &manifest::Entry,
        arch: &str,
    ) -> Result<Froms, String> {
        Ok(Froms {
            froms: vec![format!("base:{}-{arch}", e.tags[0])],
            last_stage: "base:last".into(),
        })
    }
    fn git_time(&self, _: &RepoData<'a>, _: &manifest::Entry, _: &str) -> Result<i64, String> {
        Ok(0)
    }
    fn skip_constraints(&self, _: &RepoData<'a>, _: &manifest::Entry) -> bool {
        false
    }
    fn image_id(&self, image: &str) -> Result<String, String> {
        Ok(format!("sha256:{image}"))
    }
    fn sorted_entries(&self, r: &RepoData<'a>, _: bool) -> Result<Vec<EntryRef<'a>>, String> {
        Ok(r.manifest.entries.iter().map(EntryRef::Borrowed).collect())
    }
}

const SYNTAX: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    "{{/* c */}}",
    " ",
    "\n",
    "|",
    "(",
    ")",
    ":=",
    "=",
    ",",
    ".",
    "$",
    "$e",
    "$i",
    "$x := ",
    "range ",
    "if ",
    "else",
    "else if ",
    "with ",
    "end",
    "break",
    "continue",
    "define \"d\"",
    "template \"d\" .",
    "block \"b\" .",
    "nil",
    "true",
    "0",
    "1",
    "-1",
    "1.5",
    "1e3",
    "0x1F",
    "'a'",
    "\"s\"",
    "\"%s %d %q %v %x %5.2f %[2]s %*d\"",
    "`raw`",
    ".RepoName",
    ".TagName",
    ".Manifest",
    ".Manifest.Global",
    ".Entries",
    ".TagEntry",
    ".TagEntries",
    ".Tags",
    ".Architectures",
    ".ArchValues",
    ".Directory",
    ".Nope",
    ".HasArchitecture arch",
    ".ArchDirectory \"arm64v8\"",
    ".ClearDefaults defaults",
    "$.Tags namespace false",
    "$.ArchDockerFroms arch",
    "$.DockerFroms",
    ".GetTag \"1\"",
    ".GetSharedTagGroups",
    ".Identifier",
    ".SortedEntries true",
    "é",
    "{",
    "}",
    "#",
    "\\",
    "\"",
    "`",
    "'",
];

/// The pieces templates are made of: syntax and the model's fields and methods, and every
/// function the engine knows.
fn pieces() -> Vec<&'static str> {
    SYNTAX
        .iter()
        .chain(keg::template::funcs::NAMES)
        .copied()
        .collect()
}

fn template_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(pieces()).prop_map(str::to_string),
            1 => "[ -~]{0,6}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// Templates that parse more often: actions made of a few pieces.
fn action_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(&["{{ ", "{{- "][..]),
            prop::collection::vec(prop::sample::select(pieces()), 1..5),
            prop::sample::select(&[" }}", " -}}"][..]),
        )
            .prop_map(|(open, body, close)| format!("{open}{}{close}", body.join(" "))),
        1..6,
    )
    .prop_map(|actions| actions.concat())
}

fn run(text: &str) -> Result<String, String> {
    let m = manifest::parse("x", MANIFEST.as_bytes()).unwrap().manifest;
    let repo = RepoData {
        name: "x".into(),
        tag: None,
        manifest: &m,
        tag_entries: Vec::new(),
        library: None,
    };
    let template = Template::parse("--format", text).map_err(|e| e.0)?;
    let mut out = String::new();
    template
        .execute(Value::Repo(RepoRef::Borrowed(&repo)), &FuzzHost, &mut out)
        .map_err(|e| e.0)?;
    Ok(out)
}

fn check(text: &str) -> Result<(), TestCaseError> {
    let start = Instant::now();
    let first = run(text);
    prop_assert!(start.elapsed() < BOUND, "slow: {text:?}");
    prop_assert_eq!(&first, &run(text), "not deterministic: {:?}", text);
    if let Err(message) = &first {
        let lines = text.split('\n').count();
        let rest = message
            .strip_prefix("template: --format:")
            .ok_or_else(|| TestCaseError::fail(format!("{message:?} for {text:?}")))?;
        let line: usize = rest
            .split(':')
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| TestCaseError::fail(format!("no line in {message:?}")))?;
        prop_assert!(
            (1..=lines).contains(&line),
            "line {} outside the template ({} lines): {:?}",
            line,
            lines,
            message
        );
    }
    Ok(())
}

/// Deeply nested templates: control structures (each opened once per level, so the work
/// stays linear), parentheses, and optionally a template that calls itself.
fn deep_text() -> impl Strategy<Value = String> {
    const OPENERS: &[&str] = &[
        "{{if 1}}",
        "{{with 1}}",
        "{{range 1}}",
        "{{block \"b\" 1}}",
        "{{if 0}}{{else if 1}}",
    ];
    (
        prop::collection::vec(prop::sample::select(OPENERS), 0..1200),
        0usize..1200,
        any::<bool>(),
    )
        .prop_map(|(openers, parens, recursive)| {
            // A recursive template runs its parentheses once per call (up to 10000 calls),
            // so they stay few there to keep the work within the time bound.
            let parens = if recursive { parens % 50 } else { parens };
            let inner = format!("{{{{ {}1{} }}}}", "(".repeat(parens), ")".repeat(parens));
            let body = format!(
                "{}{inner}{}{}",
                openers.concat(),
                if recursive {
                    "{{template \"d\" .}}"
                } else {
                    ""
                },
                "{{end}}".repeat(openers.len())
            );
            if recursive {
                format!("{{{{define \"d\"}}}}{body}{{{{end}}}}{{{{template \"d\" .}}}}")
            } else {
                body
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_templates_never_panic(text in template_text()) {
        check(&text)?;
    }

    #[test]
    fn action_templates_never_panic(text in action_text()) {
        check(&text)?;
    }
}

proptest! {
    // Each case is up to ~10000 levels deep: an eighth of the cases covers it.
    #![proptest_config(ProptestConfig { cases: cases().div_ceil(8), ..ProptestConfig::default() })]

    /// Any depth ends in output or Go's depth errors, never a stack overflow (the test
    /// threads have 2 MiB stacks; the CLI's main thread 8 MiB).
    #[test]
    fn deep_templates_are_bounded(text in deep_text()) {
        check(&text)?;
        if let Err(message) = run(&text) {
            prop_assert!(
                message.ends_with("max expression depth exceeded")
                    // Nested {{block "b"}}s define "b" twice, as in Go.
                    || message.contains("multiple definition of template \"b\"")
                    || message.ends_with("exceeded maximum template depth (10000)"),
                "{}", message
            );
        }
    }
}
