//! `flipt-storage validate`: directories and repositories, as users run it in CI.

use integration_tests::{flipt_storage, run};
use test_support::git;

const GOOD: &str = "version: \"1.4\"\nnamespace: default\nflags:\n  - key: new-ui\n    name: New UI\n    enabled: true\n    variants:\n      - key: blue\n    rules:\n      - segment: beta\n        distributions:\n          - variant: blue\n            rollout: 100\nsegments:\n  - key: beta\n    name: Beta\n    match_type: ALL_MATCH_TYPE\n";

#[test]
fn a_valid_directory_passes_and_a_broken_reference_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("default")).unwrap();
    std::fs::write(dir.path().join("default/features.yaml"), GOOD).unwrap();
    let out = run(flipt_storage().arg("validate").arg(dir.path()));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("is valid"), "{out:?}");
    std::fs::write(
        dir.path().join("default/features.yaml"),
        GOOD.replace("segment: beta", "segment: gamma"),
    )
    .unwrap();
    let out = run(flipt_storage().arg("validate").arg(dir.path()));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("default/features.yaml"), "{out:?}");
    assert!(out.stdout.contains("gamma"), "{out:?}");
    assert!(out.stdout.contains("1 problem(s)"), "{out:?}");
}

#[test]
fn a_repository_at_head_and_at_another_ref() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    git(
        &["init", "-q", "-b", "main", repo.to_str().unwrap()],
        dir.path(),
    );
    std::fs::create_dir_all(repo.join("production/default")).unwrap();
    std::fs::write(repo.join("production/default/features.yaml"), GOOD).unwrap();
    git(&["add", "."], &repo);
    git(&["commit", "-qm", "good"], &repo);
    git(&["checkout", "-qb", "broken"], &repo);
    std::fs::write(repo.join("production/default/features.yaml"), "flags: [\n").unwrap();
    git(&["commit", "-qam", "broken"], &repo);
    git(&["checkout", "-q", "main"], &repo);
    let out = run(flipt_storage()
        .arg("validate")
        .arg(&repo)
        .args(["--directory", "production"]));
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = run(flipt_storage().arg("validate").arg(&repo).args([
        "--directory",
        "production",
        "--ref",
        "broken",
    ]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains("production/default/features.yaml"),
        "{out:?}"
    );
    let out = run(flipt_storage()
        .arg("validate")
        .arg(&repo)
        .args(["--ref", "nope"]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("`nope` does not exist"), "{out:?}");
    // Nothing was written to the repository by validating it.
    assert_eq!(git(&["status", "--porcelain"], &repo), "");
}

#[test]
fn a_missing_path_is_an_error() {
    let out = run(flipt_storage().args(["validate", "/nonexistent/flags"]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("not a directory"), "{out:?}");
}
