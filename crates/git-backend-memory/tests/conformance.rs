//! The backend conformance suite, against in-memory repositories: with the default
//! compaction, with a compaction after every commit (so that every check also runs across
//! compactions), and through a wrapper that forwards only the trait's required methods, so
//! that its default methods (`commit_to`, `fast_forward`), which every backend of the
//! workspace overrides, are checked too.

use std::sync::Arc;

use git_backend::testsuite::{Harness, RemoteKind};
use git_backend::{
    CommitInfo, CommitRequest, DiffEntry, DynBackend, FileBlob, LogOptions, ObjectId, PushUpdate,
    Ref, RefChange, RefName, RefUpdate, RefsState, Remote, RepoPath, Result, TreeEntry,
};
use git_backend_memory::{MemoryBackend, MemoryBackendOptions};

struct Memory {
    compact_every: usize,
}

#[async_trait::async_trait]
impl Harness for Memory {
    async fn new_backend(&self) -> DynBackend {
        Arc::new(
            MemoryBackend::new(MemoryBackendOptions {
                compact_every: self.compact_every,
                max_packs: 4,
                ..Default::default()
            })
            .unwrap(),
        )
    }

    fn remote_kinds(&self) -> Vec<Arc<dyn RemoteKind>> {
        vec![
            Arc::new(test_support::FileRemotes),
            Arc::new(test_support::HttpRemotes),
        ]
    }
}

mod default_compaction {
    git_backend::conformance_tests!(super::Memory {
        compact_every: 1000
    });
}

mod compaction_after_every_commit {
    git_backend::conformance_tests!(super::Memory { compact_every: 1 });
}

/// A backend that implements only what `GitBackend` requires, forwarding to a memory
/// backend: the trait's default methods run instead of the store's overrides.
#[derive(Debug)]
struct RequiredOnly(MemoryBackend);

#[async_trait::async_trait]
impl git_backend::GitBackend for RequiredOnly {
    fn kind(&self) -> &'static str {
        "required-only"
    }
    async fn resolve(&self, name: &RefName) -> Result<Option<ObjectId>> {
        self.0.resolve(name).await
    }
    async fn list_refs(&self, prefix: &str) -> Result<Vec<Ref>> {
        self.0.list_refs(prefix).await
    }
    async fn update_ref(&self, update: RefUpdate) -> Result<()> {
        self.0.update_ref(update).await
    }
    fn subscribe(&self) -> tokio::sync::watch::Receiver<RefsState> {
        self.0.subscribe()
    }
    async fn refresh_refs(&self) -> Result<RefsState> {
        self.0.refresh_refs().await
    }
    async fn commit_info(&self, id: ObjectId) -> Result<CommitInfo> {
        self.0.commit_info(id).await
    }
    async fn read_blob(&self, id: ObjectId) -> Result<Vec<u8>> {
        self.0.read_blob(id).await
    }
    async fn read_file(&self, commit: ObjectId, path: &RepoPath) -> Result<Option<FileBlob>> {
        self.0.read_file(commit, path).await
    }
    async fn list_tree(
        &self,
        commit: ObjectId,
        dir: Option<&RepoPath>,
        recursive: bool,
    ) -> Result<Vec<TreeEntry>> {
        self.0.list_tree(commit, dir, recursive).await
    }
    async fn diff(&self, from: Option<ObjectId>, to: ObjectId) -> Result<Vec<DiffEntry>> {
        self.0.diff(from, to).await
    }
    async fn log(&self, from: ObjectId, options: LogOptions) -> Result<Vec<CommitInfo>> {
        self.0.log(from, options).await
    }
    async fn is_ancestor(&self, ancestor: ObjectId, descendant: ObjectId) -> Result<bool> {
        self.0.is_ancestor(ancestor, descendant).await
    }
    async fn create_commit(&self, request: CommitRequest) -> Result<ObjectId> {
        self.0.create_commit(request).await
    }
    async fn ls_remote(&self, remote: &Remote) -> Result<Vec<Ref>> {
        self.0.ls_remote(remote).await
    }
    async fn fetch(
        &self,
        remote: &Remote,
        refspecs: &[String],
        prune: bool,
    ) -> Result<Vec<RefChange>> {
        self.0.fetch(remote, refspecs, prune).await
    }
    async fn push(&self, remote: &Remote, update: PushUpdate) -> Result<()> {
        self.0.push(remote, update).await
    }
}

struct Defaults;

#[async_trait::async_trait]
impl Harness for Defaults {
    async fn new_backend(&self) -> DynBackend {
        Arc::new(RequiredOnly(
            MemoryBackend::new(MemoryBackendOptions::default()).unwrap(),
        ))
    }

    fn remote_kinds(&self) -> Vec<Arc<dyn RemoteKind>> {
        vec![Arc::new(test_support::FileRemotes)]
    }
}

mod trait_default_methods {
    git_backend::conformance_tests!(super::Defaults);
}
