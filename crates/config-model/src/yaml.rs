//! The YAML boundary: parsing text into a `serde_yaml::Value`, emitting one, and finding the
//! line of a key path.
//!
//! Two passes read the same text. `serde_yaml` gives the value tree that the loader converts;
//! it fails only on malformed YAML. A second, position-aware pass with `yaml-rust2`'s event
//! parser records the line of every mapping key, because `serde_yaml::Value` forgets
//! positions. The second pass is best effort: if it disagrees with the first (it never should
//! for well-formed input), messages simply carry no line.

use std::collections::HashMap;

use serde_yaml::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Parses one YAML document. An empty or whitespace-only text is `Value::Null`. A text that
/// nests too deep or whose aliases expand too far is refused first ([`yaml_guard`]).
pub(crate) fn parse(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    yaml_guard::check(text)?;
    serde_yaml::from_str::<Value>(text).map_err(|e| e.to_string())
}

/// Emits a value as YAML text.
pub(crate) fn emit(value: &Value) -> String {
    // Serialising a `Value` that holds only strings, numbers, booleans, sequences and
    // string-keyed mappings cannot fail.
    serde_yaml::to_string(value).unwrap_or_default()
}

/// Line numbers (1-based) of mapping keys, by dotted key path.
#[derive(Debug, Default)]
pub(crate) struct PositionIndex {
    lines: HashMap<String, usize>,
}

impl PositionIndex {
    /// Indexes `text`; malformed input yields whatever was indexed before the error.
    pub(crate) fn build(text: &str) -> Self {
        let mut recv = Receiver::default();
        let mut parser = Parser::new_from_str(text);
        // Errors are reported by the serde pass; here they only end the indexing early.
        let _ = parser.load(&mut recv, false);
        PositionIndex { lines: recv.lines }
    }

    /// The line of the key at `path`, or of its nearest indexed ancestor.
    pub(crate) fn line(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.lines.get(path) {
                return Some(*line);
            }
            path = &path[..path.rfind('.')?];
        }
    }
}

#[derive(Debug)]
enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, index: usize },
}

#[derive(Debug, Default)]
struct Receiver {
    stack: Vec<Frame>,
    lines: HashMap<String, usize>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Receiver {
    /// The path of the value that the next value event belongs to, and advances the parent
    /// frame past it. `None` means the event is a mapping key.
    fn next_value_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Mapping { path, key }) => key.take().map(|k| join(path, &k)),
            Some(Frame::Sequence { path, index }) => {
                let p = join(path, &index.to_string());
                *index += 1;
                Some(p)
            }
        }
    }
}

impl MarkedEventReceiver for Receiver {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) => {
                if self.next_value_path().is_none()
                    && let Some(Frame::Mapping { path, key }) = self.stack.last_mut()
                {
                    self.lines.insert(join(path, &text), mark.line());
                    *key = Some(text);
                }
            }
            Event::Alias(_) => {
                let _ = self.next_value_path();
            }
            Event::MappingStart(..) => {
                // A complex (non-scalar) key is not addressable by a dotted path: index its
                // contents under a placeholder.
                let path = self.next_value_path().unwrap_or_else(|| "?".to_owned());
                self.stack.push(Frame::Mapping { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.next_value_path().unwrap_or_else(|| "?".to_owned());
                self.stack.push(Frame::Sequence { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_nested_keys_with_one_based_lines() {
        let text =
            "storage:\n  prod:\n    remote: x\n    backend:\n      type: local\nlist:\n  - a: 1\n";
        let idx = PositionIndex::build(text);
        assert_eq!(idx.line("storage"), Some(1));
        assert_eq!(idx.line("storage.prod"), Some(2));
        assert_eq!(idx.line("storage.prod.remote"), Some(3));
        assert_eq!(idx.line("storage.prod.backend.type"), Some(5));
        assert_eq!(idx.line("list.0.a"), Some(7));
        // An unindexed key falls back to its parent.
        assert_eq!(idx.line("storage.prod.branch"), Some(2));
        assert_eq!(idx.line("nothing"), None);
    }

    #[test]
    fn malformed_text_indexes_what_came_before() {
        let idx = PositionIndex::build("a: 1\nb: [\n");
        assert_eq!(idx.line("a"), Some(1));
    }

    #[test]
    fn hostile_texts_are_refused_before_serde_yaml_expands_them() {
        // Four million nodes from a 16 KB text (seconds and gigabytes without the guard).
        let bomb = format!(
            "ui:\n  a: &a [{}]\n  b: [{}]\n",
            vec!["x"; 2000].join(","),
            vec!["*a"; 2000].join(",")
        );
        let err = parse(&bomb).unwrap_err();
        assert!(err.contains("billion laughs"), "{err}");
        let deep = format!("ui: {}{}\n", "[".repeat(50_000), "]".repeat(50_000));
        let err = parse(&deep).unwrap_err();
        assert!(err.contains("nested more than 128 levels"), "{err}");
    }

    #[test]
    fn empty_text_is_null() {
        assert_eq!(parse("  \n").unwrap(), Value::Null);
        assert!(parse("a: [").is_err());
    }
}
