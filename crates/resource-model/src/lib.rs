//! Flipt's resources as they are stored in a git repository: namespaces, flags and segments
//! in Flipt's features files (`<environment directory>/<namespace>/features.yaml`, format
//! versions 1.0 to 1.6), so that repositories written by Flipt v2 are served as they are and
//! repositories written here are read by Flipt.
//!
//! - [`FeaturesFile`] parses a features file (a YAML stream of `---` documents, or JSON) into
//!   plain resource types ([`Flag`], [`Segment`], [`Namespace`], close to Flipt's
//!   `flipt.core` messages) and writes it back with small diffs: documents a write does not
//!   touch stay byte for byte, a changed item is re-emitted in place in its key order, and a
//!   document's version is raised only when the change needs it.
//! - [`Snapshot`] is an immutable, validated view of an environment at a commit, with lookup
//!   by key and a digest per namespace; an invalid commit gives every problem ([`Problem`]:
//!   file, document, item, line) and no snapshot. [`Snapshot::rebuild`] re-parses only the
//!   files whose blobs changed.
//! - [`ResourceWrite`] creates, updates and deletes namespaces, flags and segments as a
//!   re-appliable write ([`git_backend::WriteOp`]): it validates against the current head,
//!   checks per resource that nothing it touches changed since the revision the client read,
//!   and renders the commit message from `flipt.yaml`'s Go template (or Flipt's default). A
//!   [`FileCache`] in the [`WriteTarget`] keeps parsed namespace files between writes.
//! - [`validate_tree`] and [`validate_dir`] check an environment the way the server does;
//!   [`check_commit`] checks the files a commit of raw file changes writes.
//!
//! It depends on `git-backend` only (for the backend trait and the re-appliable write), never
//! on a concrete backend, on git2, on tonic or on a runtime. Conversion to and from protobuf
//! messages belongs to the API layer.
//!
//! ```
//! use resource_model::{FeaturesFile, Flag, FlagType, Version};
//!
//! let text = "version: \"1.0\"\nflags:\n  - key: new-ui\n    name: New UI\n    enabled: false\n  - key: dark-mode\n    name: Dark mode\n    enabled: true\n";
//! let mut file = FeaturesFile::parse("default/features.yaml", text.as_bytes()).unwrap();
//! assert_eq!(file.flag("dark-mode").unwrap().enabled, true);
//!
//! // Switch one flag on: only its lines change, and version 1.0 can still hold it.
//! let mut flag = file.flag("new-ui").unwrap().clone();
//! flag.enabled = true;
//! file.put_flag(flag);
//! let written = String::from_utf8(file.to_bytes()).unwrap();
//! assert_eq!(written, text.replacen("enabled: false", "enabled: true", 1));
//!
//! // A boolean flag needs version 1.1: the document is raised to exactly that.
//! let mut toggle = Flag::new("kill-switch", "Kill switch");
//! toggle.r#type = FlagType::Boolean;
//! file.put_flag(toggle);
//! let reread = FeaturesFile::parse("default/features.yaml", &file.to_bytes()).unwrap();
//! assert_eq!(reread.documents().next().unwrap().version, Some(Version::V1_1));
//! assert!(String::from_utf8(file.to_bytes()).unwrap().ends_with("  - key: kill-switch\n    name: Kill switch\n    type: BOOLEAN_FLAG_TYPE\n    enabled: false\n"));
//! ```

mod commit_check;
mod config;
mod document;
mod emit;
mod error;
mod key;
mod model;
mod ops;
mod snapshot;
mod template;
mod validate;
mod version;

pub use commit_check::check_commit;
pub use config::{
    CONFIG_FILES, ChangeRecord, DEFAULT_COMMIT_TEMPLATE, EnvironmentInfo, RepositoryConfig,
    ResourceKind, Verb, commit_message,
};
pub use document::{Document, DocumentNamespace, FeaturesFile, Format};
pub use error::{Error, Location, Problem, Problems, Result};
pub use key::{MAX_KEY_LEN, is_valid_key, validate_key};
pub use model::*;
pub use ops::{CACHE_PATHS, FileCache, Operation, ResourceWrite, VERSIONS_PER_PATH, WriteTarget};
pub use snapshot::{
    BuildStats, FEATURES_FILES, NamespaceFile, NamespaceSnapshot, PendingBuild, Snapshot,
};
pub use template::{Template, TemplateError, TemplateValue};
pub use validate::{validate_dir, validate_tree};
pub use version::Version;
