//! Writing YAML: resources into ordered values (in Flipt's field order, or in the order of the
//! item they replace), and ordered values into block-style text with a given indentation.
//!
//! `serde_yaml::Value` keeps the insertion order of mappings, so a value built in the order of
//! the original item is written in that order.

use serde_yaml::{Mapping, Value};

use crate::document::{Document, DocumentNamespace};
use crate::model::*;
use crate::version::Version;

/// Indentation of a document: how far mapping children and sequences under a key are
/// indented. Flipt's yaml.v2 writer used 2 and 0, its yaml.v3 writer 4 and 4; new documents
/// get 2 and 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    pub(crate) map_indent: usize,
    pub(crate) seq_indent: usize,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            map_indent: 2,
            seq_indent: 2,
        }
    }
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_trivia(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Guesses the indentation of an existing document from its text.
pub(crate) fn detect_style(text: &str) -> Style {
    detect_style_or(text, None)
}

/// Guesses the indentation of a piece of a document; what the piece does not show comes
/// from `fallback` (hand-written files mix styles, so an item is written like its
/// neighbours).
pub(crate) fn detect_style_or(text: &str, fallback: Option<Style>) -> Style {
    let mut style = Style::default();
    let (mut map_found, mut seq_found) = (false, false);
    let mut previous: Option<&str> = None;
    // Lazily over the lines: the answer is almost always in the first few.
    for next in text
        .lines()
        .filter(|l| !is_trivia(l) && !l.starts_with("---"))
    {
        let Some(key_line) = previous.replace(next) else {
            continue;
        };
        let body = key_line.trim_start_matches(' ').trim_start_matches("- ");
        let is_bare_key = body.trim_end().ends_with(':') && !body.trim_end().contains(": ");
        if !is_bare_key {
            continue;
        }
        // The key's own column: after any "- " of a sequence item on the same line.
        let key_col = key_line.len() - key_line.trim_start_matches([' ', '-']).len();
        let next_col = indent_of(next);
        let next_is_item = next.trim_start().starts_with("- ") || next.trim() == "-";
        if next_is_item && !seq_found && next_col >= key_col {
            style.seq_indent = next_col - key_col;
            seq_found = true;
        } else if !next_is_item && !map_found && next_col > key_col {
            style.map_indent = next_col - key_col;
            map_found = true;
        }
        if map_found && seq_found {
            break;
        }
    }
    if let Some(f) = fallback {
        if !map_found {
            style.map_indent = f.map_indent;
        }
        if !seq_found {
            style.seq_indent = f.seq_indent;
        }
    } else if !map_found && seq_found && style.seq_indent > 0 {
        style.map_indent = style.seq_indent;
    }
    style
}

// ------------------------------------------------------------------ text

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Writes a mapping's entries at `indent` (the first one inline after `- ` if asked).
pub(crate) fn write_map(
    out: &mut String,
    m: &Mapping,
    indent: usize,
    style: Style,
    first_inline: bool,
) {
    for (i, (k, v)) in m.iter().enumerate() {
        if !(i == 0 && first_inline) {
            pad(out, indent);
        }
        write_scalar(out, k);
        out.push(':');
        write_after_key(out, v, indent, style);
    }
}

fn write_after_key(out: &mut String, v: &Value, indent: usize, style: Style) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, m, indent + style.map_indent, style, false);
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            write_seq(out, s, indent + style.seq_indent, style, false);
        }
        Value::Tagged(t) => write_after_key(out, &t.value, indent, style),
        other => {
            out.push(' ');
            write_scalar(out, other);
            out.push('\n');
        }
    }
}

/// Writes sequence items at `indent`.
pub(crate) fn write_seq(
    out: &mut String,
    s: &[Value],
    indent: usize,
    style: Style,
    first_inline: bool,
) {
    for (i, item) in s.iter().enumerate() {
        if !(i == 0 && first_inline) {
            pad(out, indent);
        }
        out.push('-');
        write_item(out, item, indent, style);
    }
}

fn write_item(out: &mut String, item: &Value, indent: usize, style: Style) {
    match item {
        Value::Mapping(m) if !m.is_empty() => {
            out.push(' ');
            write_map(out, m, indent + 2, style, true);
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push(' ');
            write_seq(out, s, indent + 2, style, true);
        }
        Value::Tagged(t) => write_item(out, &t.value, indent, style),
        other => {
            out.push(' ');
            write_scalar(out, other);
            out.push('\n');
        }
    }
}

fn write_scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Sequence(s) if s.is_empty() => out.push_str("[]"),
        Value::Mapping(m) if m.is_empty() => out.push_str("{}"),
        Value::Tagged(t) => write_scalar(out, &t.value),
        // Collections used as keys (never in features documents): a flow form through JSON.
        other => out.push_str(&serde_json::to_string(other).unwrap_or_else(|_| "null".into())),
    }
}

/// Writes a string plain when YAML reads it back as the same string, else double-quoted
/// (JSON's escapes are valid in YAML double-quoted scalars).
pub(crate) fn write_string(out: &mut String, s: &str) {
    if plain_is_safe(s) {
        out.push_str(s);
    } else {
        out.push_str(&serde_json::Value::String(s.to_owned()).to_string());
    }
}

fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.trim() != s || s.len() > 1024 {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if s.chars()
        .any(|c| c.is_control() || c == '\u{feff}' || c == '\u{2028}' || c == '\u{2029}')
    {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    ) {
        return false;
    }
    // Anything that may read as a number, a date or a special float stays quoted.
    let b = s.as_bytes();
    let numberish = b[0].is_ascii_digit()
        || (matches!(b[0], b'+' | b'-' | b'.')
            && b.get(1)
                .is_some_and(|c| c.is_ascii_digit() || *c == b'.' || c.is_ascii_alphabetic()));
    !numberish && !lower.starts_with(".inf") && !lower.starts_with(".nan")
}

/// A top-level entry `key: value` of a document, as text.
pub(crate) fn entry_text(key: &str, v: &Value, style: Style) -> String {
    let mut m = Mapping::new();
    m.insert(Value::String(key.to_owned()), v.clone());
    let mut out = String::new();
    write_map(&mut out, &m, 0, style, false);
    out
}

/// One item of a sequence at `indent`, as text.
pub(crate) fn item_text(v: &Value, indent: usize, style: Style) -> String {
    let mut out = String::new();
    write_seq(&mut out, std::slice::from_ref(v), indent, style, false);
    out
}

/// A whole document (a mapping) as text.
pub(crate) fn document_text(v: &Value, style: Style) -> String {
    let mut out = String::new();
    match v {
        Value::Mapping(m) if !m.is_empty() => write_map(&mut out, m, 0, style, false),
        _ => out.push_str("{}\n"),
    }
    out
}

// ------------------------------------------------------------------ values

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn put(m: &mut Mapping, key: &str, v: Value) {
    m.insert(s(key), v);
}

/// A number written the way a person would: `50`, `33.3`.
pub(crate) fn number_from_f32(x: f32) -> Value {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        Value::Number((x as i64).into())
    } else {
        let shortest: f64 = x.to_string().parse().unwrap_or(x as f64);
        Value::Number(shortest.into())
    }
}

fn json_to_yaml(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                Value::Number(n.as_f64().unwrap_or(0.0).into())
            }
        }
        serde_json::Value::String(t) => s(t),
        serde_json::Value::Array(items) => {
            Value::Sequence(items.iter().map(json_to_yaml).collect())
        }
        serde_json::Value::Object(map) => {
            let mut m = Mapping::new();
            for (k, v) in map {
                m.insert(s(k), json_to_yaml(v));
            }
            Value::Mapping(m)
        }
    }
}

/// The lowest version that can hold a flag.
pub(crate) fn flag_min_version(f: &Flag) -> Version {
    let mut v = Version::V1_0;
    if f.r#type == FlagType::Boolean || !f.rollouts.is_empty() {
        v = v.max(Version::V1_1);
    }
    let multi = |segments: &[String], op: SegmentOperator| {
        segments.len() != 1 || op == SegmentOperator::And
    };
    if f.rules
        .iter()
        .any(|r| multi(&r.segments, r.segment_operator))
        || f.rollouts.iter().any(|r| match &r.rule {
            RolloutRule::Segment(s) => s.segments.len() > 1,
            RolloutRule::Threshold(_) => false,
        })
    {
        v = v.max(Version::V1_2);
    }
    if !f.metadata.is_empty() || f.default_variant.is_some() {
        v = v.max(Version::V1_3);
    }
    v
}

fn segment_list(keys: &[String]) -> Value {
    Value::Sequence(keys.iter().map(|k| s(k)).collect())
}

/// A flag as a document item. `with_type`: write `type` (always for boolean flags).
pub(crate) fn flag_value(f: &Flag, version: Version, with_type: bool) -> Value {
    let mut m = Mapping::new();
    put(&mut m, "key", s(&f.key));
    put(&mut m, "name", s(&f.name));
    if version >= Version::V1_1 && (with_type || f.r#type == FlagType::Boolean) {
        put(&mut m, "type", s(f.r#type.as_str()));
    }
    if !f.description.is_empty() {
        put(&mut m, "description", s(&f.description));
    }
    put(&mut m, "enabled", Value::Bool(f.enabled));
    if !f.metadata.is_empty() {
        put(
            &mut m,
            "metadata",
            json_to_yaml(&serde_json::Value::Object(f.metadata.clone())),
        );
    }
    if !f.variants.is_empty() {
        let items = f
            .variants
            .iter()
            .map(|v| {
                let mut vm = Mapping::new();
                put(&mut vm, "key", s(&v.key));
                if !v.name.is_empty() {
                    put(&mut vm, "name", s(&v.name));
                }
                if !v.description.is_empty() {
                    put(&mut vm, "description", s(&v.description));
                }
                if f.default_variant.as_deref() == Some(v.key.as_str()) {
                    put(&mut vm, "default", Value::Bool(true));
                }
                if let Some(a) = &v.attachment {
                    put(&mut vm, "attachment", json_to_yaml(&a.value()));
                }
                Value::Mapping(vm)
            })
            .collect();
        put(&mut m, "variants", Value::Sequence(items));
    }
    if !f.rules.is_empty() {
        let items = f
            .rules
            .iter()
            .map(|r| {
                let mut rm = Mapping::new();
                let segment = if r.segments.len() == 1 && r.segment_operator == SegmentOperator::Or
                {
                    s(&r.segments[0])
                } else {
                    let mut sm = Mapping::new();
                    put(&mut sm, "keys", segment_list(&r.segments));
                    put(&mut sm, "operator", s(r.segment_operator.as_str()));
                    Value::Mapping(sm)
                };
                put(&mut rm, "segment", segment);
                if !r.distributions.is_empty() {
                    let ds = r
                        .distributions
                        .iter()
                        .map(|d| {
                            let mut dm = Mapping::new();
                            put(&mut dm, "variant", s(&d.variant));
                            put(&mut dm, "rollout", number_from_f32(d.rollout));
                            Value::Mapping(dm)
                        })
                        .collect();
                    put(&mut rm, "distributions", Value::Sequence(ds));
                }
                Value::Mapping(rm)
            })
            .collect();
        put(&mut m, "rules", Value::Sequence(items));
    }
    if !f.rollouts.is_empty() {
        let items = f
            .rollouts
            .iter()
            .map(|r| {
                let mut rm = Mapping::new();
                if !r.description.is_empty() {
                    put(&mut rm, "description", s(&r.description));
                }
                match &r.rule {
                    RolloutRule::Segment(seg) => {
                        let mut sm = Mapping::new();
                        if seg.segments.len() == 1 {
                            put(&mut sm, "key", s(&seg.segments[0]));
                        } else {
                            put(&mut sm, "keys", segment_list(&seg.segments));
                        }
                        if seg.segment_operator == SegmentOperator::And {
                            put(&mut sm, "operator", s(seg.segment_operator.as_str()));
                        }
                        put(&mut sm, "value", Value::Bool(seg.value));
                        put(&mut rm, "segment", Value::Mapping(sm));
                    }
                    RolloutRule::Threshold(t) => {
                        let mut tm = Mapping::new();
                        put(&mut tm, "percentage", number_from_f32(t.percentage));
                        put(&mut tm, "value", Value::Bool(t.value));
                        put(&mut rm, "threshold", Value::Mapping(tm));
                    }
                }
                Value::Mapping(rm)
            })
            .collect();
        put(&mut m, "rollouts", Value::Sequence(items));
    }
    Value::Mapping(m)
}

/// A segment as a document item.
pub(crate) fn segment_value(sg: &Segment, version: Version) -> Value {
    let mut m = Mapping::new();
    put(&mut m, "key", s(&sg.key));
    put(&mut m, "name", s(&sg.name));
    if !sg.description.is_empty() {
        put(&mut m, "description", s(&sg.description));
    }
    if !sg.constraints.is_empty() {
        let items = sg
            .constraints
            .iter()
            .map(|c| {
                let mut cm = Mapping::new();
                put(&mut cm, "type", s(c.r#type.as_str()));
                put(&mut cm, "property", s(&c.property));
                put(&mut cm, "operator", s(&c.operator));
                if !c.value.is_empty() {
                    let list = if c.is_list_operator() && version >= Version::V1_6 {
                        match serde_json::from_str::<serde_json::Value>(&c.value) {
                            Ok(v @ serde_json::Value::Array(_)) => Some(json_to_yaml(&v)),
                            _ => None,
                        }
                    } else {
                        None
                    };
                    put(&mut cm, "value", list.unwrap_or_else(|| s(&c.value)));
                }
                if !c.description.is_empty() {
                    put(&mut cm, "description", s(&c.description));
                }
                Value::Mapping(cm)
            })
            .collect();
        put(&mut m, "constraints", Value::Sequence(items));
    }
    put(&mut m, "match_type", s(sg.match_type.as_str()));
    Value::Mapping(m)
}

/// A document's `namespace` field.
pub(crate) fn namespace_value(ns: &DocumentNamespace) -> Value {
    match ns {
        DocumentNamespace::Key(k) => s(k),
        DocumentNamespace::Details {
            key,
            name,
            description,
        } => {
            let mut m = Mapping::new();
            put(&mut m, "key", s(key));
            if !name.is_empty() {
                put(&mut m, "name", s(name));
            }
            if !description.is_empty() {
                put(&mut m, "description", s(description));
            }
            Value::Mapping(m)
        }
    }
}

/// A whole document, in Flipt's field order.
pub(crate) fn document_value(d: &Document, with_type: impl Fn(&Flag) -> bool) -> Value {
    let version = d.version.unwrap_or(Version::LATEST);
    let mut m = Mapping::new();
    if let Some(v) = d.version {
        put(&mut m, "version", s(v.as_str()));
    }
    if let Some(ns) = &d.namespace {
        put(&mut m, "namespace", namespace_value(ns));
    }
    if !d.flags.is_empty() {
        let flags = d
            .flags
            .iter()
            .map(|f| flag_value(f, version, with_type(f)))
            .collect();
        put(&mut m, "flags", Value::Sequence(flags));
    }
    if !d.segments.is_empty() {
        let segments = d
            .segments
            .iter()
            .map(|sg| segment_value(sg, version))
            .collect();
        put(&mut m, "segments", Value::Sequence(segments));
    }
    Value::Mapping(m)
}

/// `new` with its mapping keys in the order `old` had them (keys `old` lacks come last, in
/// `new`'s order, except `false` values, which are the defaults), recursively; sequences are
/// paired by position.
pub(crate) fn reorder_like(new: &Value, old: &Value) -> Value {
    match (new, old) {
        (Value::Mapping(n), Value::Mapping(o)) => {
            let mut out = Mapping::new();
            for (k, ov) in o {
                if let Some(nv) = n.get(k) {
                    out.insert(k.clone(), reorder_like(nv, ov));
                }
            }
            for (k, nv) in n {
                // A `false` the original left out (`enabled`, a rollout's `value`) is the
                // default: leaving it out keeps the diff to what changed.
                if !o.contains_key(k) && *nv != Value::Bool(false) {
                    out.insert(k.clone(), nv.clone());
                }
            }
            Value::Mapping(out)
        }
        (Value::Sequence(n), Value::Sequence(o)) => Value::Sequence(
            n.iter()
                .enumerate()
                .map(|(i, nv)| match o.get(i) {
                    Some(ov) => reorder_like(nv, ov),
                    None => nv.clone(),
                })
                .collect(),
        ),
        (n, _) => n.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_only_when_needed() {
        let cases = [
            ("plain", "plain"),
            ("with space", "with space"),
            ("1.6", "\"1.6\""),
            ("true", "\"true\""),
            ("Yes", "\"Yes\""),
            ("", "\"\""),
            ("a: b", "\"a: b\""),
            ("- x", "\"- x\""),
            ("multi\nline", "\"multi\\nline\""),
            ("#hash", "\"#hash\""),
            ("a,b", "a,b"),
            ("123abc", "\"123abc\""),
            ("-foo", "\"-foo\""),
            ("null", "\"null\""),
            ("quote\"inside", "quote\"inside"),
            (" lead", "\" lead\""),
        ];
        for (input, expected) in cases {
            let mut out = String::new();
            write_string(&mut out, input);
            assert_eq!(out, expected, "{input:?}");
            let back: String = serde_yaml::from_str(&out).unwrap();
            assert_eq!(back, input);
        }
    }

    #[test]
    fn styles_are_detected() {
        let v2 = "version: \"1.0\"\nflags:\n- key: a\n  name: A\n  variants:\n  - key: x\nnamespace:\n  key: b\n";
        assert_eq!(
            detect_style(v2),
            Style {
                map_indent: 2,
                seq_indent: 0
            }
        );
        let v3 = "version: \"1.6\"\nnamespace:\n    key: b\nflags:\n    - key: a\n      name: A\n";
        assert_eq!(
            detect_style(v3),
            Style {
                map_indent: 4,
                seq_indent: 4
            }
        );
        let ours = "flags:\n  - key: a\n    name: A\n";
        assert_eq!(
            detect_style(ours),
            Style {
                map_indent: 2,
                seq_indent: 2
            }
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number_from_f32(50.0), Value::Number(50.into()));
        assert_eq!(
            serde_yaml::to_string(&number_from_f32(33.34))
                .unwrap()
                .trim(),
            "33.34"
        );
    }
}
