//! Hostile input against the real binary, through both APIs: keys, namespaces and paths with
//! `..`, `/`, NUL, nothing, 10,000 characters and Unicode look-alikes; payloads just under and
//! over `server.max_request_bytes`; malformed `Any` payloads and revisions; YAML bombs and
//! deep nesting pushed by another user; unknown gRPC methods; every secret of a configuration
//! checked against everything the server says; unauthenticated and wrongly signed requests.
//! Each refusal has a clear code, and nothing changes: the head and the commit count are
//! compared before and after.

use integration_tests::{Server, http_get, http_post, hub_signature, metric};
use prost::Message as _;
use storage_proto::environments as env_pb;
use storage_proto::environments::environments_service_client::EnvironmentsServiceClient;
use storage_proto::flipt::core;
use storage_proto::flipt::storage::v1 as st;
use storage_proto::flipt::storage::v1::storage_service_client::StorageServiceClient;
use tonic::Code;

type Env = EnvironmentsServiceClient<tonic::transport::Channel>;
type Storage = StorageServiceClient<tonic::transport::Channel>;

// ------------------------------------------------------------------------------- helpers

async fn clients(s: &Server) -> (Env, Storage) {
    let channel = tonic::transport::Channel::from_shared(s.grpc.clone())
        .unwrap()
        .connect()
        .await
        .expect("connect");
    (Env::new(channel.clone()), Storage::new(channel))
}

fn flag(key: &str) -> core::Flag {
    core::Flag {
        key: key.into(),
        name: "Flag".into(),
        r#type: core::FlagType::VariantFlagType as i32,
        enabled: true,
        variants: vec![core::Variant {
            key: "blue".into(),
            name: "Blue".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn flag_any(f: &core::Flag) -> prost_types::Any {
    prost_types::Any {
        type_url: "flipt.core.Flag".into(),
        value: f.encode_to_vec(),
    }
}

fn put_request(
    ns: &str,
    key: &str,
    payload: Option<prost_types::Any>,
) -> env_pb::UpdateResourceRequest {
    env_pb::UpdateResourceRequest {
        environment_key: "default".into(),
        namespace_key: ns.into(),
        key: key.into(),
        payload,
        revision: String::new(),
    }
}

/// The served head of a storage and how many commits lead to it (at most 100: the tests
/// make fewer).
async fn state(c: &mut Storage, id: &str) -> (String, usize) {
    let head = c
        .get_storage_status(st::GetStorageStatusRequest {
            storage_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .head;
    let commits = c
        .list_commits(st::ListCommitsRequest {
            storage_id: id.into(),
            from: None,
            limit: Some(100),
        })
        .await
        .unwrap()
        .into_inner()
        .commits
        .len();
    (head, commits)
}

/// A call and its outcome, for messages.
fn outcome<T>(r: &Result<T, tonic::Status>) -> String {
    match r {
        Ok(_) => "OK".into(),
        Err(e) => format!(
            "{:?}: {}",
            e.code(),
            e.message().chars().take(200).collect::<String>()
        ),
    }
}

/// Asserts a refusal with one of `codes`, a message of reasonable length.
fn assert_refused<T>(what: &str, r: &Result<T, tonic::Status>, codes: &[Code]) {
    match r {
        Ok(_) => panic!("{what}: accepted, expected one of {codes:?}"),
        Err(e) => {
            assert!(
                codes.contains(&e.code()),
                "{what}: {}, expected one of {codes:?}",
                outcome(r)
            );
            assert!(!e.message().is_empty(), "{what}: no message");
            assert!(
                e.message().len() < 1024,
                "{what}: a {}-byte message",
                e.message().len()
            );
        }
    }
}

/// Keys and paths a hostile client sends, by name.
fn hostile_texts() -> Vec<(&'static str, String)> {
    vec![
        ("empty", String::new()),
        ("dot-dot", "..".into()),
        ("traversal", "../x".into()),
        ("slash", "a/b".into()),
        ("leading slash", "/a".into()),
        ("NUL", "a\0b".into()),
        ("newline", "a\nb".into()),
        ("10,000 characters", "k".repeat(10_000)),
        ("256 characters", "k".repeat(256)),
        ("Cyrillic look-alike", "d\u{435}fault".into()),
        (
            "fullwidth",
            "\u{ff44}\u{ff45}\u{ff46}\u{ff41}\u{ff55}\u{ff4c}\u{ff54}".into(),
        ),
        ("right-to-left override", "a\u{202e}lmy.exe".into()),
        ("zero-width space", "de\u{200b}fault".into()),
        ("dot", ".".into()),
        ("dot git", ".git".into()),
    ]
}

/// Standard base64, for the forms a secret takes in an HTTP `Authorization: Basic` header.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Waits (at most 20 s) until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

// --------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread")]
async fn hostile_keys_and_paths_through_both_apis_change_nothing() {
    let s = Server::start("");
    let (mut env, mut storage) = clients(&s).await;
    // Something to update and delete.
    env.create_resource(put_request(
        "default",
        "new-ui",
        Some(flag_any(&flag("new-ui"))),
    ))
    .await
    .unwrap();
    let before = state(&mut storage, "default").await;
    let mut tried = 0;
    for (name, bad) in hostile_texts() {
        // Environments API: a bad flag, segment, variant or namespace key is INVALID_ARGUMENT
        // (API.md §1); a namespace or environment that cannot exist is NOT_FOUND or
        // INVALID_ARGUMENT.
        let r = env
            .create_resource(put_request("default", &bad, Some(flag_any(&flag(&bad)))))
            .await;
        assert_refused(
            &format!("create flag `{name}`"),
            &r,
            &[Code::InvalidArgument],
        );
        let r = env
            .update_resource(put_request("default", &bad, Some(flag_any(&flag(&bad)))))
            .await;
        assert_refused(
            &format!("update flag `{name}`"),
            &r,
            &[Code::InvalidArgument],
        );
        let mut with_variant = flag("new-ui");
        with_variant.variants[0].key = bad.clone();
        let r = env
            .update_resource(put_request(
                "default",
                "new-ui",
                Some(flag_any(&with_variant)),
            ))
            .await;
        assert_refused(&format!("variant `{name}`"), &r, &[Code::InvalidArgument]);
        let segment = core::Segment {
            key: bad.clone(),
            name: "S".into(),
            ..Default::default()
        };
        let r = env
            .create_resource(put_request(
                "default",
                &bad,
                Some(prost_types::Any {
                    type_url: "flipt.core.Segment".into(),
                    value: segment.encode_to_vec(),
                }),
            ))
            .await;
        assert_refused(&format!("segment `{name}`"), &r, &[Code::InvalidArgument]);
        let r = env
            .create_namespace(env_pb::UpdateNamespaceRequest {
                environment_key: "default".into(),
                key: bad.clone(),
                name: "N".into(),
                ..Default::default()
            })
            .await;
        assert_refused(
            &format!("create namespace `{name}`"),
            &r,
            &[Code::InvalidArgument],
        );
        let r = env
            .create_resource(put_request(&bad, "ok-key", Some(flag_any(&flag("ok-key")))))
            .await;
        assert_refused(
            &format!("flag in namespace `{name}`"),
            &r,
            &[Code::InvalidArgument, Code::NotFound],
        );
        let r = env
            .delete_resource(env_pb::DeleteResourceRequest {
                environment_key: "default".into(),
                namespace_key: "default".into(),
                type_url: "flipt.core.Flag".into(),
                key: bad.clone(),
                revision: String::new(),
            })
            .await;
        assert_refused(
            &format!("delete flag `{name}`"),
            &r,
            &[Code::InvalidArgument],
        );
        let r = env
            .delete_namespace(env_pb::DeleteNamespaceRequest {
                environment_key: "default".into(),
                key: bad.clone(),
                revision: String::new(),
            })
            .await;
        assert_refused(
            &format!("delete namespace `{name}`"),
            &r,
            &[Code::InvalidArgument],
        );
        let r = env
            .get_resource(env_pb::GetResourceRequest {
                environment_key: "default".into(),
                namespace_key: "default".into(),
                type_url: "flipt.core.Flag".into(),
                key: bad.clone(),
            })
            .await;
        assert_refused(
            &format!("get flag `{name}`"),
            &r,
            &[Code::InvalidArgument, Code::NotFound],
        );
        let r = env
            .list_namespaces(env_pb::ListNamespacesRequest {
                environment_key: bad.clone(),
            })
            .await;
        assert_refused(&format!("environment `{name}`"), &r, &[Code::NotFound]);
        let r = env
            .branch_environment(env_pb::BranchEnvironmentRequest {
                environment_key: "default".into(),
                key: bad.clone(),
            })
            .await;
        assert_refused(&format!("branch `{name}`"), &r, &[Code::InvalidArgument]);

        // Storage API: paths with `..`, `.git`, a leading `/`, NUL (API.md §2), empty or
        // over-long are INVALID_ARGUMENT; a storage id that names nothing is NOT_FOUND.
        let change = |path: &str| st::FileChange {
            path: path.into(),
            change: Some(st::file_change::Change::Content(b"x: 1\n".to_vec())),
        };
        let path_is_bad = !matches!(
            name,
            "slash"
                | "10,000 characters"
                | "256 characters"
                | "Cyrillic look-alike"
                | "fullwidth"
                | "right-to-left override"
                | "zero-width space"
        );
        if path_is_bad {
            let r = storage
                .commit(st::CommitRequest {
                    storage_id: "default".into(),
                    base_revision: None,
                    changes: vec![change(&bad)],
                    message: "m".into(),
                    author: None,
                })
                .await;
            assert_refused(
                &format!("commit path `{name}`"),
                &r,
                &[Code::InvalidArgument],
            );
            let r = storage
                .read_file(st::ReadFileRequest {
                    storage_id: "default".into(),
                    path: bad.clone(),
                    revision: None,
                })
                .await;
            assert_refused(&format!("read path `{name}`"), &r, &[Code::InvalidArgument]);
        }
        let r = storage
            .get_storage_status(st::GetStorageStatusRequest {
                storage_id: bad.clone(),
            })
            .await;
        assert_refused(&format!("storage id `{name}`"), &r, &[Code::NotFound]);
        tried += 1;
        assert_eq!(
            state(&mut storage, "default").await,
            before,
            "`{name}` changed something"
        );
    }
    // Paths that NTFS or HFS+ read as `.git`: git refuses to check them out, and remotes
    // that check pushes refuse them.
    for bad in [
        ".git /config",
        ".GIT./x",
        "git~1/x",
        ".g\u{200c}it/config",
        "a/.git::$INDEX_ALLOCATION/x",
    ] {
        let r = storage
            .commit(st::CommitRequest {
                storage_id: "default".into(),
                base_revision: None,
                changes: vec![st::FileChange {
                    path: bad.into(),
                    change: Some(st::file_change::Change::Content(b"x".to_vec())),
                }],
                message: "m".into(),
                author: None,
            })
            .await;
        assert_refused(
            &format!("commit path {bad:?}"),
            &r,
            &[Code::InvalidArgument],
        );
    }
    assert_eq!(state(&mut storage, "default").await, before);
    assert_eq!(tried, hostile_texts().len());
    // The server is still up and serving.
    assert_eq!(http_get(&format!("{}/health", s.http)).0, 200);
    assert_eq!(s.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn payloads_just_under_and_over_the_size_limit() {
    const LIMIT: usize = 64 * 1024;
    let s = Server::start_with_env(
        "",
        &[("FLIPT_SERVER_MAX_REQUEST_BYTES", &LIMIT.to_string())],
    );
    let (mut env, mut storage) = clients(&s).await;
    let before = state(&mut storage, "default").await;
    // A flag whose request encodes to exactly `size` bytes.
    let sized = |key: &str, size: usize| {
        let mut f = flag(key);
        f.description = String::new();
        let base = put_request("default", key, Some(flag_any(&f))).encoded_len();
        // Growing the description by n bytes grows the request by n plus the length
        // prefixes, which grow by a byte at 128 and at 16,384.
        // (so some sizes are reached by growing the name instead).
        let mut n = size.saturating_sub(base + 16);
        loop {
            f.description = "d".repeat(n);
            for extra in 0..8 {
                f.name = format!("Flag{}", "n".repeat(extra));
                let req = put_request("default", key, Some(flag_any(&f)));
                if req.encoded_len() == size {
                    return req;
                }
            }
            f.name = "Flag".into();
            let len = put_request("default", key, Some(flag_any(&f))).encoded_len();
            assert!(len < size, "cannot size a request to {size} bytes");
            n += 1;
        }
    };
    // Over by one byte, and far over: refused before decoding, nothing changes.
    for size in [LIMIT + 1, LIMIT + 4096, 4 * LIMIT] {
        let r = env.create_resource(sized("too-big", size)).await;
        assert_refused(
            &format!("a {size}-byte request"),
            &r,
            &[Code::OutOfRange, Code::ResourceExhausted],
        );
        let commit = storage
            .commit(st::CommitRequest {
                storage_id: "default".into(),
                base_revision: None,
                changes: vec![st::FileChange {
                    path: "big.bin".into(),
                    change: Some(st::file_change::Change::Content(vec![b'x'; size])),
                }],
                message: "m".into(),
                author: None,
            })
            .await;
        assert_refused(
            &format!("a {size}-byte commit"),
            &commit,
            &[Code::OutOfRange, Code::ResourceExhausted],
        );
        assert_eq!(state(&mut storage, "default").await, before);
    }
    // At the limit exactly: accepted and committed once.
    let created = env.create_resource(sized("just-fits", LIMIT)).await;
    assert!(created.is_ok(), "{}", outcome(&created));
    let after = state(&mut storage, "default").await;
    assert_eq!(after.1, before.1 + 1, "one commit");
    let got = env
        .get_resource(env_pb::GetResourceRequest {
            environment_key: "default".into(),
            namespace_key: "default".into(),
            type_url: "flipt.core.Flag".into(),
            key: "just-fits".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let f = core::Flag::decode(got.resource.unwrap().payload.unwrap().value.as_slice()).unwrap();
    assert!(f.description.len() > LIMIT - 200, "{}", f.description.len());
    // The server is still up.
    assert_eq!(http_get(&format!("{}/health", s.http)).0, 200);
    assert_eq!(s.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_payloads_and_revisions_are_refused_and_change_nothing() {
    let s = Server::start("");
    let (mut env, mut storage) = clients(&s).await;
    let first = env
        .create_resource(put_request(
            "default",
            "new-ui",
            Some(flag_any(&flag("new-ui"))),
        ))
        .await
        .unwrap()
        .into_inner()
        .revision;
    let before = state(&mut storage, "default").await;
    let good = flag_any(&flag("new-ui")).value;
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    let mut bad_enum = flag("new-ui");
    bad_enum.r#type = 42;
    let mut no_rule = flag("new-ui");
    no_rule.rollouts.push(core::Rollout::default());
    let mut nan = flag("new-ui");
    nan.variants[0].attachment = Some(prost_types::Value {
        kind: Some(prost_types::value::Kind::NumberValue(f64::NAN)),
    });
    let payloads: Vec<(&str, Option<prost_types::Any>)> = vec![
        ("no payload", None),
        (
            "unknown type URL",
            Some(prost_types::Any {
                type_url: "flipt.core.Rule".into(),
                value: good.clone(),
            }),
        ),
        (
            "empty type URL",
            Some(prost_types::Any {
                type_url: String::new(),
                value: good.clone(),
            }),
        ),
        (
            "another prefix",
            Some(prost_types::Any {
                type_url: "example.com/flipt.core.Flag".into(),
                value: good.clone(),
            }),
        ),
        (
            "garbage bytes",
            Some(prost_types::Any {
                type_url: "flipt.core.Flag".into(),
                value: vec![0xff; 64],
            }),
        ),
        (
            "truncated protobuf",
            Some(prost_types::Any {
                type_url: "flipt.core.Flag".into(),
                value: truncated,
            }),
        ),
        (
            "a segment's bytes as a flag",
            Some(prost_types::Any {
                type_url: "flipt.core.Flag".into(),
                value: core::Segment {
                    key: "new-ui".into(),
                    name: "S".into(),
                    match_type: 7,
                    ..Default::default()
                }
                .encode_to_vec(),
            }),
        ),
        ("unknown flag type", Some(flag_any(&bad_enum))),
        ("rollout without a rule", Some(flag_any(&no_rule))),
        ("NaN attachment", Some(flag_any(&nan))),
        ("payload key differs", Some(flag_any(&flag("other")))),
    ];
    for (name, payload) in payloads {
        for create in [true, false] {
            let req = put_request("default", "new-ui", payload.clone());
            let r = if create {
                env.create_resource(req).await
            } else {
                env.update_resource(req).await
            };
            assert_refused(name, &r, &[Code::InvalidArgument]);
        }
    }
    assert_eq!(state(&mut storage, "default").await, before);

    // Revisions (BEHAVIOUR §4): anything but 40 hex digits is INVALID_ARGUMENT; 40 hex digits
    // of a commit that is not an ancestor of the head is ABORTED for a write, NOT_FOUND for a
    // read.
    let unknown = "0123456789abcdef0123456789abcdef01234567".to_owned();
    let malformed = [
        "deadbeef".to_owned(),
        "HEAD".into(),
        "HEAD~1".into(),
        "main".into(),
        "../x".into(),
        "refs/heads/main".into(),
        "z".repeat(40),
        format!("{first}0"),
        first[..39].to_owned(),
        format!(" {}", &first[..39]),
        "\u{430}".repeat(20),
        "x".repeat(10_000),
    ];
    for rev in &malformed {
        let what = format!("revision {:?}", rev.chars().take(50).collect::<String>());
        let mut req = put_request("default", "new-ui", Some(flag_any(&flag("new-ui"))));
        req.revision = rev.clone();
        let r = env.update_resource(req).await;
        assert_refused(&format!("update at {what}"), &r, &[Code::InvalidArgument]);
        let r = env
            .delete_namespace(env_pb::DeleteNamespaceRequest {
                environment_key: "default".into(),
                key: "default".into(),
                revision: rev.clone(),
            })
            .await;
        assert_refused(
            &format!("delete namespace at {what}"),
            &r,
            &[Code::InvalidArgument],
        );
        let r = storage
            .commit(st::CommitRequest {
                storage_id: "default".into(),
                base_revision: Some(rev.clone()),
                changes: vec![st::FileChange {
                    path: "a.txt".into(),
                    change: Some(st::file_change::Change::Content(b"x".to_vec())),
                }],
                message: "m".into(),
                author: None,
            })
            .await;
        assert_refused(&format!("commit on {what}"), &r, &[Code::InvalidArgument]);
        for r in [
            storage
                .read_file(st::ReadFileRequest {
                    storage_id: "default".into(),
                    path: "README.md".into(),
                    revision: Some(rev.clone()),
                })
                .await
                .map(drop),
            storage
                .list_files(st::ListFilesRequest {
                    storage_id: "default".into(),
                    prefix: None,
                    revision: Some(rev.clone()),
                })
                .await
                .map(drop),
            storage
                .list_commits(st::ListCommitsRequest {
                    storage_id: "default".into(),
                    from: Some(rev.clone()),
                    limit: None,
                })
                .await
                .map(drop),
            storage
                .watch(st::WatchRequest {
                    storage_id: "default".into(),
                    from_revision: Some(rev.clone()),
                })
                .await
                .map(drop),
        ] {
            assert_refused(&format!("read at {what}"), &r, &[Code::InvalidArgument]);
        }
    }
    let mut req = put_request("default", "new-ui", Some(flag_any(&flag("new-ui"))));
    req.revision = unknown.clone();
    let r = env.update_resource(req).await;
    assert_refused("update at an unknown commit", &r, &[Code::Aborted]);
    let r = storage
        .commit(st::CommitRequest {
            storage_id: "default".into(),
            base_revision: Some(unknown.clone()),
            changes: vec![st::FileChange {
                path: "a.txt".into(),
                change: Some(st::file_change::Change::Content(b"x".to_vec())),
            }],
            message: "m".into(),
            author: None,
        })
        .await;
    assert_refused(
        "commit on an unknown commit",
        &r,
        &[Code::Aborted, Code::NotFound],
    );
    let r = storage
        .read_file(st::ReadFileRequest {
            storage_id: "default".into(),
            path: "README.md".into(),
            revision: Some(unknown.clone()),
        })
        .await;
    assert_refused("read at an unknown commit", &r, &[Code::NotFound]);
    let r = storage
        .watch(st::WatchRequest {
            storage_id: "default".into(),
            from_revision: Some(unknown.clone()),
        })
        .await;
    assert_refused("watch from an unknown commit", &r, &[Code::NotFound]);
    assert_eq!(state(&mut storage, "default").await, before);
    assert_eq!(s.stop(), Some(0));
}

/// The peak resident memory of a process, from /proc.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

#[tokio::test(flavor = "multi_thread")]
async fn yaml_bombs_and_deep_nesting_pushed_by_another_user_are_not_served() {
    let remote = test_support::BareRemote::new();
    let good = "version: \"1.4\"\nnamespace: default\nflags:\n  - key: a\n    name: A\n    enabled: true\n";
    let first = remote
        .cli_commit("main", &[("default/features.yaml", Some(good))], "good")
        .trim()
        .to_owned();
    let s = Server::start(&format!(
        "storage:\n  default:\n    remote: {}\n",
        remote.file_url()
    ));
    let (mut env, mut storage) = clients(&s).await;
    let served = |env: &Env| {
        let mut env = env.clone();
        async move {
            env.get_resource(env_pb::GetResourceRequest {
                environment_key: "default".into(),
                namespace_key: "default".into(),
                type_url: "flipt.core.Flag".into(),
                key: "a".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .revision
        }
    };
    assert_eq!(served(&env).await, first);
    let baseline = peak_rss_kib(s.pid());

    // Classic "billion laughs": ten levels of nine aliases each.
    let mut laughs = String::from(
        "version: \"1.4\"\nflags:\n  - key: a\n    name: A\n    metadata:\n      l0: &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n",
    );
    for i in 1..10 {
        laughs.push_str(&format!(
            "      l{i}: &l{i} [{}]\n",
            vec![format!("*l{}", i - 1); 9].join(",")
        ));
    }
    // One anchor of 3,000 items referenced 3,000 times: nine million nodes from 15 KB (without
    // a limit: gigabytes).
    let quadratic = format!(
        "version: \"1.4\"\nflags:\n  - key: a\n    name: A\n    metadata:\n      big: &big [{}]\n      copies: [{}]\n",
        vec!["x"; 3000].join(","),
        vec!["*big"; 3000].join(",")
    );
    // Nested 100,000 deep (200 KB): libyaml's scanner alone took seconds to tens of seconds.
    let deep = format!(
        "version: \"1.4\"\nflags:\n  - key: a\n    name: A\n    metadata:\n      m: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let cases = [
        ("billion laughs", laughs, "aliases"),
        ("quadratic aliases", quadratic, "aliases"),
        ("deep nesting", deep, "nested more than 128 levels"),
    ];
    for (name, text, reason) in &cases {
        let bad = remote
            .cli_commit("main", &[("default/features.yaml", Some(text))], name)
            .trim()
            .to_owned();
        storage
            .refresh(st::RefreshRequest {
                storage_id: "default".into(),
            })
            .await
            .unwrap();
        // Not served: the last good state stays, and the status names the commit and why.
        let mut st_c = storage.clone();
        eventually(&format!("{name}: rejected in the status"), || {
            let mut c = st_c.clone();
            let bad = bad.clone();
            async move {
                let st = c
                    .get_storage_status(st::GetStorageStatusRequest {
                        storage_id: "default".into(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                st.rejected_commit == bad
            }
        })
        .await;
        let status = st_c
            .get_storage_status(st::GetStorageStatusRequest {
                storage_id: "default".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            status.rejected_reason.contains(reason)
                && status.rejected_reason.contains("default/features.yaml"),
            "{name}: {}",
            status.rejected_reason
        );
        assert_eq!(served(&env).await, first, "{name} is not served");
        assert_eq!(http_get(&format!("{}/health", s.http)).0, 200, "{name}");
        // A write on top of it is refused: its files do not validate.
        let r = env
            .create_resource(put_request("default", "b", Some(flag_any(&flag("b")))))
            .await;
        assert!(r.is_err(), "{name}: a write on top of it: {}", outcome(&r));
        assert_eq!(remote.head("main").as_deref(), Some(bad.as_str()), "{name}");
    }
    let peak = peak_rss_kib(s.pid());
    assert!(
        peak < baseline + 512 * 1024,
        "peak RSS grew from {baseline} KiB to {peak} KiB"
    );
    // The next good commit is served again.
    let fixed = remote
        .cli_commit(
            "main",
            &[(
                "default/features.yaml",
                Some(&good.replace("name: A", "name: A2")),
            )],
            "fixed",
        )
        .trim()
        .to_owned();
    storage
        .refresh(st::RefreshRequest {
            storage_id: "default".into(),
        })
        .await
        .unwrap();
    eventually("the fixed commit is served", || {
        let env = env.clone();
        let fixed = fixed.clone();
        async move { served(&env).await == fixed }
    })
    .await;
    assert_eq!(s.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_grpc_methods_are_unimplemented_and_not_counted_one_by_one() {
    let s = Server::start("");
    let host = s.grpc.trim_start_matches("http://").to_owned();
    // Raw gRPC calls to methods that do not exist, each under a new name.
    for i in 0..20 {
        for path in [
            format!("/flipt.storage.v1.StorageService/NoSuch{i}"),
            format!("/made.up.Service{i}/Call"),
            format!("/x{i}"),
        ] {
            let out = std::process::Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-D",
                    "-",
                    "--http2-prior-knowledge",
                    "-X",
                    "POST",
                    "-H",
                    "content-type: application/grpc",
                    "-H",
                    "te: trailers",
                    "--data-binary",
                    "",
                ])
                .arg(format!("http://{host}{path}"))
                .output()
                .expect("curl");
            let headers = String::from_utf8_lossy(&out.stdout).to_lowercase();
            assert!(
                headers.contains("grpc-status: 12"),
                "{path}: not UNIMPLEMENTED:\n{headers}"
            );
        }
    }
    let (code, metrics) = http_get(&format!("{}/metrics", s.http));
    assert_eq!(code, 200);
    for needle in ["NoSuch", "made.up", "/x1\""] {
        assert!(
            !metrics.contains(needle),
            "`{needle}` has its own series in /metrics (one per made-up name: unbounded):\n{metrics}"
        );
    }
    assert!(
        metric(
            &metrics,
            "flipt_grpc_request_duration_seconds_count{method=\"unknown\"}"
        ) >= 60.0,
        "{metrics}"
    );
    assert_eq!(s.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_anywhere_and_refused_requests_change_nothing() {
    use test_support::{BareRemote, GitHttpServer, SshKeyPair, SshKeyType, SshServer};

    // Three remotes that refuse the configured credentials: basic auth with another
    // password, a token server with another token, and sshd that does not know the key.
    let basic_remote = BareRemote::new();
    basic_remote.cli_commit("main", &[("README.md", Some("basic\n"))], "seed");
    let basic_http = GitHttpServer::builder(basic_remote.project_root())
        .basic_auth("alice", "the-right-password")
        .start();
    let token_remote = BareRemote::new();
    token_remote.cli_commit("main", &[("README.md", Some("token\n"))], "seed");
    let token_http = GitHttpServer::builder(token_remote.project_root())
        .accept_any_user_with_password("the-right-token")
        .start();
    let ssh_remote = BareRemote::new();
    ssh_remote.cli_commit("main", &[("README.md", Some("ssh\n"))], "seed");
    let other_key = SshKeyPair::generate(SshKeyType::Ed25519);
    let sshd = SshServer::builder().authorize(&other_key).start();
    let key = SshKeyPair::generate_with_passphrase(SshKeyType::Ed25519, "pass-LEAK-phrase");

    // Each remote storage starts from a local repository with a commit (lenient start).
    let dir = tempfile::tempdir().unwrap();
    let local = |name: &str| {
        let path = dir.path().join(name);
        test_support::git(
            &["init", "-q", "-b", "main", path.to_str().unwrap()],
            dir.path(),
        );
        std::fs::write(path.join("README.md"), name).unwrap();
        test_support::git(&["add", "."], &path);
        test_support::git(&["commit", "-qm", "local"], &path);
        path.display().to_string()
    };
    let quoted_key = format!(
        "\"{}\"",
        key.private_key().replace('\\', "\\\\").replace('\n', "\\n")
    );
    let config = format!(
        r#"log:
  level: debug
credentials:
  basic-cred:
    type: basic
    basic: {{ username: alice, password: pw-LEAK-basic }}
  token-cred:
    type: access_token
    access_token: tok-LEAK-access
  ssh-cred:
    type: ssh
    ssh:
      private_key_bytes: {quoted_key}
      password: pass-LEAK-phrase
      insecure_ignore_host_key: true
storage:
  default:
    webhook_secret: hook-LEAK-webhook
  basic:
    backend: {{ type: local, path: {basic_path} }}
    remote: {basic_url}
    credentials: basic-cred
    fetch_policy: lenient
    poll_interval: 1s
    webhook_secret: hook-LEAK-second
  token:
    backend: {{ type: local, path: {token_path} }}
    remote: {token_url}
    credentials: token-cred
    fetch_policy: lenient
    poll_interval: 1s
  ssh:
    backend: {{ type: local, path: {ssh_path} }}
    remote: {ssh_url}
    credentials: ssh-cred
    fetch_policy: lenient
    poll_interval: 1s
authentication:
  required: true
  methods:
    token:
      enabled: true
      storage:
        tokens:
          ci:
            credential: auth-LEAK-token
"#,
        basic_path = local("basic"),
        basic_url = basic_http.url(test_support::REMOTE_DIR_NAME),
        token_path = local("token"),
        token_url = token_http.url(test_support::REMOTE_DIR_NAME),
        ssh_path = local("ssh"),
        ssh_url = sshd.url(ssh_remote.path()),
    );
    // Every secret, and the forms it takes on the wire.
    let key_body: Vec<String> = key
        .private_key()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_owned)
        .collect();
    assert!(!key_body.is_empty());
    let mut secrets: Vec<String> = [
        "pw-LEAK-basic",
        "tok-LEAK-access",
        "pass-LEAK-phrase",
        "hook-LEAK-webhook",
        "hook-LEAK-second",
        "auth-LEAK-token",
    ]
    .map(str::to_owned)
    .to_vec();
    secrets.push(base64(b"alice:pw-LEAK-basic"));
    secrets.push(base64(b"x-token-auth:tok-LEAK-access"));
    secrets.extend(key_body);
    let assert_clean = |what: &str, text: &str| {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} shows `{secret}`:\n{text}"
            );
        }
    };

    // The CLI: `config validate` and `config print`.
    let file = dir.path().join("config.yml");
    std::fs::write(&file, &config).unwrap();
    for cmd in [["config", "validate"], ["config", "print"]] {
        let out = integration_tests::run(integration_tests::flipt_storage().args(cmd).arg(&file));
        assert_eq!(out.code, Some(0), "{cmd:?}: {out:?}");
        assert_clean(&format!("{cmd:?} stdout"), &out.stdout);
        assert_clean(&format!("{cmd:?} stderr"), &out.stderr);
    }

    let s = Server::start(&config);
    let (mut env, mut storage) = clients(&s).await;
    fn with_token<T>(msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.metadata_mut()
            .insert("authorization", "Bearer auth-LEAK-token".parse().unwrap());
        r
    }
    let status = |storage: &Storage, id: &'static str| {
        let mut c = storage.clone();
        async move {
            c.get_storage_status(with_token(st::GetStorageStatusRequest {
                storage_id: id.into(),
            }))
            .await
            .unwrap()
            .into_inner()
        }
    };
    // Wait until every remote storage has tried and failed with its wrong credentials.
    for id in ["basic", "token", "ssh"] {
        eventually(&format!("{id} reports an authentication error"), || {
            let storage = storage.clone();
            async move {
                status(&storage, id)
                    .await
                    .last_error
                    .is_some_and(|e| e.class == st::ErrorClass::Auth as i32)
            }
        })
        .await;
    }

    // Refused requests: no token, a wrong one, a near miss, another scheme.
    let heads: Vec<(String, usize)> = {
        let mut v = Vec::new();
        for id in ["default", "basic", "token", "ssh"] {
            let r = with_token(st::ListCommitsRequest {
                storage_id: id.into(),
                from: None,
                limit: Some(100),
            });
            let commits = storage
                .list_commits(r)
                .await
                .unwrap()
                .into_inner()
                .commits
                .len();
            v.push((status(&storage, id).await.head, commits));
        }
        v
    };
    let mut errors = String::new();
    for auth in [
        None,
        Some("Bearer nope"),
        Some("Bearer auth-LEAK-toke"),
        Some("Basic auth-LEAK-token"),
        Some("Bearer auth-LEAK-token-"),
    ] {
        let mut commit = tonic::Request::new(st::CommitRequest {
            storage_id: "default".into(),
            base_revision: None,
            changes: vec![st::FileChange {
                path: "x.txt".into(),
                change: Some(st::file_change::Change::Content(b"x".to_vec())),
            }],
            message: "m".into(),
            author: None,
        });
        let mut create = tonic::Request::new(put_request(
            "default",
            "new-ui",
            Some(flag_any(&flag("new-ui"))),
        ));
        let mut list = tonic::Request::new(st::ListStoragesRequest {});
        if let Some(a) = auth {
            for m in [
                commit.metadata_mut(),
                create.metadata_mut(),
                list.metadata_mut(),
            ] {
                m.insert("authorization", a.parse().unwrap());
            }
        }
        for r in [
            storage.commit(commit).await.map(drop),
            env.create_resource(create).await.map(drop),
            storage.list_storages(list).await.map(drop),
        ] {
            assert_refused(
                &format!("authorization {auth:?}"),
                &r,
                &[Code::Unauthenticated],
            );
            errors.push_str(&outcome(&r));
        }
    }
    // Reflection needs the token too; health does not.
    let channel = tonic::transport::Channel::from_shared(s.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "storage/basic".into(),
        })
        .await
        .unwrap()
        .into_inner();
    errors.push_str(&format!("{h:?}"));

    // Requests that reach the failing remotes: refresh, and a write through each API.
    for id in ["basic", "token", "ssh"] {
        let r = storage
            .refresh(with_token(st::RefreshRequest {
                storage_id: id.into(),
            }))
            .await;
        assert_refused(
            &format!("refresh {id}"),
            &r,
            &[Code::Unauthenticated, Code::PermissionDenied],
        );
        errors.push_str(&outcome(&r));
        let r = storage
            .commit(with_token(st::CommitRequest {
                storage_id: id.into(),
                base_revision: None,
                changes: vec![st::FileChange {
                    path: "x.txt".into(),
                    change: Some(st::file_change::Change::Content(b"x".to_vec())),
                }],
                message: "m".into(),
                author: None,
            }))
            .await;
        assert_refused(
            &format!("commit to {id}"),
            &r,
            &[
                Code::Unauthenticated,
                Code::PermissionDenied,
                Code::FailedPrecondition,
                Code::Unavailable,
            ],
        );
        errors.push_str(&outcome(&r));
        let st = status(&storage, id).await;
        errors.push_str(&format!("{st:?}"));
    }
    let list = storage
        .list_storages(with_token(st::ListStoragesRequest {}))
        .await
        .unwrap()
        .into_inner();
    errors.push_str(&format!("{list:?}"));
    let envs = env
        .list_environments(with_token(env_pb::ListEnvironmentsRequest {}))
        .await
        .unwrap()
        .into_inner();
    errors.push_str(&format!("{envs:?}"));
    // Nothing changed, here or on the remotes.
    for (i, id) in ["default", "basic", "token", "ssh"].into_iter().enumerate() {
        let commits = storage
            .list_commits(with_token(st::ListCommitsRequest {
                storage_id: id.into(),
                from: None,
                limit: Some(100),
            }))
            .await
            .unwrap()
            .into_inner()
            .commits
            .len();
        assert_eq!(
            (status(&storage, id).await.head, commits),
            heads[i],
            "{id} changed"
        );
    }
    for (name, remote) in [
        ("basic", &basic_remote),
        ("token", &token_remote),
        ("ssh", &ssh_remote),
    ] {
        assert_eq!(remote.log("main").len(), 1, "{name}'s remote changed");
    }

    // Webhooks with a missing, wrong or other storage's signature: refused, no refresh (the
    // sync counter stays); the right one triggers a refresh (so the counter can move).
    let syncs = |metrics: &str| {
        metric(
            metrics,
            "flipt_storage_syncs_total{storage=\"default\",result=\"ok\"}",
        )
    };
    let url = format!("{}/api/v1/storages/default/webhook", s.http);
    let before = syncs(&http_get(&format!("{}/metrics", s.http)).1);
    for signature in [
        None,
        Some("sha256=00".to_owned()),
        Some(hub_signature("hook-LEAK-second", "{}")),
        Some(hub_signature("hook-LEAK-webhook", "{ }")),
        Some(hub_signature("hook-LEAK-webhook", "{}").replace("sha256=", "sha1=")),
        Some(format!("{}0", hub_signature("hook-LEAK-webhook", "{}"))),
    ] {
        let headers: Vec<(&str, &str)> = signature
            .iter()
            .map(|v| ("X-Hub-Signature-256", v.as_str()))
            .collect();
        let (code, body) = http_post(&url, "{}", &headers);
        assert_eq!(code, 401, "{signature:?}: {body}");
        errors.push_str(&body);
    }
    let after_bad = syncs(&http_get(&format!("{}/metrics", s.http)).1);
    assert_eq!(after_bad, before, "a refused webhook triggered a refresh");
    let (code, body) = http_post(
        &url,
        "{}",
        &[(
            "X-Hub-Signature-256",
            &hub_signature("hook-LEAK-webhook", "{}"),
        )],
    );
    assert_eq!(code, 202, "{body}");
    let http = s.http.clone();
    eventually("the signed webhook triggers a refresh", || {
        let http = http.clone();
        async move { syncs(&http_get(&format!("{http}/metrics")).1) > before }
    })
    .await;

    // Everything the server says.
    for path in [
        "/metrics",
        "/health",
        "/ready",
        "/api/v1/storages/basic/webhook",
    ] {
        let (_, body) = http_get(&format!("{}{path}", s.http));
        assert_clean(path, &body);
    }
    assert_clean("gRPC errors and responses", &errors);
    assert!(errors.contains("Unauthenticated"), "{errors}");
    let log = s.log();
    assert!(log.contains("DEBUG"), "the log is at debug level:\n{log}");
    assert!(
        log.contains("basic") && log.to_lowercase().contains("auth"),
        "the log shows the authentication failures:\n{log}"
    );
    assert_clean("the server log", &log);
    assert_eq!(s.stop(), Some(0));
    drop((basic_http, token_http, sshd));
}
