//! Conversions between git2 and the plain types of `git-backend`, and the one mapping of
//! git2 errors to [`git_backend::Error`].

use git_backend::{Error, ObjectId, Signature, Timestamp};

/// A git2 id as a plain id.
pub(crate) fn oid(id: git2::Oid) -> ObjectId {
    let mut bytes = [0u8; 20];
    bytes.copy_from_slice(id.as_bytes());
    ObjectId::from_bytes(bytes)
}

/// A plain id as a git2 id.
pub(crate) fn git_oid(id: ObjectId) -> git2::Oid {
    git2::Oid::from_bytes(id.as_bytes()).expect("20 bytes are a valid SHA-1 id")
}

/// A git2 signature as a plain one.
pub(crate) fn signature(sig: &git2::Signature<'_>) -> Signature {
    Signature {
        name: String::from_utf8_lossy(sig.name_bytes()).into_owned(),
        email: String::from_utf8_lossy(sig.email_bytes()).into_owned(),
        time: Some(Timestamp {
            seconds: sig.when().seconds(),
            offset_minutes: sig.when().offset_minutes(),
        }),
    }
}

/// A plain signature as a git2 one (dated now when it has no time).
pub(crate) fn git_signature(sig: &Signature) -> Result<git2::Signature<'static>, Error> {
    let time = sig.time.unwrap_or_else(Timestamp::now);
    git2::Signature::new(
        &sig.name,
        &sig.email,
        &git2::Time::new(time.seconds, time.offset_minutes),
    )
    .map_err(|e| {
        Error::invalid(format!(
            "invalid signature `{} <{}>`: {}",
            sig.name,
            sig.email,
            e.message()
        ))
    })
}

/// The texts of `strerror` for a full disk or quota and for a file that may not grow, as
/// libgit2 appends them to its messages of OS errors.
const FULL: [&str; 3] = [
    "No space left on device",
    "Disk quota exceeded",
    "File too large",
];

/// Whether a git2 error says that local storage has no room left (`ENOSPC`, `EDQUOT`,
/// `EFBIG`) in its message. (When a loose object's write fails while it is being deflated,
/// libgit2 sets no message and `errno` is gone: see [`object_write_error`].)
pub(crate) fn is_disk_full(e: &git2::Error) -> bool {
    FULL.iter().any(|f| e.message().contains(f))
}

/// Whether `bytes` more bytes still fit in `dir` (a repository's object directory): writes
/// and removes a probe file. `None` when the probe failed otherwise (or `dir` is missing).
fn room_for(dir: &std::path::Path, bytes: usize) -> Option<bool> {
    use std::io::Write;
    if !dir.is_dir() {
        return None;
    }
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("flipt-room-probe-{}-{n}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .ok()?;
    let chunk = [0u8; 64 * 1024];
    let mut left = bytes;
    let mut outcome = Some(true);
    while left > 0 {
        let n = left.min(chunk.len());
        match file.write_all(&chunk[..n]).and_then(|()| file.flush()) {
            Ok(()) => left -= n,
            Err(e) if git_backend::is_storage_full(&e) => {
                outcome = Some(false);
                break;
            }
            Err(_) => {
                outcome = None;
                break;
            }
        }
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    outcome
}

/// Maps the git2 error of writing an object of about `size` bytes (before compression).
/// libgit2 sets no message when a loose object's write fails while it is being deflated
/// (`EFBIG` or `ENOSPC`): then a probe of the same size in the object directory tells
/// whether the disk is full ([`Error::StorageFull`]).
pub(crate) fn object_write_error(
    repo: &git2::Repository,
    context: &str,
    e: git2::Error,
    size: usize,
) -> Error {
    if matches!(e.message(), "" | "no error") {
        // Deflate may add a little (zlib's worst case is 5 bytes per 16 KiB block), and a
        // loose object starts with a header.
        let bytes = size + size / 1000 + 1024;
        if room_for(&repo.path().join("objects"), bytes) == Some(false) {
            return Error::StorageFull {
                message: format!(
                    "{context}: no room left (the disk is full, or a file size limit reached)"
                ),
                source: Some(Box::new(e)),
            };
        }
    }
    local_error(context, e)
}

/// Maps a git2 error of a local operation, with `context` saying what failed.
pub(crate) fn local_error(context: &str, e: git2::Error) -> Error {
    let full = is_disk_full(&e);
    // Some libgit2 failures set no message (e.g. a loose object whose write fails with
    // EFBIG or ENOSPC while it is being deflated): say so instead of "no error".
    let reason = match e.message() {
        "" | "no error" => {
            "libgit2 gave no reason (is the disk full, or a file size limit reached?)"
        }
        m => m,
    };
    let message = format!("{context}: {reason}");
    if full {
        return Error::StorageFull {
            message,
            source: Some(Box::new(e)),
        };
    }
    match e.code() {
        git2::ErrorCode::NotFound => Error::NotFound(message),
        git2::ErrorCode::Exists => Error::AlreadyExists(message),
        git2::ErrorCode::InvalidSpec | git2::ErrorCode::Invalid | git2::ErrorCode::Ambiguous => {
            Error::InvalidInput(message)
        }
        _ if e.class() == git2::ErrorClass::Odb && e.message().contains("not found") => {
            Error::NotFound(message)
        }
        _ => match e.class() {
            git2::ErrorClass::Os
            | git2::ErrorClass::Filesystem
            | git2::ErrorClass::Odb
            | git2::ErrorClass::Index => Error::Storage {
                message,
                source: Some(Box::new(e)),
            },
            git2::ErrorClass::Object | git2::ErrorClass::Tree | git2::ErrorClass::Invalid => {
                Error::InvalidInput(message)
            }
            _ => Error::Storage {
                message,
                source: Some(Box::new(e)),
            },
        },
    }
}
