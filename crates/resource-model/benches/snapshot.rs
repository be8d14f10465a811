//! Figures S2 and S3 of PERFORMANCE.md on the data set it describes: 10,000 flags (2 variants
//! and 1 rule each) and 100 segments in 100 namespaces, in the memory backend.
//!
//! - `S2/yaml_parse_baseline`: parsing the same 100 files with the YAML library alone
//!   (`serde_yaml` into `Value`), from memory.
//! - `S2/cold_snapshot_build`: `Snapshot::build` at the commit (listing, reading the blobs,
//!   parsing, validating, indexing). Target: <= 1.3 x the baseline.
//! - `S3/rebuild_after_one_flag_commit`: `Snapshot::rebuild` from the previous snapshot to a
//!   commit that changed one flag. Target: <= 0.05 x S2.
//! - `W/plan_update_flag_{parsing,cached}`: planning a one-flag update (the model's share of
//!   W1), parsing the namespace file, or finding it in the write target's cache;
//!   `W/plan_create_flag_cached`: W1's operation, a new flag appended to a cached file.
//!
//! Run with `cargo bench -p resource-model --bench snapshot`.

use std::hint::black_box;

use criterion::Criterion;
use git_backend::{Change, CommitRequest, GitBackend, ObjectId, RepoPath, Signature};
use git_backend::{WriteContext, WriteOp};
use git_backend_memory::MemoryBackend;
use resource_model::{Operation, ResourceWrite, Snapshot, WriteTarget};

const NAMESPACES: usize = 100;
const FLAGS_PER_NAMESPACE: usize = 100;

fn namespace_file(ns: usize, changed_flag: Option<usize>) -> String {
    let mut s = format!(
        "version: \"1.6\"\nnamespace:\n  key: ns-{ns}\n  name: Namespace {ns}\n  description: Generated for the benchmarks\nflags:\n"
    );
    for f in 0..FLAGS_PER_NAMESPACE {
        let enabled = changed_flag == Some(f);
        s.push_str(&format!(
            "  - key: flag-{ns}-{f}\n    name: Flag {f} of namespace {ns}\n    type: VARIANT_FLAG_TYPE\n    description: A generated flag with two variants and one rule\n    enabled: {enabled}\n    variants:\n      - key: control\n        name: Control\n      - key: treatment\n        name: Treatment\n        attachment:\n          color: blue\n          size: 3\n    rules:\n      - segment: segment-{ns}\n        distributions:\n          - variant: control\n            rollout: 50\n          - variant: treatment\n            rollout: 50\n"
        ));
    }
    s.push_str(&format!(
        "segments:\n  - key: segment-{ns}\n    name: Segment {ns}\n    match_type: ALL_MATCH_TYPE\n    constraints:\n      - type: STRING_COMPARISON_TYPE\n        property: region\n        operator: isoneof\n        value: [eu-west-1, eu-central-1]\n      - type: NUMBER_COMPARISON_TYPE\n        property: age\n        operator: gte\n        value: \"18\"\n"
    ));
    s
}

async fn commit(
    b: &MemoryBackend,
    parent: Option<ObjectId>,
    files: Vec<(String, String)>,
) -> ObjectId {
    let sig = Signature::now("bench", "bench@example.com");
    let changes = files
        .into_iter()
        .map(|(path, content)| Change::Put {
            path: RepoPath::new(path).expect("path"),
            content: content.into_bytes(),
        })
        .collect();
    b.create_commit(CommitRequest {
        parent,
        changes,
        message: "bench".into(),
        author: sig.clone(),
        committer: sig,
    })
    .await
    .expect("commit")
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let backend = MemoryBackend::new(Default::default()).expect("memory backend");
    let files: Vec<(String, String)> = (0..NAMESPACES)
        .map(|ns| (format!("ns-{ns}/features.yaml"), namespace_file(ns, None)))
        .collect();
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    let first = rt.block_on(commit(&backend, None, files.clone()));
    let second = rt.block_on(commit(
        &backend,
        Some(first),
        vec![("ns-42/features.yaml".into(), namespace_file(42, Some(7)))],
    ));
    let snapshot = rt
        .block_on(Snapshot::build(&backend, first, ""))
        .expect("valid data set");
    let flags: usize = snapshot.namespaces().map(|n| n.flags().len()).sum();
    let segments: usize = snapshot.namespaces().map(|n| n.segments().len()).sum();
    eprintln!(
        "data set: {flags} flags, {segments} segments, {} namespace files, {:.1} MB of YAML",
        files.len(),
        bytes as f64 / 1e6
    );

    let mut s2 = c.benchmark_group("S2");
    s2.sample_size(10);
    s2.bench_function("yaml_parse_baseline", |b| {
        b.iter(|| {
            for (_, text) in &files {
                let v: serde_yaml::Value = serde_yaml::from_str(text).expect("yaml");
                black_box(v);
            }
        })
    });
    s2.bench_function("cold_snapshot_build", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(Snapshot::build(&backend, first, ""))
                    .expect("snapshot"),
            )
        })
    });
    s2.finish();

    let mut s3 = c.benchmark_group("S3");
    s3.sample_size(20);
    s3.bench_function("rebuild_after_one_flag_commit", |b| {
        b.iter(|| {
            let next = rt
                .block_on(snapshot.rebuild(&backend, second))
                .expect("snapshot");
            assert_eq!(next.stats().files_parsed, 1);
            black_box(next)
        })
    });
    s3.finish();

    // Not a figure of its own: the model's share of W1 (planning a one-flag update on the
    // 10k-flag repository: finding and reading the namespace file, parsing it unless the
    // write target's cache holds it, editing, writing it back, the commit message).
    let shared = std::sync::Arc::new(WriteTarget::default());
    let mut w = c.benchmark_group("W");
    w.sample_size(20);
    for (name, cached) in [
        ("plan_update_flag_parsing", false),
        ("plan_update_flag_cached", true),
    ] {
        w.bench_function(name, |b| {
            let mut n = 0u32;
            b.iter(|| {
                n += 1;
                let mut flag = snapshot.flag("ns-42", "flag-42-7").expect("flag").clone();
                flag.description = format!("edit {n}");
                let target = if cached {
                    shared.clone()
                } else {
                    std::sync::Arc::new(WriteTarget::default())
                };
                let write = ResourceWrite::new(
                    target,
                    Operation::UpdateFlag {
                        namespace: "ns-42".into(),
                        flag,
                    },
                );
                let plan = rt
                    .block_on(write.plan(WriteContext {
                        backend: &backend,
                        head: Some(first),
                        base: None,
                    }))
                    .expect("plan");
                black_box(plan)
            })
        });
    }
    // W1's own operation: a new flag appended to a namespace file found in the cache.
    // Each plan leaves its result in the cache, which keeps two files per path: a fresh
    // target, warmed outside the clock, holds the file at `first` for each timed plan.
    let plan_create = |target: &std::sync::Arc<WriteTarget>, key: String| {
        let mut flag = resource_model::Flag::new(key, "Bench flag");
        flag.description = "created by the bench".into();
        let write = ResourceWrite::new(
            target.clone(),
            Operation::CreateFlag {
                namespace: "ns-42".into(),
                flag,
            },
        );
        rt.block_on(write.plan(WriteContext {
            backend: &backend,
            head: Some(first),
            base: None,
        }))
        .expect("plan")
    };
    w.bench_function("plan_create_flag_cached", |b| {
        b.iter_batched(
            || {
                let target = std::sync::Arc::new(WriteTarget::default());
                plan_create(&target, "warm-up".into());
                target
            },
            |target| black_box(plan_create(&target, "bench-flag".into())),
            criterion::BatchSize::PerIteration,
        )
    });
    w.finish();

    // Not a figure either: W1's model and backend share in-process (plan, commit, rebuild the
    // snapshot from the write cache), a create and a delete of one flag per iteration, every
    // create in one namespace or going round the 100 namespaces. The server's W1 shows a gap
    // between the two; this says whether it is in this crate and the backend.
    let mut rr = c.benchmark_group("W1-inproc");
    rr.sample_size(30);
    for (name, round) in [
        ("create_delete_one_namespace", false),
        ("create_delete_round_robin", true),
    ] {
        let target = std::sync::Arc::new(WriteTarget::default());
        let mut head = first;
        let mut current = snapshot.clone();
        let mut n = 0usize;
        rr.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                let ns = if round { n % NAMESPACES } else { 42 };
                let namespace = format!("ns-{ns}");
                let key = format!("bench-{n}");
                let mut flag = resource_model::Flag::new(key.clone(), "Bench flag");
                flag.description = "created by the bench".into();
                for op in [
                    Operation::CreateFlag {
                        namespace: namespace.clone(),
                        flag,
                    },
                    Operation::DeleteFlag {
                        namespace: namespace.clone(),
                        key,
                    },
                ] {
                    let write = ResourceWrite::new(target.clone(), op);
                    let plan = rt
                        .block_on(write.plan(WriteContext {
                            backend: &backend,
                            head: Some(head),
                            base: None,
                        }))
                        .expect("plan");
                    let git_backend::Plan::Commit { changes, message } = plan else {
                        panic!("nothing to commit")
                    };
                    let sig = Signature::now("bench", "bench@example.com");
                    head = rt
                        .block_on(backend.create_commit(CommitRequest {
                            parent: Some(head),
                            changes,
                            message,
                            author: sig.clone(),
                            committer: sig,
                        }))
                        .expect("commit");
                    current = rt
                        .block_on(current.rebuild_with(&backend, head, &target.cache))
                        .expect("rebuild");
                }
                black_box(&current);
            })
        });
    }
    rr.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
