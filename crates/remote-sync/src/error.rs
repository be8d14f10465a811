//! The sync engine's error: what a caller (the gRPC layer) maps to a status code, in one
//! place.

use git_backend::{ErrorClass, ObjectId};

/// What went wrong in a sync-engine operation. Messages never contain secrets or URL
/// userinfo.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The request is malformed (e.g. a revision that is not 40 hex digits).
    #[error("{0}")]
    InvalidArgument(String),
    /// What the write touches changed since the client's revision, or the revision is not
    /// in the branch's history.
    #[error("{message}")]
    Aborted {
        /// What changed.
        message: String,
        /// The current head.
        head: Option<ObjectId>,
    },
    /// What the write creates exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// What the write updates, or the branch, does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The storage is not in a state that allows the operation (suspended, no remote to
    /// suspend, the remote rejected the update, the files the write edits do not validate
    /// at head).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The local branch has commits the remote never had, and the remote's history does not
    /// contain it (BEHAVIOUR §2): neither served nor overwritten; writes are refused until
    /// someone resolves it. A `FAILED_PRECONDITION` of class conflict.
    #[error("{0}")]
    Diverged(String),
    /// The remote could not be reached, or kept moving past the retries. The write may have
    /// landed only if the message says its outcome is unknown.
    #[error("{0}")]
    Unavailable(String),
    /// The remote refused the credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// The remote refused access.
    #[error("{0}")]
    PermissionDenied(String),
    /// The operation did not finish within `server.git_timeout`; a push may still land.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// Local storage failed.
    #[error("{0}")]
    Storage(String),
    /// Local storage has no room left (disk or quota full, file size limit): nothing was
    /// written; retrying helps only once there is room.
    #[error("{0}")]
    StorageFull(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl SyncError {
    /// The coarse class, for status and metrics.
    pub fn class(&self) -> ErrorClass {
        match self {
            SyncError::InvalidArgument(_) | SyncError::FailedPrecondition(_) => {
                ErrorClass::Validation
            }
            SyncError::Aborted { .. } | SyncError::AlreadyExists(_) | SyncError::Diverged(_) => {
                ErrorClass::Conflict
            }
            SyncError::NotFound(_) => ErrorClass::NotFound,
            SyncError::Unavailable(_) | SyncError::DeadlineExceeded(_) => ErrorClass::Network,
            SyncError::Unauthenticated(_) | SyncError::PermissionDenied(_) => ErrorClass::Auth,
            SyncError::Storage(_) | SyncError::StorageFull(_) => ErrorClass::Storage,
            SyncError::Internal(_) => ErrorClass::Internal,
        }
    }
}

impl From<git_backend::Error> for SyncError {
    fn from(e: git_backend::Error) -> Self {
        use git_backend::Error as E;
        let message = e.to_string();
        match e {
            E::NotFound(_) => SyncError::NotFound(message),
            E::AlreadyExists(_) => SyncError::AlreadyExists(message),
            E::RefMoved { .. } | E::RemoteMoved { .. } => SyncError::Aborted {
                message,
                head: None,
            },
            E::Rejected { .. } => SyncError::FailedPrecondition(message),
            E::InvalidInput(_) => SyncError::InvalidArgument(message),
            E::Unauthenticated { .. } | E::Untrusted(_) => SyncError::Unauthenticated(message),
            E::PermissionDenied(_) => SyncError::PermissionDenied(message),
            E::Unavailable { .. } => SyncError::Unavailable(message),
            E::Storage { .. } => SyncError::Storage(message),
            E::StorageFull { .. } => SyncError::StorageFull(message),
            E::Unsupported(_) => SyncError::FailedPrecondition(message),
            _ => SyncError::Internal(message),
        }
    }
}

impl From<git_backend::Refusal> for SyncError {
    fn from(r: git_backend::Refusal) -> Self {
        use git_backend::Refusal as R;
        match r {
            R::Precondition { head, .. } => SyncError::Aborted {
                message: r.to_string(),
                head: Some(head),
            },
            R::Invalid(m) => SyncError::InvalidArgument(m),
            R::FailedPrecondition(m) => SyncError::FailedPrecondition(m),
            R::AlreadyExists(m) => SyncError::AlreadyExists(m),
            R::NotFound(m) => SyncError::NotFound(m),
            R::Backend(e) => e.into(),
            other => SyncError::Internal(other.to_string()),
        }
    }
}

/// `Result` with [`SyncError`].
pub type Result<T, E = SyncError> = std::result::Result<T, E>;
