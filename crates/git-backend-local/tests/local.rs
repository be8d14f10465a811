//! What only the `local` backend does (BEHAVIOUR §2): opening rules, seeding, commits made by
//! other programs, the working tree of normal repositories, and the cost of a tree write.
//! Repositories are made and inspected with the `git` CLI, as a user would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use git_backend::testsuite::{del, put};
use git_backend::{
    Change, CommitRequest, Expected, GitBackend, GitBackendExt, ObjectId, RefName, RefUpdate,
    SEED_README, Signature,
};
use git_backend_local::{LocalBackend, LocalOptions};
use test_support::git;

// ------------------------------------------------------------------------------ helpers

fn sig() -> Signature {
    Signature::now("flipt", "flipt@example.com")
}

fn oid(text: &str) -> ObjectId {
    ObjectId::parse(text.trim()).unwrap()
}

fn main_ref() -> RefName {
    RefName::branch("main").unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn open(path: &Path, branch: &str) -> git_backend::Result<LocalBackend> {
    LocalBackend::open(LocalOptions::new(path, branch))
}

async fn commit(
    backend: &LocalBackend,
    parent: Option<ObjectId>,
    changes: Vec<Change>,
) -> ObjectId {
    backend
        .create_commit(CommitRequest {
            parent,
            changes,
            message: "write through the backend".into(),
            author: sig(),
            committer: sig(),
        })
        .await
        .unwrap()
}

/// Moves `main` from `old` to `new` with a compare-and-swap.
async fn move_main(backend: &LocalBackend, old: ObjectId, new: ObjectId) {
    backend
        .update_ref(RefUpdate {
            name: main_ref(),
            new: Some(new),
            expected: Expected::Value(old),
            message: "test".into(),
        })
        .await
        .unwrap();
}

/// Writes `files` into `dir` (creating directories).
fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let file = dir.join(name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
}

/// A normal repository (`git init -b main`) in `dir` with one commit of `files`; returns the
/// commit id.
fn normal_repo(dir: &Path, files: &[(&str, &str)]) -> ObjectId {
    std::fs::create_dir_all(dir).unwrap();
    git(&["init", "-q", "-b", "main"], dir);
    write_files(dir, files);
    git(&["add", "-A"], dir);
    git(&["commit", "-q", "-m", "initial"], dir);
    oid(&git(&["rev-parse", "HEAD"], dir))
}

/// Every file and directory under `root` (relative paths; directories map to `None`, files to
/// their bytes), skipping `.git` when `skip_git`.
fn snapshot(root: &Path, skip_git: bool) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, skip_git: bool, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if skip_git && rel == Path::new(".git") {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                out.insert(rel, None);
                walk(root, &path, skip_git, out);
            } else {
                out.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, skip_git, &mut out);
    out
}

fn status(dir: &Path) -> String {
    git(&["status", "--porcelain=v1", "--untracked-files=all"], dir)
}

/// The blob id of `path` in the index (stage 0), or `None` when it is not in the index.
fn index_blob(dir: &Path, path: &str) -> Option<String> {
    let out = git(&["ls-files", "--stage", "--", path], dir);
    let line = out.lines().next()?;
    // `<mode> <blob> <stage>\t<path>`
    Some(line.split_whitespace().nth(1).unwrap().to_owned())
}

fn blob_at(dir: &Path, rev: &str, path: &str) -> String {
    git(&["rev-parse", &format!("{rev}:{path}")], dir)
        .trim()
        .to_owned()
}

fn read(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).unwrap()
}

// ------------------------------------------------------------------------------ opening

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_directory_gets_a_new_bare_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("not/yet/there");
    let backend = open(&dir, "main").unwrap();
    assert!(backend.is_bare());
    assert_eq!(
        git(&["rev-parse", "--is-bare-repository"], &dir).trim(),
        "true"
    );
    assert_eq!(
        git(&["symbolic-ref", "HEAD"], &dir).trim(),
        "refs/heads/main"
    );
    assert_eq!(backend.branch_head("main").await.unwrap(), None);
    assert!(backend.list_refs("refs/").await.unwrap().is_empty());
    assert!(git(&["for-each-ref"], &dir).trim().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_directory_gets_a_new_bare_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("empty");
    std::fs::create_dir(&dir).unwrap();
    let backend = open(&dir, "main").unwrap();
    assert!(backend.is_bare());
    assert_eq!(
        git(&["rev-parse", "--is-bare-repository"], &dir).trim(),
        "true"
    );
    assert_eq!(backend.branch_head("main").await.unwrap(), None);
    assert!(backend.list_refs("refs/").await.unwrap().is_empty());
}

#[test]
fn a_non_empty_directory_that_is_not_a_repository_is_refused_and_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stuff");
    write_files(
        &dir,
        &[
            ("notes.txt", "my notes\n"),
            ("sub/data.yaml", "a: 1\n"),
            ("config", "not a git config\n"),
        ],
    );
    std::fs::create_dir(dir.join("empty-sub")).unwrap();
    let before = snapshot(&dir, false);

    let err = open(&dir, "main").unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("not empty") && message.contains("not a git repository"),
        "{message}"
    );
    assert!(message.contains(path_str(&dir)), "{message}");

    assert_eq!(
        snapshot(&dir, false),
        before,
        "the directory changed after a refused open"
    );
    for git_file in ["HEAD", "objects", "refs", ".git"] {
        assert!(!dir.join(git_file).exists(), "{git_file} was written");
    }
}

#[test]
fn a_path_that_is_a_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("repo");
    std::fs::write(&file, "I am a file\n").unwrap();
    let err = open(&file, "main").unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"I am a file\n");
    assert_eq!(snapshot(tmp.path(), false).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_normal_repository_is_served() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("work");
    let head = normal_repo(&dir, &[("default/features.yaml", "namespace: default\n")]);
    let backend = open(&dir, "main").unwrap();
    assert!(!backend.is_bare());
    assert_eq!(backend.path(), dir);
    assert_eq!(backend.branch_head("main").await.unwrap(), Some(head));
    assert_eq!(
        backend
            .read_to_string(head, "default/features.yaml")
            .await
            .unwrap()
            .as_deref(),
        Some("namespace: default\n")
    );
    // Opening wrote nothing to the working tree or the index.
    assert_eq!(status(&dir), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_bare_repository_is_served() {
    let remote = test_support::BareRemote::new();
    remote.cli_commit("main", &[("a.yaml", Some("a\n"))], "first");
    let head = oid(&remote.cli_commit("main", &[("b.yaml", Some("b\n"))], "second"));
    let backend = open(remote.path(), "main").unwrap();
    assert!(backend.is_bare());
    assert_eq!(backend.branch_head("main").await.unwrap(), Some(head));
    assert_eq!(
        backend.commit_info(head).await.unwrap().message.trim(),
        "second"
    );
    assert_eq!(
        backend
            .read_to_string(head, "a.yaml")
            .await
            .unwrap()
            .as_deref(),
        Some("a\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_without_the_branch_is_refused_with_its_branches() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("work");
    let head = normal_repo(&dir, &[("a.yaml", "a\n")]);
    git(&["branch", "staging"], &dir);
    let refs_before = git(&["for-each-ref"], &dir);

    let err = open(&dir, "prod").unwrap_err();
    let message = err.to_string();
    assert!(message.contains("`prod`"), "{message}");
    assert!(
        message.contains("main") && message.contains("staging"),
        "the error should list the repository's branches: {message}"
    );
    // No orphan branch was seeded into the user's repository.
    assert_eq!(git(&["for-each-ref"], &dir), refs_before);

    let mut options = LocalOptions::new(&dir, "prod");
    options.allow_missing_branch = true;
    let backend = LocalBackend::open(options).unwrap();
    assert_eq!(backend.branch_head("prod").await.unwrap(), None);
    assert_eq!(backend.branch_head("main").await.unwrap(), Some(head));
    assert_eq!(git(&["for-each-ref"], &dir), refs_before);
}

// ------------------------------------------------------------------------------ seeding

#[tokio::test(flavor = "multi_thread")]
async fn seeding_an_empty_repository_makes_one_readme_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let backend = open(&dir, "main").unwrap();
    let head = backend.seed_branch("main", &sig()).await.unwrap();

    assert_eq!(
        git(&["rev-parse", "refs/heads/main"], &dir).trim(),
        head.to_string()
    );
    assert_eq!(
        git(&["log", "--format=%s", "refs/heads/main"], &dir),
        "add initial README\n"
    );
    assert_eq!(
        git(&["ls-tree", "-r", "--name-only", "refs/heads/main"], &dir),
        "README.md\n"
    );
    assert_eq!(
        git(&["show", "refs/heads/main:README.md"], &dir),
        SEED_README
    );

    // Seeding again is a no-op that returns the same head.
    assert_eq!(backend.seed_branch("main", &sig()).await.unwrap(), head);
    assert_eq!(
        git(&["rev-list", "--count", "refs/heads/main"], &dir).trim(),
        "1"
    );
    assert_eq!(
        git(&["rev-parse", "refs/heads/main"], &dir).trim(),
        head.to_string()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_seeds_make_exactly_one_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let backend = open(&dir, "main").unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let backend = backend.clone();
            tokio::spawn(async move {
                // Distinct committers, so that racing seeds are distinct commits.
                let who = Signature::now(format!("seeder {i}"), "flipt@example.com");
                backend.seed_branch("main", &who).await
            })
        })
        .collect();
    let mut heads = Vec::new();
    for task in tasks {
        heads.push(task.await.unwrap().unwrap());
    }
    let head = oid(&git(&["rev-parse", "refs/heads/main"], &dir));
    assert!(
        heads.iter().all(|h| *h == head),
        "every seed must return the branch head {head}: {heads:?}"
    );
    assert_eq!(
        git(&["rev-list", "--count", "--all"], &dir).trim(),
        "1",
        "exactly one commit is reachable"
    );
    assert_eq!(
        git(&["log", "--format=%s", "refs/heads/main"], &dir),
        "add initial README\n"
    );
}

// ------------------------------------------------------------------------------ external changes

/// Waits (at most 10 s, the limit of BEHAVIOUR §2) until subscribers see `main` at `want`.
async fn subscriber_sees_main_at(backend: &LocalBackend, want: ObjectId) {
    let mut rx = backend.subscribe();
    let main = main_ref();
    let seen = tokio::time::timeout(
        Duration::from_secs(10),
        rx.wait_for(|state| state.refs.get(&main) == Some(&want)),
    )
    .await;
    assert!(
        seen.is_ok(),
        "subscribers did not see refs/heads/main at {want} within 10 seconds (they see {:?})",
        backend.subscribe().borrow().refs.get(&main)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_commit_in_a_normal_repository_reaches_subscribers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("work");
    let first = normal_repo(&dir, &[("a.yaml", "a: 1\n")]);
    // Default options: the poll interval is the production one.
    let backend = open(&dir, "main").unwrap();
    let rx = backend.subscribe();
    assert_eq!(rx.borrow().refs.get(&main_ref()), Some(&first));

    write_files(&dir, &[("a.yaml", "a: 2\n")]);
    git(&["commit", "-q", "-am", "edited by hand"], &dir);
    let second = oid(&git(&["rev-parse", "HEAD"], &dir));
    assert_ne!(first, second);

    subscriber_sees_main_at(&backend, second).await;
    assert_eq!(backend.branch_head("main").await.unwrap(), Some(second));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_into_a_bare_repository_reaches_subscribers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo.git");
    let backend = open(&dir, "main").unwrap();
    let seed = backend.seed_branch("main", &sig()).await.unwrap();
    let rx = backend.subscribe();
    assert_eq!(rx.borrow().refs.get(&main_ref()), Some(&seed));

    git(&["clone", "-q", path_str(&dir), "clone"], tmp.path());
    let clone = tmp.path().join("clone");
    write_files(&clone, &[("default/features.yaml", "namespace: default\n")]);
    git(&["add", "-A"], &clone);
    git(&["commit", "-q", "-m", "pushed by someone"], &clone);
    git(&["push", "-q", "origin", "HEAD:refs/heads/main"], &clone);
    let pushed = oid(&git(&["rev-parse", "HEAD"], &clone));

    subscriber_sees_main_at(&backend, pushed).await;
    assert_eq!(
        backend
            .read_to_string(pushed, "default/features.yaml")
            .await
            .unwrap()
            .as_deref(),
        Some("namespace: default\n")
    );
}

// ------------------------------------------------------------------------------ working tree

#[tokio::test(flavor = "multi_thread")]
async fn writes_update_clean_paths_of_the_working_tree_and_leave_edited_ones_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("work");
    let old = normal_repo(
        &dir,
        &[
            ("a.yaml", "a: 1\n"),
            ("b.yaml", "b: 1\n"),
            ("c.yaml", "c: 1\n"),
        ],
    );
    let backend = open(&dir, "main").unwrap();

    // The user edits b.yaml without staging it, and edits and stages c.yaml.
    write_files(&dir, &[("b.yaml", "b: user\n"), ("c.yaml", "c: user\n")]);
    git(&["add", "c.yaml"], &dir);
    let staged_c = index_blob(&dir, "c.yaml").unwrap();

    let new = commit(
        &backend,
        Some(old),
        vec![
            put("a.yaml", "a: api\n"),
            put("b.yaml", "b: api\n"),
            put("c.yaml", "c: api\n"),
            put("dir/new.yaml", "new: api\n"),
        ],
    )
    .await;
    move_main(&backend, old, new).await;
    let new_hex = new.to_string();
    assert_eq!(git(&["rev-parse", "HEAD"], &dir).trim(), new_hex);

    // Clean paths follow the new commit, on disk and in the index.
    assert_eq!(read(&dir, "a.yaml"), "a: api\n");
    assert_eq!(read(&dir, "dir/new.yaml"), "new: api\n");
    for path in ["a.yaml", "dir/new.yaml"] {
        assert_eq!(
            index_blob(&dir, path),
            Some(blob_at(&dir, "HEAD", path)),
            "{path} in the index"
        );
    }
    git(&["diff", "--quiet", "--", "a.yaml", "dir/new.yaml"], &dir);
    git(
        &[
            "diff",
            "--cached",
            "--quiet",
            "--",
            "a.yaml",
            "dir/new.yaml",
        ],
        &dir,
    );

    // The user's edits are kept: b.yaml's on disk, c.yaml's in the index (and on disk).
    assert_eq!(read(&dir, "b.yaml"), "b: user\n");
    assert_eq!(read(&dir, "c.yaml"), "c: user\n");
    assert_eq!(index_blob(&dir, "c.yaml"), Some(staged_c));

    // b.yaml's unstaged edit stays an unstaged edit, now against the API's version (its index
    // entry follows the new commit, since the user had not staged anything); c.yaml's staged
    // edit stays staged. Nothing else differs.
    assert_eq!(status(&dir), " M b.yaml\nM  c.yaml\n");

    // So the user's next `git commit` keeps every API change except where the user
    // deliberately staged their own content (c.yaml): it reverts nothing.
    git(&["commit", "-q", "-m", "the user's next commit"], &dir);
    for (path, want) in [
        ("a.yaml", "a: api\n"),
        ("b.yaml", "b: api\n"),
        ("c.yaml", "c: user\n"),
        ("dir/new.yaml", "new: api\n"),
    ] {
        assert_eq!(
            git(&["show", &format!("HEAD:{path}")], &dir),
            want,
            "{path} in the user's next commit"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn staged_changes_survive_successive_writes() {
    // The index is read afresh for every write: a stale copy of it, written back, would drop
    // what the user staged since the previous write.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("work");
    let mut head = normal_repo(&dir, &[("a.yaml", "a: 0\n")]);
    let backend = open(&dir, "main").unwrap();
    for round in 1..=4 {
        let name = format!("user{round}.yaml");
        write_files(&dir, &[(&name, "staged by the user\n")]);
        git(&["add", &name], &dir);

        let next = commit(
            &backend,
            Some(head),
            vec![put("a.yaml", format!("a: {round}\n"))],
        )
        .await;
        move_main(&backend, head, next).await;
        head = next;

        assert_eq!(read(&dir, "a.yaml"), format!("a: {round}\n"));
        let expected: String = (1..=round).map(|r| format!("A  user{r}.yaml\n")).collect();
        assert_eq!(status(&dir), expected, "after write {round}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_clean_file_removes_it_and_its_empty_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("work");
    let old = normal_repo(
        &dir,
        &[
            ("gone/deep/x.yaml", "x\n"),
            ("keep/x.yaml", "x\n"),
            ("keep/y.yaml", "y\n"),
            ("root.yaml", "r\n"),
        ],
    );
    let backend = open(&dir, "main").unwrap();
    let new = commit(
        &backend,
        Some(old),
        vec![del("gone/deep/x.yaml"), del("keep/x.yaml")],
    )
    .await;
    move_main(&backend, old, new).await;

    assert!(!dir.join("gone").exists(), "the emptied directories remain");
    assert!(!dir.join("keep/x.yaml").exists());
    assert_eq!(read(&dir, "keep/y.yaml"), "y\n");
    assert_eq!(git(&["ls-files"], &dir), "keep/y.yaml\nroot.yaml\n");
    assert_eq!(status(&dir), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_file_with_unstaged_edits_keeps_it_on_disk_untracked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("work");
    let old = normal_repo(&dir, &[("a.yaml", "a: 1\n"), ("sub/b.yaml", "b: 1\n")]);
    let backend = open(&dir, "main").unwrap();
    write_files(&dir, &[("sub/b.yaml", "b: user\n")]);

    let new = commit(&backend, Some(old), vec![del("sub/b.yaml")]).await;
    move_main(&backend, old, new).await;

    // The user's edit stays on disk; the file leaves the index with the commit, so the
    // user's next `git commit` does not bring it back.
    assert_eq!(read(&dir, "sub/b.yaml"), "b: user\n");
    assert_eq!(git(&["ls-files"], &dir), "a.yaml\n");
    assert_eq!(status(&dir), "?? sub/b.yaml\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_to_a_branch_that_head_is_not_on_leave_the_working_tree_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("work");
    let old = normal_repo(&dir, &[("a.yaml", "a: 1\n"), ("gone.yaml", "g\n")]);
    git(&["switch", "-q", "-c", "other"], &dir);
    let backend = open(&dir, "main").unwrap();
    let tree_before = snapshot(&dir, true);
    let index_before = std::fs::read(dir.join(".git/index")).unwrap();

    let new = commit(
        &backend,
        Some(old),
        vec![
            put("a.yaml", "a: api\n"),
            put("dir/new.yaml", "new\n"),
            del("gone.yaml"),
        ],
    )
    .await;
    move_main(&backend, old, new).await;

    assert_eq!(
        git(&["rev-parse", "refs/heads/main"], &dir).trim(),
        new.to_string()
    );
    assert_eq!(
        git(&["symbolic-ref", "HEAD"], &dir).trim(),
        "refs/heads/other"
    );
    assert_eq!(snapshot(&dir, true), tree_before);
    assert_eq!(std::fs::read(dir.join(".git/index")).unwrap(), index_before);
    assert_eq!(status(&dir), "");
}

// ------------------------------------------------------------------------------ tree writes

fn loose_objects(dir: &Path) -> (u64, u64) {
    let out = git(&["count-objects", "-v"], dir);
    let field = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no `{name}` in {out}"))
            .trim()
            .parse()
            .unwrap()
    };
    (field("count:"), field("in-pack:"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_in_a_large_tree_writes_only_the_changed_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let backend = open(&dir, "main").unwrap();
    let files: Vec<Change> = (0..100)
        .flat_map(|i| (0..100).map(move |j| (i, j)))
        .map(|(i, j)| put(&format!("ns{i}/f{j}.yaml"), format!("key: ns{i}-f{j}\n")))
        .collect();
    let base = commit(&backend, None, files).await;
    assert_eq!(
        git(&["ls-tree", "-r", "--name-only", &base.to_string()], &dir)
            .lines()
            .count(),
        10_000
    );

    let (before, in_pack) = loose_objects(&dir);
    assert_eq!(
        in_pack, 0,
        "every object is loose, so `count` sees them all"
    );
    assert!(
        before > 10_000,
        "the base commit's objects are loose: {before}"
    );

    let next = commit(&backend, Some(base), vec![put("ns42/f7.yaml", "changed\n")]).await;
    let (after, _) = loose_objects(&dir);
    assert_eq!(
        after - before,
        4,
        "one commit changing one file should write a blob, two trees and a commit"
    );
    let diff = backend.diff(Some(base), next).await.unwrap();
    assert_eq!(diff.len(), 1);
    assert_eq!(diff[0].path, "ns42/f7.yaml");
}
