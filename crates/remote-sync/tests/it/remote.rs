//! Following a remote over `file://` and smart HTTP, with another user pushing.

use std::time::Duration;

use git_backend::{GitBackendExt, Remote};
use remote_sync::{SyncError, SyncedStorage};
use test_support::{BareRemote, GitHttpServer};

use crate::common::*;

/// A remote served over file:// and over HTTP; the HTTP server lives as long as the value.
pub(crate) struct Served {
    pub(crate) remote: BareRemote,
    pub(crate) server: Option<GitHttpServer>,
}

impl Served {
    pub(crate) fn file() -> Self {
        Served {
            remote: BareRemote::new(),
            server: None,
        }
    }

    pub(crate) fn http() -> Self {
        let remote = BareRemote::new();
        let server = GitHttpServer::builder(remote.project_root()).start();
        Served {
            remote,
            server: Some(server),
        }
    }

    pub(crate) fn both() -> Vec<Served> {
        vec![Served::file(), Served::http()]
    }

    pub(crate) fn url(&self) -> String {
        match &self.server {
            Some(s) => s.url(test_support::REMOTE_DIR_NAME),
            None => self.remote.file_url(),
        }
    }

    pub(crate) fn git_remote(&self) -> Remote {
        Remote::anonymous(self.url())
    }

    pub(crate) fn head(&self) -> Option<git_backend::ObjectId> {
        self.remote.head("main").map(|h| oid(&h))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_remote_is_seeded_and_pushed() {
    for served in Served::both() {
        let s = SyncedStorage::start(memory(), options(Some(served.git_remote())))
            .await
            .unwrap();
        let head = s.head("main").unwrap();
        assert_eq!(served.head(), Some(head), "{}", served.url());
        assert_eq!(
            served
                .remote
                .show_file("main", "README.md")
                .map(|t| t.starts_with("# Flipt")),
            Some(true)
        );
        assert!(s.status().synced);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_remote_branch_is_served() {
    for served in Served::both() {
        let theirs = oid(&served.remote.cli_commit(
            "main",
            &[("default/features.yaml", Some("v: 1\n"))],
            "theirs",
        ));
        let s = SyncedStorage::start(memory(), options(Some(served.git_remote())))
            .await
            .unwrap();
        assert_eq!(s.head("main"), Some(theirs));
        assert_eq!(
            s.backend()
                .read_to_string(theirs, "default/features.yaml")
                .await
                .unwrap()
                .as_deref(),
            Some("v: 1\n")
        );
        assert_eq!(served.head(), Some(theirs), "nothing was pushed over it");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_branch_is_seeded_next_to_the_others() {
    let served = Served::file();
    let other = served
        .remote
        .cli_commit("develop", &[("x", Some("1"))], "develop");
    let s = SyncedStorage::start(memory(), options(Some(served.git_remote())))
        .await
        .unwrap();
    assert_eq!(served.head(), s.head("main"));
    assert_eq!(
        served.remote.head("develop").as_deref(),
        Some(other.trim()),
        "other branches are untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_are_pushed_and_acknowledged_after_the_remote_has_them() {
    for served in Served::both() {
        let s = SyncedStorage::start(memory(), options(Some(served.git_remote())))
            .await
            .unwrap();
        let out = write(&s, "default/features.yaml", "flags: []\n", s.head("main"))
            .await
            .unwrap();
        assert!(out.committed);
        assert_eq!(served.head(), out.revision, "{}", served.url());
        assert_eq!(s.head("main"), out.revision);
        assert!(s.status().last_push.is_some());
        served.remote.fsck();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_users_push_between_fetch_and_push_is_kept_and_the_write_replayed() {
    for served in Served::both() {
        let s = SyncedStorage::start(memory(), options(Some(served.git_remote())))
            .await
            .unwrap();
        let read = s.head("main").unwrap();
        // Another user pushes a change to another file; our view is now stale.
        let theirs =
            oid(&served
                .remote
                .cli_commit("main", &[("theirs.yaml", Some("t"))], "theirs"));
        let out = write(&s, "ours.yaml", "o", Some(read)).await.unwrap();
        let ours = out.revision.unwrap();
        assert_eq!(served.head(), Some(ours));
        let info = s.backend().commit_info(ours).await.unwrap();
        assert_eq!(
            info.parents,
            vec![theirs],
            "replayed on top of their commit, not forced over it"
        );
        assert_eq!(
            served.remote.show_file("main", "theirs.yaml").as_deref(),
            Some("t")
        );
        assert_eq!(
            served.remote.show_file("main", "ours.yaml").as_deref(),
            Some("o")
        );
        assert!(
            s.metrics()
                .push_replays
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 1
        );
        // The same resource changed by the other user since our revision: aborted.
        let read = s.head("main").unwrap();
        served.remote.cli_commit(
            "main",
            &[("ours.yaml", Some("their version"))],
            "theirs again",
        );
        let r = write(&s, "ours.yaml", "mine", Some(read)).await;
        assert!(matches!(r, Err(SyncError::Aborted { .. })), "{r:?}");
        assert_eq!(
            served.remote.show_file("main", "ours.yaml").as_deref(),
            Some("their version")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_and_polling_pick_up_another_users_push() {
    for served in Served::both() {
        let s = SyncedStorage::start(memory(), options(Some(served.git_remote())))
            .await
            .unwrap();
        let theirs = oid(&served
            .remote
            .cli_commit("main", &[("a", Some("1"))], "theirs"));
        let out = s.refresh().await.unwrap();
        assert!(out.changed);
        assert_eq!(out.head, Some(theirs));
        assert!(
            !s.refresh().await.unwrap().changed,
            "an unchanged remote is a no-op"
        );
        // Polling (every 1s, jittered) without any call.
        let (cancel, runner) = run_loop(&s);
        let next = oid(&served
            .remote
            .cli_commit("main", &[("b", Some("2"))], "theirs 2"));
        eventually(10, "polling serves the new commit", || {
            let h = s.head("main");
            async move { h == Some(next) }
        })
        .await;
        cancel.cancel();
        runner.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn many_writers_on_one_storage_and_two_storages_on_one_remote() {
    for served in Served::both() {
        let a = SyncedStorage::start(memory(), options(Some(served.git_remote())))
            .await
            .unwrap();
        let b = SyncedStorage::start(memory(), options(Some(served.git_remote())))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..12 {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                write(&s, &format!("w/{i}.yaml"), "x", None).await
            }));
        }
        let mut acked = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(o) => acked.push(o.revision.unwrap()),
                // The remote kept moving past the retries: allowed, and then not present.
                Err(SyncError::Unavailable(m)) => assert!(m.contains("kept moving"), "{m}"),
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert!(acked.len() >= 10, "most writes land: {}", acked.len());
        let history = served.remote.log("main");
        for a in &acked {
            assert_eq!(
                history.iter().filter(|h| oid(h) == *a).count(),
                1,
                "acknowledged write {a} is on the remote exactly once"
            );
        }
        // Linear history: nothing was force-pushed over.
        let commits = served.remote.log("main").len();
        assert_eq!(commits, acked.len() + 1);
        served.remote.fsck();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_that_keeps_moving_ends_in_unavailable() {
    #[derive(Debug)]
    struct Racer {
        remote: std::sync::Arc<BareRemote>,
        n: std::sync::atomic::AtomicUsize,
    }
    #[async_trait::async_trait]
    impl git_backend::WriteOp for Racer {
        async fn plan(
            &self,
            _: git_backend::WriteContext<'_>,
        ) -> Result<git_backend::Plan, git_backend::Refusal> {
            // Another user pushes every time we plan: our push always finds the remote moved.
            let n = self.n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let remote = self.remote.clone();
            tokio::task::spawn_blocking(move || {
                remote.cli_commit("main", &[(&format!("race{n}"), Some("x"))], "race")
            })
            .await
            .unwrap();
            Ok(git_backend::Plan::Commit {
                changes: vec![git_backend::Change::Put {
                    path: git_backend::RepoPath::new("ours").unwrap(),
                    content: b"o".to_vec(),
                }],
                message: "ours".into(),
            })
        }
    }
    let remote = std::sync::Arc::new(BareRemote::new());
    let mut o = options(Some(Remote::anonymous(remote.file_url())));
    o.max_push_attempts = 3;
    o.git_timeout = Duration::from_secs(60);
    let s = SyncedStorage::start(memory(), o).await.unwrap();
    let racer = Racer {
        remote: remote.clone(),
        n: Default::default(),
    };
    let r = s
        .write(remote_sync::WriteRequest {
            branch: "main",
            revision: None,
            op: &racer,
            author: None,
        })
        .await;
    match r {
        Err(SyncError::Unavailable(m)) => assert!(m.contains("kept moving"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(
        remote.show_file("main", "ours"),
        None,
        "the write did not land"
    );
    assert_eq!(racer.n.load(std::sync::atomic::Ordering::Relaxed), 3);
}
