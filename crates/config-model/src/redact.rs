//! `config print`: the effective configuration as YAML, secrets replaced by a marker.
//!
//! Written by hand on purpose: the types that hold secrets do not implement `Serialize`, so
//! nothing can print a secret by accident, and this view says exactly what is shown.

use serde_yaml::{Mapping, Value};

use crate::duration::format_duration;
use crate::model::*;

/// What a secret is shown as.
pub const REDACTED: &str = "<redacted>";

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in entries {
        if !v.is_null() {
            m.insert(s(k), v);
        }
    }
    Value::Mapping(m)
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
    v.map(f).unwrap_or(Value::Null)
}

fn secret_source(
    source: &SecretSource,
    inline_key: &'static str,
    path_key: &'static str,
) -> Vec<(&'static str, Value)> {
    match source {
        SecretSource::Inline(_) => vec![(inline_key, s(REDACTED))],
        SecretSource::File(p) => vec![(path_key, s(p.display().to_string()))],
    }
}

impl Config {
    /// The effective configuration (defaults and overrides applied) as YAML, with every
    /// secret replaced by `<redacted>`. Files holding secrets are shown by path.
    pub fn to_redacted_yaml(&self) -> String {
        let storage: Mapping = self
            .storages
            .values()
            .map(|st| (s(st.id.clone()), storage(st)))
            .collect();
        let credentials: Mapping = self
            .credentials
            .values()
            .map(|c| (s(c.id.clone()), credential(c)))
            .collect();
        let environments: Mapping = self
            .environments
            .iter()
            .map(|e| {
                (
                    s(e.id.clone()),
                    map(vec![
                        ("name", s(e.name.clone())),
                        ("storage", s(e.storage.clone())),
                        ("directory", s(e.directory.clone())),
                        ("default", Value::Bool(e.default)),
                    ]),
                )
            })
            .collect();
        let sv = &self.server;
        let server = map(vec![
            ("host", s(sv.host.clone())),
            ("grpc_port", Value::from(sv.grpc_port)),
            ("http_port", Value::from(sv.http_port)),
            (
                "protocol",
                s(if sv.tls.is_some() { "https" } else { "http" }),
            ),
            (
                "cert_file",
                opt(sv.tls.as_ref(), |t| s(t.cert_file.display().to_string())),
            ),
            (
                "cert_key",
                opt(sv.tls.as_ref(), |t| s(t.cert_key.display().to_string())),
            ),
            ("max_request_bytes", Value::from(sv.max_request_bytes)),
            (
                "max_concurrent_streams",
                Value::from(sv.max_concurrent_streams),
            ),
            ("git_timeout", s(format_duration(sv.git_timeout))),
        ]);
        let log = map(vec![
            ("level", s(self.log.level.as_str())),
            ("encoding", s(self.log.encoding.as_str())),
        ]);
        let tokens: Mapping = self
            .authentication
            .token
            .tokens
            .keys()
            .map(|name| (s(name.clone()), map(vec![("credential", s(REDACTED))])))
            .collect();
        let authentication = map(vec![
            ("required", Value::Bool(self.authentication.required)),
            (
                "methods",
                map(vec![(
                    "token",
                    map(vec![
                        ("enabled", Value::Bool(self.authentication.token.enabled)),
                        ("storage", map(vec![("tokens", Value::Mapping(tokens))])),
                    ]),
                )]),
            ),
        ]);
        crate::yaml::emit(&map(vec![
            ("version", s("2.0")),
            ("storage", Value::Mapping(storage)),
            ("credentials", Value::Mapping(credentials)),
            ("environments", Value::Mapping(environments)),
            ("server", server),
            ("log", log),
            ("authentication", authentication),
        ]))
    }
}

fn storage(st: &StorageConfig) -> Value {
    let backend = match &st.backend {
        Backend::Memory => map(vec![("type", s("memory"))]),
        Backend::Local { path } => map(vec![
            ("type", s("local")),
            ("path", s(path.display().to_string())),
        ]),
    };
    let mut entries = vec![
        ("name", s(st.name.clone())),
        ("backend", backend),
        ("remote", opt(st.remote.as_ref(), |r| s(r.to_string()))),
        ("branch", s(st.branch.clone())),
        ("poll_interval", s(format_duration(st.poll_interval))),
    ];
    if st.remote.is_some() {
        entries.push(("fetch_policy", s(st.fetch_policy.as_str())));
    }
    entries.extend([
        (
            "credentials",
            opt(st.credentials.as_ref(), |c| s(c.clone())),
        ),
        (
            "ca_cert_path",
            opt(st.ca_cert.as_ref(), |c| match c {
                CaCert::Path(p) => s(p.display().to_string()),
                CaCert::Pem(_) => Value::Null,
            }),
        ),
        (
            "ca_cert_bytes",
            opt(st.ca_cert.as_ref(), |c| match c {
                CaCert::Pem(pem) => s(pem.clone()),
                CaCert::Path(_) => Value::Null,
            }),
        ),
        ("insecure_skip_tls", Value::Bool(st.insecure_skip_tls)),
        (
            "signature",
            map(vec![
                ("name", s(st.signature.name.clone())),
                ("email", s(st.signature.email.clone())),
            ]),
        ),
        (
            "webhook_secret",
            opt(st.webhook_secret.as_ref(), |_| s(REDACTED)),
        ),
    ]);
    map(entries)
}

fn credential(c: &CredentialConfig) -> Value {
    let mut entries = vec![("type", s(c.kind.type_name()))];
    match &c.kind {
        CredentialKind::Basic(None) => {}
        CredentialKind::Basic(Some(b)) => {
            let mut inner = vec![("username", s(b.username.clone()))];
            inner.extend(secret_source(&b.password, "password", "password_path"));
            entries.push(("basic", map(inner)));
        }
        CredentialKind::AccessToken { token, username } => {
            entries.extend(secret_source(token, "access_token", "access_token_path"));
            entries.push(("username", opt(username.as_ref(), |u| s(u.clone()))));
        }
        CredentialKind::Ssh(ssh) => {
            let mut inner = vec![("user", s(ssh.user.clone()))];
            inner.extend(secret_source(
                &ssh.private_key,
                "private_key_bytes",
                "private_key_path",
            ));
            inner.extend([
                ("password", opt(ssh.passphrase.as_ref(), |_| s(REDACTED))),
                (
                    "insecure_ignore_host_key",
                    Value::Bool(ssh.insecure_ignore_host_key),
                ),
                (
                    "known_hosts",
                    opt(ssh.known_hosts.as_ref(), |k| s(k.clone())),
                ),
                (
                    "known_hosts_path",
                    opt(ssh.known_hosts_path.as_ref(), |p| {
                        s(p.display().to_string())
                    }),
                ),
            ]);
            entries.push(("ssh", map(inner)));
        }
    }
    map(entries)
}
