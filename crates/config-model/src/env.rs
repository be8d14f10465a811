//! Environment variables: where they are read from, and how `FLIPT_<SECTION>_<ID>_<KEY>`
//! variables are laid over the file before it is converted.

use std::collections::{BTreeMap, HashMap};

use serde_yaml::{Mapping, Value};

use crate::diagnostic::{Diagnostic, Origin};

/// Where environment variables come from. The process environment in production
/// ([`ProcessEnv`]); a map in tests, so that tests can run in parallel.
pub trait EnvSource {
    /// The value of one variable.
    fn var(&self, name: &str) -> Option<String>;
    /// Every variable whose name starts with `prefix`, sorted by name.
    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)>;
}

/// The process environment. Variables whose name or value is not UTF-8 are skipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let mut vars: Vec<_> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with(prefix))
            .collect();
        vars.sort();
        vars
    }
}

impl EnvSource for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }

    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        self.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }

    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let mut vars: Vec<_> = self
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.sort();
        vars
    }
}

/// Key paths (dotted, lower-case) that a `storage.<id>` entry accepts.
pub(crate) const STORAGE_KEYS: &[&str] = &[
    "name",
    "backend.type",
    "backend.path",
    "remote",
    "branch",
    "poll_interval",
    "fetch_policy",
    "credentials",
    "ca_cert_path",
    "ca_cert_bytes",
    "insecure_skip_tls",
    "signature.name",
    "signature.email",
    "signature.enabled",
    "signature.type",
    "signature.key_id",
    "webhook_secret",
];

/// Key paths that a `credentials.<id>` entry accepts.
pub(crate) const CREDENTIAL_KEYS: &[&str] = &[
    "type",
    "basic.username",
    "basic.password",
    "basic.password_path",
    "access_token",
    "access_token_path",
    "username",
    "ssh.user",
    "ssh.password",
    "ssh.private_key_path",
    "ssh.private_key_bytes",
    "ssh.insecure_ignore_host_key",
    "ssh.known_hosts",
    "ssh.known_hosts_path",
    "github_app.client_id",
    "github_app.installation_id",
    "github_app.private_key_path",
    "github_app.private_key_bytes",
    "github_app.api_url",
];

/// Key paths that an `environments.<id>` entry accepts.
pub(crate) const ENVIRONMENT_KEYS: &[&str] = &[
    "name",
    "storage",
    "directory",
    "default",
    "scm.type",
    "scm.credentials",
    "scm.api_url",
];

/// Key paths of the `server` section.
pub(crate) const SERVER_KEYS: &[&str] = &[
    "host",
    "grpc_port",
    "http_port",
    "protocol",
    "cert_file",
    "cert_key",
    "max_request_bytes",
    "max_concurrent_streams",
    "git_timeout",
];

/// Key paths of the `log` section.
pub(crate) const LOG_KEYS: &[&str] = &["level", "encoding"];

/// Key paths of the `authentication` section, except the per-token keys.
pub(crate) const AUTHENTICATION_KEYS: &[&str] = &["required", "methods.token.enabled"];

/// Top-level sections of a Flipt v2 configuration that this service does not use: they load
/// with a warning and are ignored, so a Flipt configuration file works as it is.
pub(crate) const IGNORED_SECTIONS: &[&str] = &[
    "analytics",
    "audit",
    "authorization",
    "cache",
    "cors",
    "db",
    "diagnostics",
    "experimental",
    "info",
    "license",
    "meta",
    "metrics",
    "secrets",
    "templates",
    "tracing",
    "ui",
];

const TOKEN_PREFIX: &str = "METHODS_TOKEN_STORAGE_TOKENS_";

/// Lays every `FLIPT_` variable over `root`. Returns the key path each variable set, by path,
/// for messages. Variables that match no key are reported as errors.
pub(crate) fn overlay(
    root: &mut Value,
    env: &dyn EnvSource,
    diagnostics: &mut Vec<Diagnostic>,
) -> HashMap<String, String> {
    let mut origins = HashMap::new();
    for (name, value) in env.vars_with_prefix("FLIPT_") {
        let rest = &name["FLIPT_".len()..];
        let path = match resolve(rest) {
            Resolved::Path(path) => path,
            Resolved::Ignored => continue,
            Resolved::Unknown => {
                diagnostics.push(Diagnostic {
                    origin: Origin::EnvVar(name.clone()),
                    ..Diagnostic::error(
                        "",
                        format!("environment variable `{name}` matches no configuration key"),
                    )
                });
                continue;
            }
        };
        match set_path(root, &path, Value::String(value)) {
            Ok(actual) => {
                origins.insert(actual, name);
            }
            Err(at) => diagnostics.push(Diagnostic {
                origin: Origin::EnvVar(name.clone()),
                ..Diagnostic::error(
                    at,
                    format!("cannot apply environment variable `{name}`: this key is not a mapping in the file"),
                )
            }),
        }
    }
    origins
}

enum Resolved {
    Path(Vec<String>),
    Ignored,
    Unknown,
}

fn env_form(key: &str) -> String {
    key.replace('.', "_").to_ascii_uppercase()
}

fn split_key(key: &str) -> Vec<String> {
    key.split('.').map(str::to_owned).collect()
}

/// Splits `rest` (a variable name without `FLIPT_`) into a key path.
fn resolve(rest: &str) -> Resolved {
    if rest == "VERSION" {
        return Resolved::Path(vec!["version".into()]);
    }
    let Some((section, tail)) = rest.split_once('_') else {
        return Resolved::Unknown;
    };
    let section_lower = section.to_ascii_lowercase();
    if IGNORED_SECTIONS.contains(&section_lower.as_str()) {
        return Resolved::Ignored;
    }
    let plain = |keys: &[&str]| {
        keys.iter()
            .find(|k| env_form(k) == tail)
            .map(|k| {
                let mut p = vec![section_lower.clone()];
                p.extend(split_key(k));
                Resolved::Path(p)
            })
            .unwrap_or(Resolved::Unknown)
    };
    match section {
        "SERVER" => plain(SERVER_KEYS),
        "LOG" => plain(LOG_KEYS),
        "AUTHENTICATION" => {
            if let Some(token) = tail.strip_prefix(TOKEN_PREFIX) {
                if let Some(token_name) = token.strip_suffix("_CREDENTIAL")
                    && !token_name.is_empty()
                {
                    return Resolved::Path(
                        ["authentication", "methods", "token", "storage", "tokens"]
                            .iter()
                            .map(|s| s.to_string())
                            .chain([token_name.to_ascii_lowercase(), "credential".into()])
                            .collect(),
                    );
                }
                return Resolved::Unknown;
            }
            plain(AUTHENTICATION_KEYS)
        }
        "STORAGE" => with_id("storage", tail, STORAGE_KEYS),
        "CREDENTIALS" => with_id("credentials", tail, CREDENTIAL_KEYS),
        "ENVIRONMENTS" => with_id("environments", tail, ENVIRONMENT_KEYS),
        _ => Resolved::Unknown,
    }
}

/// `<ID>_<KEY>`: the longest known key path at the end wins; what is left is the id.
fn with_id(section: &str, tail: &str, keys: &[&str]) -> Resolved {
    let best = keys
        .iter()
        .filter(|k| {
            let suffix = format!("_{}", env_form(k));
            tail.len() > suffix.len() && tail.ends_with(&suffix)
        })
        .max_by_key(|k| k.len());
    match best {
        Some(key) => {
            let id = &tail[..tail.len() - env_form(key).len() - 1];
            let mut path = vec![section.to_owned(), id.to_ascii_lowercase()];
            path.extend(split_key(key));
            Resolved::Path(path)
        }
        None => Resolved::Unknown,
    }
}

/// Sets `path` in `root`, creating mappings as needed. Ids already in the file match
/// case-insensitively (the file's spelling is kept). Returns the dotted path that was set, or
/// the path of a non-mapping value in the way.
fn set_path(root: &mut Value, path: &[String], value: Value) -> Result<String, String> {
    let mut node = root;
    let mut walked: Vec<String> = Vec::new();
    for (i, segment) in path.iter().enumerate() {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = node else {
            return Err(walked.join("."));
        };
        let existing = map
            .keys()
            .filter_map(|k| k.as_str())
            .find(|k| k.eq_ignore_ascii_case(segment) && (i == 1 || *k == segment.as_str()))
            .map(str::to_owned);
        let key = existing.unwrap_or_else(|| segment.clone());
        walked.push(key.clone());
        let key_value = Value::String(key);
        if i + 1 == path.len() {
            map.insert(key_value, value);
            return Ok(walked.join("."));
        }
        if !map.contains_key(&key_value) {
            map.insert(key_value.clone(), Value::Null);
        }
        node = map.get_mut(&key_value).expect("inserted above");
    }
    Ok(walked.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(var: &str) -> Option<String> {
        match resolve(var.strip_prefix("FLIPT_").unwrap()) {
            Resolved::Path(p) => Some(p.join(".")),
            _ => None,
        }
    }

    #[test]
    fn splits_at_the_longest_known_key() {
        assert_eq!(
            path_of("FLIPT_STORAGE_DEFAULT_REMOTE").as_deref(),
            Some("storage.default.remote")
        );
        assert_eq!(
            path_of("FLIPT_STORAGE_PROD_EU_POLL_INTERVAL").as_deref(),
            Some("storage.prod_eu.poll_interval")
        );
        assert_eq!(
            path_of("FLIPT_STORAGE_X_CA_CERT_PATH").as_deref(),
            Some("storage.x.ca_cert_path")
        );
        assert_eq!(
            path_of("FLIPT_STORAGE_X_BACKEND_PATH").as_deref(),
            Some("storage.x.backend.path")
        );
        assert_eq!(
            path_of("FLIPT_CREDENTIALS_GITHUB_ACCESS_TOKEN").as_deref(),
            Some("credentials.github.access_token")
        );
        assert_eq!(
            path_of("FLIPT_CREDENTIALS_GITHUB_ACCESS_TOKEN_PATH").as_deref(),
            Some("credentials.github.access_token_path")
        );
        assert_eq!(
            path_of("FLIPT_CREDENTIALS_MY_SSH_SSH_USER").as_deref(),
            Some("credentials.my_ssh.ssh.user")
        );
        assert_eq!(
            path_of("FLIPT_CREDENTIALS_X_BASIC_USERNAME").as_deref(),
            Some("credentials.x.basic.username")
        );
        assert_eq!(
            path_of("FLIPT_CREDENTIALS_X_USERNAME").as_deref(),
            Some("credentials.x.username")
        );
        assert_eq!(
            path_of("FLIPT_ENVIRONMENTS_PROD_DEFAULT").as_deref(),
            Some("environments.prod.default")
        );
        assert_eq!(path_of("FLIPT_LOG_LEVEL").as_deref(), Some("log.level"));
        assert_eq!(
            path_of("FLIPT_SERVER_GRPC_PORT").as_deref(),
            Some("server.grpc_port")
        );
        assert_eq!(path_of("FLIPT_VERSION").as_deref(), Some("version"));
        assert_eq!(
            path_of("FLIPT_AUTHENTICATION_METHODS_TOKEN_STORAGE_TOKENS_CI_BOT_CREDENTIAL")
                .as_deref(),
            Some("authentication.methods.token.storage.tokens.ci_bot.credential")
        );
    }

    #[test]
    fn unknown_and_ignored_variables() {
        assert!(matches!(resolve("STORAGE_REMOTE"), Resolved::Unknown));
        assert!(matches!(resolve("STORAGE_PROD_COLOUR"), Resolved::Unknown));
        assert!(matches!(resolve("SERVER_NOPE"), Resolved::Unknown));
        assert!(matches!(resolve("NOPE"), Resolved::Unknown));
        assert!(matches!(resolve("UI_ENABLED"), Resolved::Ignored));
        assert!(matches!(
            resolve("TRACING_OTLP_ENDPOINT"),
            Resolved::Ignored
        ));
    }

    #[test]
    fn overlay_matches_existing_ids_case_insensitively() {
        let mut root: Value =
            serde_yaml::from_str("storage:\n  Prod:\n    branch: main\n").unwrap();
        let env: BTreeMap<String, String> =
            [("FLIPT_STORAGE_PROD_BRANCH".to_owned(), "develop".to_owned())].into();
        let mut diags = Vec::new();
        let origins = overlay(&mut root, &env, &mut diags);
        assert!(diags.is_empty());
        assert_eq!(
            origins.get("storage.Prod.branch").map(String::as_str),
            Some("FLIPT_STORAGE_PROD_BRANCH")
        );
        assert_eq!(root["storage"]["Prod"]["branch"].as_str(), Some("develop"));
    }
}
