//! `BareRemote`: creation, another user's commits, inspection, hooks.

use test_support::{BareRemote, OTHER_USER_EMAIL, OTHER_USER_NAME, git, try_git};

fn is_commit_id(id: &str) -> bool {
    id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn a_new_remote_is_empty_bare_and_sound() {
    let remote = BareRemote::new();
    assert!(remote.path().is_absolute());
    assert!(remote.path().join("HEAD").is_file(), "bare layout");
    assert_eq!(remote.project_root(), remote.path().parent().unwrap());
    assert_eq!(
        remote.file_url(),
        format!("file://{}", remote.path().display())
    );
    assert!(remote.file_url().starts_with("file:///"));
    assert_eq!(
        git(&["rev-parse", "--is-bare-repository"], remote.path()).trim(),
        "true"
    );
    assert_eq!(
        git(&["config", "http.receivepack"], remote.path()).trim(),
        "true"
    );
    assert_eq!(remote.head("main"), None);
    assert!(remote.refs().is_empty());
    assert!(remote.log("main").is_empty());
    assert_eq!(remote.show_file("main", "a.txt"), None);
    remote.fsck();
}

#[test]
fn cli_commits_start_and_extend_a_branch() {
    let remote = BareRemote::new();
    let first = remote.cli_commit(
        "main",
        &[("a.txt", Some("one\n")), ("dir/sub/b.yaml", Some("b: 1\n"))],
        "first",
    );
    assert!(is_commit_id(&first), "{first:?}");
    assert_eq!(remote.head("main").as_deref(), Some(first.as_str()));
    assert_eq!(remote.show_file(&first, "a.txt").as_deref(), Some("one\n"));
    assert_eq!(
        remote
            .show_file("refs/heads/main", "dir/sub/b.yaml")
            .as_deref(),
        Some("b: 1\n")
    );

    let second = remote.cli_commit(
        "main",
        &[
            ("a.txt", Some("two\n")),
            ("dir/sub/b.yaml", None),
            ("never-existed", None),
        ],
        "second",
    );
    assert_eq!(remote.log("main"), vec![second.clone(), first.clone()]);
    assert_eq!(
        git(&["rev-parse", &format!("{second}^")], remote.path()).trim(),
        first
    );
    assert_eq!(remote.show_file(&second, "a.txt").as_deref(), Some("two\n"));
    assert_eq!(remote.show_file(&second, "dir/sub/b.yaml"), None);
    assert_eq!(
        remote.show_file(&first, "dir/sub/b.yaml").as_deref(),
        Some("b: 1\n")
    );
    assert_eq!(remote.show_file("no-such-rev", "a.txt"), None);

    // A commit that changes nothing is still a new commit.
    let third = remote.cli_commit("main", &[], "empty");
    assert_eq!(remote.log("main").len(), 3);
    assert_eq!(remote.head("main").as_deref(), Some(third.as_str()));

    let meta = git(
        &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", &third],
        remote.path(),
    );
    let who = format!("{OTHER_USER_NAME} <{OTHER_USER_EMAIL}>");
    assert_eq!(meta.trim(), format!("{who}|{who}|empty"));
    assert_eq!(remote.refs(), vec![("refs/heads/main".to_owned(), third)]);
    remote.fsck();
}

#[test]
fn a_new_branch_on_a_non_empty_remote() {
    let remote = BareRemote::new();
    let main = remote.cli_commit("main", &[("a", Some("1"))], "main");
    let feature = remote.cli_commit("feature/x", &[("b", Some("2"))], "feature");
    assert_eq!(
        remote.refs(),
        vec![
            ("refs/heads/feature/x".to_owned(), feature.clone()),
            ("refs/heads/main".to_owned(), main.clone()),
        ]
    );
    assert_eq!(remote.log("feature/x"), vec![feature]);
    assert_eq!(remote.log("main"), vec![main]);
}

#[test]
fn a_force_pushed_unrelated_history_replaces_the_branch() {
    let remote = BareRemote::new();
    let old = remote.cli_commit("main", &[("a", Some("1"))], "one");
    remote.cli_commit("main", &[("a", Some("2"))], "two");
    let new =
        remote.cli_force_push_unrelated("main", &[("z", Some("9")), ("gone", None)], "rewrite");
    assert_eq!(remote.log("main"), vec![new.clone()]);
    assert_eq!(remote.show_file(&new, "a"), None);
    assert_eq!(remote.show_file(&new, "z").as_deref(), Some("9"));
    let ancestry = try_git(&["merge-base", "--is-ancestor", &old, &new], remote.path());
    assert_eq!(
        ancestry.unwrap_err().code,
        Some(1),
        "old history is not an ancestor"
    );
    remote.fsck();
}

#[test]
fn a_pre_receive_hook_rejects_the_other_users_push() {
    let remote = BareRemote::new();
    let first = remote.cli_commit("main", &[("a", Some("1"))], "one");
    remote.install_hook("pre-receive", "echo 'rejected by policy' >&2\nexit 1\n");
    let err = remote
        .try_cli_commit("main", &[("a", Some("2"))], "two")
        .expect_err("the hook refuses the push");
    assert!(err.stderr.contains("rejected by policy"), "{err}");
    assert!(err.command.starts_with("git push"), "{err}");
    assert_eq!(remote.head("main").as_deref(), Some(first.as_str()));

    remote.remove_hook("pre-receive");
    let second = remote.cli_commit("main", &[("a", Some("2"))], "two");
    assert_eq!(remote.log("main"), vec![second, first]);
}

#[test]
#[should_panic(expected = "must be relative")]
fn a_file_path_leaving_the_work_tree_panics() {
    BareRemote::new().cli_commit("main", &[("../escape", Some("x"))], "bad");
}

#[test]
fn git_failures_carry_command_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let err = try_git(&["rev-parse", "HEAD"], dir.path()).unwrap_err();
    assert_eq!(err.command, "git rev-parse HEAD");
    assert_eq!(err.code, Some(128));
    assert!(err.stderr.contains("not a git repository"), "{err}");
    let shown = err.to_string();
    assert!(shown.contains("git rev-parse HEAD") && shown.contains("not a git repository"));
}

#[test]
#[should_panic(expected = "not a git repository")]
fn git_panics_with_stderr() {
    let dir = tempfile::tempdir().unwrap();
    git(&["log"], dir.path());
}
