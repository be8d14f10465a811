//! The conformance suite: what every [`GitBackend`] must do, as checks that a backend crate
//! runs from its own tests with [`conformance_tests!`](crate::conformance_tests).
//!
//! Not a stable API: checks are added as the contract grows.
//!
//! A backend crate provides a [`Harness`] that makes fresh backends and remotes of each
//! transport it supports, then writes `git_backend::conformance_tests!(MyHarness::new());`
//! in a test file: one test per check, so a failure names the check.

mod checks;
mod transport;

use std::sync::Arc;

use async_trait::async_trait;

pub use checks::*;
pub use transport::*;

use crate::{DynBackend, ObjectId, Remote};

/// What the suite needs from a backend crate.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// A new backend over an empty repository (no commits, no references).
    async fn new_backend(&self) -> DynBackend;

    /// The kinds of remote to run the transport checks against (e.g. `file://` and smart
    /// HTTP).
    fn remote_kinds(&self) -> Vec<Arc<dyn RemoteKind>>;
}

/// A kind of remote server (a transport).
pub trait RemoteKind: Send + Sync {
    /// Name for messages (`file`, `http`).
    fn name(&self) -> &str;
    /// A new, empty bare repository served by this kind of server.
    fn create(&self) -> Box<dyn TestRemote>;
    /// Whether the server runs hooks (libgit2's `file://` transport does not).
    fn runs_hooks(&self) -> bool;
}

/// A remote repository under test, inspected and changed with the `git` CLI as another user.
pub trait TestRemote: Send + Sync {
    /// How the backend reaches it.
    fn remote(&self) -> Remote;
    /// The remote's `refs/heads/<branch>`.
    fn head(&self, branch: &str) -> Option<ObjectId>;
    /// Commits one file change as another user and pushes it; returns the new commit.
    fn commit_as_other_user(&self, branch: &str, path: &str, content: &str) -> ObjectId;
    /// Installs a `pre-receive` hook that refuses every push with `message`.
    fn reject_pushes(&self, message: &str);
    /// Asserts that the repository passes `git fsck`.
    fn fsck(&self);
}

/// Declares one `#[tokio::test]` per conformance check for a harness expression.
///
/// ```ignore
/// git_backend::conformance_tests!(my_backend_tests::Harness::new());
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(@tests $harness;
            empty_repository, root_commit_and_reads, nested_and_deep_paths,
            deleting_the_last_file_removes_its_directory, deleting_everything_leaves_the_empty_tree,
            unicode_and_spaces_in_names, large_files_round_trip, bad_commit_requests_are_refused,
            many_changes_in_one_commit, diffs_between_commits, changed_paths_between_commits,
            history_walks, ancestry,
            compare_and_swap_on_references, commit_to_moves_the_reference_or_nothing,
            fast_forward_moves_only_forward,
            concurrent_writers_never_lose_a_commit,
            subscribers_see_reference_changes, concurrent_readers_while_writing,
            unknown_objects_are_not_found,
            push_to_an_empty_remote_and_fetch_back, push_with_a_stale_expectation_sends_nothing,
            another_users_push_is_fetched, fetch_and_follow_moves_only_forward,
            two_writers_racing_on_one_remote_ref,
            server_side_rejection_is_an_error, deleting_remote_branches_and_pruning,
            wildcard_fetch_tracks_branches, unreachable_remote_is_an_error
        );
    };
    (@tests $harness:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let harness = ::std::sync::Arc::new($harness);
                $crate::testsuite::$check(harness).await;
            }
        )*
    };
}
