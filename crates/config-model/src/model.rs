//! The validated configuration types. Every value here has passed validation; defaults are
//! filled in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::remote_url::RemoteUrl;

/// Default poll interval of a storage.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// Default branch of a storage.
pub const DEFAULT_BRANCH: &str = "main";
/// Default committer name.
pub const DEFAULT_SIGNATURE_NAME: &str = "flipt";
/// Default committer email.
pub const DEFAULT_SIGNATURE_EMAIL: &str = "flipt[bot]@noreply.flipt.io";
/// Default gRPC port.
pub const DEFAULT_GRPC_PORT: u16 = 9000;
/// Default HTTP port.
pub const DEFAULT_HTTP_PORT: u16 = 8080;
/// Default request size limit (4 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 4 * 1024 * 1024;
/// Default limit of open `Watch` streams.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 4096;
/// Default timeout of git network operations.
pub const DEFAULT_GIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Storages by lower-case id.
    pub storages: BTreeMap<String, StorageConfig>,
    /// Credentials by lower-case id.
    pub credentials: BTreeMap<String, CredentialConfig>,
    /// Environments, sorted by id. Exactly one is the default.
    pub environments: Vec<EnvironmentConfig>,
    /// The `server` section.
    pub server: ServerConfig,
    /// The `log` section.
    pub log: LogConfig,
    /// The `authentication` section.
    pub authentication: AuthenticationConfig,
}

impl Config {
    /// The environment marked default (validation guarantees there is exactly one).
    pub fn default_environment(&self) -> &EnvironmentConfig {
        self.environments
            .iter()
            .find(|e| e.default)
            .or_else(|| self.environments.first())
            .expect("a validated configuration has at least one environment")
    }

    /// The storage an environment is on.
    pub fn storage_of(&self, environment: &EnvironmentConfig) -> &StorageConfig {
        &self.storages[&environment.storage]
    }
}

/// `storage.<id>`: one git repository and one branch.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Lower-case id.
    pub id: String,
    /// Display name (defaults to the id).
    pub name: String,
    /// Where the repository lives.
    pub backend: Backend,
    /// The remote to follow, if any.
    pub remote: Option<RemoteUrl>,
    /// The branch served (a valid git branch name).
    pub branch: String,
    /// How often the remote is fetched.
    pub poll_interval: Duration,
    /// What to do when the first fetch fails.
    pub fetch_policy: FetchPolicy,
    /// Id of the `credentials` entry used for the remote.
    pub credentials: Option<String>,
    /// Extra certificate authorities trusted for this storage's https remote only.
    pub ca_cert: Option<CaCert>,
    /// Accept any TLS certificate from this storage's https remote.
    pub insecure_skip_tls: bool,
    /// Committer identity.
    pub signature: Signature,
    /// Secret of the webhook endpoint; without it the endpoint answers 404.
    pub webhook_secret: Option<SecretString>,
}

/// Where a storage's repository lives. New backends add variants, so match with a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// In the process; gone on restart.
    Memory,
    /// A repository on disk.
    Local {
        /// Directory of the repository.
        path: PathBuf,
    },
}

impl Backend {
    /// `memory` or `local`.
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Local { .. } => "local",
        }
    }

    /// The repository's directory, for backends that have one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Backend::Memory => None,
            Backend::Local { path } => Some(path),
        }
    }
}

/// What to do when the first fetch at start-up fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchPolicy {
    /// Any failure stops start-up.
    Strict,
    /// Serve what the storage already has, and keep retrying.
    Lenient,
}

impl FetchPolicy {
    /// `strict` or `lenient`.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchPolicy::Strict => "strict",
            FetchPolicy::Lenient => "lenient",
        }
    }
}

/// Certificate authorities for an https remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaCert {
    /// A PEM file, read when used.
    Path(PathBuf),
    /// PEM text.
    Pem(String),
}

/// Committer identity of the commits the service makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
}

/// A secret given inline (or through `${env:NAME}`), or a file read on every use so that a
/// rotated secret takes effect without a restart.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// The value itself.
    Inline(SecretString),
    /// A file holding the value.
    File(PathBuf),
}

/// `credentials.<id>`.
#[derive(Debug, Clone)]
pub struct CredentialConfig {
    /// Lower-case id.
    pub id: String,
    /// What kind of credential, with its values.
    pub kind: CredentialKind,
}

/// The kinds of credential. New kinds may be added, so match with a wildcard.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CredentialKind {
    /// HTTP basic authentication; `None` when neither username nor password is set.
    Basic(Option<BasicCredential>),
    /// A token sent as HTTP basic authentication.
    AccessToken {
        /// The token.
        token: SecretSource,
        /// User name sent with the token; `x-token-auth` when not set.
        username: Option<String>,
    },
    /// An SSH key.
    Ssh(SshCredential),
}

impl CredentialKind {
    /// `basic`, `access_token` or `ssh`.
    pub fn type_name(&self) -> &'static str {
        match self {
            CredentialKind::Basic(_) => "basic",
            CredentialKind::AccessToken { .. } => "access_token",
            CredentialKind::Ssh(_) => "ssh",
        }
    }
}

/// User name sent with an access token when none is configured.
pub const DEFAULT_TOKEN_USERNAME: &str = "x-token-auth";

/// Username and password.
#[derive(Debug, Clone)]
pub struct BasicCredential {
    /// User name.
    pub username: String,
    /// Password.
    pub password: SecretSource,
}

/// An SSH key and how to check the server's host key.
#[derive(Debug, Clone)]
pub struct SshCredential {
    /// The SSH user (`git` by default).
    pub user: String,
    /// Whether `ssh.user` was set explicitly (a different user in the remote URL is then an
    /// error).
    pub user_explicit: bool,
    /// The private key (OpenSSH or PEM format).
    pub private_key: SecretSource,
    /// The key's passphrase, if it has one.
    pub passphrase: Option<SecretString>,
    /// Skip host-key verification (logged as a warning).
    pub insecure_ignore_host_key: bool,
    /// Inline `known_hosts` text.
    pub known_hosts: Option<String>,
    /// A `known_hosts` file.
    pub known_hosts_path: Option<PathBuf>,
}

/// `environments.<id>`: a directory of a storage's branch, served under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentConfig {
    /// Lower-case id.
    pub id: String,
    /// The key used in the API (defaults to the id).
    pub name: String,
    /// Id of the storage.
    pub storage: String,
    /// Directory inside the repository, normalised: `""` is the root, no leading or trailing
    /// `/`.
    pub directory: String,
    /// Whether this is the default environment.
    pub default: bool,
}

/// The `server` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Bind address of both ports.
    pub host: String,
    /// gRPC port (0 picks a free one).
    pub grpc_port: u16,
    /// HTTP port (0 picks a free one).
    pub http_port: u16,
    /// TLS certificate and key, when `protocol: https`.
    pub tls: Option<TlsFiles>,
    /// Largest request accepted, in bytes.
    pub max_request_bytes: u64,
    /// Open `Watch` streams allowed per server.
    pub max_concurrent_streams: u32,
    /// Connect and I/O timeout of git network operations, and the deadline of the RPCs that
    /// wait for them.
    pub git_timeout: Duration,
}

/// Certificate and key files for `protocol: https`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub cert_key: PathBuf,
}

/// The `log` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Minimum level logged.
    pub level: LogLevel,
    /// Output format.
    pub encoding: LogEncoding,
}

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Everything, including one line per request.
    Debug,
    /// The default.
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
}

impl LogLevel {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEncoding {
    /// Human-readable lines.
    Console,
    /// One JSON object per line.
    Json,
}

impl LogEncoding {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogEncoding::Console => "console",
            LogEncoding::Json => "json",
        }
    }
}

/// The `authentication` section.
#[derive(Debug, Clone, Default)]
pub struct AuthenticationConfig {
    /// Whether API calls need a token.
    pub required: bool,
    /// Static bearer tokens.
    pub token: TokenMethod,
}

/// `authentication.methods.token`.
#[derive(Debug, Clone, Default)]
pub struct TokenMethod {
    /// Whether the method is on.
    pub enabled: bool,
    /// Tokens by name.
    pub tokens: BTreeMap<String, SecretString>,
}
