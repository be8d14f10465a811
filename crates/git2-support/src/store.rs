//! [`Store`]: a git2 repository behind the [`GitBackend`] trait, on disk or with its new
//! objects in memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockWriteGuard, TryLockError, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use git_backend::*;
use git2::Repository;
use tokio::sync::watch;

use crate::convert::{git_oid, local_error};
use crate::{ops, transport};

/// Called after a reference update succeeded, with the old and new values (e.g. to update a
/// working tree). Runs on the blocking thread of the update.
pub type RefHook =
    Box<dyn Fn(&Repository, &RefName, Option<ObjectId>, Option<ObjectId>) + Send + Sync>;

/// How new objects are kept.
#[derive(Debug, Clone, Copy)]
pub struct MemoryOptions {
    /// Objects written since the last compaction stay in RAM; once they reach this many bytes
    /// (counted as [`ops::commit_size`] does: blobs, the trees on the changed paths, commits),
    /// or `compact_every` commits, whichever comes first, they are written as one pack and the
    /// in-memory store is reset. Bounds both the RAM they take and the time a compaction
    /// holds up the write that triggers it (it compresses them all).
    pub compact_bytes: usize,
    /// Commits between two compactions at most.
    pub compact_every: usize,
    /// When the scratch location holds more packs than this, the smaller ones are merged into
    /// one (see [`Inner::merge_packs`]).
    pub max_packs: usize,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            compact_bytes: 16 << 20,
            compact_every: 1000,
            max_packs: 32,
        }
    }
}

/// New objects of a memory store: the one handle whose object database has an in-memory
/// backend in front of the scratch repository's packs.
struct MemState {
    repo: Repository,
    since_compaction: usize,
    /// Bytes of the objects written since the last compaction (see
    /// [`MemoryOptions::compact_bytes`]); also counted in [`HELD_BYTES`].
    bytes_since_compaction: u64,
    /// Commits no reference has pointed at yet (a write in flight), kept through compactions
    /// and pack merges while younger than `KEEP_UNREFERENCED`. A reference update to one
    /// removes it: from then on the reference keeps it.
    pending: Vec<(ObjectId, Instant)>,
    /// Commits created since the last compaction: the next one packs their objects. (The
    /// older ones in `pending` are on disk already; walking them again at every compaction
    /// made its cost grow with the number of recent commits.)
    fresh: Vec<ObjectId>,
    /// Reference targets and fresh commits at the last compaction: they and their history
    /// are on disk.
    on_disk: Vec<ObjectId>,
    options: MemoryOptions,
}

impl Drop for MemState {
    fn drop(&mut self) {
        HELD_BYTES.fetch_sub(self.bytes_since_compaction, Ordering::Relaxed);
    }
}

/// Bytes of objects held in RAM by every memory store of the process.
static HELD_BYTES: AtomicU64 = AtomicU64::new(0);
/// Compactions and pack merges of every memory store of the process.
static COMPACTIONS: AtomicU64 = AtomicU64::new(0);
static PACK_MERGES: AtomicU64 = AtomicU64::new(0);
/// Pack merges running on threads of their own, all stores together.
static MERGES_RUNNING: AtomicU64 = AtomicU64::new(0);

/// Waits until no memory store of the process runs a pack merge, at most `timeout`; returns
/// whether none runs. For shutdown: a merge keeps its store's scratch directory until it ends,
/// so a process that exits during one leaves the directory behind (removed by the next
/// start). Blocking.
pub fn wait_for_pack_merges(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while MERGES_RUNNING.load(Ordering::Acquire) > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// What the memory stores of the process hold and have done, all stores together (for
/// metrics: a server may serve several memory environments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes of objects held in RAM, not yet written to a pack.
    pub held_bytes: u64,
    /// Compactions so far (objects held in RAM written as one pack).
    pub compactions: u64,
    /// Pack merges so far (the smaller packs of a scratch location replaced by one).
    pub pack_merges: u64,
}

/// The counters of [`MemoryStats`].
pub fn memory_stats() -> MemoryStats {
    MemoryStats {
        held_bytes: HELD_BYTES.load(Ordering::Relaxed),
        compactions: COMPACTIONS.load(Ordering::Relaxed),
        pack_merges: PACK_MERGES.load(Ordering::Relaxed),
    }
}

/// How long a commit that no reference points at is kept through compactions.
const KEEP_UNREFERENCED: Duration = Duration::from_secs(120);
/// Compactions of at least this many bytes give freed memory back to the system (a
/// `malloc_trim` walks the whole heap: not worth it for the one commit compacted before a push).
const TRIM_AFTER: u64 = 1 << 20;
/// How long the reference poller lets a burst of wake-ups settle before re-reading again.
const SETTLE: Duration = Duration::from_millis(50);
/// Handles kept open for reuse.
const POOL_SIZE: usize = 8;
/// How long a pack merge waits for the gate before it gives up (the next compaction or
/// network operation that finds too many packs starts another).
const GATE_PATIENCE: Duration = Duration::from_secs(10);

struct Inner {
    kind: &'static str,
    path: PathBuf,
    mem: Option<Mutex<MemState>>,
    pool: Mutex<Vec<Repository>>,
    /// Every operation on a pooled handle holds it shared, from taking the handle to putting
    /// it back; a pack merge takes it exclusively to list the packs, and again to delete the
    /// packs it merged and empty the pool. So no lookup runs while packs are deleted (one that
    /// did could list the directory mid-way, miss the merged pack, and report a missing
    /// object), and no handle that knew the deleted packs is used again. Never taken twice on
    /// one thread: std's `RwLock` blocks a second read while a writer waits.
    gate: RwLock<()>,
    refs: watch::Sender<RefsState>,
    refs_lock: Mutex<()>,
    hook: Option<RefHook>,
    /// One pack merge at a time.
    merge_lock: Mutex<()>,
    /// A merge was started on a thread of its own and has not finished.
    merging: AtomicBool,
    /// What removes the scratch location when dropped (memory stores): last, so that every
    /// handle on the location is closed first, and kept by a merge still running.
    _owner: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// A git2 repository implementing [`GitBackend`]. Cheap to clone (shared state).
///
/// On disk, every operation uses a handle from a small pool, so reads, writes and network
/// operations run in parallel. In memory mode, objects are read and written through one
/// handle whose object database keeps new objects in RAM; before any network operation they
/// are written to the scratch repository as a pack, so that fetches and pushes run on their
/// own handles while reads go on.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("kind", &self.inner.kind)
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves git state that libgit2 itself keeps consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn open_memory_handle(path: &Path) -> Result<Repository> {
    let repo = Repository::open_bare(path)
        .map_err(|e| local_error("failed to open the scratch repository", e))?;
    {
        let odb = repo
            .odb()
            .map_err(|e| local_error("failed to open the object database", e))?;
        // Highest priority: new objects are written here, and found here first. The backend
        // stays registered after these handles are dropped, and goes with the repository.
        odb.add_new_mempack_backend(1000)
            .map_err(|e| local_error("failed to add the in-memory object store", e))?;
    }
    Ok(repo)
}

impl Store {
    /// A store over an existing repository on disk (bare, or the `.git` of a normal one),
    /// with an optional hook run after every reference update.
    pub fn open_disk(kind: &'static str, path: &Path, hook: Option<RefHook>) -> Result<Store> {
        let repo = Repository::open(path).map_err(|e| {
            local_error(
                &format!("failed to open repository at `{}`", path.display()),
                e,
            )
        })?;
        Self::new(kind, path.to_owned(), None, vec![repo], hook, None)
    }

    /// A memory store using `scratch` (an empty directory) as the home libgit2 needs for
    /// fetched packs, references and lock files. `owner` is what removes the directory when
    /// dropped (e.g. its `tempfile::TempDir`): the store keeps it until the store, and any pack
    /// merge it started on a thread of its own, are done with the directory.
    pub fn memory(
        kind: &'static str,
        scratch: &Path,
        options: MemoryOptions,
        owner: impl std::any::Any + Send + Sync,
    ) -> Result<Store> {
        let init = Repository::init_bare(scratch)
            .map_err(|e| local_error("failed to create the scratch repository", e))?;
        // Packs written by compaction store whole objects: libgit2 skips the delta search for
        // objects above the "big file threshold", and that search made compacting 1,000
        // commits of a 63 KB file take ~28 s and grow the heap. Whole objects cost disk in
        // the scratch location, not memory. libgit2 1.9 reads that threshold from
        // `pack.deltaCacheSize` (a typo in its `packbuilder_config`); `pack.bigFileThreshold`
        // is set too, for versions that fix it.
        init.config()
            .and_then(|mut c| {
                c.set_i64("pack.deltaCacheSize", 1)?;
                c.set_i64("pack.bigFileThreshold", 1)
            })
            .map_err(|e| local_error("failed to configure the scratch repository", e))?;
        drop(init);
        let repo = open_memory_handle(scratch)?;
        let mem = MemState {
            repo,
            since_compaction: 0,
            bytes_since_compaction: 0,
            pending: Vec::new(),
            fresh: Vec::new(),
            on_disk: Vec::new(),
            options,
        };
        Self::new(
            kind,
            scratch.to_owned(),
            Some(Mutex::new(mem)),
            Vec::new(),
            None,
            Some(Box::new(owner)),
        )
    }

    fn new(
        kind: &'static str,
        path: PathBuf,
        mem: Option<Mutex<MemState>>,
        pool: Vec<Repository>,
        hook: Option<RefHook>,
        owner: Option<Box<dyn std::any::Any + Send + Sync>>,
    ) -> Result<Store> {
        let (tx, _) = watch::channel(RefsState::default());
        let store = Store {
            inner: Arc::new(Inner {
                kind,
                path,
                mem,
                pool: Mutex::new(pool),
                gate: RwLock::new(()),
                refs: tx,
                refs_lock: Mutex::new(()),
                hook,
                merge_lock: Mutex::new(()),
                merging: AtomicBool::new(false),
                _owner: owner,
            }),
        };
        store.inner.refresh_blocking()?;
        Ok(store)
    }

    /// The repository's git directory (or scratch location).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Starts a thread that re-reads the references every `interval` (and when `wake` is
    /// notified), so that changes made by other programs reach subscribers. It ends when the
    /// store is dropped.
    pub fn spawn_ref_poller(&self, interval: Duration) -> std::sync::mpsc::Sender<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-refs", self.inner.kind))
            .spawn(move || {
                loop {
                    match rx.recv_timeout(interval) {
                        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                    let Some(inner) = weak.upgrade() else { return };
                    if let Err(e) = inner.refresh_blocking() {
                        tracing::warn!(error = %e, "failed to re-read references");
                    }
                    drop(inner);
                    // Wake-ups come in bursts (every reference update, ours included, is a
                    // filesystem event): let them settle and re-read once for the whole burst,
                    // so that a stream of writes does not cost a re-read each.
                    std::thread::sleep(SETTLE);
                    let mut woken = false;
                    while rx.try_recv().is_ok() {
                        woken = true;
                    }
                    if woken {
                        let Some(inner) = weak.upgrade() else { return };
                        if let Err(e) = inner.refresh_blocking() {
                            tracing::warn!(error = %e, "failed to re-read references");
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "failed to start the reference poller; external changes are seen on refresh only");
        }
        tx
    }

    /// Waits until no pack merge runs (merges run on a thread of their own, started by the
    /// write or network operation that found too many packs).
    pub async fn wait_for_merges(&self) -> Result<()> {
        let inner = self.inner.clone();
        blocking(move || {
            inner.wait_for_merges();
            Ok(())
        })
        .await
    }

    /// Writes the objects held in memory to the scratch location now, and merges packs if
    /// there are too many (memory stores only), waiting for a merge in flight first.
    pub async fn compact(&self) -> Result<()> {
        let inner = self.inner.clone();
        blocking(move || inner.compact_now()).await
    }

    async fn with_objects<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Repository) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        blocking(move || inner.with_objects(f)).await
    }

    async fn with_network<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Repository) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        blocking(move || inner.with_network(f)).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("a blocking git task failed: {e}")))?
}

impl Inner {
    /// Runs `f` on a pooled handle, holding the gate shared (see [`Inner::gate`]): `f` must not
    /// take a pooled handle itself.
    fn with_pooled<T>(&self, f: impl FnOnce(&Repository) -> Result<T>) -> Result<T> {
        let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let repo = lock(&self.pool).pop();
        let repo = match repo {
            Some(r) => r,
            None => Repository::open(&self.path)
                .map_err(|e| local_error("failed to open the repository", e))?,
        };
        let result = f(&repo);
        let mut pool = lock(&self.pool);
        if pool.len() < POOL_SIZE {
            pool.push(repo);
        }
        result
    }

    /// Runs `f` on a handle that sees every object. A memory store's one handle is needed only
    /// while it holds objects not yet compacted to disk; otherwise the pooled handles see them
    /// all, so reads run in parallel instead of queueing for that handle (a snapshot rebuild
    /// and a Watch stream's diff after a fetch, say; S1 in BENCHMARKS.md).
    ///
    /// An object a caller names existed when the caller learned its id; if nothing was in
    /// memory at the check, it is on disk, whatever is written meanwhile.
    fn with_objects<T>(&self, f: impl FnOnce(&Repository) -> Result<T>) -> Result<T> {
        if let Some(mem) = &self.mem {
            let st = lock(mem);
            if st.since_compaction > 0 {
                return f(&st.repo);
            }
        }
        self.with_pooled(f)
    }

    /// Runs a network operation on a pooled handle, the objects held in memory compacted to
    /// disk first (a memory store); starts a pack merge if it leaves too many packs.
    fn with_network<T>(self: &Arc<Self>, f: impl FnOnce(&Repository) -> Result<T>) -> Result<T> {
        if self.mem.is_some() && self.compact_if_dirty()? {
            self.merge_soon();
        }
        let out = self.with_pooled(f);
        // Every fetch that downloads something adds a pack. Without commits of its own the
        // store never compacts, so the packs must be merged here too: each object lookup that
        // misses walks all of them, and libgit2 re-lists them when a new one appears (S1 grew
        // with the number of fetches before this).
        if let Some(mem) = &self.mem {
            let max = lock(mem).options.max_packs;
            if self.pack_count() > max {
                self.merge_soon();
            }
        }
        out
    }

    /// A fetch, and the references state brought up to date when it changed something.
    fn fetch_blocking(
        self: &Arc<Self>,
        remote: &Remote,
        refspecs: &[String],
        prune: bool,
    ) -> Result<Vec<RefChange>> {
        let changes = self.with_network(|r| transport::fetch(r, remote, refspecs, prune))?;
        // After the handle went back: re-reading takes a pooled handle of its own. Every
        // reference is re-read, not only the fetch's changes put in the state: the sync that
        // follows must see commits other programs made meanwhile too (putting in just the
        // changes was measured to fail remote-sync's fault tests of local commits).
        if !changes.is_empty() {
            self.refresh_blocking()?;
        }
        Ok(changes)
    }

    /// [`GitBackend::fast_forward`]: the check and the move on this thread.
    fn fast_forward_blocking(
        &self,
        name: RefName,
        from: ObjectId,
        to: ObjectId,
        message: String,
    ) -> Result<bool> {
        let ahead = self.with_objects(|r| ops::is_ancestor(r, from, to))?;
        if ahead {
            self.update_ref_blocking(&RefUpdate {
                name,
                new: Some(to),
                expected: Expected::Value(from),
                message,
            })?;
        }
        Ok(ahead)
    }

    fn create_commit_blocking(self: &Arc<Self>, request: &CommitRequest) -> Result<ObjectId> {
        let Some(mem) = &self.mem else {
            return self.with_pooled(|r| ops::create_commit(r, request));
        };
        let mut st = lock(mem);
        let id = ops::create_commit(&st.repo, request)?;
        let bytes = ops::commit_size(&st.repo, id, request);
        st.pending.push((id, Instant::now()));
        st.fresh.push(id);
        st.since_compaction += 1;
        st.bytes_since_compaction += bytes;
        HELD_BYTES.fetch_add(bytes, Ordering::Relaxed);
        let full = st.since_compaction >= st.options.compact_every
            || st.bytes_since_compaction >= st.options.compact_bytes as u64;
        let merge = full && self.compact_locked(&mut st)?;
        drop(st);
        if merge {
            self.merge_soon();
        }
        Ok(id)
    }

    /// Moves a reference, runs the hook, and puts the change in the references state.
    ///
    /// One update at a time in this process: concurrent writers queue on this lock instead of
    /// on the reference's lock file (whose wait is bounded, meant for other programs: under
    /// load, writers of this process could exceed it and fail), and the state takes the
    /// changes in the order they were made. The state gets this change only; other programs'
    /// changes are read by the poller or [`GitBackend::refresh_refs`] (re-reading every
    /// reference here cost ~45 us of a ~1.7 ms write, W1 in BENCHMARKS.md).
    fn update_ref_blocking(&self, update: &RefUpdate) -> Result<()> {
        let _one_at_a_time = lock(&self.refs_lock);
        self.with_objects(|r| {
            let old = ops::resolve(r, &update.name)?;
            ops::update_ref(r, update)?;
            if let Some(hook) = &self.hook {
                hook(r, &update.name, old, update.new);
            }
            Ok(())
        })?;
        if let (Some(mem), Some(new)) = (&self.mem, update.new) {
            lock(mem).pending.retain(|(id, _)| *id != new);
        }
        self.refs.send_if_modified(|state| {
            let changed = match update.new {
                Some(new) => state.refs.insert(update.name.clone(), new) != Some(new),
                None => state.refs.remove(&update.name).is_some(),
            };
            if changed {
                state.version += 1;
            }
            changed
        });
        Ok(())
    }

    fn refresh_blocking(&self) -> Result<RefsState> {
        let _one_at_a_time = lock(&self.refs_lock);
        let refs = self.with_objects(ops::all_refs)?;
        let mut changed = false;
        self.refs.send_if_modified(|state| {
            if state.refs != refs {
                state.refs = refs;
                state.version += 1;
                changed = true;
            }
            changed
        });
        Ok(self.refs.borrow().clone())
    }

    /// Compacts when objects are held in memory; returns whether packs should be merged.
    fn compact_if_dirty(&self) -> Result<bool> {
        let Some(mem) = &self.mem else {
            return Ok(false);
        };
        let mut st = lock(mem);
        if st.since_compaction > 0 {
            self.compact_locked(&mut st)
        } else {
            Ok(false)
        }
    }

    fn compact_now(&self) -> Result<()> {
        let Some(mem) = &self.mem else { return Ok(()) };
        self.wait_for_merges();
        let merge = self.compact_locked(&mut lock(mem))?;
        if merge {
            self.merge_packs()?;
        }
        Ok(())
    }

    /// Starts a pack merge on a thread of its own, unless one runs already (the packs it
    /// leaves are merged after a later compaction). The write or network operation that
    /// found too many packs does not wait for it: the largest merges rewrite most of the
    /// history.
    fn merge_soon(self: &Arc<Self>) {
        if self.merging.swap(true, Ordering::AcqRel) {
            return;
        }
        /// Clears `merging` however the merge ends (a panic included).
        struct Done(Arc<Inner>);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.merging.store(false, Ordering::Release);
                MERGES_RUNNING.fetch_sub(1, Ordering::AcqRel);
            }
        }
        MERGES_RUNNING.fetch_add(1, Ordering::AcqRel);
        let done = Done(self.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("{}-merge", self.kind))
            .spawn(move || {
                let started = Instant::now();
                match done.0.merge_packs() {
                    Ok(()) => {
                        tracing::debug!(ms = started.elapsed().as_millis() as u64, "merged packs")
                    }
                    Err(e) => tracing::warn!(
                        error = %e,
                        "failed to merge packs; the next compaction tries again"
                    ),
                }
                drop(done);
            });
        if let Err(e) = spawned {
            // `done` went with the closure, and cleared the flag.
            tracing::warn!(error = %e, "failed to start a pack merge; the next compaction tries again");
        }
    }

    /// The gate, exclusively, for a pack merge; `None` if operations on pooled handles kept it
    /// for [`GATE_PATIENCE`]. Polls instead of waiting in `write()`: std's `RwLock` makes new
    /// readers queue behind a waiting writer, and a fetch or push over the network holds the
    /// gate shared for as long as it takes (seconds), so a merge waiting in `write()` would
    /// stall every read on a pooled handle meanwhile.
    fn gate_for_merge(&self) -> Option<RwLockWriteGuard<'_, ()>> {
        let deadline = Instant::now() + GATE_PATIENCE;
        let mut pause = Duration::from_micros(100);
        loop {
            match self.gate.try_write() {
                Ok(g) => return Some(g),
                Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(5));
                }
                Err(TryLockError::WouldBlock) => return None,
            }
        }
    }

    fn wait_for_merges(&self) {
        while self.merging.load(Ordering::Acquire) {
            drop(lock(&self.merge_lock));
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Writes the in-memory objects reachable from the references (and from recent
    /// unreferenced commits) as one pack, then resets the in-memory store by replacing the
    /// handle. Unreachable objects are left out.
    /// Returns whether the scratch location now holds more packs than allowed (merge them
    /// with [`Inner::merge_packs`] once the memory lock is released).
    fn compact_locked(&self, st: &mut MemState) -> Result<bool> {
        let pack_dir = self.path.join("objects").join("pack");
        st.pending
            .retain(|(_, at)| at.elapsed() < KEEP_UNREFERENCED);
        let roots: Vec<ObjectId> = {
            let repo = &st.repo;
            let refs = ops::all_refs(repo)?;
            let roots: Vec<ObjectId> = refs.values().copied().chain(st.fresh.drain(..)).collect();
            let mut walk = repo
                .revwalk()
                .map_err(|e| local_error("failed to walk history", e))?;
            for id in &roots {
                walk.push(git_oid(*id))
                    .map_err(|e| local_error("failed to walk history", e))?;
            }
            for id in &st.on_disk {
                let _ = walk.hide(git_oid(*id));
            }
            let mut pb = repo
                .packbuilder()
                .map_err(|e| local_error("failed to start a pack", e))?;
            pb.insert_walk(&mut walk)
                .map_err(|e| local_error("failed to collect objects for a pack", e))?;
            if pb.object_count() > 0 {
                pb.write(&pack_dir, 0o644)
                    .map_err(|e| local_error("failed to write a pack", e))?;
            }
            roots
        };
        st.on_disk = roots;
        st.repo = open_memory_handle(&self.path)?;
        st.since_compaction = 0;
        let bytes = std::mem::take(&mut st.bytes_since_compaction);
        HELD_BYTES.fetch_sub(bytes, Ordering::Relaxed);
        COMPACTIONS.fetch_add(1, Ordering::Relaxed);
        if bytes >= TRIM_AFTER {
            crate::global::release_free_memory();
        }
        Ok(self.pack_count() > st.options.max_packs)
    }

    /// Packs in the scratch location.
    fn pack_count(&self) -> usize {
        self.packs().map_or(0, |p| p.len())
    }

    /// The `.pack` files of the scratch location, with their sizes.
    fn packs(&self) -> Result<Vec<(u64, PathBuf)>> {
        Ok(std::fs::read_dir(self.path.join("objects").join("pack"))
            .map_err(|e| Error::storage("failed to list packs", e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
            .map(|e| (e.metadata().map_or(0, |m| m.len()), e.path()))
            .collect())
    }

    /// Merges the smaller packs of the scratch location into one, geometrically: smallest
    /// first, the two smallest and then each next one while it is at most twice the size of
    /// those taken before it. A pack is rewritten only once the packs merged with it add up to
    /// half its size, so each object is rewritten a logarithmic number of times over the
    /// history. (Every merge used to rewrite the whole history; with a remote, where every
    /// push compacts its one commit into a pack of its own, that was every 32 writes.)
    /// The objects are taken from the packs' indexes, reachable or not: compactions pack only
    /// reachable objects and recent unreferenced commits, so there is little to collect.
    ///
    /// One merge at a time (`merge_lock`). The pack is built with no other lock held: only a
    /// merge deletes packs, so the packs it reads stay. Then, in this order, the gate
    /// (exclusive: nothing runs on a pooled handle while packs are deleted, and the pool is
    /// emptied before anything does again) and the memory lock, both briefly.
    fn merge_packs(&self) -> Result<()> {
        let Some(mem) = &self.mem else { return Ok(()) };
        let _one_at_a_time = lock(&self.merge_lock);
        let pack_dir = self.path.join("objects").join("pack");
        // Listed while no compaction (memory lock) and no fetch (gate) writes a pack: every
        // pack listed is complete, its index included.
        let postponed = || {
            tracing::debug!(
                "pack merge postponed: operations on pooled handles kept the gate busy"
            );
            Ok(())
        };
        let mut packs = {
            let Some(_exclusive) = self.gate_for_merge() else {
                return postponed();
            };
            let _st = lock(mem);
            self.packs()?
        };
        if packs.len() < 2 {
            return Ok(());
        }
        packs.sort();
        let mut take = 2;
        let mut sum = packs[0].0 + packs[1].0;
        while take < packs.len() && packs[take].0 <= 2 * sum {
            sum += packs[take].0;
            take += 1;
        }
        let rolled: Vec<PathBuf> = packs.into_iter().take(take).map(|(_, p)| p).collect();
        let tmp = self.path.join("objects").join("pack-merge");
        {
            // A plain handle sees every pack; the objects still in memory are not in them,
            // and are compacted into a pack of their own below, which is not deleted.
            let repo = Repository::open_bare(&self.path)
                .map_err(|e| local_error("failed to open the scratch repository", e))?;
            let mut pb = repo
                .packbuilder()
                .map_err(|e| local_error("failed to start a pack", e))?;
            for pack in &rolled {
                for id in pack_index_ids(&pack.with_extension("idx"))? {
                    pb.insert_object(id, None)
                        .map_err(|e| local_error("failed to collect objects for a pack", e))?;
                }
            }
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp)
                .map_err(|e| Error::storage("failed to create a directory for merging packs", e))?;
            pb.write(&tmp, 0o644)
                .map_err(|e| local_error("failed to write the merged pack", e))?;
        }
        let Some(_exclusive) = self.gate_for_merge() else {
            let _ = std::fs::remove_dir_all(&tmp);
            return postponed();
        };
        let mut st = lock(mem);
        // Commits made while the pack was built go to disk first (in a pack not in `old`).
        if st.since_compaction > 0 {
            self.compact_locked(&mut st)?;
        }
        let mut merged = Vec::new();
        for entry in std::fs::read_dir(&tmp)
            .map_err(|e| Error::storage("failed to read the merged pack", e))?
            .flatten()
        {
            std::fs::rename(entry.path(), pack_dir.join(entry.file_name()))
                .map_err(|e| Error::storage("failed to move the merged pack", e))?;
            merged.push(entry.file_name());
        }
        let _ = std::fs::remove_dir_all(&tmp);
        // Every file of a merged pack (`.pack`, `.idx`, ...). The new pack is named after its
        // content, so it may have the name of a merged one holding the same objects: never
        // delete it.
        let stems: Vec<_> = rolled.iter().filter_map(|p| p.file_stem()).collect();
        let old = std::fs::read_dir(&pack_dir)
            .map_err(|e| Error::storage("failed to list packs", e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_stem().is_some_and(|s| stems.contains(&s)))
            .filter(|p| p.file_name().is_none_or(|n| !merged.iter().any(|m| m == n)));
        for p in old {
            let _ = std::fs::remove_file(p);
        }
        st.repo = open_memory_handle(&self.path)?;
        drop(st);
        lock(&self.pool).clear();
        PACK_MERGES.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The object ids in a pack index of version 2, the format libgit2 and git write: a magic
/// number and the version, 256 cumulative counts by first byte (the last is the number of
/// objects), then the sorted ids, 20 bytes each.
fn pack_index_ids(path: &Path) -> Result<Vec<git2::Oid>> {
    let data = std::fs::read(path).map_err(|e| Error::storage("failed to read a pack index", e))?;
    let bad = || {
        Error::Internal(format!(
            "`{}` is not a version-2 pack index",
            path.display()
        ))
    };
    if data.get(..8) != Some(&[0xff, b't', b'O', b'c', 0, 0, 0, 2][..]) {
        return Err(bad());
    }
    let count = data
        .get(8 + 255 * 4..8 + 256 * 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(bad)? as usize;
    let first = 8 + 256 * 4;
    let ids = data.get(first..first + 20 * count).ok_or_else(bad)?;
    ids.chunks_exact(20)
        .map(|id| git2::Oid::from_bytes(id).map_err(|_| bad()))
        .collect()
}

#[async_trait]
impl GitBackend for Store {
    fn kind(&self) -> &'static str {
        self.inner.kind
    }

    async fn resolve(&self, name: &RefName) -> Result<Option<ObjectId>> {
        let name = name.clone();
        self.with_objects(move |r| ops::resolve(r, &name)).await
    }

    async fn list_refs(&self, prefix: &str) -> Result<Vec<Ref>> {
        let prefix = prefix.to_owned();
        self.with_objects(move |r| {
            Ok(ops::all_refs(r)?
                .into_iter()
                .filter(|(n, _)| n.as_str().starts_with(&prefix))
                .map(|(name, target)| Ref { name, target })
                .collect())
        })
        .await
    }

    async fn update_ref(&self, update: RefUpdate) -> Result<()> {
        let inner = self.inner.clone();
        blocking(move || inner.update_ref_blocking(&update)).await
    }

    fn subscribe(&self) -> watch::Receiver<RefsState> {
        self.inner.refs.subscribe()
    }

    async fn refresh_refs(&self) -> Result<RefsState> {
        let inner = self.inner.clone();
        blocking(move || inner.refresh_blocking()).await
    }

    async fn commit_info(&self, id: ObjectId) -> Result<CommitInfo> {
        self.with_objects(move |r| ops::commit_info(r, id)).await
    }

    async fn read_blob(&self, id: ObjectId) -> Result<Vec<u8>> {
        self.with_objects(move |r| ops::read_blob(r, id)).await
    }

    async fn read_file(&self, commit: ObjectId, path: &RepoPath) -> Result<Option<FileBlob>> {
        let path = path.clone();
        self.with_objects(move |r| ops::read_file(r, commit, &path))
            .await
    }

    async fn list_tree(
        &self,
        commit: ObjectId,
        dir: Option<&RepoPath>,
        recursive: bool,
    ) -> Result<Vec<TreeEntry>> {
        let dir = dir.cloned();
        self.with_objects(move |r| ops::list_tree(r, commit, dir.as_ref(), recursive))
            .await
    }

    async fn diff(&self, from: Option<ObjectId>, to: ObjectId) -> Result<Vec<DiffEntry>> {
        self.with_objects(move |r| ops::diff(r, from, to)).await
    }

    async fn log(&self, from: ObjectId, options: LogOptions) -> Result<Vec<CommitInfo>> {
        self.with_objects(move |r| ops::log(r, from, &options))
            .await
    }

    async fn is_ancestor(&self, ancestor: ObjectId, descendant: ObjectId) -> Result<bool> {
        self.with_objects(move |r| ops::is_ancestor(r, ancestor, descendant))
            .await
    }

    async fn changed_paths(&self, from: ObjectId, to: ObjectId) -> Result<Vec<String>> {
        // In one round trip to a blocking thread, on one handle (which, after a fetch, finds
        // the new pack once).
        self.with_objects(move |r| ops::changed_paths(r, from, to))
            .await
    }

    async fn fast_forward(
        &self,
        name: RefName,
        from: ObjectId,
        to: ObjectId,
        message: String,
    ) -> Result<bool> {
        let inner = self.inner.clone();
        // The check and the move in one round trip to a blocking thread.
        blocking(move || inner.fast_forward_blocking(name, from, to, message)).await
    }

    async fn create_commit(&self, request: CommitRequest) -> Result<ObjectId> {
        let inner = self.inner.clone();
        blocking(move || inner.create_commit_blocking(&request)).await
    }

    async fn commit_to(
        &self,
        request: CommitRequest,
        name: RefName,
        expected: Expected,
        message: String,
    ) -> Result<ObjectId> {
        let inner = self.inner.clone();
        // Both in one round trip to a blocking thread.
        blocking(move || {
            let id = inner.create_commit_blocking(&request)?;
            inner.update_ref_blocking(&RefUpdate {
                name,
                new: Some(id),
                expected,
                message,
            })?;
            Ok(id)
        })
        .await
    }

    async fn ls_remote(&self, remote: &Remote) -> Result<Vec<Ref>> {
        let remote = remote.clone();
        self.with_network(move |r| transport::ls_remote(r, &remote))
            .await
    }

    async fn fetch(
        &self,
        remote: &Remote,
        refspecs: &[String],
        prune: bool,
    ) -> Result<Vec<RefChange>> {
        let remote = remote.clone();
        let refspecs = refspecs.to_vec();
        let inner = self.inner.clone();
        blocking(move || inner.fetch_blocking(&remote, &refspecs, prune)).await
    }

    async fn fetch_and_follow(
        &self,
        remote: &Remote,
        refspecs: &[String],
        prune: bool,
        follow: Follow,
    ) -> Result<Fetched> {
        let remote = remote.clone();
        let refspecs = refspecs.to_vec();
        let inner = self.inner.clone();
        // In one round trip to a blocking thread: a sync's Refresh no longer waits for a
        // second one before the new head is served (S1 in BENCHMARKS.md).
        blocking(move || {
            let changes = inner.fetch_blocking(&remote, &refspecs, prune)?;
            let pending = follow.pending(&inner.refs.borrow());
            let followed = match pending {
                Some((from, to)) => matches!(
                    inner.fast_forward_blocking(follow.local, from, to, follow.message),
                    Ok(true)
                ),
                None => false,
            };
            Ok(Fetched { changes, followed })
        })
        .await
    }

    async fn push(&self, remote: &Remote, update: PushUpdate) -> Result<()> {
        let remote = remote.clone();
        if self.inner.mem.is_some() && remote.url.starts_with("file://") {
            // A local remote: push from the handle that holds the new objects. The push takes
            // milliseconds, so holding that handle meanwhile costs less than writing the
            // objects as a pack and reopening the handle first, which network pushes need
            // because they run on handles of their own (W2-file in BENCHMARKS.md).
            let inner = self.inner.clone();
            return blocking(move || inner.with_objects(|r| transport::push(r, &remote, &update)))
                .await;
        }
        self.with_network(move |r| transport::push(r, &remote, &update))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig() -> Signature {
        Signature {
            name: "t".into(),
            email: "t@example.com".into(),
            time: None,
        }
    }

    /// A merge that waits for the gate while a long operation (a fetch over the network, say)
    /// holds it shared must not make the reads that come meanwhile wait for that operation.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_merge_waiting_for_the_gate_does_not_hold_up_reads() {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().to_owned();
        let options = MemoryOptions {
            compact_every: 1,
            // No merge starts by itself: the test starts the one it watches.
            max_packs: 1000,
            ..Default::default()
        };
        let store = Store::memory("memory", &path, options, scratch).unwrap();
        let main = RefName::branch("main").unwrap();
        let mut head = None;
        for i in 0..3 {
            let request = CommitRequest {
                parent: head,
                changes: vec![Change::Put {
                    path: RepoPath::new(format!("f{i}")).unwrap(),
                    content: vec![b'x'; 10],
                }],
                message: format!("{i}"),
                author: sig(),
                committer: sig(),
            };
            let id = store
                .commit_to(
                    request,
                    main.clone(),
                    Expected::from_option(head),
                    "t".into(),
                )
                .await
                .unwrap();
            head = Some(id);
        }
        assert!(
            store.inner.pack_count() >= 3,
            "one pack per compacted commit"
        );

        // A long operation on a pooled handle, holding the gate shared.
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let inner = store.inner.clone();
        let long = std::thread::spawn(move || {
            inner.with_pooled(|_| {
                held_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(1500));
                Ok(())
            })
        });
        held_rx.recv().unwrap();
        let inner = store.inner.clone();
        let merge = std::thread::spawn(move || inner.merge_packs());
        std::thread::sleep(Duration::from_millis(100));

        let started = Instant::now();
        assert_eq!(store.resolve(&main).await.unwrap(), head);
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_millis(700),
            "a read waited {waited:?}: it queued behind the merge"
        );

        long.join().unwrap().unwrap();
        merge.join().unwrap().unwrap();
        assert_eq!(
            store.inner.pack_count(),
            1,
            "the merge ran once the gate was free"
        );
        assert_eq!(store.resolve(&main).await.unwrap(), head);
    }
}
