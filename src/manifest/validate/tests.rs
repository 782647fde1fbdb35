//! Table tests: input -> model, and input -> every error at line:column.

use super::*;
use crate::manifest::write;

const HEAD: &str =
    "Maintainers: Jane Doe <jane@example.com> (@jane)\nGitRepo: https://example.com/r.git\n";
const C1: &str = "0123456789abcdef0123456789abcdef01234567";
const C2: &str = "89abcdef0123456789abcdef0123456789abcdef";

fn ok(text: &str) -> Manifest {
    match parse("m", text.as_bytes()) {
        Ok(parsed) => parsed.manifest,
        Err(d) => panic!("unexpected errors for {text:?}:\n{}", render(&d)),
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every error as (line, column, message).
fn errors(text: &str) -> Vec<(usize, usize, String)> {
    match parse("m", text.as_bytes()) {
        Ok(_) => panic!("expected errors for {text:?}"),
        Err(d) => d
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| (d.span.line, d.span.col, d.message.clone()))
            .collect(),
    }
}

#[test]
fn valid_models() {
    type Check = fn(&Manifest);
    let cases: Vec<(String, Check)> = vec![
        (format!("{HEAD}\nTags: 1, latest\nGitCommit: {C1}\n"), |m| {
            let e = &m.entries[0];
            assert_eq!(e.tags, ["1", "latest"]);
            assert_eq!(e.architectures, ["amd64"]);
            assert_eq!(e.git_fetch, "refs/heads/master");
            assert_eq!((e.directory.as_str(), e.file.as_str()), (".", "Dockerfile"));
            assert_eq!(e.git_repo, "https://example.com/r.git");
        }),
        // Architectures replace, sorted and de-duplicated; SharedTags replace and de-duplicate.
        (
            format!(
                "{HEAD}Architectures: s390x\nSharedTags: g\n\nTags: a\nArchitectures: i386, amd64, i386\nSharedTags: s, s, t\nGitCommit: {C1}\n\nTags: b\nGitCommit: {C2}\n"
            ),
            |m| {
                assert_eq!(m.entries[0].architectures, ["amd64", "i386"]);
                assert_eq!(m.entries[0].shared_tags, ["s", "t"]);
                assert_eq!(m.entries[1].architectures, ["s390x"]);
                assert_eq!(m.entries[1].shared_tags, ["g"]);
            },
        ),
        // Maintainers and Constraints add to the global values.
        (
            format!(
                "{HEAD}Constraints: a\n\nTags: x\nMaintainers: Bob (@bob)\nConstraints: !b\nGitCommit: {C1}\n"
            ),
            |m| {
                assert_eq!(m.entries[0].maintainers.len(), 2);
                assert_eq!(m.entries[0].constraints, ["a", "!b"]);
            },
        ),
        // Continuations and comments inside a list; CRLF; no final newline.
        (
            format!("{HEAD}\r\nTags: a,\r\n# note\r\n  b,\r\n\tc\r\nGitCommit: {C1}"),
            |m| assert_eq!(m.entries[0].tags, ["a", "b", "c"]),
        ),
        // Directory is path-cleaned, also in arch overrides; arch values are kept.
        (
            format!(
                "{HEAD}\nTags: a\nGitCommit: {C1}\nDirectory: ./x//y/../z/\narm64v8-Directory: ./w/\narm64v8-GitCommit: {C2}\nArchitectures: amd64, arm64v8\n"
            ),
            |m| {
                let e = &m.entries[0];
                assert_eq!(e.directory, "x/z");
                assert_eq!(e.arch_directory("arm64v8"), "w");
                assert_eq!(e.arch_git_commit("arm64v8"), C2);
                assert_eq!(e.arch_git_commit("amd64"), C1);
            },
        ),
        // Entries that build the same artifacts merge into the first, tags appended.
        (
            format!(
                "{HEAD}\nTags: a\nSharedTags: s\nGitCommit: {C1}\n\nTags: b\nGitCommit: {C2}\n\nTags: c\nSharedTags: s, t\nGitCommit: {C1}\n"
            ),
            |m| {
                assert_eq!(m.entries.len(), 2);
                assert_eq!(m.entries[0].tags, ["a", "c"]);
                assert_eq!(m.entries[0].shared_tags, ["s", "t"]);
            },
        ),
        // Builder values, also per architecture; a 64-hex commit.
        (
            format!(
                "{HEAD}Builder: buildkit\n\nTags: a\nGitCommit: {C1}0123456789abcdef01234567\namd64-Builder: oci-import\n\nTags: b\nBuilder:\nGitCommit: {C2}\n"
            ),
            |m| {
                assert_eq!(m.entries[0].git_commit.len(), 64);
                assert_eq!(m.entries[0].arch_builder("amd64"), Builder::OciImport);
                assert_eq!(m.entries[0].arch_builder("i386"), Builder::Buildkit);
                assert_eq!(m.entries[1].arch_builder("amd64"), Builder::Classic);
            },
        ),
        // Blank lines and comments everywhere; `#` inside a value is kept.
        (
            format!(
                "\n\n# c\n{HEAD}\n\n\n# between\n\nTags: a\n  # indented comment\nGitCommit: {C1}\nConstraints: x#y\n\n\n"
            ),
            |m| assert_eq!(m.entries[0].constraints, ["x#y"]),
        ),
    ];
    for (text, check) in cases {
        check(&ok(&text));
    }
}

#[test]
fn error_positions() {
    type Case = (String, Vec<(usize, usize, &'static str)>);
    let cases: Vec<Case> = vec![
        ("".to_string(), vec![(1, 1, "missing Maintainers")]),
        (
            "GitRepo: x\n".to_string(),
            vec![(1, 1, "missing Maintainers")],
        ),
        (
            "Maintainers: nobody\n".to_string(),
            vec![(1, 14, "invalid Maintainers: \"nobody\"")],
        ),
        (
            format!("{HEAD}Tags: x\n"),
            vec![(3, 1, "global Tags not permitted")],
        ),
        (
            format!("{HEAD}\nGitCommit: {C1}\n"),
            vec![(4, 1, "missing Tags")],
        ),
        (
            "Maintainers: A (@a)\n\nTags: x\n".to_string(),
            vec![(3, 1, "missing GitRepo, GitCommit")],
        ),
        (
            format!("{HEAD}\nTags: x\nGitCommit: deadbeef\n"),
            vec![(
                5,
                12,
                "invalid GitCommit \"deadbeef\": expected a full 40- or 64-hex commit id",
            )],
        ),
        (
            format!("{HEAD}\nTags: x\nGitCommit: {}\n", C1.to_uppercase()),
            vec![(5, 12, "invalid GitCommit")],
        ),
        (
            format!("{HEAD}\nTags: x\nGitCommit: {C1}\nGitFetch: main\n"),
            vec![(6, 11, "invalid GitFetch \"main\"")],
        ),
        (
            format!("{HEAD}\nTags: x\nGitCommit: {C1}\nGitFetch: refs/heads/*\n"),
            vec![(6, 11, "invalid GitFetch")],
        ),
        (
            format!("{HEAD}\nTags: ok, ünicode, .dot\nGitCommit: {C1}\n"),
            vec![
                (4, 11, "invalid Tags value \"ünicode\""),
                (4, 20, "invalid Tags value \".dot\""),
            ],
        ),
        (
            format!("{HEAD}\nTags: {}\nGitCommit: {C1}\n", "a".repeat(129)),
            vec![(4, 7, "invalid Tags value")],
        ),
        (
            format!("{HEAD}\nTags: a,,b\nGitCommit: {C1}\n"),
            vec![(4, 9, "empty item")],
        ),
        (
            format!("{HEAD}\nTags: a,\nGitCommit: {C1}\n"),
            vec![(4, 9, "empty item")],
        ),
        (
            format!("{HEAD}\nTags: a\n  b\nGitCommit: {C1}\n"),
            vec![(4, 7, "one item spans two lines")],
        ),
        (
            format!("{HEAD}\nTags: a\nArchitectures: amd64, arm64\nGitCommit: {C1}\n"),
            vec![(5, 23, "invalid Architectures value \"arm64\"")],
        ),
        // Empty lists are rejected, as bashbrew rejects them.
        (
            format!("{HEAD}\nTags: a\nArchitectures:\nGitCommit: {C1}\n"),
            vec![(5, 15, "Architectures has no value")],
        ),
        (
            format!("{HEAD}SharedTags:  \n\nTags: a\nGitCommit: {C1}\n"),
            vec![(3, 14, "SharedTags has no value")],
        ),
        (
            format!("{HEAD}\nTags: a\nGitCommit: {C1}\narm64v8-GitCommit: abc\n"),
            vec![(6, 20, "invalid GitCommit \"abc\"")],
        ),
        (
            format!("{HEAD}\nTags: a\nGitCommit: {C1}\nDirectory: /etc\n"),
            vec![(6, 12, "expected a relative path")],
        ),
        (
            format!("{HEAD}\nTags: a\nGitCommit: {C1}\nDirectory: a/../../b\n"),
            vec![(6, 12, "leaves the repository")],
        ),
        (
            format!("{HEAD}\nTags: a\nGitCommit: {C1}\nDirectory: a\nFile: ../../Dockerfile\n"),
            vec![(
                7,
                7,
                "invalid File \"../../Dockerfile\": the path leaves the Directory",
            )],
        ),
        (
            format!("{HEAD}\nTags: a\nGitCommit: {C1}\nBuilder: docker\n"),
            vec![(6, 10, "invalid Builder \"docker\"")],
        ),
        (
            format!("{HEAD}\nTags: a\nGitCommit: {C1}\nGitCommit: {C2}\n"),
            vec![(
                6,
                1,
                "GitCommit given twice in one paragraph (first at line 5)",
            )],
        ),
        (
            format!("{HEAD}\nTags: a\nGitCommit: {C1}\n  {C2}\n"),
            vec![(6, 3, "GitCommit takes a single value")],
        ),
        (
            format!("{HEAD}\nTags: a\nGitCommit: {C1}\nnonsense\n"),
            vec![(6, 9, "expected `:` after field name `nonsense`")],
        ),
        (
            format!("{HEAD}\n  orphan: x\nTags: a\nGitCommit: {C1}\n"),
            vec![(4, 3, "continuation line without a field")],
        ),
        (
            format!("{HEAD}\nTags: a\nGitCommit:\n"),
            vec![(5, 11, "GitCommit has no value")],
        ),
        (
            "Maintainers:\n".to_string(),
            vec![(1, 13, "Maintainers has no value")],
        ),
        (
            format!("{HEAD}\nTags:\nGitCommit: {C1}\n"),
            vec![(4, 6, "Tags has no value")],
        ),
        // bashbrew's three tag checks.
        (
            format!("{HEAD}\nTags: a, a\nGitCommit: {C1}\n"),
            vec![(4, 7, "Tags \"a, a\" includes duplicate tag: \"a\"")],
        ),
        (
            format!("{HEAD}\nTags: a\nGitCommit: {C1}\n\nTags: a\nGitCommit: {C2}\n"),
            vec![(
                7,
                7,
                "Tags \"a\" includes duplicate tag: \"a\" (duplicated in \"a\")",
            )],
        ),
        (
            format!(
                "{HEAD}\nTags: a\nSharedTags: s\nGitCommit: {C1}\n\nTags: s\nGitCommit: {C2}\n"
            ),
            vec![(
                8,
                7,
                "includes tag conflicting with a shared tag: \"s\" (shared tag in \"a\")",
            )],
        ),
        (
            format!(
                "{HEAD}\nTags: a\nGitCommit: {C1}\n\nTags: b\nSharedTags: a\nGitCommit: {C2}\n"
            ),
            vec![(
                7,
                7,
                "includes conflicting shared tag: \"a\" (duplicated in \"a\")",
            )],
        ),
        (
            format!("{HEAD}\nTags: a\nSharedTags: a\nGitCommit: {C1}\n"),
            vec![(4, 7, "includes duplicate tag: \"a\" (in SharedTags)")],
        ),
        // Every problem of a file is reported, across paragraphs.
        (
            format!("{HEAD}\nTags: a\nGitCommit: x\n\nTags: b\nGitCommit: y\nBuilder: z\n"),
            vec![
                (5, 12, "invalid GitCommit \"x\""),
                (8, 12, "invalid GitCommit \"y\""),
                (9, 10, "invalid Builder \"z\""),
            ],
        ),
    ];
    for (text, want) in cases {
        let got = errors(&text);
        assert_eq!(got.len(), want.len(), "for {text:?}: got {got:#?}");
        for ((line, col, message), (wl, wc, wm)) in got.iter().zip(&want) {
            assert_eq!(
                (*line, *col),
                (*wl, *wc),
                "position of {message:?} in {text:?}"
            );
            assert!(message.contains(wm), "{message:?} should contain {wm:?}");
        }
    }
}

#[test]
fn bashbrew_leniencies() {
    // Spaces before the colon (RFC 2822's obsolete syntax) are accepted.
    let m = ok(&format!(
        "Maintainers  :  Jane Doe (@jane)\nGitRepo\t: https://example.com/r.git\n\nTags :1, latest\nGitCommit : {C1}\n"
    ));
    assert_eq!(m.entries[0].tags, ["1", "latest"]);
    assert_eq!(m.global.maintainers, ["Jane Doe (@jane)"]);
    // A field for an unknown architecture is a warning; the value is kept for `cat`.
    let text = format!("{HEAD}\nTags: a\nGitCommit: {C1}\nloong64-GitCommit: {C2}\n");
    let parsed = parse("m", text.as_bytes()).unwrap();
    assert_eq!(parsed.warnings.len(), 1);
    let w = &parsed.warnings[0];
    assert_eq!((w.span.line, w.span.col), (6, 1));
    assert!(
        w.message
            .contains("unknown architecture \"loong64\" in loong64-GitCommit")
    );
    assert_eq!(
        parsed.manifest.entries[0].arch_values["loong64-GitCommit"],
        C2
    );
    assert_eq!(parsed.manifest.entries[0].arch_git_commit("amd64"), C1);
    assert!(write::manifest_text(&parsed.manifest).contains(&format!("loong64-GitCommit: {C2}")));
    // An unknown name in Architectures stays an error, as in bashbrew.
    assert_eq!(
        errors(&format!(
            "{HEAD}\nTags: a\nArchitectures: loong64\nGitCommit: {C1}\n"
        ))
        .len(),
        1
    );
}

#[test]
fn invalid_utf8_names_its_byte() {
    let mut bytes = HEAD.as_bytes().to_vec();
    bytes.extend_from_slice(b"\nTags: a\xff\nGitCommit: ");
    bytes.extend_from_slice(C1.as_bytes());
    let err = parse("m", &bytes).unwrap_err();
    let utf8 = err.iter().find(|d| d.message.contains("UTF-8")).unwrap();
    assert!(
        utf8.message
            .contains(&format!("at byte {}", HEAD.len() + 8))
    );
    assert_eq!((utf8.span.line, utf8.span.col), (4, 8));
}

#[test]
fn unknown_fields_warn_with_suggestions() {
    let text =
        format!("{HEAD}\nTagz: a\nTags: a\nGitCommit: {C1}\narm64v8-GitComit: {C2}\nColor: red\n");
    let parsed = parse("m", text.as_bytes()).unwrap();
    let messages: Vec<&str> = parsed.warnings.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "unknown field `Tagz` is ignored (did you mean `Tags`?)",
            "unknown field `arm64v8-GitComit` is ignored (did you mean `arm64v8-GitCommit`?)",
            "unknown field `Color` is ignored",
        ]
    );
}

#[test]
fn maintainer_format() {
    let cases = [
        ("Jane Doe <jane@example.com> (@jane)", true),
        ("Jane Doe (@jane)", true),
        ("Tianon Gravi <admwiggin@gmail.com> (@tianon)", true),
        ("Jane (@jane) ", false),
        ("Jane <> (@jane)", false),
        ("(@jane)", false),
        ("Jane <a b> (@jane)", false),
        ("Jane <a@b>(@jane)", false),
        ("Jane (@ja ne)", false),
        (" Jane (@jane)", false),
    ];
    for (value, want) in cases {
        assert_eq!(valid_maintainer(value), want, "{value:?}");
    }
}

#[test]
fn clean_path_matches_go() {
    let cases = [
        ("", "."),
        (".", "."),
        ("a/b/", "a/b"),
        ("./a//b/./c/..", "a/b"),
        ("../a", "../a"),
        ("a/../..", ".."),
        ("/../a", "/a"),
        ("/", "/"),
    ];
    for (input, want) in cases {
        assert_eq!(clean_path(input), want, "{input:?}");
    }
}

#[test]
fn cat_round_trips_through_the_parser() {
    let text = format!(
        "{HEAD}Builder: buildkit\n\nTags: a, b\nSharedTags: s\nArchitectures: amd64, arm64v8\nGitCommit: {C1}\narm64v8-Directory: arm\nConstraints: c\n\nTags: z\nGitCommit: {C2}\nBuilder: classic\n"
    );
    let first = ok(&text);
    let printed = write::manifest_text(&first);
    let second = ok(&printed);
    assert_eq!(write::manifest_text(&second), printed);
    assert_eq!(
        printed,
        format!(
            "Maintainers: Jane Doe <jane@example.com> (@jane)\nGitRepo: https://example.com/r.git\nBuilder: buildkit\n\nTags: a, b\nSharedTags: s\nArchitectures: amd64, arm64v8\nGitCommit: {C1}\narm64v8-Directory: arm\nConstraints: c\n\nTags: z\nGitCommit: {C2}\nBuilder: classic"
        )
    );
}
