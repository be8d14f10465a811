//! What a storage reports about its sync: status and counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use git_backend::{ErrorClass, ObjectId};

/// Where a storage is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Start-up has not finished.
    Initializing,
    /// Serving (also after a lenient start that could not sync yet: see
    /// [`Status::synced`] and [`Status::last_error`]).
    Ready,
    /// A fetch or push is in flight.
    Syncing,
    /// Sync is suspended; reads are served.
    Suspended,
    /// No state to serve.
    Error,
}

impl Phase {
    /// Upper-case name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Initializing => "INITIALIZING",
            Phase::Ready => "READY",
            Phase::Syncing => "SYNCING",
            Phase::Suspended => "SUSPENDED",
            Phase::Error => "ERROR",
        }
    }
}

/// The last error of a storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// Its class.
    pub class: ErrorClass,
    /// What failed (no secrets, no URL userinfo).
    pub message: String,
    /// When.
    pub at: SystemTime,
}

/// A local branch that diverged from the remote: neither served nor overwritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The branch.
    pub branch: String,
    /// The local commit.
    pub local: ObjectId,
    /// The remote's commit.
    pub remote: ObjectId,
}

/// The remote's branch was rewritten (moved to a commit that does not contain the one last
/// fetched) while the local branch held nothing the remote never had: the local branch
/// followed the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRewrite {
    /// The branch.
    pub branch: String,
    /// Where the local branch was (a commit the remote had had).
    pub previous: ObjectId,
    /// The remote's new head, which the local branch now holds.
    pub remote: ObjectId,
    /// When it was followed.
    pub at: SystemTime,
}

/// Status of one storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The phase.
    pub phase: Phase,
    /// The served head of the storage's branch.
    pub head: Option<ObjectId>,
    /// Whether the served head is the remote's and the storage is in step with it: the last
    /// fetch succeeded and the local branch has not diverged (always true without a remote).
    pub synced: bool,
    /// Last time a fetch was tried.
    pub last_fetch_attempt: Option<SystemTime>,
    /// Last time a fetch succeeded.
    pub last_fetch_success: Option<SystemTime>,
    /// Last time a push succeeded.
    pub last_push: Option<SystemTime>,
    /// The last error, cleared by the next success of the same kind.
    pub last_error: Option<LastError>,
    /// A local branch that diverged from the remote, while it lasts.
    pub divergence: Option<Divergence>,
    /// The last rewrite of the remote's branch that the local branch followed, if any.
    pub last_remote_rewrite: Option<RemoteRewrite>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            phase: Phase::Initializing,
            head: None,
            synced: false,
            last_fetch_attempt: None,
            last_fetch_success: None,
            last_push: None,
            last_error: None,
            divergence: None,
            last_remote_rewrite: None,
        }
    }
}

/// Counters of one storage, ready to be exported as metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Successful syncs (fetches, or re-reads without a remote).
    pub syncs_ok: AtomicU64,
    /// Failed syncs.
    pub syncs_failed: AtomicU64,
    /// Total time spent in syncs, in microseconds.
    pub sync_micros: AtomicU64,
    /// Successful pushes.
    pub pushes_ok: AtomicU64,
    /// Failed pushes.
    pub pushes_failed: AtomicU64,
    /// Pushes refused because the remote moved.
    pub push_conflicts: AtomicU64,
    /// Writes re-applied after the remote moved.
    pub push_replays: AtomicU64,
    /// Commits made.
    pub commits: AtomicU64,
    /// Rewrites of the remote's branch that the local branch followed (see
    /// [`RemoteRewrite`]).
    pub remote_rewrites: AtomicU64,
    /// Unix time (seconds) of the last successful sync; 0 before the first.
    pub last_sync_success_unix: AtomicU64,
    errors: [AtomicU64; 7],
}

/// The error classes, in the order of [`Metrics::errors_by_class`].
pub const CLASSES: [ErrorClass; 7] = [
    ErrorClass::Auth,
    ErrorClass::Network,
    ErrorClass::NotFound,
    ErrorClass::Conflict,
    ErrorClass::Validation,
    ErrorClass::Storage,
    ErrorClass::Internal,
];

impl Metrics {
    pub(crate) fn error(&self, class: ErrorClass) {
        if let Some(i) = CLASSES.iter().position(|c| *c == class) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Errors counted per class.
    pub fn errors_by_class(&self) -> Vec<(ErrorClass, u64)> {
        CLASSES
            .iter()
            .zip(&self.errors)
            .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
            .collect()
    }
}
