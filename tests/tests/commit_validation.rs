//! The storage API's `Commit` checks the features files and `flipt.yaml` it writes in an
//! environment directory like an API write (API.md, StorageService): a commit that would leave
//! one invalid is `INVALID_ARGUMENT`, naming file, line and problem, and commits nothing;
//! files outside the environments, deletions and problems in files the commit does not write
//! do not block it.

use std::time::{Duration, Instant};

use integration_tests::Server;
use storage_proto::environments as env;
use storage_proto::environments::environments_service_client::EnvironmentsServiceClient;
use storage_proto::flipt::storage::v1 as pb;
use storage_proto::flipt::storage::v1::storage_service_client::StorageServiceClient;
use tonic::Code;
use tonic::transport::Channel;

type Storage = StorageServiceClient<Channel>;
type Envs = EnvironmentsServiceClient<Channel>;

const GOOD: &str = "version: \"1.4\"\nflags:\n  - key: a\n    name: A\n    enabled: true\n";

fn put(path: &str, content: &str) -> pb::FileChange {
    pb::FileChange {
        path: path.into(),
        change: Some(pb::file_change::Change::Content(
            content.as_bytes().to_vec(),
        )),
    }
}

fn delete(path: &str) -> pb::FileChange {
    pb::FileChange {
        path: path.into(),
        change: Some(pb::file_change::Change::Delete(true)),
    }
}

async fn commit(c: &mut Storage, changes: Vec<pb::FileChange>) -> Result<String, tonic::Status> {
    c.commit(pb::CommitRequest {
        storage_id: "default".into(),
        base_revision: None,
        changes,
        message: "through Commit".into(),
        author: None,
    })
    .await
    .map(|r| r.into_inner().revision)
}

async fn status(c: &mut Storage) -> pb::StorageStatus {
    c.get_storage_status(pb::GetStorageStatusRequest {
        storage_id: "default".into(),
    })
    .await
    .expect("status")
    .into_inner()
}

/// The revision a flag is served at, or the error's code.
async fn served_flag(
    c: &mut Envs,
    environment: &str,
    namespace: &str,
    key: &str,
) -> Result<String, Code> {
    c.get_resource(env::GetResourceRequest {
        environment_key: environment.into(),
        namespace_key: namespace.into(),
        type_url: "flipt.core.Flag".into(),
        key: key.into(),
    })
    .await
    .map(|r| r.into_inner().revision)
    .map_err(|e| e.code())
}

/// Asserts that `result` is `INVALID_ARGUMENT` whose message has every one of `parts`.
fn assert_invalid(what: &str, result: &Result<String, tonic::Status>, parts: &[&str]) {
    let e = match result {
        Ok(rev) => panic!("{what}: committed as {rev}"),
        Err(e) => e,
    };
    assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
    for part in parts {
        assert!(
            e.message().contains(part),
            "{what}: {part:?} is not in {:?}",
            e.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn commit_validates_features_files_in_environment_directories() {
    let remote = test_support::BareRemote::new();
    let seed = remote.cli_commit(
        "main",
        &[
            ("production/default/features.yaml", Some(GOOD)),
            ("staging/default/features.yaml", Some(GOOD)),
        ],
        "seed",
    );
    let seed = seed.trim().to_owned();
    let s = Server::start(&format!(
        "storage:\n  default:\n    remote: {}\nenvironments:\n  production:\n    storage: default\n    directory: production\n    default: true\n  staging:\n    storage: default\n    directory: staging\n",
        remote.file_url()
    ));
    let ch = Channel::from_shared(s.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (mut st, mut envs) = (Storage::new(ch.clone()), Envs::new(ch));
    assert_eq!(status(&mut st).await.head, seed);

    // Refused, naming file, line and problem; nothing committed, locally or on the remote.
    let broken_yaml = "version: \"1.4\"\nflags:\n  - key: a\n    name: A\n  - key: [\n";
    let r = commit(
        &mut st,
        vec![put("production/team/features.yaml", broken_yaml)],
    )
    .await;
    assert_invalid(
        "malformed YAML",
        &r,
        &["production/team/features.yaml:", "do not validate"],
    );
    let broken_reference = "flags:\n  - key: f\n    name: F\n    variants:\n      - key: blue\n    rules:\n      - segment: ghost\n        distributions:\n          - variant: blue\n            rollout: 100\n";
    let r = commit(
        &mut st,
        vec![put("staging/team/features.yaml", broken_reference)],
    )
    .await;
    assert_invalid(
        "unknown segment",
        &r,
        &[
            "staging/team/features.yaml:2 (document 1, flag f): flag team/f rule 1 references unknown segment \"ghost\"",
        ],
    );
    let r = commit(&mut st, vec![put("production/default/features.yml", GOOD)]).await;
    assert_invalid(
        "a second features file",
        &r,
        &["namespace \"default\" has more than one features file"],
    );
    let r = commit(
        &mut st,
        vec![put(
            "production/team/features.yaml",
            "namespace: other\nflags: []\n",
        )],
    )
    .await;
    assert_invalid("a namespace not its folder's", &r, &["is not its folder's"]);
    let r = commit(
        &mut st,
        vec![put(
            "production/flipt.yaml",
            "templates:\n  commit_message: \"{{ if }}\"\n",
        )],
    )
    .await;
    assert_invalid("a broken flipt.yaml", &r, &["production/flipt.yaml"]);
    // One invalid file refuses the whole commit, its valid files too.
    let r = commit(
        &mut st,
        vec![
            put("production/ok/features.yaml", GOOD),
            put("production/team/features.yaml", broken_yaml),
        ],
    )
    .await;
    assert_invalid("a mixed commit", &r, &["production/team/features.yaml"]);
    assert_eq!(status(&mut st).await.head, seed, "nothing was committed");
    assert_eq!(remote.head("main").as_deref(), Some(seed.as_str()));
    assert_eq!(
        remote.show_file("main", "production/ok/features.yaml"),
        None
    );

    // Valid: committed, pushed and served.
    let team = "flags:\n  - key: checkout\n    name: Checkout\n    enabled: true\n";
    let rev = commit(&mut st, vec![put("production/team/features.yaml", team)])
        .await
        .expect("a valid features file is committed");
    assert_eq!(remote.head("main").as_deref(), Some(rev.as_str()));
    assert_eq!(
        served_flag(&mut envs, "production", "team", "checkout").await,
        Ok(rev.clone())
    );
    // Files outside the environment directories are not checked.
    let rev = commit(
        &mut st,
        vec![
            put("README.md", "flags: [\n"),
            put("elsewhere/team/features.yaml", "flags: [\n"),
            put("production/team/notes/features.yaml", "flags: [\n"),
        ],
    )
    .await
    .expect("files outside the environments are committed as they are");
    assert_eq!(status(&mut st).await.head, rev);
    assert_eq!(status(&mut st).await.rejected_commit, "");

    // Someone else pushes a broken file: it is not served, and it does not block a Commit of
    // another file; a Commit that fixes it is accepted and served.
    let broken = remote.cli_commit(
        "main",
        &[("production/broken/features.yaml", Some("flags: [\n"))],
        "broken, with git",
    );
    let broken = broken.trim().to_owned();
    st.refresh(pb::RefreshRequest {
        storage_id: "default".into(),
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = status(&mut st).await;
        if now.rejected_commit == broken {
            assert!(
                now.rejected_reason
                    .contains("production/broken/features.yaml"),
                "{}",
                now.rejected_reason
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broken commit is not named in the status: {now:?}\nserver log:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let other = "flags:\n  - key: b\n    name: B\n";
    let rev = commit(&mut st, vec![put("production/other/features.yaml", other)])
        .await
        .expect("a broken file elsewhere does not block a Commit");
    assert_eq!(remote.head("main").as_deref(), Some(rev.as_str()));
    // Writing the broken file without fixing it is refused.
    let r = commit(
        &mut st,
        vec![put("production/broken/features.yaml", "flags:\n  - [\n")],
    )
    .await;
    assert_invalid("still broken", &r, &["production/broken/features.yaml"]);
    let fixed = commit(
        &mut st,
        vec![put(
            "production/broken/features.yaml",
            "flags:\n  - key: c\n    name: C\n",
        )],
    )
    .await
    .expect("a fix is committed");
    assert_eq!(
        served_flag(&mut envs, "production", "broken", "c").await,
        Ok(fixed.clone())
    );
    assert_eq!(
        served_flag(&mut envs, "production", "other", "b").await,
        Ok(fixed.clone())
    );
    assert_eq!(
        status(&mut st).await.rejected_commit,
        "",
        "cleared by the fix"
    );

    // Deleting a features file is fine.
    let rev = commit(&mut st, vec![delete("production/other/features.yaml")])
        .await
        .expect("a deletion is committed");
    assert_eq!(
        served_flag(&mut envs, "production", "other", "b").await,
        Err(Code::NotFound)
    );
    assert_eq!(
        served_flag(&mut envs, "production", "team", "checkout").await,
        Ok(rev)
    );
    assert_eq!(s.stop(), Some(0));
}
