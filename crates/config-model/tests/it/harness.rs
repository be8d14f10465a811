//! Loading a case from a file and from environment variables, and comparing the two.

use std::collections::BTreeMap;

use config_model::{
    Config, ConfigError, CredentialKind, Diagnostic, Loaded, SecretSource, load_str,
};
use secrecy::ExposeSecret;
use serde_yaml::Value;

pub(crate) type Env = BTreeMap<String, String>;

pub(crate) fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `FLIPT_*` variables equivalent to a YAML configuration.
pub(crate) fn env_of_yaml(yaml: &str) -> Env {
    fn walk(prefix: &str, v: &Value, out: &mut Env) {
        match v {
            Value::Mapping(m) => {
                for (k, v) in m {
                    let k = match k {
                        Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
                    };
                    walk(&format!("{prefix}_{}", k.to_uppercase()), v, out);
                }
            }
            Value::String(s) => {
                out.insert(prefix.to_owned(), s.clone());
            }
            Value::Bool(b) => {
                out.insert(prefix.to_owned(), b.to_string());
            }
            Value::Number(n) => {
                out.insert(prefix.to_owned(), n.to_string());
            }
            Value::Null => {}
            other => panic!("cannot express {other:?} as an environment variable"),
        }
    }
    let v: Value = serde_yaml::from_str(yaml).unwrap();
    let mut out = Env::new();
    if !v.is_null() {
        walk("FLIPT", &v, &mut out);
    }
    out
}

/// Every secret of a configuration, exposed, for comparing two configurations.
pub(crate) fn secrets_of(c: &Config) -> Vec<String> {
    fn src(s: &SecretSource) -> String {
        match s {
            SecretSource::Inline(v) => format!("inline:{}", v.expose_secret()),
            SecretSource::File(p) => format!("file:{}", p.display()),
        }
    }
    let mut out = Vec::new();
    for st in c.storages.values() {
        if let Some(w) = &st.webhook_secret {
            out.push(format!("webhook {} {}", st.id, w.expose_secret()));
        }
    }
    for cr in c.credentials.values() {
        match &cr.kind {
            CredentialKind::Basic(Some(b)) => {
                out.push(format!("basic {} {}", cr.id, src(&b.password)))
            }
            CredentialKind::Basic(None) => {}
            CredentialKind::AccessToken { token, .. } => {
                out.push(format!("token {} {}", cr.id, src(token)))
            }
            CredentialKind::Ssh(s) => {
                out.push(format!("key {} {}", cr.id, src(&s.private_key)));
                if let Some(p) = &s.passphrase {
                    out.push(format!("pass {} {}", cr.id, p.expose_secret()));
                }
            }
            _ => out.push(format!("other {}", cr.id)),
        }
    }
    for (name, t) in &c.authentication.token.tokens {
        out.push(format!("auth {name} {}", t.expose_secret()));
    }
    out
}

fn error_keys(e: &ConfigError) -> Vec<(String, String)> {
    e.errors()
        .map(|d| (d.path.to_lowercase(), d.message.clone()))
        .collect()
}

/// Loads `yaml` from a file and, separately, from the equivalent environment variables (plus
/// `extra` variables in both), checks that both agree, and returns the file's result.
pub(crate) fn both(yaml: &str, extra: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    let extra_env = env(extra);
    let from_file = load_str(yaml, Some("config.yml"), &extra_env);
    let mut vars = env_of_yaml(yaml);
    vars.extend(extra_env);
    let from_env = load_str("", None, &vars);
    match (&from_file, &from_env) {
        (Ok(f), Ok(e)) => {
            assert_eq!(
                f.config.to_redacted_yaml(),
                e.config.to_redacted_yaml(),
                "file and env disagree for:\n{yaml}"
            );
            assert_eq!(
                secrets_of(&f.config),
                secrets_of(&e.config),
                "secrets differ for:\n{yaml}"
            );
        }
        (Err(f), Err(e)) => {
            assert_eq!(
                error_keys(f),
                error_keys(e),
                "file and env errors differ for:\n{yaml}\nfile: {f}\nenv: {e}"
            );
        }
        (f, e) => panic!("file and env disagree for:\n{yaml}\nfile: {f:?}\nenv: {e:?}"),
    }
    from_file
}

/// Loads from a file only (for cases that environment variables cannot express).
pub(crate) fn file(yaml: &str) -> Result<Loaded, ConfigError> {
    load_str(yaml, Some("config.yml"), &Env::new())
}

/// Expects a successful load.
pub(crate) fn ok(r: Result<Loaded, ConfigError>) -> Loaded {
    match r {
        Ok(l) => l,
        Err(e) => panic!("expected a valid configuration, got:\n{e}"),
    }
}

/// Expects a failed load, and returns its errors.
pub(crate) fn errors(r: Result<Loaded, ConfigError>) -> Vec<Diagnostic> {
    match r {
        Ok(l) => panic!(
            "expected errors, got a valid configuration:\n{}",
            l.config.to_redacted_yaml()
        ),
        Err(e) => e.errors().cloned().collect(),
    }
}

/// Asserts that some error is at `path` and its message contains every one of `words`.
pub(crate) fn assert_error(errs: &[Diagnostic], path: &str, words: &[&str]) {
    let found = errs
        .iter()
        .any(|d| d.path.eq_ignore_ascii_case(path) && words.iter().all(|w| d.message.contains(w)));
    assert!(
        found,
        "no error at `{path}` containing {words:?}; errors were:\n{errs:#?}"
    );
}

/// Asserts that some warning is at `path` and contains every one of `words`.
pub(crate) fn assert_warning(l: &Loaded, path: &str, words: &[&str]) {
    let found = l
        .warnings
        .iter()
        .any(|d| d.path == path && words.iter().all(|w| d.message.contains(w)));
    assert!(
        found,
        "no warning at `{path}` containing {words:?}; warnings were:\n{:#?}",
        l.warnings
    );
}
