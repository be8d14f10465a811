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
    pub rejected: Arc<Mutex<Option<Rejection>>>,
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
