//! The credential-provider trait: everything a transport needs from outside, so that
//! backends never depend on the crate that reads credentials from configuration.

use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;

use crate::error::{Error, Result};

/// Which kinds of credential the remote accepts, as the transport reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AllowedCredentials {
    /// A user name and password (HTTP basic).
    pub user_pass: bool,
    /// An SSH key.
    pub ssh_key: bool,
}

/// What a transport asks for.
#[derive(Debug, Clone)]
pub struct CredentialRequest<'a> {
    /// The remote URL (may hold a user name, never a password).
    pub url: &'a str,
    /// The user name in the URL, if any.
    pub username_from_url: Option<&'a str>,
    /// The kinds the remote accepts.
    pub allowed: AllowedCredentials,
}

/// A credential handed to a transport. Secrets stay [`SecretString`] until the one place
/// that gives them to libgit2.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credential {
    /// User name and password (or token).
    UserPass {
        /// User name.
        username: String,
        /// Password or token.
        password: SecretString,
    },
    /// An SSH private key (OpenSSH or PEM text).
    SshKey {
        /// The SSH user.
        username: String,
        /// The private key.
        private_key: SecretString,
        /// Its passphrase, if any.
        passphrase: Option<SecretString>,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::UserPass { username, .. } => f
                .debug_struct("UserPass")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credential::SshKey {
                username,
                passphrase,
                ..
            } => f
                .debug_struct("SshKey")
                .field("username", username)
                .field("private_key", &"<redacted>")
                .field("passphrase", &passphrase.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// An SSH server's host key, as presented during the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// The key type as SSH names it (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, ...);
    /// `unknown` when the transport could not tell.
    pub algorithm: String,
    /// The key in SSH wire format (what `known_hosts` holds, base64-decoded).
    pub blob: Vec<u8>,
}

/// How the server certificate of an https remote is checked.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsTrust {
    /// PEM certificate authorities trusted for this remote only (the leaf certificate must
    /// chain to one of them and name the host). `None`: the system's trust store.
    pub ca_pem: Option<Vec<u8>>,
    /// Accept any certificate.
    pub insecure_skip_verify: bool,
}

impl fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTrust")
            .field(
                "ca_pem",
                &self.ca_pem.as_ref().map(|p| format!("{} bytes", p.len())),
            )
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

/// Everything a transport needs from outside: credentials, host-key verification and TLS
/// trust. Methods are synchronous because transports call them from blocking threads.
pub trait CredentialProvider: fmt::Debug + Send + Sync {
    /// A credential for `request`, or `None` when there is nothing to offer.
    fn credential(&self, request: &CredentialRequest<'_>) -> Result<Option<Credential>>;

    /// Accepts or refuses an SSH host key for `host` (and `port`, when not 22). The error
    /// says why (unknown host, changed key, ...).
    fn verify_host_key(&self, host: &str, port: Option<u16>, key: &HostKey) -> Result<()>;

    /// How TLS certificates are checked.
    fn tls_trust(&self) -> TlsTrust;
}

/// The provider for remotes that need nothing: no credential, the system's TLS trust, and
/// every SSH host key refused (there is nothing to check it against).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCredentials;

impl CredentialProvider for NoCredentials {
    fn credential(&self, _: &CredentialRequest<'_>) -> Result<Option<Credential>> {
        Ok(None)
    }

    fn verify_host_key(&self, host: &str, _: Option<u16>, _: &HostKey) -> Result<()> {
        Err(Error::Untrusted(format!(
            "no known host keys are configured for `{host}`"
        )))
    }

    fn tls_trust(&self) -> TlsTrust {
        TlsTrust::default()
    }
}

/// A remote repository and how to talk to it.
#[derive(Clone)]
pub struct Remote {
    /// The URL handed to the transport (may hold a user name, never a password).
    pub url: String,
    /// The URL as shown to people: without userinfo.
    pub display: String,
    /// Credentials, host keys and TLS trust.
    pub credentials: Arc<dyn CredentialProvider>,
}

impl Remote {
    /// A remote that needs no credentials (e.g. `file://`). `url` must hold no userinfo.
    pub fn anonymous(url: impl Into<String>) -> Self {
        let url = url.into();
        Remote {
            display: url.clone(),
            url,
            credentials: Arc::new(NoCredentials),
        }
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.display)
            .field("credentials", &self.credentials)
            .finish()
    }
}
