//! git2 code shared by the git2 backends of the flag storage service: [`Store`], a git2
//! repository (on disk, or with new objects in memory) behind the
//! [`git_backend::GitBackend`] trait, the transport callbacks that hand credentials to
//! libgit2 and check host keys and certificates through [`git_backend::CredentialProvider`],
//! push-status handling with compare-and-swap, and the process-wide libgit2 settings.
//!
//! Only git2 backends depend on this crate; it depends on `git-backend` alone. Every git2
//! call runs on a blocking thread (`tokio::task::spawn_blocking`), never on an async one.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use git_backend::{Change, CommitRequest, GitBackend, RepoPath, Signature};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().to_owned();
//! // The store keeps `dir` (which removes the directory when dropped) as long as it needs it.
//! let store = git2_support::Store::memory("memory", &path, Default::default(), dir).unwrap();
//! let sig = Signature::now("flipt", "flipt@example.com");
//! let id = store
//!     .create_commit(CommitRequest {
//!         parent: None,
//!         changes: vec![Change::Put { path: RepoPath::new("README.md").unwrap(), content: b"hi".to_vec() }],
//!         message: "add initial README".into(),
//!         author: sig.clone(),
//!         committer: sig,
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(store.commit_info(id).await.unwrap().message, "add initial README");
//! # }
//! ```

mod convert;
mod global;
mod ops;
mod store;
mod tls;
mod transport;

pub use global::{GlobalOptions, HeapStats, configure, heap_stats};
pub use store::{MemoryOptions, MemoryStats, RefHook, Store, memory_stats, wait_for_pack_merges};

#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use git_backend;
    pub use tokio::sync::watch;
}

/// Implements [`git_backend::GitBackend`] for a type by forwarding every method to its
/// [`Store`] field, so that a backend crate writes only what differs. Methods with a default
/// implementation in the trait are forwarded too (the store's are faster): a method added
/// to the trait is added here.
#[macro_export]
macro_rules! delegate_git_backend {
    ($ty:ty, $field:ident) => {
        #[$crate::__private::async_trait]
        impl $crate::__private::git_backend::GitBackend for $ty {
            fn kind(&self) -> &'static str {
                $crate::__private::git_backend::GitBackend::kind(&self.$field)
            }
            async fn resolve(
                &self,
                name: &$crate::__private::git_backend::RefName,
            ) -> $crate::__private::git_backend::Result<
                Option<$crate::__private::git_backend::ObjectId>,
            > {
                self.$field.resolve(name).await
            }
            async fn list_refs(
                &self,
                prefix: &str,
            ) -> $crate::__private::git_backend::Result<Vec<$crate::__private::git_backend::Ref>>
            {
                self.$field.list_refs(prefix).await
            }
            async fn update_ref(
                &self,
                update: $crate::__private::git_backend::RefUpdate,
            ) -> $crate::__private::git_backend::Result<()> {
                self.$field.update_ref(update).await
            }
            fn subscribe(
                &self,
            ) -> $crate::__private::watch::Receiver<$crate::__private::git_backend::RefsState> {
                self.$field.subscribe()
            }
            async fn refresh_refs(
                &self,
            ) -> $crate::__private::git_backend::Result<$crate::__private::git_backend::RefsState>
            {
                self.$field.refresh_refs().await
            }
            async fn commit_info(
                &self,
                id: $crate::__private::git_backend::ObjectId,
            ) -> $crate::__private::git_backend::Result<$crate::__private::git_backend::CommitInfo>
            {
                self.$field.commit_info(id).await
            }
            async fn read_blob(
                &self,
                id: $crate::__private::git_backend::ObjectId,
            ) -> $crate::__private::git_backend::Result<Vec<u8>> {
                self.$field.read_blob(id).await
            }
            async fn read_file(
                &self,
                commit: $crate::__private::git_backend::ObjectId,
                path: &$crate::__private::git_backend::RepoPath,
            ) -> $crate::__private::git_backend::Result<
                Option<$crate::__private::git_backend::FileBlob>,
            > {
                self.$field.read_file(commit, path).await
            }
            async fn list_tree(
                &self,
                commit: $crate::__private::git_backend::ObjectId,
                dir: Option<&$crate::__private::git_backend::RepoPath>,
                recursive: bool,
            ) -> $crate::__private::git_backend::Result<
                Vec<$crate::__private::git_backend::TreeEntry>,
            > {
                self.$field.list_tree(commit, dir, recursive).await
            }
            async fn diff(
                &self,
                from: Option<$crate::__private::git_backend::ObjectId>,
                to: $crate::__private::git_backend::ObjectId,
            ) -> $crate::__private::git_backend::Result<
                Vec<$crate::__private::git_backend::DiffEntry>,
            > {
                self.$field.diff(from, to).await
            }
            async fn log(
                &self,
                from: $crate::__private::git_backend::ObjectId,
                options: $crate::__private::git_backend::LogOptions,
            ) -> $crate::__private::git_backend::Result<
                Vec<$crate::__private::git_backend::CommitInfo>,
            > {
                self.$field.log(from, options).await
            }
            async fn is_ancestor(
                &self,
                ancestor: $crate::__private::git_backend::ObjectId,
                descendant: $crate::__private::git_backend::ObjectId,
            ) -> $crate::__private::git_backend::Result<bool> {
                self.$field.is_ancestor(ancestor, descendant).await
            }
            async fn changed_paths(
                &self,
                from: $crate::__private::git_backend::ObjectId,
                to: $crate::__private::git_backend::ObjectId,
            ) -> $crate::__private::git_backend::Result<Vec<String>> {
                self.$field.changed_paths(from, to).await
            }
            async fn fast_forward(
                &self,
                name: $crate::__private::git_backend::RefName,
                from: $crate::__private::git_backend::ObjectId,
                to: $crate::__private::git_backend::ObjectId,
                message: String,
            ) -> $crate::__private::git_backend::Result<bool> {
                self.$field.fast_forward(name, from, to, message).await
            }
            async fn create_commit(
                &self,
                request: $crate::__private::git_backend::CommitRequest,
            ) -> $crate::__private::git_backend::Result<$crate::__private::git_backend::ObjectId>
            {
                self.$field.create_commit(request).await
            }
            async fn commit_to(
                &self,
                request: $crate::__private::git_backend::CommitRequest,
                name: $crate::__private::git_backend::RefName,
                expected: $crate::__private::git_backend::Expected,
                message: String,
            ) -> $crate::__private::git_backend::Result<$crate::__private::git_backend::ObjectId>
            {
                self.$field
                    .commit_to(request, name, expected, message)
                    .await
            }
            async fn ls_remote(
                &self,
                remote: &$crate::__private::git_backend::Remote,
            ) -> $crate::__private::git_backend::Result<Vec<$crate::__private::git_backend::Ref>>
            {
                self.$field.ls_remote(remote).await
            }
            async fn fetch(
                &self,
                remote: &$crate::__private::git_backend::Remote,
                refspecs: &[String],
                prune: bool,
            ) -> $crate::__private::git_backend::Result<
                Vec<$crate::__private::git_backend::RefChange>,
            > {
                self.$field.fetch(remote, refspecs, prune).await
            }
            async fn fetch_and_follow(
                &self,
                remote: &$crate::__private::git_backend::Remote,
                refspecs: &[String],
                prune: bool,
                follow: $crate::__private::git_backend::Follow,
            ) -> $crate::__private::git_backend::Result<$crate::__private::git_backend::Fetched>
            {
                self.$field
                    .fetch_and_follow(remote, refspecs, prune, follow)
                    .await
            }
            async fn push(
                &self,
                remote: &$crate::__private::git_backend::Remote,
                update: $crate::__private::git_backend::PushUpdate,
            ) -> $crate::__private::git_backend::Result<()> {
                self.$field.push(remote, update).await
            }
        }
    };
}
