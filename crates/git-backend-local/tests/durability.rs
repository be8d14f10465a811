//! Durability of the `local` backend: a commit acknowledged by `update_ref` survives the
//! process being killed with SIGKILL at an arbitrary moment, and the repository stays sound.
//!
//! The test binary re-runs itself as the writer: `child_writer` does nothing unless
//! `DURABILITY_CHILD_REPO` is set; then it writes commits in a loop and prints `ACK <id>`
//! after each `update_ref` returned. The parent kills it after 20 acknowledgements, reopens
//! the repository and checks that every acknowledged commit is in the branch's history.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use git_backend::testsuite::put;
use git_backend::{
    CommitRequest, Expected, GitBackend, GitBackendExt, ObjectId, RefName, RefUpdate, Signature,
};
use git_backend_local::{LocalBackend, LocalOptions};

const REPO_VAR: &str = "DURABILITY_CHILD_REPO";
const ACKS_BEFORE_KILL: usize = 20;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The writer process (see the module docs). Without `DURABILITY_CHILD_REPO` it returns at
/// once, so it passes as an ordinary test.
#[test]
fn child_writer() {
    let Some(repo) = std::env::var_os(REPO_VAR) else {
        return;
    };
    runtime().block_on(async move {
        let backend = LocalBackend::open(LocalOptions::new(PathBuf::from(repo), "main")).unwrap();
        let sig = Signature::now("writer", "writer@example.com");
        let mut head = backend.seed_branch("main", &sig).await.unwrap();
        let branch = RefName::branch("main").unwrap();
        // Bounded, in case the parent never kills it; a closed stdout (the parent is gone)
        // ends it too.
        let deadline = Instant::now() + Duration::from_secs(300);
        for n in 0u64.. {
            assert!(Instant::now() < deadline, "never killed");
            let id = backend
                .create_commit(CommitRequest {
                    parent: Some(head),
                    changes: vec![put("counter.yaml", format!("n: {n}\n"))],
                    message: format!("write {n}"),
                    author: sig.clone(),
                    committer: sig.clone(),
                })
                .await
                .unwrap();
            backend
                .update_ref(RefUpdate {
                    name: branch.clone(),
                    new: Some(id),
                    expected: Expected::Value(head),
                    message: "durability".into(),
                })
                .await
                .unwrap();
            head = id;
            let mut out = std::io::stdout().lock();
            if writeln!(out, "ACK {id}")
                .and_then(|()| out.flush())
                .is_err()
            {
                std::process::exit(1);
            }
        }
    });
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn acknowledged_commits_survive_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_writer", "--nocapture"])
            .env(REPO_VAR, &repo)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let parse = |line: &str| {
        line.strip_prefix("ACK ")
            .map(|id| ObjectId::parse(id).unwrap())
    };
    let mut acked: Vec<ObjectId> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.len() < ACKS_BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => acked.extend(parse(&line)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("only {} acknowledgements in 120 s", acked.len())
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                "the writer stopped after {} acknowledgements: {:?}",
                acked.len(),
                child.0.wait()
            ),
        }
    }

    child.0.kill().unwrap(); // SIGKILL
    let status = child.0.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the writer must die by SIGKILL: {status:?}"
    );
    // What it acknowledged before dying counts too.
    reader.join().unwrap();
    acked.extend(rx.try_iter().filter_map(|line| parse(&line)));

    runtime().block_on(async {
        let backend = LocalBackend::open(LocalOptions::new(&repo, "main")).unwrap();
        let head = backend
            .branch_head("main")
            .await
            .unwrap()
            .expect("main exists");
        for id in &acked {
            assert!(
                backend.is_ancestor(*id, head).await.unwrap(),
                "acknowledged commit {id} is not in the history of main ({head})"
            );
            test_support::git(
                &[
                    "merge-base",
                    "--is-ancestor",
                    &id.to_string(),
                    "refs/heads/main",
                ],
                &repo,
            );
        }
        let counter = backend.read_to_string(head, "counter.yaml").await.unwrap();
        assert!(counter.is_some_and(|c| c.starts_with("n: ")));
    });
    test_support::git(&["fsck", "--strict", "--no-progress"], &repo);
}
