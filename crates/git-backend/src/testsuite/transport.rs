//! Checks of the transport operations, run against every kind of remote of the harness.

use std::sync::Arc;

use crate::testsuite::checks::{commit, put};
use crate::testsuite::{Harness, TestRemote};
use crate::*;

fn main_ref() -> RefName {
    RefName::branch("main").unwrap()
}

fn tracking() -> Vec<String> {
    vec!["+refs/heads/main:refs/remotes/origin/main".to_owned()]
}

async fn push_main(
    b: &dyn GitBackend,
    r: &dyn TestRemote,
    local: ObjectId,
    expected: Expected,
) -> Result<()> {
    b.push(
        &r.remote(),
        PushUpdate {
            local: Some(local),
            remote_ref: main_ref(),
            expected,
        },
    )
    .await
}

/// A first push creates the branch on an empty remote; a fresh backend fetches it back whole.
pub async fn push_to_an_empty_remote_and_fetch_back<H: Harness>(h: Arc<H>) {
    for kind in h.remote_kinds() {
        let r = kind.create();
        let b = h.new_backend().await;
        assert!(
            b.ls_remote(&r.remote()).await.unwrap().is_empty(),
            "{}: an empty remote lists nothing",
            kind.name()
        );
        let c1 = commit(&*b, None, vec![put("README.md", "seed")], "seed").await;
        let c2 = commit(
            &*b,
            Some(c1),
            vec![put("default/features.yaml", "flags")],
            "flags",
        )
        .await;
        push_main(&*b, &*r, c2, Expected::Absent)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
        assert_eq!(r.head("main"), Some(c2), "{}", kind.name());
        r.fsck();
        let listed = b.ls_remote(&r.remote()).await.unwrap();
        assert!(
            listed
                .iter()
                .any(|x| x.name == main_ref() && x.target == c2),
            "{}: {listed:?}",
            kind.name()
        );

        let other = h.new_backend().await;
        let changed = other.fetch(&r.remote(), &tracking(), true).await.unwrap();
        let origin = RefName::remote_tracking("origin", "main").unwrap();
        assert_eq!(
            changed,
            vec![RefChange {
                name: origin.clone(),
                old: None,
                new: Some(c2)
            }],
            "{}",
            kind.name()
        );
        assert_eq!(other.resolve(&origin).await.unwrap(), Some(c2));
        assert_eq!(
            other
                .read_to_string(c2, "default/features.yaml")
                .await
                .unwrap()
                .as_deref(),
            Some("flags")
        );
        assert_eq!(
            other.log(c2, LogOptions::default()).await.unwrap().len(),
            2,
            "full history is fetched"
        );
        // A second fetch with nothing new changes nothing.
        assert!(
            other
                .fetch(&r.remote(), &tracking(), true)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

/// A push whose expectation does not match the remote sends nothing.
pub async fn push_with_a_stale_expectation_sends_nothing<H: Harness>(h: Arc<H>) {
    for kind in h.remote_kinds() {
        let r = kind.create();
        let b = h.new_backend().await;
        let c1 = commit(&*b, None, vec![put("f", "1")], "1").await;
        push_main(&*b, &*r, c1, Expected::Absent).await.unwrap();
        let c2 = commit(&*b, Some(c1), vec![put("f", "2")], "2").await;
        let r2 = push_main(&*b, &*r, c2, Expected::Absent).await;
        assert!(
            matches!(r2, Err(Error::RemoteMoved { .. })),
            "{}: {r2:?}",
            kind.name()
        );
        let r3 = push_main(&*b, &*r, c2, Expected::Value(c2)).await;
        assert!(
            matches!(r3, Err(Error::RemoteMoved { .. })),
            "{}: {r3:?}",
            kind.name()
        );
        let r4 = push_main(&*b, &*r, c2, Expected::Any).await;
        assert!(
            matches!(r4, Err(Error::InvalidInput(_))),
            "{}: pushes never go unchecked: {r4:?}",
            kind.name()
        );
        assert_eq!(r.head("main"), Some(c1), "{}", kind.name());
        push_main(&*b, &*r, c2, Expected::Value(c1)).await.unwrap();
        assert_eq!(r.head("main"), Some(c2), "{}", kind.name());
        r.fsck();
    }
}

/// Another user's push between our fetch and our push: ours is refused, a fetch brings
/// theirs, and a push on top of it succeeds.
pub async fn another_users_push_is_fetched<H: Harness>(h: Arc<H>) {
    for kind in h.remote_kinds() {
        let r = kind.create();
        let b = h.new_backend().await;
        let c1 = commit(&*b, None, vec![put("ours.yaml", "1")], "1").await;
        push_main(&*b, &*r, c1, Expected::Absent).await.unwrap();
        let theirs = r.commit_as_other_user("main", "theirs.yaml", "other");
        let ours = commit(&*b, Some(c1), vec![put("ours.yaml", "2")], "2").await;
        let err = push_main(&*b, &*r, ours, Expected::Value(c1)).await;
        assert!(
            matches!(err, Err(Error::RemoteMoved { .. })),
            "{}: {err:?}",
            kind.name()
        );
        assert_eq!(
            r.head("main"),
            Some(theirs),
            "{}: their commit is not overwritten",
            kind.name()
        );
        b.fetch(&r.remote(), &tracking(), true).await.unwrap();
        let theirs_ref = RefName::remote_tracking("origin", "main").unwrap();
        assert_eq!(b.resolve(&theirs_ref).await.unwrap(), Some(theirs));
        assert_eq!(
            b.subscribe().borrow().refs.get(&theirs_ref),
            Some(&theirs),
            "{}: the references state holds what the fetch moved when it returns",
            kind.name()
        );
        assert!(b.is_ancestor(c1, theirs).await.unwrap());
        let rebased = commit(&*b, Some(theirs), vec![put("ours.yaml", "2")], "2 again").await;
        push_main(&*b, &*r, rebased, Expected::Value(theirs))
            .await
            .unwrap();
        assert_eq!(r.head("main"), Some(rebased));
        assert_eq!(
            b.read_to_string(rebased, "theirs.yaml")
                .await
                .unwrap()
                .as_deref(),
            Some("other")
        );
        r.fsck();
    }
}

/// A fetch that follows: the local branch is fast-forwarded to the remote's new head in the
/// same call; a local branch that is not behind (it holds commits the remote lacks, or does
/// not exist) is left as it is, and the fetch succeeds all the same.
pub async fn fetch_and_follow_moves_only_forward<H: Harness>(h: Arc<H>) {
    for kind in h.remote_kinds() {
        let name = kind.name().to_owned();
        let r = kind.create();
        let b = h.new_backend().await;
        let theirs_ref = RefName::remote_tracking("origin", "main").unwrap();
        let follow = |local: RefName| Follow {
            local,
            tracking: theirs_ref.clone(),
            message: "follow".into(),
        };
        let c1 = commit(&*b, None, vec![put("ours.yaml", "1")], "1").await;
        b.update_ref(RefUpdate {
            name: main_ref(),
            new: Some(c1),
            expected: Expected::Absent,
            message: "suite".into(),
        })
        .await
        .unwrap();
        push_main(&*b, &*r, c1, Expected::Absent).await.unwrap();
        b.fetch(&r.remote(), &tracking(), true).await.unwrap();

        // Behind: followed.
        let theirs = r.commit_as_other_user("main", "theirs.yaml", "other");
        let out = b
            .fetch_and_follow(&r.remote(), &tracking(), true, follow(main_ref()))
            .await
            .unwrap();
        assert!(out.followed, "{name}: {out:?}");
        assert!(
            out.changes
                .iter()
                .any(|c| c.name == theirs_ref && c.new == Some(theirs)),
            "{name}: {out:?}"
        );
        assert_eq!(
            b.resolve(&main_ref()).await.unwrap(),
            Some(theirs),
            "{name}"
        );
        assert_eq!(
            b.subscribe().borrow().refs.get(&main_ref()),
            Some(&theirs),
            "{name}: the references state holds the move when the call returns"
        );

        // Nothing new: nothing moves.
        let out = b
            .fetch_and_follow(&r.remote(), &tracking(), true, follow(main_ref()))
            .await
            .unwrap();
        assert_eq!(out, Fetched::default(), "{name}");

        // Diverged (a local commit the remote lacks, and a new remote commit): fetched, not
        // followed, the local commit kept.
        let ours = commit(&*b, Some(theirs), vec![put("ours.yaml", "2")], "2").await;
        b.update_ref(RefUpdate {
            name: main_ref(),
            new: Some(ours),
            expected: Expected::Value(theirs),
            message: "suite".into(),
        })
        .await
        .unwrap();
        let theirs2 = r.commit_as_other_user("main", "theirs.yaml", "other 2");
        let out = b
            .fetch_and_follow(&r.remote(), &tracking(), true, follow(main_ref()))
            .await
            .unwrap();
        assert!(!out.followed, "{name}: {out:?}");
        assert_eq!(
            b.resolve(&theirs_ref).await.unwrap(),
            Some(theirs2),
            "{name}"
        );
        assert_eq!(b.resolve(&main_ref()).await.unwrap(), Some(ours), "{name}");

        // A local branch that does not exist is not created.
        let other = RefName::branch("other").unwrap();
        let theirs3 = r.commit_as_other_user("main", "theirs.yaml", "other 3");
        let out = b
            .fetch_and_follow(&r.remote(), &tracking(), true, follow(other.clone()))
            .await
            .unwrap();
        assert!(!out.followed, "{name}: {out:?}");
        assert_eq!(
            b.resolve(&theirs_ref).await.unwrap(),
            Some(theirs3),
            "{name}"
        );
        assert_eq!(b.resolve(&other).await.unwrap(), None, "{name}");
        r.fsck();
    }
}

/// Two writers push different children of the same commit at once: exactly one wins.
pub async fn two_writers_racing_on_one_remote_ref<H: Harness>(h: Arc<H>) {
    for kind in h.remote_kinds() {
        for round in 0..3 {
            let r = kind.create();
            let a = h.new_backend().await;
            let base = commit(&*a, None, vec![put("f", "base")], "base").await;
            push_main(&*a, &*r, base, Expected::Absent).await.unwrap();
            let b = h.new_backend().await;
            b.fetch(&r.remote(), &tracking(), false).await.unwrap();
            let ca = commit(&*a, Some(base), vec![put("a", "a")], "a").await;
            let cb = commit(&*b, Some(base), vec![put("b", "b")], "b").await;
            let remote_a = r.remote();
            let remote_b = r.remote();
            let (ra, rb) = tokio::join!(
                a.push(
                    &remote_a,
                    PushUpdate {
                        local: Some(ca),
                        remote_ref: main_ref(),
                        expected: Expected::Value(base)
                    }
                ),
                b.push(
                    &remote_b,
                    PushUpdate {
                        local: Some(cb),
                        remote_ref: main_ref(),
                        expected: Expected::Value(base)
                    }
                ),
            );
            let wins = [ra.is_ok(), rb.is_ok()].iter().filter(|w| **w).count();
            assert_eq!(
                wins,
                1,
                "{} round {round}: exactly one push wins: {ra:?} {rb:?}",
                kind.name()
            );
            let head = r.head("main").unwrap();
            assert_eq!(head, if ra.is_ok() { ca } else { cb });
            let loser = if ra.is_ok() { rb } else { ra };
            assert!(
                matches!(
                    loser,
                    Err(Error::RemoteMoved { .. }) | Err(Error::Rejected { .. })
                ),
                "{}: the loser is told the remote moved: {loser:?}",
                kind.name()
            );
            r.fsck();
        }
    }
}

/// A push refused by a server hook is an error, and the remote is unchanged.
pub async fn server_side_rejection_is_an_error<H: Harness>(h: Arc<H>) {
    for kind in h.remote_kinds().into_iter().filter(|k| k.runs_hooks()) {
        let r = kind.create();
        let b = h.new_backend().await;
        let c1 = commit(&*b, None, vec![put("f", "1")], "1").await;
        push_main(&*b, &*r, c1, Expected::Absent).await.unwrap();
        r.reject_pushes("branch is protected");
        let c2 = commit(&*b, Some(c1), vec![put("f", "2")], "2").await;
        let err = push_main(&*b, &*r, c2, Expected::Value(c1)).await;
        match err {
            Err(Error::Rejected { reason, .. }) => assert!(!reason.is_empty(), "{}", kind.name()),
            other => panic!("{}: expected a rejection, got {other:?}", kind.name()),
        }
        assert_eq!(r.head("main"), Some(c1), "{}", kind.name());
    }
}

/// Remote branches are created and deleted with compare-and-swap, and a pruning fetch
/// removes the local tracking reference of a deleted branch.
pub async fn deleting_remote_branches_and_pruning<H: Harness>(h: Arc<H>) {
    for kind in h.remote_kinds() {
        let r = kind.create();
        let b = h.new_backend().await;
        let c1 = commit(&*b, None, vec![put("f", "1")], "1").await;
        let feature = RefName::branch("flipt/prod/feature").unwrap();
        push_main(&*b, &*r, c1, Expected::Absent).await.unwrap();
        b.push(
            &r.remote(),
            PushUpdate {
                local: Some(c1),
                remote_ref: feature.clone(),
                expected: Expected::Absent,
            },
        )
        .await
        .unwrap();
        assert_eq!(r.head("flipt/prod/feature"), Some(c1));
        let spec = vec!["+refs/heads/flipt/prod/*:refs/remotes/origin/flipt/prod/*".to_owned()];
        b.fetch(&r.remote(), &spec, true).await.unwrap();
        let tracked = RefName::remote_tracking("origin", "flipt/prod/feature").unwrap();
        assert_eq!(b.resolve(&tracked).await.unwrap(), Some(c1));
        assert_eq!(b.subscribe().borrow().refs.get(&tracked), Some(&c1));
        // A deletion that expects another value is refused.
        let c2 = commit(&*b, Some(c1), vec![put("f", "2")], "2").await;
        let wrong = b
            .push(
                &r.remote(),
                PushUpdate {
                    local: None,
                    remote_ref: feature.clone(),
                    expected: Expected::Value(c2),
                },
            )
            .await;
        assert!(
            matches!(wrong, Err(Error::RemoteMoved { .. })),
            "{}: {wrong:?}",
            kind.name()
        );
        b.push(
            &r.remote(),
            PushUpdate {
                local: None,
                remote_ref: feature.clone(),
                expected: Expected::Value(c1),
            },
        )
        .await
        .unwrap();
        assert_eq!(r.head("flipt/prod/feature"), None, "{}", kind.name());
        let changes = b.fetch(&r.remote(), &spec, true).await.unwrap();
        assert_eq!(
            changes,
            vec![RefChange {
                name: tracked.clone(),
                old: Some(c1),
                new: None
            }],
            "{}",
            kind.name()
        );
        assert_eq!(b.resolve(&tracked).await.unwrap(), None);
        assert!(
            !b.subscribe().borrow().refs.contains_key(&tracked),
            "{}: the references state loses what the fetch pruned when it returns",
            kind.name()
        );
        assert_eq!(r.head("main"), Some(c1), "pruning touched nothing else");
    }
}

/// Wildcard refspecs track every matching branch.
pub async fn wildcard_fetch_tracks_branches<H: Harness>(h: Arc<H>) {
    for kind in h.remote_kinds() {
        let r = kind.create();
        let b = h.new_backend().await;
        let c1 = commit(&*b, None, vec![put("f", "1")], "1").await;
        push_main(&*b, &*r, c1, Expected::Absent).await.unwrap();
        for name in ["flipt/prod/a", "flipt/prod/b", "flipt/staging/c"] {
            b.push(
                &r.remote(),
                PushUpdate {
                    local: Some(c1),
                    remote_ref: RefName::branch(name).unwrap(),
                    expected: Expected::Absent,
                },
            )
            .await
            .unwrap();
        }
        let other = h.new_backend().await;
        let specs = vec![
            "+refs/heads/main:refs/remotes/origin/main".to_owned(),
            "+refs/heads/flipt/prod/*:refs/remotes/origin/flipt/prod/*".to_owned(),
        ];
        let changes = other.fetch(&r.remote(), &specs, true).await.unwrap();
        let mut names: Vec<String> = changes.iter().map(|c| c.name.to_string()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "refs/remotes/origin/flipt/prod/a",
                "refs/remotes/origin/flipt/prod/b",
                "refs/remotes/origin/main"
            ],
            "{}",
            kind.name()
        );
        assert!(
            other.list_refs("refs/heads/").await.unwrap().is_empty(),
            "fetch touches only the destinations"
        );
    }
}

/// A remote that does not exist gives an error, not a panic or a hang.
pub async fn unreachable_remote_is_an_error<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let missing = Remote::anonymous("file:///nonexistent/flipt-storage-suite/remote.git");
    assert!(b.ls_remote(&missing).await.is_err());
    assert!(b.fetch(&missing, &tracking(), true).await.is_err());
    let c = commit(&*b, None, vec![put("f", "1")], "1").await;
    assert!(
        b.push(
            &missing,
            PushUpdate {
                local: Some(c),
                remote_ref: main_ref(),
                expected: Expected::Absent
            }
        )
        .await
        .is_err()
    );
    let closed = Remote::anonymous("http://127.0.0.1:9/remote.git");
    let err = b.ls_remote(&closed).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
}
