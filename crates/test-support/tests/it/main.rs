//! `test-support` exercised with the git CLI (and the OpenSSH and OpenSSL command-line
//! tools) only: the bare remote and its other user, the smart-HTTP server (auth, tokens,
//! pushes, hooks, outages, concurrency, chunked bodies), HTTPS with a test CA, and sshd.

mod http;
mod remote;
mod ssh;
mod tls;

use std::fs;
use std::path::{Path, PathBuf};

use test_support::git;

/// Clones `url` into `<parent>/<name>` with the git CLI and returns the work tree.
fn clone(url: &str, parent: &Path, name: &str) -> PathBuf {
    git(&["clone", "-q", url, name], parent);
    parent.join(name)
}

/// Writes `file` in the work tree, commits it and returns the commit id.
fn commit_file(work: &Path, file: &str, content: &[u8], message: &str) -> String {
    fs::write(work.join(file), content).unwrap();
    git(&["add", "-A"], work);
    git(&["commit", "-q", "-m", message], work);
    git(&["rev-parse", "HEAD"], work).trim().to_owned()
}
