//! The `memory` storage backend: an in-process git repository whose state is gone when the
//! process ends.
//!
//! libgit2 still needs a directory for fetched packs, references and lock files, so each
//! backend owns a private scratch directory (under the system's temporary directory, never the
//! working directory) that is removed when the backend is dropped (once a pack merge in
//! flight has ended); the backend works when the working directory is read-only, and many
//! instances can fetch at once. New objects live in RAM (libgit2's mempack). Memory stays
//! bounded under a long stream of writes: once they reach `compact_bytes` (16 MiB by default)
//! or `compact_every` commits (1,000), whichever comes first, and before every fetch or push,
//! the objects held in RAM that are reachable from a reference (or from a commit made in the
//! last minutes) are written as one pack in the scratch directory and the in-memory store is
//! reset; when packs pile up the smaller ones are merged into one, geometrically (see
//! `max_packs`), on a thread of their own. History stays complete.
//!
//! Scratch directories left behind by a process that was killed are removed by the next
//! backend created on the machine.
//!
//! Depends only on `git-backend` and the shared `git2-support`; never on another backend.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use git_backend::{GitBackend, GitBackendExt, Signature};
//! use git_backend_memory::MemoryBackend;
//!
//! let backend = MemoryBackend::new(Default::default()).unwrap();
//! let head = backend.seed_branch("main", &Signature::now("flipt", "flipt@example.com")).await.unwrap();
//! assert_eq!(backend.read_to_string(head, "README.md").await.unwrap().unwrap().lines().next(), Some("# Flipt Configuration Repository"));
//! # }
//! ```

use std::path::{Path, PathBuf};

use git2_support::{MemoryOptions, Store};

pub use git_backend::{Error, GitBackend, Result};

/// Prefix of scratch directories: `flipt-memory-<pid>-<random>`.
const SCRATCH_PREFIX: &str = "flipt-memory-";

/// How a memory backend keeps its objects.
#[derive(Debug, Clone)]
pub struct MemoryBackendOptions {
    /// Bytes of in-memory objects that trigger their compaction into a pack (16 MiB by
    /// default): bounds the RAM they take, and how long the write that triggers the
    /// compaction waits for it.
    pub compact_bytes: usize,
    /// Commits between two compactions of the in-memory objects into a pack, at most.
    pub compact_every: usize,
    /// Packs in the scratch directory before the smaller ones are merged into one: smallest
    /// first, while each is at most twice the size of those taken before it, so that a large
    /// pack is rewritten only once the packs merged with it add up to half its size.
    pub max_packs: usize,
    /// Where scratch directories are made (the system's temporary directory by default).
    pub scratch_parent: Option<PathBuf>,
}

impl Default for MemoryBackendOptions {
    fn default() -> Self {
        let d = MemoryOptions::default();
        MemoryBackendOptions {
            compact_bytes: d.compact_bytes,
            compact_every: d.compact_every,
            max_packs: d.max_packs,
            scratch_parent: None,
        }
    }
}

/// An in-process git repository.
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    store: Store,
}

git2_support::delegate_git_backend!(MemoryBackend, store);

impl MemoryBackend {
    /// A new, empty repository. Blocking (creates the scratch directory).
    pub fn new(options: MemoryBackendOptions) -> Result<MemoryBackend> {
        let parent = options
            .scratch_parent
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        remove_stale_scratch(&parent);
        let scratch = tempfile::Builder::new()
            .prefix(&format!("{SCRATCH_PREFIX}{}-", std::process::id()))
            .tempdir_in(&parent)
            .map_err(|e| {
                Error::storage(
                    format!(
                        "cannot create a scratch directory in `{}`",
                        parent.display()
                    ),
                    e,
                )
            })?;
        let path = scratch.path().to_owned();
        // The store keeps the directory's owner: a pack merge still running on its own thread
        // when the last clone of the backend is dropped keeps the directory until it ends.
        let store = Store::memory(
            "memory",
            &path,
            MemoryOptions {
                compact_bytes: options.compact_bytes.max(1),
                compact_every: options.compact_every.max(1),
                max_packs: options.max_packs.max(2),
            },
            scratch,
        )?;
        // libgit2's `init` gives the directory it initialises mode 0755; make it private again
        // (as `tempfile` made it) before any object is written to it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::storage("cannot make the scratch directory private", e))?;
        }
        Ok(MemoryBackend { store })
    }

    /// The scratch directory (removed when the last clone of the backend is dropped and no
    /// pack merge it started runs any more).
    pub fn scratch_dir(&self) -> &Path {
        self.store.path()
    }

    /// Writes the objects held in RAM to the scratch directory now, and merges packs if
    /// there are too many; waits for a merge in flight first.
    pub async fn compact(&self) -> Result<()> {
        self.store.compact().await
    }

    /// Waits until no pack merge runs. Merges run on a thread of their own, started by the
    /// write (or fetch, or push) that left too many packs, which does not wait for them.
    pub async fn wait_for_merges(&self) -> Result<()> {
        self.store.wait_for_merges().await
    }
}

/// Removes scratch directories of processes that no longer run (killed before they could
/// clean up). Best effort: errors are ignored.
fn remove_stale_scratch(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(SCRATCH_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
            && Path::new("/proc/self").exists()
        {
            tracing::info!(dir = %entry.path().display(), "removing the scratch directory of a process that ended");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
