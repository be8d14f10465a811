//! `check_commit`: the files a commit of raw changes writes in an environment must validate.

use git_backend::{Change, GitBackend, ObjectId};
use resource_model::*;

use crate::{CORPUS, backend, commit, commit_files, del, put};

const GOOD: &str = "flags:\n  - key: a\n    name: A\n";

/// Checks `changes` on `head` in `dir`, and that the server's validation of the commit they
/// make agrees: every problem found is one `validate_tree` finds in the result, and every
/// problem `validate_tree` finds in a file the changes write is found.
async fn check(
    b: &dyn GitBackend,
    head: Option<ObjectId>,
    dir: &str,
    changes: Vec<Change>,
) -> Vec<Problem> {
    let problems = check_commit(b, head, dir, &changes).await.expect("check");
    let result = commit(b, head, changes.clone()).await;
    let all = validate_tree(b, result, dir).await.expect("validate");
    for p in &problems {
        assert!(
            all.contains(p),
            "{p} is not a problem of the result:\n{}",
            text(&all)
        );
    }
    let written: Vec<&str> = changes
        .iter()
        .filter(|c| matches!(c, Change::Put { .. }))
        .map(|c| c.path().as_str())
        .collect();
    for p in all.iter().filter(|p| written.contains(&p.file.as_str())) {
        assert!(
            problems.contains(p),
            "{p} of a written file is not found:\n{}",
            text(&problems)
        );
    }
    problems
}

fn text(problems: &[Problem]) -> String {
    Problems(problems.to_vec()).to_string()
}

#[tokio::test]
async fn valid_writes_pass_and_the_result_builds() {
    let b = backend();
    let head = commit_files(&b, None, CORPUS).await;
    let changes = vec![
        put("team/features.yaml", GOOD),
        put(
            "default/features.yaml",
            "namespace: default\nflags:\n  - key: b\n    name: B\n",
        ),
        put("flipt.yaml", "version: \"2.0\"\n"),
    ];
    assert_eq!(check(&b, Some(head), "", changes.clone()).await, vec![]);
    // On an empty branch too.
    assert_eq!(check(&b, None, "", changes.clone()).await, vec![]);
    let next = commit(&b, Some(head), changes).await;
    Snapshot::build(&b, next, "")
        .await
        .expect("the result validates");
}

#[tokio::test]
async fn invalid_yaml_is_named_with_file_and_line() {
    let b = backend();
    let head = commit_files(&b, None, &[("default/features.yaml", GOOD)]).await;
    let bad = "flags:\n  - key: a\n    name: A\n  - key: [\n";
    let problems = check(&b, Some(head), "", vec![put("default/features.yaml", bad)]).await;
    assert_eq!(problems.len(), 1, "{}", text(&problems));
    assert_eq!(problems[0].file, "default/features.yaml");
    assert!(problems[0].location.line.is_some(), "{}", text(&problems));
    // Not UTF-8, and a document that is not a features document.
    let problems = check(
        &b,
        Some(head),
        "",
        vec![put("default/features.yaml", b"\xff\xfe")],
    )
    .await;
    assert!(text(&problems).contains("UTF-8"), "{}", text(&problems));
    let problems = check(
        &b,
        Some(head),
        "",
        vec![put("default/features.yaml", "flags:\n  - name: no key\n")],
    )
    .await;
    assert!(!problems.is_empty());
    assert_eq!(problems[0].file, "default/features.yaml");
}

#[tokio::test]
async fn references_and_the_namespace_key_are_checked_within_the_file() {
    let b = backend();
    let problems = check(
        &b,
        None,
        "",
        vec![put(
            "team/features.yaml",
            "flags:\n  - key: f\n    name: F\n    variants:\n      - key: a\n    rules:\n      - segment: missing\n        distributions:\n          - variant: a\n            rollout: 100\n",
        )],
    )
    .await;
    assert_eq!(
        text(&problems),
        "team/features.yaml:2 (document 1, flag f): flag team/f rule 1 references unknown segment \"missing\""
    );
    let problems = check(
        &b,
        None,
        "",
        vec![put("team/features.yaml", "namespace: other\nflags: []\n")],
    )
    .await;
    assert!(
        text(&problems)
            .contains("the document's namespace \"other\" is not its folder's, \"team\""),
        "{}",
        text(&problems)
    );
    // The segment defined in the same file: fine.
    let problems = check(
        &b,
        None,
        "",
        vec![put(
            "team/features.yaml",
            "flags:\n  - key: f\n    name: F\n    rules:\n      - segment: s\nsegments:\n  - key: s\n    name: S\n    match_type: ALL_MATCH_TYPE\n",
        )],
    )
    .await;
    assert_eq!(problems, vec![], "{}", text(&problems));
    // A folder that is not a namespace key.
    let problems = check(&b, None, "", vec![put("bad key/features.yaml", GOOD)]).await;
    assert!(
        text(&problems)
            .contains("bad key/features.yaml: the folder name is not a valid namespace key"),
        "{}",
        text(&problems)
    );
}

#[tokio::test]
async fn a_second_features_file_for_a_namespace_is_refused() {
    let b = backend();
    let head = commit_files(
        &b,
        None,
        &[("team/features.yaml", GOOD), ("features.yml", GOOD)],
    )
    .await;
    let problems = check(&b, Some(head), "", vec![put("team/features.json", "{}")]).await;
    assert_eq!(problems.len(), 2, "{}", text(&problems));
    assert!(
        text(&problems).contains("namespace \"team\" has more than one features file (team/features.json, team/features.yaml)"),
        "{}",
        text(&problems)
    );
    // `default`: a top-level file and one in `default/`.
    let problems = check(&b, Some(head), "", vec![put("default/features.yaml", GOOD)]).await;
    assert!(
        text(&problems).contains("namespace \"default\" has more than one features file"),
        "{}",
        text(&problems)
    );
    // Both in one commit, on an empty branch.
    let problems = check(
        &b,
        None,
        "",
        vec![put("x/features.yaml", GOOD), put("x/features.yml", GOOD)],
    )
    .await;
    assert_eq!(problems.len(), 2, "{}", text(&problems));
    // Moving the file (delete the old, write the new) is fine.
    let problems = check(
        &b,
        Some(head),
        "",
        vec![del("team/features.yaml"), put("team/features.yml", GOOD)],
    )
    .await;
    assert_eq!(problems, vec![], "{}", text(&problems));
    // Two configuration files.
    let problems = check(
        &b,
        Some(head),
        "",
        vec![put("flipt.yaml", ""), put("flipt.yml", "")],
    )
    .await;
    assert!(
        text(&problems)
            .contains("flipt.yml: both flipt.yaml and flipt.yml exist; flipt.yaml is used"),
        "{}",
        text(&problems)
    );
}

#[tokio::test]
async fn files_outside_the_environment_are_not_checked() {
    let b = backend();
    let head = commit_files(&b, None, &[("prod/team/features.yaml", GOOD)]).await;
    let broken = "flags: [\n";
    for path in [
        "README.md",
        "staging/team/features.yaml",
        "production/features.yaml",
        "prod/team/nested/features.yaml",
        "prod/team/other.yaml",
        "features.yaml",
        "flipt.yaml",
    ] {
        let problems = check(&b, Some(head), "prod", vec![put(path, broken)]).await;
        assert_eq!(problems, vec![], "{path}: {}", text(&problems));
    }
    // The same files in the environment are checked: in `prod`, `features.yaml` at its top
    // is `default`'s.
    for path in [
        "prod/team/features.yaml",
        "prod/features.yaml",
        "prod/flipt.yaml",
    ] {
        let problems = check(&b, Some(head), "prod", vec![put(path, broken)]).await;
        assert!(!problems.is_empty(), "{path}");
        assert!(
            problems.iter().all(|p| p.file == path),
            "{}",
            text(&problems)
        );
    }
    // `/prod/` and `prod` are the same directory.
    assert!(
        !check(
            &b,
            Some(head),
            "/prod/",
            vec![put("prod/features.yaml", broken)]
        )
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn a_fix_of_one_broken_file_passes_while_another_stays_broken() {
    let b = backend();
    let head = commit_files(
        &b,
        None,
        &[
            ("a/features.yaml", "flags: [\n"),
            (
                "b/features.yaml",
                "flags:\n  - key: f\n    name: F\n    rules:\n      - segment: ghost\n",
            ),
            ("c/features.yaml", GOOD),
            ("c/features.yml", GOOD),
            ("flipt.yaml", "templates:\n  commit_message: \"{{ if }}\"\n"),
        ],
    )
    .await;
    assert!(
        !validate_tree(&b, head, "").await.unwrap().is_empty(),
        "the head is broken"
    );
    // Fixing `a` while `b`, `c` and `flipt.yaml` stay broken.
    let problems = check(&b, Some(head), "", vec![put("a/features.yaml", GOOD)]).await;
    assert_eq!(problems, vec![], "{}", text(&problems));
    // A file of another namespace can be written too.
    let problems = check(&b, Some(head), "", vec![put("d/features.yaml", GOOD)]).await;
    assert_eq!(problems, vec![], "{}", text(&problems));
    // Writing `b` without fixing it is refused, naming only `b`.
    let problems = check(
        &b,
        Some(head),
        "",
        vec![
            put("a/features.yaml", GOOD),
            put(
                "b/features.yaml",
                "flags:\n  - key: f\n    name: F2\n    rules:\n      - segment: ghost\n",
            ),
        ],
    )
    .await;
    assert!(!problems.is_empty());
    assert!(
        problems.iter().all(|p| p.file == "b/features.yaml"),
        "{}",
        text(&problems)
    );
    // Fixing `c` by deleting one of its two files; fixing `flipt.yaml`.
    let problems = check(&b, Some(head), "", vec![del("c/features.yml")]).await;
    assert_eq!(problems, vec![]);
    let problems = check(
        &b,
        Some(head),
        "",
        vec![put("flipt.yaml", "version: \"2.0\"\n")],
    )
    .await;
    assert_eq!(problems, vec![], "{}", text(&problems));
    // A later change of the same path wins.
    let problems = check(
        &b,
        Some(head),
        "",
        vec![
            put("b/features.yaml", "flags: [\n"),
            put("b/features.yaml", GOOD),
        ],
    )
    .await;
    assert_eq!(problems, vec![], "{}", text(&problems));
    let problems = check(
        &b,
        Some(head),
        "",
        vec![
            put("b/features.yaml", GOOD),
            put("b/features.yaml", "flags: [\n"),
        ],
    )
    .await;
    assert!(!problems.is_empty());
}

#[tokio::test]
async fn deleting_features_files_is_fine() {
    let b = backend();
    let head = commit_files(&b, None, CORPUS).await;
    let changes: Vec<Change> = CORPUS.iter().map(|(p, _)| del(p)).collect();
    assert_eq!(check(&b, Some(head), "", changes.clone()).await, vec![]);
    // Also files that do not exist.
    // (Not through `check`: a commit cannot delete what is not there; the storage API drops
    // such a change before it checks.)
    let absent = [del("nope/features.yaml")];
    assert_eq!(
        check_commit(&b, Some(head), "", &absent).await.unwrap(),
        vec![]
    );
    assert_eq!(check_commit(&b, None, "", &changes).await.unwrap(), vec![]);
    // Delete and write back broken: the write counts.
    let problems = check(
        &b,
        Some(head),
        "",
        vec![
            del("search/features.yaml"),
            put("search/features.yaml", "flags: [\n"),
        ],
    )
    .await;
    assert!(!problems.is_empty());
}

#[tokio::test]
async fn every_corpus_file_written_back_passes_and_a_hostile_one_is_refused() {
    let b = backend();
    let head = commit_files(&b, None, CORPUS).await;
    for (path, content) in CORPUS {
        let problems = check(&b, Some(head), "", vec![put(path, content)]).await;
        assert_eq!(problems, vec![], "{path}: {}", text(&problems));
    }
    // Billion laughs: refused quickly, with a problem, not expanded.
    let mut laughs = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (i, prev) in ('b'..='i').zip('a'..='h') {
        laughs.push_str(&format!(
            "{i}: &{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    let problems = check(
        &b,
        Some(head),
        "",
        vec![put("default/features.yaml", &laughs)],
    )
    .await;
    assert!(!problems.is_empty());
}
