//! Filesystem notifications: with the periodic check set to an hour, a commit made by the
//! git CLI still reaches subscribers within seconds.

use std::time::Duration;

use git_backend::{GitBackend, RefName};
use git_backend_local::{LocalBackend, LocalOptions};
use test_support::git;

#[tokio::test(flavor = "multi_thread")]
async fn external_commits_are_noticed_through_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    git(
        &["init", "-q", "-b", "main", repo.to_str().unwrap()],
        dir.path(),
    );
    std::fs::write(repo.join("a"), "1").unwrap();
    git(&["add", "a"], &repo);
    git(&["commit", "-qm", "one"], &repo);
    let mut options = LocalOptions::new(&repo, "main");
    options.poll_interval = Duration::from_secs(3600);
    let backend = LocalBackend::open(options).unwrap();
    let mut rx = backend.subscribe();
    std::fs::write(repo.join("a"), "2").unwrap();
    git(&["commit", "-qam", "two"], &repo);
    let head = git(&["rev-parse", "HEAD"], &repo).trim().to_owned();
    let main = RefName::branch("main").unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if rx
                .borrow_and_update()
                .refs
                .get(&main)
                .map(|id| id.to_string())
                == Some(head.clone())
            {
                break;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("the commit was noticed without the periodic check");
}
