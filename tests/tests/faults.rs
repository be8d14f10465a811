//! Reliability under faults (issue #7), against the real binary: SIGKILL in the middle of a
//! write storm, a remote that goes away during writes and comes back, a remote rewritten or
//! its branch deleted by someone else, commits by another user that do not validate, and a
//! full disk (`RLIMIT_FSIZE` with SIGXFSZ ignored, so no privilege is needed).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use integration_tests::Server;
use prost::Message as _;
use storage_proto::environments as env;
use storage_proto::environments::environments_service_client::EnvironmentsServiceClient;
use storage_proto::flipt::core;
use storage_proto::flipt::storage::v1 as pb;
use storage_proto::flipt::storage::v1::storage_service_client::StorageServiceClient;
use tonic::Code;
use tonic::transport::Channel;

type Storage = StorageServiceClient<Channel>;
type Envs = EnvironmentsServiceClient<Channel>;

const FEATURES: &str = "default/features.yaml";

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_owned())
        .expect("endpoint")
        .timeout(Duration::from_secs(60))
        .connect()
        .await
        .expect("connect")
}

async fn clients(s: &Server) -> (Storage, Envs) {
    let ch = channel(&s.grpc).await;
    (Storage::new(ch.clone()), Envs::new(ch))
}

fn put(path: &str, content: &[u8], message: &str) -> pb::CommitRequest {
    pb::CommitRequest {
        storage_id: "default".into(),
        base_revision: None,
        changes: vec![pb::FileChange {
            path: path.into(),
            change: Some(pb::file_change::Change::Content(content.to_vec())),
        }],
        message: message.into(),
        author: None,
    }
}

fn create_flag(key: &str) -> env::UpdateResourceRequest {
    let flag = core::Flag {
        key: key.into(),
        name: key.into(),
        r#type: core::FlagType::VariantFlagType as i32,
        enabled: true,
        ..Default::default()
    };
    env::UpdateResourceRequest {
        environment_key: "default".into(),
        namespace_key: "default".into(),
        key: key.into(),
        payload: Some(prost_types::Any {
            type_url: "flipt.core.Flag".into(),
            value: flag.encode_to_vec(),
        }),
        revision: String::new(),
    }
}

async fn status(c: &mut Storage) -> pb::StorageStatus {
    c.get_storage_status(pb::GetStorageStatusRequest {
        storage_id: "default".into(),
    })
    .await
    .expect("status")
    .into_inner()
}

async fn refresh(c: &mut Storage) -> Result<pb::RefreshResponse, tonic::Status> {
    c.refresh(pb::RefreshRequest {
        storage_id: "default".into(),
    })
    .await
    .map(|r| r.into_inner())
}

async fn read(c: &mut Storage, path: &str) -> Result<pb::ReadFileResponse, tonic::Status> {
    c.read_file(pb::ReadFileRequest {
        storage_id: "default".into(),
        path: path.into(),
        revision: None,
    })
    .await
    .map(|r| r.into_inner())
}

/// The flag keys the environments API serves, with the revision it serves them from.
async fn served_flags(e: &mut Envs) -> (String, Vec<String>) {
    let list = e
        .list_resources(env::ListResourcesRequest {
            environment_key: "default".into(),
            namespace_key: "default".into(),
            type_url: "flipt.core.Flag".into(),
        })
        .await
        .expect("list flags")
        .into_inner();
    let keys = list
        .resources
        .iter()
        .map(|r| {
            core::Flag::decode(r.payload.as_ref().expect("payload").value.as_slice())
                .expect("a flag")
                .key
        })
        .collect();
    (list.revision, keys)
}

/// Waits (at most `secs` seconds) until `check` returns `Some`.
async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs}s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /metrics`, as `name{labels}` to value.
fn metrics(s: &Server) -> BTreeMap<String, f64> {
    integration_tests::parse_metrics(&integration_tests::http_get(&format!("{}/metrics", s.http)).1)
}

fn git(repo: &Path, args: &[&str]) -> String {
    test_support::git(args, repo).trim().to_owned()
}

fn fsck(repo: &Path) {
    if let Err(e) = test_support::try_git(&["fsck", "--strict", "--no-progress"], repo) {
        panic!("git fsck failed on {}: {e}", repo.display());
    }
}

fn local_config(repo: &Path) -> String {
    format!(
        "storage:\n  default:\n    backend:\n      type: local\n      path: {}\n",
        repo.display()
    )
}

/// A normal repository (work tree and `.git`) on branch `main` with one commit holding a
/// features file.
fn normal_repo(dir: &Path) -> std::path::PathBuf {
    let repo = dir.join("flags");
    test_support::git(&["init", "-q", "-b", "main", repo.to_str().unwrap()], dir);
    std::fs::create_dir_all(repo.join("default")).unwrap();
    std::fs::write(repo.join(FEATURES), features("seed", None)).unwrap();
    git(&repo, &["add", "-A"]);
    git(
        &repo,
        &[
            "-c",
            "user.name=Someone",
            "-c",
            "user.email=someone@example.com",
            "commit",
            "-qm",
            "seed",
        ],
    );
    repo
}

/// A features file with one flag; with `rule_segment`, the flag has a rule on that segment
/// (and the file defines segment `known`).
fn features(flag: &str, rule_segment: Option<&str>) -> String {
    let mut out = format!(
        "version: \"1.4\"\nnamespace: default\nflags:\n  - key: {flag}\n    name: {flag}\n    type: VARIANT_FLAG_TYPE\n    enabled: true\n    variants:\n      - key: blue\n"
    );
    if let Some(segment) = rule_segment {
        out.push_str(&format!(
            "    rules:\n      - segment: {segment}\n        distributions:\n          - variant: blue\n            rollout: 100\nsegments:\n  - key: known\n    name: Known\n    match_type: ALL_MATCH_TYPE\n"
        ));
    }
    out
}

// ------------------------------------------------------------------------------ SIGKILL

/// Writers that write until the server dies, counting what was acknowledged.
#[derive(Debug)]
struct Acked {
    revision: String,
    /// A file written by `Commit`, or a flag created through Flipt's API.
    what: AckedWhat,
}

#[derive(Debug)]
enum AckedWhat {
    File { path: String, content: String },
    Flag(String),
}

/// One SIGKILL in the middle of a write storm: `writers` clients write (files through
/// `Commit`, flags through `CreateResource`, alternately) until the server is killed after
/// `kill_after` acknowledgements. Returns what was acknowledged, the write of unknown outcome
/// of each writer (the one that failed at the kill), and the server's log.
async fn storm_and_kill(
    config: &str,
    cycle: usize,
    writers: usize,
    kill_after: usize,
) -> (Vec<Acked>, Vec<AckedWhat>, String) {
    let s = Server::start(config);
    let acks = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let url = s.grpc.clone();
            let acks = acks.clone();
            let killed = killed.clone();
            tokio::spawn(async move {
                let ch = channel(&url).await;
                let (mut st, mut envs) = (Storage::new(ch.clone()), Envs::new(ch));
                let mut acked = Vec::new();
                for i in 0.. {
                    let marker = format!("c{cycle}w{w}i{i}");
                    let (result, what) = if i % 2 == 0 {
                        let path = format!("storm/{marker}.txt");
                        let r = st
                            .commit(put(&path, marker.as_bytes(), &format!("storm {marker}")))
                            .await
                            .map(|r| r.into_inner().revision);
                        (
                            r,
                            AckedWhat::File {
                                path,
                                content: marker.clone(),
                            },
                        )
                    } else {
                        let r = envs
                            .create_resource(create_flag(&marker))
                            .await
                            .map(|r| r.into_inner().revision);
                        (r, AckedWhat::Flag(marker.clone()))
                    };
                    match result {
                        Ok(revision) => {
                            acks.fetch_add(1, Ordering::SeqCst);
                            acked.push(Acked { revision, what });
                        }
                        Err(e) => {
                            assert!(
                                killed.load(Ordering::SeqCst),
                                "writer {w}: a write failed before the kill: {e:?}"
                            );
                            return (acked, what);
                        }
                    }
                }
                unreachable!("the loop ends at the kill")
            })
        })
        .collect();
    wait_for(60, "acknowledged writes before the kill", || {
        let n = acks.load(Ordering::SeqCst);
        async move { (n >= kill_after).then_some(()) }
    })
    .await;
    killed.store(true, Ordering::SeqCst);
    let log = s.kill();
    let mut acked = Vec::new();
    let mut unknown = Vec::new();
    for t in tasks {
        let (a, last) = t.await.expect("writer");
        acked.extend(a);
        unknown.push(last);
    }
    (acked, unknown, log)
}

/// Whether a write's file or flag is in commit `head` of `repo`.
fn present(repo: &Path, head: &str, what: &AckedWhat) -> bool {
    match what {
        AckedWhat::File { path, content } => {
            test_support::try_git(&["show", &format!("{head}:{path}")], repo)
                .is_ok_and(|c| c.trim() == content)
        }
        AckedWhat::Flag(key) => {
            test_support::try_git(&["show", &format!("{head}:{FEATURES}")], repo)
                .is_ok_and(|f| f.contains(&format!("key: {key}\n")))
        }
    }
}

/// What a crashed server left behind: lock files in the git directory.
fn lock_files(gitdir: &Path) -> Vec<String> {
    let out = std::process::Command::new("find")
        .arg(gitdir)
        .args(["-name", "*.lock"])
        .output()
        .expect("find");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// SIGKILL in the middle of a write storm, `CYCLES` times on the same repository. After each
/// kill: `git fsck` is clean and every acknowledged write is in the branch's history; the
/// restarted server serves the branch head and takes writes.
///
/// A crash can leave git's lock files behind, as it can for any git program: the server
/// refuses writes while `refs/heads/main.lock` exists, with a message that says to remove it
/// if no git process runs. The test then does what that message says (and counts it). In a
/// normal repository the work tree and index are updated after the branch moves, so a kill
/// in between leaves them behind the branch (reported, not asserted: see RELIABILITY).
async fn sigkill_storms(bare: bool) {
    const CYCLES: usize = 3;
    const WRITERS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let repo = if bare {
        // The server initialises a new (bare) repository in an empty directory.
        dir.path().join("flags")
    } else {
        normal_repo(dir.path())
    };
    let config = local_config(&repo);
    let gitdir = if bare {
        repo.clone()
    } else {
        repo.join(".git")
    };
    let mut all_acked = Vec::new();
    let mut report = Vec::new();
    for cycle in 0..CYCLES {
        // Started on what the previous cycle left: it must serve the repository's head.
        let (acked, unknown, log) = storm_and_kill(&config, cycle, WRITERS, 20 + 15 * cycle).await;
        fsck(&repo);
        let head = git(&repo, &["rev-parse", "refs/heads/main"]);
        for a in &acked {
            let ancestor =
                test_support::try_git(&["merge-base", "--is-ancestor", &a.revision, &head], &repo);
            assert!(
                ancestor.is_ok(),
                "acknowledged {a:?} is not in the history after the kill:\n{log}"
            );
        }
        let landed = unknown.iter().filter(|u| present(&repo, &head, u)).count();
        let locks = lock_files(&gitdir);
        let behind = if bare {
            0
        } else {
            git(&repo, &["status", "--porcelain"]).lines().count()
        };
        report.push(format!(
            "cycle {cycle}: {} acknowledged, {} failed at the kill (unknown outcome; {landed} of them landed), lock files left: {:?}, work-tree paths behind the branch: {behind}",
            acked.len(),
            unknown.len(),
            locks
                .iter()
                .map(|l| l.strip_prefix(gitdir.to_str().unwrap()).unwrap_or(l))
                .collect::<Vec<_>>()
        ));
        all_acked.extend(acked);
        // Restarted: serves the head, and takes writes.
        let s = Server::start(&config);
        let (mut st, mut envs) = clients(&s).await;
        assert_eq!(status(&mut st).await.head, head, "{}", s.log());
        assert_eq!(served_flags(&mut envs).await.0, head);
        let after = put(&format!("after-kill-{cycle}.txt"), b"ok", "after the kill");
        if let Err(e) = st.commit(after.clone()).await {
            let ref_lock = gitdir.join("refs/heads/main.lock");
            assert!(
                ref_lock.exists()
                    && e.message().contains("refs/heads/main.lock")
                    && e.message().contains("remove that file"),
                "a write after the restart failed: {e:?}\n{}",
                s.log()
            );
            std::fs::remove_file(&ref_lock).unwrap();
            st.commit(after)
                .await
                .unwrap_or_else(|e| panic!("a write after removing the stale lock failed: {e:?}"));
        }
        assert_eq!(s.stop(), Some(0));
        // What an operator does about a lock that the crash left and git complains about.
        let _ = std::fs::remove_file(gitdir.join("index.lock"));
    }
    // Every acknowledged write is in the final head: its file, its flag.
    let head = git(&repo, &["rev-parse", "refs/heads/main"]);
    for a in &all_acked {
        assert!(present(&repo, &head, &a.what), "{a:?} is not in the head");
    }
    fsck(&repo);
    eprintln!(
        "sigkill ({}): {} acknowledged writes over {CYCLES} kills, all present; {}",
        if bare { "bare" } else { "normal repository" },
        all_acked.len(),
        report.join("; ")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_a_write_storm_3_times_normal_repository_loses_no_acknowledged_write() {
    sigkill_storms(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_a_write_storm_3_times_bare_repository_loses_no_acknowledged_write() {
    sigkill_storms(true).await;
}

// ------------------------------------------------------------------------------ remote down

/// The remote goes away twice while clients write, the storage keeps running: first the git
/// server process is stopped (connections refused), then it answers `503` (a proxy whose
/// backend is gone). Writes fail with `UNAVAILABLE`, nothing of them is served, kept locally
/// or pushed; status and metrics show the condition; writes succeed again once the remote
/// is back, without a restart.
async fn remote_outage(local: bool) {
    const WRITES_PER_OUTAGE: usize = 4;
    let remote = test_support::BareRemote::new();
    remote.cli_commit("main", &[(FEATURES, Some(&features("seed", None)))], "seed");
    let mut http = Some(test_support::GitHttpServer::builder(remote.project_root()).start());
    let port = http.as_ref().unwrap().port();
    let url = http.as_ref().unwrap().url(test_support::REMOTE_DIR_NAME);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("flags");
    let mut config = if local {
        local_config(&repo)
    } else {
        "storage:\n  default:\n".to_owned()
    };
    config.push_str(&format!("    remote: {url}\n    poll_interval: 1s\n"));
    let s = Server::start(&config);
    let (mut st, mut envs) = clients(&s).await;
    let mut head = st
        .commit(put("up.txt", b"up", "while the remote is up"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert_eq!(remote.head("main").as_deref(), Some(head.as_str()));
    let mut failed = 0;
    let mut flags = vec!["seed".to_owned()];
    for outage in ["stopped", "answering-503"] {
        match outage {
            "stopped" => drop(http.take()),
            _ => http.as_ref().unwrap().set_down(true),
        }
        let pushes_failed_before =
            metrics(&s)["flipt_storage_pushes_total{storage=\"default\",result=\"error\"}"];
        for i in 0..WRITES_PER_OUTAGE {
            let e = st
                .commit(put(&format!("{outage}-{i}.txt"), b"x", "during the outage"))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::Unavailable, "{e:?}");
            assert!(!e.message().is_empty());
            let e = envs
                .create_resource(create_flag(&format!("{outage}-{i}")))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::Unavailable, "{e:?}");
            failed += 2;
        }
        // Nothing half applied: not served, not in the local repository, not on the remote.
        assert_eq!(status(&mut st).await.head, head);
        for i in 0..WRITES_PER_OUTAGE {
            let e = read(&mut st, &format!("{outage}-{i}.txt"))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::NotFound);
        }
        let served = served_flags(&mut envs).await;
        assert_eq!(served, (head.clone(), flags.clone()));
        if local {
            assert_eq!(git(&repo, &["rev-parse", "refs/heads/main"]), head);
            assert_eq!(git(&repo, &["rev-parse", "refs/remotes/origin/main"]), head);
        }
        assert_eq!(remote.head("main").as_deref(), Some(head.as_str()));
        // Status (after a poll) and metrics say so.
        let st2 = wait_for(30, "the status shows the outage", || {
            let mut c = st.clone();
            async move {
                let s = status(&mut c).await;
                (!s.synced
                    && s.last_error
                        .as_ref()
                        .is_some_and(|e| e.class == pb::ErrorClass::Network as i32))
                .then_some(s)
            }
        })
        .await;
        assert_eq!(st2.head, head, "the last state is still served");
        let m = metrics(&s);
        assert_eq!(m["flipt_storage_synced{storage=\"default\"}"], 0.0);
        assert!(m["flipt_storage_errors_total{storage=\"default\",class=\"network\"}"] >= 1.0);
        assert!(
            m["flipt_storage_pushes_total{storage=\"default\",result=\"error\"}"]
                >= pushes_failed_before + (2 * WRITES_PER_OUTAGE) as f64,
            "{m:?}"
        );
        // Back, on the same address: writes work again without a restart.
        match outage {
            "stopped" => {
                http = Some(
                    test_support::GitHttpServer::builder(remote.project_root())
                        .port(port)
                        .start(),
                )
            }
            _ => http.as_ref().unwrap().set_down(false),
        }
        let file = st
            .commit(put(
                &format!("back-{outage}.txt"),
                b"back",
                "after the outage",
            ))
            .await
            .unwrap_or_else(|e| panic!("a write after the outage failed: {e:?}"))
            .into_inner()
            .revision;
        assert_eq!(remote.head("main").as_deref(), Some(file.as_str()));
        head = envs
            .create_resource(create_flag(&format!("back-{outage}")))
            .await
            .unwrap()
            .into_inner()
            .revision;
        flags.push(format!("back-{outage}"));
        assert_eq!(remote.head("main").as_deref(), Some(head.as_str()));
        let r = refresh(&mut st).await.unwrap();
        assert_eq!(r.head, head);
        let after = status(&mut st).await;
        assert!(after.synced && after.last_error.is_none(), "{after:?}");
    }
    // The failed writes never reached the remote; the acknowledged ones are there once.
    let subjects = git(remote.path(), &["log", "--format=%s", "refs/heads/main"]);
    assert!(!subjects.contains("during the outage"), "{subjects}");
    for outage in ["stopped", "answering-503"] {
        assert!(
            !subjects.contains(&format!("create flag default/{outage}-")),
            "{subjects}"
        );
        assert_eq!(
            subjects
                .lines()
                .filter(|l| *l == format!("create flag default/back-{outage}"))
                .count(),
            1
        );
    }
    remote.fsck();
    if local {
        fsck(&repo);
    }
    eprintln!(
        "remote outage ({}): 2 outages, {failed} writes failed with UNAVAILABLE, none applied; 4 writes after the outages acknowledged",
        if local { "local" } else { "memory" }
    );
    assert_eq!(s.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_unreachable_during_writes_then_back_memory_backend() {
    remote_outage(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_unreachable_during_writes_then_back_local_backend() {
    remote_outage(true).await;
}

// ------------------------------------------------------------------------------ rewritten remote

/// A normal repository (work tree and `.git`) cloned from `remote`, on branch `main`.
fn clone_of(remote: &test_support::BareRemote, dir: &Path) -> std::path::PathBuf {
    let repo = dir.join("flags");
    test_support::git(
        &[
            "clone",
            "-q",
            "-b",
            "main",
            remote.path().to_str().unwrap(),
            repo.to_str().unwrap(),
        ],
        dir,
    );
    repo
}

fn suspend_request() -> pb::SuspendRequest {
    pb::SuspendRequest {
        storage_id: "default".into(),
    }
}

fn resume_request() -> pb::ResumeRequest {
    pb::ResumeRequest {
        storage_id: "default".into(),
    }
}

/// `flipt_storage_<name>{storage="default"}` from `/metrics`.
fn storage_metric(s: &Server, name: &str) -> f64 {
    let key = format!("flipt_storage_{name}{{storage=\"default\"}}");
    *metrics(s)
        .get(&key)
        .unwrap_or_else(|| panic!("{key} is not in /metrics"))
}

/// Status after following a rewritten remote: its head served, in step, no divergence, no
/// error, the rewrite noted with both commits.
fn assert_followed(status: &pb::StorageStatus, previous: &str, theirs: &str) {
    assert_eq!(status.head, theirs, "{status:?}");
    assert!(status.synced, "{status:?}");
    assert_eq!(status.divergence, None, "{status:?}");
    assert_eq!(status.last_error, None, "{status:?}");
    let note = status
        .last_remote_rewrite
        .as_ref()
        .expect("the rewrite is noted in the status");
    assert_eq!(
        (
            note.branch.as_str(),
            note.previous_commit.as_str(),
            note.remote_commit.as_str()
        ),
        ("main", previous, theirs)
    );
    assert!(note.at.is_some());
}

/// Someone force-pushes an unrelated history to the remote of a local repository whose
/// branch holds nothing unpushed (every commit on it had been pushed). The storage follows
/// the remote (BEHAVIOUR §2: the served head is the remote's): the local branch and the work
/// tree move to the remote's head, a warning names both commits, the status notes it and
/// the metrics count it, and writes go on at once, on the rewritten history, without a
/// restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_remote_is_followed_by_a_local_repository_with_nothing_unpushed() {
    let remote = test_support::BareRemote::new();
    remote.cli_commit("main", &[(FEATURES, Some(&features("a", None)))], "seed");
    let dir = tempfile::tempdir().unwrap();
    let repo = clone_of(&remote, dir.path());
    let config = format!(
        "{}    remote: {}\n    poll_interval: 1h\n",
        local_config(&repo),
        remote.file_url()
    );
    let s = Server::start(&config);
    let (mut st, mut envs) = clients(&s).await;
    let ours = envs
        .create_resource(create_flag("mine"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert_eq!(storage_metric(&s, "remote_rewrites_total"), 0.0);

    let theirs = remote.cli_force_push_unrelated(
        "main",
        &[(FEATURES, Some(&features("z", None)))],
        "rewritten history",
    );
    let r = refresh(&mut st).await.unwrap();
    assert_eq!((r.head.as_str(), r.changed), (theirs.as_str(), true));
    assert_eq!(
        served_flags(&mut envs).await,
        (theirs.clone(), vec!["z".to_owned()]),
        "the remote's head is served"
    );
    assert_followed(&status(&mut st).await, &ours, &theirs);
    assert_eq!(git(&repo, &["rev-parse", "refs/heads/main"]), theirs);
    assert_eq!(
        git(&repo, &["status", "--porcelain"]),
        "",
        "the work tree follows"
    );
    assert_eq!(storage_metric(&s, "remote_rewrites_total"), 1.0);
    assert_eq!(storage_metric(&s, "diverged"), 0.0);
    assert_eq!(storage_metric(&s, "synced"), 1.0);
    let log = s.log();
    assert!(
        log.lines()
            .any(|l| l.contains("the remote branch was rewritten")
                && l.contains(&ours)
                && l.contains(&theirs)),
        "a warning names both commits: {log}"
    );

    // Writes go on, on the rewritten history, without a restart.
    let next = envs
        .create_resource(create_flag("after"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert_eq!(remote.head("main").as_deref(), Some(next.as_str()));
    assert_eq!(
        git(remote.path(), &["rev-parse", &format!("{next}^")]),
        theirs,
        "built on the rewritten history"
    );
    assert_eq!(
        served_flags(&mut envs).await,
        (next.clone(), vec!["z".to_owned(), "after".to_owned()])
    );
    assert_eq!(git(&repo, &["rev-parse", "refs/heads/main"]), next);
    remote.fsck();
    fsck(&repo);
    assert_eq!(s.stop(), Some(0));
}

/// The same with the memory backend, noticed by polling: once its writes are acknowledged,
/// it holds nothing the remote did not have, so it always follows; writes go on without a
/// restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_remote_is_followed_by_the_memory_backend_without_restart() {
    let remote = test_support::BareRemote::new();
    remote.cli_commit("main", &[(FEATURES, Some(&features("a", None)))], "seed");
    let config = format!(
        "storage:\n  default:\n    remote: {}\n    poll_interval: 1s\n",
        remote.file_url()
    );
    let s = Server::start(&config);
    let (st, mut envs) = clients(&s).await;
    let ours = envs
        .create_resource(create_flag("mine"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    let theirs = remote.cli_force_push_unrelated(
        "main",
        &[(FEATURES, Some(&features("z", None)))],
        "rewritten history",
    );
    // Picked up by polling.
    let seen = wait_for(20, "the rewritten head is served and followed", || {
        let mut c = st.clone();
        let theirs = theirs.clone();
        async move {
            let s = status(&mut c).await;
            (s.head == theirs && s.last_remote_rewrite.is_some()).then_some(s)
        }
    })
    .await;
    assert_followed(&seen, &ours, &theirs);
    assert_eq!(
        served_flags(&mut envs).await,
        (theirs.clone(), vec!["z".to_owned()])
    );
    assert_eq!(storage_metric(&s, "remote_rewrites_total"), 1.0);
    assert_eq!(storage_metric(&s, "diverged"), 0.0);
    let next = envs
        .create_resource(create_flag("after"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert_eq!(remote.head("main").as_deref(), Some(next.as_str()));
    assert_eq!(
        git(remote.path(), &["rev-parse", &format!("{next}^")]),
        theirs
    );
    assert_eq!(
        served_flags(&mut envs).await,
        (next, vec!["z".to_owned(), "after".to_owned()])
    );
    remote.fsck();
    assert_eq!(s.stop(), Some(0));
}

/// A local repository with a commit of its own that the remote never had (made with
/// `git commit` while sync was suspended), and the remote rewritten meanwhile: a divergence.
/// The remote's (valid) head is served; the status shows the divergence with both commits,
/// `synced` false and a CONFLICT error; `/metrics` says diverged; nothing is pushed over
/// either history and writes are `FAILED_PRECONDITION`. Someone resolves it by moving the
/// local branch (polling is off: the local change alone must be noticed): the divergence and
/// its error clear at once and writes are taken again.
#[tokio::test(flavor = "multi_thread")]
async fn an_unpushed_local_commit_on_a_rewritten_remote_is_a_divergence_until_the_branch_is_moved()
{
    let remote = test_support::BareRemote::new();
    remote.cli_commit("main", &[(FEATURES, Some(&features("a", None)))], "seed");
    let dir = tempfile::tempdir().unwrap();
    let repo = clone_of(&remote, dir.path());
    let config = format!(
        "{}    remote: {}\n    poll_interval: 1h\n",
        local_config(&repo),
        remote.file_url()
    );
    let s = Server::start(&config);
    let (mut st, mut envs) = clients(&s).await;
    envs.create_resource(create_flag("pushed")).await.unwrap();
    let conflicts_before = metrics(&s)
        .get("flipt_storage_errors_total{storage=\"default\",class=\"conflict\"}")
        .copied()
        .unwrap_or(0.0);

    // A commit of its own, kept from the remote while sync is suspended.
    st.suspend(suspend_request()).await.unwrap();
    std::fs::write(repo.join(FEATURES), features("on-disk", None)).unwrap();
    git(
        &repo,
        &[
            "-c",
            "user.name=Someone",
            "-c",
            "user.email=someone@example.com",
            "commit",
            "-qam",
            "a commit of its own",
        ],
    );
    let mine = git(&repo, &["rev-parse", "HEAD"]);
    let theirs = remote.cli_force_push_unrelated(
        "main",
        &[(FEATURES, Some(&features("z", None)))],
        "rewritten history",
    );
    st.resume(resume_request()).await.unwrap();
    let r = refresh(&mut st).await.unwrap();
    assert_eq!(r.head, theirs);

    let after = status(&mut st).await;
    assert_eq!(
        after.divergence,
        Some(pb::Divergence {
            branch: "main".into(),
            local_commit: mine.clone(),
            remote_commit: theirs.clone(),
        }),
        "{after:?}"
    );
    assert!(!after.synced, "{after:?}");
    let error = after.last_error.clone().expect("a last error");
    assert_eq!(error.class, pb::ErrorClass::Conflict as i32, "{error:?}");
    assert!(
        error.message.contains(&mine)
            && error.message.contains(&theirs)
            && error.message.contains("diverged"),
        "{error:?}"
    );
    assert_eq!(after.last_remote_rewrite, None, "{after:?}");
    assert_eq!(
        served_flags(&mut envs).await,
        (theirs.clone(), vec!["z".to_owned()]),
        "the remote's (valid) head is served"
    );
    assert_eq!(storage_metric(&s, "diverged"), 1.0);
    assert_eq!(storage_metric(&s, "synced"), 0.0);
    assert_eq!(storage_metric(&s, "remote_rewrites_total"), 0.0);
    assert_eq!(
        metrics(&s)
            .get("flipt_storage_errors_total{storage=\"default\",class=\"conflict\"}")
            .copied(),
        Some(conflicts_before + 1.0),
        "counted once"
    );
    let e = envs
        .create_resource(create_flag("refused"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains(&theirs), "{e:?}");
    assert_eq!(
        remote.head("main").as_deref(),
        Some(theirs.as_str()),
        "nothing pushed over the rewritten history"
    );
    assert_eq!(
        git(&repo, &["rev-parse", "refs/heads/main"]),
        mine,
        "the local commit is not overwritten"
    );

    // Resolved by someone moving the local branch to the remote's history.
    git(&repo, &["update-ref", "refs/heads/main", &theirs]);
    let next = wait_for(10, "writes are taken again after the resolution", || {
        let mut e = envs.clone();
        async move {
            match e.create_resource(create_flag("after")).await {
                Ok(r) => Some(r.into_inner().revision),
                Err(err) if err.code() == Code::FailedPrecondition => None,
                Err(err) => panic!("{err:?}"),
            }
        }
    })
    .await;
    let resolved = status(&mut st).await;
    assert_eq!(resolved.divergence, None, "{resolved:?}");
    assert_eq!(resolved.last_error, None, "{resolved:?}");
    assert!(resolved.synced, "{resolved:?}");
    assert_eq!(storage_metric(&s, "diverged"), 0.0);
    assert_eq!(remote.head("main").as_deref(), Some(next.as_str()));
    assert_eq!(
        git(remote.path(), &["rev-parse", &format!("{next}^")]),
        theirs,
        "built on the rewritten history"
    );
    assert_eq!(
        served_flags(&mut envs).await,
        (next, vec!["z".to_owned(), "after".to_owned()])
    );
    remote.fsck();
    fsck(&repo);
    assert_eq!(s.stop(), Some(0));
}

// ------------------------------------------------------------------------------ deleted branch

/// Someone deletes the remote branch, five times, while readers hammer the server: every
/// read is served from the last state (never "no state"), each refresh pushes the branch
/// again from that state, and a write made right after a deletion (before any fetch)
/// keeps the whole history and tree instead of starting a new one.
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_remote_branch_keeps_being_served_and_is_pushed_again() {
    const ROUNDS: usize = 5;
    let remote = test_support::BareRemote::new();
    let seed = remote.cli_commit(
        "main",
        &[
            (FEATURES, Some(&features("a", None))),
            ("other.txt", Some("kept")),
        ],
        "seed",
    );
    let s = Server::start(&format!(
        "storage:\n  default:\n    remote: {}\n    poll_interval: 1h\n",
        remote.file_url()
    ));
    let (mut st, envs) = clients(&s).await;
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|i| {
            let (mut st, mut envs, stop) = (st.clone(), envs.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0usize, Vec::new());
                while !stop.load(Ordering::SeqCst) {
                    let r = if i % 2 == 0 {
                        read(&mut st, "other.txt").await.map(|_| ())
                    } else {
                        envs.list_resources(env::ListResourcesRequest {
                            environment_key: "default".into(),
                            namespace_key: "default".into(),
                            type_url: "flipt.core.Flag".into(),
                        })
                        .await
                        .map(|_| ())
                    };
                    match r {
                        Ok(()) => ok += 1,
                        Err(e) => failed.push(e),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let mut head = seed.clone();
    for _ in 0..ROUNDS {
        git(remote.path(), &["update-ref", "-d", "refs/heads/main"]);
        let r = refresh(&mut st).await.unwrap();
        assert_eq!(r.head, head, "the last state is served");
        assert_eq!(
            remote.head("main").as_deref(),
            Some(head.as_str()),
            "and pushed again"
        );
    }
    // A write right after a deletion, before any fetch.
    git(remote.path(), &["update-ref", "-d", "refs/heads/main"]);
    let mut e = envs.clone();
    let next = e
        .create_resource(create_flag("after-delete"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert_eq!(remote.head("main").as_deref(), Some(next.as_str()));
    assert_eq!(
        git(remote.path(), &["rev-parse", &format!("{next}^")]),
        head,
        "built on the last state, not a new root commit"
    );
    head = next;
    assert_eq!(
        remote.show_file("main", "other.txt").as_deref(),
        Some("kept")
    );
    assert_eq!(
        served_flags(&mut e).await,
        (
            head.clone(),
            vec!["a".to_owned(), "after-delete".to_owned()]
        )
    );
    let after = status(&mut st).await;
    assert!(after.last_error.is_none(), "{after:?}");
    stop.store(true, Ordering::SeqCst);
    let (mut ok, mut failed) = (0, Vec::new());
    for r in readers {
        let (o, f) = r.await.unwrap();
        ok += o;
        failed.extend(f);
    }
    assert!(
        failed.is_empty(),
        "{} of {} reads failed while the branch was missing: {:?}",
        failed.len(),
        ok + failed.len(),
        failed.first()
    );
    assert!(
        s.log()
            .contains("pushed the local branch to the remote, which did not have it"),
        "{}",
        s.log()
    );
    remote.fsck();
    eprintln!(
        "deleted branch: {} deletions, {ok} reads during them, none failed",
        ROUNDS + 1
    );
    assert_eq!(s.stop(), Some(0));
}

// ------------------------------------------------------------------------------ invalid commits

/// A features file whose flag has a rule on `segment` with a distribution to `variant`.
fn features_with_rule(segment: &str, variant: &str) -> String {
    format!(
        "version: \"1.4\"\nnamespace: default\nflags:\n  - key: a\n    name: A\n    type: VARIANT_FLAG_TYPE\n    enabled: true\n    variants:\n      - key: blue\n    rules:\n      - segment: {segment}\n        distributions:\n          - variant: {variant}\n            rollout: 100\nsegments:\n  - key: known\n    name: Known\n    match_type: ALL_MATCH_TYPE\n"
    )
}

/// The rule of flag `a` as served: (segment, variant).
async fn served_rule(e: &mut Envs) -> (String, String) {
    let got = e
        .get_resource(env::GetResourceRequest {
            environment_key: "default".into(),
            namespace_key: "default".into(),
            type_url: "flipt.core.Flag".into(),
            key: "a".into(),
        })
        .await
        .expect("get flag a")
        .into_inner();
    let f = core::Flag::decode(got.resource.unwrap().payload.unwrap().value.as_slice()).unwrap();
    (
        f.rules[0].segments[0].clone(),
        f.rules[0].distributions[0].variant.clone(),
    )
}

/// Another user pushes commits with broken references (a rule on a segment that does not
/// exist; a distribution to a variant that does not exist), one after the other, picked up
/// by polling: neither is served, the last good state stays, the status names the commit
/// and the problem; the next good commit is served and clears it. (Malformed YAML pushed
/// to a remote is covered in `environments.rs`; malformed YAML committed on disk below.)
#[tokio::test(flavor = "multi_thread")]
async fn commits_with_broken_references_are_not_served_until_a_good_one_follows() {
    let remote = test_support::BareRemote::new();
    let good = remote.cli_commit(
        "main",
        &[(FEATURES, Some(&features_with_rule("known", "blue")))],
        "good",
    );
    let s = Server::start(&format!(
        "storage:\n  default:\n    remote: {}\n    poll_interval: 1s\n",
        remote.file_url()
    ));
    let (st, mut envs) = clients(&s).await;
    assert_eq!(
        served_rule(&mut envs).await,
        ("known".into(), "blue".into())
    );
    for (what, segment, variant, named) in [
        ("unknown segment", "nope", "blue", "nope"),
        ("unknown variant", "known", "red", "red"),
    ] {
        let bad = remote.cli_commit(
            "main",
            &[(FEATURES, Some(&features_with_rule(segment, variant)))],
            what,
        );
        let seen = wait_for(20, "the bad commit is named in the status", || {
            let (mut c, bad) = (st.clone(), bad.clone());
            async move {
                let s = status(&mut c).await;
                (s.rejected_commit == bad).then_some(s)
            }
        })
        .await;
        assert_eq!(seen.head, bad, "the storage layer has it");
        assert!(
            seen.rejected_reason.contains(FEATURES) && seen.rejected_reason.contains(named),
            "{what}: {}",
            seen.rejected_reason
        );
        let (rev, _) = served_flags(&mut envs).await;
        assert_eq!(rev, good, "{what}: the last good state is served");
        assert_eq!(
            served_rule(&mut envs).await,
            ("known".into(), "blue".into())
        );
        // A write on top of it is refused with the problem, and commits nothing.
        let e = envs
            .create_resource(create_flag("during"))
            .await
            .unwrap_err();
        // The request is fine; the head it would build on is not (the problem was there
        // before the write).
        assert_eq!(e.code(), Code::FailedPrecondition, "{what}: {e:?}");
        assert!(
            e.message().contains(named) && e.message().contains("does not validate"),
            "{what}: {e:?}"
        );
        assert_eq!(remote.head("main").as_deref(), Some(bad.as_str()));
    }
    let fixed = remote.cli_commit(
        "main",
        &[(
            FEATURES,
            Some(&features_with_rule("known", "blue").replace("name: A", "name: A2")),
        )],
        "fixed",
    );
    let (rev, _) = wait_for(20, "the good commit is served", || {
        let mut e = envs.clone();
        let fixed = fixed.clone();
        async move {
            let served = served_flags(&mut e).await;
            (served.0 == fixed).then_some(served)
        }
    })
    .await;
    assert_eq!(rev, fixed);
    let mut c = st.clone();
    let after = status(&mut c).await;
    assert_eq!(
        (
            after.rejected_commit.as_str(),
            after.rejected_reason.as_str()
        ),
        ("", "")
    );
    assert_eq!(s.stop(), Some(0));
}

/// Malformed YAML committed with `git` in a local repository the server serves: not served,
/// named in the status; the next good commit is.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_yaml_committed_on_disk_is_not_served_until_a_good_commit_follows() {
    let dir = tempfile::tempdir().unwrap();
    let repo = normal_repo(dir.path());
    let good = git(&repo, &["rev-parse", "HEAD"]);
    let s = Server::start(&local_config(&repo));
    let (st, mut envs) = clients(&s).await;
    assert_eq!(
        served_flags(&mut envs).await,
        (good.clone(), vec!["seed".to_owned()])
    );
    let commit = |content: &str, message: &str| {
        std::fs::write(repo.join(FEATURES), content).unwrap();
        git(
            &repo,
            &[
                "-c",
                "user.name=Other",
                "-c",
                "user.email=other@example.com",
                "commit",
                "-qam",
                message,
            ],
        );
        git(&repo, &["rev-parse", "HEAD"])
    };
    let bad = commit("flags: [\n  - key: x\n", "broken yaml");
    let seen = wait_for(20, "the bad commit is named in the status", || {
        let (mut c, bad) = (st.clone(), bad.clone());
        async move {
            let s = status(&mut c).await;
            (s.rejected_commit == bad).then_some(s)
        }
    })
    .await;
    assert!(
        seen.rejected_reason.contains(FEATURES),
        "{}",
        seen.rejected_reason
    );
    assert_eq!(
        served_flags(&mut envs).await,
        (good, vec!["seed".to_owned()])
    );
    let fixed = commit(&features("fixed", None), "fixed");
    wait_for(20, "the good commit is served", || {
        let mut e = envs.clone();
        let fixed = fixed.clone();
        async move { (served_flags(&mut e).await == (fixed, vec!["fixed".to_owned()])).then_some(()) }
    })
    .await;
    let mut c = st.clone();
    assert_eq!(status(&mut c).await.rejected_commit, "");
    assert_eq!(s.stop(), Some(0));
}

// ------------------------------------------------------------------------------ disk full

/// Bytes that do not compress (xorshift), so a blob takes as much room on disk as in the
/// request.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A write that failed because the disk is full: `RESOURCE_EXHAUSTED` (gRPC's code for "the
/// file system is out of space"; not `UNAVAILABLE`, which clients must treat as "may have
/// landed"), a clear error, not a crash or a hang, and no server path in it (API.md §4).
fn assert_disk_full_error(e: &tonic::Status, repo: &Path) {
    eprintln!("disk full: {:?} {}", e.code(), e.message());
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    // libgit2 names the cause ("File too large") when a loose object's final write fails,
    // and nothing when a write fails while the object is deflated (then the service reads
    // the cause from errno and says that there is no room left).
    assert!(
        e.message().contains("File too large") || e.message().contains("no room left"),
        "{e:?}"
    );
    assert!(
        !e.message().contains(repo.to_str().unwrap()),
        "a server path in the error: {e:?}"
    );
}

/// The local backend on a disk that fills up: the server runs with `RLIMIT_FSIZE` (256 KiB,
/// then 0 while running) and SIGXFSZ ignored, so writes get `EFBIG`. A write that cannot be
/// stored fails cleanly (nothing committed, the work tree and index untouched, `git fsck`
/// clean), reads go on, and once there is room again writes work, without a restart and
/// after one. A write whose objects fit but whose work-tree file does not is committed, and
/// the index follows it, so the user's next `git commit` does not revert it.
#[tokio::test(flavor = "multi_thread")]
async fn disk_full_on_the_local_backend_fails_writes_cleanly_and_the_repository_stays_consistent() {
    const LIMIT: u64 = 256 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let repo = normal_repo(dir.path());
    let config = local_config(&repo);
    let mut s = Server::builder(&config).file_size_limit(LIMIT).start();
    let (mut st, mut envs) = clients(&s).await;
    let start = git(&repo, &["rev-parse", "HEAD"]);
    let unchanged = |head: &str| {
        assert_eq!(git(&repo, &["rev-parse", "refs/heads/main"]), head);
        assert_eq!(
            git(&repo, &["status", "--porcelain"]),
            "",
            "work tree and index"
        );
        fsck(&repo);
    };

    // 1. A blob larger than a file may grow: the write fails, nothing changes.
    let big = noise(1 << 20);
    let e = st.commit(put("big.bin", &big, "big")).await.unwrap_err();
    assert_disk_full_error(&e, &repo);
    assert_eq!(status(&mut st).await.head, start);
    assert_eq!(
        read(&mut st, "big.bin").await.unwrap_err().code(),
        Code::NotFound
    );
    unchanged(&start);

    // 2. Small writes still fit.
    let small = st
        .commit(put("small.txt", b"small", "small"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    unchanged(&small);

    // 3. Objects that fit (1 MiB that compresses well) but a work-tree file that does not:
    //    committed; the index follows the commit (nothing staged that would revert it).
    let compressible = vec![b'x'; 1 << 20];
    let fits = st
        .commit(put("compressible.txt", &compressible, "compressible"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert_eq!(git(&repo, &["rev-parse", "refs/heads/main"]), fits);
    assert!(
        test_support::try_git(&["diff", "--cached", "--quiet"], &repo).is_ok(),
        "the index is the new commit's: {}",
        git(&repo, &["status", "--porcelain"])
    );
    fsck(&repo);

    // 4. The disk fills up completely while the server runs: every write fails the same way,
    //    reads go on.
    s.set_file_size_limit(Some(0));
    let e = st
        .commit(put("small-2.txt", b"small", "small 2"))
        .await
        .unwrap_err();
    assert_disk_full_error(&e, &repo);
    let e = envs.create_resource(create_flag("full")).await.unwrap_err();
    assert_disk_full_error(&e, &repo);
    assert_eq!(
        served_flags(&mut envs).await,
        (fits.clone(), vec!["seed".to_owned()])
    );
    assert_eq!(read(&mut st, "small.txt").await.unwrap().content, b"small");
    assert_eq!(git(&repo, &["rev-parse", "refs/heads/main"]), fits);
    fsck(&repo);
    assert!(s.is_running());

    // 5. Room again, no restart: the big write works.
    s.set_file_size_limit(None);
    let with_big = st
        .commit(put("big.bin", &big, "big"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert_eq!(std::fs::read(repo.join("big.bin")).unwrap(), big);
    assert_eq!(s.stop(), Some(0));
    fsck(&repo);

    // 6. Restarted without a limit: serves the head, takes writes.
    let s = Server::start(&config);
    let (mut st, mut envs) = clients(&s).await;
    assert_eq!(status(&mut st).await.head, with_big);
    let last = envs
        .create_resource(create_flag("after-restart"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert_eq!(git(&repo, &["rev-parse", "refs/heads/main"]), last);
    // The file that did not fit in step 3 comes back with `git checkout`.
    git(&repo, &["checkout", "--", "compressible.txt"]);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    fsck(&repo);
    assert_eq!(s.stop(), Some(0));
}
