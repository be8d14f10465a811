//! Cutting a YAML stream into its documents, keeping each document's exact text so that the
//! documents a write does not touch are written back byte for byte.

use std::ops::Range;

/// One piece of a stream: a document, or text that holds none (comments, blank lines, a
/// trailing `---`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) span: Range<usize>,
    /// Line of the piece's first line, counted from 0.
    pub(crate) first_line: usize,
    pub(crate) has_content: bool,
}

fn marker(line: &str, m: &str) -> bool {
    line.strip_prefix(m)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// Whether a line holds nothing a YAML parser would read as content.
fn is_empty_line(line: &str) -> bool {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') || line.starts_with('%') {
        return true;
    }
    for m in ["---", "..."] {
        if marker(line, m) {
            let rest = line[3..].trim();
            return rest.is_empty() || rest.starts_with('#');
        }
    }
    false
}

/// Splits `text` at `---` lines (and after `...` lines). The pieces cover the whole text.
pub(crate) fn split_stream(text: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut first_line = 0;
    let mut has_content = false;
    let mut offset = 0;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if marker(line, "---") && offset > start {
            pieces.push(Piece {
                span: start..offset,
                first_line,
                has_content,
            });
            start = offset;
            first_line = n;
            has_content = false;
        }
        if !is_empty_line(line) {
            has_content = true;
        }
        offset += line.len();
        if marker(line, "...") {
            pieces.push(Piece {
                span: start..offset,
                first_line,
                has_content,
            });
            start = offset;
            first_line = n + 1;
            has_content = false;
        }
    }
    if offset > start || pieces.is_empty() {
        pieces.push(Piece {
            span: start..offset,
            first_line,
            has_content,
        });
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> Vec<(&str, bool)> {
        split_stream(text)
            .into_iter()
            .map(|p| (&text[p.span], p.has_content))
            .collect()
    }

    #[test]
    fn streams() {
        assert_eq!(docs("a: 1\n"), vec![("a: 1\n", true)]);
        assert_eq!(
            docs("# c\n---\na: 1\n---\nb: 2\n"),
            vec![
                ("# c\n", false),
                ("---\na: 1\n", true),
                ("---\nb: 2\n", true)
            ]
        );
        assert_eq!(
            docs("a: 1\n...\n---\nb: 2\n---\n"),
            vec![
                ("a: 1\n...\n", true),
                ("---\nb: 2\n", true),
                ("---\n", false)
            ]
        );
        assert_eq!(docs(""), vec![("", false)]);
        assert_eq!(docs("--- {a: 1}\n"), vec![("--- {a: 1}\n", true)]);
        assert_eq!(docs("a: ---x\n----\n"), vec![("a: ---x\n----\n", true)]);
        let p = split_stream("x: 1\n---\ny: 2\n");
        assert_eq!(p[1].first_line, 1);
    }
}
