//! The one mapping from library errors to gRPC statuses (API.md §4): `INTERNAL` only for
//! bugs; messages say what failed and why, never a secret or a server path.

use remote_sync::SyncError;
use tonic::{Code, Status};

/// A sync-engine error as a gRPC status.
pub fn from_sync(e: SyncError) -> Status {
    let code = match &e {
        SyncError::InvalidArgument(_) => Code::InvalidArgument,
        SyncError::Aborted { .. } => Code::Aborted,
        SyncError::AlreadyExists(_) => Code::AlreadyExists,
        SyncError::NotFound(_) => Code::NotFound,
        SyncError::FailedPrecondition(_) => Code::FailedPrecondition,
        SyncError::Unavailable(_) | SyncError::Storage(_) => Code::Unavailable,
        SyncError::Unauthenticated(_) => Code::Unauthenticated,
        SyncError::PermissionDenied(_) => Code::PermissionDenied,
        SyncError::DeadlineExceeded(_) => Code::DeadlineExceeded,
        _ => Code::Internal,
    };
    if code == Code::Internal {
        tracing::error!(error = %e, "internal error");
    }
    Status::new(code, e.to_string())
}

/// A backend error as a gRPC status.
pub fn from_backend(e: git_backend::Error) -> Status {
    from_sync(e.into())
}

/// `INVALID_ARGUMENT` with a message.
pub fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message)
}
