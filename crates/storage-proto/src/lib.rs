//! Protobuf messages and gRPC clients and servers of the flag storage service, generated at
//! build time from the `.proto` files in the workspace's `proto/` directory: Flipt v2's
//! `environments` and `flipt.core` packages (the wire contract, unchanged) and
//! `flipt.storage.v1`. [`FILE_DESCRIPTOR_SET`] serves gRPC reflection.
//!
//! Depends on no other crate of the workspace; other services take it to talk to the server.
//!
//! ```
//! use storage_proto::environments::GetNamespaceRequest;
//!
//! let req = GetNamespaceRequest { environment_key: "default".into(), key: "default".into() };
//! assert_eq!(prost::Message::encoded_len(&req), 18);
//! assert!(!storage_proto::FILE_DESCRIPTOR_SET.is_empty());
//! ```

/// Flipt v2's environments API (`environments.EnvironmentsService`).
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    clippy::allow_attributes_without_reason,
    reason = "generated code"
)]
pub mod environments {
    tonic::include_proto!("environments");
}

/// Flipt's resource messages.
pub mod flipt {
    /// `flipt.core`: flags, segments and their parts.
    #[allow(
        missing_docs,
        unreachable_pub,
        clippy::all,
        clippy::pedantic,
        clippy::allow_attributes_without_reason,
        reason = "generated code"
    )]
    pub mod core {
        tonic::include_proto!("flipt.core");
    }

    /// The storage-level API.
    pub mod storage {
        /// `flipt.storage.v1`.
        #[allow(
            missing_docs,
            unreachable_pub,
            clippy::all,
            clippy::pedantic,
            clippy::allow_attributes_without_reason,
            reason = "generated code"
        )]
        pub mod v1 {
            tonic::include_proto!("flipt.storage.v1");
        }
    }
}

/// The encoded file descriptor set of every `.proto` file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("storage_descriptor");
