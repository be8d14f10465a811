//! The re-appliable write: an operation that computes its file changes from the current head,
//! so that the sync engine can run it again on a newer head after the remote moved, and the
//! operation itself decides whether its precondition still holds.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::backend::GitBackend;
use crate::error::Error;
use crate::types::{Change, ObjectId};

/// What an operation sees when it is (re-)applied.
#[derive(Debug, Clone, Copy)]
pub struct WriteContext<'a> {
    /// The repository, for reading.
    pub backend: &'a dyn GitBackend,
    /// The commit the changes will be applied on (`None`: the branch has no commit yet).
    pub head: Option<ObjectId>,
    /// The revision the client read before asking for the write, if it gave one. The caller
    /// has checked that it is `head` or an ancestor of it.
    pub base: Option<ObjectId>,
}

/// The outcome of planning a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Commit these changes with this message.
    Commit {
        /// File changes, applied in order.
        changes: Vec<Change>,
        /// The commit message.
        message: String,
    },
    /// Nothing to change (e.g. deleting something absent): no commit is made.
    Nothing,
}

/// Why an operation refuses to apply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Something this write touches changed between `base` and `head`.
    #[error("{resource} changed since revision {base}; the current revision is {head}")]
    Precondition {
        /// What changed (e.g. `flag default/my-flag`).
        resource: String,
        /// The revision the client read.
        base: ObjectId,
        /// The current head.
        head: ObjectId,
    },
    /// The write is invalid (bad key, unknown reference, ...): the request is at fault.
    #[error("{0}")]
    Invalid(String),
    /// The repository's state does not allow the write, whatever the request (e.g. the file
    /// it edits already does not validate at head, a broken reference someone else pushed):
    /// the problem existed before the write.
    #[error("{0}")]
    FailedPrecondition(String),
    /// What the write creates exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// What the write updates does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Reading the repository failed.
    #[error(transparent)]
    Backend(#[from] Error),
}

/// A write that can be planned again on a newer head.
#[async_trait]
pub trait WriteOp: Debug + Send + Sync {
    /// Computes the changes to make on `ctx.head`, or refuses.
    async fn plan(&self, ctx: WriteContext<'_>) -> Result<Plan, Refusal>;
}
