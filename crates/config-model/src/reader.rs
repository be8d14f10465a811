//! Conversion of a `serde_yaml::Value` tree into typed values, collecting every problem
//! with its key path instead of stopping at the first, as typed serde deserialisation would.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::SecretString;
use serde_yaml::Value;

use crate::diagnostic::{Diagnostic, Origin};
use crate::duration::parse_duration;
use crate::env::EnvSource;
use crate::yaml::PositionIndex;

/// A value and the dotted path that leads to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node<'v> {
    pub(crate) value: &'v Value,
}

/// A mapping whose keys were checked against the allowed ones.
#[derive(Debug)]
pub(crate) struct Table<'v> {
    pub(crate) path: String,
    entries: Vec<(String, &'v Value)>,
}

impl<'v> Table<'v> {
    /// The value of `key`, unless absent or null (`key:` with nothing after it).
    pub(crate) fn get(&self, key: &str) -> Option<(String, Node<'v>)> {
        self.entries
            .iter()
            .find(|(k, v)| k == key && !v.is_null())
            .map(|(k, v)| (self.child(k), Node { value: v }))
    }

    /// Whether `key` is present with a non-null value.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The path of a child key.
    pub(crate) fn child(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(t) => kind_of(&t.value),
    }
}

fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(t) => untag(&t.value),
        v => v,
    }
}

/// The conversion context: the diagnostics found so far and what is needed to say where.
pub(crate) struct Ctx<'a> {
    pub(crate) diagnostics: Vec<Diagnostic>,
    positions: &'a PositionIndex,
    env_origins: &'a HashMap<String, String>,
    env: &'a dyn EnvSource,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("diagnostics", &self.diagnostics)
            .finish_non_exhaustive()
    }
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        positions: &'a PositionIndex,
        env_origins: &'a HashMap<String, String>,
        env: &'a dyn EnvSource,
    ) -> Self {
        Ctx {
            diagnostics: Vec::new(),
            positions,
            env_origins,
            env,
        }
    }

    fn origin(&self, path: &str) -> Origin {
        if let Some(var) = self.env_origins.get(path) {
            return Origin::EnvVar(var.clone());
        }
        match self.positions.line(path) {
            Some(line) => Origin::Line(line),
            None => Origin::Unknown,
        }
    }

    pub(crate) fn push(&mut self, mut d: Diagnostic) {
        d.origin = self.origin(&d.path);
        self.diagnostics.push(d);
    }

    pub(crate) fn error(&mut self, path: &str, message: impl Into<String>) {
        self.push(Diagnostic::error(path, message));
    }

    pub(crate) fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.push(Diagnostic::warning(path, message));
    }

    /// Reads a mapping whose keys must be among `allowed`. Null is an empty mapping. Unknown
    /// keys are reported, with a suggestion when one is close.
    pub(crate) fn table<'v>(&mut self, path: &str, node: Node<'v>, allowed: &[&str]) -> Table<'v> {
        let mut table = Table {
            path: path.to_owned(),
            entries: Vec::new(),
        };
        match untag(node.value) {
            Value::Null => {}
            Value::Mapping(map) => {
                for (k, v) in map {
                    let Some(key) = self.key_string(path, k) else {
                        continue;
                    };
                    if self.glued(path, &key) {
                        continue;
                    }
                    if allowed.contains(&key.as_str()) {
                        table.entries.push((key, v));
                    } else {
                        let msg = unknown_key_message(&key, allowed);
                        self.error(&join(path, &key), msg);
                    }
                }
            }
            other => self.error(path, format!("expected a mapping, got {}", kind_of(other))),
        }
        table
    }

    /// Reads a mapping of user-chosen ids (`storage.<id>`), lower-casing them. Two keys that
    /// differ only in case are an error.
    pub(crate) fn ids<'v>(
        &mut self,
        path: &str,
        node: Node<'v>,
    ) -> Vec<(String, String, Node<'v>)> {
        let mut out: Vec<(String, String, Node<'v>)> = Vec::new();
        match untag(node.value) {
            Value::Null => {}
            Value::Mapping(map) => {
                for (k, v) in map {
                    let Some(key) = self.key_string(path, k) else {
                        continue;
                    };
                    if self.glued(path, &key) {
                        continue;
                    }
                    let id = key.to_lowercase();
                    if id.is_empty() {
                        self.error(path, "ids must not be empty");
                        continue;
                    }
                    if let Some((first, ..)) = out.iter().find(|(_, other, _)| *other == id) {
                        let msg = format!(
                            "duplicate id: `{key}` and `{first}` are the same id (ids are case-insensitive)"
                        );
                        self.error(&join(path, &key), msg);
                        continue;
                    }
                    out.push((key, id, Node { value: v }));
                }
            }
            other => self.error(
                path,
                format!("expected a mapping of ids, got {}", kind_of(other)),
            ),
        }
        out
    }

    /// A key with a `:` in it is almost always `key:value` written without the space, and the
    /// value may be a secret (`password:hunter2`): it is reported showing only what comes
    /// before the colon. Returns whether it was.
    fn glued(&mut self, path: &str, key: &str) -> bool {
        let Some((before, _)) = key.split_once(':') else {
            return false;
        };
        let shown = format!("{before}:...");
        self.error(
            &join(path, &shown),
            format!(
                "`{shown}` reads as one key: write a space after the colon (`{before}: value`); the rest is not shown, as it may be a secret"
            ),
        );
        true
    }

    fn key_string(&mut self, path: &str, key: &Value) -> Option<String> {
        match untag(key) {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.error(
                    path,
                    format!("keys must be strings, got {}", kind_of(other)),
                );
                None
            }
        }
    }

    /// Resolves a whole-string `${env:NAME}` reference. `Err(())` means it was reported.
    fn resolve_env_ref(&mut self, path: &str, text: String) -> Result<String, ()> {
        let Some(name) = text
            .strip_prefix("${env:")
            .and_then(|r| r.strip_suffix('}'))
        else {
            return Ok(text);
        };
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            self.error(
                path,
                format!("`${{env:{name}}}` is not a valid variable reference"),
            );
            return Err(());
        }
        match self.env.var(name) {
            Some(value) => Ok(value),
            None => {
                self.error(
                    path,
                    format!("refers to environment variable `{name}`, which is not set"),
                );
                Err(())
            }
        }
    }

    /// A string. Numbers and booleans are taken as their text (YAML reads `branch: 2024` as a
    /// number); `${env:NAME}` is resolved.
    pub(crate) fn string(&mut self, path: &str, node: Node<'_>) -> Option<String> {
        let text = match untag(node.value) {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                self.error(path, format!("expected a string, got {}", kind_of(other)));
                return None;
            }
        };
        self.resolve_env_ref(path, text).ok()
    }

    /// A non-empty string.
    pub(crate) fn nonempty_string(&mut self, path: &str, node: Node<'_>) -> Option<String> {
        let s = self.string(path, node)?;
        if s.trim().is_empty() {
            self.error(path, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// A secret. The value is never echoed in a message, whatever is wrong with it.
    pub(crate) fn secret(&mut self, path: &str, node: Node<'_>) -> Option<SecretString> {
        let text = match untag(node.value) {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                self.error(path, format!("expected a string, got {}", kind_of(other)));
                return None;
            }
        };
        let text = self.resolve_env_ref(path, text).ok()?;
        if text.is_empty() {
            self.error(path, "must not be empty");
            return None;
        }
        Some(SecretString::from(text))
    }

    /// A boolean: `true`/`false`, also as a string in any case (environment variables).
    pub(crate) fn boolean(&mut self, path: &str, node: Node<'_>) -> Option<bool> {
        match untag(node.value) {
            Value::Bool(b) => Some(*b),
            Value::String(s) => {
                let s = self.resolve_env_ref(path, s.clone()).ok()?;
                match s.trim().to_ascii_lowercase().as_str() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => {
                        self.error(path, format!("expected true or false, got `{s}`"));
                        None
                    }
                }
            }
            other => {
                self.error(
                    path,
                    format!("expected true or false, got {}", kind_of(other)),
                );
                None
            }
        }
    }

    /// An unsigned integer in `min..=max`; strings of digits are accepted.
    pub(crate) fn integer(
        &mut self,
        path: &str,
        node: Node<'_>,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let parsed = match untag(node.value) {
            Value::Number(n) => n.as_u64().ok_or_else(|| n.to_string()),
            Value::String(s) => {
                let s = self.resolve_env_ref(path, s.clone()).ok()?;
                s.trim().parse::<u64>().map_err(|_| s)
            }
            other => Err(kind_of(other).to_owned()),
        };
        match parsed {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Ok(n) => {
                self.error(path, format!("must be between {min} and {max}, got {n}"));
                None
            }
            Err(got) => {
                self.error(
                    path,
                    format!("expected a whole number between {min} and {max}, got `{got}`"),
                );
                None
            }
        }
    }

    /// A Go-style duration (`30s`, `1m30s`).
    pub(crate) fn duration(&mut self, path: &str, node: Node<'_>) -> Option<Duration> {
        let text = self.string(path, node)?;
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(path, e);
                None
            }
        }
    }

    /// One of a fixed set of words; `case_insensitive` accepts any case.
    pub(crate) fn choice(
        &mut self,
        path: &str,
        node: Node<'_>,
        allowed: &[&'static str],
        case_insensitive: bool,
    ) -> Option<&'static str> {
        let text = self.string(path, node)?;
        let found = allowed.iter().find(|a| {
            if case_insensitive {
                a.eq_ignore_ascii_case(text.trim())
            } else {
                **a == text
            }
        });
        match found {
            Some(a) => Some(a),
            None => {
                self.error(
                    path,
                    format!("`{text}` is not allowed (allowed: {})", allowed.join(", ")),
                );
                None
            }
        }
    }
}

/// "unknown key `x`", with a suggestion when an allowed key is close.
pub(crate) fn unknown_key_message(key: &str, allowed: &[&str]) -> String {
    let best = allowed
        .iter()
        .map(|a| (strsim::jaro_winkler(key, a), *a))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, suggestion)) => format!("unknown key `{key}`; did you mean `{suggestion}`?"),
        None => format!("unknown key `{key}` (allowed: {})", allowed.join(", ")),
    }
}
