//! Flipt's environments API end to end, with a client generated from the `.proto` files:
//! namespaces, flags and segments created, read, listed, updated and deleted; revisions
//! threaded through; the error codes of API.md §1; branch environments.

use integration_tests::Server;
use prost::Message as _;
use storage_proto::environments as pb;
use storage_proto::environments::environments_service_client::EnvironmentsServiceClient;
use storage_proto::flipt::core;
use tonic::Code;

type Client = EnvironmentsServiceClient<tonic::transport::Channel>;

fn flag_any(flag: &core::Flag) -> prost_types::Any {
    prost_types::Any {
        type_url: "type.googleapis.com/flipt.core.Flag".into(),
        value: flag.encode_to_vec(),
    }
}

fn segment_any(segment: &core::Segment) -> prost_types::Any {
    prost_types::Any {
        type_url: "flipt.core.Segment".into(),
        value: segment.encode_to_vec(),
    }
}

fn flag(key: &str, segment: Option<&str>) -> core::Flag {
    core::Flag {
        key: key.into(),
        name: key.into(),
        r#type: core::FlagType::VariantFlagType as i32,
        enabled: true,
        variants: vec![core::Variant {
            key: "blue".into(),
            name: "Blue".into(),
            ..Default::default()
        }],
        rules: segment
            .map(|s| core::Rule {
                segments: vec![s.into()],
                distributions: vec![core::Distribution {
                    variant: "blue".into(),
                    rollout: 100.0,
                }],
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

async fn put_flag(
    c: &mut Client,
    ns: &str,
    f: &core::Flag,
    revision: &str,
    create: bool,
) -> Result<String, tonic::Status> {
    let req = pb::UpdateResourceRequest {
        environment_key: "default".into(),
        namespace_key: ns.into(),
        key: f.key.clone(),
        payload: Some(flag_any(f)),
        revision: revision.into(),
    };
    let r = if create {
        c.create_resource(req).await
    } else {
        c.update_resource(req).await
    };
    r.map(|r| r.into_inner().revision)
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaces_flags_and_segments_through_flipts_api() {
    let s = Server::start("");
    let mut c = Client::connect(s.grpc.clone()).await.unwrap();
    let envs = c
        .list_environments(pb::ListEnvironmentsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(envs.environments.len(), 1);
    assert_eq!(envs.environments[0].key, "default");
    assert_eq!(
        envs.environments[0].configuration.as_ref().unwrap().r#ref,
        "main"
    );

    // `default` always exists and is protected.
    let ns = c
        .list_namespaces(pb::ListNamespacesRequest {
            environment_key: "default".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ns.items[0].key, "default");
    assert_eq!(ns.items[0].protected, Some(true));
    let mut revision = ns.revision.clone();
    let e = c
        .create_namespace(pb::UpdateNamespaceRequest {
            environment_key: "default".into(),
            key: "default".into(),
            name: "d".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    let e = c
        .delete_namespace(pb::DeleteNamespaceRequest {
            environment_key: "default".into(),
            key: "default".into(),
            revision: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // A namespace, threaded revisions.
    let created = c
        .create_namespace(pb::UpdateNamespaceRequest {
            environment_key: "default".into(),
            key: "team-a".into(),
            name: "Team A".into(),
            description: Some("first".into()),
            protected: None,
            revision: revision.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(created.revision, revision);
    revision = created.revision;
    let got = c
        .get_namespace(pb::GetNamespaceRequest {
            environment_key: "default".into(),
            key: "team-a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            got.namespace.as_ref().unwrap().name.as_str(),
            got.revision.as_str()
        ),
        ("Team A", revision.as_str())
    );

    // A segment, then a flag that uses it; unknown segments are refused.
    let seg = core::Segment {
        key: "beta".into(),
        name: "Beta".into(),
        match_type: core::MatchType::AllMatchType as i32,
        ..Default::default()
    };
    revision = c
        .create_resource(pb::UpdateResourceRequest {
            environment_key: "default".into(),
            namespace_key: "team-a".into(),
            key: "beta".into(),
            payload: Some(segment_any(&seg)),
            revision: revision.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .revision;
    let e = put_flag(&mut c, "team-a", &flag("bad", Some("nope")), "", true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("nope"), "{e:?}");
    revision = put_flag(
        &mut c,
        "team-a",
        &flag("new-ui", Some("beta")),
        &revision,
        true,
    )
    .await
    .unwrap();
    let e = put_flag(&mut c, "team-a", &flag("new-ui", None), "", true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    let e = put_flag(&mut c, "team-a", &flag("missing", None), "", false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = put_flag(&mut c, "no-such-ns", &flag("x", None), "", true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    for bad in ["../x", "a/b", "has space"] {
        let e = put_flag(&mut c, "team-a", &flag(bad, None), "", true)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}: {e:?}");
    }

    // Read back, listed, with the revision of the last write.
    let got = c
        .get_resource(pb::GetResourceRequest {
            environment_key: "default".into(),
            namespace_key: "team-a".into(),
            type_url: "flipt.core.Flag".into(),
            key: "new-ui".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.revision, revision);
    let payload = got.resource.unwrap().payload.unwrap();
    assert_eq!(payload.type_url, "flipt.core.Flag");
    let decoded = core::Flag::decode(payload.value.as_slice()).unwrap();
    assert_eq!(
        (decoded.key.as_str(), decoded.rules[0].segments[0].as_str()),
        ("new-ui", "beta")
    );
    let list = c
        .list_resources(pb::ListResourcesRequest {
            environment_key: "default".into(),
            namespace_key: "team-a".into(),
            type_url: "flipt.core.Segment".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.resources.len(), 1);
    let e = c
        .list_resources(pb::ListResourcesRequest {
            environment_key: "default".into(),
            namespace_key: "team-a".into(),
            type_url: "flipt.core.Nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .get_namespace(pb::GetNamespaceRequest {
            environment_key: "nope".into(),
            key: "default".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Revisions: a write to another resource with an older revision applies; a change to the
    // same resource since the client's revision is ABORTED; a malformed one is invalid.
    let before = revision.clone();
    let mut changed = flag("new-ui", Some("beta"));
    changed.enabled = false;
    revision = put_flag(&mut c, "team-a", &changed, &revision, false)
        .await
        .unwrap();
    let other = put_flag(&mut c, "team-a", &flag("other", None), &before, true)
        .await
        .unwrap();
    assert_ne!(other, revision);
    let e = put_flag(&mut c, "team-a", &flag("new-ui", None), &before, false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted, "{e:?}");
    let e = put_flag(&mut c, "team-a", &flag("new-ui", None), "deadbeef", false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // A segment in use cannot be deleted; deleting something absent is OK with no commit.
    let e = c
        .delete_resource(pb::DeleteResourceRequest {
            environment_key: "default".into(),
            namespace_key: "team-a".into(),
            type_url: "flipt.core.Segment".into(),
            key: "beta".into(),
            revision: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let head = c
        .list_namespaces(pb::ListNamespacesRequest {
            environment_key: "default".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .revision;
    let gone = c
        .delete_resource(pb::DeleteResourceRequest {
            environment_key: "default".into(),
            namespace_key: "team-a".into(),
            type_url: "flipt.core.Flag".into(),
            key: "never-was".into(),
            revision: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        gone.revision, head,
        "no commit for deleting something absent"
    );

    // Branch environments.
    let b = c
        .branch_environment(pb::BranchEnvironmentRequest {
            environment_key: "default".into(),
            key: "experiment".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        b.configuration.as_ref().unwrap().r#ref,
        "flipt/default/experiment"
    );
    let e = c
        .branch_environment(pb::BranchEnvironmentRequest {
            environment_key: "default".into(),
            key: "experiment".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    let req = pb::UpdateResourceRequest {
        environment_key: "experiment".into(),
        namespace_key: "team-a".into(),
        key: "branch-only".into(),
        payload: Some(flag_any(&flag("branch-only", None))),
        revision: String::new(),
    };
    c.create_resource(req).await.unwrap();
    let e = c
        .get_resource(pb::GetResourceRequest {
            environment_key: "default".into(),
            namespace_key: "team-a".into(),
            type_url: "flipt.core.Flag".into(),
            key: "branch-only".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::NotFound,
        "the base does not see the branch's change"
    );
    let changes = c
        .list_branched_environment_changes(pb::ListBranchedEnvironmentChangesRequest {
            environment_key: "default".into(),
            key: "experiment".into(),
            from: None,
            limit: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changes.changes.len(), 1);
    assert!(
        changes.changes[0].message.contains("branch-only"),
        "{:?}",
        changes.changes[0]
    );
    let branches = c
        .list_environment_branches(pb::ListEnvironmentBranchesRequest {
            environment_key: "default".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(branches.branches.len(), 1);
    c.delete_branch_environment(pb::DeleteBranchEnvironmentRequest {
        environment_key: "default".into(),
        key: "experiment".into(),
    })
    .await
    .unwrap();
    let e = c
        .get_namespace(pb::GetNamespaceRequest {
            environment_key: "experiment".into(),
            key: "default".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .propose_environment(pb::ProposeEnvironmentRequest {
            environment_key: "default".into(),
            key: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    assert_eq!(s.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_that_does_not_validate_is_not_served() {
    let remote = test_support::BareRemote::new();
    let good = "version: \"1.4\"\nnamespace: default\nflags:\n  - key: a\n    name: A\n    enabled: true\n";
    let first = remote.cli_commit("main", &[("default/features.yaml", Some(good))], "good");
    let s = Server::start(&format!(
        "storage:\n  default:\n    remote: {}\n",
        remote.file_url()
    ));
    let mut c = Client::connect(s.grpc.clone()).await.unwrap();
    let get = |c: &mut Client| {
        let mut c = c.clone();
        async move {
            c.get_resource(pb::GetResourceRequest {
                environment_key: "default".into(),
                namespace_key: "default".into(),
                type_url: "flipt.core.Flag".into(),
                key: "a".into(),
            })
            .await
            .unwrap()
            .into_inner()
        }
    };
    assert_eq!(get(&mut c).await.revision, first.trim());
    // Another user pushes broken YAML: after a refresh the last good state is still served.
    let broken = remote.cli_commit(
        "main",
        &[("default/features.yaml", Some("flags: [\n"))],
        "broken",
    );
    let mut storage =
        storage_proto::flipt::storage::v1::storage_service_client::StorageServiceClient::connect(
            s.grpc.clone(),
        )
        .await
        .unwrap();
    storage
        .refresh(storage_proto::flipt::storage::v1::RefreshRequest {
            storage_id: "default".into(),
        })
        .await
        .unwrap();
    let served = get(&mut c).await;
    assert_eq!(
        served.revision,
        first.trim(),
        "the broken commit is not served"
    );
    // The storage status names the commit and the problem.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let st = storage
            .get_storage_status(storage_proto::flipt::storage::v1::GetStorageStatusRequest {
                storage_id: "default".into(),
            })
            .await
            .unwrap()
            .into_inner();
        if st.rejected_commit == broken.trim() {
            assert!(
                st.rejected_reason.contains("default/features.yaml"),
                "{}",
                st.rejected_reason
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rejected commit is not in the status: {st:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The next good commit is served.
    let fixed = remote.cli_commit(
        "main",
        &[(
            "default/features.yaml",
            Some(&good.replace("name: A", "name: A2")),
        )],
        "fixed",
    );
    storage
        .refresh(storage_proto::flipt::storage::v1::RefreshRequest {
            storage_id: "default".into(),
        })
        .await
        .unwrap();
    let served = get(&mut c).await;
    assert_eq!(served.revision, fixed.trim());
    let st = storage
        .get_storage_status(storage_proto::flipt::storage::v1::GetStorageStatusRequest {
            storage_id: "default".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.rejected_commit, "", "cleared by the good commit");
    let flag =
        core::Flag::decode(served.resource.unwrap().payload.unwrap().value.as_slice()).unwrap();
    assert_eq!(flag.name, "A2");
    assert_eq!(s.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_writing_the_same_and_different_flags() {
    let remote = test_support::BareRemote::new();
    let server = test_support::GitHttpServer::builder(remote.project_root()).start();
    let config = format!(
        "storage:\n  default:\n    remote: {}\n",
        server.url(test_support::REMOTE_DIR_NAME)
    );
    let a = Server::start(&config);
    let b = Server::start(&config);
    let ca = Client::connect(a.grpc.clone()).await.unwrap();
    let cb = Client::connect(b.grpc.clone()).await.unwrap();
    // Different flags at once from both servers: every acknowledged one is on the remote once.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let mut c = if i % 2 == 0 { ca.clone() } else { cb.clone() };
        tasks.push(tokio::spawn(async move {
            put_flag(&mut c, "default", &flag(&format!("f{i}"), None), "", true).await
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => acked.push(r),
            Err(e) => assert_eq!(
                e.code(),
                Code::Unavailable,
                "only a remote that kept moving may refuse: {e:?}"
            ),
        }
    }
    assert!(acked.len() >= 4, "{acked:?}");
    let log = remote.log("main");
    for r in &acked {
        assert_eq!(log.iter().filter(|l| l.trim() == r).count(), 1);
    }
    // The same flag from both, with the same revision: one update wins, the other is ABORTED.
    let mut ca = ca;
    let mut cb = cb;
    let mut sa =
        storage_proto::flipt::storage::v1::storage_service_client::StorageServiceClient::connect(
            a.grpc.clone(),
        )
        .await
        .unwrap();
    let mut sb =
        storage_proto::flipt::storage::v1::storage_service_client::StorageServiceClient::connect(
            b.grpc.clone(),
        )
        .await
        .unwrap();
    sa.refresh(storage_proto::flipt::storage::v1::RefreshRequest {
        storage_id: "default".into(),
    })
    .await
    .unwrap();
    sb.refresh(storage_proto::flipt::storage::v1::RefreshRequest {
        storage_id: "default".into(),
    })
    .await
    .unwrap();
    let rev = ca
        .list_namespaces(pb::ListNamespacesRequest {
            environment_key: "default".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .revision;
    let mut from_a = flag("f0", None);
    from_a.name = "from a".into();
    let mut from_b = flag("f0", None);
    from_b.name = "from b".into();
    put_flag(&mut ca, "default", &from_a, &rev, false)
        .await
        .unwrap();
    let e = put_flag(&mut cb, "default", &from_b, &rev, false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted, "{e:?}");
    assert!(
        remote
            .show_file("main", "default/features.yaml")
            .unwrap()
            .contains("from a")
    );
    assert_eq!(a.stop(), Some(0));
    assert_eq!(b.stop(), Some(0));
}
