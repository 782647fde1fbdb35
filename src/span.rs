//! Source positions and their rendering.
//!
//! A [`Span`] is a byte range in one source text with the 1-based line and column of its
//! start (columns count characters, not bytes). A [`Diagnostic`] is one problem at one span,
//! rendered the way compilers do:
//!
//! ```text
//! error: invalid GitCommit "deadbeef": expected a full 40- or 64-hex commit id
//!   --> library/foo:5:12
//!    |
//!  5 | GitCommit: deadbeef
//!    |            ^^^^^^^^
//! ```
//!
//! Invariant: a diagnostic owns a copy of the offending source line, so it can be printed
//! long after the source text is gone, and rendering never panics on any span.

use std::fmt;

/// A byte range in a source text, with the line and column where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Byte offset of the start.
    pub offset: usize,
    /// Length in bytes (0 for a point, e.g. "expected something here").
    pub len: usize,
    /// 1-based line of the start.
    pub line: usize,
    /// 1-based column of the start, in characters.
    pub col: usize,
}

/// Maps byte offsets of one text to lines and columns.
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = Vec::with_capacity(text.len() / 32 + 1);
        starts.push(0);
        // A plain byte loop over 16-byte blocks: most blocks hold no line break and are
        // skipped with one vectorized test.
        let bytes = text.as_bytes();
        let mut blocks = bytes.chunks_exact(16);
        let mut at = 0;
        for block in &mut blocks {
            if block.iter().fold(false, |found, &b| found | (b == b'\n')) {
                for (i, &b) in block.iter().enumerate() {
                    if b == b'\n' {
                        starts.push(at + i + 1);
                    }
                }
            }
            at += 16;
        }
        for (i, &b) in blocks.remainder().iter().enumerate() {
            if b == b'\n' {
                starts.push(at + i + 1);
            }
        }
        LineIndex { text, starts }
    }

    /// The span of `len` bytes at `offset` (clamped to the text).
    pub fn span(&self, offset: usize, len: usize) -> Span {
        let offset = floor_char_boundary(self.text, offset.min(self.text.len()));
        let len = len.min(self.text.len() - offset);
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = self.text[start..offset].chars().count() + 1;
        Span {
            offset,
            len,
            line,
            col,
        }
    }

    /// The text of the line holding `span`, without its line ending.
    pub fn line_text(&self, span: Span) -> &'a str {
        let start = self.starts[span.line.saturating_sub(1).min(self.starts.len() - 1)];
        let rest = &self.text[start..];
        let line = rest.split('\n').next().unwrap_or("");
        line.strip_suffix('\r').unwrap_or(line)
    }

    /// A diagnostic at `span` of this text.
    pub fn diagnostic(
        &self,
        severity: Severity,
        file: &str,
        span: Span,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            message: message.into(),
            file: file.to_string(),
            span,
            source_line: self.line_text(span).to_string(),
        }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one file, with the source line it points into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub file: String,
    pub span: Span,
    pub source_line: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let gutter = self.span.line.to_string();
        let pad = " ".repeat(gutter.len());
        writeln!(f, "{label}: {}", self.message)?;
        writeln!(
            f,
            "{pad} --> {}:{}:{}",
            self.file, self.span.line, self.span.col
        )?;
        writeln!(f, "{pad} |")?;
        let shown: String = self
            .source_line
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        writeln!(f, "{gutter} | {shown}")?;
        let line_chars = self.source_line.chars().count();
        let start = self.span.col.saturating_sub(1).min(line_chars);
        let width = self.source_line[byte_at_char(&self.source_line, start)..]
            .char_indices()
            .take_while(|(i, _)| *i < self.span.len)
            .count()
            .max(1);
        write!(f, "{pad} | {}{}", " ".repeat(start), "^".repeat(width))
    }
}

fn byte_at_char(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_count_lines_and_characters() {
        let text = "a: b\nGitCommit: ü1\r\nlast";
        let index = LineIndex::new(text);
        let span = index.span(text.find('1').unwrap(), 1);
        assert_eq!((span.line, span.col), (2, 13));
        assert_eq!(index.line_text(span), "GitCommit: ü1");
        let end = index.span(text.len(), 0);
        assert_eq!((end.line, end.col), (3, 5));
    }

    #[test]
    fn renders_file_line_column_and_carets() {
        let text = "Maintainers: x (@x)\nGitCommit: deadbeef\n";
        let index = LineIndex::new(text);
        let span = index.span(text.find("deadbeef").unwrap(), 8);
        let d = index.diagnostic(Severity::Error, "library/foo", span, "bad");
        assert_eq!(
            d.to_string(),
            "error: bad\n  --> library/foo:2:12\n  |\n2 | GitCommit: deadbeef\n  |            ^^^^^^^^"
        );
    }

    #[test]
    fn clamps_out_of_range_spans() {
        let index = LineIndex::new("ab");
        let span = index.span(99, 99);
        assert_eq!((span.offset, span.len, span.line, span.col), (2, 0, 1, 3));
        let d = index.diagnostic(Severity::Warning, "f", span, "m");
        assert!(d.to_string().ends_with("  ^"));
    }
}
