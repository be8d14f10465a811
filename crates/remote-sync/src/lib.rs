//! The sync engine of the flag storage service: one [`SyncedStorage`] per configured storage
//! keeps a backend's repository in step with its remote (BEHAVIOUR §3) and applies writes
//! safely (§4 at the revision level).
//!
//! - Start-up follows the fetch policy (`strict`: a failed first fetch stops start-up;
//!   `lenient`: serve the storage's last state and retry); an empty remote or a missing
//!   branch is seeded and pushed.
//! - [`SyncedStorage::run`] polls with jitter and capped exponential backoff; a poll that
//!   finds the remote unchanged (a cheap ls-remote) downloads nothing. `refresh`, `suspend`
//!   and `resume` control it; it stops when its cancellation token fires.
//! - Writes are re-appliable operations ([`git_backend::WriteOp`]): built on the served head,
//!   pushed with the expected remote value (never a force push), replayed after the remote
//!   moved with the operation re-checking its own precondition, and acknowledged only after
//!   the remote accepted them. A push that failed otherwise is checked against the remote
//!   (it may have landed); nothing half-applied stays visible.
//! - A remote rewritten by someone else (not a fast-forward) is followed when the local
//!   branch holds nothing unpushed (it is a commit the remote is known to have had); a local
//!   branch with commits the remote never had is a divergence: not served, not overwritten,
//!   in [`Status::divergence`], writes refused with [`SyncError::Diverged`] until resolved.
//! - Reads never wait for network I/O: served heads come from a watch channel.
//! - Status (phase, head, fetch and push times, last error with class) and counters for
//!   metrics; tracing spans around fetch, push and writes with the storage id and the remote
//!   without userinfo.
//!
//! Depends on `git-backend`, `credentials` and `config-model`; never on a concrete backend
//! (tests use them as dev-dependencies). It creates no runtime: the caller spawns
//! [`SyncedStorage::run`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::sync::Arc;
//! use git_backend::{Change, Plan, RepoPath, Refusal, WriteContext, WriteOp};
//! use remote_sync::{SyncOptions, SyncedStorage, WriteRequest};
//!
//! #[derive(Debug)]
//! struct PutFile;
//! #[async_trait::async_trait]
//! impl WriteOp for PutFile {
//!     async fn plan(&self, _: WriteContext<'_>) -> Result<Plan, Refusal> {
//!         Ok(Plan::Commit {
//!             changes: vec![Change::Put { path: RepoPath::new("default/features.yaml").unwrap(), content: b"version: \"1.6\"\n".to_vec() }],
//!             message: "create namespace default".into(),
//!         })
//!     }
//! }
//!
//! let backend = Arc::new(git_backend_memory::MemoryBackend::new(Default::default()).unwrap());
//! let storage = SyncedStorage::start(backend, SyncOptions::local("default", "main")).await.unwrap();
//! let seeded = storage.head("main").unwrap();
//! let out = storage.write(WriteRequest { branch: "main", revision: Some(&seeded.to_string()), op: &PutFile, author: None }).await.unwrap();
//! assert!(out.committed);
//! assert_eq!(storage.head("main"), out.revision);
//! # }
//! ```

mod engine;
mod error;
mod options;
mod status;

pub use engine::{Heads, RefreshOutcome, SyncedStorage, WriteOutcome, WriteRequest};
pub use error::{Result, SyncError};
pub use options::SyncOptions;
pub use status::{CLASSES, Divergence, LastError, Metrics, Phase, RemoteRewrite, Status};
