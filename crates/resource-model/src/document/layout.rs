//! The line layout of a block-style document: its top-level entries and the items of its
//! `flags` and `segments` lists, so that a write can replace, add or remove one item's lines
//! and leave every other line as it was. Anything unusual (flow style, tabs, a top-level line
//! that is not `key:`) gives no layout, and the writer falls back to re-emitting the document.

use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Trivia,
    Marker,
    TopKey,
    Item(usize),
    Nested(usize),
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) key: String,
    /// Lines of the entry, without trailing comments and blank lines.
    pub(crate) lines: Range<usize>,
    /// Whether the key line holds the value (`flags: []`, `version: "1.6"`).
    pub(crate) inline: bool,
}

#[derive(Debug)]
pub(crate) struct Items {
    /// Column of the items' `-`.
    pub(crate) indent: usize,
    pub(crate) items: Vec<Range<usize>>,
}

#[derive(Debug)]
pub(crate) struct Layout {
    kinds: Vec<Kind>,
    pub(crate) entries: Vec<Entry>,
    /// Where content may be inserted before the first entry (after a `---` line and leading
    /// comments).
    pub(crate) body_start: usize,
}

fn classify(line: &str) -> Option<Kind> {
    // Most lines of a features file are nested lines: spaces, then an ASCII character that
    // starts neither a comment, an item nor a tab. Such a line is `Nested` whatever follows
    // (the general rules below give the same), without trimming it.
    let bytes = line.as_bytes();
    let indent = bytes.iter().take_while(|&&b| b == b' ').count();
    if indent > 0
        && let Some(&first) = bytes.get(indent)
        && first.is_ascii_graphic()
        && first != b'#'
        && first != b'-'
    {
        return Some(Kind::Nested(indent));
    }
    classify_by_rules(line)
}

/// The rules of [`classify`], for every line.
fn classify_by_rules(line: &str) -> Option<Kind> {
    let content = line.trim_end_matches(['\n', '\r']);
    let trimmed = content.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Some(Kind::Trivia);
    }
    for m in ["---", "..."] {
        if let Some(rest) = content.strip_prefix(m)
            && (rest.is_empty() || rest.starts_with([' ', '\t']))
        {
            let rest = rest.trim();
            return (rest.is_empty() || rest.starts_with('#')).then_some(Kind::Marker);
        }
    }
    if content.starts_with('%') {
        return Some(Kind::Trivia);
    }
    let indent = content.len() - content.trim_start_matches(' ').len();
    let rest = &content[indent..];
    if rest.starts_with('\t') {
        return None;
    }
    if rest == "-" || rest.starts_with("- ") {
        return Some(Kind::Item(indent));
    }
    if indent == 0 {
        return top_key(content).map(|_| Kind::TopKey);
    }
    Some(Kind::Nested(indent))
}

/// The key of a top-level `key:` line and whether a value follows on the line.
fn top_key(content: &str) -> Option<(String, bool)> {
    let (key, rest) = if let Some(q) = content.strip_prefix('"') {
        let end = q.find('"')?;
        (q[..end].to_owned(), &q[end + 1..])
    } else if let Some(q) = content.strip_prefix('\'') {
        let end = q.find('\'')?;
        (q[..end].to_owned(), &q[end + 1..])
    } else {
        let end = content.find(':')?;
        let key = &content[..end];
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return None;
        }
        (key.to_owned(), &content[end..])
    };
    let rest = rest.strip_prefix(':')?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = rest.trim();
    Some((key, !(rest.is_empty() || rest.starts_with('#'))))
}

impl Layout {
    pub(crate) fn scan<S: AsRef<str>>(lines: &[S]) -> Option<Layout> {
        let kinds = lines
            .iter()
            .map(|l| classify(l.as_ref()))
            .collect::<Option<Vec<_>>>()?;
        let mut entries: Vec<Entry> = Vec::new();
        let mut body_start = 0;
        let mut seen_marker_end = false;
        for (n, kind) in kinds.iter().enumerate() {
            match kind {
                Kind::Trivia => {}
                Kind::Marker => {
                    if entries.is_empty() && !seen_marker_end {
                        body_start = n + 1;
                    } else {
                        // A `...` after the content: nothing may follow but trivia.
                        seen_marker_end = true;
                    }
                }
                Kind::TopKey => {
                    if seen_marker_end {
                        return None;
                    }
                    let (key, inline) = top_key(lines[n].as_ref().trim_end_matches(['\n', '\r']))?;
                    entries.push(Entry {
                        key,
                        lines: n..n + 1,
                        inline,
                    });
                }
                Kind::Item(_) | Kind::Nested(_) => {
                    let entry = entries.last_mut()?;
                    if seen_marker_end {
                        return None;
                    }
                    entry.lines.end = n + 1;
                }
            }
        }
        Some(Layout {
            kinds,
            entries,
            body_start,
        })
    }

    pub(crate) fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The line after the last entry (where a new entry goes at the end).
    pub(crate) fn end(&self) -> usize {
        self.entries.last().map_or(self.body_start, |e| e.lines.end)
    }

    /// The items of a block sequence entry; `Some` with no items for an entry without a
    /// value; `None` when the entry is not a block sequence.
    pub(crate) fn items(&self, entry: &Entry) -> Option<Items> {
        if entry.inline {
            return None;
        }
        let mut indent = None;
        let mut items: Vec<Range<usize>> = Vec::new();
        for n in entry.lines.start + 1..entry.lines.end {
            match self.kinds[n] {
                Kind::Trivia => {}
                Kind::Marker | Kind::TopKey => return None,
                Kind::Item(col) => {
                    let c = *indent.get_or_insert(col);
                    if col == c {
                        items.push(n..n + 1);
                    } else if col < c {
                        return None;
                    } else {
                        items.last_mut()?.end = n + 1;
                    }
                }
                Kind::Nested(col) => {
                    if col <= indent? {
                        return None;
                    }
                    items.last_mut()?.end = n + 1;
                }
            }
        }
        Some(Items {
            indent: indent.unwrap_or(0),
            items,
        })
    }

    /// The first line of the `index`th item of a list, for messages.
    pub(crate) fn item_line(&self, list: &str, index: usize) -> Option<usize> {
        let entry = self.entry(list)?;
        let items = self.items(entry)?;
        items.items.get(index).map(|r| r.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.split_inclusive('\n').map(str::to_owned).collect()
    }

    #[test]
    fn entries_and_items() {
        let text = "---\n# head\nversion: \"1.2\"\nflags:\n  - key: a\n    name: A\n  # about b\n  - key: b\n    rules:\n      - segment: s\n\nsegments: []\n";
        let l = lines(text);
        let layout = Layout::scan(&l).unwrap();
        assert_eq!(layout.body_start, 1);
        let keys: Vec<_> = layout.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["version", "flags", "segments"]);
        let flags = layout.items(layout.entry("flags").unwrap()).unwrap();
        assert_eq!(flags.indent, 2);
        assert_eq!(flags.items, vec![4..6, 7..10]);
        assert!(layout.items(layout.entry("segments").unwrap()).is_none());
        assert_eq!(layout.end(), 12);
    }

    #[test]
    fn unindented_sequences() {
        let l = lines("flags:\n- key: a\n  name: A\n- key: b\nsegments:\n- key: s\n");
        let layout = Layout::scan(&l).unwrap();
        let flags = layout.items(layout.entry("flags").unwrap()).unwrap();
        assert_eq!((flags.indent, flags.items.clone()), (0, vec![1..3, 3..4]));
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_follows_the_rules(line in "[ \t#:a-z0-9\"'%.\u{a0}\u{2003}-]{0,8}\n?") {
            proptest::prop_assert_eq!(classify(&line), classify_by_rules(&line));
        }
    }

    #[test]
    fn the_fast_path_follows_the_rules_on_typical_lines() {
        for line in [
            "    name: A\n",
            "  - key: a\n",
            "  # c\n",
            "   \n",
            " \tx\n",
            "  -x\n",
            "  \u{a0}x\n",
            "  é: 1\n",
            "key: v\n",
            "---\n",
            "  ---\n",
            "  %x\n",
            "  !tag\n",
            "  \"q\": 1\n",
        ] {
            assert_eq!(classify(line), classify_by_rules(line), "{line:?}");
        }
    }

    #[test]
    fn unusual_documents_have_no_layout() {
        assert!(Layout::scan(&lines("{flags: []}\n")).is_none());
        assert!(Layout::scan(&lines("flags: [\n  {key: a}\n]\n")).is_none());
        assert!(Layout::scan(&lines("\tflags: 1\n")).is_none());
        let l = lines("flags:\n  - key: a\n name: x\n");
        let layout = Layout::scan(&l).unwrap();
        assert!(layout.items(layout.entry("flags").unwrap()).is_none());
    }
}
