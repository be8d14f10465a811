//! `flipt-storage serve` end to end: the storage API through a client generated from the
//! `.proto` files, the HTTP endpoints, authentication, webhooks, signals.

use integration_tests::{Server, http_get, http_post, hub_signature, metric};
use storage_proto::flipt::storage::v1 as pb;
use storage_proto::flipt::storage::v1::storage_service_client::StorageServiceClient;
use tonic::Code;

async fn client(s: &Server) -> StorageServiceClient<tonic::transport::Channel> {
    StorageServiceClient::connect(s.grpc.clone())
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_configuration_serves_one_memory_storage() {
    let s = Server::start("");
    let mut c = client(&s).await;
    let list = c
        .list_storages(pb::ListStoragesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.storages.len(), 1);
    let st = &list.storages[0];
    assert_eq!(
        (
            st.id.as_str(),
            st.backend.as_str(),
            st.branch.as_str(),
            st.remote.as_str()
        ),
        ("default", "memory", "main", "")
    );
    assert_eq!(st.head.len(), 40);
    let readme = c
        .read_file(pb::ReadFileRequest {
            storage_id: "default".into(),
            path: "README.md".into(),
            revision: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        String::from_utf8_lossy(&readme.content).starts_with("# Flipt Configuration Repository")
    );
    assert_eq!(readme.revision, st.head);
    assert_eq!(http_get(&format!("{}/health", s.http)).0, 200);
    let (code, body) = http_get(&format!("{}/ready", s.http));
    assert_eq!(code, 200, "{body}");
    let (code, metrics) = http_get(&format!("{}/metrics", s.http));
    assert_eq!(code, 200);
    assert!(
        metrics.contains("flipt_storage_syncs_total{storage=\"default\",result=\"ok\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("flipt_grpc_request_duration_seconds_count{method=\"/flipt.storage.v1.StorageService/ListStorages\"} 1"), "{metrics}");
    // The allocator's counters (glibc, as on the machines this is tested on): a server that
    // serves a repository has a live heap of some size.
    let gauge = |name: &str| metric(&metrics, name) as u64;
    assert!(
        gauge("flipt_storage_heap_in_use_bytes") > 100_000,
        "{metrics}"
    );
    gauge("flipt_storage_heap_free_held_bytes");
    // The memory storage holds its seed commit (README.md) in RAM; nothing compacted yet.
    assert!(gauge("flipt_storage_memory_held_bytes") > 100, "{metrics}");
    assert_eq!(
        gauge("flipt_storage_memory_compactions_total"),
        0,
        "{metrics}"
    );
    assert_eq!(
        gauge("flipt_storage_memory_pack_merges_total"),
        0,
        "{metrics}"
    );
    assert!(s.log().contains("listening grpc="), "{}", s.log());
    assert_eq!(s.stop(), Some(0), "SIGTERM is a clean exit");
}

#[tokio::test(flavor = "multi_thread")]
async fn commits_files_history_and_watch() {
    let s = Server::start("");
    let mut c = client(&s).await;
    let head = c
        .get_storage_status(pb::GetStorageStatusRequest {
            storage_id: "default".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .head;
    let mut watch = c
        .watch(pb::WatchRequest {
            storage_id: "default".into(),
            from_revision: None,
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.to, head);
    let change = |path: &str, content: &str| pb::FileChange {
        path: path.into(),
        change: Some(pb::file_change::Change::Content(
            content.as_bytes().to_vec(),
        )),
    };
    let out = c
        .commit(pb::CommitRequest {
            storage_id: "default".into(),
            base_revision: Some(head.clone()),
            changes: vec![change(
                "production/default/features.yaml",
                "version: \"1.6\"\n",
            )],
            message: "add features".into(),
            author: Some(pb::Author {
                name: "Ada".into(),
                email: "ada@example.com".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(out.committed);
    let event = watch.message().await.unwrap().unwrap();
    assert_eq!(
        (event.from.as_str(), event.to.as_str()),
        (head.as_str(), out.revision.as_str())
    );
    assert_eq!(
        event.changed_paths,
        vec!["production/default/features.yaml".to_owned()]
    );
    let files = c
        .list_files(pb::ListFilesRequest {
            storage_id: "default".into(),
            prefix: Some("production".into()),
            revision: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        files
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        ["production/default/features.yaml"]
    );
    let history = c
        .list_commits(pb::ListCommitsRequest {
            storage_id: "default".into(),
            from: None,
            limit: Some(10),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.commits.len(), 2);
    assert_eq!(history.commits[0].message, "add features");
    assert_eq!(history.commits[0].author.as_ref().unwrap().name, "Ada");
    assert_eq!(
        history.commits[0].changed_paths,
        vec!["production/default/features.yaml".to_owned()]
    );
    // A stale base revision and a changed file: ABORTED; bad input: INVALID_ARGUMENT.
    let stale = c
        .commit(pb::CommitRequest {
            storage_id: "default".into(),
            base_revision: Some(head.clone()),
            changes: vec![change("production/default/features.yaml", "x")],
            message: "m".into(),
            author: None,
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    for bad in ["../escape", ".git/config", "/abs", "a\0b"] {
        let e = c
            .commit(pb::CommitRequest {
                storage_id: "default".into(),
                base_revision: None,
                changes: vec![change(bad, "x")],
                message: "m".into(),
                author: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}: {e:?}");
    }
    let e = c
        .commit(pb::CommitRequest {
            storage_id: "default".into(),
            base_revision: Some("deadbeef".into()),
            changes: vec![change("a", "x")],
            message: "m".into(),
            author: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .read_file(pb::ReadFileRequest {
            storage_id: "nope".into(),
            path: "README.md".into(),
            revision: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .suspend(pb::SuspendRequest {
            storage_id: "default".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "no remote to suspend");
    assert_eq!(s.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_and_webhooks() {
    let remote = test_support::BareRemote::new();
    let config = format!(
        "storage:\n  default:\n    remote: {}\n    webhook_secret: hook-secret\nauthentication:\n  required: true\n  methods:\n    token:\n      enabled: true\n      storage:\n        tokens:\n          ci:\n            credential: tok-123\n",
        remote.file_url()
    );
    let s = Server::start(&config);
    let mut c = client(&s).await;
    let e = c
        .list_storages(pb::ListStoragesRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut wrong = tonic::Request::new(pb::ListStoragesRequest {});
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(
        c.list_storages(wrong).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut right = tonic::Request::new(pb::ListStoragesRequest {});
    right
        .metadata_mut()
        .insert("authorization", "Bearer tok-123".parse().unwrap());
    let list = c.list_storages(right).await.unwrap().into_inner();
    assert_eq!(list.storages[0].remote, remote.file_url());
    // Health stays open.
    assert_eq!(http_get(&format!("{}/health", s.http)).0, 200);
    // Webhooks: a bad or missing signature is refused and triggers nothing.
    let theirs = remote.cli_commit("main", &[("x", Some("1"))], "theirs");
    let url = format!("{}/api/v1/storages/default/webhook", s.http);
    assert_eq!(http_post(&url, "{}", &[]).0, 401);
    assert_eq!(
        http_post(&url, "{}", &[("X-Hub-Signature-256", "sha256=00")]).0,
        401
    );
    assert_eq!(
        http_post(
            &format!("{}/api/v1/storages/other/webhook", s.http),
            "{}",
            &[]
        )
        .0,
        404
    );
    let status = |c: &mut StorageServiceClient<tonic::transport::Channel>| {
        let mut r = tonic::Request::new(pb::GetStorageStatusRequest {
            storage_id: "default".into(),
        });
        r.metadata_mut()
            .insert("authorization", "Bearer tok-123".parse().unwrap());
        let mut c = c.clone();
        async move { c.get_storage_status(r).await.unwrap().into_inner().head }
    };
    assert_ne!(
        status(&mut c).await,
        theirs.trim(),
        "not fetched before the webhook"
    );
    assert_eq!(
        http_post(
            &url,
            "{}",
            &[("X-Hub-Signature-256", &hub_signature("hook-secret", "{}"))]
        )
        .0,
        202
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while status(&mut c).await != theirs.trim() {
        assert!(
            std::time::Instant::now() < deadline,
            "the webhook did not trigger a refresh"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        !s.log().contains("tok-123") && !s.log().contains("hook-secret"),
        "{}",
        s.log()
    );
    assert_eq!(s.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_strict_start_against_an_unreachable_remote_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yml");
    std::fs::write(&config, "storage:\n  default:\n    remote: http://127.0.0.1:9/remote.git\nserver:\n  grpc_port: 0\n  http_port: 0\n").unwrap();
    let out = integration_tests::run(
        integration_tests::flipt_storage()
            .arg("serve")
            .arg("--config")
            .arg(&config),
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("starting storage `default`"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_made_on_disk_is_served_and_announced_on_watch() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("flags");
    test_support::git(
        &["init", "-q", "-b", "main", repo.to_str().unwrap()],
        dir.path(),
    );
    std::fs::write(repo.join("a.yaml"), "1").unwrap();
    test_support::git(&["add", "."], &repo);
    test_support::git(&["commit", "-qm", "first"], &repo);
    let config = format!(
        "storage:\n  default:\n    backend:\n      type: local\n      path: {}\n",
        repo.display()
    );
    let s = Server::start(&config);
    let mut c = client(&s).await;
    let mut watch = c
        .watch(pb::WatchRequest {
            storage_id: "default".into(),
            from_revision: None,
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    std::fs::create_dir_all(repo.join("production")).unwrap();
    std::fs::write(repo.join("production/b.yaml"), "2").unwrap();
    test_support::git(&["add", "."], &repo);
    test_support::git(&["commit", "-qm", "second"], &repo);
    let second = test_support::git(&["rev-parse", "HEAD"], &repo)
        .trim()
        .to_owned();
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let e = watch.message().await.unwrap().unwrap();
            if !e.heartbeat {
                return e;
            }
        }
    })
    .await
    .expect("the external commit is announced within 10 s");
    assert_eq!(
        (event.from.as_str(), event.to.as_str()),
        (first.to.as_str(), second.as_str())
    );
    assert_eq!(event.changed_paths, vec!["production/b.yaml".to_owned()]);
    let read = c
        .read_file(pb::ReadFileRequest {
            storage_id: "default".into(),
            path: "production/b.yaml".into(),
            revision: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (read.content.as_slice(), read.revision.as_str()),
        (&b"2"[..], second.as_str())
    );
    drop(watch);
    assert_eq!(s.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_refuse_oversized_requests_and_too_many_streams() {
    let remote = test_support::BareRemote::new();
    let config = format!(
        "storage:\n  default:\n    remote: {}\n    webhook_secret: s\n",
        remote.file_url()
    );
    // Server::start writes the `server:` section itself: the limits come as variables.
    let s = Server::start_with_env(
        &config,
        &[
            ("FLIPT_SERVER_MAX_REQUEST_BYTES", "2048"),
            ("FLIPT_SERVER_MAX_CONCURRENT_STREAMS", "2"),
        ],
    );
    let mut c = client(&s).await;
    let big = pb::FileChange {
        path: "big".into(),
        change: Some(pb::file_change::Change::Content(vec![b'x'; 4096])),
    };
    let e = c
        .commit(pb::CommitRequest {
            storage_id: "default".into(),
            base_revision: None,
            changes: vec![big],
            message: "m".into(),
            author: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    assert_eq!(
        remote.show_file("main", "big"),
        None,
        "nothing was committed"
    );
    let mut streams = Vec::new();
    for _ in 0..2 {
        streams.push(
            c.watch(pb::WatchRequest {
                storage_id: "default".into(),
                from_revision: None,
            })
            .await
            .unwrap()
            .into_inner(),
        );
    }
    let e = c
        .watch(pb::WatchRequest {
            storage_id: "default".into(),
            from_revision: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    drop(streams);
    // A webhook body over the limit is refused before anything else.
    let url = format!("{}/api/v1/storages/default/webhook", s.http);
    let huge = "x".repeat(2 << 20);
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    std::fs::write(&body, huge).unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "--data-binary",
        ])
        .arg(format!("@{}", body.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "413");
    assert_eq!(s.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn health_per_storage_and_watch_from_a_revision() {
    let s = Server::start("");
    let channel = tonic::transport::Channel::from_shared(s.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in ["", "storage/default"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    let e = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "storage/nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // A Watch from an older revision starts with the changes since.
    let mut c = client(&s).await;
    let start = c
        .get_storage_status(pb::GetStorageStatusRequest {
            storage_id: "default".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .head;
    let put = |path: &str| pb::FileChange {
        path: path.into(),
        change: Some(pb::file_change::Change::Content(b"x".to_vec())),
    };
    for p in ["a.yaml", "b/c.yaml"] {
        c.commit(pb::CommitRequest {
            storage_id: "default".into(),
            base_revision: None,
            changes: vec![put(p)],
            message: "m".into(),
            author: None,
        })
        .await
        .unwrap();
    }
    let mut w = c
        .watch(pb::WatchRequest {
            storage_id: "default".into(),
            from_revision: Some(start.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    let first = w.message().await.unwrap().unwrap();
    assert_eq!(first.from, start);
    assert_eq!(
        first.changed_paths,
        vec!["a.yaml".to_owned(), "b/c.yaml".to_owned()]
    );
    let e = c
        .watch(pb::WatchRequest {
            storage_id: "default".into(),
            from_revision: Some("zz".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    drop(w);
    assert_eq!(s.stop(), Some(0));
}

/// A memory storage's scratch directory lives under `$TMPDIR` while the server runs and is
/// removed when it stops on SIGTERM (the server waits for a pack merge in flight first).
#[test]
fn memory_scratch_directory_is_removed_on_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch_dirs = || -> Vec<String> {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("flipt-memory-"))
            .collect()
    };
    let s = Server::builder("")
        .env("TMPDIR", tmp.path().to_str().unwrap())
        .start();
    assert_eq!(scratch_dirs().len(), 1, "{:?}", scratch_dirs());
    assert_eq!(s.stop(), Some(0));
    assert!(
        scratch_dirs().is_empty(),
        "left behind: {:?}",
        scratch_dirs()
    );
}
