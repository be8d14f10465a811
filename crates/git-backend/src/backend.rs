//! The backend trait.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::credential::Remote;
use crate::error::Result;
use crate::types::*;

/// A git repository that stores a branch's files: reads, commits, reference updates with
/// compare-and-swap, and the transport operations the sync engine needs.
///
/// Implementations run their blocking work off the async threads. Every method is safe to
/// call concurrently; reference updates are atomic compare-and-swaps.
#[async_trait]
pub trait GitBackend: Debug + Send + Sync + 'static {
    /// Short name of the kind of backend (`local`, `memory`).
    fn kind(&self) -> &'static str;

    // ---------------------------------------------------------------- references

    /// The commit a reference points at, or `None` when it does not exist.
    async fn resolve(&self, name: &RefName) -> Result<Option<ObjectId>>;

    /// Every reference whose name starts with `prefix` (e.g. `refs/heads/`), sorted by name.
    async fn list_refs(&self, prefix: &str) -> Result<Vec<Ref>>;

    /// Moves, creates or deletes a reference if it holds what `update.expected` says;
    /// otherwise fails with [`crate::Error::RefMoved`] and changes nothing.
    async fn update_ref(&self, update: RefUpdate) -> Result<()>;

    /// Every change of the references, as a stream of states: the receiver always holds the
    /// latest state (intermediate states may be skipped). A change made through this backend
    /// ([`GitBackend::update_ref`], a fetch, ...) is in the state by the time the call that
    /// made it returns, so callers may read references from the state instead of asking the
    /// backend. Changes made by other programs (for a repository on disk) are observed too,
    /// within seconds, or at once with [`GitBackend::refresh_refs`].
    fn subscribe(&self) -> watch::Receiver<RefsState>;

    /// Re-reads the references now (to notice changes made by other programs at once) and
    /// returns the state.
    async fn refresh_refs(&self) -> Result<RefsState>;

    // ---------------------------------------------------------------- objects

    /// The commit with this id ([`crate::Error::NotFound`] if absent or not a commit).
    async fn commit_info(&self, id: ObjectId) -> Result<CommitInfo>;

    /// The content of a blob.
    async fn read_blob(&self, id: ObjectId) -> Result<Vec<u8>>;

    /// A file of a commit, or `None` when the path does not exist or is not a file.
    async fn read_file(&self, commit: ObjectId, path: &RepoPath) -> Result<Option<FileBlob>>;

    /// Entries of a commit's tree under `dir` (`None`: the root): direct children, or every
    /// file below it with `recursive` (directories are then not listed). Sorted by path. A
    /// missing or non-directory `dir` gives an empty list.
    async fn list_tree(
        &self,
        commit: ObjectId,
        dir: Option<&RepoPath>,
        recursive: bool,
    ) -> Result<Vec<TreeEntry>>;

    /// Files that differ between two commits (`from: None` is the empty tree), sorted by
    /// path. Renames are a deletion and an addition.
    async fn diff(&self, from: Option<ObjectId>, to: ObjectId) -> Result<Vec<DiffEntry>>;

    /// History from `from`, newest first (by commit time, parents after children).
    async fn log(&self, from: ObjectId, options: LogOptions) -> Result<Vec<CommitInfo>>;

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    async fn is_ancestor(&self, ancestor: ObjectId, descendant: ObjectId) -> Result<bool>;

    /// The paths changed from `from` to `to`, sorted, each once: when `from` is an ancestor
    /// of `to`, the union of the paths each commit in between changed (from its first
    /// parent), so a path changed and changed back is in it; otherwise the difference of the
    /// two trees. For one commit on top of `from`, the usual case, the two are the same.
    /// Empty when `from == to`. Fails with [`crate::Error::NotFound`] when either commit is
    /// missing. What a Watch event carries; backends that can answer in one step (one round
    /// trip to a blocking thread) override it.
    async fn changed_paths(&self, from: ObjectId, to: ObjectId) -> Result<Vec<String>> {
        if from == to {
            return Ok(Vec::new());
        }
        let info = self.commit_info(to).await?;
        let one_on_top = info.parents == [from];
        let mut paths: Vec<String> = if !one_on_top && self.is_ancestor(from, to).await? {
            let between = LogOptions {
                hide: vec![from],
                ..Default::default()
            };
            let mut paths = Vec::new();
            for c in self.log(to, between).await? {
                let diff = self.diff(c.parents.first().copied(), c.id).await?;
                paths.extend(diff.into_iter().map(|d| d.path));
            }
            paths
        } else {
            let diff = self.diff(Some(from), to).await?;
            diff.into_iter().map(|d| d.path).collect()
        };
        paths.sort_unstable();
        paths.dedup();
        Ok(paths)
    }

    /// Moves `name` from `from` to `to` if `to` contains `from` (a fast-forward): what
    /// following a remote's new commits does. Returns whether it moved: `false`, changing
    /// nothing, when `from` is not an ancestor of `to`. Fails with
    /// [`crate::Error::RefMoved`] when the reference does not hold `from`, and with
    /// [`crate::Error::NotFound`] when either commit is missing. Backends that can check and
    /// move in one step (one round trip to a blocking thread) override it.
    async fn fast_forward(
        &self,
        name: RefName,
        from: ObjectId,
        to: ObjectId,
        message: String,
    ) -> Result<bool> {
        let ahead = self.is_ancestor(from, to).await?;
        if ahead {
            self.update_ref(RefUpdate {
                name,
                new: Some(to),
                expected: Expected::Value(from),
                message,
            })
            .await?;
        }
        Ok(ahead)
    }

    /// Creates a commit: the parent's tree with the changes applied (directories created and
    /// removed as needed). Moves no reference. A deletion of a missing file is
    /// [`crate::Error::NotFound`]; a put over a directory, or below a file, is
    /// [`crate::Error::InvalidInput`].
    async fn create_commit(&self, request: CommitRequest) -> Result<ObjectId>;

    /// [`GitBackend::create_commit`], then [`GitBackend::update_ref`] moving `name` to the
    /// new commit if it holds `expected`: what a write without a remote does. Backends that
    /// can do both in one step (one round trip to a blocking thread) override it. When the
    /// reference does not hold `expected`, fails with [`crate::Error::RefMoved`]: the commit
    /// exists, unreferenced, and no reference moved.
    async fn commit_to(
        &self,
        request: CommitRequest,
        name: RefName,
        expected: Expected,
        message: String,
    ) -> Result<ObjectId> {
        let id = self.create_commit(request).await?;
        self.update_ref(RefUpdate {
            name,
            new: Some(id),
            expected,
            message,
        })
        .await?;
        Ok(id)
    }

    // ---------------------------------------------------------------- transport

    /// The remote's references (ls-remote): cheap, downloads no objects.
    async fn ls_remote(&self, remote: &Remote) -> Result<Vec<Ref>>;

    /// Fetches with refspecs such as `+refs/heads/main:refs/remotes/origin/main` (wildcards
    /// allowed); with `prune`, local references matching a refspec's destination that the
    /// remote no longer has are deleted. No tags. Returns the references that changed.
    async fn fetch(
        &self,
        remote: &Remote,
        refspecs: &[String],
        prune: bool,
    ) -> Result<Vec<RefChange>>;

    /// [`GitBackend::fetch`], then [`GitBackend::fast_forward`] of `follow.local` from what it
    /// holds to what `follow.tracking` holds after the fetch, when both exist and the move is a
    /// fast-forward: what a sync does with a remote's new commits. The fetch's failure is the
    /// call's; the follow's is not: a follow that cannot happen (the local reference moved
    /// meanwhile, histories that diverged, a missing reference) moves nothing and leaves the
    /// case to the caller, which looks at the references anyway. Backends that can fetch and
    /// move in one step (one round trip to a blocking thread) override it.
    async fn fetch_and_follow(
        &self,
        remote: &Remote,
        refspecs: &[String],
        prune: bool,
        follow: Follow,
    ) -> Result<Fetched> {
        let changes = self.fetch(remote, refspecs, prune).await?;
        let pending = follow.pending(&self.subscribe().borrow());
        let followed = match pending {
            Some((from, to)) => matches!(
                self.fast_forward(follow.local, from, to, follow.message)
                    .await,
                Ok(true)
            ),
            None => false,
        };
        Ok(Fetched { changes, followed })
    }

    /// Updates one remote reference if the remote holds `update.expected`: the value is
    /// compared with what the remote advertises on the connection that then pushes, so the
    /// remote accepts the update only if it still holds that value. Fails with
    /// [`crate::Error::RemoteMoved`] (nothing sent) or [`crate::Error::Rejected`] (a hook or
    /// protection refused it). Never force-pushes over a value it was not told to expect.
    async fn push(&self, remote: &Remote, update: PushUpdate) -> Result<()>;
}

/// Convenience methods over any backend. Implemented for every [`GitBackend`]; do not
/// implement it yourself.
#[async_trait]
pub trait GitBackendExt: GitBackend {
    /// The commit at the tip of `refs/heads/<branch>`.
    async fn branch_head(&self, branch: &str) -> Result<Option<ObjectId>> {
        self.resolve(&RefName::branch(branch)?).await
    }

    /// Gives `refs/heads/<branch>` its first commit, a `README.md` (message `add initial
    /// README`, as Flipt does), if the branch does not exist. Returns the branch head. Safe to
    /// race: only one seed wins the compare-and-swap, and the others return its head.
    async fn seed_branch(&self, branch: &str, signature: &Signature) -> Result<ObjectId> {
        let name = RefName::branch(branch)?;
        if let Some(head) = self.resolve(&name).await? {
            return Ok(head);
        }
        let seed = self
            .create_commit(CommitRequest {
                parent: None,
                changes: vec![Change::Put {
                    path: RepoPath::new("README.md")?,
                    content: SEED_README.as_bytes().to_vec(),
                }],
                message: "add initial README".into(),
                author: signature.clone(),
                committer: signature.clone(),
            })
            .await?;
        match self
            .update_ref(RefUpdate {
                name: name.clone(),
                new: Some(seed),
                expected: Expected::Absent,
                message: "seed".into(),
            })
            .await
        {
            Ok(()) => Ok(seed),
            Err(crate::Error::RefMoved { .. }) => self
                .resolve(&name)
                .await?
                .ok_or_else(|| crate::Error::Internal("seeded branch vanished".into())),
            Err(e) => Err(e),
        }
    }

    /// Reads a file by its path as text.
    async fn read_to_string(&self, commit: ObjectId, path: &str) -> Result<Option<String>> {
        let path = RepoPath::new(path)?;
        Ok(self
            .read_file(commit, &path)
            .await?
            .map(|b| String::from_utf8_lossy(&b.content).into_owned()))
    }
}

impl<T: GitBackend + ?Sized> GitBackendExt for T {}

/// The `README.md` of a seeded repository.
pub const SEED_README: &str = "# Flipt Configuration Repository\n\nThis repository holds feature flags, segments and namespaces managed by Flipt.\nEach environment is a directory; each namespace is a folder with a `features.yaml`.\n";

/// Shared handle to a backend.
pub type DynBackend = Arc<dyn GitBackend>;
