//! Loading: YAML text and environment variables in, a validated [`Config`] (or every problem
//! found) out.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::diagnostic::{ConfigError, Diagnostic, sort};
use crate::env::{self, EnvSource, IGNORED_SECTIONS};
use crate::model::*;
use crate::reader::{Ctx, Node, Table};
use crate::refname::check_branch_name;
use crate::remote_url::{RemoteUrl, Transport};
use crate::yaml::{self, PositionIndex};

/// A configuration that loaded, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// Problems that did not stop it from loading.
    pub warnings: Vec<Diagnostic>,
}

/// Loads the configuration file at `path` (or the built-in defaults when `None`), with the
/// `FLIPT_` variables of `env` laid over it.
pub fn load_file(path: Option<&Path>, env: &dyn EnvSource) -> Result<Loaded, ConfigError> {
    let Some(path) = path else {
        return load_str("", None, env);
    };
    let label = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, Some(&label), env),
        Err(e) => Err(ConfigError {
            file: Some(label.clone()),
            diagnostics: vec![Diagnostic::error("", format!("cannot read `{label}`: {e}"))],
        }),
    }
}

/// Loads a configuration from YAML text (empty text means the built-in defaults) with the
/// `FLIPT_` variables of `env` laid over it. `file` names the source in messages.
pub fn load_str(
    text: &str,
    file: Option<&str>,
    env: &dyn EnvSource,
) -> Result<Loaded, ConfigError> {
    let fail = |diagnostics: Vec<Diagnostic>| ConfigError {
        file: file.map(str::to_owned),
        diagnostics,
    };
    let mut root = match yaml::parse(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(fail(vec![Diagnostic::error(
                "",
                format!("malformed YAML: {e}"),
            )]));
        }
    };
    if !matches!(root, Value::Null | Value::Mapping(_)) {
        return Err(fail(vec![Diagnostic::error(
            "",
            "the configuration must be a YAML mapping",
        )]));
    }
    let positions = PositionIndex::build(text);
    let mut early = Vec::new();
    let origins = env::overlay(&mut root, env, &mut early);
    let mut ctx = Ctx::new(&positions, &origins, env);
    ctx.diagnostics = early;
    let config = convert(&mut ctx, &root);
    let mut diagnostics = ctx.diagnostics;
    sort(&mut diagnostics);
    match config {
        Some(config) if !diagnostics.iter().any(Diagnostic::is_error) => Ok(Loaded {
            config,
            warnings: diagnostics,
        }),
        _ => Err(fail(diagnostics)),
    }
}

const TOP_LEVEL: &[&str] = &[
    "version",
    "storage",
    "credentials",
    "environments",
    "server",
    "log",
    "authentication",
];

fn convert(ctx: &mut Ctx<'_>, root: &Value) -> Option<Config> {
    let mut allowed: Vec<&str> = TOP_LEVEL.to_vec();
    allowed.extend_from_slice(IGNORED_SECTIONS);
    let top = ctx.table("", Node { value: root }, &allowed);
    for section in IGNORED_SECTIONS {
        if top.has(section) {
            ctx.warn(
                section,
                "this Flipt section is not used by the storage service and is ignored",
            );
        }
    }
    if let Some((path, node)) = top.get("version")
        && let Some(v) = ctx.string(&path, node)
        && v.trim() != "2.0"
    {
        ctx.error(
            &path,
            format!("unsupported version `{v}` (allowed: \"2.0\")"),
        );
    }

    let credentials = convert_credentials(ctx, &top);
    let storages = convert_storages(ctx, &top, &credentials);
    let environments = convert_environments(ctx, &top, &storages);
    let (credentials, storages) = (credentials.valid, storages.valid);
    let server = convert_server(ctx, &top);
    let log = convert_log(ctx, &top);
    let authentication = convert_authentication(ctx, &top);
    Some(Config {
        storages,
        credentials,
        environments: environments?,
        server: server?,
        log: log?,
        authentication: authentication?,
    })
}

/// Ids appear in URLs, health-check names and metric labels, so they are kept simple.
fn check_id(ctx: &mut Ctx<'_>, path: &str, id: &str) -> bool {
    let ok = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && id.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        ctx.error(
            path,
            format!("id `{id}` must start with a letter or digit and contain only letters, digits, `_`, `-` and `.`"),
        );
    }
    ok
}

fn warn_if_missing(ctx: &mut Ctx<'_>, path: &str, file: &Path) {
    if !file.exists() {
        ctx.warn(
            path,
            format!(
                "file `{}` does not exist (yet); it is read when used",
                file.display()
            ),
        );
    }
}

fn path_value(ctx: &mut Ctx<'_>, table: &Table<'_>, key: &str) -> Option<PathBuf> {
    let (path, node) = table.get(key)?;
    let s = ctx.nonempty_string(&path, node)?;
    let p = PathBuf::from(s);
    warn_if_missing(ctx, &path, &p);
    Some(p)
}

// ---------------------------------------------------------------------------------------------
// credentials

const CREDENTIAL_TYPES: &[&str] = &["basic", "access_token", "ssh", "github_app"];

/// Entries of an id-keyed section: the valid ones, and every id that was defined (valid or
/// not), so that references to an invalid entry are not reported a second time as unknown.
struct Section<T> {
    valid: BTreeMap<String, T>,
    defined: Vec<String>,
}

impl<T> Section<T> {
    fn is_defined(&self, id: &str) -> bool {
        self.defined.iter().any(|d| d == id)
    }
}

fn convert_credentials(ctx: &mut Ctx<'_>, top: &Table<'_>) -> Section<CredentialConfig> {
    let mut out = Section {
        valid: BTreeMap::new(),
        defined: Vec::new(),
    };
    let Some((path, node)) = top.get("credentials") else {
        return out;
    };
    for (key, id, node) in ctx.ids(&path, node) {
        let path = format!("credentials.{key}");
        out.defined.push(id.clone());
        if !check_id(ctx, &path, &id) {
            continue;
        }
        if let Some(kind) = convert_credential(ctx, &path, node) {
            out.valid.insert(id.clone(), CredentialConfig { id, kind });
        }
    }
    out
}

fn convert_credential(ctx: &mut Ctx<'_>, path: &str, node: Node<'_>) -> Option<CredentialKind> {
    let t = ctx.table(
        path,
        node,
        &[
            "type",
            "basic",
            "access_token",
            "access_token_path",
            "username",
            "ssh",
            "github_app",
        ],
    );
    let Some((type_path, type_node)) = t.get("type") else {
        ctx.error(
            &t.child("type"),
            "is required (allowed: basic, access_token, ssh)",
        );
        return None;
    };
    let kind = ctx.choice(&type_path, type_node, CREDENTIAL_TYPES, false)?;
    // Keys that belong to another type are mistakes, not things to ignore silently.
    let owners: &[(&str, &str)] = &[
        ("basic", "basic"),
        ("access_token", "access_token"),
        ("access_token_path", "access_token"),
        ("username", "access_token"),
        ("ssh", "ssh"),
        ("github_app", "github_app"),
    ];
    for (key, owner) in owners {
        if t.has(key) && *owner != kind {
            ctx.error(
                &t.child(key),
                format!("is only valid with `type: {owner}`, not `type: {kind}`"),
            );
        }
    }
    match kind {
        "github_app" => {
            ctx.error(
                &type_path,
                "`github_app` credentials are not supported (use access_token or ssh)",
            );
            None
        }
        "basic" => convert_basic(ctx, &t),
        "access_token" => convert_access_token(ctx, &t),
        _ => convert_ssh(ctx, &t),
    }
}

fn convert_basic(ctx: &mut Ctx<'_>, t: &Table<'_>) -> Option<CredentialKind> {
    let Some((path, node)) = t.get("basic") else {
        return Some(CredentialKind::Basic(None));
    };
    let b = ctx.table(&path, node, &["username", "password", "password_path"]);
    let username = b
        .get("username")
        .and_then(|(p, n)| ctx.string(&p, n))
        .filter(|s| !s.is_empty());
    let password = secret_source(ctx, &b, "password", "password_path", false);
    match (username, password) {
        (None, Ok(None)) => Some(CredentialKind::Basic(None)),
        (Some(username), Ok(Some(password))) => {
            Some(CredentialKind::Basic(Some(BasicCredential {
                username,
                password,
            })))
        }
        (Some(_), Ok(None)) => {
            ctx.error(
                &b.child("password"),
                "is required when `basic.username` is set (set both or neither)",
            );
            None
        }
        (None, Ok(Some(_))) => {
            ctx.error(
                &b.child("username"),
                "is required when a password is set (set both or neither)",
            );
            None
        }
        (_, Err(())) => None,
    }
}

/// Reads a secret given either inline (`key`) or as a file (`path_key`): at most one of the
/// two, or exactly one when `required`. `Err(())` means a problem was reported.
fn secret_source(
    ctx: &mut Ctx<'_>,
    t: &Table<'_>,
    key: &str,
    path_key: &str,
    required: bool,
) -> Result<Option<SecretSource>, ()> {
    match (t.has(key), t.has(path_key)) {
        (true, true) => {
            ctx.error(
                &t.child(key),
                format!("set only one of `{key}` and `{path_key}`"),
            );
            Err(())
        }
        (true, false) => {
            let (p, n) = t.get(key).expect("checked");
            ctx.secret(&p, n)
                .map(|s| Some(SecretSource::Inline(s)))
                .ok_or(())
        }
        (false, true) => path_value(ctx, t, path_key)
            .map(|p| Some(SecretSource::File(p)))
            .ok_or(()),
        (false, false) if required => {
            ctx.error(&t.child(key), format!("is required (or `{path_key}`)"));
            Err(())
        }
        (false, false) => Ok(None),
    }
}

fn convert_access_token(ctx: &mut Ctx<'_>, t: &Table<'_>) -> Option<CredentialKind> {
    let token = secret_source(ctx, t, "access_token", "access_token_path", true);
    let username = t
        .get("username")
        .and_then(|(p, n)| ctx.nonempty_string(&p, n));
    Some(CredentialKind::AccessToken {
        token: token.ok()??,
        username,
    })
}

fn convert_ssh(ctx: &mut Ctx<'_>, t: &Table<'_>) -> Option<CredentialKind> {
    let Some((path, node)) = t.get("ssh") else {
        ctx.error(
            &t.child("ssh"),
            "is required with `type: ssh` (with `private_key_path` or `private_key_bytes`)",
        );
        return None;
    };
    let s = ctx.table(
        &path,
        node,
        &[
            "user",
            "password",
            "private_key_path",
            "private_key_bytes",
            "insecure_ignore_host_key",
            "known_hosts",
            "known_hosts_path",
        ],
    );
    let user = s.get("user").and_then(|(p, n)| ctx.nonempty_string(&p, n));
    let private_key = match secret_source(ctx, &s, "private_key_bytes", "private_key_path", false) {
        Ok(Some(key)) => Some(key),
        Ok(None) => {
            ctx.error(
                &s.path,
                "exactly one of `private_key_path` and `private_key_bytes` is required",
            );
            None
        }
        Err(()) => None,
    };
    let passphrase = s.get("password").and_then(|(p, n)| ctx.secret(&p, n));
    let insecure_ignore_host_key = s
        .get("insecure_ignore_host_key")
        .and_then(|(p, n)| ctx.boolean(&p, n))
        .unwrap_or(false);
    let known_hosts = s
        .get("known_hosts")
        .and_then(|(p, n)| ctx.nonempty_string(&p, n));
    let known_hosts_path = path_value(ctx, &s, "known_hosts_path");
    if known_hosts.is_some() && known_hosts_path.is_some() {
        ctx.error(
            &s.child("known_hosts"),
            "set only one of `known_hosts` and `known_hosts_path`",
        );
    }
    if insecure_ignore_host_key && (known_hosts.is_some() || known_hosts_path.is_some()) {
        ctx.warn(
            &s.child("insecure_ignore_host_key"),
            "host keys are not checked, so the configured known hosts are not used",
        );
    }
    Some(CredentialKind::Ssh(SshCredential {
        user_explicit: user.is_some(),
        user: user.unwrap_or_else(|| "git".to_owned()),
        private_key: private_key?,
        passphrase,
        insecure_ignore_host_key,
        known_hosts,
        known_hosts_path,
    }))
}

// ---------------------------------------------------------------------------------------------
// storage

fn default_storage(id: &str) -> StorageConfig {
    StorageConfig {
        id: id.to_owned(),
        name: id.to_owned(),
        backend: Backend::Memory,
        remote: None,
        branch: DEFAULT_BRANCH.to_owned(),
        poll_interval: DEFAULT_POLL_INTERVAL,
        fetch_policy: FetchPolicy::Strict,
        credentials: None,
        ca_cert: None,
        insecure_skip_tls: false,
        signature: Signature {
            name: DEFAULT_SIGNATURE_NAME.to_owned(),
            email: DEFAULT_SIGNATURE_EMAIL.to_owned(),
        },
        webhook_secret: None,
    }
}

fn convert_storages(
    ctx: &mut Ctx<'_>,
    top: &Table<'_>,
    credentials: &Section<CredentialConfig>,
) -> Section<StorageConfig> {
    let mut out = Section {
        valid: BTreeMap::new(),
        defined: Vec::new(),
    };
    let entries = match top.get("storage") {
        Some((path, node)) => ctx.ids(&path, node),
        None => Vec::new(),
    };
    if entries.is_empty() {
        out.valid
            .insert("default".to_owned(), default_storage("default"));
        out.defined.push("default".to_owned());
        return out;
    }
    for (key, id, node) in entries {
        let path = format!("storage.{key}");
        out.defined.push(id.clone());
        if !check_id(ctx, &path, &id) {
            continue;
        }
        if let Some(storage) = convert_storage(ctx, &path, &id, node, credentials) {
            out.valid.insert(id, storage);
        }
    }
    out
}

fn convert_storage(
    ctx: &mut Ctx<'_>,
    path: &str,
    id: &str,
    node: Node<'_>,
    credentials: &Section<CredentialConfig>,
) -> Option<StorageConfig> {
    let t = ctx.table(
        path,
        node,
        &[
            "name",
            "backend",
            "remote",
            "branch",
            "poll_interval",
            "fetch_policy",
            "credentials",
            "ca_cert_path",
            "ca_cert_bytes",
            "insecure_skip_tls",
            "signature",
            "webhook_secret",
        ],
    );
    let mut s = default_storage(id);
    let mut ok = true;
    if let Some((p, n)) = t.get("name") {
        match ctx.nonempty_string(&p, n) {
            Some(name) => s.name = name,
            None => ok = false,
        }
    }
    // backend
    if let Some((p, n)) = t.get("backend") {
        let b = ctx.table(&p, n, &["type", "path"]);
        let kind = match b.get("type") {
            Some((tp, tn)) => ctx.choice(&tp, tn, &["memory", "local"], false),
            None => Some("memory"),
        };
        let dir = b
            .get("path")
            .and_then(|(pp, pn)| ctx.nonempty_string(&pp, pn));
        match kind {
            Some("local") => match dir {
                Some(dir) => {
                    s.backend = Backend::Local {
                        path: PathBuf::from(dir),
                    }
                }
                None => {
                    if !b.has("path") {
                        ctx.error(
                            &b.child("path"),
                            "is required with `type: local` (the repository's directory)",
                        );
                    }
                    ok = false;
                }
            },
            Some(_) => {
                if b.has("path") {
                    ctx.warn(
                        &b.child("path"),
                        "is ignored: a memory backend keeps its repository in the process",
                    );
                }
            }
            None => ok = false,
        }
    }
    // remote
    if let Some((p, n)) = t.get("remote") {
        if let Some(text) = ctx.string(&p, n) {
            match RemoteUrl::parse(&text) {
                Ok(url) => s.remote = Some(url),
                Err(e) => {
                    ctx.error(&p, e);
                    ok = false;
                }
            }
        } else {
            ok = false;
        }
    }
    let has_remote = t.has("remote");
    if let Some((p, n)) = t.get("branch") {
        match ctx.string(&p, n) {
            Some(b) => match check_branch_name(&b) {
                Ok(()) => s.branch = b,
                Err(e) => {
                    ctx.error(&p, format!("`{b}` is not a valid branch name: {e}"));
                    ok = false;
                }
            },
            None => ok = false,
        }
    }
    if let Some((p, n)) = t.get("poll_interval") {
        match ctx.duration(&p, n) {
            Some(d) if d.as_secs() >= 1 => s.poll_interval = d,
            Some(d) => {
                ctx.error(
                    &p,
                    format!("must be at least 1s, got {}", crate::format_duration(d)),
                );
                ok = false;
            }
            None => ok = false,
        }
        if !has_remote {
            ctx.warn(&p, "has no effect without `remote`");
        }
    }
    if let Some((p, n)) = t.get("fetch_policy") {
        match ctx.choice(&p, n, &["strict", "lenient"], false) {
            Some("lenient") => s.fetch_policy = FetchPolicy::Lenient,
            Some(_) => s.fetch_policy = FetchPolicy::Strict,
            None => ok = false,
        }
        if !has_remote {
            ctx.warn(&p, "has no effect without `remote`");
        }
    }
    if let Some((p, n)) = t.get("credentials") {
        match ctx.nonempty_string(&p, n) {
            Some(c) => {
                let c = c.to_lowercase();
                if !credentials.is_defined(&c) {
                    let known: Vec<&str> = credentials.defined.iter().map(String::as_str).collect();
                    let msg = if known.is_empty() {
                        format!(
                            "refers to credentials `{c}`, but there is no `credentials` section"
                        )
                    } else {
                        format!(
                            "refers to unknown credentials `{c}` (defined: {})",
                            known.join(", ")
                        )
                    };
                    ctx.error(&p, msg);
                    ok = false;
                } else if !has_remote {
                    ctx.warn(&p, "has no effect without `remote`");
                }
                s.credentials = Some(c);
            }
            None => ok = false,
        }
    }
    match (t.get("ca_cert_path"), t.get("ca_cert_bytes")) {
        (Some(_), Some((p, _))) => {
            ctx.error(&p, "set only one of `ca_cert_path` and `ca_cert_bytes`");
            ok = false;
        }
        (Some(_), None) => s.ca_cert = path_value(ctx, &t, "ca_cert_path").map(CaCert::Path),
        (None, Some((p, n))) => match ctx.nonempty_string(&p, n) {
            Some(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => {
                s.ca_cert = Some(CaCert::Pem(pem))
            }
            Some(_) => {
                ctx.error(
                    &p,
                    "must hold PEM certificates (`-----BEGIN CERTIFICATE-----`)",
                );
                ok = false;
            }
            None => ok = false,
        },
        (None, None) => {}
    }
    if let Some((p, n)) = t.get("insecure_skip_tls") {
        match ctx.boolean(&p, n) {
            Some(v) => s.insecure_skip_tls = v,
            None => ok = false,
        }
    }
    if let Some((p, n)) = t.get("signature") {
        let g = ctx.table(
            &p,
            n,
            &["name", "email", "enabled", "type", "key_ref", "key_id"],
        );
        if let Some(name) = g
            .get("name")
            .and_then(|(p, n)| ctx.string(&p, n))
            .filter(|s| !s.is_empty())
        {
            s.signature.name = name;
        }
        if let Some(email) = g
            .get("email")
            .and_then(|(p, n)| ctx.string(&p, n))
            .filter(|s| !s.is_empty())
        {
            s.signature.email = email;
        }
        if let Some((ep, en)) = g.get("enabled")
            && ctx.boolean(&ep, en) == Some(true)
        {
            ctx.error(
                &ep,
                "commit signing is not supported (remove `signature.enabled` or set it to false)",
            );
            ok = false;
        }
        for key in ["type", "key_ref", "key_id"] {
            if g.has(key) {
                ctx.warn(&g.child(key), "is ignored: commit signing is not supported");
            }
        }
    }
    if let Some((p, n)) = t.get("webhook_secret") {
        match ctx.secret(&p, n) {
            Some(secret) => s.webhook_secret = Some(secret),
            None => ok = false,
        }
    }
    check_remote_settings(ctx, &t, &s, &credentials.valid);
    ok.then_some(s)
}

/// Checks that TLS settings and credentials fit the remote's transport.
fn check_remote_settings(
    ctx: &mut Ctx<'_>,
    t: &Table<'_>,
    s: &StorageConfig,
    credentials: &BTreeMap<String, CredentialConfig>,
) {
    let transport = s.remote.as_ref().map(RemoteUrl::transport);
    for (key, set) in [
        ("insecure_skip_tls", s.insecure_skip_tls),
        ("ca_cert_path", t.has("ca_cert_path")),
        ("ca_cert_bytes", t.has("ca_cert_bytes")),
    ] {
        if !set {
            continue;
        }
        match transport {
            None => ctx.warn(&t.child(key), "has no effect without `remote`"),
            Some(Transport::Https) => {}
            Some(other) => ctx.error(
                &t.child(key),
                format!(
                    "applies to https remotes only, and this remote uses {}",
                    other.as_str()
                ),
            ),
        }
    }
    let (Some(remote), Some(cred)) = (
        &s.remote,
        s.credentials.as_ref().and_then(|c| credentials.get(c)),
    ) else {
        return;
    };
    let path = t.child("credentials");
    match (&cred.kind, remote.transport()) {
        (_, Transport::File) => ctx.warn(&path, "is not used: file:// remotes need no credentials"),
        (CredentialKind::Ssh(ssh), Transport::Ssh) => {
            if let Some(url_user) = remote.user()
                && ssh.user_explicit
                && url_user != ssh.user
            {
                ctx.error(
                        &path,
                        format!(
                            "conflicting SSH users: the remote URL says `{url_user}` but credentials `{}` set `ssh.user: {}`",
                            cred.id, ssh.user
                        ),
                    );
            }
        }
        (CredentialKind::Ssh(_), other) => ctx.error(
            &path,
            format!(
                "credentials `{}` are an ssh key, which cannot be used with a {} remote",
                cred.id,
                other.as_str()
            ),
        ),
        (kind, Transport::Ssh) => ctx.error(
            &path,
            format!(
                "credentials `{}` are of type {}, but an ssh remote needs `type: ssh`",
                cred.id,
                kind.type_name()
            ),
        ),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// environments

/// Normalises an environment directory: `""`, `.` and `/` are the root; leading and trailing
/// `/` and `.` components are dropped; `..` is refused.
pub(crate) fn normalize_directory(dir: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for part in dir.trim().split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("must not contain `..`".into()),
            p if p.contains('\\') || p.chars().any(char::is_control) => {
                return Err("must not contain `\\` or control characters".into());
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

fn convert_environments(
    ctx: &mut Ctx<'_>,
    top: &Table<'_>,
    storages: &Section<StorageConfig>,
) -> Option<Vec<EnvironmentConfig>> {
    let Some((section_path, node)) = top.get("environments") else {
        if !storages.is_defined("default") {
            let defined: Vec<&str> = storages.defined.iter().map(String::as_str).collect();
            ctx.error(
                "storage",
                format!(
                    "there is no `default` storage and no `environments` section; define `storage.default` or add `environments` naming one of: {}",
                    defined.join(", ")
                ),
            );
            return None;
        }
        return Some(vec![EnvironmentConfig {
            id: "default".into(),
            name: "default".into(),
            storage: "default".into(),
            directory: String::new(),
            default: true,
        }]);
    };
    let entries = ctx.ids(&section_path, node);
    if entries.is_empty() {
        ctx.error(
            &section_path,
            "must define at least one environment (or be left out)",
        );
        return None;
    }
    let single = entries.len() == 1;
    let mut out: Vec<EnvironmentConfig> = Vec::new();
    let mut ok = true;
    let mut default_paths = Vec::new();
    for (key, id, node) in entries {
        let path = format!("environments.{key}");
        if !check_id(ctx, &path, &id) {
            ok = false;
            continue;
        }
        let t = ctx.table(
            &path,
            node,
            &["name", "storage", "directory", "default", "scm"],
        );
        let name = match t.get("name") {
            Some((p, n)) => ctx.nonempty_string(&p, n).and_then(|name| {
                let valid = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                    && check_branch_name(&format!("flipt/{name}/x")).is_ok();
                if !valid {
                    ctx.error(&p, format!("`{name}` is not a valid environment name (letters, digits, `_`, `-`, `.`)"));
                }
                valid.then_some(name)
            }),
            None => Some(id.clone()),
        };
        let storage = match t.get("storage") {
            Some((p, n)) => ctx
                .nonempty_string(&p, n)
                .map(|s| s.to_lowercase())
                .and_then(|s| {
                    if storages.is_defined(&s) {
                        Some(s)
                    } else {
                        let known: Vec<&str> =
                            storages.defined.iter().map(String::as_str).collect();
                        ctx.error(
                            &p,
                            format!(
                                "refers to unknown storage `{s}` (defined: {})",
                                known.join(", ")
                            ),
                        );
                        None
                    }
                }),
            None if storages.is_defined("default") => Some("default".to_owned()),
            None => {
                let known: Vec<&str> = storages.defined.iter().map(String::as_str).collect();
                ctx.error(
                    &t.child("storage"),
                    format!(
                        "is required: there is no `default` storage (defined: {})",
                        known.join(", ")
                    ),
                );
                None
            }
        };
        let directory = match t.get("directory") {
            Some((p, n)) => ctx
                .string(&p, n)
                .and_then(|d| match normalize_directory(&d) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        ctx.error(&p, e);
                        None
                    }
                }),
            None => Some(String::new()),
        };
        let default = match t.get("default") {
            Some((p, n)) => {
                let v = ctx.boolean(&p, n);
                if v == Some(true) {
                    default_paths.push(p);
                }
                v
            }
            None => Some(false),
        };
        if t.has("scm") {
            ctx.error(
                &t.child("scm"),
                "is not supported: proposals need a hosting provider's API (remove `scm`)",
            );
            ok = false;
        }
        match (name, storage, directory, default) {
            (Some(name), Some(storage), Some(directory), Some(default)) => {
                out.push(EnvironmentConfig {
                    id,
                    name,
                    storage,
                    directory,
                    default: default || single,
                })
            }
            _ => ok = false,
        }
    }
    if !ok {
        return None;
    }
    if !single {
        match default_paths.len() {
            0 => {
                ctx.error(
                    &section_path,
                    "with several environments, exactly one must have `default: true`",
                );
                return None;
            }
            1 => {}
            _ => {
                for p in &default_paths[1..] {
                    ctx.error(p, "only one environment can be the default");
                }
                return None;
            }
        }
    }
    let mut names: HashMap<&str, &str> = HashMap::new();
    for e in &out {
        if let Some(other) = names.insert(e.name.as_str(), e.id.as_str()) {
            ctx.error(
                &format!("environments.{}.name", e.id),
                format!(
                    "environment name `{}` is also used by environment `{other}`",
                    e.name
                ),
            );
            ok = false;
        }
    }
    let mut dirs: HashMap<(&str, &str), &str> = HashMap::new();
    for e in &out {
        if let Some(other) = dirs.insert((e.storage.as_str(), e.directory.as_str()), e.id.as_str())
        {
            ctx.error(
                &format!("environments.{}.directory", e.id),
                format!(
                    "environments `{other}` and `{}` share storage `{}` and directory `{}`; environments on one storage need distinct directories",
                    e.id, e.storage, e.directory
                ),
            );
            ok = false;
        }
    }
    ok.then_some(out)
}

// ---------------------------------------------------------------------------------------------
// server, log, authentication

fn convert_server(ctx: &mut Ctx<'_>, top: &Table<'_>) -> Option<ServerConfig> {
    let mut s = ServerConfig {
        host: "0.0.0.0".into(),
        grpc_port: DEFAULT_GRPC_PORT,
        http_port: DEFAULT_HTTP_PORT,
        tls: None,
        max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
        git_timeout: DEFAULT_GIT_TIMEOUT,
    };
    let Some((path, node)) = top.get("server") else {
        return Some(s);
    };
    let t = ctx.table(&path, node, env::SERVER_KEYS);
    let before = ctx.diagnostics.iter().filter(|d| d.is_error()).count();
    if let Some(host) = t.get("host").and_then(|(p, n)| ctx.nonempty_string(&p, n)) {
        s.host = host;
    }
    if let Some(port) = t
        .get("grpc_port")
        .and_then(|(p, n)| ctx.integer(&p, n, 0, 65535))
    {
        s.grpc_port = port as u16;
    }
    if let Some(port) = t
        .get("http_port")
        .and_then(|(p, n)| ctx.integer(&p, n, 0, 65535))
    {
        s.http_port = port as u16;
    }
    if s.grpc_port != 0 && s.grpc_port == s.http_port {
        ctx.error(
            &t.child("http_port"),
            format!("must differ from `grpc_port` (both are {})", s.grpc_port),
        );
    }
    let https = match t.get("protocol") {
        Some((p, n)) => ctx.choice(&p, n, &["http", "https"], true) == Some("https"),
        None => false,
    };
    let cert_file = path_value(ctx, &t, "cert_file");
    let cert_key = path_value(ctx, &t, "cert_key");
    if https {
        match (cert_file, cert_key) {
            (Some(cert_file), Some(cert_key)) => {
                s.tls = Some(TlsFiles {
                    cert_file,
                    cert_key,
                })
            }
            (file, key) => {
                for (k, v) in [("cert_file", file.is_none()), ("cert_key", key.is_none())] {
                    if v && !t.has(k) {
                        ctx.error(&t.child(k), "is required with `protocol: https`");
                    }
                }
            }
        }
    } else if t.has("cert_file") || t.has("cert_key") {
        ctx.warn(
            &t.path,
            "`cert_file` and `cert_key` are used only with `protocol: https`",
        );
    }
    if let Some(n) = t
        .get("max_request_bytes")
        .and_then(|(p, n)| ctx.integer(&p, n, 1024, 1 << 30))
    {
        s.max_request_bytes = n;
    }
    if let Some(n) = t
        .get("max_concurrent_streams")
        .and_then(|(p, n)| ctx.integer(&p, n, 1, 1_000_000))
    {
        s.max_concurrent_streams = n as u32;
    }
    if let Some((p, n)) = t.get("git_timeout") {
        match ctx.duration(&p, n) {
            Some(d) if d.as_millis() >= 100 => s.git_timeout = d,
            Some(_) => ctx.error(&p, "must be at least 100ms"),
            None => {}
        }
    }
    let after = ctx.diagnostics.iter().filter(|d| d.is_error()).count();
    (after == before).then_some(s)
}

fn convert_log(ctx: &mut Ctx<'_>, top: &Table<'_>) -> Option<LogConfig> {
    let mut l = LogConfig {
        level: LogLevel::Info,
        encoding: LogEncoding::Console,
    };
    let Some((path, node)) = top.get("log") else {
        return Some(l);
    };
    let t = ctx.table(&path, node, env::LOG_KEYS);
    let mut ok = true;
    if let Some((p, n)) = t.get("level") {
        match ctx.choice(&p, n, &["debug", "info", "warn", "error"], true) {
            Some("debug") => l.level = LogLevel::Debug,
            Some("info") => l.level = LogLevel::Info,
            Some("warn") => l.level = LogLevel::Warn,
            Some(_) => l.level = LogLevel::Error,
            None => ok = false,
        }
    }
    if let Some((p, n)) = t.get("encoding") {
        match ctx.choice(&p, n, &["console", "json"], false) {
            Some("json") => l.encoding = LogEncoding::Json,
            Some(_) => l.encoding = LogEncoding::Console,
            None => ok = false,
        }
    }
    ok.then_some(l)
}

fn convert_authentication(ctx: &mut Ctx<'_>, top: &Table<'_>) -> Option<AuthenticationConfig> {
    let mut a = AuthenticationConfig::default();
    let Some((path, node)) = top.get("authentication") else {
        return Some(a);
    };
    let before = ctx.diagnostics.iter().filter(|d| d.is_error()).count();
    let t = ctx.table(&path, node, &["required", "methods"]);
    if let Some(required) = t.get("required").and_then(|(p, n)| ctx.boolean(&p, n)) {
        a.required = required;
    }
    if let Some((p, n)) = t.get("methods") {
        const FLIPT_METHODS: &[&str] = &["token", "oidc", "github", "kubernetes", "jwt", "cloud"];
        let m = ctx.table(&p, n, FLIPT_METHODS);
        for method in &FLIPT_METHODS[1..] {
            if m.has(method) {
                ctx.error(
                    &m.child(method),
                    "this authentication method is not supported (only `token` is)",
                );
            }
        }
        if let Some((p, n)) = m.get("token") {
            let tk = ctx.table(&p, n, &["enabled", "storage"]);
            if let Some(enabled) = tk.get("enabled").and_then(|(p, n)| ctx.boolean(&p, n)) {
                a.token.enabled = enabled;
            }
            if let Some((p, n)) = tk.get("storage") {
                let st = ctx.table(&p, n, &["type", "tokens"]);
                if let Some((tp, tn)) = st.get("type") {
                    ctx.choice(&tp, tn, &["static"], false);
                }
                if let Some((tp, tn)) = st.get("tokens") {
                    for (key, name, node) in ctx.ids(&tp, tn) {
                        let tpath = format!("{tp}.{key}");
                        let entry = ctx.table(&tpath, node, &["credential", "metadata"]);
                        match entry.get("credential") {
                            Some((cp, cn)) => {
                                if let Some(secret) = ctx.secret(&cp, cn) {
                                    a.token.tokens.insert(name, secret);
                                }
                            }
                            None => ctx.error(&entry.child("credential"), "is required"),
                        }
                    }
                }
            }
            if !a.token.tokens.is_empty() && !a.token.enabled {
                ctx.warn(
                    &tk.path,
                    "tokens are configured but `enabled` is not true, so they are not accepted",
                );
            }
        }
    }
    let can_authenticate = a.token.enabled && !a.token.tokens.is_empty();
    if a.required && !can_authenticate {
        ctx.error(
            &t.child("required"),
            "is true, but no way to authenticate is configured (enable `methods.token` and add at least one token)",
        );
    }
    let after = ctx.diagnostics.iter().filter(|d| d.is_error()).count();
    (after == before).then_some(a)
}
