//! Property test: no input makes the manifest parser panic or hang, and every manifest it
//! accepts survives a round trip through `cat` unchanged.
//!
//! Inputs are real manifests (the Official Images corpus in ../shared when present, plus
//! the samples below) mutated byte-wise and line-wise by proptest.

use std::sync::OnceLock;

use keg::manifest::{self, write};
use proptest::prelude::*;

const SAMPLES: &[&str] = &[
    "Maintainers: Jane Doe <jane@example.com> (@jane),\n             Bob (@bob)\nGitRepo: https://example.com/r.git\nBuilder: buildkit\n\n# comment\nTags: 1.0, 1, latest\nSharedTags: shared\nArchitectures: amd64, arm64v8, i386\nGitCommit: 0123456789abcdef0123456789abcdef01234567\nDirectory: 1/debian\narm64v8-GitCommit: 89abcdef0123456789abcdef0123456789abcdef\narm64v8-GitFetch: refs/heads/dist-arm64v8\n\nTags: 1.0-alpine, 1-alpine\nGitCommit: 0123456789abcdef0123456789abcdef01234567\nDirectory: 1/alpine\nFile: Dockerfile.alpine\nConstraints: !aufs\n",
    "Maintainers: X (@x)\r\nGitRepo: ../repo\r\n\r\nTags: a\r\nGitCommit: 0123456789abcdef0123456789abcdef01234567\r\nBuilder: oci-import\r\nFile: index.json",
];

fn corpus() -> &'static Vec<String> {
    static CORPUS: OnceLock<Vec<String>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut texts: Vec<String> = SAMPLES.iter().map(|s| s.to_string()).collect();
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/corpus/official-images/library"
        );
        if let Ok(read) = std::fs::read_dir(dir) {
            let mut files: Vec<_> = read.filter_map(Result::ok).map(|e| e.path()).collect();
            files.sort();
            // A spread of real files keeps each case fast.
            for path in files.iter().step_by(7) {
                if let Ok(text) = std::fs::read_to_string(path) {
                    texts.push(text);
                }
            }
        }
        texts
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop::sample::select(vec![
        b":".to_vec(),
        b"#".to_vec(),
        b"\n".to_vec(),
        b"\r".to_vec(),
        b"\r\n".to_vec(),
        b" ".to_vec(),
        b"\t".to_vec(),
        b",".to_vec(),
        b"..".to_vec(),
        b"/".to_vec(),
        b"-".to_vec(),
        b"\xff".to_vec(),
        "ü".as_bytes().to_vec(),
        b"\n\n".to_vec(),
        b"Tags: x".to_vec(),
        b"arm64v8-".to_vec(),
        b"\n ".to_vec(),
    ]);
    prop_oneof![
        (any::<usize>(), interesting).prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..4))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete(at, len)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        match m {
            Mutation::Insert(at, insert) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, insert.iter().copied());
            }
            Mutation::Delete(at, len) => {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    let end = (at + len).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
            Mutation::DuplicateLine(i) | Mutation::SwapLines(i, _) => {
                let mut lines: Vec<Vec<u8>> =
                    bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                let a = i % lines.len();
                match m {
                    Mutation::SwapLines(_, j) => {
                        let b = j % lines.len();
                        lines.swap(a, b);
                    }
                    _ => {
                        let line = lines[a].clone();
                        lines.insert(a, line);
                    }
                }
                bytes = lines.join(&b'\n');
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_and_accepted_input_round_trips(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let texts = corpus();
        let text = &texts[pick.index(texts.len())];
        let bytes = apply(text, &mutations);
        match manifest::parse("fuzz", &bytes) {
            Ok(parsed) => {
                let printed = write::manifest_text(&parsed.manifest);
                let again = manifest::parse("again", printed.as_bytes())
                    .unwrap_or_else(|d| panic!("cat output does not parse: {d:?}\n{printed}"));
                // Maintainers and Constraints add to the global values, and bashbrew's cat
                // prints an entry's full list when it differs from the global one, so such
                // lists grow on a round trip (in bashbrew too); everything else is fixed.
                let m = &parsed.manifest;
                let additive = |global: &Vec<String>, own: &Vec<String>| !global.is_empty() && own != global;
                let grows = m.entries.iter().any(|e| {
                    additive(&m.global.maintainers, &e.maintainers) || additive(&m.global.constraints, &e.constraints)
                });
                if !grows {
                    prop_assert_eq!(write::manifest_text(&again.manifest), printed);
                }
            }
            Err(diagnostics) => {
                prop_assert!(!diagnostics.is_empty());
                for d in diagnostics {
                    // Every diagnostic renders and points inside the input.
                    prop_assert!(d.span.offset <= bytes.len() * 3);
                    prop_assert!(d.to_string().contains("--> fuzz:"));
                }
            }
        }
    }
}

#[test]
fn every_corpus_file_parses_and_round_trips() {
    for text in corpus() {
        let parsed = manifest::parse("corpus", text.as_bytes()).unwrap_or_else(|d| {
            panic!(
                "{}",
                d.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        let printed = write::manifest_text(&parsed.manifest);
        let again = manifest::parse("again", printed.as_bytes()).expect("round trip");
        assert_eq!(again.manifest.entries.len(), parsed.manifest.entries.len());
    }
}

/// 512 cases by default; KEG_FUZZ_CASES for longer local runs.
fn cases() -> u32 {
    std::env::var("KEG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}
