//! Snapshots of environments at commits.

use git_backend::GitBackend;
use resource_model::*;

use crate::{CORPUS, backend, commit, commit_files, del, put};

fn in_dir(dir: &str) -> Vec<(String, &'static str)> {
    CORPUS
        .iter()
        .map(|(p, t)| (format!("{dir}{p}"), *t))
        .collect()
}

async fn corpus_commit(b: &dyn GitBackend, dir: &str) -> git_backend::ObjectId {
    let files = in_dir(dir);
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), *t)).collect();
    commit_files(b, None, &refs).await
}

#[tokio::test]
async fn the_corpus_builds_a_snapshot() {
    let b = backend();
    for dir in ["", "envs/prod/"] {
        let c = corpus_commit(&b, dir).await;
        let s = Snapshot::build(&b, c, dir)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.commit(), c);
        assert_eq!(s.directory(), dir.trim_end_matches('/'));
        let keys: Vec<&str> = s.namespaces().map(|n| n.namespace().key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "accounts", "default", "growth", "internal", "legacy", "mobile", "payments",
                "platform", "search"
            ]
        );
        assert_eq!(
            s.flag("payments", "instant-refunds").unwrap().r#type,
            FlagType::Boolean
        );
        assert_eq!(
            s.segment("platform", "canary-hosts")
                .unwrap()
                .constraints
                .len(),
            2
        );
        assert!(s.flag("payments", "nope").is_none() && s.flag("nope", "x").is_none());
        let mobile = s.namespace("mobile").unwrap();
        assert_eq!(mobile.namespace().name, "Mobile apps");
        assert_eq!(
            s.namespace("payments").unwrap().namespace().name,
            "payments"
        );
        // Flags keep file order; the digest is the file's blob id.
        let platform = s.namespace("platform").unwrap();
        assert_eq!(platform.flags()[0].key, "new-scheduler");
        let file = platform.file().unwrap();
        assert_eq!(file.path, format!("{dir}platform/features.yaml"));
        let blob = b
            .read_file(c, &git_backend::RepoPath::new(file.path.clone()).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(platform.digest(), blob.id.to_string());
        assert_eq!(platform.digest().len(), 40);
        assert!(s.namespace("default").unwrap().namespace().protected);
    }
}

#[tokio::test]
async fn default_always_exists_and_other_files_are_ignored() {
    let b = backend();
    let c = commit_files(
        &b,
        None,
        &[
            ("README.md", "# hi\n"),
            ("team/notes.txt", "x"),
            ("a/b/features.yaml", "not: [valid"),
        ],
    )
    .await;
    let s = Snapshot::build(&b, c, "").await.unwrap();
    let ns: Vec<_> = s.namespaces().map(|n| n.namespace().clone()).collect();
    assert_eq!(ns, [Namespace::synthesised_default()]);
    assert_eq!(
        s.namespace("default").unwrap().digest(),
        "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    );
    assert!(s.namespace("default").unwrap().file().is_none());

    // A features file at the top of the environment is the default namespace.
    let c = commit_files(
        &b,
        None,
        &[("features.yml", "flags:\n  - key: top\n    name: Top\n")],
    )
    .await;
    let s = Snapshot::build(&b, c, "").await.unwrap();
    assert!(s.flag("default", "top").is_some());
    // A missing environment directory is an empty environment.
    let s = Snapshot::build(&b, c, "no/such/dir").await.unwrap();
    assert_eq!(s.namespaces().count(), 1);
}

#[tokio::test]
async fn flipt_yaml_versions_load() {
    let b = backend();
    for config in [
        "",
        "version: \"2.0\"\n",
        "version: \"2.0.0\"\n",
        "templates:\n  commit_message: \"{{ len .Changes }} changes\"\n",
    ] {
        for name in ["flipt.yaml", "flipt.yml"] {
            let c = commit_files(&b, None, &[(name, config)]).await;
            let s = Snapshot::build(&b, c, "")
                .await
                .unwrap_or_else(|e| panic!("{config:?}: {e}"));
            assert_eq!(
                s.config().commit_message.is_some(),
                config.contains("templates")
            );
        }
    }
    let c = commit_files(&b, None, &[("flipt.yaml", "version: \"3.0\"\n")]).await;
    let Err(Error::Invalid(p)) = Snapshot::build(&b, c, "").await else {
        panic!("version 3.0 must not load")
    };
    assert!(p.0[0].message.contains("unsupported flipt config version"));
}

#[tokio::test]
async fn an_invalid_commit_lists_every_problem_and_gives_no_snapshot() {
    let b = backend();
    let c = commit_files(
        &b,
        None,
        &[
            ("team/features.yaml", "version: \"1.6\"\nflags:\n  - key: f\n    name: F\n    variants:\n      - key: a\n    rules:\n      - segment: missing\n        distributions:\n          - variant: b\n            rollout: 100\n"),
            ("boolean/features.yaml", "version: \"1.6\"\nflags:\n  - key: t\n    name: T\n    type: BOOLEAN_FLAG_TYPE\n    rollouts:\n      - segment:\n          key: ghost\n"),
            ("other/features.yaml", "namespace: elsewhere\nflags: []\n"),
            ("dup/features.yaml", "flags:\n  - key: x\n    name: X\n---\nflags:\n  - key: x\n    name: X again\n"),
            ("two/features.yaml", "flags: []\n"),
            ("two/features.yml", "flags: []\n"),
            ("bad key/features.yaml", "flags: []\n"),
            ("broken/features.yaml", "flags: [\n"),
            ("flipt.yaml", "templates:\n  commit_message: \"{{ if }}\"\n"),
        ],
    )
    .await;
    let Err(Error::Invalid(problems)) = Snapshot::build(&b, c, "").await else {
        panic!("must not build")
    };
    let text = problems.to_string();
    for expected in [
        "team/features.yaml:3 (document 1, flag f): flag team/f rule 1 references unknown segment \"missing\"",
        "team/features.yaml:3 (document 1, flag f): flag team/f rule 1 references unknown variant \"b\"",
        "boolean/features.yaml:3 (document 1, flag t): flag boolean/t rollout 1 references unknown segment \"ghost\"",
        "other/features.yaml:1 (document 1, namespace): the document's namespace \"elsewhere\" is not its folder's, \"other\"",
        "dup/features.yaml:6 (document 2, flag x): duplicate flag key (also in document 1)",
        "two/features.yaml: namespace \"two\" has more than one features file (two/features.yaml, two/features.yml)",
        "bad key/features.yaml: the folder name is not a valid namespace key",
        "broken/features.yaml:",
        "flipt.yaml: templates.commit_message:",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // Sorted by file.
    let files: Vec<&str> = problems.iter().map(|p| p.file.as_str()).collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
}

#[tokio::test]
async fn a_rebuild_parses_only_the_files_that_changed() {
    let b = backend();
    let mut files = Vec::new();
    for n in 0..20 {
        files.push((
            format!("ns-{n}/features.yaml"),
            format!("flags:\n  - key: f\n    name: Flag {n}\n"),
        ));
    }
    files.push(("flipt.yaml".into(), "version: \"2.0\"\n".into()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let c1 = commit_files(&b, None, &refs).await;
    let s1 = Snapshot::build(&b, c1, "").await.unwrap();
    assert_eq!(
        s1.stats(),
        BuildStats {
            files_parsed: 20,
            files_reused: 0,
            files_from_writes: 0
        }
    );

    let c2 = commit(
        &b,
        Some(c1),
        vec![put(
            "ns-3/features.yaml",
            "flags:\n  - key: f\n    name: Renamed\n",
        )],
    )
    .await;
    let s2 = s1.rebuild(&b, c2).await.unwrap();
    assert_eq!(
        s2.stats(),
        BuildStats {
            files_parsed: 1,
            files_reused: 19,
            files_from_writes: 0
        }
    );
    assert_eq!(s2.flag("ns-3", "f").unwrap().name, "Renamed");
    assert_eq!(s2.flag("ns-4", "f").unwrap().name, "Flag 4");
    assert_eq!(
        s1.flag("ns-3", "f").unwrap().name,
        "Flag 3",
        "the old snapshot does not change"
    );

    // Deleting a namespace, adding one, and breaking one.
    let c3 = commit(
        &b,
        Some(c2),
        vec![
            del("ns-5/features.yaml"),
            put("new/features.yaml", "flags: []\n"),
        ],
    )
    .await;
    let s3 = s2.rebuild(&b, c3).await.unwrap();
    assert_eq!(
        s3.stats(),
        BuildStats {
            files_parsed: 1,
            files_reused: 19,
            files_from_writes: 0
        }
    );
    assert!(s3.namespace("ns-5").is_none() && s3.namespace("new").is_some());
    let c4 = commit(&b, Some(c3), vec![put("ns-6/features.yaml", "flags: {")]).await;
    assert!(matches!(s3.rebuild(&b, c4).await, Err(Error::Invalid(_))));

    // Nothing changed: nothing parsed.
    let s5 = s3.rebuild(&b, c3).await.unwrap();
    assert_eq!(s5.stats().files_parsed, 0);
}

#[tokio::test]
async fn a_prepared_build_finished_on_another_thread_is_the_same_snapshot() {
    let b = backend();
    for dir in ["", "envs/prod/"] {
        let c1 = corpus_commit(&b, dir).await;
        let whole = Snapshot::build(&b, c1, dir).await.unwrap();
        let cache = std::sync::Arc::new(FileCache::default());
        let pending = Snapshot::prepare(&b, c1, dir, None, Some(cache.clone()))
            .await
            .unwrap();
        let split = std::thread::spawn(move || pending.finish())
            .join()
            .unwrap()
            .unwrap();
        assert_eq!(split.commit(), whole.commit());
        assert_eq!(split.directory(), whole.directory());
        let keys = |s: &Snapshot| {
            s.namespaces()
                .map(|n| n.namespace().key.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&split), keys(&whole));
        for ns in whole.namespaces() {
            let other = split.namespace(&ns.namespace().key).unwrap();
            assert_eq!(
                (other.flags(), other.segments(), other.digest()),
                (ns.flags(), ns.segments(), ns.digest())
            );
        }
        assert!(
            cache.skeletons() > 0,
            "the prepared build fills the cache it was given"
        );

        // A rebuild from the previous snapshot: the unchanged files are reused, not read.
        let path = format!("{dir}ops/features.yaml");
        let c2 = commit(
            &b,
            Some(c1),
            vec![put(
                &path,
                "namespace: ops\nflags:\n  - key: x\n    name: X\n",
            )],
        )
        .await;
        let next = Snapshot::prepare(&b, c2, dir, Some(split.clone()), None)
            .await
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(next.stats().files_parsed, 1);
        assert_eq!(next.flag("ops", "x").unwrap().name, "X");
    }
}
