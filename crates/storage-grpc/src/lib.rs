//! The gRPC services of the flag storage service: `flipt.storage.v1.StorageService` (and,
//! with the resources crate, Flipt's `environments.EnvironmentsService`), over the library
//! crates, with one mapping from library errors to gRPC status codes ([`error`]).
//!
//! It holds no storage logic of its own: reads come from the sync engine's served heads and
//! the backends, writes go through [`remote_sync::SyncedStorage::write`]. Concrete backends
//! appear only as dev-dependencies; the binary composes everything.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::sync::Arc;
//! use storage_grpc::{Registry, StorageApi, StorageEntry};
//! use storage_proto::flipt::storage::v1::{ListStoragesRequest, storage_service_server::StorageService};
//!
//! let backend = Arc::new(git_backend_memory::MemoryBackend::new(Default::default()).unwrap());
//! let sync = remote_sync::SyncedStorage::start(backend, remote_sync::SyncOptions::local("default", "main")).await.unwrap();
//! let mut registry = Registry::new();
//! registry.add(StorageEntry { id: "default".into(), backend_kind: "memory", remote: None, sync, rejected: Default::default() });
//! let api = StorageApi::new(Arc::new(registry), Default::default());
//! let list = api.list_storages(tonic::Request::new(ListStoragesRequest {})).await.unwrap().into_inner();
//! assert_eq!(list.storages[0].branch, "main");
//! # }
//! ```

mod background;
mod convert;
pub mod core_convert;
mod environments;
pub mod error;
mod registry;
mod storage_service;

pub use environments::{EnvironmentDef, EnvironmentsApi};
pub use registry::{Registry, Rejection, StorageEntry};
pub use storage_service::{StorageApi, StorageApiOptions};
