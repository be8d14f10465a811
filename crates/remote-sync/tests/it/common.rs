//! Shared pieces: write operations for tests, backends, options, waiting.

use std::sync::Arc;
use std::time::Duration;

use git_backend::{
    Change, DynBackend, GitBackendExt, ObjectId, Plan, Refusal, Remote, RepoPath, WriteContext,
    WriteOp,
};
use remote_sync::{SyncOptions, SyncedStorage, WriteRequest};

/// Writes one file; with a base revision, refuses if that file changed between base and
/// head (the per-resource precondition of BEHAVIOUR §4, at file granularity).
#[derive(Debug, Clone)]
pub(crate) struct PutFile {
    pub(crate) path: String,
    pub(crate) content: String,
}

pub(crate) fn put(path: &str, content: &str) -> PutFile {
    PutFile {
        path: path.into(),
        content: content.into(),
    }
}

#[async_trait::async_trait]
impl WriteOp for PutFile {
    async fn plan(&self, ctx: WriteContext<'_>) -> Result<Plan, Refusal> {
        let path = RepoPath::new(self.path.clone())?;
        if let (Some(base), Some(head)) = (ctx.base, ctx.head) {
            let at_base = ctx.backend.read_file(base, &path).await?.map(|f| f.id);
            let at_head = ctx.backend.read_file(head, &path).await?.map(|f| f.id);
            if at_base != at_head {
                return Err(Refusal::Precondition {
                    resource: format!("file {}", self.path),
                    base,
                    head,
                });
            }
        }
        if let Some(head) = ctx.head
            && ctx
                .backend
                .read_to_string(head, &self.path)
                .await?
                .as_deref()
                == Some(self.content.as_str())
        {
            return Ok(Plan::Nothing);
        }
        Ok(Plan::Commit {
            changes: vec![Change::Put {
                path,
                content: self.content.clone().into_bytes(),
            }],
            message: format!("put {}", self.path),
        })
    }
}

pub(crate) fn memory() -> DynBackend {
    Arc::new(git_backend_memory::MemoryBackend::new(Default::default()).unwrap())
}

pub(crate) fn options(remote: Option<Remote>) -> SyncOptions {
    let mut o = SyncOptions::local("test", "main");
    o.remote = remote;
    o.poll_interval = Duration::from_secs(1);
    o.environments = vec!["prod".into()];
    o
}

pub(crate) async fn write(
    s: &SyncedStorage,
    path: &str,
    content: &str,
    revision: Option<ObjectId>,
) -> remote_sync::Result<remote_sync::WriteOutcome> {
    let rev = revision.map(|r| r.to_string());
    s.write(WriteRequest {
        branch: "main",
        revision: rev.as_deref(),
        op: &put(path, content),
        author: None,
    })
    .await
}

pub(crate) fn oid(hex: &str) -> ObjectId {
    ObjectId::parse(hex.trim()).unwrap()
}

/// Waits for `f` to hold, checking every 50 ms, for at most `secs` seconds.
pub(crate) async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {secs}s waiting for: {what}");
}

/// A bare remote whose `main` has one commit (`a` = `1`), and a clone of it at `<dir>/repo`, as
/// a user of the repository on disk has it. Returns the remote, the clone's path and the
/// `local` backend on the clone.
pub(crate) fn remote_and_clone(
    dir: &std::path::Path,
) -> (test_support::BareRemote, std::path::PathBuf, DynBackend) {
    let remote = test_support::BareRemote::new();
    remote.cli_commit("main", &[("a", Some("1"))], "first");
    let repo = dir.join("repo");
    test_support::git(
        &[
            "clone",
            "-q",
            remote.path().to_str().unwrap(),
            repo.to_str().unwrap(),
        ],
        dir,
    );
    let backend =
        git_backend_local::LocalBackend::open(git_backend_local::LocalOptions::new(&repo, "main"))
            .unwrap();
    (remote, repo, Arc::new(backend))
}

/// Runs the sync loop of `s` until the returned token is cancelled.
pub(crate) fn run_loop(
    s: &SyncedStorage,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let cancel = tokio_util::sync::CancellationToken::new();
    let runner = {
        let s = s.clone();
        let c = cancel.clone();
        tokio::spawn(async move { s.run(c).await })
    };
    (cancel, runner)
}

/// A repository on disk at `<dir>/repo` whose `main` has one commit (`f.yaml` = `1`), as
/// another program made it, and the `local` backend on it.
pub(crate) fn repo_with_one_commit(dir: &std::path::Path) -> (std::path::PathBuf, DynBackend) {
    let repo = dir.join("repo");
    test_support::git(&["init", "-q", "-b", "main", repo.to_str().unwrap()], dir);
    std::fs::write(repo.join("f.yaml"), "1").unwrap();
    test_support::git(&["add", "."], &repo);
    test_support::git(&["commit", "-qm", "first"], &repo);
    let backend =
        git_backend_local::LocalBackend::open(git_backend_local::LocalOptions::new(&repo, "main"))
            .unwrap();
    (repo, Arc::new(backend))
}
