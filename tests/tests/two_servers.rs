//! Two servers on one remote, writing at once through the storage API: no lost update,
//! `ABORTED` only when the same file changed, and another user's push seen after `Refresh`
//! and after polling.

use integration_tests::Server;
use storage_proto::flipt::storage::v1 as pb;
use storage_proto::flipt::storage::v1::storage_service_client::StorageServiceClient;
use tonic::Code;

type Client = StorageServiceClient<tonic::transport::Channel>;

fn put(path: &str, content: &str) -> pb::FileChange {
    pb::FileChange {
        path: path.into(),
        change: Some(pb::file_change::Change::Content(
            content.as_bytes().to_vec(),
        )),
    }
}

async fn head(c: &mut Client) -> String {
    c.get_storage_status(pb::GetStorageStatusRequest {
        storage_id: "default".into(),
    })
    .await
    .unwrap()
    .into_inner()
    .head
}

async fn commit(
    c: &mut Client,
    path: &str,
    content: &str,
    base: Option<String>,
) -> Result<String, tonic::Status> {
    c.commit(pb::CommitRequest {
        storage_id: "default".into(),
        base_revision: base,
        changes: vec![put(path, content)],
        message: format!("put {path}"),
        author: None,
    })
    .await
    .map(|r| r.into_inner().revision)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_one_remote() {
    let remote = test_support::BareRemote::new();
    let server = test_support::GitHttpServer::builder(remote.project_root()).start();
    let config = format!(
        "storage:\n  default:\n    remote: {}\n    poll_interval: 1s\n",
        server.url(test_support::REMOTE_DIR_NAME)
    );
    let a = Server::start(&config);
    let b = Server::start(&config);
    let mut ca = Client::connect(a.grpc.clone()).await.unwrap();
    let mut cb = Client::connect(b.grpc.clone()).await.unwrap();

    // Different files at once, each with the revision its server served: both land.
    let (ra, rb) = (head(&mut ca).await, head(&mut cb).await);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (mut c, base) = if i % 2 == 0 {
            (ca.clone(), ra.clone())
        } else {
            (cb.clone(), rb.clone())
        };
        tasks.push(tokio::spawn(async move {
            commit(&mut c, &format!("f{i}.yaml"), "x", Some(base)).await
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(rev) => acked.push(rev),
            Err(s) => assert_eq!(
                s.code(),
                Code::Unavailable,
                "only a remote that kept moving may refuse: {s:?}"
            ),
        }
    }
    assert!(acked.len() >= 4, "{acked:?}");
    let log = remote.log("main");
    for r in &acked {
        assert_eq!(
            log.iter().filter(|l| l.trim() == r).count(),
            1,
            "acknowledged {r} is on the remote exactly once"
        );
    }

    // The same file from both servers with the same base revision: one wins, the other is
    // ABORTED (the file changed since the revision it read), never a silent overwrite.
    ca.refresh(pb::RefreshRequest {
        storage_id: "default".into(),
    })
    .await
    .unwrap();
    cb.refresh(pb::RefreshRequest {
        storage_id: "default".into(),
    })
    .await
    .unwrap();
    let base = head(&mut ca).await;
    assert_eq!(head(&mut cb).await, base);
    let first = commit(&mut ca, "same.yaml", "from a", Some(base.clone()))
        .await
        .unwrap();
    let second = commit(&mut cb, "same.yaml", "from b", Some(base))
        .await
        .unwrap_err();
    assert_eq!(second.code(), Code::Aborted, "{second:?}");
    assert_eq!(
        remote.show_file("main", "same.yaml").as_deref(),
        Some("from a")
    );
    assert_eq!(
        remote.head("main").as_deref().map(str::trim),
        Some(first.as_str())
    );

    // Another user's push: visible on b after Refresh at once, and on a by polling.
    let theirs = remote.cli_commit("main", &[("theirs.yaml", Some("t"))], "theirs");
    let refreshed = cb
        .refresh(pb::RefreshRequest {
            storage_id: "default".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(refreshed.changed);
    assert_eq!(refreshed.head, theirs.trim());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while head(&mut ca).await != theirs.trim() {
        assert!(
            std::time::Instant::now() < deadline,
            "polling did not pick up the push"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    remote.fsck();
    assert_eq!(a.stop(), Some(0));
    assert_eq!(b.stop(), Some(0));
}
