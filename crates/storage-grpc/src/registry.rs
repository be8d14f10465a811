//! The storages a server serves, by id.

use std::collections::BTreeMap;

use std::sync::{Arc, Mutex};

use remote_sync::SyncedStorage;

/// A commit that arrived and does not validate: not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The commit.
    pub commit: String,
    /// Why (every problem, one per line).
    pub reason: String,
}

/// The commits that did not validate, by environment. Every environment of a storage reads the
/// same branch but validates its own directory, so each keeps its own entry: one slot for the
/// storage let an environment whose directory validated clear another's rejection (seen as a
/// flaky test: which one built last decided the status).
#[derive(Debug, Default)]
pub struct Rejections(Mutex<BTreeMap<String, Rejection>>);

impl Rejections {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Rejection>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `environment` does not validate at a commit.
    pub fn set(&self, environment: &str, rejection: Rejection) {
        self.map().insert(environment.to_owned(), rejection);
    }

    /// Records that `environment` validates again.
    pub fn clear(&self, environment: &str) {
        self.map().remove(environment);
    }

    /// What the storage status shows: the rejected commit (of the first environment, by key,
    /// that has one) and the reasons of every environment that rejected that commit.
    pub fn current(&self) -> Option<Rejection> {
        let map = self.map();
        let first = map.values().next()?;
        let reason = map
            .values()
            .filter(|r| r.commit == first.commit)
            .map(|r| r.reason.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        Some(Rejection {
            commit: first.commit.clone(),
            reason,
        })
    }
}

/// One storage as the API sees it.
#[derive(Debug, Clone)]
pub struct StorageEntry {
    /// The storage id.
    pub id: String,
    /// `memory` or `local`.
    pub backend_kind: &'static str,
    /// The remote, without userinfo.
    pub remote: Option<String>,
    /// The sync engine (and through it the backend).
    pub sync: SyncedStorage,
    /// The newest commit that did not validate, while it is the head (set by the environments
    /// layer, shown in the storage status).
    pub rejected: Arc<Rejections>,
}

/// Every storage of the server.
#[derive(Debug, Default)]
pub struct Registry {
    storages: BTreeMap<String, StorageEntry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds a storage.
    pub fn add(&mut self, entry: StorageEntry) {
        self.storages.insert(entry.id.clone(), entry);
    }

    /// A storage by id.
    pub fn get(&self, id: &str) -> Option<&StorageEntry> {
        self.storages.get(id)
    }

    /// Every storage, by id.
    pub fn iter(&self) -> impl Iterator<Item = &StorageEntry> {
        self.storages.values()
    }

    /// A storage by id, or `NOT_FOUND`.
    pub fn require(&self, id: &str) -> Result<&StorageEntry, tonic::Status> {
        self.get(id).ok_or_else(|| {
            tonic::Status::not_found(format!("storage `{}` not found", crate::error::shown(id)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(commit: &str, reason: &str) -> Rejection {
        Rejection {
            commit: commit.into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn an_environment_that_validates_does_not_clear_anothers_rejection() {
        let r = Rejections::default();
        assert_eq!(r.current(), None);
        r.set(
            "production",
            rejection("c1", "environment `production`: bad"),
        );
        r.clear("staging");
        assert_eq!(
            r.current(),
            Some(rejection("c1", "environment `production`: bad"))
        );
        r.set("staging", rejection("c1", "environment `staging`: worse"));
        assert_eq!(
            r.current(),
            Some(rejection(
                "c1",
                "environment `production`: bad\nenvironment `staging`: worse"
            ))
        );
        r.clear("production");
        assert_eq!(
            r.current(),
            Some(rejection("c1", "environment `staging`: worse"))
        );
        r.clear("staging");
        assert_eq!(r.current(), None);
    }
}
