//! Checks of the local operations: references, commits, reads, diffs, history.

use std::sync::Arc;
use std::time::Duration;

use crate::testsuite::Harness;
use crate::*;

pub(crate) fn sig() -> Signature {
    Signature {
        name: "Suite".into(),
        email: "suite@example.com".into(),
        time: Some(Timestamp {
            seconds: 1_700_000_000,
            offset_minutes: 60,
        }),
    }
}

/// A `Put` change.
pub fn put(path: &str, content: impl AsRef<[u8]>) -> Change {
    Change::Put {
        path: RepoPath::new(path).unwrap(),
        content: content.as_ref().to_vec(),
    }
}

/// A `Delete` change.
pub fn del(path: &str) -> Change {
    Change::Delete {
        path: RepoPath::new(path).unwrap(),
    }
}

/// Creates a commit on `parent` with `changes`.
pub async fn commit(
    b: &dyn GitBackend,
    parent: Option<ObjectId>,
    changes: Vec<Change>,
    message: &str,
) -> ObjectId {
    b.create_commit(CommitRequest {
        parent,
        changes,
        message: message.into(),
        author: sig(),
        committer: sig(),
    })
    .await
    .unwrap_or_else(|e| panic!("{}: commit failed: {e}", b.kind()))
}

/// Moves `refs/heads/<branch>` from `expected` to `new`.
pub async fn set_branch(
    b: &dyn GitBackend,
    branch: &str,
    new: ObjectId,
    expected: Option<ObjectId>,
) {
    b.update_ref(RefUpdate {
        name: RefName::branch(branch).unwrap(),
        new: Some(new),
        expected: Expected::from_option(expected),
        message: "suite".into(),
    })
    .await
    .unwrap_or_else(|e| panic!("{}: ref update failed: {e}", b.kind()));
}

fn paths(entries: &[TreeEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.path.as_str()).collect()
}

async fn file(b: &dyn GitBackend, c: ObjectId, path: &str) -> Option<Vec<u8>> {
    b.read_file(c, &RepoPath::new(path).unwrap())
        .await
        .unwrap()
        .map(|f| f.content)
}

/// The well-known id of the empty tree.
pub const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// A new repository has no references and an empty state.
pub async fn empty_repository<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    assert_eq!(
        b.resolve(&RefName::branch("main").unwrap()).await.unwrap(),
        None
    );
    assert!(b.list_refs("refs/").await.unwrap().is_empty());
    assert!(b.subscribe().borrow().refs.is_empty());
    assert!(b.refresh_refs().await.unwrap().refs.is_empty());
}

/// A root commit, read back every way.
pub async fn root_commit_and_reads<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let c = commit(
        &*b,
        None,
        vec![
            put("README.md", "hello\n"),
            put("default/features.yaml", "version: \"1.6\"\n"),
        ],
        "add initial README",
    )
    .await;
    let info = b.commit_info(c).await.unwrap();
    assert_eq!(info.id, c);
    assert!(info.parents.is_empty());
    assert_eq!(info.message, "add initial README");
    assert_eq!(info.author.name, "Suite");
    assert_eq!(info.author.email, "suite@example.com");
    assert_eq!(info.author.time, sig().time);
    assert_eq!(
        file(&*b, c, "README.md").await.as_deref(),
        Some(&b"hello\n"[..])
    );
    assert_eq!(file(&*b, c, "missing").await, None);
    assert_eq!(
        file(&*b, c, "default").await,
        None,
        "a directory is not a file"
    );
    let root = b.list_tree(c, None, false).await.unwrap();
    assert_eq!(paths(&root), ["README.md", "default"]);
    assert_eq!(root[0].kind, EntryKind::File);
    assert_eq!(root[1].kind, EntryKind::Directory);
    let blob = b
        .read_file(c, &RepoPath::new("README.md").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(blob.id, root[0].id);
    assert_eq!(b.read_blob(blob.id).await.unwrap(), b"hello\n");
    // Creating a commit moves no reference.
    assert!(b.list_refs("refs/").await.unwrap().is_empty());
}

/// Directories are created for nested paths and listed level by level or recursively.
pub async fn nested_and_deep_paths<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let deep = (0..40)
        .map(|i| format!("d{i}"))
        .collect::<Vec<_>>()
        .join("/")
        + "/leaf.yaml";
    let c = commit(
        &*b,
        None,
        vec![
            put("a/b/c.yaml", "c"),
            put("a/d.yaml", "d"),
            put(&deep, "deep"),
        ],
        "nested",
    )
    .await;
    assert_eq!(file(&*b, c, &deep).await.as_deref(), Some(&b"deep"[..]));
    let a = b
        .list_tree(c, Some(&RepoPath::new("a").unwrap()), false)
        .await
        .unwrap();
    assert_eq!(paths(&a), ["a/b", "a/d.yaml"]);
    let all = b.list_tree(c, None, true).await.unwrap();
    assert_eq!(paths(&all), ["a/b/c.yaml", "a/d.yaml", deep.as_str()]);
    let under = b
        .list_tree(c, Some(&RepoPath::new("a").unwrap()), true)
        .await
        .unwrap();
    assert_eq!(paths(&under), ["a/b/c.yaml", "a/d.yaml"]);
    assert!(
        b.list_tree(c, Some(&RepoPath::new("nope").unwrap()), true)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        b.list_tree(c, Some(&RepoPath::new("a/d.yaml").unwrap()), false)
            .await
            .unwrap()
            .is_empty()
    );
    // A change deep down keeps unrelated subtrees as they were.
    let c2 = commit(&*b, Some(c), vec![put("a/b/c.yaml", "c2")], "change").await;
    let before = b.list_tree(c, None, false).await.unwrap();
    let after = b.list_tree(c2, None, false).await.unwrap();
    assert_eq!(before[1], after[1], "the d0 subtree is reused");
    assert_ne!(before[0].id, after[0].id);
}

/// Removing the last file of a directory removes the directory (git stores no empty ones).
pub async fn deleting_the_last_file_removes_its_directory<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let c = commit(
        &*b,
        None,
        vec![put("a/x/y/z.yaml", "1"), put("b/keep.yaml", "2")],
        "one",
    )
    .await;
    let c2 = commit(&*b, Some(c), vec![del("a/x/y/z.yaml")], "two").await;
    assert_eq!(paths(&b.list_tree(c2, None, false).await.unwrap()), ["b"]);
    assert_eq!(
        paths(&b.list_tree(c2, None, true).await.unwrap()),
        ["b/keep.yaml"]
    );
}

/// Deleting every file gives the empty tree, which is a valid commit.
pub async fn deleting_everything_leaves_the_empty_tree<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let c = commit(
        &*b,
        None,
        vec![put("ns1/features.yaml", "1"), put("ns2/features.yaml", "2")],
        "one",
    )
    .await;
    let c2 = commit(
        &*b,
        Some(c),
        vec![del("ns1/features.yaml"), del("ns2/features.yaml")],
        "two",
    )
    .await;
    assert_eq!(
        b.commit_info(c2).await.unwrap().tree.to_string(),
        EMPTY_TREE
    );
    assert!(b.list_tree(c2, None, true).await.unwrap().is_empty());
    let empty = commit(&*b, None, vec![], "empty root").await;
    assert_eq!(
        b.commit_info(empty).await.unwrap().tree.to_string(),
        EMPTY_TREE
    );
}

/// Names with spaces and non-ASCII characters round-trip.
pub async fn unicode_and_spaces_in_names<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let names = [
        "with space/file name.yaml",
        "ünïcödé/日本語.yaml",
        "emoji 🚩/flag.yaml",
        "a,b-c_d/x.yml",
    ];
    let c = commit(
        &*b,
        None,
        names.iter().map(|n| put(n, *n)).collect(),
        "names",
    )
    .await;
    for n in names {
        assert_eq!(file(&*b, c, n).await.as_deref(), Some(n.as_bytes()), "{n}");
    }
    let mut sorted: Vec<&str> = names.to_vec();
    sorted.sort();
    assert_eq!(paths(&b.list_tree(c, None, true).await.unwrap()), sorted);
}

/// Large and binary files round-trip byte for byte.
pub async fn large_files_round_trip<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let big: Vec<u8> = (0..6 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let c = commit(
        &*b,
        None,
        vec![put("big.bin", &big), put("empty.yaml", "")],
        "big",
    )
    .await;
    assert_eq!(file(&*b, c, "big.bin").await.unwrap(), big);
    assert_eq!(file(&*b, c, "empty.yaml").await.unwrap(), b"");
}

/// Impossible changes are refused and nothing is created.
pub async fn bad_commit_requests_are_refused<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let c = commit(&*b, None, vec![put("dir/file.yaml", "x")], "one").await;
    let req = |changes| CommitRequest {
        parent: Some(c),
        changes,
        message: "m".into(),
        author: sig(),
        committer: sig(),
    };
    assert!(matches!(
        b.create_commit(req(vec![del("missing.yaml")])).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        b.create_commit(req(vec![put("dir", "x")])).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        b.create_commit(req(vec![put("dir/file.yaml/below", "x")]))
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        b.create_commit(req(vec![del("dir")])).await,
        Err(Error::InvalidInput(_) | Error::NotFound(_))
    ));
    let unknown = ObjectId::parse("1111111111111111111111111111111111111111").unwrap();
    let r = b
        .create_commit(CommitRequest {
            parent: Some(unknown),
            changes: vec![],
            message: "m".into(),
            author: sig(),
            committer: sig(),
        })
        .await;
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
}

/// Many changes in one commit, including a put and a delete of the same path in order.
pub async fn many_changes_in_one_commit<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let changes: Vec<Change> = (0..300)
        .map(|i| put(&format!("ns{}/f{i}.yaml", i % 7), format!("{i}")))
        .collect();
    let c = commit(&*b, None, changes, "many").await;
    assert_eq!(b.list_tree(c, None, true).await.unwrap().len(), 300);
    let c2 = commit(
        &*b,
        Some(c),
        vec![
            put("ns0/f0.yaml", "new"),
            del("ns0/f0.yaml"),
            put("ns0/f0.yaml", "last"),
        ],
        "order",
    )
    .await;
    assert_eq!(
        file(&*b, c2, "ns0/f0.yaml").await.as_deref(),
        Some(&b"last"[..])
    );
}

/// Diffs list added, modified and deleted files.
pub async fn diffs_between_commits<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let c1 = commit(
        &*b,
        None,
        vec![
            put("a.yaml", "1"),
            put("d/b.yaml", "2"),
            put("d/c.yaml", "3"),
        ],
        "one",
    )
    .await;
    let c2 = commit(
        &*b,
        Some(c1),
        vec![put("a.yaml", "1b"), del("d/b.yaml"), put("e/new.yaml", "4")],
        "two",
    )
    .await;
    let d = b.diff(Some(c1), c2).await.unwrap();
    let summary: Vec<(&str, ChangeKind)> = d.iter().map(|e| (e.path.as_str(), e.kind)).collect();
    assert_eq!(
        summary,
        [
            ("a.yaml", ChangeKind::Modified),
            ("d/b.yaml", ChangeKind::Deleted),
            ("e/new.yaml", ChangeKind::Added)
        ]
    );
    assert!(d[0].old.is_some() && d[0].new.is_some() && d[0].old != d[0].new);
    assert!(d[1].new.is_none() && d[2].old.is_none());
    let from_empty = b.diff(None, c1).await.unwrap();
    assert_eq!(from_empty.len(), 3);
    assert!(from_empty.iter().all(|e| e.kind == ChangeKind::Added));
    assert!(b.diff(Some(c2), c2).await.unwrap().is_empty());
}

/// Changed paths: the tree difference for one commit on top, the union over the commits in
/// between along history (a path changed and changed back included), the tree difference
/// between unrelated commits, nothing between a commit and itself, and not found for a
/// missing commit.
pub async fn changed_paths_between_commits<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let c0 = commit(
        &*b,
        None,
        vec![put("a.yaml", "0"), put("d/b.yaml", "0"), put("z.yaml", "0")],
        "c0",
    )
    .await;
    let c1 = commit(
        &*b,
        Some(c0),
        vec![put("a.yaml", "1"), del("d/b.yaml")],
        "c1",
    )
    .await;
    assert_eq!(
        b.changed_paths(c0, c1).await.unwrap(),
        ["a.yaml", "d/b.yaml"]
    );
    // z.yaml changed and changed back: not in the trees' difference, in the union.
    let c2 = commit(
        &*b,
        Some(c1),
        vec![put("z.yaml", "2"), put("e/n.yaml", "2")],
        "c2",
    )
    .await;
    let c3 = commit(&*b, Some(c2), vec![put("z.yaml", "0")], "c3").await;
    assert!(
        !b.diff(Some(c0), c3)
            .await
            .unwrap()
            .iter()
            .any(|d| d.path == "z.yaml")
    );
    assert_eq!(
        b.changed_paths(c0, c3).await.unwrap(),
        ["a.yaml", "d/b.yaml", "e/n.yaml", "z.yaml"]
    );
    assert_eq!(b.changed_paths(c2, c3).await.unwrap(), ["z.yaml"]);
    // A branch off c0 that is no ancestor of c3: the trees' difference.
    let side = commit(&*b, Some(c0), vec![put("s.yaml", "s")], "side").await;
    assert_eq!(
        b.changed_paths(side, c3).await.unwrap(),
        ["a.yaml", "d/b.yaml", "e/n.yaml", "s.yaml"]
    );
    assert!(b.changed_paths(c3, c3).await.unwrap().is_empty());
    let missing = ObjectId::parse("0123456789012345678901234567890123456789").unwrap();
    for (from, to) in [(missing, c3), (c0, missing)] {
        let err = b.changed_paths(from, to).await.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{}: {err}", b.kind());
    }
}

/// History is newest first, with limits, hidden commits and paging.
pub async fn history_walks<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let mut ids = vec![commit(&*b, None, vec![put("f", "0")], "c0").await];
    for i in 1..6 {
        let id = commit(
            &*b,
            Some(ids[i - 1]),
            vec![put("f", format!("{i}"))],
            &format!("c{i}"),
        )
        .await;
        ids.push(id);
    }
    let all = b.log(ids[5], LogOptions::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.id).collect::<Vec<_>>(),
        ids.iter().rev().copied().collect::<Vec<_>>()
    );
    let two = b
        .log(
            ids[5],
            LogOptions {
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        two.iter().map(|c| c.message.as_str()).collect::<Vec<_>>(),
        ["c5", "c4"]
    );
    let hidden = b
        .log(
            ids[5],
            LogOptions {
                hide: vec![ids[2]],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(hidden.len(), 3);
    let page = b
        .log(
            ids[5],
            LogOptions {
                after: Some(ids[4]),
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|c| c.message.as_str()).collect::<Vec<_>>(),
        ["c3", "c2"]
    );
}

/// Ancestry answers.
pub async fn ancestry<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let base = commit(&*b, None, vec![put("f", "0")], "base").await;
    let left = commit(&*b, Some(base), vec![put("f", "l")], "left").await;
    let right = commit(&*b, Some(base), vec![put("f", "r")], "right").await;
    assert!(b.is_ancestor(base, left).await.unwrap());
    assert!(b.is_ancestor(left, left).await.unwrap());
    assert!(!b.is_ancestor(left, base).await.unwrap());
    assert!(!b.is_ancestor(left, right).await.unwrap());
}

/// References move only from the value the caller expects.
pub async fn compare_and_swap_on_references<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let main = RefName::branch("main").unwrap();
    let c1 = commit(&*b, None, vec![put("f", "1")], "1").await;
    let c2 = commit(&*b, Some(c1), vec![put("f", "2")], "2").await;
    let upd = |new, expected| RefUpdate {
        name: main.clone(),
        new,
        expected,
        message: "t".into(),
    };
    b.update_ref(upd(Some(c1), Expected::Absent)).await.unwrap();
    assert!(matches!(
        b.update_ref(upd(Some(c2), Expected::Absent)).await,
        Err(Error::RefMoved { .. })
    ));
    assert!(matches!(
        b.update_ref(upd(Some(c2), Expected::Value(c2))).await,
        Err(Error::RefMoved { .. })
    ));
    assert_eq!(b.resolve(&main).await.unwrap(), Some(c1));
    b.update_ref(upd(Some(c2), Expected::Value(c1)))
        .await
        .unwrap();
    assert_eq!(b.resolve(&main).await.unwrap(), Some(c2));
    b.update_ref(upd(Some(c1), Expected::Any)).await.unwrap();
    assert!(matches!(
        b.update_ref(upd(None, Expected::Value(c2))).await,
        Err(Error::RefMoved { .. })
    ));
    b.update_ref(upd(None, Expected::Value(c1))).await.unwrap();
    assert_eq!(b.resolve(&main).await.unwrap(), None);
    assert!(matches!(
        b.update_ref(upd(None, Expected::Value(c1))).await,
        Err(Error::RefMoved { .. })
    ));
    // Other references and prefixes.
    set_branch(&*b, "flipt/prod/a", c1, None).await;
    set_branch(&*b, "flipt/prod/b", c2, None).await;
    b.update_ref(RefUpdate {
        name: RefName::remote_tracking("origin", "main").unwrap(),
        new: Some(c2),
        expected: Expected::Absent,
        message: "t".into(),
    })
    .await
    .unwrap();
    let heads = b.list_refs("refs/heads/").await.unwrap();
    assert_eq!(
        heads.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["refs/heads/flipt/prod/a", "refs/heads/flipt/prod/b"]
    );
    assert_eq!(b.list_refs("refs/remotes/").await.unwrap().len(), 1);
    assert_eq!(b.list_refs("refs/").await.unwrap().len(), 3);
    // A reference to a commit that does not exist is refused.
    let unknown = ObjectId::parse("2222222222222222222222222222222222222222").unwrap();
    assert!(
        b.update_ref(RefUpdate {
            name: main.clone(),
            new: Some(unknown),
            expected: Expected::Any,
            message: "t".into()
        })
        .await
        .is_err()
    );
}

/// `commit_to` commits and moves the reference in one call, or moves nothing when the
/// reference does not hold what was expected (the commit then exists, unreferenced); the
/// references state has the move when the call returns.
pub async fn commit_to_moves_the_reference_or_nothing<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let main = RefName::branch("main").unwrap();
    let sig = Signature::now("t", "t@example.com");
    let request = |parent, content: &str| CommitRequest {
        parent,
        changes: vec![put("f", content)],
        message: content.into(),
        author: sig.clone(),
        committer: sig.clone(),
    };
    let c1 = b
        .commit_to(
            request(None, "1"),
            main.clone(),
            Expected::Absent,
            "t".into(),
        )
        .await
        .unwrap();
    assert_eq!(b.resolve(&main).await.unwrap(), Some(c1));
    assert_eq!(b.subscribe().borrow().refs.get(&main), Some(&c1));
    assert_eq!(
        b.read_to_string(c1, "f").await.unwrap().as_deref(),
        Some("1")
    );
    let c2 = b
        .commit_to(
            request(Some(c1), "2"),
            main.clone(),
            Expected::Value(c1),
            "t".into(),
        )
        .await
        .unwrap();
    assert_eq!(b.commit_info(c2).await.unwrap().parents, vec![c1]);
    assert_eq!(b.subscribe().borrow().refs.get(&main), Some(&c2));
    // A stale expectation: refused, the reference stays.
    let stale = b
        .commit_to(
            request(Some(c1), "3"),
            main.clone(),
            Expected::Value(c1),
            "t".into(),
        )
        .await;
    assert!(matches!(stale, Err(Error::RefMoved { .. })), "{stale:?}");
    assert_eq!(b.resolve(&main).await.unwrap(), Some(c2));
    assert_eq!(b.subscribe().borrow().refs.get(&main), Some(&c2));
    // A bad request moves nothing either.
    let bad = b
        .commit_to(
            CommitRequest {
                changes: vec![Change::Delete {
                    path: RepoPath::new("missing").unwrap(),
                }],
                ..request(Some(c2), "4")
            },
            main.clone(),
            Expected::Value(c2),
            "t".into(),
        )
        .await;
    assert!(matches!(bad, Err(Error::NotFound(_))), "{bad:?}");
    assert_eq!(b.resolve(&main).await.unwrap(), Some(c2));
}

/// `fast_forward` moves a reference to a commit that contains its value (one commit on top,
/// or several), refuses anything else without moving it, and fails on a reference that does
/// not hold the expected value.
pub async fn fast_forward_moves_only_forward<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let main = RefName::branch("main").unwrap();
    let c1 = commit(&*b, None, vec![put("f", "1")], "1").await;
    let c2 = commit(&*b, Some(c1), vec![put("f", "2")], "2").await;
    let c3 = commit(&*b, Some(c2), vec![put("f", "3")], "3").await;
    let side = commit(&*b, Some(c1), vec![put("g", "side")], "side").await;
    set_branch(&*b, "main", c1, None).await;
    let ff = |from, to| b.fast_forward(main.clone(), from, to, "ff".into());
    assert!(ff(c1, c2).await.unwrap());
    assert_eq!(b.subscribe().borrow().refs.get(&main), Some(&c2));
    // Not a fast-forward: backwards, or to a commit beside it.
    assert!(!ff(c2, c1).await.unwrap());
    assert!(!ff(c2, side).await.unwrap());
    assert_eq!(b.resolve(&main).await.unwrap(), Some(c2));
    // The reference does not hold `from`.
    assert!(matches!(ff(c1, c3).await, Err(Error::RefMoved { .. })));
    assert_eq!(b.resolve(&main).await.unwrap(), Some(c2));
    // Several commits ahead, and to itself.
    set_branch(&*b, "main", c1, Some(c2)).await;
    assert!(ff(c1, c3).await.unwrap());
    assert!(ff(c3, c3).await.unwrap());
    assert_eq!(b.resolve(&main).await.unwrap(), Some(c3));
    let missing = ObjectId::from_bytes([7; 20]);
    assert!(matches!(ff(c3, missing).await, Err(Error::NotFound(_))));
}

/// Writers that race on one branch with compare-and-swap (`update_ref` and `commit_to`):
/// every commit that won is in the history exactly once, every loser was told so, and the
/// references state ends as the references on disk.
pub async fn concurrent_writers_never_lose_a_commit<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let root = commit(&*b, None, vec![put("f", "root")], "root").await;
    set_branch(&*b, "main", root, None).await;
    let writers = 8;
    let per_writer = 6;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            let mut conflicts = 0;
            while won.len() < per_writer {
                let head = b.branch_head("main").await.unwrap().unwrap();
                let path = format!("w{w}/{}.yaml", won.len());
                let message = format!("w{w}-{}", won.len());
                // Half the writers commit and move the reference in one call.
                let r = if w % 2 == 0 {
                    let c = commit(&*b, Some(head), vec![put(&path, "x")], &message).await;
                    b.update_ref(RefUpdate {
                        name: RefName::branch("main").unwrap(),
                        new: Some(c),
                        expected: Expected::Value(head),
                        message: "w".into(),
                    })
                    .await
                    .map(|()| c)
                } else {
                    let sig = Signature::now("t", "t@example.com");
                    b.commit_to(
                        CommitRequest {
                            parent: Some(head),
                            changes: vec![put(&path, "x")],
                            message,
                            author: sig.clone(),
                            committer: sig,
                        },
                        RefName::branch("main").unwrap(),
                        Expected::Value(head),
                        "w".into(),
                    )
                    .await
                };
                match r {
                    Ok(c) => won.push(c),
                    Err(Error::RefMoved { .. }) => conflicts += 1,
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
            (won, conflicts)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap().0);
    }
    let head = b.branch_head("main").await.unwrap().unwrap();
    let history: Vec<ObjectId> = b
        .log(head, LogOptions::default())
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(history.len(), writers * per_writer + 1);
    for w in &winners {
        assert_eq!(history.iter().filter(|h| *h == w).count(), 1);
    }
    assert_eq!(
        b.list_tree(head, None, true).await.unwrap().len(),
        writers * per_writer + 1
    );
    // The references state took the moves in the order they were made.
    let state = b.subscribe().borrow().refs.clone();
    assert_eq!(state, b.refresh_refs().await.unwrap().refs);
    assert_eq!(state.get(&RefName::branch("main").unwrap()), Some(&head));
}

/// Subscribers see reference changes.
pub async fn subscribers_see_reference_changes<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let mut rx = b.subscribe();
    let start = rx.borrow().version;
    let c = commit(&*b, None, vec![put("f", "1")], "1").await;
    set_branch(&*b, "main", c, None).await;
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if rx
                .borrow_and_update()
                .refs
                .get(&RefName::branch("main").unwrap())
                == Some(&c)
            {
                break;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("the subscriber saw refs/heads/main move within 15s");
    assert!(rx.borrow().version > start);
    // A change made through the backend is in the state when the call returns.
    let c2 = commit(&*b, Some(c), vec![put("f", "2")], "2").await;
    set_branch(&*b, "main", c2, Some(c)).await;
    assert_eq!(
        b.subscribe()
            .borrow()
            .refs
            .get(&RefName::branch("main").unwrap()),
        Some(&c2),
        "the state holds the update as soon as update_ref returned"
    );
}

/// Reads run while commits are made.
pub async fn concurrent_readers_while_writing<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let mut head = commit(&*b, None, vec![put("f", "0")], "0").await;
    let mut readers = Vec::new();
    for _ in 0..4 {
        let b = b.clone();
        let first = head;
        readers.push(tokio::spawn(async move {
            for _ in 0..50 {
                assert_eq!(
                    b.read_to_string(first, "f").await.unwrap().as_deref(),
                    Some("0")
                );
                assert_eq!(b.list_tree(first, None, true).await.unwrap().len(), 1);
            }
        }));
    }
    for i in 1..30 {
        head = commit(&*b, Some(head), vec![put(&format!("g{i}"), "x")], "w").await;
    }
    for r in readers {
        r.await.unwrap();
    }
    assert_eq!(b.list_tree(head, None, true).await.unwrap().len(), 30);
}

/// Unknown ids are `NotFound`, never a panic.
pub async fn unknown_objects_are_not_found<H: Harness>(h: Arc<H>) {
    let b = h.new_backend().await;
    let unknown = ObjectId::parse("3333333333333333333333333333333333333333").unwrap();
    assert!(matches!(
        b.commit_info(unknown).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        b.read_blob(unknown).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        b.list_tree(unknown, None, true).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        b.log(unknown, LogOptions::default()).await,
        Err(Error::NotFound(_))
    ));
    let c = commit(&*b, None, vec![put("f", "1")], "1").await;
    let blob = b
        .read_file(c, &RepoPath::new("f").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    assert!(matches!(
        b.commit_info(blob).await,
        Err(Error::NotFound(_) | Error::InvalidInput(_))
    ));
    assert!(matches!(
        b.diff(Some(unknown), c).await,
        Err(Error::NotFound(_))
    ));
}
