//! How one storage syncs.

use std::time::Duration;

use config_model::{Config, FetchPolicy, StorageConfig};
use git_backend::{Remote, Signature};

/// Settings of one storage's sync engine.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The storage id (for logs, status and metrics).
    pub storage_id: String,
    /// The branch served.
    pub branch: String,
    /// The remote followed, if any.
    pub remote: Option<Remote>,
    /// Time between polls (jittered by about ±10%).
    pub poll_interval: Duration,
    /// What to do when the first fetch fails.
    pub fetch_policy: FetchPolicy,
    /// Committer identity (and author when a write names none).
    pub signature: Signature,
    /// Deadline of a write or refresh; also libgit2's network timeout (set process-wide).
    pub git_timeout: Duration,
    /// Attempts of a write while the remote keeps moving.
    pub max_push_attempts: usize,
    /// Names of the environments on this storage: their branches `flipt/<env>/*` are
    /// tracked.
    pub environments: Vec<String>,
}

impl SyncOptions {
    /// The options of `storage` from a validated configuration (its remote gets the
    /// credential provider of the `credentials` crate).
    pub fn from_config(
        config: &Config,
        storage: &StorageConfig,
    ) -> Result<Self, git_backend::Error> {
        Ok(SyncOptions {
            storage_id: storage.id.clone(),
            branch: storage.branch.clone(),
            remote: credentials::remote_for(config, storage)?,
            poll_interval: storage.poll_interval,
            fetch_policy: storage.fetch_policy,
            signature: Signature {
                name: storage.signature.name.clone(),
                email: storage.signature.email.clone(),
                time: None,
            },
            git_timeout: config.server.git_timeout,
            max_push_attempts: 5,
            environments: config
                .environments
                .iter()
                .filter(|e| e.storage == storage.id)
                .map(|e| e.name.clone())
                .collect(),
        })
    }

    /// Options for a storage without a remote (tests, tools).
    pub fn local(storage_id: &str, branch: &str) -> Self {
        SyncOptions {
            storage_id: storage_id.to_owned(),
            branch: branch.to_owned(),
            remote: None,
            poll_interval: Duration::from_secs(30),
            fetch_policy: FetchPolicy::Strict,
            signature: Signature {
                name: config_model::DEFAULT_SIGNATURE_NAME.into(),
                email: config_model::DEFAULT_SIGNATURE_EMAIL.into(),
                time: None,
            },
            git_timeout: Duration::from_secs(30),
            max_push_attempts: 5,
            environments: Vec::new(),
        }
    }
}
