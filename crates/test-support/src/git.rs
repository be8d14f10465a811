//! Running the `git` CLI with a clean, predictable environment.

use std::ffi::OsStr;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The name every commit made through this crate is authored and committed with.
pub const OTHER_USER_NAME: &str = "Other User";
/// The e-mail every commit made through this crate is authored and committed with.
pub const OTHER_USER_EMAIL: &str = "other@example.com";

/// Variables that would make git look at another repository, another configuration or ask
/// someone for a password. They are removed from every git process this crate starts.
const CLEARED_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_CONFIG",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_PROTOCOL",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "XDG_CONFIG_HOME",
];

/// A git command that did not succeed: what was run, where, and what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitError {
    /// The command line, e.g. `git push -q origin HEAD:refs/heads/main`.
    pub command: String,
    /// The directory it ran in.
    pub cwd: PathBuf,
    /// The exit code, or `None` when git could not be started or was killed by a signal.
    pub code: Option<i32>,
    /// Everything git wrote to stdout (lossily decoded).
    pub stdout: String,
    /// Everything git wrote to stderr (lossily decoded), or why it could not be started.
    pub stderr: String,
}

impl fmt::Display for GitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self
            .code
            .map_or_else(|| "none".to_owned(), |c| c.to_string());
        write!(
            f,
            "`{}` in {} failed (exit code {code})\n--- stderr ---\n{}",
            self.command,
            self.cwd.display(),
            self.stderr.trim_end()
        )?;
        if !self.stdout.trim().is_empty() {
            write!(f, "\n--- stdout ---\n{}", self.stdout.trim_end())?;
        }
        Ok(())
    }
}

impl std::error::Error for GitError {}

/// Applies the environment hygiene shared by every git process: no system or user
/// configuration, no prompts, English messages and a fixed identity.
pub(crate) fn apply_hygiene(cmd: &mut Command, home: &Path) {
    for var in CLEARED_VARS {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GCM_INTERACTIVE", "never")
        .env("LC_ALL", "C")
        .env("GIT_AUTHOR_NAME", OTHER_USER_NAME)
        .env("GIT_AUTHOR_EMAIL", OTHER_USER_EMAIL)
        .env("GIT_COMMITTER_NAME", OTHER_USER_NAME)
        .env("GIT_COMMITTER_EMAIL", OTHER_USER_EMAIL);
}

/// Runs git and returns its raw stdout, or a [`GitError`].
pub(crate) fn run_git<S: AsRef<OsStr>>(
    args: &[S],
    cwd: &Path,
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> Result<Vec<u8>, GitError> {
    let command = std::iter::once("git".to_owned())
        .chain(
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let fail = |code, stdout: &[u8], stderr: String| GitError {
        command: command.clone(),
        cwd: cwd.to_path_buf(),
        code,
        stdout: String::from_utf8_lossy(stdout).into_owned(),
        stderr,
    };
    let home = tempfile::Builder::new()
        .prefix("git-home-")
        .tempdir()
        .map_err(|e| fail(None, b"", format!("cannot create a HOME directory: {e}")))?;
    let mut cmd = Command::new("git");
    cmd.args(args).current_dir(cwd);
    apply_hygiene(&mut cmd, home.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(None, b"", format!("cannot start git: {e}")))?;
    let writer = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => {
            let data = data.to_vec();
            Some(std::thread::spawn(move || {
                // A broken pipe means git stopped reading; its exit status tells why.
                let _ = pipe.write_all(&data);
            }))
        }
        _ => None,
    };
    let out = child
        .wait_with_output()
        .map_err(|e| fail(None, b"", format!("cannot wait for git: {e}")))?;
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(fail(
            out.status.code(),
            &out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

/// Runs `git <args>` in `cwd` and returns its stdout, untrimmed (call `.trim()` for ids).
///
/// The environment is cleaned the same way for every git process of this crate:
/// `HOME` is a fresh empty temporary directory, `GIT_CONFIG_NOSYSTEM=1`,
/// `GIT_TERMINAL_PROMPT=0`, `LC_ALL=C`, variables such as `GIT_DIR` or
/// `XDG_CONFIG_HOME` are removed, and author and committer are
/// [`OTHER_USER_NAME`] <[`OTHER_USER_EMAIL`]>.
///
/// # Panics
/// When git cannot be started or exits with a failure; the message holds the command line
/// and git's stderr.
pub fn git(args: &[&str], cwd: &Path) -> String {
    try_git(args, cwd).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`git`], but returns a [`GitError`] instead of panicking, for commands that are
/// expected to fail (a rejected push, a wrong password).
pub fn try_git(args: &[&str], cwd: &Path) -> Result<String, GitError> {
    try_git_with_env(args, cwd, &[])
}

/// Like [`try_git`], with extra environment variables set after the hygiene ones (so they
/// win), e.g. `GIT_SSL_CAINFO`, `GIT_SSH_COMMAND` or `GIT_TRACE_CURL`.
pub fn try_git_with_env(
    args: &[&str],
    cwd: &Path,
    env: &[(&str, &str)],
) -> Result<String, GitError> {
    run_git(args, cwd, env, None).map(|out| String::from_utf8_lossy(&out).into_owned())
}

/// Returns the directory that holds git's helper programs (`git --exec-path`), where
/// `git-http-backend` lives; it matches the `git` first on `PATH`.
///
/// # Panics
/// When git cannot be run.
pub fn git_exec_path() -> PathBuf {
    PathBuf::from(git(&["--exec-path"], &std::env::temp_dir()).trim())
}
