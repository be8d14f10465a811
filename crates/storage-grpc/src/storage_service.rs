//! `flipt.storage.v1.StorageService` (API.md §2) over the sync engine and backends.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use git_backend::{
    Change, DynBackend, LogOptions, ObjectId, Plan, Refusal, RepoPath, Signature, WriteContext,
    WriteOp,
};
use remote_sync::WriteRequest;
use storage_proto::flipt::storage::v1 as pb;
use storage_proto::flipt::storage::v1::storage_service_server::StorageService;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::error::{from_backend, from_sync, invalid, shown};
use crate::registry::{Registry, StorageEntry};

/// Limits of the service.
#[derive(Debug, Clone)]
pub struct StorageApiOptions {
    /// Open `Watch` streams allowed at once (over all connections).
    pub max_watch_streams: usize,
    /// Silence after which a `Watch` stream gets a heartbeat.
    pub heartbeat: Duration,
    /// Fired at shutdown: open `Watch` streams end cleanly.
    pub shutdown: CancellationToken,
    /// The directories of the environments of each storage (by storage id; `""`: the
    /// repository root): a `Commit` that writes features files or `flipt.yaml` in one of them
    /// is checked like an API write ([`resource_model::check_commit`]).
    pub environment_directories: BTreeMap<String, Vec<String>>,
}

impl Default for StorageApiOptions {
    fn default() -> Self {
        StorageApiOptions {
            max_watch_streams: 4096,
            heartbeat: Duration::from_secs(15),
            shutdown: CancellationToken::new(),
            environment_directories: BTreeMap::new(),
        }
    }
}

/// The storage service.
#[derive(Debug, Clone)]
pub struct StorageApi {
    registry: Arc<Registry>,
    streams: Arc<Semaphore>,
    heartbeat: Duration,
    shutdown: CancellationToken,
    environment_directories: Arc<BTreeMap<String, Vec<String>>>,
}

impl StorageApi {
    /// The service over `registry`.
    pub fn new(registry: Arc<Registry>, options: StorageApiOptions) -> Self {
        StorageApi {
            registry,
            streams: Arc::new(Semaphore::new(options.max_watch_streams)),
            heartbeat: options.heartbeat,
            shutdown: options.shutdown,
            environment_directories: Arc::new(options.environment_directories),
        }
    }

    /// Watch streams open now.
    pub fn open_streams(&self, max: usize) -> usize {
        max.saturating_sub(self.streams.available_permits())
    }
}

fn parse_revision(text: &str) -> Result<ObjectId, Status> {
    ObjectId::parse(text).map_err(|e| invalid(e.to_string()))
}

/// The revision to read: the given one, or the served head.
fn revision(entry: &StorageEntry, given: Option<&str>) -> Result<ObjectId, Status> {
    match given.filter(|r| !r.is_empty()) {
        Some(r) => parse_revision(r),
        None => entry
            .sync
            .head(&entry.sync.options().branch)
            .ok_or_else(|| Status::unavailable("the storage has no state to serve yet")),
    }
}

fn repo_path(p: &str) -> Result<RepoPath, Status> {
    RepoPath::new(p).map_err(|e| invalid(e.to_string()))
}

/// A commit of file changes: per file, refused when the file changed between the client's
/// base revision and the head (BEHAVIOUR §4 at file granularity), and refused as invalid when
/// it leaves a features file or `flipt.yaml` it writes in an environment directory that does
/// not validate (checked on the head it is applied to, so again when it is replayed).
#[derive(Debug)]
struct FileCommit {
    changes: Vec<Change>,
    message: String,
    /// The storage's environment directories.
    directories: Vec<String>,
}

/// Problems shown in a refusal at most; each line cut to [`MAX_PROBLEM_CHARS`].
const MAX_PROBLEMS_SHOWN: usize = 20;
const MAX_PROBLEM_CHARS: usize = 300;

/// The message of a commit refused for its problems: one per line, a bounded number of bounded
/// lines (a file of thousands of broken flags must not make a megabyte `grpc-message`).
fn problems_message(problems: &[resource_model::Problem]) -> String {
    let mut out = String::from("the commit leaves files that do not validate:");
    for p in problems.iter().take(MAX_PROBLEMS_SHOWN) {
        let line = p.to_string();
        out.push('\n');
        out.extend(
            line.chars()
                .take(MAX_PROBLEM_CHARS)
                .map(|c| if c.is_control() { '?' } else { c }),
        );
        if line.chars().nth(MAX_PROBLEM_CHARS).is_some() {
            out.push_str("...");
        }
    }
    if problems.len() > MAX_PROBLEMS_SHOWN {
        out.push_str(&format!(
            "\n... and {} more",
            problems.len() - MAX_PROBLEMS_SHOWN
        ));
    }
    out
}

#[async_trait::async_trait]
impl WriteOp for FileCommit {
    async fn plan(&self, ctx: WriteContext<'_>) -> Result<Plan, Refusal> {
        let mut effective = Vec::new();
        for change in &self.changes {
            let path = change.path();
            let at_head = match ctx.head {
                Some(h) => ctx.backend.read_file(h, path).await?,
                None => None,
            };
            if let (Some(base), Some(head)) = (ctx.base, ctx.head) {
                let at_base = ctx.backend.read_file(base, path).await?.map(|f| f.id);
                if at_base != at_head.as_ref().map(|f| f.id) {
                    return Err(Refusal::Precondition {
                        resource: format!("file {path}"),
                        base,
                        head,
                    });
                }
            }
            match change {
                Change::Put { content, .. }
                    if at_head.as_ref().is_some_and(|f| &f.content == content) => {}
                Change::Delete { .. } if at_head.is_none() => {}
                c => effective.push(c.clone()),
            }
        }
        if effective.is_empty() {
            return Ok(Plan::Nothing);
        }
        let mut problems = Vec::new();
        for directory in &self.directories {
            problems.extend(
                resource_model::check_commit(ctx.backend, ctx.head, directory, &effective).await?,
            );
        }
        if !problems.is_empty() {
            // Environments in nested directories see the same file.
            problems.sort();
            problems.dedup();
            return Err(Refusal::Invalid(problems_message(&problems)));
        }
        Ok(Plan::Commit {
            changes: effective,
            message: self.message.clone(),
        })
    }
}

/// Paths changed from `from` (none: nothing before) to `to`, as a Watch event carries them
/// ([`git_backend::GitBackend::changed_paths`]).
async fn changed_paths(
    backend: &DynBackend,
    from: Option<ObjectId>,
    to: ObjectId,
) -> Result<Vec<String>, git_backend::Error> {
    match from {
        Some(from) => backend.changed_paths(from, to).await,
        None => Ok(Vec::new()),
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl StorageService for StorageApi {
    async fn list_storages(
        &self,
        _: Request<pb::ListStoragesRequest>,
    ) -> Result<Response<pb::ListStoragesResponse>, Status> {
        let storages = self
            .registry
            .iter()
            .map(|e| {
                let status = e.sync.status();
                pb::Storage {
                    id: e.id.clone(),
                    backend: e.backend_kind.to_owned(),
                    remote: e.remote.clone().unwrap_or_default(),
                    branch: e.sync.options().branch.clone(),
                    head: convert::id(status.head),
                    status: Some(convert::status(&e.id, &status, e.rejected.current())),
                }
            })
            .collect();
        Ok(Response::new(pb::ListStoragesResponse { storages }))
    }

    async fn get_storage_status(
        &self,
        req: Request<pb::GetStorageStatusRequest>,
    ) -> Result<Response<pb::StorageStatus>, Status> {
        let e = self.registry.require(&req.get_ref().storage_id)?;
        Ok(Response::new(convert::status(
            &e.id,
            &e.sync.status(),
            e.rejected.current(),
        )))
    }

    async fn refresh(
        &self,
        req: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::RefreshResponse>, Status> {
        let e = self.registry.require(&req.get_ref().storage_id)?;
        let out = e.sync.refresh().await.map_err(from_sync)?;
        Ok(Response::new(pb::RefreshResponse {
            head: convert::id(out.head),
            changed: out.changed,
        }))
    }

    async fn suspend(
        &self,
        req: Request<pb::SuspendRequest>,
    ) -> Result<Response<pb::StorageStatus>, Status> {
        let e = self.registry.require(&req.get_ref().storage_id)?;
        e.sync.suspend().map_err(from_sync)?;
        Ok(Response::new(convert::status(
            &e.id,
            &e.sync.status(),
            e.rejected.current(),
        )))
    }

    async fn resume(
        &self,
        req: Request<pb::ResumeRequest>,
    ) -> Result<Response<pb::StorageStatus>, Status> {
        let e = self.registry.require(&req.get_ref().storage_id)?;
        e.sync.resume().map_err(from_sync)?;
        Ok(Response::new(convert::status(
            &e.id,
            &e.sync.status(),
            e.rejected.current(),
        )))
    }

    async fn read_file(
        &self,
        req: Request<pb::ReadFileRequest>,
    ) -> Result<Response<pb::ReadFileResponse>, Status> {
        let r = req.get_ref();
        let e = self.registry.require(&r.storage_id)?;
        let rev = revision(e, r.revision.as_deref())?;
        let path = repo_path(&r.path)?;
        let file = e
            .sync
            .backend()
            .read_file(rev, &path)
            .await
            .map_err(from_backend)?;
        let file = file.ok_or_else(|| {
            Status::not_found(format!(
                "no file `{}` at revision {rev}",
                shown(path.as_str())
            ))
        })?;
        Ok(Response::new(pb::ReadFileResponse {
            content: file.content,
            blob_id: file.id.to_string(),
            revision: rev.to_string(),
        }))
    }

    async fn list_files(
        &self,
        req: Request<pb::ListFilesRequest>,
    ) -> Result<Response<pb::ListFilesResponse>, Status> {
        let r = req.get_ref();
        let e = self.registry.require(&r.storage_id)?;
        let rev = revision(e, r.revision.as_deref())?;
        let prefix = match r
            .prefix
            .as_deref()
            .map(|p| p.trim_end_matches('/'))
            .filter(|p| !p.is_empty())
        {
            Some(p) => Some(repo_path(p)?),
            None => None,
        };
        let entries = e
            .sync
            .backend()
            .list_tree(rev, prefix.as_ref(), true)
            .await
            .map_err(from_backend)?;
        let files = entries
            .into_iter()
            .map(|t| pb::FileEntry {
                path: t.path,
                blob_id: t.id.to_string(),
            })
            .collect();
        Ok(Response::new(pb::ListFilesResponse {
            files,
            revision: rev.to_string(),
        }))
    }

    async fn commit(
        &self,
        req: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let r = req.into_inner();
        let e = self.registry.require(&r.storage_id)?;
        if r.changes.is_empty() {
            return Err(invalid("a commit needs at least one change"));
        }
        if r.message.trim().is_empty() {
            return Err(invalid("a commit needs a message"));
        }
        let mut changes = Vec::with_capacity(r.changes.len());
        for c in r.changes {
            let path = repo_path(&c.path)?;
            changes.push(match c.change {
                Some(pb::file_change::Change::Content(content)) => Change::Put { path, content },
                Some(pb::file_change::Change::Delete(true)) => Change::Delete { path },
                _ => {
                    return Err(invalid(format!(
                        "change of `{}` needs `content` or `delete: true`",
                        shown(path.as_str())
                    )));
                }
            });
        }
        let author = match r.author {
            Some(a) if !a.name.trim().is_empty() && !a.email.trim().is_empty() => Some(Signature {
                name: a.name,
                email: a.email,
                time: None,
            }),
            Some(_) => return Err(invalid("an author needs a name and an email")),
            None => None,
        };
        let op = FileCommit {
            changes,
            message: r.message,
            directories: self
                .environment_directories
                .get(&e.id)
                .cloned()
                .unwrap_or_default(),
        };
        let branch = e.sync.options().branch.clone();
        let out = e
            .sync
            .write(WriteRequest {
                branch: &branch,
                revision: r.base_revision.as_deref(),
                op: &op,
                author,
            })
            .await
            .map_err(from_sync)?;
        Ok(Response::new(pb::CommitResponse {
            revision: convert::id(out.revision),
            committed: out.committed,
        }))
    }

    async fn list_commits(
        &self,
        req: Request<pb::ListCommitsRequest>,
    ) -> Result<Response<pb::ListCommitsResponse>, Status> {
        let r = req.get_ref();
        let e = self.registry.require(&r.storage_id)?;
        let from = revision(e, r.from.as_deref())?;
        let limit = match r.limit {
            None | Some(0) => 20,
            Some(n) if (1..=100).contains(&n) => n as usize,
            Some(n) => return Err(invalid(format!("limit must be between 1 and 100, got {n}"))),
        };
        let b = e.sync.backend();
        let log = b
            .log(
                from,
                LogOptions {
                    limit,
                    ..Default::default()
                },
            )
            .await
            .map_err(from_backend)?;
        let mut commits = Vec::with_capacity(log.len());
        for c in log {
            let paths = b
                .diff(c.parents.first().copied(), c.id)
                .await
                .map_err(from_backend)?;
            commits.push(pb::CommitInfo {
                id: c.id.to_string(),
                message: c.message,
                author: Some(pb::Author {
                    name: c.author.name,
                    email: c.author.email,
                }),
                time: c.author.time.map(|t| prost_types::Timestamp {
                    seconds: t.seconds,
                    nanos: 0,
                }),
                changed_paths: paths.into_iter().map(|d| d.path).collect(),
            });
        }
        Ok(Response::new(pb::ListCommitsResponse { commits }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let r = req.into_inner();
        let e = self.registry.require(&r.storage_id)?.clone();
        let from = match r.from_revision.as_deref().filter(|f| !f.is_empty()) {
            Some(f) => {
                let id = parse_revision(f)?;
                e.sync
                    .backend()
                    .commit_info(id)
                    .await
                    .map_err(|_| Status::not_found(format!("revision {id} not found")))?;
                Some(id)
            }
            None => None,
        };
        let permit =
            self.streams.clone().try_acquire_owned().map_err(|_| {
                Status::resource_exhausted("too many open Watch streams; retry later")
            })?;
        let watcher = Watcher {
            heads: e.sync.subscribe(),
            branch: e.sync.options().branch.clone(),
            backend: e.sync.backend().clone(),
            sync: e.sync,
            last: from,
            first: true,
            ended: false,
            heartbeat: self.heartbeat,
            shutdown: self.shutdown.clone(),
            _permit: permit,
        };
        Ok(Response::new(Box::pin(futures::stream::unfold(
            watcher,
            |mut w| async move { w.next().await.map(|event| (event, w)) },
        ))))
    }
}

/// One `Watch` stream's state. The stream is polled by the connection's task for this
/// response directly: a task of its own feeding a channel added a handoff between tasks
/// (often between threads) to every event (S1 in BENCHMARKS.md). Dropping it (the client went
/// away, or the stream ended) gives back its permit.
struct Watcher {
    sync: remote_sync::SyncedStorage,
    heads: tokio::sync::watch::Receiver<remote_sync::Heads>,
    branch: String,
    backend: DynBackend,
    /// The head of the last event (or the revision the client gave).
    last: Option<ObjectId>,
    /// No event sent yet: the first one is sent even when the head is `from_revision`.
    first: bool,
    /// An error was sent: the stream ends.
    ended: bool,
    heartbeat: Duration,
    shutdown: CancellationToken,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Watcher {
    /// The next item of the stream, `None` when it ends: an event when the served head moved
    /// (its changed paths from the last event's head), a heartbeat after `heartbeat` of
    /// silence; the end at shutdown (cleanly) or after an error.
    async fn next(&mut self) -> Option<Result<pb::WatchEvent, Status>> {
        if self.ended {
            return None;
        }
        loop {
            let head = self.sync.head(&self.branch);
            if let Some(head) = head.filter(|h| self.first || Some(*h) != self.last) {
                let paths = match changed_paths(&self.backend, self.last, head).await {
                    Ok(p) => p,
                    Err(err) => {
                        self.ended = true;
                        return Some(Err(from_backend(err)));
                    }
                };
                let event = pb::WatchEvent {
                    from: convert::id(self.last),
                    to: head.to_string(),
                    changed_paths: paths,
                    heartbeat: false,
                };
                self.last = Some(head);
                self.first = false;
                return Some(Ok(event));
            }
            tokio::select! {
                changed = self.heads.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = tokio::time::sleep(self.heartbeat) => {
                    return Some(Ok(pb::WatchEvent { heartbeat: true, ..Default::default() }));
                }
                _ = self.shutdown.cancelled() => {
                    tracing::debug!("watch stream ended by shutdown");
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn api(directories: &[&str]) -> (StorageApi, remote_sync::SyncedStorage) {
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
            sync: sync.clone(),
            rejected: Default::default(),
        });
        let options = StorageApiOptions {
            environment_directories: BTreeMap::from([(
                "default".to_owned(),
                directories.iter().map(|d| (*d).to_owned()).collect(),
            )]),
            ..Default::default()
        };
        (StorageApi::new(Arc::new(registry), options), sync)
    }

    fn request(path: &str, content: &str) -> Request<pb::CommitRequest> {
        Request::new(pb::CommitRequest {
            storage_id: "default".into(),
            changes: vec![pb::FileChange {
                path: path.into(),
                change: Some(pb::file_change::Change::Content(content.into())),
            }],
            message: "test".into(),
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn a_commit_is_checked_in_the_environment_directories_only() {
        let (api, sync) = api(&["prod"]).await;
        let head = sync.head("main");
        let refused = api
            .commit(request("prod/team/features.yaml", "flags:\n  - key: [\n"))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(
            refused.message().contains(
                "the commit leaves files that do not validate:\nprod/team/features.yaml:"
            ),
            "{}",
            refused.message()
        );
        assert_eq!(sync.head("main"), head, "nothing committed");
        // Outside the environment: committed as it is.
        let out = api
            .commit(request(
                "staging/team/features.yaml",
                "flags:\n  - key: [\n",
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(out.committed);
        // Valid: committed.
        let out = api
            .commit(request(
                "prod/team/features.yaml",
                "flags:\n  - key: a\n    name: A\n",
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(out.committed);
        // Without environment directories nothing is checked.
        let (api, _) = self::api(&[]).await;
        assert!(
            api.commit(request("team/features.yaml", "flags: [\n"))
                .await
                .unwrap()
                .into_inner()
                .committed
        );
    }

    /// The check is part of the plan: redone on the head the write is applied to (the sync
    /// engine plans again on a newer head after a race), so a file another writer added in
    /// between is seen.
    #[tokio::test]
    async fn the_check_is_redone_on_the_head_the_commit_is_applied_to() {
        use git_backend::{CommitRequest, GitBackend};
        let backend = git_backend_memory::MemoryBackend::new(Default::default()).unwrap();
        let file = |path: &str| Change::Put {
            path: RepoPath::new(path).unwrap(),
            content: b"flags:\n  - key: a\n    name: A\n".to_vec(),
        };
        let op = FileCommit {
            changes: vec![file("team/features.yml")],
            message: "m".into(),
            directories: vec![String::new()],
        };
        let ctx = |head| WriteContext {
            backend: &backend,
            head,
            base: None,
        };
        assert!(matches!(op.plan(ctx(None)).await, Ok(Plan::Commit { .. })));
        let signature = Signature::now("other", "other@example.com");
        let newer = backend
            .create_commit(CommitRequest {
                parent: None,
                changes: vec![file("team/features.yaml")],
                message: "the other writer".into(),
                author: signature.clone(),
                committer: signature,
            })
            .await
            .unwrap();
        match op.plan(ctx(Some(newer))).await {
            Err(Refusal::Invalid(m)) => assert!(
                m.contains("namespace \"team\" has more than one features file"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_refusal_message_is_bounded() {
        let problems: Vec<resource_model::Problem> = (0..1000)
            .map(|i| {
                resource_model::Problem::file(
                    "team/features.yaml",
                    format!("problem {i} {}\u{7}", "x".repeat(10_000)),
                )
            })
            .collect();
        let message = problems_message(&problems);
        assert!(message.len() < 8_000, "{}", message.len());
        assert!(message.ends_with("\n... and 980 more"), "{message}");
        assert!(!message.contains('\u{7}'));
        assert_eq!(message.lines().count(), 1 + 20 + 1);
    }
}
