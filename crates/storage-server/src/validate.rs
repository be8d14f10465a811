//! `validate`: checks Flipt resources the way the server does before serving a commit.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use git_backend::{GitBackend, ObjectId, RefName};
use resource_model::Problem;

/// The git directory of `path`, if it is a repository (normal or bare). Checked by looking,
/// so that validating a plain directory never creates a repository in it.
fn git_dir(path: &Path) -> Option<PathBuf> {
    let dot_git = path.join(".git");
    if dot_git.is_dir() {
        return Some(dot_git);
    }
    (path.join("HEAD").is_file() && path.join("objects").is_dir() && path.join("refs").is_dir())
        .then(|| path.to_owned())
}

/// The reference HEAD points at (`ref: refs/heads/main`).
fn head_ref(git_dir: &Path) -> Result<RefName, String> {
    let text = std::fs::read_to_string(git_dir.join("HEAD"))
        .map_err(|e| format!("cannot read HEAD: {e}"))?;
    let target = text
        .trim()
        .strip_prefix("ref: ")
        .ok_or("HEAD is detached; pass --ref")?;
    RefName::new(target).map_err(|e| e.to_string())
}

async fn validate_repo(
    path: &Path,
    git_dir: &Path,
    reference: Option<&str>,
    directory: &str,
) -> Result<(String, Vec<Problem>), String> {
    let mut options = git_backend_local::LocalOptions::new(path, "main");
    options.allow_missing_branch = true;
    let backend = git_backend_local::LocalBackend::open(options).map_err(|e| e.to_string())?;
    let commit = match reference {
        Some(r) if r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit()) => {
            ObjectId::parse(r).map_err(|e| e.to_string())?
        }
        Some(r) => {
            let name = if r.starts_with("refs/") {
                RefName::new(r)
            } else {
                RefName::branch(r)
            }
            .map_err(|e| e.to_string())?;
            backend
                .resolve(&name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("`{r}` does not exist in the repository"))?
        }
        None => {
            let name = head_ref(git_dir)?;
            backend
                .resolve(&name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("`{name}` has no commit yet"))?
        }
    };
    let directory = directory.trim_matches('/');
    let problems = resource_model::validate_tree(&backend, commit, directory)
        .await
        .map_err(|e| e.to_string())?;
    Ok((format!("commit {commit}"), problems))
}

pub(crate) fn run(path: Option<PathBuf>, reference: Option<String>, directory: &str) -> ExitCode {
    let path = path.unwrap_or_else(|| PathBuf::from("."));
    let outcome = match git_dir(&path) {
        Some(git_dir) => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(validate_repo(
                &path,
                &git_dir,
                reference.as_deref(),
                directory,
            ))
        }
        None if reference.is_some() => Err(format!(
            "`{}` is not a git repository, so --ref does not apply",
            path.display()
        )),
        None if !path.is_dir() => Err(format!("`{}` is not a directory", path.display())),
        None => Ok((
            format!("directory `{}`", path.display()),
            resource_model::validate_dir(&path.join(directory)),
        )),
    };
    let mut out = std::io::stdout().lock();
    match outcome {
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Ok((what, problems)) if problems.is_empty() => {
            let _ = writeln!(out, "{what} is valid");
            ExitCode::SUCCESS
        }
        Ok((what, problems)) => {
            for p in &problems {
                let _ = writeln!(out, "{p}");
            }
            let _ = writeln!(out, "{what}: {} problem(s)", problems.len());
            ExitCode::FAILURE
        }
    }
}
