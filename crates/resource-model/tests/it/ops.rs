//! Writes of namespaces, flags and segments.

use std::sync::Arc;

use git_backend::{Change, GitBackend, ObjectId, Plan, Refusal, WriteContext, WriteOp};
use resource_model::*;

use crate::{backend, changed_lines, commit, commit_files, put};

fn target(dir: &str) -> Arc<WriteTarget> {
    Arc::new(WriteTarget {
        environment: EnvironmentInfo {
            name: "production".into(),
            storage: "default".into(),
            directory: dir.into(),
            default: true,
        },
        ..WriteTarget::default()
    })
}

async fn plan(
    b: &dyn GitBackend,
    head: Option<ObjectId>,
    base: Option<ObjectId>,
    ops: Vec<Operation>,
) -> Result<Plan, Refusal> {
    ResourceWrite::batch(target(""), ops)
        .plan(WriteContext {
            backend: b,
            head,
            base,
        })
        .await
}

/// Plans and commits; returns the new head (or the old one for `Plan::Nothing`) and the message.
async fn apply(b: &dyn GitBackend, head: ObjectId, ops: Vec<Operation>) -> (ObjectId, String) {
    match plan(b, Some(head), None, ops)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        Plan::Commit { changes, message } => (commit(b, Some(head), changes).await, message),
        Plan::Nothing => (head, String::new()),
    }
}

async fn read(b: &dyn GitBackend, c: ObjectId, path: &str) -> Option<String> {
    use git_backend::GitBackendExt;
    b.read_to_string(c, path).await.unwrap()
}

async fn snap(b: &dyn GitBackend, c: ObjectId) -> Arc<Snapshot> {
    Snapshot::build(b, c, "")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn flag_with_rule(key: &str, segment: &str) -> Flag {
    let mut f = Flag::new(key, key.to_uppercase());
    f.variants.push(Variant {
        key: "on".into(),
        ..Variant::default()
    });
    f.rules.push(Rule {
        segments: vec![segment.into()],
        distributions: vec![Distribution {
            variant: "on".into(),
            rollout: 100.0,
        }],
        ..Rule::default()
    });
    f
}

#[tokio::test]
async fn namespaces_are_created_updated_and_deleted() {
    let b = backend();
    let head = commit_files(&b, None, &[("README.md", "hi\n")]).await;
    let mut team = Namespace::new("team_b", "Team B");
    team.description = "The Team B namespace".into();
    let (head, msg) = apply(&b, head, vec![Operation::CreateNamespace(team.clone())]).await;
    assert_eq!(msg, "create namespace team_b");
    // Exactly what Flipt writes for a new namespace.
    assert_eq!(
        read(&b, head, "team_b/features.yaml").await.unwrap(),
        "version: \"1.6\"\nnamespace:\n  key: team_b\n  name: Team B\n  description: The Team B namespace\n"
    );
    assert_eq!(
        snap(&b, head)
            .await
            .namespace("team_b")
            .unwrap()
            .namespace(),
        &team
    );

    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::CreateNamespace(team.clone())],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::AlreadyExists(m) if m == "create namespace \"team_b\": already exists"),
        "{err}"
    );
    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::CreateNamespace(Namespace::new("default", "D"))],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Refusal::AlreadyExists(_)));

    // Update keeps flags.
    let (head, _) = apply(
        &b,
        head,
        vec![Operation::CreateFlag {
            namespace: "team_b".into(),
            flag: Flag::new("f", "F"),
        }],
    )
    .await;
    team.name = "Team B!".into();
    let (head, msg) = apply(&b, head, vec![Operation::UpdateNamespace(team.clone())]).await;
    assert_eq!(msg, "update namespace team_b");
    let s = snap(&b, head).await;
    assert_eq!(s.namespace("team_b").unwrap().namespace().name, "Team B!");
    assert!(s.flag("team_b", "f").is_some());
    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::UpdateNamespace(Namespace::new("ghost", "G"))],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Refusal::NotFound(_)));

    // Updating `default` without a file creates it.
    let (head, _) = apply(
        &b,
        head,
        vec![Operation::UpdateNamespace(Namespace::new(
            "default", "Main",
        ))],
    )
    .await;
    assert!(
        read(&b, head, "default/features.yaml")
            .await
            .unwrap()
            .contains("name: Main")
    );

    // Delete: protected default, absent is nothing, present removes the file.
    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::DeleteNamespace("default".into())],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::Invalid(m) if m == "namespace \"default\" is protected"),
        "{err}"
    );
    assert_eq!(
        plan(
            &b,
            Some(head),
            None,
            vec![Operation::DeleteNamespace("ghost".into())]
        )
        .await
        .unwrap(),
        Plan::Nothing
    );
    let (head, msg) = apply(&b, head, vec![Operation::DeleteNamespace("team_b".into())]).await;
    assert_eq!(msg, "delete namespace team_b");
    assert!(read(&b, head, "team_b/features.yaml").await.is_none());
    assert!(snap(&b, head).await.namespace("team_b").is_none());
}

#[tokio::test]
async fn flags_and_segments_follow_the_rules() {
    let b = backend();
    let head = commit_files(&b, None, &[("README.md", "hi\n")]).await;

    // `default` exists without a file; a flag write creates it.
    let (head, msg) = apply(
        &b,
        head,
        vec![Operation::CreateFlag {
            namespace: "default".into(),
            flag: Flag::new("my-flag", "My flag"),
        }],
    )
    .await;
    assert_eq!(msg, "create flag default/my-flag");
    assert!(read(&b, head, "default/features.yaml").await.unwrap().starts_with("version: \"1.6\"\nnamespace:\n  key: default\n  name: Default\nflags:\n  - key: my-flag\n"));

    // Missing namespace, existing flag, absent flag.
    let missing = plan(
        &b,
        Some(head),
        None,
        vec![Operation::CreateFlag {
            namespace: "team".into(),
            flag: Flag::new("f", "F"),
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&missing, Refusal::NotFound(m) if m == "namespace \"team\" not found"),
        "{missing}"
    );
    let exists = plan(
        &b,
        Some(head),
        None,
        vec![Operation::CreateFlag {
            namespace: "default".into(),
            flag: Flag::new("my-flag", "Again"),
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&exists, Refusal::AlreadyExists(m) if m == "create resource \"flipt.core.Flag/default/my-flag\": already exists"),
        "{exists}"
    );
    let absent = plan(
        &b,
        Some(head),
        None,
        vec![Operation::UpdateFlag {
            namespace: "default".into(),
            flag: Flag::new("nope", "N"),
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&absent, Refusal::NotFound(m) if m == "update resource \"flipt.core.Flag/default/nope\": not found"),
        "{absent}"
    );

    // References: unknown segment, unknown variant, default variant.
    let unknown = plan(
        &b,
        Some(head),
        None,
        vec![Operation::CreateFlag {
            namespace: "default".into(),
            flag: flag_with_rule("ruled", "beta"),
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&unknown, Refusal::Invalid(m) if m == "flag default/ruled rule 1 references unknown segment \"beta\""),
        "{unknown}"
    );
    let (head, _) = apply(
        &b,
        head,
        vec![Operation::CreateSegment {
            namespace: "default".into(),
            segment: Segment::new("beta", "Beta"),
        }],
    )
    .await;
    let mut bad_variant = flag_with_rule("ruled", "beta");
    bad_variant.rules[0].distributions[0].variant = "off".into();
    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::CreateFlag {
            namespace: "default".into(),
            flag: bad_variant,
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::Invalid(m) if m.contains("rule 1 references unknown variant \"off\"")),
        "{err}"
    );
    let mut bad_default = Flag::new("d", "D");
    bad_default.default_variant = Some("x".into());
    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::CreateFlag {
            namespace: "default".into(),
            flag: bad_default,
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::Invalid(m) if m.contains("default variant \"x\"")),
        "{err}"
    );
    let mut rollout_on_variant_flag = Flag::new("r", "R");
    rollout_on_variant_flag.rollouts.push(Rollout {
        description: String::new(),
        rule: RolloutRule::Threshold(RolloutThreshold {
            percentage: 10.0,
            value: true,
        }),
    });
    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::CreateFlag {
            namespace: "default".into(),
            flag: rollout_on_variant_flag,
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::Invalid(m) if m.contains("rollouts are only allowed on boolean flags")),
        "{err}"
    );
    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::CreateFlag {
            namespace: "default".into(),
            flag: Flag::new("nameless", ""),
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::Invalid(m) if m.contains("name must not be empty")),
        "{err}"
    );

    let (head, _) = apply(
        &b,
        head,
        vec![Operation::CreateFlag {
            namespace: "default".into(),
            flag: flag_with_rule("ruled", "beta"),
        }],
    )
    .await;
    let mut boolean = Flag::new("kill", "Kill");
    boolean.r#type = FlagType::Boolean;
    boolean.rollouts.push(Rollout {
        description: String::new(),
        rule: RolloutRule::Segment(RolloutSegment {
            value: true,
            segments: vec!["beta".into()],
            segment_operator: SegmentOperator::Or,
        }),
    });
    let (head, _) = apply(
        &b,
        head,
        vec![Operation::CreateFlag {
            namespace: "default".into(),
            flag: boolean,
        }],
    )
    .await;

    // Segment in use.
    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::DeleteSegment {
            namespace: "default".into(),
            key: "beta".into(),
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::Invalid(m) if m == "segment \"beta\" is in use by flag \"ruled\" rule 1"),
        "{err}"
    );
    let (head, _) = apply(
        &b,
        head,
        vec![Operation::DeleteFlag {
            namespace: "default".into(),
            key: "ruled".into(),
        }],
    )
    .await;
    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::DeleteSegment {
            namespace: "default".into(),
            key: "beta".into(),
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::Invalid(m) if m == "segment \"beta\" is in use by flag \"kill\" rollout 1"),
        "{err}"
    );

    // Deleting absent things changes nothing.
    for op in [
        Operation::DeleteFlag {
            namespace: "default".into(),
            key: "ghost".into(),
        },
        Operation::DeleteFlag {
            namespace: "no-ns".into(),
            key: "ghost".into(),
        },
        Operation::DeleteSegment {
            namespace: "default".into(),
            key: "ghost".into(),
        },
    ] {
        assert_eq!(
            plan(&b, Some(head), None, vec![op]).await.unwrap(),
            Plan::Nothing
        );
    }
    // So does an update to the same content.
    let same = snap(&b, head)
        .await
        .flag("default", "kill")
        .unwrap()
        .clone();
    assert_eq!(
        plan(
            &b,
            Some(head),
            None,
            vec![Operation::UpdateFlag {
                namespace: "default".into(),
                flag: same
            }]
        )
        .await
        .unwrap(),
        Plan::Nothing
    );

    // Segment create/update/delete.
    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::CreateSegment {
            namespace: "default".into(),
            segment: Segment::new("beta", "B"),
        }],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Refusal::AlreadyExists(_)));
    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::UpdateSegment {
            namespace: "default".into(),
            segment: Segment::new("gamma", "G"),
        }],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Refusal::NotFound(_)));
    let mut bad = Segment::new("bad", "Bad");
    bad.constraints.push(Constraint {
        r#type: ComparisonType::Number,
        property: "n".into(),
        operator: "prefix".into(),
        ..Constraint::default()
    });
    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::CreateSegment {
            namespace: "default".into(),
            segment: bad,
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::Invalid(m) if m.contains("operator \"prefix\" is not valid")),
        "{err}"
    );
    let (head, msg) = apply(
        &b,
        head,
        vec![
            Operation::CreateSegment {
                namespace: "default".into(),
                segment: Segment::new("unused", "U"),
            },
            Operation::DeleteFlag {
                namespace: "default".into(),
                key: "kill".into(),
            },
            Operation::DeleteSegment {
                namespace: "default".into(),
                key: "beta".into(),
            },
        ],
    )
    .await;
    assert_eq!(
        msg,
        "updated multiple resources\n\ncreate segment default/unused\ndelete flag default/kill\ndelete segment default/beta"
    );
    assert!(snap(&b, head).await.segment("default", "unused").is_some());
    // Operations that cancel out make no commit.
    let ops = vec![
        Operation::CreateSegment {
            namespace: "default".into(),
            segment: Segment::new("tmp", "T"),
        },
        Operation::DeleteSegment {
            namespace: "default".into(),
            key: "tmp".into(),
        },
    ];
    assert_eq!(
        plan(&b, Some(head), None, ops).await.unwrap(),
        Plan::Nothing
    );
}

#[tokio::test]
async fn no_bad_key_reaches_the_tree() {
    let b = backend();
    let head = commit_files(&b, None, &[("README.md", "hi\n")]).await;
    let long = "k".repeat(256);
    for bad in [
        "..",
        "a/b",
        "",
        "../etc",
        ".git",
        long.as_str(),
        "a b",
        "x\0",
    ] {
        let mut with_variant = Flag::new("ok", "Ok");
        with_variant.variants.push(Variant {
            key: bad.into(),
            ..Variant::default()
        });
        for op in [
            Operation::CreateNamespace(Namespace::new(bad, "X")),
            Operation::DeleteNamespace(bad.into()),
            Operation::CreateFlag {
                namespace: bad.into(),
                flag: Flag::new("ok", "Ok"),
            },
            Operation::CreateFlag {
                namespace: "default".into(),
                flag: Flag::new(bad, "Bad"),
            },
            Operation::CreateFlag {
                namespace: "default".into(),
                flag: with_variant,
            },
            Operation::DeleteFlag {
                namespace: "default".into(),
                key: bad.into(),
            },
            Operation::CreateSegment {
                namespace: "default".into(),
                segment: Segment::new(bad, "S"),
            },
            Operation::DeleteSegment {
                namespace: "default".into(),
                key: bad.into(),
            },
        ] {
            let err = plan(&b, Some(head), None, vec![op.clone()])
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Refusal::Invalid(m) if m.starts_with("invalid ") && m.contains("key")),
                "{op:?}: {err}"
            );
        }
    }
}

#[tokio::test]
async fn writes_are_small_diffs_that_keep_the_version() {
    let b = backend();
    let mut text = String::from("version: \"1.0\"\nflags:\n");
    for n in 0..50 {
        text.push_str(&format!("- key: f{n}\n  name: F{n}\n  enabled: false\n"));
    }
    let head = commit_files(&b, None, &[("team/features.yaml", &text)]).await;
    let mut f = Flag::new("f10", "F10");
    f.enabled = true;
    let (head, _) = apply(
        &b,
        head,
        vec![Operation::UpdateFlag {
            namespace: "team".into(),
            flag: f,
        }],
    )
    .await;
    let after = read(&b, head, "team/features.yaml").await.unwrap();
    assert_eq!(changed_lines(&text, &after), 2, "{after}");
    // A boolean flag raises the document to 1.1 and nothing else changes.
    let mut t = Flag::new("toggle", "Toggle");
    t.r#type = FlagType::Boolean;
    let (head, _) = apply(
        &b,
        head,
        vec![Operation::CreateFlag {
            namespace: "team".into(),
            flag: t,
        }],
    )
    .await;
    let after2 = read(&b, head, "team/features.yaml").await.unwrap();
    assert!(after2.starts_with("version: \"1.1\"\n"));
    assert_eq!(changed_lines(&after, &after2), 2 + 4, "{after2}");
}

#[tokio::test]
async fn commit_messages_follow_flipt_yaml() {
    let b = backend();
    let template = "templates:\n  commit_message: '{{ .Environment.Name }}: {{ range $i, $c := .Changes }}{{ if $i }}, {{ end }}{{ $c.Verb }} {{ $c.Resource.Type.Name }} {{ $c.Resource.Key }}{{ end }}'\n";
    let head = commit_files(&b, None, &[("flipt.yml", template)]).await;
    let (head, msg) = apply(
        &b,
        head,
        vec![
            Operation::CreateFlag {
                namespace: "default".into(),
                flag: Flag::new("a", "A"),
            },
            Operation::CreateFlag {
                namespace: "default".into(),
                flag: Flag::new("b", "B"),
            },
        ],
    )
    .await;
    assert_eq!(msg, "production: create Flag a, create Flag b");
    // A server template applies when the repository has none.
    let head2 = commit_files(&b, None, &[("README.md", "x")]).await;
    let server = Arc::new(WriteTarget {
        server_commit_template: Some(Template::parse("server: {{ index .Changes 0 }}").unwrap()),
        ..WriteTarget::default()
    });
    let plan = ResourceWrite::new(
        server,
        Operation::CreateFlag {
            namespace: "default".into(),
            flag: Flag::new("x", "X"),
        },
    )
    .plan(WriteContext {
        backend: &b,
        head: Some(head2),
        base: None,
    })
    .await
    .unwrap();
    assert!(
        matches!(plan, Plan::Commit { message, .. } if message == "server: create flag default/x")
    );
    // A broken template refuses the write.
    let broken = commit(
        &b,
        Some(head),
        vec![put(
            "flipt.yml",
            "templates:\n  commit_message: '{{ .Nope }}'\n",
        )],
    )
    .await;
    let err = ResourceWrite::new(
        target(""),
        Operation::CreateFlag {
            namespace: "default".into(),
            flag: Flag::new("c", "C"),
        },
    )
    .plan(WriteContext {
        backend: &b,
        head: Some(broken),
        base: None,
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::FailedPrecondition(m) if m.contains("can't evaluate field Nope")),
        "{err}"
    );
}

#[tokio::test]
async fn environments_in_directories() {
    let b = backend();
    let head = commit_files(
        &b,
        None,
        &[
            ("prod/team/features.yaml", "flags: []\n"),
            ("staging/team/features.yaml", "flags: []\n"),
        ],
    )
    .await;
    let op = Operation::CreateFlag {
        namespace: "team".into(),
        flag: Flag::new("only-prod", "P"),
    };
    let Plan::Commit { changes, .. } = ResourceWrite::new(target("prod/"), op)
        .plan(WriteContext {
            backend: &b,
            head: Some(head),
            base: None,
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].path().as_str(), "prod/team/features.yaml");
    let head = commit(&b, Some(head), changes).await;
    assert!(
        Snapshot::build(&b, head, "prod")
            .await
            .unwrap()
            .flag("team", "only-prod")
            .is_some()
    );
    assert!(
        Snapshot::build(&b, head, "staging")
            .await
            .unwrap()
            .flag("team", "only-prod")
            .is_none()
    );
}

#[tokio::test]
async fn preconditions_are_per_resource() {
    let b = backend();
    let seed = "flags:\n  - key: a\n    name: A\n  - key: b\n    name: B\nsegments:\n  - key: s\n    name: S\n    match_type: ALL_MATCH_TYPE\n";
    let base = commit_files(
        &b,
        None,
        &[
            ("team/features.yaml", seed),
            ("other/features.yaml", "flags: []\n"),
        ],
    )
    .await;
    let update_a = |name: &str| Operation::UpdateFlag {
        namespace: "team".into(),
        flag: Flag::new("a", name),
    };

    // Another namespace changed: fine.
    let head = commit(
        &b,
        Some(base),
        vec![put(
            "other/features.yaml",
            "flags:\n  - key: o\n    name: O\n",
        )],
    )
    .await;
    assert!(matches!(
        plan(&b, Some(head), Some(base), vec![update_a("A2")])
            .await
            .unwrap(),
        Plan::Commit { .. }
    ));

    // Another flag of the same file changed: the file differs, the flag does not.
    let head = commit(
        &b,
        Some(base),
        vec![put(
            "team/features.yaml",
            seed.replace("name: B", "name: B2"),
        )],
    )
    .await;
    assert!(matches!(
        plan(&b, Some(head), Some(base), vec![update_a("A2")])
            .await
            .unwrap(),
        Plan::Commit { .. }
    ));

    // The flag itself changed: refused, naming it and the head.
    let head = commit(
        &b,
        Some(base),
        vec![put(
            "team/features.yaml",
            seed.replace("name: A", "name: A-other"),
        )],
    )
    .await;
    let err = plan(&b, Some(head), Some(base), vec![update_a("A2")])
        .await
        .unwrap_err();
    match err {
        Refusal::Precondition {
            resource,
            base: rb,
            head: rh,
        } => {
            assert_eq!((resource.as_str(), rb, rh), ("flag team/a", base, head));
        }
        other => panic!("{other}"),
    }
    // Same for a create whose flag appeared meanwhile, and a delete of a changed segment.
    let head = commit(
        &b,
        Some(base),
        vec![put(
            "team/features.yaml",
            format!("{seed}---\nflags:\n  - key: c\n    name: C\n"),
        )],
    )
    .await;
    let err = plan(
        &b,
        Some(head),
        Some(base),
        vec![Operation::CreateFlag {
            namespace: "team".into(),
            flag: Flag::new("c", "C"),
        }],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Refusal::Precondition { .. }));
    let head = commit(
        &b,
        Some(base),
        vec![put(
            "team/features.yaml",
            seed.replace("name: S", "name: S2"),
        )],
    )
    .await;
    let err = plan(
        &b,
        Some(head),
        Some(base),
        vec![Operation::DeleteSegment {
            namespace: "team".into(),
            key: "s".into(),
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::Precondition { resource, .. } if resource == "segment team/s"),
        "{err}"
    );

    // A namespace write touches the whole file.
    let head = commit(
        &b,
        Some(base),
        vec![put(
            "team/features.yaml",
            seed.replace("name: B", "name: B3"),
        )],
    )
    .await;
    let err = plan(
        &b,
        Some(head),
        Some(base),
        vec![Operation::UpdateNamespace(Namespace::new("team", "Team"))],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::Precondition { resource, .. } if resource == "namespace team"),
        "{err}"
    );
    let err = plan(
        &b,
        Some(head),
        Some(base),
        vec![Operation::DeleteNamespace("team".into())],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Refusal::Precondition { .. }));
    // ...and base == head is always fine.
    assert!(
        plan(
            &b,
            Some(head),
            Some(head),
            vec![Operation::DeleteNamespace("team".into())]
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn a_write_can_be_planned_again_on_a_newer_head() {
    let b = backend();
    let base = commit_files(
        &b,
        None,
        &[("team/features.yaml", "flags:\n  - key: a\n    name: A\n")],
    )
    .await;
    let write = ResourceWrite::new(
        target(""),
        Operation::CreateFlag {
            namespace: "team".into(),
            flag: Flag::new("mine", "Mine"),
        },
    );
    let first = write
        .plan(WriteContext {
            backend: &b,
            head: Some(base),
            base: Some(base),
        })
        .await
        .unwrap();
    // Meanwhile someone else added a flag: replaying on the new head keeps both.
    let theirs = commit(
        &b,
        Some(base),
        vec![put(
            "team/features.yaml",
            "flags:\n  - key: a\n    name: A\n  - key: theirs\n    name: Theirs\n",
        )],
    )
    .await;
    let second = write
        .plan(WriteContext {
            backend: &b,
            head: Some(theirs),
            base: Some(base),
        })
        .await
        .unwrap();
    assert_ne!(first, second);
    let Plan::Commit { changes, .. } = second else {
        panic!()
    };
    let head = commit(&b, Some(theirs), changes).await;
    let s = Snapshot::build(&b, head, "").await.unwrap();
    assert!(s.flag("team", "theirs").is_some() && s.flag("team", "mine").is_some());
    // And if they created the same flag meanwhile, the replay is refused.
    let same = commit(
        &b,
        Some(base),
        vec![put(
            "team/features.yaml",
            "flags:\n  - key: a\n    name: A\n  - key: mine\n    name: Theirs\n",
        )],
    )
    .await;
    assert!(
        write
            .plan(WriteContext {
                backend: &b,
                head: Some(same),
                base: Some(base)
            })
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_invalid_head_is_not_written_over() {
    let b = backend();
    let head = commit_files(
        &b,
        None,
        &[("team/features.yaml", "flags:\n  - key: a\n    nmae: typo\n")],
    )
    .await;
    let err = plan(
        &b,
        Some(head),
        None,
        vec![Operation::CreateFlag {
            namespace: "team".into(),
            flag: Flag::new("b", "B"),
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::FailedPrecondition(m) if m.contains("does not validate") && m.contains("nmae")),
        "{err}"
    );
    // A broken reference someone else committed: the problem was there before the write
    // (FAILED_PRECONDITION), whatever the write; the same reference made by the write is
    // the request's fault (INVALID_ARGUMENT).
    let broken = commit_files(
        &b,
        Some(head),
        &[(
            "team/features.yaml",
            "flags:\n  - key: a\n    name: A\n    variants:\n      - key: blue\n    rules:\n      - segment: nope\n",
        )],
    )
    .await;
    let err = plan(
        &b,
        Some(broken),
        None,
        vec![Operation::CreateFlag {
            namespace: "team".into(),
            flag: Flag::new("b", "B"),
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::FailedPrecondition(m) if m.contains("does not validate") && m.contains("unknown segment \"nope\"")),
        "{err}"
    );
    let fixed = commit_files(
        &b,
        Some(broken),
        &[("team/features.yaml", "flags:\n  - key: a\n    name: A\n")],
    )
    .await;
    let err = plan(
        &b,
        Some(fixed),
        None,
        vec![Operation::CreateFlag {
            namespace: "team".into(),
            flag: flag_with_rule("b", "nope"),
        }],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Refusal::Invalid(m) if m.contains("unknown segment \"nope\"")),
        "{err}"
    );
    // An empty branch: only `default` exists.
    let Plan::Commit { changes, .. } = plan(
        &b,
        None,
        None,
        vec![Operation::CreateFlag {
            namespace: "default".into(),
            flag: Flag::new("first", "First"),
        }],
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert!(
        matches!(&changes[0], Change::Put { path, .. } if path.as_str() == "default/features.yaml")
    );
}

/// Plans each operation with `shared` (whose cache the earlier ones filled) and with a fresh
/// target, asserts that the plans are the same, and commits them; the new head.
async fn plan_alike_and_commit(
    b: &dyn GitBackend,
    mut head: ObjectId,
    shared: &Arc<WriteTarget>,
    steps: impl IntoIterator<Item = Operation>,
) -> ObjectId {
    for op in steps {
        let ctx = WriteContext {
            backend: b,
            head: Some(head),
            base: None,
        };
        let cached = ResourceWrite::new(shared.clone(), op.clone())
            .plan(ctx)
            .await
            .unwrap();
        let fresh = ResourceWrite::new(target(""), op).plan(ctx).await.unwrap();
        assert_eq!(cached, fresh);
        let Plan::Commit { changes, .. } = cached else {
            panic!("every step changes something")
        };
        head = commit(b, Some(head), changes).await;
    }
    head
}

#[tokio::test]
async fn cached_files_give_the_same_plans() {
    let b = backend();
    let mut text = String::from("version: \"1.2\"\nflags:\n");
    for n in 0..20 {
        text.push_str(&format!("  - key: f{n}\n    name: F{n}\n"));
    }
    let head = commit_files(&b, None, &[("team/features.yaml", &text)]).await;
    let shared = target("");
    let mut steps: Vec<Operation> = Vec::new();
    for n in 0..6 {
        let mut f = Flag::new(format!("f{n}"), format!("F{n}"));
        f.enabled = true;
        f.metadata.insert("step".into(), serde_json::json!(n));
        steps.push(Operation::UpdateFlag {
            namespace: "team".into(),
            flag: f,
        });
        steps.push(Operation::CreateFlag {
            namespace: "team".into(),
            flag: Flag::new(format!("new-{n}"), "New"),
        });
        steps.push(Operation::DeleteFlag {
            namespace: "team".into(),
            key: format!("f{}", n + 10),
        });
    }
    let head = plan_alike_and_commit(&b, head, &shared, steps).await;
    assert!(!shared.cache.is_empty());
    Snapshot::build(&b, head, "").await.unwrap();
}

#[tokio::test]
async fn a_rebuild_after_a_write_takes_the_written_file_from_the_cache() {
    let b = backend();
    let c1 = commit_files(
        &b,
        None,
        &[
            ("default/features.yaml", "flags:\n  - key: a\n    name: A\n"),
            ("other/features.yaml", "namespace: other\nflags: []\n"),
        ],
    )
    .await;
    let s1 = snap(&b, c1).await;
    let target = target("");
    let write = ResourceWrite::new(
        target.clone(),
        Operation::CreateFlag {
            namespace: "default".into(),
            flag: Flag::new("b", "B"),
        },
    );
    let Plan::Commit { changes, .. } = write
        .plan(WriteContext {
            backend: &b,
            head: Some(c1),
            base: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    else {
        panic!("a new flag is a commit")
    };
    let c2 = commit(&b, Some(c1), changes).await;

    let warm = s1.rebuild_with(&b, c2, &target.cache).await.unwrap();
    assert_eq!(
        (
            warm.stats().files_parsed,
            warm.stats().files_from_writes,
            warm.stats().files_reused
        ),
        (0, 1, 1),
        "the written file comes from the cache, the other is reused"
    );
    let cold = snap(&b, c2).await;
    assert_eq!(cold.stats().files_parsed, 2);
    for ns in ["default", "other"] {
        let (w, c) = (warm.namespace(ns).unwrap(), cold.namespace(ns).unwrap());
        assert_eq!(
            (w.namespace(), w.file(), w.flags(), w.segments(), w.digest()),
            (c.namespace(), c.file(), c.flags(), c.segments(), c.digest()),
            "{ns}"
        );
    }
    assert_eq!(warm.flag("default", "b").unwrap().name, "B");

    // A file changed by someone else (not in the cache) is parsed.
    let c3 = commit(
        &b,
        Some(c2),
        vec![put(
            "default/features.yaml",
            "flags:\n  - key: c\n    name: C\n",
        )],
    )
    .await;
    let s3 = warm.rebuild_with(&b, c3, &target.cache).await.unwrap();
    assert_eq!(
        (s3.stats().files_parsed, s3.stats().files_from_writes),
        (1, 0)
    );
    assert!(s3.flag("default", "b").is_none() && s3.flag("default", "c").is_some());
}

#[tokio::test]
async fn after_a_cold_build_with_the_cache_writes_give_the_same_plans() {
    let b = backend();
    let mut team = String::from("# the team's flags\nversion: \"1.2\"\nflags:\n");
    for n in 0..20 {
        team.push_str(&format!("  - key: f{n}\n    name: F{n}\n    # note {n}\n"));
    }
    team.push_str("---\n# second document\nnamespace: team\nsegments:\n  - key: s\n    name: S\n    match_type: ALL_MATCH_TYPE\n");
    let other = "{\"namespace\": \"other\", \"flags\": [{\"key\": \"o\", \"name\": \"O\"}]}\n";
    let head = commit_files(
        &b,
        None,
        &[
            ("team/features.yaml", &team),
            ("other/features.json", other),
        ],
    )
    .await;
    let shared = target("");
    let s = Snapshot::build_with(&b, head, "", &shared.cache)
        .await
        .unwrap();
    assert_eq!(s.stats().files_parsed, 2);
    assert_eq!(
        (shared.cache.skeletons(), shared.cache.len()),
        (2, 0),
        "the build leaves what it parsed, without the text"
    );
    let steps = [
        Operation::UpdateFlag {
            namespace: "team".into(),
            flag: Flag::new("f3", "Changed"),
        },
        Operation::CreateFlag {
            namespace: "other".into(),
            flag: Flag::new("p", "P"),
        },
        Operation::DeleteFlag {
            namespace: "team".into(),
            key: "f7".into(),
        },
        Operation::CreateSegment {
            namespace: "team".into(),
            segment: Segment::new("t", "T"),
        },
    ];
    let head = plan_alike_and_commit(&b, head, &shared, steps).await;
    assert_eq!(
        shared.cache.skeletons(),
        0,
        "both files were written: what the build parsed is stale, and dropped"
    );
    let after = Snapshot::build(&b, head, "").await.unwrap();
    assert_eq!(after.flag("team", "f3").unwrap().name, "Changed");
    assert!(after.flag("team", "f7").is_none() && after.flag("other", "p").is_some());
    assert!(after.segment("team", "t").is_some());
}
