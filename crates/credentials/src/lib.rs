//! Credentials of the flag storage service: the credential kinds of a storage's remote
//! (`basic`, `access_token`, `ssh`) built from `config-model` types, their secret sources
//! (inline values, `${env:NAME}` resolved at load, files re-read on every use so that a
//! rotated token or key works without a restart), SSH host-key verification against
//! `known_hosts` data, and the TLS trust of https remotes.
//!
//! [`StorageCredentials`] implements [`git_backend::CredentialProvider`], the trait through
//! which a backend's transport asks for all of this; [`remote_for`] builds the
//! [`git_backend::Remote`] of a storage. This crate does not depend on git2 or on any
//! backend, and never exposes a secret: values stay `SecretString` until the transport's
//! credential callback (in `git2-support`) hands them to libgit2.
//!
//! ```
//! use std::collections::BTreeMap;
//! use git_backend::{AllowedCredentials, Credential, CredentialRequest};
//!
//! let yaml = "
//! credentials:
//!   github: { type: access_token, access_token: ghp_example }
//! storage:
//!   default: { remote: 'https://github.com/acme/flags.git', credentials: github }
//! ";
//! let config = config_model::load_str(yaml, None, &BTreeMap::new()).unwrap().config;
//! let remote = credentials::remote_for(&config, &config.storages["default"]).unwrap().unwrap();
//! assert_eq!(remote.display, "https://github.com/acme/flags.git");
//! let request = CredentialRequest {
//!     url: &remote.url,
//!     username_from_url: None,
//!     allowed: AllowedCredentials { user_pass: true, ssh_key: false },
//! };
//! match remote.credentials.credential(&request).unwrap() {
//!     Some(Credential::UserPass { username, .. }) => assert_eq!(username, "x-token-auth"),
//!     other => panic!("{other:?}"),
//! }
//! ```

mod known_hosts;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use config_model::{
    CaCert, Config, CredentialKind, RemoteUrl, SecretSource, StorageConfig, Transport,
};
use git_backend::{
    Credential, CredentialProvider, CredentialRequest, Error, HostKey, Remote, Result, TlsTrust,
};
use secrecy::SecretString;

pub use known_hosts::{Verdict, fingerprint, judge, lookup_name};

/// The system-wide `known_hosts` file, checked after the user's.
pub const SYSTEM_KNOWN_HOSTS: &str = "/etc/ssh/ssh_known_hosts";

/// Where SSH host keys come from.
#[derive(Debug, Clone)]
pub enum KnownHostsSource {
    /// `ssh.known_hosts` text from the configuration.
    Inline(String),
    /// `ssh.known_hosts_path`, read on every check.
    File(PathBuf),
    /// The user's `~/.ssh/known_hosts` and the system's file, read on every check.
    Default {
        /// The user's file (`$HOME/.ssh/known_hosts`), if there is a home directory.
        user: Option<PathBuf>,
        /// The system's file.
        system: PathBuf,
    },
}

impl KnownHostsSource {
    fn read(&self) -> (String, Vec<String>) {
        let mut text = String::new();
        let mut sources = Vec::new();
        let mut add = |path: &Path| {
            if let Ok(t) = std::fs::read_to_string(path) {
                text.push_str(&t);
                text.push('\n');
                sources.push(path.display().to_string());
            }
        };
        match self {
            KnownHostsSource::Inline(t) => return (t.clone(), vec!["ssh.known_hosts".into()]),
            KnownHostsSource::File(p) => add(p),
            KnownHostsSource::Default { user, system } => {
                if let Some(u) = user {
                    add(u);
                }
                add(system);
            }
        }
        (text, sources)
    }

    fn describe(&self) -> String {
        match self {
            KnownHostsSource::Inline(_) => "the inline `ssh.known_hosts`".into(),
            KnownHostsSource::File(p) => format!("`{}`", p.display()),
            KnownHostsSource::Default { user, system } => match user {
                Some(u) => format!("`{}` and `{}`", u.display(), system.display()),
                None => format!("`{}`", system.display()),
            },
        }
    }
}

/// The credential provider of one storage's remote.
pub struct StorageCredentials {
    storage: String,
    remote: RemoteUrl,
    kind: Option<CredentialKind>,
    ca_cert: Option<CaCert>,
    insecure_skip_tls: bool,
    known_hosts: KnownHostsSource,
    insecure_ignore_host_key: bool,
    warned_tls: AtomicBool,
    warned_host_key: AtomicBool,
}

impl std::fmt::Debug for StorageCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageCredentials")
            .field("storage", &self.storage)
            .field("remote", &self.remote)
            .field("kind", &self.kind.as_ref().map(CredentialKind::type_name))
            .field("insecure_skip_tls", &self.insecure_skip_tls)
            .field("insecure_ignore_host_key", &self.insecure_ignore_host_key)
            .finish_non_exhaustive()
    }
}

/// The [`Remote`] of a storage (`None` without a remote), with its credential provider.
pub fn remote_for(config: &Config, storage: &StorageConfig) -> Result<Option<Remote>> {
    let Some(url) = &storage.remote else {
        return Ok(None);
    };
    let kind = match &storage.credentials {
        Some(id) => Some(
            config
                .credentials
                .get(id)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "storage `{}` refers to unknown credentials `{id}`",
                        storage.id
                    ))
                })?
                .kind
                .clone(),
        ),
        None => None,
    };
    let provider =
        StorageCredentials::new(storage, kind, std::env::var_os("HOME").map(PathBuf::from));
    Ok(Some(Remote {
        url: url.as_transport_url().to_owned(),
        display: url.to_string(),
        credentials: Arc::new(provider),
    }))
}

fn read_secret_file(path: &Path, what: &str) -> Result<SecretString> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Unauthenticated {
        message: format!("cannot read the {what} file `{}`: {e}", path.display()),
        source: None,
    })?;
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(Error::Unauthenticated {
            message: format!("the {what} file `{}` is empty", path.display()),
            source: None,
        });
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

fn secret(source: &SecretSource, what: &str) -> Result<SecretString> {
    match source {
        SecretSource::Inline(s) => Ok(s.clone()),
        SecretSource::File(p) => read_secret_file(p, what),
    }
}

impl StorageCredentials {
    /// The provider for `storage`'s remote with credentials `kind`; `home` locates the
    /// user's `~/.ssh/known_hosts`.
    pub fn new(
        storage: &StorageConfig,
        kind: Option<CredentialKind>,
        home: Option<PathBuf>,
    ) -> Self {
        let (known_hosts, insecure_ignore_host_key) = match &kind {
            Some(CredentialKind::Ssh(ssh)) => {
                let source = if let Some(text) = &ssh.known_hosts {
                    KnownHostsSource::Inline(text.clone())
                } else if let Some(path) = &ssh.known_hosts_path {
                    KnownHostsSource::File(path.clone())
                } else {
                    KnownHostsSource::Default {
                        user: home.map(|h| h.join(".ssh").join("known_hosts")),
                        system: SYSTEM_KNOWN_HOSTS.into(),
                    }
                };
                (source, ssh.insecure_ignore_host_key)
            }
            _ => (
                KnownHostsSource::Default {
                    user: home.map(|h| h.join(".ssh").join("known_hosts")),
                    system: SYSTEM_KNOWN_HOSTS.into(),
                },
                false,
            ),
        };
        StorageCredentials {
            storage: storage.id.clone(),
            remote: storage
                .remote
                .clone()
                .unwrap_or_else(|| RemoteUrl::parse("file:///dev/null").expect("valid URL")),
            kind,
            ca_cert: storage.ca_cert.clone(),
            insecure_skip_tls: storage.insecure_skip_tls,
            known_hosts,
            insecure_ignore_host_key,
            warned_tls: AtomicBool::new(false),
            warned_host_key: AtomicBool::new(false),
        }
    }
}

impl CredentialProvider for StorageCredentials {
    fn credential(&self, request: &CredentialRequest<'_>) -> Result<Option<Credential>> {
        let Some(kind) = &self.kind else {
            return Ok(None);
        };
        let needs = |ok: bool, what: &str| -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(Error::Unauthenticated {
                    message: format!(
                        "`{}` asks for {what}, but storage `{}` has `{}` credentials",
                        self.remote,
                        self.storage,
                        kind.type_name()
                    ),
                    source: None,
                })
            }
        };
        match kind {
            CredentialKind::Basic(None) => Ok(None),
            CredentialKind::Basic(Some(basic)) => {
                needs(request.allowed.user_pass, "an SSH key")?;
                Ok(Some(Credential::UserPass {
                    username: basic.username.clone(),
                    password: secret(&basic.password, "password")?,
                }))
            }
            CredentialKind::AccessToken { token, username } => {
                needs(request.allowed.user_pass, "an SSH key")?;
                Ok(Some(Credential::UserPass {
                    username: username
                        .clone()
                        .unwrap_or_else(|| config_model::DEFAULT_TOKEN_USERNAME.to_owned()),
                    password: secret(token, "access token")?,
                }))
            }
            CredentialKind::Ssh(ssh) => {
                needs(request.allowed.ssh_key, "a user name and password")?;
                let username = request
                    .username_from_url
                    .map_or_else(|| ssh.user.clone(), str::to_owned);
                Ok(Some(Credential::SshKey {
                    username,
                    private_key: secret(&ssh.private_key, "ssh private key")?,
                    passphrase: ssh.passphrase.clone(),
                }))
            }
            _ => Err(Error::Unsupported(format!(
                "credentials of type `{}` are not supported",
                kind.type_name()
            ))),
        }
    }

    fn verify_host_key(&self, host: &str, port: Option<u16>, key: &HostKey) -> Result<()> {
        if self.insecure_ignore_host_key {
            if !self.warned_host_key.swap(true, Ordering::Relaxed) {
                tracing::warn!(storage = %self.storage, remote = %self.remote, "ssh host keys are not verified (insecure_ignore_host_key: true)");
            }
            return Ok(());
        }
        let (text, _) = self.known_hosts.read();
        let (verdict, skipped) = judge(&text, host, port, key);
        if skipped > 0 {
            tracing::debug!(storage = %self.storage, skipped, "known_hosts lines that could not be parsed were skipped");
        }
        let name = lookup_name(host, port);
        let print = fingerprint(&key.blob);
        let keyscan = match port {
            None | Some(22) => format!("ssh-keyscan -t {} {host}", key.algorithm),
            Some(p) => format!("ssh-keyscan -p {p} -t {} {host}", key.algorithm),
        };
        let sources = self.known_hosts.describe();
        match verdict {
            Verdict::Trusted => Ok(()),
            Verdict::Revoked => Err(Error::Untrusted(format!(
                "the {} host key of `{name}` ({print}) is marked @revoked in {sources}; refusing to connect",
                key.algorithm
            ))),
            Verdict::Changed => Err(Error::Untrusted(format!(
                "the {} host key of `{name}` has CHANGED: it is now {print}, which {sources} does not list for this host; if the change is expected, replace the entry with the output of `{keyscan}`",
                key.algorithm
            ))),
            Verdict::OtherTypes(types) => Err(Error::Untrusted(format!(
                "`{name}` offered a {} host key ({print}), but {sources} knows it only with {} keys; add the {} key with `{keyscan}`",
                key.algorithm,
                types.join(", "),
                key.algorithm
            ))),
            Verdict::Unknown => Err(Error::Untrusted(format!(
                "`{name}` is not a known host: its {} host key is {print}, and {sources} has no entry for it; add one with `{keyscan}` (check the fingerprint first)",
                key.algorithm
            ))),
        }
    }

    fn tls_trust(&self) -> TlsTrust {
        if self.remote.transport() != Transport::Https {
            return TlsTrust::default();
        }
        if self.insecure_skip_tls && !self.warned_tls.swap(true, Ordering::Relaxed) {
            tracing::warn!(storage = %self.storage, remote = %self.remote, "TLS certificates of the remote are not verified (insecure_skip_tls: true)");
        }
        let ca_pem = match &self.ca_cert {
            Some(CaCert::Pem(pem)) => Some(pem.as_bytes().to_vec()),
            Some(CaCert::Path(path)) => match std::fs::read(path) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    tracing::warn!(storage = %self.storage, path = %path.display(), error = %e, "cannot read ca_cert_path; no certificate will be trusted");
                    // An unreadable bundle must not fall back to the system's trust.
                    Some(Vec::new())
                }
            },
            _ => None,
        };
        TlsTrust {
            ca_pem,
            insecure_skip_verify: self.insecure_skip_tls,
        }
    }
}
