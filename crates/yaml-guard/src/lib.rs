//! Bounds on what a YAML text may cost before `serde_yaml` reads it.
//!
//! `serde_yaml` (libyaml underneath) has two weak spots against hostile text:
//!
//! - **Aliases.** Its own guard stops the classic "billion laughs" (nested aliases), but an
//!   alias of a large anchor, repeated, is expanded in full each time: a 40 KB text with one
//!   anchor of 8,000 items and 8,000 aliases of it is 64 million nodes (gigabytes, minutes).
//!   [`check`] walks the text once without building anything and refuses it when aliases
//!   would add more than [`MAX_ALIAS_NODES`] nodes to what the text itself holds.
//! - **Deep flow nesting.** libyaml's scanner does work proportional to the flow depth for
//!   every token, so `[[[[...` 100,000 deep (200 KB) takes tens of seconds before
//!   `serde_yaml` reports its recursion limit (128). [`check`] refuses more than
//!   [`MAX_DEPTH`] levels first, with `yaml-rust2`'s event parser (iterated, not recursive),
//!   which it only runs when the text has more `[`/`{` than [`MAX_DEPTH`].
//!
//! Used by `config-model` (the configuration file) and `resource-model` (features files and
//! `flipt.yaml`): a leaf crate, so that neither has to depend on the other.
//!
//! ```
//! assert!(yaml_guard::check("a: [1, 2]\n").is_ok());
//! let deep = format!("a: {}{}\n", "[".repeat(200), "]".repeat(200));
//! assert!(yaml_guard::check(&deep).is_err());
//! ```

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, Visitor};
use yaml_rust2::parser::{Event, Parser};

/// Deepest nesting of sequences and mappings accepted (`serde_yaml`'s own limit).
pub const MAX_DEPTH: usize = 128;

/// Most nodes that aliases may add to a text: `*a` counts as every node of what `&a` names.
pub const MAX_ALIAS_NODES: u64 = 100_000;

/// Checks `text` against [`MAX_DEPTH`] and [`MAX_ALIAS_NODES`]. Malformed YAML passes (the
/// parse that follows reports it); the error says which bound was crossed.
pub fn check(text: &str) -> Result<(), String> {
    check_depth(text)?;
    check_aliases(text)
}

fn check_depth(text: &str) -> Result<(), String> {
    let openers = |s: &str| s.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
    if openers(text) <= MAX_DEPTH {
        return Ok(());
    }
    let too_deep = || format!("the YAML is nested more than {MAX_DEPTH} levels deep");
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    // Character index of the last event read.
    let mut last = 0usize;
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => return Ok(()),
            Ok((ev, mark)) => {
                last = mark.index();
                match ev {
                    Event::SequenceStart(..) | Event::MappingStart(..) => {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return Err(too_deep());
                        }
                    }
                    Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            Err(_) => {
                // yaml-rust2 stopped where libyaml may go on: bound the depth of the rest by
                // its brackets (block nesting costs libyaml nothing unusual).
                let rest: String = text.chars().skip(last + 1).collect();
                return if depth + openers(&rest) > MAX_DEPTH {
                    Err(too_deep())
                } else {
                    Ok(())
                };
            }
        }
    }
}

fn check_aliases(text: &str) -> Result<(), String> {
    // An alias needs an anchor (`&name`) and a reference (`*name`).
    if !text.contains('&') || !text.contains('*') {
        return Ok(());
    }
    // A text holds at most about one node per byte; aliases may add MAX_ALIAS_NODES.
    let budget = Budget {
        left: Cell::new(text.len() as u64 + MAX_ALIAS_NODES),
        exhausted: Cell::new(false),
    };
    for document in serde_yaml::Deserializer::from_str(text) {
        if Count(&budget).deserialize(document).is_err() {
            if budget.exhausted.get() {
                return Err(format!(
                    "the YAML's aliases (`*name`) expand to more than {MAX_ALIAS_NODES} nodes beyond the text itself; refused (a \"billion laughs\" document?)"
                ));
            }
            // Malformed: the parse that follows says why.
            return Ok(());
        }
    }
    Ok(())
}

struct Budget {
    left: Cell<u64>,
    exhausted: Cell<bool>,
}

/// Visits every node, following aliases, without keeping anything; fails when the budget
/// runs out.
#[derive(Clone, Copy)]
struct Count<'a>(&'a Budget);

impl Count<'_> {
    fn take<E: de::Error>(self) -> Result<(), E> {
        match self.0.left.get().checked_sub(1) {
            Some(n) => {
                self.0.left.set(n);
                Ok(())
            }
            None => {
                self.0.exhausted.set(true);
                Err(E::custom("alias expansion budget exhausted"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.take()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.take()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.take()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.take()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.take()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.take()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.take()
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        self.take()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.take()?;
        self.deserialize(d)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.take()?;
        self.deserialize(d)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.take()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.take()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged node (`!tag value`): the tag, then the value.
        self.take()?;
        let (IgnoredAny, variant) = data.variant()?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One anchor of `items` scalars, referenced `refs` times.
    fn quadratic(items: usize, refs: usize) -> String {
        format!(
            "a: &a [{}]\nb: [{}]\n",
            vec!["x"; items].join(","),
            vec!["*a"; refs].join(",")
        )
    }

    #[test]
    fn a_large_anchor_referenced_many_times_is_refused() {
        // 1,000 x 1,000 = a million nodes from a 6 KB text.
        let text = quadratic(1000, 1000);
        let err = check(&text).unwrap_err();
        assert!(err.contains("billion laughs"), "{err}");
    }

    #[test]
    fn classic_billion_laughs_is_refused() {
        let mut text = String::from("l0: &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
        for i in 1..10 {
            text.push_str(&format!(
                "l{i}: &l{i} [{}]\n",
                vec![format!("*l{}", i - 1); 9].join(",")
            ));
        }
        let err = check(&text).unwrap_err();
        assert!(err.contains("aliases"), "{err}");
    }

    #[test]
    fn ordinary_aliases_and_ampersands_pass() {
        check(&quadratic(100, 100)).unwrap();
        check("a: &x {k: v}\nb: *x\nc: 'R&D *'\n").unwrap();
        check("description: R&D, 5 * 3\n").unwrap();
        // Tagged values are walked too.
        check("a: &t !custom [1, 2]\nb: [*t, *t]\n").unwrap();
    }

    #[test]
    fn malformed_text_is_left_to_the_parser() {
        check("a: &x [\nb: *x\n").unwrap();
        check("a: *missing\n&").unwrap();
    }

    #[test]
    fn deep_flow_nesting_is_refused_and_the_limit_itself_passes() {
        let deep = |n: usize| format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
        // `a:` is one mapping level: 128 levels in all pass, with more brackets beside them
        // (so that the event pass runs), and 129 do not.
        let at_limit = format!("{}b: [{}]\n", deep(MAX_DEPTH - 1), ["[]"; 10].join(","));
        check(&at_limit).unwrap();
        let err = check(&deep(MAX_DEPTH + 1)).unwrap_err();
        assert!(err.contains("nested more than 128"), "{err}");
        let err = check(&deep(100_000)).unwrap_err();
        assert!(err.contains("nested more than 128"), "{err}");
        let maps = format!("{}1{}", "{a: ".repeat(5000), "}".repeat(5000));
        assert!(check(&maps).is_err());
        // Many brackets side by side are not deep.
        check(&format!("a: [{}]\n", vec!["[1]"; 1000].join(","))).unwrap();
    }

    #[test]
    fn brackets_after_what_yaml_rust2_rejects_still_count() {
        // yaml-rust2 stops at the tab on line 2; what follows is bounded by its brackets.
        let stop = "a:\n\t- 1\n";
        let deep = format!("{stop}b: {}{}\n", "[".repeat(200), "]".repeat(200));
        let err = check(&deep).unwrap_err();
        assert!(err.contains("nested more than 128"), "{err}");
        let wide = format!("c: [{}]\n{stop}", vec!["[]"; 200].join(","));
        check(&wide).unwrap();
    }
}
