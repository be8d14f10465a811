//! Storages without a remote: seeding, revisions, preconditions, external commits.

use git_backend::GitBackendExt;
use remote_sync::{Phase, SyncError, SyncedStorage};

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn start_seeds_an_empty_repository() {
    let s = SyncedStorage::start(memory(), options(None)).await.unwrap();
    let head = s.head("main").expect("seeded");
    let info = s.backend().commit_info(head).await.unwrap();
    assert_eq!(info.message, "add initial README");
    assert_eq!(info.committer.name, "flipt");
    assert_eq!(s.status().phase, Phase::Ready);
    assert!(s.status().synced);
    // Starting again on the same repository does not seed twice.
    let again = SyncedStorage::start(s.backend().clone(), options(None))
        .await
        .unwrap();
    assert_eq!(again.head("main"), Some(head));
}

#[tokio::test(flavor = "multi_thread")]
async fn revisions_are_checked_as_behaviour_4_says() {
    let s = SyncedStorage::start(memory(), options(None)).await.unwrap();
    let r0 = s.head("main").unwrap();
    // Unconditional and exact-head writes apply.
    let r1 = write(&s, "a.yaml", "1", None)
        .await
        .unwrap()
        .revision
        .unwrap();
    let r2 = write(&s, "b.yaml", "1", Some(r1))
        .await
        .unwrap()
        .revision
        .unwrap();
    // An ancestor revision applies when the touched resource is unchanged since...
    let r3 = write(&s, "c.yaml", "1", Some(r0))
        .await
        .unwrap()
        .revision
        .unwrap();
    assert_ne!(r3, r2);
    // ...and is refused, naming the resource and the head, when it changed.
    match write(&s, "a.yaml", "2", Some(r0)).await {
        Err(SyncError::Aborted { message, head }) => {
            assert!(message.contains("file a.yaml"), "{message}");
            assert_eq!(head, Some(r3));
        }
        other => panic!("expected Aborted, got {other:?}"),
    }
    // Malformed revisions are invalid arguments; unknown ones are aborted.
    for bad in ["deadbeef", "zz", &"g".repeat(40)] {
        let r = s
            .write(remote_sync::WriteRequest {
                branch: "main",
                revision: Some(bad),
                op: &put("x", "y"),
                author: None,
            })
            .await;
        assert!(
            matches!(r, Err(SyncError::InvalidArgument(_))),
            "{bad}: {r:?}"
        );
    }
    let unknown = "1".repeat(40);
    let r = s
        .write(remote_sync::WriteRequest {
            branch: "main",
            revision: Some(&unknown),
            op: &put("x", "y"),
            author: None,
        })
        .await;
    assert!(matches!(r, Err(SyncError::Aborted { .. })), "{r:?}");
    assert_eq!(s.head("main"), Some(r3), "refused writes change nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_changes_nothing_makes_no_commit() {
    let s = SyncedStorage::start(memory(), options(None)).await.unwrap();
    let r1 = write(&s, "a.yaml", "1", None).await.unwrap().revision;
    let out = write(&s, "a.yaml", "1", None).await.unwrap();
    assert!(!out.committed);
    assert_eq!(out.revision, r1);
    assert_eq!(
        s.backend()
            .log(r1.unwrap(), Default::default())
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_are_serialised_and_none_is_lost() {
    let s = SyncedStorage::start(memory(), options(None)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            write(&s, &format!("w/{i}.yaml"), "x", None)
                .await
                .unwrap()
                .revision
                .unwrap()
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.push(t.await.unwrap());
    }
    let head = s.head("main").unwrap();
    let history: Vec<_> = s
        .backend()
        .log(head, Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(history.len(), 25);
    for a in acked {
        assert_eq!(history.iter().filter(|h| **h == a).count(), 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn commits_made_on_disk_by_another_program_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, backend) = repo_with_one_commit(dir.path());
    let s = SyncedStorage::start(backend, options(None)).await.unwrap();
    let (cancel, runner) = run_loop(&s);
    // Subscribed before the commit, so the change cannot be missed.
    let heads = s.subscribe();
    std::fs::write(repo.join("f.yaml"), "2").unwrap();
    test_support::git(&["commit", "-qam", "second"], &repo);
    let expected = oid(&test_support::git(&["rev-parse", "HEAD"], &repo));
    eventually(10, "the external commit is served", || {
        let h = s.head("main");
        async move { h == Some(expected) }
    })
    .await;
    assert!(heads.has_changed().unwrap());
    // A write through the service builds on it.
    let out = write(&s, "g.yaml", "1", Some(expected)).await.unwrap();
    assert_eq!(
        s.backend()
            .commit_info(out.revision.unwrap())
            .await
            .unwrap()
            .parents,
        vec![expected]
    );
    assert_eq!(
        s.backend()
            .read_to_string(out.revision.unwrap(), "f.yaml")
            .await
            .unwrap()
            .as_deref(),
        Some("2")
    );
    cancel.cancel();
    runner.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn suspend_needs_a_remote() {
    let s = SyncedStorage::start(memory(), options(None)).await.unwrap();
    assert!(matches!(s.suspend(), Err(SyncError::FailedPrecondition(_))));
    assert!(matches!(s.resume(), Err(SyncError::FailedPrecondition(_))));
    let out = s.refresh().await.unwrap();
    assert!(!out.changed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_right_after_a_commit_on_disk_builds_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, backend) = repo_with_one_commit(dir.path());
    let s = SyncedStorage::start(backend, options(None)).await.unwrap();
    for round in 0..5 {
        // Another program commits, and a write follows at once: the storage may not have
        // noticed the commit yet, and its write must build on it all the same.
        std::fs::write(repo.join("g.yaml"), format!("{round}")).unwrap();
        test_support::git(&["add", "."], &repo);
        test_support::git(&["commit", "-qm", "theirs"], &repo);
        let theirs = oid(&test_support::git(&["rev-parse", "HEAD"], &repo));
        let ours = write(&s, "f.yaml", &format!("ours {round}"), None)
            .await
            .unwrap()
            .revision
            .unwrap();
        let info = s.backend().commit_info(ours).await.unwrap();
        assert_eq!(info.parents, vec![theirs], "round {round}: nothing is lost");
        assert_eq!(s.head("main"), Some(ours));
    }
}
