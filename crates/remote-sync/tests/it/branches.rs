//! Branch environments: `flipt/<env>/<name>` branches created, written, tracked and deleted
//! with compare-and-swap on the remote.

use git_backend::Remote;
use remote_sync::{SyncError, SyncedStorage, WriteRequest};
use test_support::BareRemote;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn branches_with_a_remote() {
    let remote = BareRemote::new();
    let s = SyncedStorage::start(
        memory(),
        options(Some(Remote::anonymous(remote.file_url()))),
    )
    .await
    .unwrap();
    let base = s.head("main").unwrap();
    let head = s.create_branch("main", "flipt/prod/feature").await.unwrap();
    assert_eq!(head, base);
    assert_eq!(
        remote.head("flipt/prod/feature").map(|h| oid(&h)),
        Some(base)
    );
    assert_eq!(s.head("flipt/prod/feature"), Some(base));
    assert!(matches!(
        s.create_branch("main", "flipt/prod/feature").await,
        Err(SyncError::AlreadyExists(_))
    ));
    // Writes to the branch move only the branch.
    let out = s
        .write(WriteRequest {
            branch: "flipt/prod/feature",
            revision: None,
            op: &put("x", "1"),
            author: None,
        })
        .await
        .unwrap();
    assert_eq!(
        remote.head("flipt/prod/feature").map(|h| oid(&h)),
        out.revision
    );
    assert_eq!(s.head("main"), Some(base));
    // Branches created by others are tracked after a fetch; deleted ones disappear.
    let other = oid(&remote.cli_commit("flipt/prod/other", &[("y", Some("2"))], "other"));
    s.refresh().await.unwrap();
    assert_eq!(s.head("flipt/prod/other"), Some(other));
    s.delete_branch("flipt/prod/feature").await.unwrap();
    assert_eq!(remote.head("flipt/prod/feature"), None);
    assert_eq!(s.head("flipt/prod/feature"), None);
    assert!(matches!(
        s.delete_branch("flipt/prod/feature").await,
        Err(SyncError::NotFound(_))
    ));
    let r = s
        .write(WriteRequest {
            branch: "flipt/prod/gone",
            revision: None,
            op: &put("x", "1"),
            author: None,
        })
        .await;
    assert!(matches!(r, Err(SyncError::NotFound(_))), "{r:?}");
    // Branches of environments not on this storage are not tracked.
    remote.cli_commit("flipt/staging/x", &[("z", Some("3"))], "staging");
    s.refresh().await.unwrap();
    assert_eq!(s.head("flipt/staging/x"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn branches_without_a_remote() {
    let s = SyncedStorage::start(memory(), options(None)).await.unwrap();
    let base = s.head("main").unwrap();
    s.create_branch("main", "flipt/prod/a").await.unwrap();
    assert_eq!(s.head("flipt/prod/a"), Some(base));
    s.delete_branch("flipt/prod/a").await.unwrap();
    assert_eq!(s.head("flipt/prod/a"), None);
    // Deleted branches stay deleted (Flipt's come back without a remote).
    s.refresh().await.unwrap();
    assert_eq!(s.head("flipt/prod/a"), None);
}
