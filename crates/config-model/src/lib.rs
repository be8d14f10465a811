//! The configuration model of the flag storage service: the YAML file (Flipt v2's
//! `storage:`, `credentials:`, `environments:`, plus `server:`, `log:` and
//! `authentication:`), `FLIPT_...` environment-variable overrides, defaults and validation.
//!
//! Loading never stops at the first problem: every error and warning is collected with its
//! key path (`storage.prod.poll_interval`), what is wrong, what is allowed, and the line of
//! the file or the environment variable it came from. Secrets are `secrecy::SecretString`
//! from the moment they are read, and no type that holds one implements `Serialize`;
//! [`Config::to_redacted_yaml`] is the one way to print a configuration.
//!
//! This crate depends on no other crate of the workspace, so a service that only needs to
//! read the configuration can take it alone. It does no I/O beyond reading the file it is
//! given and checking whether files named in it exist.
//!
//! ```
//! use std::collections::BTreeMap;
//! use config_model::{load_str, Backend};
//!
//! let yaml = "
//! storage:
//!   prod:
//!     backend: { type: local, path: /var/lib/flipt }
//!     remote: https://github.com/acme/flags.git
//!     poll_interval: 1m
//! environments:
//!   production: { storage: prod }
//! ";
//! let env: BTreeMap<String, String> =
//!     [("FLIPT_STORAGE_PROD_BRANCH".to_owned(), "release".to_owned())].into();
//! let loaded = load_str(yaml, Some("config.yml"), &env).expect("valid configuration");
//! let prod = &loaded.config.storages["prod"];
//! assert_eq!(prod.backend, Backend::Local { path: "/var/lib/flipt".into() });
//! assert_eq!(prod.branch, "release");
//! assert_eq!(prod.poll_interval.as_secs(), 60);
//! assert_eq!(loaded.config.default_environment().name, "production");
//!
//! // Every problem is reported at once, with its path and line.
//! let no_env = BTreeMap::new();
//! let bad = "storage:\n  prod:\n    poll_interval: 10ms\n    branch: 'a..b'\n";
//! let err = load_str(bad, None, &no_env).unwrap_err();
//! let text = err.to_string();
//! assert!(text.contains("storage.prod.poll_interval: must be at least 1s, got 10ms (line 3)"));
//! assert!(text.contains("storage.prod.branch"));
//! ```

mod diagnostic;
mod duration;
mod env;
mod load;
mod model;
mod reader;
mod redact;
mod refname;
mod remote_url;
mod yaml;

pub use diagnostic::{ConfigError, Diagnostic, Origin, Severity};
pub use duration::{format_duration, parse_duration};
pub use env::{EnvSource, ProcessEnv};
pub use load::{Loaded, load_file, load_str};
pub use model::*;
pub use redact::REDACTED;
pub use refname::check_branch_name;
pub use remote_url::{RemoteUrl, Transport, redact_userinfo};
