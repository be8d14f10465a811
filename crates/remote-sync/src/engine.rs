//! [`SyncedStorage`]: one storage's repository kept in step with its remote.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use config_model::FetchPolicy;
use git_backend::{
    DynBackend, Expected, Follow, GitBackendExt, ObjectId, Plan, PushUpdate, RefName, RefUpdate,
    RefsState, Signature, WriteContext, WriteOp,
};
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::error::{Result, SyncError};
use crate::options::SyncOptions;
use crate::status::{Divergence, LastError, Metrics, Phase, RemoteRewrite, Status};

/// The served heads of a storage's branches (its branch and the tracked `flipt/<env>/*`
/// branches), as subscribers see them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heads {
    /// Increases with every change.
    pub version: u64,
    /// Branch name to served commit.
    pub branches: BTreeMap<String, ObjectId>,
}

/// A write to one branch.
#[derive(Debug)]
pub struct WriteRequest<'a> {
    /// The branch (the storage's branch, or a branch environment's `flipt/<env>/<name>`).
    pub branch: &'a str,
    /// The revision the client read (40 hex digits), if it gave one.
    pub revision: Option<&'a str>,
    /// The operation, re-applied on a newer head if the remote moved.
    pub op: &'a dyn WriteOp,
    /// The author; the storage's signature when `None`.
    pub author: Option<Signature>,
}

/// The outcome of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The branch head after the write (the new commit, or the unchanged head).
    pub revision: Option<ObjectId>,
    /// Whether a commit was made.
    pub committed: bool,
}

/// The outcome of a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshOutcome {
    /// The served head of the storage's branch.
    pub head: Option<ObjectId>,
    /// Whether it changed.
    pub changed: bool,
}

struct Inner {
    backend: DynBackend,
    opts: SyncOptions,
    status: watch::Sender<Status>,
    heads: watch::Sender<Heads>,
    write_lock: Mutex<()>,
    sync_lock: Mutex<()>,
    /// Reconciliations (after fetches, refreshes and local changes) run one at a time.
    reconcile_lock: Mutex<()>,
    suspended: AtomicBool,
    /// Whether the last fetch succeeded (with [`Status::divergence`], makes
    /// [`Status::synced`]).
    fetch_ok: AtomicBool,
    /// Commits of the storage's branch that the remote is known to have had, in this process:
    /// what it advertised, and what it accepted from us; newest last, at most
    /// [`REMOTE_HAD`]. A local branch contained in one of them holds nothing unpushed.
    remote_had: std::sync::Mutex<VecDeque<ObjectId>>,
    metrics: Metrics,
}

/// How many commits [`Inner::remote_had`] remembers.
const REMOTE_HAD: usize = 32;

/// One storage's repository, following its remote when it has one.
///
/// Reads never wait for network I/O: [`SyncedStorage::head`] and the [`Heads`] stream come
/// from the last good state while a fetch or push is in flight. Writes are serialised.
#[derive(Clone)]
pub struct SyncedStorage {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SyncedStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncedStorage")
            .field("storage", &self.inner.opts.storage_id)
            .finish_non_exhaustive()
    }
}

const ORIGIN: &str = "origin";

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A local branch that moved while it was being fast-forwarded was moved by a write or by
/// another program: the next reconciliation looks again.
fn tolerate_moved(result: std::result::Result<(), git_backend::Error>) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(git_backend::Error::RefMoved { .. }) => {
            debug!("the local branch moved meanwhile; the next sync looks again");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The error of a divergence: names the branch and both commits, and how to resolve it.
fn diverged(d: &Divergence) -> SyncError {
    SyncError::Diverged(format!(
        "the local branch `{}` ({}) diverged from the remote ({}): it has commits the remote never had, and the remote's history does not contain it; writes are refused until someone resolves it (move the local branch to the remote's history, or onto it)",
        d.branch, d.local, d.remote
    ))
}

/// `d` ± about 10%.
fn jittered(d: Duration) -> Duration {
    let factor = 0.9 + fastrand::f64() * 0.2;
    d.mul_f64(factor)
}

impl SyncedStorage {
    /// Starts a storage (BEHAVIOUR §3): without a remote, seeds an empty branch; with one,
    /// fetches it (`strict`: any failure stops start-up; `lenient`: serves what the storage
    /// has, if anything, and keeps retrying), and seeds and pushes an empty remote or a
    /// missing branch. Call [`SyncedStorage::run`] afterwards for polling.
    pub async fn start(backend: DynBackend, opts: SyncOptions) -> Result<SyncedStorage> {
        let (status, _) = watch::channel(Status::default());
        let (heads, _) = watch::channel(Heads::default());
        let storage = SyncedStorage {
            inner: Arc::new(Inner {
                backend,
                opts,
                status,
                heads,
                write_lock: Mutex::new(()),
                sync_lock: Mutex::new(()),
                reconcile_lock: Mutex::new(()),
                suspended: AtomicBool::new(false),
                fetch_ok: AtomicBool::new(false),
                remote_had: std::sync::Mutex::new(VecDeque::new()),
                metrics: Metrics::default(),
            }),
        };
        let span = info_span!("start", storage = %storage.inner.opts.storage_id);
        storage.start_up().instrument(span).await?;
        Ok(storage)
    }

    async fn start_up(&self) -> Result<()> {
        let inner = &self.inner;
        let branch = inner.opts.branch.clone();
        if inner.opts.remote.is_none() {
            inner
                .backend
                .seed_branch(&branch, &self.committer())
                .await?;
            self.publish().await?;
            self.inner.fetch_ok.store(true, Ordering::Relaxed);
            self.set_status(|s| {
                s.phase = Phase::Ready;
                s.synced = true;
            });
            return Ok(());
        }
        // What the remote had when this storage last fetched or pushed (before a restart),
        // so that a rewrite of the remote while the server was stopped is followed too when
        // the local branch holds nothing unpushed.
        if let Some(known) = inner.backend.resolve(&self.tracking(&branch)?).await? {
            self.remember_remote(known);
        }
        match self.fetch_quietly(true).await {
            Ok(_) => {
                self.reconcile_after_fetch().await?;
                self.set_status(|s| s.phase = Phase::Ready);
                Ok(())
            }
            Err(e) => {
                let has_commit = inner
                    .backend
                    .resolve(&self.tracking(&branch)?)
                    .await?
                    .is_some()
                    || inner.backend.branch_head(&branch).await?.is_some();
                if inner.opts.fetch_policy == FetchPolicy::Lenient && has_commit {
                    warn!(error = %e, "initial fetch failed; serving the last local state (lenient fetch policy) and retrying");
                    // Without a remote-tracking reference, the local branch is served until
                    // the remote is reached (see `publish`): the remote-tracking reference
                    // only ever holds what the remote had.
                    self.publish().await?;
                    self.set_status(|s| {
                        s.phase = Phase::Ready;
                        s.synced = false;
                    });
                    Ok(())
                } else {
                    self.set_status(|s| s.phase = Phase::Error);
                    Err(e)
                }
            }
        }
    }

    /// Polls the remote every `poll_interval` (jittered; with capped exponential backoff after
    /// failures) and follows local reference changes (commits made by other programs), until
    /// `cancel` fires.
    pub async fn run(&self, cancel: CancellationToken) {
        let mut refs = self.inner.backend.subscribe();
        let poll = self.inner.opts.poll_interval;
        let mut failures: u32 = 0;
        loop {
            let delay = if failures == 0 {
                jittered(poll)
            } else {
                jittered(
                    (poll * 2u32.saturating_pow(failures.min(6)))
                        .min(poll.max(Duration::from_secs(300))),
                )
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(delay) => {
                    if self.inner.suspended.load(Ordering::Relaxed) { continue; }
                    match self.refresh().await {
                        Ok(_) => failures = 0,
                        Err(_) => failures = failures.saturating_add(1),
                    }
                }
                changed = refs.changed() => {
                    if changed.is_err() { break; }
                    let state = refs.borrow_and_update().clone();
                    if let Err(e) = self.on_local_change(&state).await {
                        debug!(storage = %self.inner.opts.storage_id, error = %e, "handling a local reference change failed");
                    }
                }
            }
        }
        debug!(storage = %self.inner.opts.storage_id, "sync loop stopped");
    }

    /// The storage id.
    pub fn id(&self) -> &str {
        &self.inner.opts.storage_id
    }

    /// The options.
    pub fn options(&self) -> &SyncOptions {
        &self.inner.opts
    }

    /// The backend (for reads).
    pub fn backend(&self) -> &DynBackend {
        &self.inner.backend
    }

    /// The served head of a branch (never waits for network I/O).
    pub fn head(&self, branch: &str) -> Option<ObjectId> {
        self.inner.heads.borrow().branches.get(branch).copied()
    }

    /// The served heads, as a stream of states.
    pub fn subscribe(&self) -> watch::Receiver<Heads> {
        self.inner.heads.subscribe()
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.inner.status.borrow().clone()
    }

    /// Status changes, as a stream of states.
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.inner.status.subscribe()
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    fn committer(&self) -> Signature {
        let s = &self.inner.opts.signature;
        Signature::now(s.name.clone(), s.email.clone())
    }

    /// The reference that holds the served head of `branch`: the remote-tracking reference
    /// with a remote, the local branch without.
    fn tracking(&self, branch: &str) -> Result<RefName> {
        Ok(if self.inner.opts.remote.is_some() {
            RefName::remote_tracking(ORIGIN, branch)?
        } else {
            RefName::branch(branch)?
        })
    }

    fn tracked(&self, branch: &str) -> bool {
        branch == self.inner.opts.branch
            || self.inner.opts.environments.iter().any(|env| {
                branch
                    .strip_prefix(&format!("flipt/{env}/"))
                    .is_some_and(|rest| !rest.is_empty())
            })
    }

    fn refspecs(&self) -> Vec<String> {
        let mut specs = vec![format!(
            "+refs/heads/{0}:refs/remotes/{ORIGIN}/{0}",
            self.inner.opts.branch
        )];
        for env in &self.inner.opts.environments {
            specs.push(format!(
                "+refs/heads/flipt/{env}/*:refs/remotes/{ORIGIN}/flipt/{env}/*"
            ));
        }
        specs
    }

    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        self.inner.status.send_modify(|s| {
            f(s);
            if self.inner.suspended.load(Ordering::Relaxed) && s.phase != Phase::Error {
                s.phase = Phase::Suspended;
            }
        });
    }

    fn record_error(&self, e: &SyncError) {
        self.inner.metrics.error(e.class());
        let last = LastError {
            class: e.class(),
            message: e.to_string(),
            at: SystemTime::now(),
        };
        self.set_status(|s| s.last_error = Some(last));
    }

    /// Re-reads the served heads from the references and publishes them if they changed.
    async fn publish(&self) -> Result<bool> {
        let prefix = if self.inner.opts.remote.is_some() {
            format!("refs/remotes/{ORIGIN}/")
        } else {
            "refs/heads/".to_owned()
        };
        // The backend's references state holds every change made through it by the time the
        // call returns (and other programs' changes once observed), so publishing costs no
        // call to the backend.
        let state = self.inner.backend.subscribe().borrow().clone();
        let mut branches: BTreeMap<String, ObjectId> = state
            .refs
            .iter()
            .filter_map(|(name, target)| {
                let name = name.as_str().strip_prefix(&prefix)?.to_owned();
                self.tracked(&name).then_some((name, *target))
            })
            .collect();
        let own = &self.inner.opts.branch;
        let own_local = RefName::branch(own)
            .ok()
            .and_then(|n| state.refs.get(&n).copied());
        if self.inner.opts.remote.is_some()
            && !branches.contains_key(own)
            && let Some(local) = own_local
        {
            // The remote lost the branch (deleted, or pruned by a fetch): the last state the
            // storage has stays served until it is pushed again, never "no state".
            branches.insert(own.clone(), local);
        }
        let head = branches.get(own).copied();
        let mut changed = false;
        self.inner.heads.send_if_modified(|h| {
            if h.branches != branches {
                h.branches = branches;
                h.version += 1;
                changed = true;
            }
            changed
        });
        self.set_status(|s| s.head = head);
        Ok(changed)
    }

    // ------------------------------------------------------------------------------ sync

    /// Fetches now (without a remote: re-reads the repository) and returns the served head of
    /// the storage's branch and whether it changed. Waits for a fetch already in flight.
    pub async fn refresh(&self) -> Result<RefreshOutcome> {
        let before = self.head(&self.inner.opts.branch);
        let span = info_span!("refresh", storage = %self.inner.opts.storage_id);
        let deadline = self.inner.opts.git_timeout;
        let result =
            match tokio::time::timeout(deadline, self.refresh_inner().instrument(span)).await {
                Ok(r) => r,
                Err(_) => Err(SyncError::DeadlineExceeded(format!(
                    "refreshing storage `{}` took longer than {deadline:?}",
                    self.id()
                ))),
            };
        if let Err(e) = &result {
            self.record_error(e);
        }
        result?;
        let head = self.head(&self.inner.opts.branch);
        Ok(RefreshOutcome {
            head,
            changed: head != before,
        })
    }

    async fn refresh_inner(&self) -> Result<()> {
        if self.inner.opts.remote.is_none() {
            let started = Instant::now();
            self.inner.backend.refresh_refs().await?;
            self.publish().await?;
            self.count_sync(started, true);
            return Ok(());
        }
        if self.inner.suspended.load(Ordering::Relaxed) {
            return Err(SyncError::FailedPrecondition(format!(
                "sync of storage `{}` is suspended",
                self.id()
            )));
        }
        self.fetch_quietly(true).await?;
        self.reconcile_after_fetch().await
    }

    /// [`Self::reconcile`] of the storage's branch after [`Self::fetch_quietly`]: the heads
    /// are published once, at the end, so the snapshot rebuild that a publication starts does
    /// not compete with the reconciliation for the object store (S1 in BENCHMARKS.md). When
    /// reconciling fails, what was fetched is published all the same.
    async fn reconcile_after_fetch(&self) -> Result<()> {
        let branch = self.inner.opts.branch.clone();
        let reconciled = self.reconcile(&branch).await;
        if reconciled.is_err() {
            self.publish().await?;
        }
        reconciled
    }

    fn count_sync(&self, started: Instant, ok: bool) {
        let m = &self.inner.metrics;
        m.sync_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        if ok {
            m.syncs_ok.fetch_add(1, Ordering::Relaxed);
            m.last_sync_success_unix
                .store(now_unix(), Ordering::Relaxed);
        } else {
            m.syncs_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One fetch: lists the remote's references, downloads what is missing, moves the
    /// remote-tracking references (pruning the ones the remote no longer has), and publishes
    /// the served heads.
    async fn fetch_now(&self) -> Result<bool> {
        let downloaded = self.fetch_quietly(false).await?;
        self.publish().await?;
        Ok(downloaded)
    }

    /// [`Self::fetch_now`] without publishing: the caller publishes. With `follow`, the local
    /// branch of the storage is fast-forwarded to the remote's head in the same backend call
    /// when it can be (what [`Self::reconcile`] would do first); callers that reconcile next
    /// pass it.
    async fn fetch_quietly(&self, follow: bool) -> Result<bool> {
        let Some(remote) = self.inner.opts.remote.clone() else {
            return Ok(false);
        };
        let _one = self.inner.sync_lock.lock().await;
        let started = Instant::now();
        self.set_status(|s| {
            s.phase = Phase::Syncing;
            s.last_fetch_attempt = Some(SystemTime::now());
        });
        let result = async {
            // One connection: the fetch lists the remote's references and downloads only
            // objects it lacks, so an unchanged remote costs what an ls-remote would.
            let changes = if follow {
                // The storage's branch fast-forwarded in the same step: the reconciliation
                // that follows then has nothing to move in the usual case, and the new head is
                // served sooner (S1 in BENCHMARKS.md).
                let branch = &self.inner.opts.branch;
                let follow = Follow {
                    local: RefName::branch(branch)?,
                    tracking: self.tracking(branch)?,
                    message: "sync".into(),
                };
                let fetched = self
                    .inner
                    .backend
                    .fetch_and_follow(&remote, &self.refspecs(), true, follow)
                    .await?;
                debug!(followed = fetched.followed, "followed the remote");
                fetched.changes
            } else {
                self.inner
                    .backend
                    .fetch(&remote, &self.refspecs(), true)
                    .await?
            };
            debug!(changes = changes.len(), "fetched");
            // The remote-tracking reference now holds what the remote advertised; the
            // backend's references state has it when the fetch returns.
            let tracking = self.tracking(&self.inner.opts.branch)?;
            if let Some(head) = self.known_ref(&tracking) {
                self.remember_remote(head);
            }
            Ok::<_, SyncError>(!changes.is_empty())
        }
        .await;
        self.count_sync(started, result.is_ok());
        match &result {
            Ok(downloaded) => {
                info!(storage = %self.id(), remote = %remote.display, downloaded, elapsed_ms = started.elapsed().as_millis() as u64, "sync ok");
                self.inner.fetch_ok.store(true, Ordering::Relaxed);
                self.set_status(|s| {
                    s.phase = Phase::Ready;
                    s.last_fetch_success = Some(SystemTime::now());
                    s.synced = s.divergence.is_none();
                    // A divergence's error lasts as long as the divergence (see `reconcile`).
                    let divergence_error = s.divergence.is_some()
                        && s.last_error
                            .as_ref()
                            .is_some_and(|e| e.class == git_backend::ErrorClass::Conflict);
                    if !divergence_error {
                        s.last_error = None;
                    }
                });
            }
            Err(e) => {
                warn!(storage = %self.id(), remote = %remote.display, error = %e, "sync failed");
                self.inner.fetch_ok.store(false, Ordering::Relaxed);
                self.set_status(|s| {
                    s.phase = Phase::Ready;
                    s.synced = false;
                });
                self.record_error(e);
            }
        }
        result
    }

    /// Brings the local branch and the remote-tracking reference together: fast-forwards
    /// the local branch, pushes local commits that fast-forward the remote, follows a
    /// rewritten remote when the local branch holds nothing unpushed, and reports a
    /// divergence otherwise (serving the remote's head, overwriting nothing).
    async fn reconcile(&self, branch: &str) -> Result<()> {
        let _one = self.inner.reconcile_lock.lock().await;
        let Some(remote) = self.inner.opts.remote.clone() else {
            return Ok(());
        };
        let b = &self.inner.backend;
        let local_ref = RefName::branch(branch)?;
        let tracking = self.tracking(branch)?;
        // Read from the references state: a fetch or push through the backend is in it when
        // the call returns, and every move below is a compare-and-swap, so a value that is out
        // of date (another program's commit not yet observed) moves nothing.
        let (local, served) = {
            let state = b.subscribe();
            let state = state.borrow();
            (
                state.refs.get(&local_ref).copied(),
                state.refs.get(&tracking).copied(),
            )
        };
        let mut divergence = None;
        match (local, served) {
            (None, None) => {
                // Empty remote or missing branch: seed it and push.
                let seed = b.seed_branch(branch, &self.committer()).await?;
                self.push_branch(&remote, branch, seed, None).await?;
                info!(storage = %self.id(), branch, "seeded the remote branch");
            }
            (Some(l), None) => {
                self.push_branch(&remote, branch, l, None).await?;
                info!(storage = %self.id(), branch, "pushed the local branch to the remote, which did not have it");
            }
            (None, Some(r)) => {
                let moved = b
                    .update_ref(RefUpdate {
                        name: local_ref,
                        new: Some(r),
                        expected: Expected::Absent,
                        message: "sync".into(),
                    })
                    .await;
                tolerate_moved(moved)?;
            }
            (Some(l), Some(r)) if l == r => {}
            (Some(l), Some(r)) => {
                // The usual case: the remote is ahead, and the local branch follows it.
                let forwarded = match b.fast_forward(local_ref.clone(), l, r, "sync".into()).await {
                    Ok(moved) => moved,
                    Err(git_backend::Error::RefMoved { .. }) => {
                        debug!("the local branch moved meanwhile; the next sync looks again");
                        true
                    }
                    Err(e) => return Err(e.into()),
                };
                if forwarded {
                    // Followed (or moved by someone else meanwhile).
                } else if b.is_ancestor(r, l).await? {
                    // A commit made on disk by another program: pushed like a write.
                    match self.push_branch(&remote, branch, l, Some(r)).await {
                        Ok(()) => {
                            info!(storage = %self.id(), branch, commit = %l, "pushed a local commit")
                        }
                        Err(SyncError::Aborted { .. }) => debug!(
                            "the remote moved; the local commit is pushed after the next fetch"
                        ),
                        Err(e) => return Err(e),
                    }
                } else if branch == self.inner.opts.branch && self.remote_had(l).await {
                    // The remote's history was rewritten (someone force-pushed), and every
                    // local commit had been on the remote: nothing of ours is lost by
                    // following it, and the served head is the remote's (BEHAVIOUR §2).
                    self.follow_rewrite(branch, local_ref, l, r).await?;
                } else {
                    warn!(storage = %self.id(), branch, local = %l, remote = %r, "the local branch has commits the remote never had, and the remote's history does not contain it; serving the remote's head, overwriting nothing, refusing writes until someone resolves it");
                    divergence = Some(Divergence {
                        branch: branch.to_owned(),
                        local: l,
                        remote: r,
                    });
                }
            }
        }
        if branch == self.inner.opts.branch {
            self.set_divergence(divergence);
        }
        self.publish().await?;
        Ok(())
    }

    /// Moves the local branch from `local` (a commit the remote had) to the rewritten
    /// remote's `remote`, with a compare-and-swap; logs, counts and notes it in the status.
    async fn follow_rewrite(
        &self,
        branch: &str,
        local_ref: RefName,
        local: ObjectId,
        remote: ObjectId,
    ) -> Result<()> {
        let moved = self
            .inner
            .backend
            .update_ref(RefUpdate {
                name: local_ref,
                new: Some(remote),
                expected: Expected::Value(local),
                message: "sync: follow the rewritten remote".into(),
            })
            .await;
        match moved {
            Ok(()) => {
                warn!(storage = %self.id(), branch, previous = %local, remote = %remote, "the remote branch was rewritten (its head {remote} does not contain {local}, which it had); the local branch held nothing unpushed and now follows it");
                self.inner
                    .metrics
                    .remote_rewrites
                    .fetch_add(1, Ordering::Relaxed);
                self.set_status(|s| {
                    s.last_remote_rewrite = Some(RemoteRewrite {
                        branch: branch.to_owned(),
                        previous: local,
                        remote,
                        at: SystemTime::now(),
                    })
                });
                Ok(())
            }
            other => tolerate_moved(other),
        }
    }

    /// Sets or clears the storage branch's divergence. A new one is recorded as the last
    /// error (class conflict) once, not at every poll; a resolved one clears its error at
    /// once, and `synced` follows.
    fn set_divergence(&self, divergence: Option<Divergence>) {
        let before = self.status().divergence;
        if before == divergence {
            return;
        }
        match &divergence {
            Some(d) => {
                self.record_error(&diverged(d));
                self.set_status(|s| {
                    s.divergence = divergence.clone();
                    s.synced = false;
                });
            }
            None => {
                if let Some(old) = before {
                    info!(storage = %self.id(), branch = %old.branch, local = %old.local, remote = %old.remote, "the divergence was resolved");
                }
                let fetch_ok = self.inner.fetch_ok.load(Ordering::Relaxed);
                self.set_status(|s| {
                    s.divergence = None;
                    s.synced = fetch_ok;
                    if s.last_error
                        .as_ref()
                        .is_some_and(|e| e.class == git_backend::ErrorClass::Conflict)
                    {
                        s.last_error = None;
                    }
                });
            }
        }
    }

    /// Notes that the remote had `commit` on the storage's branch.
    fn remember_remote(&self, commit: ObjectId) {
        let mut had = self
            .inner
            .remote_had
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if had.back() == Some(&commit) {
            return;
        }
        had.retain(|c| *c != commit);
        had.push_back(commit);
        while had.len() > REMOTE_HAD {
            had.pop_front();
        }
    }

    /// Whether every commit of `local` is known to have been on the remote: it is, or is an
    /// ancestor of, a commit the remote advertised or accepted (in this process).
    async fn remote_had(&self, local: ObjectId) -> bool {
        let had: Vec<ObjectId> = {
            let had = self
                .inner
                .remote_had
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            had.iter().rev().copied().collect()
        };
        if had.contains(&local) {
            return true;
        }
        for commit in had {
            // A commit no longer stored (e.g. dropped by a compaction) proves nothing.
            if self
                .inner
                .backend
                .is_ancestor(local, commit)
                .await
                .unwrap_or(false)
            {
                return true;
            }
        }
        false
    }

    /// Pushes `commit` to the remote's `branch` expecting `expected`, then moves the
    /// tracking reference (and the local branch) to it.
    async fn push_branch(
        &self,
        remote: &git_backend::Remote,
        branch: &str,
        commit: ObjectId,
        expected: Option<ObjectId>,
    ) -> Result<()> {
        let b = &self.inner.backend;
        let name = RefName::branch(branch)?;
        match b
            .push(
                remote,
                PushUpdate {
                    local: Some(commit),
                    remote_ref: name.clone(),
                    expected: Expected::from_option(expected),
                },
            )
            .await
        {
            Ok(()) => {}
            Err(git_backend::Error::RemoteMoved { actual, .. }) => {
                self.inner
                    .metrics
                    .push_conflicts
                    .fetch_add(1, Ordering::Relaxed);
                return Err(SyncError::Aborted {
                    message: format!("the remote branch `{branch}` moved (now {actual})"),
                    head: None,
                });
            }
            Err(e) => {
                self.inner
                    .metrics
                    .pushes_failed
                    .fetch_add(1, Ordering::Relaxed);
                return Err(e.into());
            }
        }
        self.inner.metrics.pushes_ok.fetch_add(1, Ordering::Relaxed);
        self.set_status(|s| s.last_push = Some(SystemTime::now()));
        self.after_push(branch, commit, expected).await
    }

    /// Moves the tracking reference and the local branch to a commit the remote accepted.
    async fn after_push(
        &self,
        branch: &str,
        commit: ObjectId,
        expected: Option<ObjectId>,
    ) -> Result<()> {
        if branch == self.inner.opts.branch {
            self.remember_remote(commit);
        }
        let b = &self.inner.backend;
        let tracking = self.tracking(branch)?;
        let move_tracking = async {
            match b
                .update_ref(RefUpdate {
                    name: tracking.clone(),
                    new: Some(commit),
                    expected: Expected::from_option(expected),
                    message: "push".into(),
                })
                .await
            {
                Ok(()) => Ok(()),
                // A fetch that ran after the push may have set it already.
                Err(git_backend::Error::RefMoved { .. })
                    if b.resolve(&tracking).await? == Some(commit) =>
                {
                    Ok(())
                }
                Err(git_backend::Error::RefMoved { .. }) => b
                    .update_ref(RefUpdate {
                        name: tracking.clone(),
                        new: Some(commit),
                        expected: Expected::Any,
                        message: "push".into(),
                    })
                    .await
                    .map_err(SyncError::from),
                Err(e) => Err(e.into()),
            }
        };
        // The local branch as last seen (the references state): a compare-and-swap moves it,
        // so a value that is out of date moves nothing.
        let local_ref = RefName::branch(branch)?;
        let local = self.known_ref(&local_ref);
        let move_local = async {
            let behind = match local {
                None => true,
                Some(l) if Some(l) == expected => true,
                // E.g. a write built on the local branch because the remote had lost it.
                Some(l) => l != commit && b.is_ancestor(l, commit).await.unwrap_or(false),
            };
            if local != Some(commit)
                && behind
                && let Err(e) = b
                    .update_ref(RefUpdate {
                        name: local_ref.clone(),
                        new: Some(commit),
                        expected: Expected::from_option(local),
                        message: "push".into(),
                    })
                    .await
            {
                debug!(error = %e, "the local branch moved meanwhile; the next sync reconciles it");
            }
            Ok::<_, SyncError>(())
        };
        // Two references, two calls to the backend: made together.
        tokio::try_join!(move_tracking, move_local)?;
        self.publish().await?;
        Ok(())
    }

    /// References changed (e.g. `git commit` in the repository on disk, or this storage's own
    /// fetch or reconciliation); `refs` is the backend's new state.
    async fn on_local_change(&self, refs: &RefsState) -> Result<()> {
        if self.inner.opts.remote.is_none() {
            self.publish().await?;
            return Ok(());
        }
        if self.inner.suspended.load(Ordering::Relaxed) {
            return Ok(());
        }
        let branch = self.inner.opts.branch.clone();
        let local = refs.refs.get(&RefName::branch(&branch)?).copied();
        let tracking = refs.refs.get(&self.tracking(&branch)?).copied();
        let served = self.head(&branch);
        let diverged = self.status().divergence.is_some();
        if local.is_none() || (local == served && !diverged) {
            return Ok(());
        }
        if local == tracking && !diverged {
            // Nothing to reconcile (typically this storage's own fetch and reconciliation,
            // which publishes when it ends; or a `git pull` in the repository on disk): the
            // served heads are brought up to date, without waiting for writes.
            self.publish().await?;
            return Ok(());
        }
        // A recorded divergence is looked at again too: moving the local branch to the
        // remote's head is how a user resolves it, and writes wait for that.
        let _w = self.inner.write_lock.lock().await;
        self.reconcile(&branch).await
    }

    // ------------------------------------------------------------------------------ suspend

    /// Stops remote sync; reads go on, writes fail with `FailedPrecondition`.
    pub fn suspend(&self) -> Result<()> {
        self.require_remote("suspend")?;
        self.inner.suspended.store(true, Ordering::Relaxed);
        self.set_status(|s| s.phase = Phase::Suspended);
        info!(storage = %self.id(), "sync suspended");
        Ok(())
    }

    /// Restarts remote sync.
    pub fn resume(&self) -> Result<()> {
        self.require_remote("resume")?;
        self.inner.suspended.store(false, Ordering::Relaxed);
        self.set_status(|s| s.phase = Phase::Ready);
        info!(storage = %self.id(), "sync resumed");
        Ok(())
    }

    /// Whether sync is suspended.
    pub fn is_suspended(&self) -> bool {
        self.inner.suspended.load(Ordering::Relaxed)
    }

    fn require_remote(&self, what: &str) -> Result<()> {
        if self.inner.opts.remote.is_none() {
            return Err(SyncError::FailedPrecondition(format!(
                "storage `{}` has no remote to {what}",
                self.id()
            )));
        }
        Ok(())
    }

    // ------------------------------------------------------------------------------ writes

    /// Checks a client's revision against `head` (BEHAVIOUR §4): empty is unconditional; it
    /// must be 40 hex digits; it must be `head` or one of its ancestors. Returns the base to
    /// check per-resource preconditions against.
    pub async fn check_revision(
        &self,
        revision: Option<&str>,
        head: Option<ObjectId>,
    ) -> Result<Option<ObjectId>> {
        let Some(rev) = revision.filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        let rev = ObjectId::parse(rev).map_err(|e| SyncError::InvalidArgument(e.to_string()))?;
        let Some(head) = head else {
            return Err(SyncError::Aborted {
                message: format!("revision {rev} is not in the history: the branch has no commits"),
                head: None,
            });
        };
        if rev == head {
            return Ok(Some(rev));
        }
        match self.inner.backend.is_ancestor(rev, head).await {
            Ok(true) => Ok(Some(rev)),
            Ok(false) | Err(git_backend::Error::NotFound(_)) => Err(SyncError::Aborted {
                message: format!(
                    "revision {rev} is not in the history of the branch (the current revision is {head})"
                ),
                head: Some(head),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies a write (BEHAVIOUR §3, §4): plans it on the served head, commits, and with a
    /// remote pushes with the expected remote value; if the remote moved, fetches, re-plans
    /// (the operation re-checks its precondition) and pushes again, a few times with jittered
    /// backoff. Acknowledged only after the remote accepted it.
    pub async fn write(&self, request: WriteRequest<'_>) -> Result<WriteOutcome> {
        let deadline = self.inner.opts.git_timeout;
        let span = info_span!("write", storage = %self.id(), branch = request.branch);
        let refused = AtomicBool::new(false);
        let result = match tokio::time::timeout(
            deadline,
            self.write_inner(&request, &refused).instrument(span),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(SyncError::DeadlineExceeded(format!(
                "the write to storage `{}` did not finish within {deadline:?}; it may still land",
                self.id()
            ))),
        };
        // The storage's own failures are its last error; a refusal of the request (by the
        // operation, on a revision, or while diverged: that one is recorded when it starts)
        // is the client's answer only.
        if let Err(e) = &result
            && !refused.load(Ordering::Relaxed)
            && !matches!(
                e,
                SyncError::InvalidArgument(_)
                    | SyncError::AlreadyExists(_)
                    | SyncError::NotFound(_)
                    | SyncError::Aborted { .. }
                    | SyncError::Diverged(_)
            )
        {
            self.record_error(e);
        }
        result
    }

    /// Sets `refused` when the operation itself refused (anything but a backend failure).
    async fn write_inner(
        &self,
        request: &WriteRequest<'_>,
        refused: &AtomicBool,
    ) -> Result<WriteOutcome> {
        if self.is_suspended() {
            return Err(SyncError::FailedPrecondition(format!(
                "sync of storage `{}` is suspended; writes are refused until it is resumed",
                self.id()
            )));
        }
        let _serialised = self.inner.write_lock.lock().await;
        if request.branch == self.inner.opts.branch
            && let Some(d) = self.status().divergence
        {
            return Err(diverged(&d));
        }
        let b = &self.inner.backend;
        let attempts = self.inner.opts.max_push_attempts.max(1);
        for attempt in 0..attempts {
            // What the remote had when last fetched: the push expects it there.
            let expected = match self.known_head(request.branch)? {
                Some(head) => Some(head),
                // Not in the state: ask the backend (a branch made on disk a moment ago).
                None => self.current_head(request.branch).await?,
            };
            let head = match expected {
                // The remote lost the storage's branch (someone deleted it): build on the
                // last state the storage has, and the push creates the branch again, as a
                // reconciliation would. Never a root commit holding only this write.
                None if request.branch == self.inner.opts.branch
                    && self.inner.opts.remote.is_some() =>
                {
                    b.branch_head(request.branch).await?
                }
                tracked => tracked,
            };
            if head.is_none() && request.branch != self.inner.opts.branch {
                return Err(SyncError::NotFound(format!(
                    "branch `{}` does not exist",
                    request.branch
                )));
            }
            let base = self.check_revision(request.revision, head).await?;
            let plan = request
                .op
                .plan(WriteContext {
                    backend: &**b,
                    head,
                    base,
                })
                .await
                .map_err(|r| {
                    if !matches!(r, git_backend::Refusal::Backend(_)) {
                        refused.store(true, Ordering::Relaxed);
                    }
                    SyncError::from(r)
                })?;
            let (changes, message) = match plan {
                Plan::Nothing => {
                    return Ok(WriteOutcome {
                        revision: head,
                        committed: false,
                    });
                }
                Plan::Commit { changes, message } => (changes, message),
            };
            let committer = self.committer();
            let author = request.author.clone().unwrap_or_else(|| committer.clone());
            let commit_request = git_backend::CommitRequest {
                parent: head,
                changes,
                message,
                author,
                committer,
            };
            let Some(remote) = self.inner.opts.remote.clone() else {
                let name = RefName::branch(request.branch)?;
                let expected = Expected::from_option(head);
                let committed = b
                    .commit_to(commit_request, name, expected, "write".into())
                    .await;
                // A moved reference fails the call after the commit was made.
                if matches!(committed, Ok(_) | Err(git_backend::Error::RefMoved { .. })) {
                    self.inner.metrics.commits.fetch_add(1, Ordering::Relaxed);
                }
                match committed {
                    Ok(commit) => {
                        self.publish().await?;
                        return Ok(WriteOutcome {
                            revision: Some(commit),
                            committed: true,
                        });
                    }
                    Err(git_backend::Error::RefMoved { .. }) => {
                        // A commit made on disk by another program: plan again on it.
                        b.refresh_refs().await?;
                        self.publish().await?;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            let commit = b.create_commit(commit_request).await?;
            self.inner.metrics.commits.fetch_add(1, Ordering::Relaxed);
            self.set_status(|s| s.phase = Phase::Syncing);
            match self
                .push_branch(&remote, request.branch, commit, expected)
                .await
            {
                Ok(()) => {
                    self.set_status(|s| s.phase = Phase::Ready);
                    return Ok(WriteOutcome {
                        revision: Some(commit),
                        committed: true,
                    });
                }
                Err(SyncError::Aborted { .. }) => {
                    self.inner
                        .metrics
                        .push_replays
                        .fetch_add(1, Ordering::Relaxed);
                    debug!(
                        attempt,
                        "the remote moved; fetching and applying the write again"
                    );
                    // Nothing was sent: a failed fetch is the write's failure.
                    self.fetch_now().await?;
                    if attempt + 1 < attempts {
                        let backoff = Duration::from_millis(20 * (1 << attempt.min(5)));
                        tokio::time::sleep(jittered(backoff)).await;
                    }
                }
                Err(e) => {
                    self.set_status(|s| s.phase = Phase::Ready);
                    return self
                        .landed_or(e, &remote, request.branch, commit, expected)
                        .await;
                }
            }
        }
        self.set_status(|s| s.phase = Phase::Ready);
        Err(SyncError::Unavailable(format!(
            "the remote kept moving: the write was tried {attempts} times on new commits; retry"
        )))
    }

    /// After a failed push: if the remote has our commit after all, the write landed and is
    /// acknowledged (the references are moved); otherwise the error stands, and nothing local
    /// changed (references move only after the remote accepted).
    async fn landed_or(
        &self,
        error: SyncError,
        remote: &git_backend::Remote,
        branch: &str,
        commit: ObjectId,
        expected: Option<ObjectId>,
    ) -> Result<WriteOutcome> {
        let Ok(refs) = self.inner.backend.ls_remote(remote).await else {
            return Err(error);
        };
        let name = format!("refs/heads/{branch}");
        if refs
            .iter()
            .any(|r| r.name.as_str() == name && r.target == commit)
        {
            info!(storage = %self.id(), %commit, "the push reported an error but the remote has the commit");
            self.inner.metrics.pushes_ok.fetch_add(1, Ordering::Relaxed);
            self.after_push(branch, commit, expected).await?;
            return Ok(WriteOutcome {
                revision: Some(commit),
                committed: true,
            });
        }
        Err(error)
    }

    async fn current_head(&self, branch: &str) -> Result<Option<ObjectId>> {
        Ok(self.inner.backend.resolve(&self.tracking(branch)?).await?)
    }

    /// [`Self::current_head`] read from the backend's references state, without a call to
    /// the backend (a round trip to a blocking thread: ~0.1 ms of a write's ~1.7 ms, W1 in
    /// BENCHMARKS.md). With a remote, only this storage moves the remote-tracking reference,
    /// through the backend, so the state is current. Without one, another program's commit
    /// may not be observed yet: the write's compare-and-swap then fails, and the write
    /// re-reads the references and is planned again on that commit. `None` is worth asking
    /// the backend about.
    fn known_head(&self, branch: &str) -> Result<Option<ObjectId>> {
        Ok(self.known_ref(&self.tracking(branch)?))
    }

    /// A reference as the backend's references state has it (no call to the backend).
    fn known_ref(&self, name: &RefName) -> Option<ObjectId> {
        self.inner
            .backend
            .subscribe()
            .borrow()
            .refs
            .get(name)
            .copied()
    }

    // ------------------------------------------------------------------------------ branches

    /// Creates `branch` (a branch environment's `flipt/<env>/<name>`) at the served head of
    /// `base`: pushed expecting it absent, then tracked. `AlreadyExists` if it exists.
    pub async fn create_branch(&self, base: &str, branch: &str) -> Result<ObjectId> {
        let _serialised = self.inner.write_lock.lock().await;
        let head = self
            .current_head(base)
            .await?
            .ok_or_else(|| SyncError::NotFound(format!("branch `{base}` has no commits")))?;
        let b = &self.inner.backend;
        if self.current_head(branch).await?.is_some() {
            return Err(SyncError::AlreadyExists(format!(
                "branch `{branch}` exists already"
            )));
        }
        match self.inner.opts.remote.clone() {
            Some(remote) => match self.push_branch(&remote, branch, head, None).await {
                Ok(()) => {}
                Err(SyncError::Aborted { .. }) => {
                    return Err(SyncError::AlreadyExists(format!(
                        "branch `{branch}` exists on the remote"
                    )));
                }
                Err(e) => return Err(e),
            },
            None => {
                b.update_ref(RefUpdate {
                    name: RefName::branch(branch)?,
                    new: Some(head),
                    expected: Expected::Absent,
                    message: "branch".into(),
                })
                .await
                .map_err(|e| match e {
                    git_backend::Error::RefMoved { .. } => {
                        SyncError::AlreadyExists(format!("branch `{branch}` exists already"))
                    }
                    e => e.into(),
                })?;
                self.publish().await?;
            }
        }
        Ok(head)
    }

    /// Deletes `branch`: the remote's copy is deleted expecting its current value, then the
    /// local references. `NotFound` if it does not exist.
    pub async fn delete_branch(&self, branch: &str) -> Result<()> {
        let _serialised = self.inner.write_lock.lock().await;
        let b = &self.inner.backend;
        let current = self
            .current_head(branch)
            .await?
            .ok_or_else(|| SyncError::NotFound(format!("branch `{branch}` does not exist")))?;
        if let Some(remote) = self.inner.opts.remote.clone() {
            b.push(
                &remote,
                PushUpdate {
                    local: None,
                    remote_ref: RefName::branch(branch)?,
                    expected: Expected::Value(current),
                },
            )
            .await
            .map_err(|e| match e {
                git_backend::Error::RemoteMoved { .. } => SyncError::Aborted {
                    message: format!("branch `{branch}` moved on the remote"),
                    head: None,
                },
                e => e.into(),
            })?;
            b.update_ref(RefUpdate {
                name: self.tracking(branch)?,
                new: None,
                expected: Expected::Any,
                message: "delete branch".into(),
            })
            .await?;
        }
        b.update_ref(RefUpdate {
            name: RefName::branch(branch)?,
            new: None,
            expected: Expected::Any,
            message: "delete branch".into(),
        })
        .await?;
        self.publish().await?;
        Ok(())
    }
}
