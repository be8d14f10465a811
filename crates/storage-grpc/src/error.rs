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
        SyncError::FailedPrecondition(_) | SyncError::Diverged(_) => Code::FailedPrecondition,
        SyncError::Unavailable(_) | SyncError::Storage(_) => Code::Unavailable,
        SyncError::StorageFull(_) => Code::ResourceExhausted,
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

/// A user-supplied text (a key, a path, an id) as error messages show it: at most 80
/// characters, control and bidirectional-override characters as `?`, so that a hostile
/// 10,000-character key does not come back as a 10,000-character `grpc-message` header and a
/// message reads as it is.
pub(crate) fn shown(text: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(|c| {
            if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                '?'
            } else {
                c
            }
        })
        .collect();
    if text.chars().nth(MAX).is_some() {
        out.push_str("...");
    }
    out
}

/// `INVALID_ARGUMENT` with a message.
pub fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_a_full_disk_and_a_divergence() {
        let full = from_sync(SyncError::StorageFull(
            "failed to write a blob: no room".into(),
        ));
        assert_eq!(full.code(), Code::ResourceExhausted);
        let full = from_backend(git_backend::Error::storage(
            "failed to write `a`",
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        ));
        assert_eq!(full.code(), Code::ResourceExhausted);
        let other = from_backend(git_backend::Error::storage(
            "failed to write `a`",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        ));
        assert_eq!(other.code(), Code::Unavailable);
        let diverged = from_sync(SyncError::Diverged("the local branch diverged".into()));
        assert_eq!(diverged.code(), Code::FailedPrecondition);
        assert_eq!(
            SyncError::Diverged(String::new()).class(),
            git_backend::ErrorClass::Conflict
        );
        let refused = from_sync(git_backend::Refusal::FailedPrecondition("x".into()).into());
        assert_eq!(refused.code(), Code::FailedPrecondition);
        let invalid = from_sync(git_backend::Refusal::Invalid("x".into()).into());
        assert_eq!(invalid.code(), Code::InvalidArgument);
    }

    #[test]
    fn user_texts_in_messages_are_short_and_printable() {
        assert_eq!(shown("new-ui"), "new-ui");
        assert_eq!(shown("a\0b\u{202e}"), "a?b?");
        let long = shown(&"k".repeat(10_000));
        assert_eq!(long, format!("{}...", "k".repeat(80)));
        // Cut at a character, not a byte.
        assert_eq!(shown(&"é".repeat(100)).chars().count(), 83);
        let status = crate::Registry::new()
            .require(&"x".repeat(10_000))
            .unwrap_err();
        assert!(status.message().len() < 200, "{}", status.message());
    }
}
