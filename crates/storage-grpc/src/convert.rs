//! Conversions from library types to protobuf messages.

use std::time::SystemTime;

use git_backend::{ErrorClass, ObjectId};
use remote_sync::{Phase, Status as SyncStatus};
use storage_proto::flipt::storage::v1 as pb;

pub(crate) fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

pub(crate) fn id(o: Option<ObjectId>) -> String {
    o.map(|o| o.to_string()).unwrap_or_default()
}

fn phase(p: Phase) -> pb::Phase {
    match p {
        Phase::Initializing => pb::Phase::Initializing,
        Phase::Ready => pb::Phase::Ready,
        Phase::Syncing => pb::Phase::Syncing,
        Phase::Suspended => pb::Phase::Suspended,
        Phase::Error => pb::Phase::Error,
    }
}

fn class(c: ErrorClass) -> pb::ErrorClass {
    match c {
        ErrorClass::Auth => pb::ErrorClass::Auth,
        ErrorClass::Network => pb::ErrorClass::Network,
        ErrorClass::NotFound => pb::ErrorClass::NotFound,
        ErrorClass::Conflict => pb::ErrorClass::Conflict,
        ErrorClass::Validation => pb::ErrorClass::Validation,
        ErrorClass::Storage => pb::ErrorClass::Storage,
        _ => pb::ErrorClass::Internal,
    }
}

pub(crate) fn status(
    storage_id: &str,
    s: &SyncStatus,
    rejected: Option<crate::registry::Rejection>,
) -> pb::StorageStatus {
    pb::StorageStatus {
        storage_id: storage_id.to_owned(),
        phase: phase(s.phase) as i32,
        head: id(s.head),
        last_fetch_attempt: s.last_fetch_attempt.map(timestamp),
        last_fetch_success: s.last_fetch_success.map(timestamp),
        last_push: s.last_push.map(timestamp),
        last_error: s.last_error.as_ref().map(|e| pb::StorageError {
            class: class(e.class) as i32,
            message: e.message.clone(),
            at: Some(timestamp(e.at)),
        }),
        synced: s.synced,
        rejected_commit: rejected
            .as_ref()
            .map(|r| r.commit.clone())
            .unwrap_or_default(),
        rejected_reason: rejected.map(|r| r.reason).unwrap_or_default(),
        divergence: s.divergence.as_ref().map(|d| pb::Divergence {
            branch: d.branch.clone(),
            local_commit: d.local.to_string(),
            remote_commit: d.remote.to_string(),
        }),
        last_remote_rewrite: s.last_remote_rewrite.as_ref().map(|r| pb::RemoteRewrite {
            branch: r.branch.clone(),
            previous_commit: r.previous.to_string(),
            remote_commit: r.remote.to_string(),
            at: Some(timestamp(r.at)),
        }),
    }
}
