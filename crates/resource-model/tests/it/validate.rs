//! The `validate` entry points.

use resource_model::*;

use crate::{CORPUS, backend, commit_files};

#[test]
fn a_directory_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in CORPUS {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    std::fs::write(dir.path().join("flipt.yaml"), "version: \"2.0\"\n").unwrap();
    assert_eq!(validate_dir(dir.path()), Vec::<Problem>::new());

    std::fs::write(
        dir.path().join("search/features.yaml"),
        "flags:\n  - key: x\n    name: X\n    rules:\n      - segment: nope\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("extra")).unwrap();
    std::fs::write(dir.path().join("extra/features.yml"), "namespace: other\n").unwrap();
    let problems = validate_dir(dir.path());
    let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        shown,
        [
            "extra/features.yml:1 (document 1, namespace): the document's namespace \"other\" is not its folder's, \"extra\"",
            "search/features.yaml:2 (document 1, flag x): flag search/x rule 1 references unknown segment \"nope\"",
        ]
    );
    let missing = validate_dir(&dir.path().join("nope"));
    assert_eq!(missing.len(), 1);
    assert!(missing[0].message.starts_with("cannot read the directory"));
}

#[tokio::test]
async fn a_tree_at_a_commit() {
    let b = backend();
    let good = commit_files(&b, None, CORPUS).await;
    assert!(validate_tree(&b, good, "").await.unwrap().is_empty());
    let bad = commit_files(
        &b,
        None,
        &[
            ("env/a/features.yaml", "flags: 3\n"),
            ("env/b/features.json", "{]"),
        ],
    )
    .await;
    let problems = validate_tree(&b, bad, "env").await.unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0].file, "env/a/features.yaml");
    assert_eq!(problems[1].file, "env/b/features.json");
}

/// Variant checks take a short path for flags with few variants and a set for many: both
/// find duplicates and unknown references.
#[test]
fn variant_checks_with_few_and_many_variants() {
    for count in [2, 40] {
        let dir = tempfile::tempdir().unwrap();
        let ns = dir.path().join("ns");
        std::fs::create_dir_all(&ns).unwrap();
        let mut text = String::from("flags:\n  - key: f\n    name: F\n    variants:\n");
        for i in 0..count {
            text.push_str(&format!("      - key: v{i}\n"));
        }
        text.push_str("      - key: v1\n");
        text.push_str("    rules:\n      - segment: s\n        distributions:\n          - variant: v0\n            rollout: 50\n          - variant: gone\n            rollout: 50\n");
        text.push_str("segments:\n  - key: s\n    name: S\n    match_type: ALL_MATCH_TYPE\n");
        std::fs::write(ns.join("features.yaml"), text).unwrap();
        let shown: Vec<String> = validate_dir(dir.path())
            .iter()
            .map(|p| p.message.clone())
            .collect();
        assert_eq!(
            shown,
            [
                "duplicate variant key \"v1\"",
                "flag ns/f rule 1 references unknown variant \"gone\"",
            ],
            "{count} variants"
        );
    }
}
