//! The `local` storage backend: a git repository on disk, bare or normal, that survives
//! restarts and picks up commits made to it by other tools.
//!
//! Opening follows BEHAVIOUR §2: a missing or empty directory gets a new bare repository; an
//! existing repository (bare, or normal with `.git`) is served as it is; a non-empty
//! directory that is not a repository is refused and nothing is written to it; a repository
//! that has commits but not the configured branch is refused with the list of its branches.
//! Changes made by other programs (a `git commit`, a `git push` into it) reach
//! [`GitBackend::subscribe`] subscribers at once through filesystem notifications (inotify),
//! and within `poll_interval` (2 s) through a periodic check that always runs. In a normal repository whose `HEAD`
//! is on the served branch, reference updates also update the index and working tree for the
//! paths that changed, where both still match the previous commit, as `git checkout` would.
//!
//! Depends only on `git-backend` and the shared `git2-support`; never on another backend.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use git_backend::{GitBackend, GitBackendExt, Signature};
//! use git_backend_local::{LocalBackend, LocalOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let backend = LocalBackend::open(LocalOptions::new(dir.path().join("flags"), "main")).unwrap();
//! let head = backend.seed_branch("main", &Signature::now("flipt", "flipt@example.com")).await.unwrap();
//! assert_eq!(backend.commit_info(head).await.unwrap().message, "add initial README");
//! # }
//! ```

mod open;
mod worktree;

use std::path::{Path, PathBuf};
use std::time::Duration;

use git2_support::Store;

pub use git_backend::{Error, GitBackend, Result};

/// How to open a local repository.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The repository's directory (for a normal repository, the one holding `.git`).
    pub path: PathBuf,
    /// The branch that will be served.
    pub branch: String,
    /// Accept a repository that has commits but not `branch` (when a remote will provide
    /// it). Without this, such a repository is refused.
    pub allow_missing_branch: bool,
    /// How often references are re-read to notice changes made by other programs.
    pub poll_interval: Duration,
}

impl LocalOptions {
    /// Options for `path` and `branch`, with the defaults.
    pub fn new(path: impl Into<PathBuf>, branch: impl Into<String>) -> Self {
        LocalOptions {
            path: path.into(),
            branch: branch.into(),
            allow_missing_branch: false,
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// A git repository on disk.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    store: Store,
    path: PathBuf,
    bare: bool,
    /// Dropping the last clone stops the reference poller and the filesystem watcher.
    _watch: std::sync::Arc<RefWatch>,
}

git2_support::delegate_git_backend!(LocalBackend, store);

/// What keeps reference changes flowing: the poller's wake-up channel and, where the platform
/// has them, filesystem notifications that wake it at once.
#[derive(Debug)]
struct RefWatch {
    _poller: std::sync::mpsc::Sender<()>,
    _watcher: Option<notify::RecommendedWatcher>,
}

/// Watches `refs/` and the git directory (`packed-refs`, `HEAD`); every event wakes the
/// poller. `None` (a warning is logged) where notifications are not available: the periodic
/// check still runs.
fn watch_refs(
    gitdir: &Path,
    wake: std::sync::mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            // Only changes: the poller's own reading of `refs/` makes open and close events,
            // which would wake it again at once, for ever (a core spent while idle).
            use notify::event::{AccessKind, AccessMode, EventKind};
            let change = |kind: &EventKind| match kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                EventKind::Access(_) => false,
                _ => true,
            };
            if event.is_ok_and(|e| change(&e.kind)) {
                let _ = wake.send(());
            }
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "filesystem notifications are not available; commits made by other programs are noticed by the periodic check");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&gitdir.join("refs"), notify::RecursiveMode::Recursive) {
        tracing::warn!(error = %e, "cannot watch the repository's references; relying on the periodic check");
        return None;
    }
    let _ = watcher.watch(gitdir, notify::RecursiveMode::NonRecursive);
    Some(watcher)
}

impl LocalBackend {
    /// Opens (or creates) the repository as BEHAVIOUR §2 says. Blocking: call it from a
    /// blocking context or at start-up.
    pub fn open(options: LocalOptions) -> Result<LocalBackend> {
        let opened = open::open(&options)?;
        let hook = (!opened.bare).then(|| worktree::hook(options.branch.clone()));
        let store = Store::open_disk("local", &opened.path, hook)?;
        let poller = store.spawn_ref_poller(options.poll_interval);
        let gitdir = if opened.bare {
            opened.path.clone()
        } else {
            opened.path.join(".git")
        };
        let watcher = watch_refs(&gitdir, poller.clone());
        Ok(LocalBackend {
            store,
            path: opened.path,
            bare: opened.bare,
            _watch: std::sync::Arc::new(RefWatch {
                _poller: poller,
                _watcher: watcher,
            }),
        })
    }

    /// The repository's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the repository is bare (has no working tree).
    pub fn is_bare(&self) -> bool {
        self.bare
    }
}
