//! A remote whose branch someone rewrote (force-pushed an unrelated history): followed when
//! the local branch holds nothing unpushed (the memory backend always, once its writes are
//! acknowledged; a local repository whose branch the remote had), a divergence otherwise.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use config_model::FetchPolicy;
use git_backend::{ErrorClass, GitBackendExt, ObjectId, Remote};
use git_backend_local::{LocalBackend, LocalOptions};
use remote_sync::{SyncError, SyncedStorage};
use test_support::{BareRemote, GitHttpServer};

use crate::common::*;

fn rewrites(s: &SyncedStorage) -> u64 {
    s.metrics().remote_rewrites.load(Ordering::Relaxed)
}

/// The parent of `commit` on the remote.
fn parent_on(remote: &BareRemote, commit: ObjectId) -> ObjectId {
    oid(&test_support::git(
        &["rev-parse", &format!("{commit}^")],
        remote.path(),
    ))
}

/// Status after following: the local branch and the served head are the remote's, no
/// divergence, no error, in step, and the rewrite noted with both commits.
async fn assert_followed(s: &SyncedStorage, previous: ObjectId, theirs: ObjectId) {
    let status = s.status();
    assert_eq!(s.head("main"), Some(theirs), "the remote's head is served");
    assert_eq!(
        s.backend().branch_head("main").await.unwrap(),
        Some(theirs),
        "the local branch follows the remote"
    );
    assert!(status.divergence.is_none(), "{status:?}");
    assert!(status.synced, "{status:?}");
    assert!(status.last_error.is_none(), "{status:?}");
    let note = status.last_remote_rewrite.expect("the rewrite is noted");
    assert_eq!(
        (note.branch.as_str(), note.previous, note.remote),
        ("main", previous, theirs)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_memory_backend_follows_a_rewritten_remote_and_writes_go_on_without_restart() {
    let remote = BareRemote::new();
    remote.cli_commit("main", &[("a", Some("1"))], "first");
    let s = SyncedStorage::start(
        memory(),
        options(Some(Remote::anonymous(remote.file_url()))),
    )
    .await
    .unwrap();
    let ours = write(&s, "b", "2", None).await.unwrap().revision.unwrap();
    assert_eq!(rewrites(&s), 0);

    // 1. Noticed by a refresh.
    let theirs = oid(&remote.cli_force_push_unrelated("main", &[("z", Some("9"))], "rewritten"));
    let r = s.refresh().await.unwrap();
    assert_eq!((r.head, r.changed), (Some(theirs), true));
    assert_followed(&s, ours, theirs).await;
    assert_eq!(rewrites(&s), 1);
    let next = write(&s, "c", "3", None).await.unwrap().revision.unwrap();
    assert_eq!(remote.head("main").map(|h| oid(&h)), Some(next));
    assert_eq!(
        parent_on(&remote, next),
        theirs,
        "built on the rewritten history"
    );
    assert_eq!(s.backend().branch_head("main").await.unwrap(), Some(next));

    // 2. Noticed by a write (its push finds the remote moved): replayed on the new history,
    //    and the local branch follows at the next sync.
    let again = oid(&remote.cli_force_push_unrelated("main", &[("y", Some("8"))], "again"));
    let out = write(&s, "d", "4", None).await.unwrap().revision.unwrap();
    assert_eq!(parent_on(&remote, out), again);
    assert_eq!(remote.head("main").map(|h| oid(&h)), Some(out));
    assert_eq!(s.head("main"), Some(out));
    s.refresh().await.unwrap();
    assert_followed(&s, next, out).await;
    assert_eq!(rewrites(&s), 2);
    // Only the write's file and the rewritten history's are there.
    let b = s.backend();
    assert_eq!(
        b.read_to_string(out, "d").await.unwrap().as_deref(),
        Some("4")
    );
    assert_eq!(
        b.read_to_string(out, "y").await.unwrap().as_deref(),
        Some("8")
    );
    assert_eq!(b.read_to_string(out, "c").await.unwrap(), None);
    remote.fsck();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_repository_with_nothing_unpushed_follows_a_rewritten_remote_also_after_a_restart()
{
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let remote = BareRemote::new();
    remote.cli_commit("main", &[("a", Some("1"))], "first");
    let open = || -> git_backend::DynBackend {
        Arc::new(LocalBackend::open(LocalOptions::new(&repo, "main")).unwrap())
    };
    let s = SyncedStorage::start(open(), options(Some(Remote::anonymous(remote.file_url()))))
        .await
        .unwrap();
    let ours = write(&s, "b", "2", None).await.unwrap().revision.unwrap();
    let theirs = oid(&remote.cli_force_push_unrelated("main", &[("z", Some("9"))], "rewritten"));
    s.refresh().await.unwrap();
    assert_followed(&s, ours, theirs).await;
    assert_eq!(
        oid(&test_support::git(&["rev-parse", "refs/heads/main"], &repo)),
        theirs,
        "on disk too"
    );
    let next = write(&s, "c", "3", None).await.unwrap().revision.unwrap();
    assert_eq!(parent_on(&remote, next), theirs);
    drop(s);

    // Rewritten while the server is stopped: the remote-tracking reference on disk says
    // what the remote had, and the local branch is that.
    let later = oid(&remote.cli_force_push_unrelated("main", &[("y", Some("8"))], "later"));
    let s = SyncedStorage::start(open(), options(Some(Remote::anonymous(remote.file_url()))))
        .await
        .unwrap();
    assert_followed(&s, next, later).await;
    assert_eq!(rewrites(&s), 1);
    let last = write(&s, "d", "4", None).await.unwrap().revision.unwrap();
    assert_eq!(parent_on(&remote, last), later);
    remote.fsck();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unpushed_local_commit_on_a_rewritten_remote_is_a_divergence_until_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, repo, backend) = remote_and_clone(dir.path());
    let s = SyncedStorage::start(backend, options(Some(Remote::anonymous(remote.file_url()))))
        .await
        .unwrap();
    // Sync suspended, so the commit made on disk stays unpushed.
    s.suspend().unwrap();
    std::fs::write(repo.join("mine"), "local").unwrap();
    test_support::git(&["add", "mine"], &repo);
    test_support::git(&["commit", "-qm", "unpushed"], &repo);
    let mine = oid(&test_support::git(&["rev-parse", "HEAD"], &repo));
    let theirs = oid(&remote.cli_force_push_unrelated("main", &[("z", Some("9"))], "rewritten"));
    s.resume().unwrap();
    s.refresh().await.unwrap();

    let status = s.status();
    let d = status.divergence.clone().expect("a divergence");
    assert_eq!(
        (d.branch.as_str(), d.local, d.remote),
        ("main", mine, theirs)
    );
    assert!(!status.synced, "{status:?}");
    let e = status
        .last_error
        .clone()
        .expect("the divergence is the last error");
    assert_eq!(e.class, ErrorClass::Conflict);
    assert!(
        e.message.contains(&mine.to_string()) && e.message.contains(&theirs.to_string()),
        "{e:?}"
    );
    assert!(status.last_remote_rewrite.is_none(), "{status:?}");
    assert_eq!(rewrites(&s), 0);
    assert_eq!(s.head("main"), Some(theirs), "the remote's head is served");
    assert_eq!(
        s.backend().branch_head("main").await.unwrap(),
        Some(mine),
        "the local commit is not overwritten"
    );
    let errors = s
        .metrics()
        .errors_by_class()
        .into_iter()
        .find(|(c, _)| *c == ErrorClass::Conflict)
        .map(|(_, n)| n);
    let r = write(&s, "b", "2", None).await;
    assert!(
        matches!(&r, Err(SyncError::Diverged(m)) if m.contains(&theirs.to_string())),
        "{r:?}"
    );
    assert_eq!(
        remote.head("main").map(|h| oid(&h)),
        Some(theirs),
        "nothing pushed"
    );
    // Polls while it lasts keep it, and count it once.
    s.refresh().await.unwrap();
    assert_eq!(s.status().divergence, Some(d));
    assert_eq!(
        s.status().last_error.map(|l| l.class),
        Some(ErrorClass::Conflict)
    );
    assert_eq!(
        s.metrics()
            .errors_by_class()
            .into_iter()
            .find(|(c, _)| *c == ErrorClass::Conflict)
            .map(|(_, n)| n),
        errors,
        "counted once, not at every poll or refused write"
    );

    // Resolved by putting the local commit on top of the remote's history.
    test_support::git(&["fetch", "-q", "origin"], &repo);
    test_support::git(&["reset", "-q", "--hard", "origin/main"], &repo);
    std::fs::write(repo.join("mine"), "local").unwrap();
    test_support::git(&["add", "mine"], &repo);
    test_support::git(&["commit", "-qm", "rebased"], &repo);
    let rebased = oid(&test_support::git(&["rev-parse", "HEAD"], &repo));
    s.backend().refresh_refs().await.unwrap();
    s.refresh().await.unwrap();
    let status = s.status();
    assert!(status.divergence.is_none(), "{status:?}");
    assert!(status.synced && status.last_error.is_none(), "{status:?}");
    assert_eq!(
        remote.head("main").map(|h| oid(&h)),
        Some(rebased),
        "pushed"
    );
    let out = write(&s, "b", "2", None).await.unwrap().revision.unwrap();
    assert_eq!(parent_on(&remote, out), rebased);
    remote.fsck();
}

/// A lenient start against an unreachable remote serves the local branch without claiming
/// the remote had it: when the remote returns with another history, the local commits are
/// a divergence, not followed away from.
#[tokio::test(flavor = "multi_thread")]
async fn a_lenient_start_never_takes_the_local_branch_for_the_remotes() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    test_support::git(
        &["init", "-q", "-b", "main", repo.to_str().unwrap()],
        dir.path(),
    );
    std::fs::write(repo.join("mine"), "local").unwrap();
    test_support::git(&["add", "mine"], &repo);
    test_support::git(&["commit", "-qm", "local only"], &repo);
    let mine = oid(&test_support::git(&["rev-parse", "HEAD"], &repo));
    let remote = BareRemote::new();
    let theirs = oid(&remote.cli_commit("main", &[("z", Some("9"))], "theirs"));
    let server = GitHttpServer::builder(remote.project_root()).start();
    server.set_down(true);
    let url = server.url(test_support::REMOTE_DIR_NAME);
    let open = || -> git_backend::DynBackend {
        Arc::new(LocalBackend::open(LocalOptions::new(&repo, "main")).unwrap())
    };
    let mut o = options(Some(Remote::anonymous(url)));
    o.fetch_policy = FetchPolicy::Lenient;
    let s = SyncedStorage::start(open(), o.clone()).await.unwrap();
    assert_eq!(s.head("main"), Some(mine), "the local branch is served");
    assert!(!s.status().synced);
    drop(s);
    // Started again, still unreachable, then the remote returns.
    let s = SyncedStorage::start(open(), o).await.unwrap();
    server.set_down(false);
    s.refresh().await.unwrap();
    let status = s.status();
    let d = status.divergence.expect("a divergence");
    assert_eq!((d.local, d.remote), (mine, theirs));
    assert_eq!(rewrites(&s), 0);
    assert_eq!(s.backend().branch_head("main").await.unwrap(), Some(mine));
    assert_eq!(remote.head("main").map(|h| oid(&h)), Some(theirs));
}
