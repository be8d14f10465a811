//! A bare repository that plays the remote, and another user who pushes to it.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use tempfile::TempDir;

use crate::git::{GitError, git, run_git};

/// The name of the bare repository inside [`BareRemote::project_root`].
pub const REMOTE_DIR_NAME: &str = "remote.git";

/// A bare git repository in its own temporary directory, created and inspected with the
/// `git` CLI. It is removed when the value is dropped.
///
/// The repository is `<temp dir>/remote.git`, its default branch is `main`, and
/// `http.receivepack` is on so that [`GitHttpServer`](crate::GitHttpServer) accepts pushes
/// even without authentication.
#[derive(Debug)]
pub struct BareRemote {
    dir: TempDir,
    path: PathBuf,
}

impl Default for BareRemote {
    fn default() -> Self {
        Self::new()
    }
}

impl BareRemote {
    /// Creates an empty bare repository (`git init --bare -b main`).
    ///
    /// # Panics
    /// When the temporary directory cannot be created or git fails.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bare-remote-")
            .tempdir()
            .expect("create a temporary directory for the bare remote");
        let root = dir
            .path()
            .canonicalize()
            .expect("canonicalize the temporary directory");
        let path = root.join(REMOTE_DIR_NAME);
        git(
            &["init", "--bare", "-q", "-b", "main", path_str(&path)],
            &root,
        );
        git(&["config", "http.receivepack", "true"], &path);
        Self { dir, path }
    }

    /// The bare repository's directory (absolute, canonical).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory that holds the repository: give it to
    /// [`GitHttpServer::builder`](crate::GitHttpServer::builder) and ask the server for
    /// `url("remote.git")`.
    pub fn project_root(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| self.dir.path())
    }

    /// The repository as a `file://` URL, e.g. `file:///tmp/bare-remote-x/remote.git`.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// Commits as another user: clones `branch` with the git CLI (or starts a new history
    /// when the branch does not exist, which includes an empty remote), writes each
    /// `(path, Some(content))`, deletes each `(path, None)`, commits with `message` as
    /// "Other User <other@example.com>" (also when nothing changed) and pushes
    /// `HEAD:refs/heads/<branch>` without force. Returns the new commit's 40-hex id.
    ///
    /// # Panics
    /// When a git command fails (e.g. the push is rejected because someone else pushed
    /// in between, or a hook refused it): the message holds the command and git's stderr.
    /// Use [`try_cli_commit`](Self::try_cli_commit) to handle that instead. Also panics on
    /// a file path that is absolute or contains `..`.
    pub fn cli_commit(
        &self,
        branch: &str,
        files: &[(&str, Option<&str>)],
        message: &str,
    ) -> String {
        self.try_cli_commit(branch, files, message)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`cli_commit`](Self::cli_commit), but a failed git command (typically a push
    /// rejected as non-fast-forward by a concurrent writer, or by a hook) is returned.
    pub fn try_cli_commit(
        &self,
        branch: &str,
        files: &[(&str, Option<&str>)],
        message: &str,
    ) -> Result<String, GitError> {
        self.commit_as_other(branch, files, message, false)
    }

    /// Pushes, with `--force`, a new root commit holding only `files` (entries with `None`
    /// are ignored) to `branch`, replacing its history: a remote rewritten by someone else.
    /// Returns the new commit's id.
    ///
    /// # Panics
    /// When a git command fails.
    pub fn cli_force_push_unrelated(
        &self,
        branch: &str,
        files: &[(&str, Option<&str>)],
        message: &str,
    ) -> String {
        self.commit_as_other(branch, files, message, true)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn commit_as_other(
        &self,
        branch: &str,
        files: &[(&str, Option<&str>)],
        message: &str,
        unrelated: bool,
    ) -> Result<String, GitError> {
        let scratch = tempfile::Builder::new()
            .prefix("other-user-")
            .tempdir()
            .expect("create a temporary directory for the other user's clone");
        let work = scratch.path().join("work");
        let remote = path_str(&self.path);
        let run = |args: &[&str], cwd: &Path| run_git(args, cwd, &[], None).map(|_| ());
        if !unrelated && self.head(branch).is_some() {
            run(
                &[
                    "clone",
                    "-q",
                    "--no-tags",
                    "-b",
                    branch,
                    remote,
                    path_str(&work),
                ],
                scratch.path(),
            )?;
        } else {
            run(
                &["init", "-q", "-b", branch, path_str(&work)],
                scratch.path(),
            )?;
            run(&["remote", "add", "origin", remote], &work)?;
        }
        for (name, content) in files {
            let target = work.join(checked_relative(name));
            match content {
                Some(content) => {
                    if let Some(parent) = target.parent() {
                        fs::create_dir_all(parent).expect("create the file's directories");
                    }
                    fs::write(&target, content).expect("write the file in the clone");
                }
                None => match fs::remove_file(&target) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        panic!("delete {}: {e}", target.display())
                    }
                    _ => {}
                },
            }
        }
        run(&["add", "-A"], &work)?;
        run(
            &[
                "commit",
                "-q",
                "--allow-empty",
                "--no-verify",
                "-m",
                message,
            ],
            &work,
        )?;
        let refspec = format!("HEAD:refs/heads/{branch}");
        if unrelated {
            run(&["push", "-q", "--force", "origin", &refspec], &work)?;
        } else {
            run(&["push", "-q", "origin", &refspec], &work)?;
        }
        let id = run_git(&["rev-parse", "HEAD"], &work, &[], None)?;
        Ok(String::from_utf8_lossy(&id).trim().to_owned())
    }

    /// The commit id `refs/heads/<branch>` points to, or `None` when the branch does not
    /// exist.
    ///
    /// # Panics
    /// When git fails for another reason than a missing branch.
    pub fn head(&self, branch: &str) -> Option<String> {
        let name = format!("refs/heads/{branch}");
        match run_git(
            &["rev-parse", "--verify", "-q", &name],
            &self.path,
            &[],
            None,
        ) {
            Ok(out) => Some(String::from_utf8_lossy(&out).trim().to_owned()),
            Err(e) if e.code == Some(1) && e.stderr.trim().is_empty() => None,
            Err(e) => panic!("{e}"),
        }
    }

    /// Every ref of the repository as `(full name, object id)`, sorted by name
    /// (`git for-each-ref`).
    pub fn refs(&self) -> Vec<(String, String)> {
        git(
            &["for-each-ref", "--format=%(refname) %(objectname)"],
            &self.path,
        )
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, id)| (name.to_owned(), id.to_owned()))
        .collect()
    }

    /// The ids of the commits reachable from `branch`, newest first; empty when the branch
    /// does not exist.
    pub fn log(&self, branch: &str) -> Vec<String> {
        if self.head(branch).is_none() {
            return Vec::new();
        }
        git(&["rev-list", &format!("refs/heads/{branch}")], &self.path)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The content of `path` at revision `rev` (a commit id or e.g. `refs/heads/main`), or
    /// `None` when the revision or the file does not exist. Invalid UTF-8 is replaced.
    pub fn show_file(&self, rev: &str, path: &str) -> Option<String> {
        let spec = format!("{rev}:{path}");
        run_git(&["cat-file", "blob", &spec], &self.path, &[], None)
            .ok()
            .map(|out| String::from_utf8_lossy(&out).into_owned())
    }

    /// Asserts that `git fsck --strict` finds nothing wrong with the repository.
    ///
    /// # Panics
    /// When fsck reports a problem; the message holds its output.
    pub fn fsck(&self) {
        if let Err(e) = run_git(
            &["fsck", "--strict", "--no-progress"],
            &self.path,
            &[],
            None,
        ) {
            panic!("the bare remote is corrupt: {e}");
        }
    }

    /// Installs the hook `name` (e.g. `pre-receive`) with the given script and makes it
    /// executable. A script without a `#!` line is run by `/bin/sh`. The file is replaced
    /// atomically, so a hook can be changed while pushes are running.
    ///
    /// Hooks run for pushes through the git CLI (`file://` or a path) and through
    /// [`GitHttpServer`](crate::GitHttpServer), but not for libgit2's local transport.
    ///
    /// ```no_run
    /// # let remote = test_support::BareRemote::new();
    /// remote.install_hook("pre-receive", "echo 'rejected by policy' >&2\nexit 1\n");
    /// ```
    ///
    /// # Panics
    /// When `name` contains a `/` or the file cannot be written.
    pub fn install_hook(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;

        assert!(
            !name.is_empty() && !name.contains('/') && name != "..",
            "invalid hook name {name:?}"
        );
        let hooks = self.path.join("hooks");
        fs::create_dir_all(&hooks).expect("create the hooks directory");
        let content = if script.starts_with("#!") {
            script.to_owned()
        } else {
            format!("#!/bin/sh\n{script}")
        };
        let tmp = hooks.join(format!(".{name}.tmp"));
        fs::write(&tmp, content).expect("write the hook");
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
            .expect("make the hook executable");
        fs::rename(&tmp, hooks.join(name)).expect("install the hook");
    }

    /// Removes the hook `name` if it is installed.
    pub fn remove_hook(&self, name: &str) {
        match fs::remove_file(self.path.join("hooks").join(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => panic!("remove hook {name}: {e}"),
            _ => {}
        }
    }
}

/// A path as `&str`; temporary directories made by this crate are always UTF-8.
fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 path {}", path.display()))
}

/// Checks that a file path given by a test stays inside the work tree.
fn checked_relative(name: &str) -> &Path {
    let path = Path::new(name);
    let ok = !name.is_empty()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && !path.starts_with(".git");
    assert!(
        ok,
        "file path {name:?} must be relative, without `..` or `.git`"
    );
    path
}
