//! Property tests of the request decoding and validation paths: arbitrary `Any` payloads and
//! `flipt.core` messages into the conversions, and hostile keys, paths and revisions through
//! both services over a memory storage. Nothing panics; every refusal is one of the codes
//! API.md names for bad input, with a message; a refused request changes nothing.

use std::sync::{Arc, OnceLock};

use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message as _;
use storage_grpc::core_convert::{
    self, Decoded, flag_from_proto, flag_to_any, resource_from_any, segment_from_proto,
    segment_to_any,
};
use storage_grpc::{EnvironmentDef, EnvironmentsApi, Registry, StorageApi, StorageEntry};
use storage_proto::environments as env_pb;
use storage_proto::environments::environments_service_server::EnvironmentsService;
use storage_proto::flipt::core as core_pb;
use storage_proto::flipt::storage::v1 as st_pb;
use storage_proto::flipt::storage::v1::storage_service_server::StorageService;
use tonic::{Code, Request};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// Keys, namespace keys and paths that a hostile client sends.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("..".to_owned()),
        Just("../x".to_owned()),
        Just("a/b".to_owned()),
        Just("/abs".to_owned()),
        Just(".git/config".to_owned()),
        Just("a\0b".to_owned()),
        Just("k".repeat(10_000)),
        Just("k".repeat(256)),
        Just("\u{430}dmin".to_owned()),        // Cyrillic 'а'
        Just("ｆｕｌｌｗｉｄｔｈ".to_owned()), // fullwidth
        Just("a\u{202e}gnp.exe".to_owned()),   // right-to-left override
        Just("zero\u{200b}width".to_owned()),  // zero-width space
        Just("new-ui".to_owned()),
        Just("default".to_owned()),
        Just("team-a".to_owned()),
        "[-_,A-Za-z0-9]{1,8}",
        "\\PC{0,12}",
    ]
}

fn revision_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("HEAD".to_owned()),
        Just("HEAD~1".to_owned()),
        Just("../x".to_owned()),
        Just("main".to_owned()),
        Just("deadbeef".to_owned()),
        Just("g".repeat(40)),
        Just("0".repeat(40)),
        "[0-9a-f]{40}",
        "[0-9a-fA-F]{39,41}",
        "\\PC{0,50}",
    ]
}

fn type_url() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(core_convert::FLAG_TYPE_URL.to_owned()),
        Just(core_convert::SEGMENT_TYPE_URL.to_owned()),
        Just(format!(
            "type.googleapis.com/{}",
            core_convert::FLAG_TYPE_URL
        )),
        Just("flipt.core.Rule".to_owned()),
        Just("type.googleapis.com/".to_owned()),
        "\\PC{0,30}",
    ]
}

/// `google.protobuf.Value`s, including non-finite numbers and unset kinds.
fn proto_value() -> impl Strategy<Value = prost_types::Value> {
    use prost_types::value::Kind;
    let leaf = prop_oneof![
        Just(None),
        any::<f64>().prop_map(|n| Some(Kind::NumberValue(n))),
        Just(Some(Kind::NumberValue(f64::NAN))),
        Just(Some(Kind::NumberValue(f64::INFINITY))),
        any::<bool>().prop_map(|b| Some(Kind::BoolValue(b))),
        "\\PC{0,8}".prop_map(|s| Some(Kind::StringValue(s))),
        any::<i32>().prop_map(|n| Some(Kind::NullValue(n))),
    ]
    .prop_map(|kind| prost_types::Value { kind });
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|values| prost_types::Value {
                kind: Some(Kind::ListValue(prost_types::ListValue { values })),
            }),
            vec(("\\PC{0,6}", inner), 0..4).prop_map(|fields| prost_types::Value {
                kind: Some(Kind::StructValue(prost_types::Struct {
                    fields: fields.into_iter().collect(),
                })),
            }),
        ]
    })
}

fn small_enum() -> impl Strategy<Value = i32> {
    prop_oneof![-2i32..6, any::<i32>()]
}

fn proto_flag() -> impl Strategy<Value = core_pb::Flag> {
    let variant = (hostile_text(), proptest::option::of(proto_value())).prop_map(|(key, a)| {
        core_pb::Variant {
            key,
            attachment: a,
            ..Default::default()
        }
    });
    let rule = (small_enum(), vec(hostile_text(), 0..3), any::<f32>()).prop_map(|(op, s, r)| {
        core_pb::Rule {
            segment_operator: op,
            segments: s,
            distributions: vec![core_pb::Distribution {
                variant: "v".into(),
                rollout: r,
            }],
        }
    });
    let rollout =
        (small_enum(), 0u8..3, any::<f32>(), small_enum()).prop_map(|(t, which, pct, op)| {
            core_pb::Rollout {
                r#type: t,
                description: String::new(),
                rule: match which {
                    0 => None,
                    1 => Some(core_pb::rollout::Rule::Threshold(
                        core_pb::RolloutThreshold {
                            percentage: pct,
                            value: true,
                        },
                    )),
                    _ => Some(core_pb::rollout::Rule::Segment(core_pb::RolloutSegment {
                        value: false,
                        segments: vec!["s".into()],
                        segment_operator: op,
                    })),
                },
            }
        });
    (
        hostile_text(),
        small_enum(),
        vec(variant, 0..3),
        vec(rule, 0..3),
        vec(rollout, 0..3),
        proptest::option::of(vec(("\\PC{0,6}", proto_value()), 0..3)),
        proptest::option::of(hostile_text()),
    )
        .prop_map(
            |(key, t, variants, rules, rollouts, metadata, default_variant)| core_pb::Flag {
                key,
                r#type: t,
                name: "n".into(),
                variants,
                rules,
                rollouts,
                metadata: metadata.map(|f| prost_types::Struct {
                    fields: f.into_iter().collect(),
                }),
                default_variant,
                ..Default::default()
            },
        )
}

fn proto_segment() -> impl Strategy<Value = core_pb::Segment> {
    (
        hostile_text(),
        small_enum(),
        vec((small_enum(), hostile_text(), "\\PC{0,6}"), 0..3),
    )
        .prop_map(|(key, m, constraints)| core_pb::Segment {
            key,
            match_type: m,
            name: "n".into(),
            constraints: constraints
                .into_iter()
                .map(|(t, property, operator)| core_pb::Constraint {
                    r#type: t,
                    property,
                    operator,
                    value: "v".into(),
                    description: String::new(),
                })
                .collect(),
            ..Default::default()
        })
}

/// Whatever decoded is written back and decodes to the same bytes.
fn assert_stable(decoded: &Decoded) -> Result<(), TestCaseError> {
    let any = match decoded {
        Decoded::Flag(f) => flag_to_any(f),
        Decoded::Segment(s) => segment_to_any(s),
    };
    let again = resource_from_any(&any).map_err(TestCaseError::fail)?;
    let any2 = match &again {
        Decoded::Flag(f) => flag_to_any(f),
        Decoded::Segment(s) => segment_to_any(s),
    };
    prop_assert_eq!(any.value, any2.value);
    Ok(())
}

/// A memory storage with one commit, served through both services.
struct Apis {
    storage: StorageApi,
    environments: EnvironmentsApi,
    registry: Arc<Registry>,
}

async fn apis() -> Apis {
    let backend = Arc::new(git_backend_memory::MemoryBackend::new(Default::default()).unwrap());
    let sync = remote_sync::SyncedStorage::start(
        backend,
        remote_sync::SyncOptions::local("default", "main"),
    )
    .await
    .unwrap();
    let mut registry = Registry::new();
    registry.add(StorageEntry {
        id: "default".into(),
        backend_kind: "memory",
        remote: None,
        sync,
        rejected: Default::default(),
    });
    let environments = EnvironmentsApi::new(
        &registry,
        vec![EnvironmentDef {
            key: "default".into(),
            storage_id: "default".into(),
            directory: String::new(),
            default: true,
        }],
    )
    .unwrap();
    let registry = Arc::new(registry);
    Apis {
        storage: StorageApi::new(registry.clone(), Default::default()),
        environments,
        registry,
    }
}

impl Apis {
    fn head(&self) -> String {
        let e = self.registry.get("default").unwrap();
        e.sync.head("main").unwrap().to_string()
    }
}

/// The codes bad input may get (API.md §1, §2, §4): never INTERNAL or UNKNOWN.
const BAD_INPUT_CODES: &[Code] = &[
    Code::InvalidArgument,
    Code::NotFound,
    Code::AlreadyExists,
    Code::Aborted,
    Code::FailedPrecondition,
    Code::OutOfRange,
];

fn check_refusal(what: &str, e: &tonic::Status) -> Result<(), TestCaseError> {
    prop_assert!(
        BAD_INPUT_CODES.contains(&e.code()),
        "{what}: unexpected code {:?}: {}",
        e.code(),
        e.message()
    );
    prop_assert!(!e.message().is_empty(), "{what}: empty message");
    prop_assert!(
        e.message().len() <= 2048,
        "{what}: a {}-byte message",
        e.message().len()
    );
    Ok(())
}

#[derive(Debug, Clone)]
enum EnvCall {
    PutResource {
        create: bool,
        env: String,
        ns: String,
        key: String,
        payload: Option<prost_types::Any>,
        revision: String,
    },
    DeleteResource {
        ns: String,
        key: String,
        type_url: String,
        revision: String,
    },
    PutNamespace {
        create: bool,
        key: String,
        revision: String,
    },
    DeleteNamespace {
        key: String,
        revision: String,
    },
    Branch {
        key: String,
    },
}

fn payload() -> impl Strategy<Value = Option<prost_types::Any>> {
    prop_oneof![
        Just(None),
        (type_url(), vec(any::<u8>(), 0..64))
            .prop_map(|(type_url, value)| Some(prost_types::Any { type_url, value })),
        proto_flag().prop_map(|f| Some(prost_types::Any {
            type_url: core_convert::FLAG_TYPE_URL.into(),
            value: f.encode_to_vec(),
        })),
        proto_segment().prop_map(|s| Some(prost_types::Any {
            type_url: core_convert::SEGMENT_TYPE_URL.into(),
            value: s.encode_to_vec(),
        })),
        // A valid flag's bytes, truncated.
        (1usize..40).prop_map(|n| {
            let mut value = flag_to_any(&resource_model::Flag::new("new-ui", "New UI")).value;
            value.truncate(value.len().saturating_sub(n));
            Some(prost_types::Any {
                type_url: core_convert::FLAG_TYPE_URL.into(),
                value,
            })
        }),
    ]
}

fn env_call() -> impl Strategy<Value = EnvCall> {
    let env = prop_oneof![3 => Just("default".to_owned()), 1 => hostile_text()];
    prop_oneof![
        (
            any::<bool>(),
            env,
            hostile_text(),
            hostile_text(),
            payload(),
            revision_text()
        )
            .prop_map(|(create, env, ns, key, payload, revision)| {
                EnvCall::PutResource {
                    create,
                    env,
                    ns,
                    key,
                    payload,
                    revision,
                }
            }),
        (hostile_text(), hostile_text(), type_url(), revision_text()).prop_map(
            |(ns, key, type_url, revision)| EnvCall::DeleteResource {
                ns,
                key,
                type_url,
                revision
            }
        ),
        (any::<bool>(), hostile_text(), revision_text()).prop_map(|(create, key, revision)| {
            EnvCall::PutNamespace {
                create,
                key,
                revision,
            }
        }),
        (hostile_text(), revision_text())
            .prop_map(|(key, revision)| EnvCall::DeleteNamespace { key, revision }),
        hostile_text().prop_map(|key| EnvCall::Branch { key }),
    ]
}

async fn run_env_call(apis: &Apis, call: EnvCall) -> Result<(), tonic::Status> {
    let e = &apis.environments;
    match call {
        EnvCall::PutResource {
            create,
            env,
            ns,
            key,
            payload,
            revision,
        } => {
            let req = env_pb::UpdateResourceRequest {
                environment_key: env,
                namespace_key: ns,
                key,
                payload,
                revision,
            };
            if create {
                e.create_resource(Request::new(req)).await.map(drop)
            } else {
                e.update_resource(Request::new(req)).await.map(drop)
            }
        }
        EnvCall::DeleteResource {
            ns,
            key,
            type_url,
            revision,
        } => e
            .delete_resource(Request::new(env_pb::DeleteResourceRequest {
                environment_key: "default".into(),
                namespace_key: ns,
                type_url,
                key,
                revision,
            }))
            .await
            .map(drop),
        EnvCall::PutNamespace {
            create,
            key,
            revision,
        } => {
            let req = env_pb::UpdateNamespaceRequest {
                environment_key: "default".into(),
                name: key.clone(),
                key,
                description: None,
                protected: None,
                revision,
            };
            if create {
                e.create_namespace(Request::new(req)).await.map(drop)
            } else {
                e.update_namespace(Request::new(req)).await.map(drop)
            }
        }
        EnvCall::DeleteNamespace { key, revision } => e
            .delete_namespace(Request::new(env_pb::DeleteNamespaceRequest {
                environment_key: "default".into(),
                key,
                revision,
            }))
            .await
            .map(drop),
        EnvCall::Branch { key } => {
            let r = e
                .branch_environment(Request::new(env_pb::BranchEnvironmentRequest {
                    environment_key: "default".into(),
                    key: key.clone(),
                }))
                .await
                .map(drop);
            if r.is_ok() {
                // Keep the storage's branch set as it was, so that "nothing changed" holds
                // for the base branch only.
                e.delete_branch_environment(Request::new(env_pb::DeleteBranchEnvironmentRequest {
                    environment_key: "default".into(),
                    key,
                }))
                .await
                .map(drop)?;
            }
            r
        }
    }
}

#[derive(Debug, Clone)]
enum StorageCall {
    Commit {
        base: Option<String>,
        paths: Vec<String>,
        content: Vec<u8>,
        message: String,
    },
    Read {
        path: String,
        revision: Option<String>,
    },
    List {
        prefix: Option<String>,
        revision: Option<String>,
    },
    Commits {
        from: Option<String>,
        limit: Option<i32>,
    },
    Watch {
        from: Option<String>,
    },
    Status {
        id: String,
    },
}

fn storage_call() -> impl Strategy<Value = StorageCall> {
    prop_oneof![
        (
            proptest::option::of(revision_text()),
            vec(hostile_text(), 1..3),
            vec(any::<u8>(), 0..32),
            prop_oneof![Just(String::new()), Just("m".to_owned()), "\\PC{0,20}"],
        )
            .prop_map(|(base, paths, content, message)| StorageCall::Commit {
                base,
                paths,
                content,
                message
            }),
        (hostile_text(), proptest::option::of(revision_text()))
            .prop_map(|(path, revision)| StorageCall::Read { path, revision }),
        (
            proptest::option::of(hostile_text()),
            proptest::option::of(revision_text())
        )
            .prop_map(|(prefix, revision)| StorageCall::List { prefix, revision }),
        (
            proptest::option::of(revision_text()),
            proptest::option::of(prop_oneof![
                Just(0i32),
                Just(-1),
                Just(101),
                1i32..100,
                any::<i32>()
            ])
        )
            .prop_map(|(from, limit)| StorageCall::Commits { from, limit }),
        proptest::option::of(revision_text()).prop_map(|from| StorageCall::Watch { from }),
        hostile_text().prop_map(|id| StorageCall::Status { id }),
    ]
}

async fn run_storage_call(apis: &Apis, call: StorageCall) -> Result<(), tonic::Status> {
    let s = &apis.storage;
    let id = || "default".to_owned();
    match call {
        StorageCall::Commit {
            base,
            paths,
            content,
            message,
        } => s
            .commit(Request::new(st_pb::CommitRequest {
                storage_id: id(),
                base_revision: base,
                changes: paths
                    .into_iter()
                    .map(|path| st_pb::FileChange {
                        path,
                        change: Some(st_pb::file_change::Change::Content(content.clone())),
                    })
                    .collect(),
                message,
                author: None,
            }))
            .await
            .map(drop),
        StorageCall::Read { path, revision } => s
            .read_file(Request::new(st_pb::ReadFileRequest {
                storage_id: id(),
                path,
                revision,
            }))
            .await
            .map(drop),
        StorageCall::List { prefix, revision } => s
            .list_files(Request::new(st_pb::ListFilesRequest {
                storage_id: id(),
                prefix,
                revision,
            }))
            .await
            .map(drop),
        StorageCall::Commits { from, limit } => s
            .list_commits(Request::new(st_pb::ListCommitsRequest {
                storage_id: id(),
                from,
                limit,
            }))
            .await
            .map(drop),
        StorageCall::Watch { from } => s
            .watch(Request::new(st_pb::WatchRequest {
                storage_id: id(),
                from_revision: from,
            }))
            .await
            .map(drop),
        StorageCall::Status { id } => s
            .get_storage_status(Request::new(st_pb::GetStorageStatusRequest {
                storage_id: id,
            }))
            .await
            .map(drop),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_any_payloads_never_panic(type_url in type_url(), value in vec(any::<u8>(), 0..256)) {
        match resource_from_any(&prost_types::Any { type_url, value }) {
            Ok(decoded) => assert_stable(&decoded)?,
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn arbitrary_flag_messages_never_panic(msg in proto_flag()) {
        match flag_from_proto(msg.clone()) {
            Ok(flag) => assert_stable(&Decoded::Flag(flag))?,
            Err(e) => prop_assert!(!e.is_empty()),
        }
        // The same message through its bytes, whole and cut anywhere.
        let bytes = msg.encode_to_vec();
        for cut in [bytes.len(), bytes.len() / 2, bytes.len().saturating_sub(1)] {
            let any = prost_types::Any { type_url: core_convert::FLAG_TYPE_URL.into(), value: bytes[..cut].to_vec() };
            if let Ok(decoded) = resource_from_any(&any) {
                assert_stable(&decoded)?;
            }
        }
    }

    #[test]
    fn arbitrary_segment_messages_never_panic(msg in proto_segment()) {
        match segment_from_proto(msg) {
            Ok(segment) => assert_stable(&Decoded::Segment(segment))?,
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }
}

proptest! {
    // Each case starts a memory storage: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn hostile_environment_requests_are_refused_and_change_nothing(calls in vec(env_call(), 1..6)) {
        runtime().block_on(async {
            let apis = apis().await;
            for call in calls {
                let before = apis.head();
                let what = format!("{call:?}");
                let what: String = what.chars().take(300).collect();
                if let Err(e) = run_env_call(&apis, call).await {
                    check_refusal(&what, &e)?;
                    prop_assert_eq!(apis.head(), before, "{} changed the head", what);
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn hostile_storage_requests_are_refused_and_change_nothing(calls in vec(storage_call(), 1..6)) {
        runtime().block_on(async {
            let apis = apis().await;
            for call in calls {
                let before = apis.head();
                let what = format!("{call:?}");
                let what: String = what.chars().take(300).collect();
                if let Err(e) = run_storage_call(&apis, call).await {
                    check_refusal(&what, &e)?;
                    prop_assert_eq!(apis.head(), before, "{} changed the head", what);
                }
            }
            Ok(())
        })?;
    }
}
