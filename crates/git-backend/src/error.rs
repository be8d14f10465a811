//! The one error type of the backend API, with semantic variants that the layers above map
//! to their own codes (a gRPC status, a sync status class) in one place each.

/// A boxed underlying error, kept for logs and `source()` chains.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a backend operation. Messages are lowercase fragments that name what
/// failed; they never contain a secret or a URL's userinfo.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An object, reference or path does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A reference or path that must be absent exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// A local compare-and-swap failed: the reference does not hold the expected value.
    #[error("reference `{reference}` moved: expected {expected}, found {actual}")]
    RefMoved {
        /// The reference.
        reference: String,
        /// What the caller expected (an id, or `nothing`).
        expected: String,
        /// What it holds (an id, or `nothing`).
        actual: String,
    },
    /// The remote reference does not hold the expected value (someone else pushed first), or
    /// the update is not a fast-forward of it. Nothing was pushed.
    #[error("remote reference `{reference}` moved: expected {expected}, found {actual}")]
    RemoteMoved {
        /// The remote reference.
        reference: String,
        /// What the caller expected.
        expected: String,
        /// What the remote advertised.
        actual: String,
    },
    /// The remote refused the update (a hook, a protected branch).
    #[error("the remote rejected the update of `{reference}`: {reason}")]
    Rejected {
        /// The remote reference.
        reference: String,
        /// The remote's reason.
        reason: String,
    },
    /// The request itself is malformed.
    #[error("{0}")]
    InvalidInput(String),
    /// The remote refused our credentials, or we had none to offer.
    #[error("{message}")]
    Unauthenticated {
        /// What failed.
        message: String,
        /// The transport's error.
        #[source]
        source: Option<Source>,
    },
    /// The remote refused access with valid credentials.
    #[error("{0}")]
    PermissionDenied(String),
    /// The remote's identity could not be verified (unknown or changed host key, untrusted TLS
    /// certificate).
    #[error("{0}")]
    Untrusted(String),
    /// The remote could not be reached or the connection failed.
    #[error("{message}")]
    Unavailable {
        /// What failed.
        message: String,
        /// The transport's error.
        #[source]
        source: Option<Source>,
    },
    /// Local storage failed (disk full, file too large, corrupt repository, permissions).
    #[error("{message}")]
    Storage {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Source>,
    },
    /// Local storage is full: the disk or a quota has no room left, or a file may not grow
    /// (`ENOSPC`, `EDQUOT`, `EFBIG`). Nothing was written; the same operation works again once
    /// there is room.
    #[error("{message}")]
    StorageFull {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Source>,
    },
    /// The backend cannot do this operation.
    #[error("{0}")]
    Unsupported(String),
    /// A bug: an invariant of the backend did not hold.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Coarse classes of errors, for status reporting and metrics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Credentials, host keys, certificates, permissions.
    Auth,
    /// The remote could not be reached.
    Network,
    /// Something named does not exist.
    NotFound,
    /// Someone else changed the same thing first.
    Conflict,
    /// Bad input or content.
    Validation,
    /// Local storage failed.
    Storage,
    /// A bug.
    Internal,
}

impl ErrorClass {
    /// Lower-case name, as used in status and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Auth => "auth",
            ErrorClass::Network => "network",
            ErrorClass::NotFound => "not-found",
            ErrorClass::Conflict => "conflict",
            ErrorClass::Validation => "validation",
            ErrorClass::Storage => "storage",
            ErrorClass::Internal => "internal",
        }
    }
}

impl Error {
    /// An [`Error::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    /// An [`Error::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::NotFound(message.into())
    }

    /// An [`Error::Storage`] with its cause; an [`Error::StorageFull`] when the cause is an
    /// I/O error saying that there is no room left (see [`is_storage_full`]).
    pub fn storage(message: impl Into<String>, source: impl Into<Source>) -> Self {
        let source = source.into();
        let full = source
            .downcast_ref::<std::io::Error>()
            .is_some_and(is_storage_full);
        if full {
            Error::StorageFull {
                message: message.into(),
                source: Some(source),
            }
        } else {
            Error::Storage {
                message: message.into(),
                source: Some(source),
            }
        }
    }

    /// An [`Error::Unavailable`] with its cause.
    pub fn unavailable(message: impl Into<String>, source: Option<Source>) -> Self {
        Error::Unavailable {
            message: message.into(),
            source,
        }
    }

    /// The class of the error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::NotFound(_) => ErrorClass::NotFound,
            Error::AlreadyExists(_) | Error::RefMoved { .. } | Error::RemoteMoved { .. } => {
                ErrorClass::Conflict
            }
            Error::Rejected { .. } | Error::InvalidInput(_) | Error::Unsupported(_) => {
                ErrorClass::Validation
            }
            Error::Unauthenticated { .. } | Error::PermissionDenied(_) | Error::Untrusted(_) => {
                ErrorClass::Auth
            }
            Error::Unavailable { .. } => ErrorClass::Network,
            Error::Storage { .. } | Error::StorageFull { .. } => ErrorClass::Storage,
            Error::Internal(_) => ErrorClass::Internal,
        }
    }
}

/// Whether an I/O error says that local storage has no room left: the disk or a quota is
/// full (`ENOSPC`, `EDQUOT`), or a file may not grow (`EFBIG`, e.g. a file size limit).
pub fn is_storage_full(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::StorageFull | K::QuotaExceeded | K::FileTooLarge
    )
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    #[test]
    fn a_full_disk_is_its_own_error_of_class_storage() {
        for kind in [
            ErrorKind::StorageFull,
            ErrorKind::QuotaExceeded,
            ErrorKind::FileTooLarge,
        ] {
            let e = Error::storage("failed to write `a`", std::io::Error::from(kind));
            assert!(matches!(e, Error::StorageFull { .. }), "{kind:?}: {e:?}");
            assert_eq!(e.class(), ErrorClass::Storage);
            assert_eq!(e.to_string(), "failed to write `a`");
        }
        // By errno, as the OS reports it: ENOSPC, EFBIG, EDQUOT on Linux.
        for errno in [28, 27, 122] {
            assert!(is_storage_full(&std::io::Error::from_raw_os_error(errno)));
        }
        for kind in [
            ErrorKind::PermissionDenied,
            ErrorKind::NotFound,
            ErrorKind::Other,
        ] {
            let e = Error::storage("failed", std::io::Error::from(kind));
            assert!(matches!(e, Error::Storage { .. }), "{kind:?}: {e:?}");
        }
        let e = Error::storage("failed", "not an I/O error");
        assert!(matches!(e, Error::Storage { .. }));
    }
}
