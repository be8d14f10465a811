//! Reliability under load (issue #7): 64 concurrent clients mixing reads and writes against
//! one server, for each backend with and without a remote, and 1,000 idle `Watch` streams
//! while writers commit.
//!
//! Every outcome is counted. A write is acknowledged (OK), refused by a conflict (`ABORTED`,
//! the only error expected), or of unknown outcome (`UNAVAILABLE` / `DEADLINE_EXCEEDED`: it
//! may have landed, BEHAVIOUR §3). Afterwards the repository's history is checked against
//! the outcomes: every acknowledged write is in it exactly once (as the commit whose id the
//! client got back), every unknown one at most once, no refused one, and no commit that no
//! client asked for; and the served state equals the head.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use integration_tests::Server;
use prost::Message as _;
use storage_proto::environments as env;
use storage_proto::environments::environments_service_client::EnvironmentsServiceClient;
use storage_proto::flipt::core;
use storage_proto::flipt::storage::v1 as pb;
use storage_proto::flipt::storage::v1::storage_service_client::StorageServiceClient;
use tonic::Code;
use tonic::transport::Channel;

/// Concurrent clients, each on its own connection.
const CLIENTS: usize = 64;
/// Operations per client: even ones read, odd ones write (so 384 writes in all).
const OPS_PER_CLIENT: usize = 12;
/// Shared flags and shared files the clients race on (with revisions: `ABORTED` expected).
const SHARED: usize = 4;
/// The features file of the default environment's default namespace.
const FEATURES: &str = "default/features.yaml";

type Storage = StorageServiceClient<Channel>;
type Envs = EnvironmentsServiceClient<Channel>;

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_owned())
        .expect("endpoint")
        .timeout(Duration::from_secs(90))
        .connect()
        .await
        .expect("connect")
}

fn flag(key: &str, name: &str) -> core::Flag {
    core::Flag {
        key: key.into(),
        name: name.into(),
        r#type: core::FlagType::VariantFlagType as i32,
        enabled: true,
        ..Default::default()
    }
}

fn flag_request(key: &str, name: &str, revision: &str) -> env::UpdateResourceRequest {
    env::UpdateResourceRequest {
        environment_key: "default".into(),
        namespace_key: "default".into(),
        key: key.into(),
        payload: Some(prost_types::Any {
            type_url: "flipt.core.Flag".into(),
            value: flag(key, name).encode_to_vec(),
        }),
        revision: revision.into(),
    }
}

fn get_flag_request(key: &str) -> env::GetResourceRequest {
    env::GetResourceRequest {
        environment_key: "default".into(),
        namespace_key: "default".into(),
        type_url: "flipt.core.Flag".into(),
        key: key.into(),
    }
}

fn shared_flag(i: usize) -> String {
    format!("shared-{i}")
}

fn shared_file(i: usize) -> String {
    format!("load/shared-{i}.txt")
}

fn put_file(path: &str, content: &str, message: &str, base: Option<String>) -> pb::CommitRequest {
    pb::CommitRequest {
        storage_id: "default".into(),
        base_revision: base,
        changes: vec![pb::FileChange {
            path: path.into(),
            change: Some(pb::file_change::Change::Content(
                content.as_bytes().to_vec(),
            )),
        }],
        message: message.into(),
        author: None,
    }
}

/// The three kinds of write the clients make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `CreateResource` of a flag with a unique key, no revision: only OK (or unknown).
    Create,
    /// `UpdateResource` of a shared flag (unique name) with the revision just read.
    Update,
    /// `Commit` of a shared file (unique content and message) with the revision just read.
    Commit,
}

#[derive(Debug)]
enum Outcome {
    Acked(String),
    Aborted,
    Unknown(Code),
    Failed(tonic::Status),
}

fn outcome(r: Result<String, tonic::Status>) -> Outcome {
    match r {
        Ok(rev) => Outcome::Acked(rev),
        Err(s) if s.code() == Code::Aborted => Outcome::Aborted,
        Err(s) if matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded) => {
            Outcome::Unknown(s.code())
        }
        Err(s) => Outcome::Failed(s),
    }
}

#[derive(Debug)]
struct Write {
    /// Unique over the run: the created flag's key, the updated flag's name, the committed
    /// file's content.
    marker: String,
    kind: Kind,
    /// Which shared flag or file (for `Update` and `Commit`).
    target: usize,
    /// The revision the write was conditioned on (for `Update` and `Commit`).
    base: Option<String>,
    outcome: Outcome,
}

#[derive(Debug, Default)]
struct ClientReport {
    writes: Vec<Write>,
    reads_ok: usize,
    read_failures: Vec<String>,
}

async fn run_client(c: usize, url: String) -> ClientReport {
    let ch = channel(&url).await;
    let mut storage = Storage::new(ch.clone());
    let mut envs = Envs::new(ch);
    let mut report = ClientReport::default();
    let target = c % SHARED;
    for op in 0..OPS_PER_CLIENT {
        let marker = format!("m{c:02}x{op:02}");
        if op % 2 == 0 {
            let read = match (c + op / 2) % 4 {
                0 => envs
                    .get_resource(get_flag_request(&shared_flag(target)))
                    .await
                    .map(|r| r.into_inner().revision),
                1 => envs
                    .list_resources(env::ListResourcesRequest {
                        environment_key: "default".into(),
                        namespace_key: "default".into(),
                        type_url: "flipt.core.Flag".into(),
                    })
                    .await
                    .map(|r| r.into_inner().revision),
                2 => storage
                    .read_file(pb::ReadFileRequest {
                        storage_id: "default".into(),
                        path: shared_file(target),
                        revision: None,
                    })
                    .await
                    .map(|r| r.into_inner().revision),
                _ => storage
                    .list_commits(pb::ListCommitsRequest {
                        storage_id: "default".into(),
                        from: None,
                        limit: Some(5),
                    })
                    .await
                    .map(|r| r.into_inner().commits[0].id.clone()),
            };
            match read {
                Ok(rev) if rev.len() == 40 => report.reads_ok += 1,
                Ok(rev) => report
                    .read_failures
                    .push(format!("client {c} op {op}: revision {rev:?}")),
                Err(e) => report
                    .read_failures
                    .push(format!("client {c} op {op}: {e:?}")),
            }
            continue;
        }
        let kind = [Kind::Create, Kind::Update, Kind::Commit][(c + op / 2) % 3];
        let mut base = None;
        let result = match kind {
            Kind::Create => envs
                .create_resource(flag_request(&marker, &marker, ""))
                .await
                .map(|r| r.into_inner().revision),
            Kind::Update => {
                let key = shared_flag(target);
                match envs.get_resource(get_flag_request(&key)).await {
                    Ok(read) => {
                        report.reads_ok += 1;
                        let revision = read.into_inner().revision;
                        base = Some(revision.clone());
                        envs.update_resource(flag_request(&key, &marker, &revision))
                            .await
                            .map(|r| r.into_inner().revision)
                    }
                    Err(e) => Err(e),
                }
            }
            Kind::Commit => {
                let path = shared_file(target);
                match storage
                    .read_file(pb::ReadFileRequest {
                        storage_id: "default".into(),
                        path: path.clone(),
                        revision: None,
                    })
                    .await
                {
                    Ok(read) => {
                        report.reads_ok += 1;
                        let revision = read.into_inner().revision;
                        base = Some(revision.clone());
                        storage
                            .commit(put_file(
                                &path,
                                &format!("{marker}\n"),
                                &format!("commit {marker}"),
                                Some(revision),
                            ))
                            .await
                            .map(|r| r.into_inner().revision)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        report.writes.push(Write {
            marker,
            kind,
            target,
            base,
            outcome: outcome(result),
        });
    }
    report
}

/// One commit of the history, as the server lists it, with the features file's content
/// after it.
#[derive(Debug)]
struct Entry {
    id: String,
    message: String,
    features: String,
}

/// The history of the served branch from `head` back to (and without) `baseline`, oldest
/// first, read through the API (`ListCommits`, `ReadFile` at each revision that changed the
/// features file).
async fn history(storage: &mut Storage, head: &str, baseline: &str) -> Vec<Entry> {
    let mut infos = Vec::new();
    let mut from = head.to_owned();
    'pages: loop {
        let page = storage
            .list_commits(pb::ListCommitsRequest {
                storage_id: "default".into(),
                from: Some(from.clone()),
                limit: Some(100),
            })
            .await
            .expect("list commits")
            .into_inner()
            .commits;
        let skip = usize::from(!infos.is_empty());
        if page.len() <= skip {
            panic!("the history ended before the baseline {baseline}");
        }
        for c in page.into_iter().skip(skip) {
            if c.id == baseline {
                break 'pages;
            }
            from = c.id.clone();
            infos.push(c);
        }
    }
    infos.reverse();
    let mut features = String::new();
    let mut out = Vec::new();
    for c in infos {
        if c.changed_paths.iter().any(|p| p == FEATURES) {
            features = String::from_utf8(
                storage
                    .read_file(pb::ReadFileRequest {
                        storage_id: "default".into(),
                        path: FEATURES.into(),
                        revision: Some(c.id.clone()),
                    })
                    .await
                    .expect("read the features file at a revision")
                    .into_inner()
                    .content,
            )
            .expect("UTF-8");
        }
        out.push(Entry {
            id: c.id,
            message: c.message.trim_end().to_owned(),
            features: features.clone(),
        });
    }
    out
}

/// `git log` of a repository on disk: commit ids and subjects from `baseline` (excluded) to
/// the branch head, oldest first.
fn git_log(repo: &Path, baseline: &str) -> Vec<(String, String)> {
    test_support::git(
        &[
            "log",
            "--reverse",
            "--format=%H %s",
            &format!("{baseline}..refs/heads/main"),
        ],
        repo,
    )
    .lines()
    .map(|l| {
        let (id, subject) = l.split_once(' ').unwrap_or((l, ""));
        (id.to_owned(), subject.to_owned())
    })
    .collect()
}

/// The names of the shared flags in a features file: `key: shared-N` followed by its
/// `name:` line.
fn shared_names(features: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let mut key: Option<String> = None;
    for line in features.lines() {
        let t = line.trim_start().trim_start_matches("- ");
        if let Some(k) = t.strip_prefix("key: ") {
            key = Some(k.trim().trim_matches('"').to_owned());
        } else if let Some(n) = t.strip_prefix("name: ")
            && let Some(k) = key.take()
            && k.starts_with("shared-")
        {
            names.insert(k, n.trim().trim_matches('"').to_owned());
        }
    }
    names
}

/// Where the storage keeps its repository, for the checks against git.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Memory,
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RemoteKind {
    None,
    File,
    Http,
}

/// What one load run observed, for the report.
#[derive(Debug, Default)]
struct Counts {
    reads_ok: usize,
    acked: usize,
    aborted: usize,
    unknown: usize,
    commits: usize,
}

async fn load(backend: Backend, remote_kind: RemoteKind) -> Counts {
    let dir = tempfile::tempdir().unwrap();
    let remote = (remote_kind != RemoteKind::None).then(test_support::BareRemote::new);
    let http = (remote_kind == RemoteKind::Http).then(|| {
        test_support::GitHttpServer::builder(remote.as_ref().unwrap().project_root()).start()
    });
    let local_path: Option<PathBuf> = (backend == Backend::Local).then(|| dir.path().join("flags"));
    let mut config = String::from("storage:\n  default:\n");
    if let Some(p) = &local_path {
        config.push_str(&format!(
            "    backend:\n      type: local\n      path: {}\n",
            p.display()
        ));
    }
    match (&remote, &http) {
        (Some(_), Some(h)) => config.push_str(&format!(
            "    remote: {}\n    poll_interval: 1s\n",
            h.url(test_support::REMOTE_DIR_NAME)
        )),
        (Some(r), None) => config.push_str(&format!(
            "    remote: {}\n    poll_interval: 1s\n",
            r.file_url()
        )),
        _ => {}
    }
    let s = Server::start(&config);
    let ch = channel(&s.grpc).await;
    let mut storage = Storage::new(ch.clone());
    let mut envs = Envs::new(ch);

    // The shared flags and files, made before the clients start.
    for i in 0..SHARED {
        envs.create_resource(flag_request(&shared_flag(i), "initial", ""))
            .await
            .unwrap();
        storage
            .commit(put_file(
                &shared_file(i),
                "initial\n",
                "seed shared file",
                None,
            ))
            .await
            .unwrap();
    }
    let baseline = storage
        .get_storage_status(pb::GetStorageStatusRequest {
            storage_id: "default".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .head;

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(run_client(c, s.grpc.clone())))
        .collect();
    let mut writes = Vec::new();
    let mut counts = Counts::default();
    let mut read_failures = Vec::new();
    for c in clients {
        let r = tokio::time::timeout(Duration::from_secs(300), c)
            .await
            .expect("the clients finish within 5 minutes")
            .expect("client task");
        counts.reads_ok += r.reads_ok;
        read_failures.extend(r.read_failures);
        writes.extend(r.writes);
    }
    assert!(read_failures.is_empty(), "reads failed: {read_failures:#?}");
    let failed: Vec<String> = writes
        .iter()
        .filter_map(|w| match &w.outcome {
            Outcome::Failed(s) => Some(format!("{:?} {}: {s:?}", w.kind, w.marker)),
            _ => None,
        })
        .collect();
    assert!(
        failed.is_empty(),
        "writes failed with other errors than ABORTED: {failed:#?}"
    );
    assert_eq!(writes.len(), CLIENTS * OPS_PER_CLIENT / 2);
    for w in &writes {
        match w.outcome {
            Outcome::Acked(_) => counts.acked += 1,
            Outcome::Aborted => counts.aborted += 1,
            Outcome::Unknown(code) => {
                counts.unknown += 1;
                eprintln!("{:?} {}: unknown outcome ({code:?})", w.kind, w.marker);
            }
            Outcome::Failed(_) => {}
        }
        if w.kind == Kind::Create {
            assert!(
                !matches!(w.outcome, Outcome::Aborted),
                "an unconditional create of a new key was ABORTED: {w:?}"
            );
        }
    }

    // The history after the baseline, against the outcomes.
    let status = storage
        .get_storage_status(pb::GetStorageStatusRequest {
            storage_id: "default".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let head = status.head.clone();
    let log = history(&mut storage, &head, &baseline).await;
    counts.commits = log.len();
    let mut claimed = vec![false; log.len()];
    let mut expected_flags: BTreeSet<String> = (0..SHARED).map(shared_flag).collect();
    for w in &writes {
        // The commits this write made: by message for creates and commits; for updates, the
        // commits where the features file starts to hold the write's name.
        let made: Vec<usize> = match w.kind {
            Kind::Create => {
                let message = format!("create flag default/{}", w.marker);
                (0..log.len())
                    .filter(|&i| log[i].message == message)
                    .collect()
            }
            Kind::Commit => {
                let message = format!("commit {}", w.marker);
                (0..log.len())
                    .filter(|&i| log[i].message == message)
                    .collect()
            }
            Kind::Update => {
                let key = shared_flag(w.target);
                let holds = |i: usize| shared_names(&log[i].features).get(&key) == Some(&w.marker);
                (0..log.len())
                    .filter(|&i| holds(i) && (i == 0 || !holds(i - 1)))
                    .collect()
            }
        };
        match &w.outcome {
            Outcome::Acked(rev) => {
                assert_eq!(
                    made.len(),
                    1,
                    "acknowledged {w:?} is in the history {} times",
                    made.len()
                );
                assert_eq!(
                    &log[made[0]].id, rev,
                    "{w:?} is the commit the client got back"
                );
            }
            Outcome::Unknown(_) => {
                assert!(
                    made.len() <= 1,
                    "{w:?} of unknown outcome landed {} times",
                    made.len()
                )
            }
            _ => assert!(made.is_empty(), "refused {w:?} is in the history"),
        }
        for i in &made {
            assert!(!claimed[*i], "commit {} claimed by two writes", log[*i].id);
            claimed[*i] = true;
        }
        if w.kind == Kind::Create && !made.is_empty() {
            expected_flags.insert(w.marker.clone());
        }
    }
    let stray: Vec<_> = log
        .iter()
        .zip(&claimed)
        .filter(|(_, c)| !**c)
        .map(|(e, _)| (&e.id, &e.message))
        .collect();
    assert!(stray.is_empty(), "commits that no write made: {stray:?}");
    // An `ABORTED` write is refused because what it touches changed after the revision it
    // read (BEHAVIOUR §4): some later commit changed its flag or file. (Writes to other
    // resources in between must not make it fail: conflicts are per resource.)
    let changed = |i: usize, kind: Kind, target: usize| match kind {
        Kind::Update => {
            let key = shared_flag(target);
            let before = if i == 0 {
                Some("initial".to_owned())
            } else {
                shared_names(&log[i - 1].features).get(&key).cloned()
            };
            shared_names(&log[i].features).get(&key).cloned() != before
        }
        Kind::Commit => log[i].message.strip_prefix("commit ").is_some_and(|m| {
            writes
                .iter()
                .any(|w| w.marker == m && w.kind == Kind::Commit && w.target == target)
        }),
        Kind::Create => false,
    };
    for w in writes
        .iter()
        .filter(|w| matches!(w.outcome, Outcome::Aborted))
    {
        let base = w.base.as_deref().expect("a conditional write");
        let from = if base == baseline {
            0
        } else {
            log.iter()
                .position(|e| e.id == base)
                .unwrap_or_else(|| panic!("{w:?}: its revision is not in the history"))
                + 1
        };
        assert!(
            (from..log.len()).any(|i| changed(i, w.kind, w.target)),
            "{w:?} was ABORTED although nothing it touches changed after its revision"
        );
    }

    // The served state equals the head: what Flipt's API lists, and the files.
    let listed = envs
        .list_resources(env::ListResourcesRequest {
            environment_key: "default".into(),
            namespace_key: "default".into(),
            type_url: "flipt.core.Flag".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.revision, head, "the snapshot is the head's");
    let mut served_names = BTreeMap::new();
    let keys: BTreeSet<String> = listed
        .resources
        .iter()
        .map(|r| {
            let f = core::Flag::decode(r.payload.as_ref().unwrap().value.as_slice()).unwrap();
            if f.key.starts_with("shared-") {
                served_names.insert(f.key.clone(), f.name.clone());
            }
            f.key
        })
        .collect();
    assert_eq!(
        keys, expected_flags,
        "served flags = initial + created ones"
    );
    let last_features = &log.last().expect("commits were made").features;
    assert_eq!(
        served_names,
        shared_names(last_features),
        "served names = the head's"
    );
    for i in 0..SHARED {
        let served = storage
            .read_file(pb::ReadFileRequest {
                storage_id: "default".into(),
                path: shared_file(i),
                revision: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(served.revision, head);
        let last_commit = log
            .iter()
            .rev()
            .find_map(|e| {
                let m = e.message.strip_prefix("commit ")?;
                writes
                    .iter()
                    .any(|w| w.marker == m && w.target == i && w.kind == Kind::Commit)
                    .then(|| format!("{m}\n"))
            })
            .unwrap_or_else(|| "initial\n".to_owned());
        assert_eq!(String::from_utf8(served.content).unwrap(), last_commit);
    }

    // The same history in git: the local repository and the remote.
    let ids: Vec<(String, String)> = log
        .iter()
        .map(|e| {
            (
                e.id.clone(),
                e.message.lines().next().unwrap_or("").to_owned(),
            )
        })
        .collect();
    if let Some(p) = &local_path {
        assert_eq!(git_log(p, &baseline), ids, "the local repository's history");
        test_support::git(&["fsck", "--strict", "--no-progress"], p);
    }
    if let Some(r) = &remote {
        assert_eq!(r.head("main").as_deref(), Some(head.as_str()));
        assert_eq!(git_log(r.path(), &baseline), ids, "the remote's history");
        r.fsck();
        assert!(status.synced, "{status:?}");
    }
    let per_kind: Vec<String> = [Kind::Create, Kind::Update, Kind::Commit]
        .iter()
        .map(|k| {
            let of = |f: fn(&Outcome) -> bool| {
                writes
                    .iter()
                    .filter(|w| w.kind == *k && f(&w.outcome))
                    .count()
            };
            format!(
                "{k:?} {}/{}/{}",
                of(|o| matches!(o, Outcome::Acked(_))),
                of(|o| matches!(o, Outcome::Aborted)),
                of(|o| matches!(o, Outcome::Unknown(_)))
            )
        })
        .collect();
    eprintln!(
        "load {backend:?} remote={remote_kind:?}: {CLIENTS} clients x {OPS_PER_CLIENT} ops: reads ok {}, writes acked {}, aborted {}, unknown {} (acked/aborted/unknown: {}); {} commits after the baseline",
        counts.reads_ok,
        counts.acked,
        counts.aborted,
        counts.unknown,
        per_kind.join(", "),
        counts.commits
    );
    assert_eq!(s.stop(), Some(0));
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn load_64_clients_x_12_ops_memory_without_remote() {
    load(Backend::Memory, RemoteKind::None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn load_64_clients_x_12_ops_local_without_remote() {
    load(Backend::Local, RemoteKind::None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn load_64_clients_x_12_ops_memory_with_http_remote() {
    load(Backend::Memory, RemoteKind::Http).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn load_64_clients_x_12_ops_local_with_file_remote() {
    load(Backend::Local, RemoteKind::File).await;
}

/// `Watch` streams open at once in the watch test, over this many connections.
const STREAMS: usize = 1000;
const STREAM_CONNECTIONS: usize = 10;
/// Writers in the watch test and the commits each makes (unique paths: no conflicts).
const WRITERS: usize = 4;
const COMMITS_PER_WRITER: usize = 20;

/// Reads a stream's messages (heartbeats left out) after `seen` until one reaches the final
/// head, which `last` announces once the writers are done.
async fn follow(
    mut stream: tonic::Streaming<pb::WatchEvent>,
    mut seen: Vec<pb::WatchEvent>,
    mut last: tokio::sync::watch::Receiver<Option<String>>,
) -> Result<Vec<pb::WatchEvent>, String> {
    loop {
        let done = last.borrow_and_update().clone();
        if let Some(last) = done
            && seen.last().is_some_and(|e| e.to == last)
        {
            return Ok(seen);
        }
        tokio::select! {
            m = stream.message() => match m {
                Ok(Some(e)) if e.heartbeat => {}
                Ok(Some(e)) => seen.push(e),
                Ok(None) => return Err(format!("the stream ended after {seen:?}")),
                Err(e) => return Err(format!("the stream failed: {e:?}")),
            },
            _ = last.changed() => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_1000_streams_half_idle_while_4_writers_make_80_commits() {
    let s = Server::start("");
    let mut storage = Storage::new(channel(&s.grpc).await);
    let start = storage
        .get_storage_status(pb::GetStorageStatusRequest {
            storage_id: "default".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .head;
    // HTTP/2 multiplexes the streams: a handful of connections, no per-call timeout.
    let mut connections = Vec::new();
    for _ in 0..STREAM_CONNECTIONS {
        connections.push(
            Channel::from_shared(s.grpc.clone())
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
    }
    let (announce, last) = tokio::sync::watch::channel(None::<String>);
    let mut active = Vec::new();
    let mut idle = Vec::new();
    for i in 0..STREAMS {
        let mut c = Storage::new(connections[i % STREAM_CONNECTIONS].clone());
        let mut stream = c
            .watch(pb::WatchRequest {
                storage_id: "default".into(),
                from_revision: None,
            })
            .await
            .unwrap_or_else(|e| panic!("stream {i}: {e:?}"))
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert_eq!(
            (first.from.as_str(), first.to.as_str()),
            ("", start.as_str())
        );
        if i % 2 == 0 {
            active.push(tokio::spawn(follow(stream, vec![first], last.clone())));
        } else {
            // Not read at all while the writers run: the server must coalesce, never skip.
            idle.push((stream, first));
        }
    }

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let url = s.grpc.clone();
            tokio::spawn(async move {
                let mut c = Storage::new(channel(&url).await);
                let mut paths = Vec::new();
                for i in 0..COMMITS_PER_WRITER {
                    let path = format!("watch/w{w}/{i}.txt");
                    let out = c
                        .commit(put_file(&path, "x", &format!("watch {w} {i}"), None))
                        .await
                        .unwrap_or_else(|e| panic!("writer {w} commit {i}: {e:?}"))
                        .into_inner();
                    assert!(out.committed);
                    paths.push(path);
                }
                paths
            })
        })
        .collect();
    let mut written = BTreeSet::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    let head = storage
        .get_storage_status(pb::GetStorageStatusRequest {
            storage_id: "default".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .head;
    let log = history(&mut storage, &head, &start).await;
    assert_eq!(log.len(), WRITERS * COMMITS_PER_WRITER);
    let mut position: BTreeMap<String, usize> = log
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.clone(), i + 1))
        .collect();
    position.insert(start.clone(), 0);
    announce.send(Some(head.clone())).unwrap();
    for (stream, first) in idle {
        active.push(tokio::spawn(follow(stream, vec![first], last.clone())));
    }

    let mut messages = Vec::new();
    for (i, task) in active.into_iter().enumerate() {
        let events = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .unwrap_or_else(|_| panic!("stream {i} did not reach the final head within 120 s"))
            .unwrap()
            .unwrap_or_else(|e| panic!("stream {i}: {e}"));
        let mut paths = BTreeSet::new();
        for pair in events.windows(2) {
            let (prev, next) = (&pair[0], &pair[1]);
            assert_eq!(next.from, prev.to, "stream {i}: a gap: {events:#?}");
            let (a, b) = (position.get(&prev.to), position.get(&next.to));
            assert!(
                a.is_some() && b.is_some() && a < b,
                "stream {i}: out of order or unknown: {prev:?} then {next:?}"
            );
            paths.extend(next.changed_paths.iter().cloned());
        }
        assert_eq!(events.last().unwrap().to, head, "stream {i}");
        assert_eq!(
            paths, written,
            "stream {i}: the changed paths are every write's"
        );
        messages.push(events.len() - 1);
    }
    let (min, max) = (
        messages.iter().min().unwrap(),
        messages.iter().max().unwrap(),
    );
    let coalesced = messages.iter().filter(|&&n| n < log.len()).count();
    eprintln!(
        "watch: {STREAMS} streams, {} commits by {WRITERS} writers: messages per stream after the first: min {min}, max {max}, total {}; {coalesced} streams got coalesced messages",
        log.len(),
        messages.iter().sum::<usize>()
    );
    assert_eq!(s.stop(), Some(0));
}
