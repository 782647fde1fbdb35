//! Property tests of the Dockerfile scanner ([`keg::dockerfile::scan`]).
//!
//! - Model-based: Dockerfiles generated from a list of stages (external images, stage
//!   references by name and index, `COPY --from`, `RUN --mount=from=`), spelled in the many
//!   ways the syntax allows (case, flags, continuations with `\` or `` ` `` under an escape
//!   directive, comments inside continuations, CRLF, a BOM) and mixed with noise that names
//!   images but must not count (heredoc bodies, `<<-` with tab-indented terminators, quoted
//!   heredoc words, comments): the scan finds exactly the model's parents, in order.
//! - Mutations of those files and arbitrary bytes: no panic, no hang (each scan is timed),
//!   output bounded by the input, the same result twice.
//!
//! KEG_FUZZ_CASES sets the number of cases (scripts/fuzz runs a long pass).

use std::time::{Duration, Instant};

use keg::dockerfile::{normalize_ref, scan};
use proptest::prelude::*;

const BOUND: Duration = Duration::from_secs(5);

fn cases() -> u32 {
    std::env::var("KEG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

const IMAGES: [&str; 6] = [
    "debian",
    "alpine:3.19",
    "127.0.0.1:5000/team/base",
    "ghcr.io/org/tool:1.2",
    "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "scratch",
];

/// What a stage is built on.
#[derive(Debug, Clone)]
enum Base {
    Image(usize),
    /// An earlier stage, by its name.
    Stage(usize),
}

/// Lines that mention images but add no parent, or add one through COPY/RUN.
#[derive(Debug, Clone)]
enum Extra {
    Comment,
    Blank,
    Heredoc { dash: bool, quote: u8, word: usize },
    TwoHeredocs,
    Continued,
    CopyFrom(Base),
    CopyFromIndex(usize),
    MountFrom(Base),
}

#[derive(Debug, Clone)]
struct Stage {
    base: Base,
    /// How the FROM is spelled.
    style: u8,
    extras: Vec<Extra>,
}

#[derive(Debug, Clone)]
struct Model {
    stages: Vec<Stage>,
    backtick: bool,
    crlf: bool,
    bom: bool,
    syntax: bool,
}

fn base(stage: usize) -> BoxedStrategy<Base> {
    if stage == 0 {
        (0..IMAGES.len()).prop_map(Base::Image).boxed()
    } else {
        prop_oneof![
            (0..IMAGES.len()).prop_map(Base::Image),
            (0..stage).prop_map(Base::Stage),
        ]
        .boxed()
    }
}

fn extra(stage: usize) -> BoxedStrategy<Extra> {
    prop_oneof![
        Just(Extra::Comment),
        Just(Extra::Blank),
        (any::<bool>(), 0u8..3, 0usize..3).prop_map(|(dash, quote, word)| Extra::Heredoc {
            dash,
            quote,
            word
        }),
        Just(Extra::TwoHeredocs),
        Just(Extra::Continued),
        base(stage).prop_map(Extra::CopyFrom),
        (0..stage.max(1)).prop_map(Extra::CopyFromIndex),
        base(stage).prop_map(Extra::MountFrom),
    ]
    .boxed()
}

fn model() -> impl Strategy<Value = Model> {
    (1usize..5)
        .prop_flat_map(|n| {
            let stages: Vec<BoxedStrategy<Stage>> = (0..n)
                .map(|i| {
                    (base(i), 0u8..4, prop::collection::vec(extra(i), 0..4))
                        .prop_map(|(base, style, extras)| Stage {
                            base,
                            style,
                            extras,
                        })
                        .boxed()
                })
                .collect();
            (
                stages,
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(|(stages, backtick, crlf, bom, syntax)| Model {
            stages,
            backtick,
            crlf,
            bom,
            syntax,
        })
}

impl Model {
    fn name(i: usize) -> String {
        format!("stage{i}")
    }

    fn reference(base: &Base) -> String {
        match base {
            Base::Image(i) => IMAGES[*i].to_string(),
            // Stage names are case-insensitive.
            Base::Stage(s) if s % 2 == 1 => Model::name(*s).to_uppercase(),
            Base::Stage(s) => Model::name(*s),
        }
    }

    /// The Dockerfile text.
    fn text(&self) -> String {
        let e = if self.backtick { '`' } else { '\\' };
        let mut lines: Vec<String> = Vec::new();
        if self.syntax {
            lines.push("# syntax=docker/dockerfile:1".into());
        }
        if self.backtick {
            lines.push("# escape=`".into());
        }
        lines.push("# FROM not-a-parent:1 (a comment)".into());
        for (i, stage) in self.stages.iter().enumerate() {
            let image = Model::reference(&stage.base);
            let name = Model::name(i);
            lines.push(match stage.style {
                0 => format!("FROM {image} AS {name}"),
                1 => format!("from --platform=$BUILDPLATFORM {image} as {name}"),
                2 => format!(
                    "FROM {e}\n  # a comment inside a continuation\n  {image} {e}\n  AS {name}"
                ),
                _ => format!("From    {image}   AS   {name}"),
            });
            for extra in &stage.extras {
                lines.push(match extra {
                    Extra::Comment => "# COPY --from=not-a-parent:2 / /".into(),
                    Extra::Blank => String::new(),
                    Extra::Heredoc { dash, quote, word } => {
                        let word = ["EOF", "END", "x_y"][*word];
                        let q = ["", "\"", "'"][*quote as usize];
                        let (op, indent) = if *dash { ("<<-", "\t") } else { ("<<", "") };
                        format!("RUN {op}{q}{word}{q}\nFROM heredoc-body:1\nCOPY --from=heredoc:2 / /\n{indent}{word}")
                    }
                    Extra::TwoHeredocs => "COPY <<A <<B /dst/\nFROM in-a:1\nA\nFROM in-b:1\nB".into(),
                    Extra::Continued => format!("RUN echo FROM {e}\n    not-a-parent:3 {e}\n    && true"),
                    Extra::CopyFrom(b) => format!("COPY --from={} /src /dst", Model::reference(b)),
                    Extra::CopyFromIndex(s) => format!("COPY --from={s} /src /dst"),
                    Extra::MountFrom(b) => format!(
                        "RUN --mount=type=bind,target=/m,from={},source=/ true",
                        Model::reference(b)
                    ),
                });
            }
        }
        let mut text = lines.join("\n") + "\n";
        if self.crlf {
            text = text.replace('\n', "\r\n");
        }
        if self.bom {
            text.insert(0, '\u{feff}');
        }
        text
    }

    /// The external parents, normalized, in order of first appearance, each once; and each
    /// stage's resolved parent.
    fn expected(&self) -> (Vec<String>, Vec<String>) {
        let mut stage_froms: Vec<String> = Vec::new();
        let mut froms: Vec<String> = Vec::new();
        let add = |r: String, froms: &mut Vec<String>| {
            if !froms.contains(&r) {
                froms.push(r);
            }
        };
        let resolve = |b: &Base, stage_froms: &Vec<String>| match b {
            Base::Image(i) => (normalize_ref(IMAGES[*i]), true),
            Base::Stage(s) => (stage_froms[*s].clone(), false),
        };
        for (i, stage) in self.stages.iter().enumerate() {
            let (r, external) = resolve(&stage.base, &stage_froms);
            if external {
                add(r.clone(), &mut froms);
            }
            stage_froms.push(r);
            for extra in &stage.extras {
                match extra {
                    Extra::CopyFrom(b) | Extra::MountFrom(b) => {
                        let (r, external) = resolve(b, &stage_froms);
                        // COPY --from=scratch is not an image to pull.
                        if external {
                            add(r, &mut froms);
                        }
                    }
                    Extra::CopyFromIndex(s) if *s <= i => {}
                    _ => {}
                }
            }
        }
        (froms, stage_froms)
    }
}

/// Invariants of any scan.
fn check_any(text: &str) {
    let start = Instant::now();
    let scanned = scan(text);
    assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
    assert_eq!(scanned, scan(text), "not deterministic");
    assert_eq!(scanned.stage_froms.len(), scanned.stage_names.len());
    let lower = text.to_lowercase();
    // Every parent comes from a `from` somewhere in the text: output bounded by input.
    let mentions = lower.matches("from").count();
    assert!(scanned.froms.len() <= mentions, "{:?}", scanned.froms);
    assert!(scanned.stage_froms.len() <= mentions);
    let mut seen = std::collections::HashSet::new();
    assert!(scanned.froms.iter().all(|f| seen.insert(f)), "duplicates");
    let lines = text.split('\n').count();
    for pair in scanned.warnings.windows(2) {
        assert!(pair[0].line <= pair[1].line);
    }
    for w in &scanned.warnings {
        assert!(w.line >= 1 && w.line <= lines, "{w:?} of {lines} lines");
        assert!(w.message.len() < 2 * text.len() + 200);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let pieces = prop::sample::select(vec![
        b"\\".to_vec(),
        b"`".to_vec(),
        b"\\\n".to_vec(),
        b"<<".to_vec(),
        b"<<-".to_vec(),
        b"<<'EOF'\n".to_vec(),
        b"\nEOF\n".to_vec(),
        b"$".to_vec(),
        b"${".to_vec(),
        b"${A:-".to_vec(),
        b"}".to_vec(),
        b"\n# escape=`\n".to_vec(),
        b"ARG A=b\n".to_vec(),
        b"FROM ".to_vec(),
        b" AS ".to_vec(),
        b"--from=".to_vec(),
        b"--mount=from=".to_vec(),
        b",".to_vec(),
        b"\r".to_vec(),
        b"\t".to_vec(),
        b"\n".to_vec(),
        b"#".to_vec(),
        b"\"".to_vec(),
        "\u{feff}".as_bytes().to_vec(),
        "é".as_bytes().to_vec(),
    ]);
    prop_oneof![
        (any::<usize>(), pieces).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..4))
            .prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 1usize..30).prop_map(|(at, n)| Mutation::Delete(at, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn finds_exactly_the_models_parents(model in model()) {
        let text = model.text();
        let scanned = scan(&text);
        let (froms, stage_froms) = model.expected();
        prop_assert_eq!(&scanned.froms, &froms, "{}", text);
        prop_assert_eq!(&scanned.stage_froms, &stage_froms, "{}", text);
        let names: Vec<Option<String>> =
            (0..model.stages.len()).map(|i| Some(Model::name(i))).collect();
        prop_assert_eq!(&scanned.stage_names, &names);
        check_any(&text);
    }

    #[test]
    fn mutated_dockerfiles_never_panic(
        model in model(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut bytes = model.text().into_bytes();
        for m in &mutations {
            match m {
                Mutation::Insert(at, b) => {
                    let at = at % (bytes.len() + 1);
                    bytes.splice(at..at, b.iter().copied());
                }
                Mutation::Delete(at, n) => {
                    if !bytes.is_empty() {
                        let at = at % bytes.len();
                        let end = (at + n).min(bytes.len());
                        bytes.drain(at..end);
                    }
                }
            }
        }
        check_any(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,400}") {
        check_any(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_any(&String::from_utf8_lossy(&bytes));
    }
}

/// Worst cases for the splitter: one huge continued line, thousands of heredocs, an
/// unterminated heredoc at the top, a long run of escapes. Each must scan in linear time.
#[test]
fn pathological_inputs_scan_quickly() {
    let n = 20_000;
    let cases = [
        format!("FROM a\nRUN {}true\n", "x \\\n".repeat(n)),
        format!("FROM a\n{}", "RUN <<EOF\nFROM b\nEOF\n".repeat(n / 4)),
        format!("FROM a\nRUN <<EOF\n{}", "FROM b\n".repeat(n)),
        "\\".repeat(n * 5),
        format!("# escape=`\n{}", "`\n".repeat(n)),
        format!("{}FROM a\n", "ARG A=${A}\n".repeat(n / 10)),
        format!("FROM a\nCOPY {}/x /y\n", "<<A ".repeat(n / 10)),
    ];
    for text in &cases {
        check_any(text);
    }
}
