//! The storage core of the flag storage service: the [`GitBackend`] trait that every
//! storage backend implements, its plain data types, one semantic [`Error`], the
//! [`CredentialProvider`] trait through which transports get credentials, host-key checks and
//! TLS trust, and the re-appliable write ([`WriteOp`]) that the sync engine replays.
//!
//! This crate must not depend on git2, on a tokio runtime, on tonic or on any YAML library,
//! and no git2 type appears in its API: backends wrap their library, and a backend on another
//! library (or not on git at all) can implement the same trait. It depends on no other crate
//! of the workspace. The `testsuite` feature holds the conformance suite that every backend
//! runs from its own tests.
//!
//! ```
//! use git_backend::{Change, Expected, ObjectId, RefName, RepoPath};
//!
//! // Inputs are checked when they are built, so bad ones never reach a repository.
//! let branch = RefName::branch("main").unwrap();
//! assert_eq!(branch.as_str(), "refs/heads/main");
//! assert!(RepoPath::new("../etc/passwd").is_err());
//! assert!(ObjectId::parse("deadbeef").is_err());
//!
//! let put = Change::Put { path: RepoPath::new("default/features.yaml").unwrap(), content: b"version: \"1.6\"\n".to_vec() };
//! assert_eq!(put.path().parent(), Some("default"));
//! let id = ObjectId::parse("4b825dc642cb6eb9a060e54bf8d69288fbee4904").unwrap();
//! assert!(Expected::Value(id).matches(Some(id)) && !Expected::Absent.matches(Some(id)));
//! ```

mod backend;
mod credential;
mod error;
mod types;
mod write;

#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use backend::{DynBackend, GitBackend, GitBackendExt, SEED_README};
pub use credential::{
    AllowedCredentials, Credential, CredentialProvider, CredentialRequest, HostKey, NoCredentials,
    Remote, TlsTrust,
};
pub use error::{Error, ErrorClass, Result, Source, is_storage_full};
pub use types::*;
pub use write::{Plan, Refusal, WriteContext, WriteOp};

/// The `tracing` target of transfer-progress events, so that a program can show them its own
/// way (a progress bar on a terminal) without parsing log lines.
///
/// During a long download, backends emit a `TRACE` event with this target about every
/// [`PROGRESS_TICK`] with the fields `remote`, `objects`, `total_objects` and `bytes`, one
/// `TRACE` event with `done = true` when the transfer ends, and an `INFO` event every few
/// seconds (the log line a non-interactive run shows: objects, bytes, rate).
pub const PROGRESS_TARGET: &str = "git_progress";

/// How often backends emit the `TRACE` progress events of [`PROGRESS_TARGET`].
pub const PROGRESS_TICK: std::time::Duration = std::time::Duration::from_millis(100);
