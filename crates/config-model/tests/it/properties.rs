//! Bad input never panics: random bytes, random trees of real configuration keys with random
//! values, and valid configurations (the examples, and one with every secret) edited at random,
//! as text and as values. Every refusal says what is wrong, and no secret appears in an error,
//! in `Debug` or in `config print`, whatever mistakes surround it.

use config_model::load_str;
use proptest::prelude::*;
use serde_yaml::{Mapping, Value};

use crate::harness::env;
use crate::secrets::{assert_clean, every_secret};

/// The valid configurations that the mutations start from.
fn valid_texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        include_str!("../../../../examples/memory.yml"),
        include_str!("../../../../examples/quickstart.yml"),
        include_str!("../../../../examples/local-https-token.yml"),
        include_str!("../../../../examples/ssh-known-hosts.yml"),
        include_str!("../../../../examples/two-environments.yml"),
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    texts.push(every_secret());
    texts
}

/// The variables the valid configurations use.
fn example_env() -> crate::harness::Env {
    env(&[
        ("GITHUB_TOKEN", "env-SECRET-resolved"),
        ("GITEA_PASSWORD", "env-SECRET-resolved"),
        ("FLAGS_WEBHOOK_SECRET", "env-SECRET-resolved"),
        ("TOKEN", "env-SECRET-resolved"),
    ])
}

/// One edit of a text: at a position (a fraction of its length), delete, insert or replace
/// with characters that matter to YAML.
#[derive(Debug, Clone)]
enum Edit {
    Delete(prop::sample::Index, usize),
    Insert(prop::sample::Index, String),
    Replace(prop::sample::Index, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            ":",
            " ",
            "\n",
            "\t",
            "-",
            "- ",
            "[",
            "]",
            "{",
            "}",
            ",",
            "#",
            "&a ",
            "*a",
            "!!str ",
            "'",
            "\"",
            "|",
            ">",
            "---\n",
            "...\n",
            "? ",
            "%",
            "@",
            "`",
            "\0",
            "\u{feff}",
            "${env:",
            "${env:NOPE}",
            "  ",
            "\n  ",
            "\n    x: 1\n",
        ])
        .prop_map(str::to_owned),
        "[ -~]{1,6}",
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), 1usize..8).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<prop::sample::Index>(), piece.clone()).prop_map(|(i, s)| Edit::Insert(i, s)),
        (any::<prop::sample::Index>(), piece).prop_map(|(i, s)| Edit::Replace(i, s)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let at = |i: &prop::sample::Index, len: usize| if len == 0 { 0 } else { i.index(len) };
        match e {
            Edit::Delete(i, n) => {
                let start = at(i, chars.len());
                let end = (start + n).min(chars.len());
                chars.drain(start..end);
            }
            Edit::Insert(i, s) => {
                let start = at(i, chars.len() + 1);
                chars.splice(start..start, s.chars());
            }
            Edit::Replace(i, s) => {
                let start = at(i, chars.len());
                let end = (start + s.chars().count()).min(chars.len());
                chars.splice(start..end, s.chars());
            }
        }
    }
    chars.into_iter().collect()
}

/// Every leaf of a value, as the path of keys and indexes that leads to it.
fn leaves(v: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                path.push(k.clone());
                leaves(v, path, out);
                path.pop();
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Value::Number(i.into()));
                leaves(v, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn leaf_mut<'a>(v: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v);
    };
    let next = match (v, first) {
        (Value::Mapping(m), k) => m.get_mut(k)?,
        (Value::Sequence(items), Value::Number(n)) => items.get_mut(n.as_u64()? as usize)?,
        _ => return None,
    };
    leaf_mut(next, rest)
}

/// A mistake made with a value: another scalar, the value inside a list or a mapping, the
/// value with something added, or the value moved one level down.
#[derive(Debug, Clone)]
enum Mistake {
    Scalar(Value),
    InList,
    InMap,
    Suffix(String),
    Nested(String),
}

fn mistake() -> impl Strategy<Value = Mistake> {
    prop_oneof![
        scalar().prop_map(Mistake::Scalar),
        Just(Mistake::InList),
        Just(Mistake::InMap),
        "[ -~]{1,4}".prop_map(Mistake::Suffix),
        prop::sample::select(KEYS).prop_map(|k| Mistake::Nested(k.to_owned())),
    ]
}

fn make(mistake: &Mistake, old: &Value) -> Value {
    match mistake {
        Mistake::Scalar(v) => v.clone(),
        Mistake::InList => Value::Sequence(vec![old.clone()]),
        Mistake::InMap => {
            let mut m = Mapping::new();
            m.insert(Value::String("x".into()), old.clone());
            Value::Mapping(m)
        }
        Mistake::Suffix(s) => match old {
            Value::String(o) => Value::String(format!("{o}{s}")),
            other => other.clone(),
        },
        Mistake::Nested(k) => {
            let mut m = Mapping::new();
            m.insert(Value::String(k.clone()), old.clone());
            Value::Mapping(m)
        }
    }
}

fn check_outcome(
    text: &str,
    result: Result<config_model::Loaded, config_model::ConfigError>,
) -> Result<(), TestCaseError> {
    match result {
        Ok(loaded) => {
            assert_clean("Debug", &format!("{loaded:?}"));
            assert_clean("config print", &loaded.config.to_redacted_yaml());
        }
        Err(err) => {
            prop_assert!(
                err.errors().count() > 0,
                "an error without errors for {text:?}: {err:?}"
            );
            for d in &err.diagnostics {
                prop_assert!(
                    !d.message.is_empty(),
                    "an empty message for {text:?}: {err:?}"
                );
            }
            assert_clean("error Display", &err.to_string());
            assert_clean("error Debug", &format!("{err:?}"));
        }
    }
    Ok(())
}

const KEYS: &[&str] = &[
    "version",
    "storage",
    "credentials",
    "environments",
    "server",
    "log",
    "authentication",
    "default",
    "prod",
    "backend",
    "type",
    "path",
    "remote",
    "branch",
    "poll_interval",
    "fetch_policy",
    "name",
    "ca_cert_path",
    "ca_cert_bytes",
    "insecure_skip_tls",
    "signature",
    "email",
    "enabled",
    "webhook_secret",
    "basic",
    "username",
    "password",
    "access_token",
    "ssh",
    "user",
    "private_key_path",
    "private_key_bytes",
    "known_hosts",
    "directory",
    "storage",
    "scm",
    "host",
    "grpc_port",
    "http_port",
    "protocol",
    "level",
    "encoding",
    "required",
    "methods",
    "token",
    "tokens",
    "credential",
    "ui",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_map(|n| Value::Number(n.into())),
        "[a-z:/.@${}_ -]{0,24}".prop_map(Value::String),
        prop::sample::select(vec![
            "local",
            "memory",
            "https://h/r.git",
            "git@h:r",
            "30s",
            "0",
            "${env:X}",
            "true",
            "ssh",
            "basic",
            "access_token",
            "/",
            ".."
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|entries| {
                let mut m = Mapping::new();
                for (k, v) in entries {
                    m.insert(Value::String(k.to_owned()), v);
                }
                Value::Mapping(m)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = load_str(&text, None, &env(&[]));
    }

    #[test]
    fn random_configuration_trees_never_panic(value in tree()) {
        let text = serde_yaml::to_string(&value).unwrap();
        let _ = load_str(&text, None, &env(&[("X", "y")]));
    }

    #[test]
    fn valid_configurations_edited_at_random_never_panic(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let texts = valid_texts();
        let text = apply(&texts[which.index(texts.len())], &edits);
        let result = load_str(&text, Some("c.yml"), &example_env());
        // A text edit may turn a secret into a key or a plain scalar of another field: only
        // the shape of the refusal is checked here, secrets in the next property.
        if let Err(err) = result {
            prop_assert!(err.errors().count() > 0, "{text:?}: {err:?}");
            for d in &err.diagnostics {
                prop_assert!(!d.message.is_empty(), "{text:?}: {err:?}");
            }
        }
    }

    #[test]
    fn mistakes_next_to_secrets_never_show_them(
        which in any::<prop::sample::Index>(),
        mistakes in prop::collection::vec((any::<prop::sample::Index>(), mistake()), 1..5),
    ) {
        let texts = valid_texts();
        let mut value: Value = serde_yaml::from_str(&texts[which.index(texts.len())]).unwrap();
        for (at, m) in &mistakes {
            let mut all = Vec::new();
            leaves(&value, &mut Vec::new(), &mut all);
            if all.is_empty() {
                break;
            }
            let path = &all[at.index(all.len())];
            if let Some(leaf) = leaf_mut(&mut value, path) {
                *leaf = make(m, leaf);
            }
        }
        let text = serde_yaml::to_string(&value).unwrap();
        check_outcome(&text, load_str(&text, Some("c.yml"), &example_env()))?;
    }

    #[test]
    fn random_variables_never_panic(name in "[A-Z_]{1,40}", value in "[ -~]{0,20}") {
        let _ = load_str("", None, &env(&[(&format!("FLIPT_{name}"), &value)]));
    }
}
