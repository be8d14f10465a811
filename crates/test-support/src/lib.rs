//! Dev-only helpers shared by the tests of every crate of the workspace, written once here
//! instead of copied: a bare git repository that plays the remote ([`BareRemote`]),
//! "another user" who clones, commits and pushes to it with the `git` CLI, a smart-HTTP git
//! server ([`GitHttpServer`]) that wraps `git http-backend` with basic authentication or
//! tokens, TLS from a test CA ([`TestCa`]) and simulated outages, and an OpenSSH server
//! ([`SshServer`]) with generated host and client keys ([`SshKeyPair`]). Everything is
//! real and on loopback: real git processes, real repositories in temporary directories,
//! real TCP on `127.0.0.1` with free ports, so tests can run in parallel. Every git process
//! runs with a clean environment (see [`git`]) so the user's own git configuration never
//! leaks in.
//!
//! This crate is never published and no production crate may depend on it; take it as a
//! `[dev-dependencies]` entry. Of the workspace it depends only on `git-backend` (for the
//! remote kinds of the conformance suite, [`FileRemotes`] and [`HttpRemotes`]). It needs the
//! `git` CLI on `PATH`, and for [`SshServer`] OpenSSH's `sshd` and `ssh-keygen` (Debian:
//! `apt-get install -y --no-install-recommends openssh-server`; tests never install it).
//!
//! ```no_run
//! use test_support::{BareRemote, GitHttpServer, git};
//!
//! let remote = BareRemote::new();
//! let seed = remote.cli_commit("main", &[("flags.yaml", Some("flags: []\n"))], "seed");
//! let server = GitHttpServer::builder(remote.project_root())
//!     .basic_auth("alice", "s3cret")
//!     .start();
//! let work = tempfile::tempdir().unwrap();
//! git(&["clone", "-q", &server.url_with_credentials("remote.git"), "clone"], work.path());
//! assert_eq!(remote.head("main").as_deref(), Some(seed.as_str()));
//! assert_eq!(remote.show_file("main", "flags.yaml").as_deref(), Some("flags: []\n"));
//! ```

mod encoding;
mod git;
mod http;
mod remote;
mod ssh;
mod suite;
mod tls;

pub use git::{
    GitError, OTHER_USER_EMAIL, OTHER_USER_NAME, git, git_exec_path, try_git, try_git_with_env,
};
pub use http::{GitHttpServer, GitHttpServerBuilder, TOKEN_URL_USER, free_port};
pub use remote::{BareRemote, REMOTE_DIR_NAME};
pub use ssh::{
    SSHD_INSTALL_COMMAND, SshKeyPair, SshKeyPairBuilder, SshKeyType, SshServer, SshServerBuilder,
    current_user, git_ssh_command, git_ssh_command_with_askpass,
};
pub use suite::{FileRemotes, HttpRemotes};
pub use tls::{LOOPBACK_NAMES, TestCa, TlsIdentity};
