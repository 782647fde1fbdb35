//! Syntax: pest pairs to raw paragraphs of fields, with spans, and nothing more.
//!
//! Invariants: every non-blank, non-comment line of the input ends up either in a field or
//! in `stray_lines`; field values keep one piece per source line (first line, then each
//! continuation line) with the byte offset of each piece, so validation can point at any
//! character of any value.

use pest::Parser;
use pest::iterators::Pair;
use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "../grammar/manifest.pest"]
struct ManifestGrammar;

/// One line's share of a field value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece<'a> {
    pub text: &'a str,
    pub offset: usize,
}

/// `Name: value` with its continuation lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawField<'a> {
    pub name: &'a str,
    pub name_offset: usize,
    /// The value, one piece per line; the first piece is the rest of the `Name:` line.
    pub pieces: Pieces<'a>,
}

/// The pieces of a value: almost every value is one line, kept inline without an allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pieces<'a> {
    One(Piece<'a>),
    Many(Vec<Piece<'a>>),
}

impl<'a> Pieces<'a> {
    fn push(&mut self, piece: Piece<'a>) {
        match self {
            Pieces::One(first) => *self = Pieces::Many(vec![*first, piece]),
            Pieces::Many(pieces) => pieces.push(piece),
        }
    }
}

impl<'a> std::ops::Deref for Pieces<'a> {
    type Target = [Piece<'a>];

    fn deref(&self) -> &[Piece<'a>] {
        match self {
            Pieces::One(piece) => std::slice::from_ref(piece),
            Pieces::Many(pieces) => pieces,
        }
    }
}

impl RawField<'_> {
    /// The byte offset and length of the whole value (for a point at its start when empty).
    pub fn value_range(&self) -> (usize, usize) {
        let first = self.pieces[0];
        let last = self.pieces[self.pieces.len() - 1];
        (first.offset, last.offset + last.text.len() - first.offset)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawParagraph<'a> {
    /// Byte offset of the paragraph's first line.
    pub offset: usize,
    pub fields: Vec<RawField<'a>>,
    /// Lines that are neither fields, continuations nor comments: (offset, text).
    pub stray_lines: Vec<Piece<'a>>,
}

/// Splits a manifest into paragraphs. Never fails on a complete input (see the grammar).
pub fn paragraphs(text: &str) -> Vec<RawParagraph<'_>> {
    let Ok(mut pairs) = ManifestGrammar::parse(Rule::manifest, text) else {
        // Unreachable by construction of the grammar; treat the text as one stray line
        // rather than panic.
        return vec![RawParagraph {
            offset: 0,
            fields: Vec::new(),
            stray_lines: vec![Piece { text, offset: 0 }],
        }];
    };
    let Some(manifest) = pairs.next() else {
        return Vec::new();
    };
    let inner = manifest.into_inner();
    let mut out = Vec::with_capacity(inner.len());
    out.extend(
        inner
            .filter(|pair| pair.as_rule() == Rule::paragraph)
            .map(paragraph),
    );
    out
}

fn paragraph(pair: Pair<'_, Rule>) -> RawParagraph<'_> {
    let offset = pair.as_span().start();
    let inner = pair.into_inner();
    let mut out = RawParagraph {
        offset,
        fields: Vec::with_capacity(inner.len()),
        stray_lines: Vec::new(),
    };
    for item in inner {
        match item.as_rule() {
            Rule::field => out.fields.push(field(item)),
            Rule::stray_line => {
                let text = item.as_str().trim_end_matches(['\r', '\n']);
                out.stray_lines.push(Piece {
                    text,
                    offset: item.as_span().start(),
                });
            }
            _ => {}
        }
    }
    out
}

fn field(pair: Pair<'_, Rule>) -> RawField<'_> {
    let mut inner = pair.into_inner();
    // The grammar puts the name and the value first, then continuations and comments.
    let (name, name_offset) = inner
        .next()
        .map_or(("", 0), |name| (name.as_str(), name.as_span().start()));
    let mut pieces = Pieces::One(inner.next().map_or(
        Piece {
            text: "",
            offset: name_offset,
        },
        piece,
    ));
    for item in inner {
        if item.as_rule() == Rule::continuation {
            for value in item.into_inner() {
                pieces.push(piece(value));
            }
        }
    }
    RawField {
        name,
        name_offset,
        pieces,
    }
}

fn piece(pair: Pair<'_, Rule>) -> Piece<'_> {
    let text = pair.as_str();
    Piece {
        text: text.strip_suffix('\r').unwrap_or(text),
        offset: pair.as_span().start(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, expected paragraphs as lists of "Name=piece|piece", stray lines as "!text")
    fn shape(text: &str) -> Vec<Vec<String>> {
        paragraphs(text)
            .iter()
            .map(|p| {
                let mut lines: Vec<String> = p
                    .fields
                    .iter()
                    .map(|f| {
                        let values: Vec<&str> = f.pieces.iter().map(|p| p.text).collect();
                        format!("{}={}", f.name, values.join("|"))
                    })
                    .collect();
                lines.extend(p.stray_lines.iter().map(|s| format!("!{}", s.text)));
                lines
            })
            .collect()
    }

    #[test]
    fn grammar_cases() {
        let cases: &[(&str, &[&[&str]])] = &[
            ("", &[]),
            ("\n\n  \n", &[]),
            ("A: 1", &[&["A=1"]]),
            ("A: 1\nB:2\n", &[&["A=1", "B=2"]]),
            ("A: 1\r\nB: 2\r\n\r\nC: 3\r\n", &[&["A=1", "B=2"], &["C=3"]]),
            ("\n\n\nA: 1\n\n\n\nB: 2\n\n\n", &[&["A=1"], &["B=2"]]),
            ("A: x,\n  y,\n\tz\n", &[&["A=x,|y,|z"]]),
            ("A: x,\n# comment\n  y\n", &[&["A=x,|y"]]),
            ("A: x,\n   # indented comment\n  y\n", &[&["A=x,|y"]]),
            ("# top\nA: 1\n# mid\nB: 2\n# end", &[&["A=1", "B=2"]]),
            ("A: 1\n# only a comment\n\nB: 2", &[&["A=1"], &["B=2"]]),
            ("A: a # not a comment\n", &[&["A=a # not a comment"]]),
            ("A:\n", &[&["A="]]),
            ("A: 1\nno colon here\n", &[&["A=1", "!no colon here"]]),
            ("\n  orphan\n", &[&["!  orphan"]]),
            ("A: 1\n\n  orphan\nB: 2", &[&["A=1"], &["B=2", "!  orphan"]]),
            ("A: 1\n \t \nB: 2", &[&["A=1"], &["B=2"]]),
            ("A: 1\n   ", &[&["A=1"]]),
            ("amd64-GitCommit: abc", &[&["amd64-GitCommit=abc"]]),
            (
                "Tags :1\nMaintainers  :  x\n",
                &[&["Tags=1", "Maintainers=x"]],
            ),
            ("A\t: 1", &[&["A=1"]]),
            ("A: tr\railing\r\n", &[&["A=tr\railing"]]),
        ];
        for (input, want) in cases {
            let want: Vec<Vec<String>> = want
                .iter()
                .map(|p| p.iter().map(|s| s.to_string()).collect())
                .collect();
            assert_eq!(shape(input), want, "input {input:?}");
        }
    }

    #[test]
    fn pieces_carry_offsets() {
        let text = "Tags: a,\n  b\n";
        let paragraphs = paragraphs(text);
        let field = &paragraphs[0].fields[0];
        assert_eq!(field.name_offset, 0);
        assert_eq!(field.pieces[0].offset, 6);
        assert_eq!(field.pieces[1].offset, text.find('b').unwrap());
        assert_eq!(field.value_range(), (6, text.find('b').unwrap() + 1 - 6));
    }
}
