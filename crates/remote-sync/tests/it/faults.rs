//! Faults: the remote down at start (strict and lenient), during a write and back again;
//! server-side rejections; diverged local commits; suspend and resume.

use std::sync::Arc;

use config_model::FetchPolicy;
use git_backend::{GitBackendExt, Remote};
use git_backend_local::{LocalBackend, LocalOptions};
use remote_sync::{Phase, SyncError, SyncedStorage};
use test_support::{BareRemote, GitHttpServer};

use crate::common::*;

fn down_remote() -> Remote {
    // Nothing listens on the discard port.
    Remote::anonymous("http://127.0.0.1:9/remote.git")
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_start_fails_when_the_remote_is_down() {
    let err = SyncedStorage::start(memory(), options(Some(down_remote())))
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Unavailable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lenient_start_needs_a_commit_to_serve() {
    let mut o = options(Some(down_remote()));
    o.fetch_policy = FetchPolicy::Lenient;
    // A memory backend has nothing to serve: start-up fails even when lenient.
    assert!(SyncedStorage::start(memory(), o.clone()).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn lenient_start_serves_the_local_state_and_recovers_when_the_remote_returns() {
    let dir = tempfile::tempdir().unwrap();
    let remote = BareRemote::new();
    let first = oid(&remote.cli_commit("main", &[("a", Some("1"))], "first"));
    // The local repository has the remote's history (a clone).
    test_support::git(
        &[
            "clone",
            "-q",
            "--bare",
            remote.path().to_str().unwrap(),
            dir.path().join("repo").to_str().unwrap(),
        ],
        dir.path(),
    );
    let server = GitHttpServer::builder(remote.project_root()).start();
    server.set_down(true);
    let backend =
        Arc::new(LocalBackend::open(LocalOptions::new(dir.path().join("repo"), "main")).unwrap());
    let mut o = options(Some(Remote::anonymous(
        server.url(test_support::REMOTE_DIR_NAME),
    )));
    o.fetch_policy = FetchPolicy::Lenient;
    let s = SyncedStorage::start(backend, o).await.unwrap();
    assert_eq!(s.head("main"), Some(first));
    let status = s.status();
    assert_eq!(status.phase, Phase::Ready);
    assert!(
        !status.synced,
        "the served head is not known to be the remote's"
    );
    assert!(status.last_error.is_some());
    // Writes fail clearly while the remote is down, and change nothing.
    let r = write(&s, "b", "2", None).await;
    assert!(matches!(r, Err(SyncError::Unavailable(_))), "{r:?}");
    assert_eq!(s.head("main"), Some(first));
    // The remote comes back: a refresh syncs and writes work, without restart.
    server.set_down(false);
    let second = oid(&remote.cli_commit("main", &[("c", Some("3"))], "second"));
    assert_eq!(s.refresh().await.unwrap().head, Some(second));
    assert!(s.status().synced);
    assert!(s.status().last_error.is_none());
    let out = write(&s, "b", "2", None).await.unwrap();
    assert_eq!(remote.head("main").map(|h| oid(&h)), out.revision);
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_down_during_a_write_then_back() {
    let remote = BareRemote::new();
    let server = GitHttpServer::builder(remote.project_root()).start();
    let s = SyncedStorage::start(
        memory(),
        options(Some(Remote::anonymous(
            server.url(test_support::REMOTE_DIR_NAME),
        ))),
    )
    .await
    .unwrap();
    let before = s.head("main");
    server.set_down(true);
    let r = write(&s, "a", "1", None).await;
    assert!(matches!(r, Err(SyncError::Unavailable(_))), "{r:?}");
    assert_eq!(s.head("main"), before, "nothing half-applied is visible");
    assert_eq!(remote.head("main").map(|h| oid(&h)), before);
    assert_eq!(
        s.status().last_error.map(|e| e.class),
        Some(git_backend::ErrorClass::Network)
    );
    server.set_down(false);
    let out = write(&s, "a", "1", None).await.unwrap();
    assert_eq!(remote.head("main").map(|h| oid(&h)), out.revision);
    assert_eq!(
        s.backend()
            .commit_info(out.revision.unwrap())
            .await
            .unwrap()
            .parents,
        vec![before.unwrap()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_rejected_by_a_hook_is_an_error_and_changes_nothing() {
    let remote = BareRemote::new();
    let server = GitHttpServer::builder(remote.project_root()).start();
    let s = SyncedStorage::start(
        memory(),
        options(Some(Remote::anonymous(
            server.url(test_support::REMOTE_DIR_NAME),
        ))),
    )
    .await
    .unwrap();
    let before = s.head("main");
    remote.install_hook(
        "pre-receive",
        "#!/bin/sh\necho 'main is protected' >&2\nexit 1\n",
    );
    let r = write(&s, "a", "1", None).await;
    match r {
        Err(SyncError::FailedPrecondition(m)) => assert!(m.contains("rejected"), "{m}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(s.head("main"), before);
    assert_eq!(remote.head("main").map(|h| oid(&h)), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn suspend_stops_sync_and_writes_and_resume_restarts_them() {
    let remote = BareRemote::new();
    let s = SyncedStorage::start(
        memory(),
        options(Some(Remote::anonymous(remote.file_url()))),
    )
    .await
    .unwrap();
    s.suspend().unwrap();
    assert_eq!(s.status().phase, Phase::Suspended);
    let r = write(&s, "a", "1", None).await;
    assert!(matches!(r, Err(SyncError::FailedPrecondition(_))), "{r:?}");
    assert!(s.head("main").is_some(), "reads are served");
    s.resume().unwrap();
    write(&s, "a", "1", None).await.unwrap();
    assert_eq!(s.status().phase, Phase::Ready);
}

#[tokio::test(flavor = "multi_thread")]
async fn local_commits_that_fast_forward_are_pushed_and_diverged_ones_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, repo, backend) = remote_and_clone(dir.path());
    let s = SyncedStorage::start(backend, options(Some(Remote::anonymous(remote.file_url()))))
        .await
        .unwrap();
    let (cancel, runner) = run_loop(&s);
    // A user commits in the repository on disk: it fast-forwards the remote, so it is pushed.
    std::fs::write(repo.join("b"), "2").unwrap();
    test_support::git(&["add", "b"], &repo);
    test_support::git(&["commit", "-qm", "local"], &repo);
    let local = oid(&test_support::git(&["rev-parse", "HEAD"], &repo));
    eventually(15, "the local commit is pushed and served", || {
        let h = s.head("main");
        let r = remote.head("main");
        async move { h == Some(local) && r.map(|r| oid(&r)) == Some(local) }
    })
    .await;
    // Another user pushes, and the local user commits on the old head: diverged.
    let theirs = oid(&remote.cli_commit("main", &[("c", Some("3"))], "theirs"));
    std::fs::write(repo.join("d"), "4").unwrap();
    test_support::git(&["add", "d"], &repo);
    test_support::git(&["commit", "-qm", "diverging"], &repo);
    let diverging = oid(&test_support::git(&["rev-parse", "HEAD"], &repo));
    s.refresh().await.unwrap();
    let status = s.status();
    let d = status.divergence.expect("divergence reported");
    assert_eq!((d.local, d.remote), (diverging, theirs));
    assert_eq!(s.head("main"), Some(theirs), "the remote's head is served");
    assert_eq!(
        remote.head("main").map(|h| oid(&h)),
        Some(theirs),
        "the remote is not overwritten"
    );
    assert!(!status.synced, "not in step while diverged");
    let last = status.last_error.expect("the divergence is the last error");
    assert_eq!(last.class, git_backend::ErrorClass::Conflict);
    let r = write(&s, "e", "5", None).await;
    assert!(matches!(r, Err(SyncError::Diverged(_))), "{r:?}");
    // Resolving it (rebasing the local branch on the remote) lets writes through again.
    test_support::git(&["fetch", "-q", "origin"], &repo);
    test_support::git(&["reset", "-q", "--hard", "origin/main"], &repo);
    s.backend().refresh_refs().await.unwrap();
    s.refresh().await.unwrap();
    let status = s.status();
    assert!(status.divergence.is_none());
    assert!(status.synced && status.last_error.is_none(), "{status:?}");
    assert!(
        status.last_remote_rewrite.is_none(),
        "a fast-forward is no rewrite"
    );
    write(&s, "e", "5", None).await.unwrap();
    assert_eq!(
        s.backend().branch_head("main").await.unwrap(),
        s.head("main")
    );
    cancel.cancel();
    runner.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_refresh_fetched_is_served_when_pushing_a_local_commit_then_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, repo, backend) = remote_and_clone(dir.path());
    let server = GitHttpServer::builder(remote.project_root()).start();
    let s = SyncedStorage::start(
        backend,
        options(Some(Remote::anonymous(
            server.url(test_support::REMOTE_DIR_NAME),
        ))),
    )
    .await
    .unwrap();
    // Another user pushes; a user of the repository on disk pulls it and commits on top, so
    // the next Refresh fetches the other user's commit and then pushes the local one, which
    // a hook refuses.
    let theirs = oid(&remote.cli_commit("main", &[("c", Some("3"))], "theirs"));
    let url = remote.path().to_str().unwrap();
    test_support::git(&["pull", "-q", "--ff-only", url, "main"], &repo);
    std::fs::write(repo.join("d"), "4").unwrap();
    test_support::git(&["add", "d"], &repo);
    test_support::git(&["commit", "-qm", "local"], &repo);
    remote.install_hook(
        "pre-receive",
        "#!/bin/sh\necho 'main is protected' >&2\nexit 1\n",
    );
    let r = s.refresh().await;
    assert!(r.is_err(), "the push of the local commit is refused: {r:?}");
    assert_eq!(
        s.head("main"),
        Some(theirs),
        "the fetched head is served although the reconciliation failed"
    );
    assert_eq!(remote.head("main").map(|h| oid(&h)), Some(theirs));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_pull_in_the_repository_on_disk_is_served_without_a_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, repo, backend) = remote_and_clone(dir.path());
    let mut opts = options(Some(Remote::anonymous(remote.file_url())));
    // Only the reference change can bring the new head within the test's time.
    opts.poll_interval = std::time::Duration::from_secs(3600);
    let s = SyncedStorage::start(backend, opts).await.unwrap();
    let (cancel, runner) = run_loop(&s);
    // Another user pushes; a user of the repository on disk pulls it: the local branch and
    // the remote-tracking reference both move, so there is nothing to reconcile, only the
    // served head to bring up to date.
    let theirs = oid(&remote.cli_commit("main", &[("c", Some("3"))], "theirs"));
    test_support::git(&["pull", "-q", "--ff-only", "origin", "main"], &repo);
    eventually(15, "the pulled commit is served", || {
        let h = s.head("main");
        async move { h == Some(theirs) }
    })
    .await;
    let status = s.status();
    assert!(status.divergence.is_none(), "{status:?}");
    cancel.cancel();
    runner.await.unwrap();
}
