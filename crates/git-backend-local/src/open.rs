//! Opening or creating the repository (BEHAVIOUR §2, `local`).

use std::path::{Path, PathBuf};

use git_backend::{Error, Result};

use crate::LocalOptions;

pub(crate) struct Opened {
    pub(crate) path: PathBuf,
    pub(crate) bare: bool,
}

fn io_error(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::storage(what, e)
}

pub(crate) fn open(options: &LocalOptions) -> Result<Opened> {
    let path = &options.path;
    let shown = path.display();
    let is_empty_dir = |p: &Path| -> Result<bool> {
        Ok(std::fs::read_dir(p)
            .map_err(io_error(format!("cannot read directory `{shown}`")))?
            .next()
            .is_none())
    };
    let repo = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(path)
                .map_err(io_error(format!("cannot create directory `{shown}`")))?;
            init(path)?
        }
        Err(e) => return Err(Error::storage(format!("cannot access `{shown}`"), e)),
        Ok(m) if !m.is_dir() => {
            return Err(Error::invalid(format!("`{shown}` is not a directory")));
        }
        Ok(_) => match git2::Repository::open(path) {
            Ok(repo) => repo,
            Err(_) if is_empty_dir(path)? => init(path)?,
            Err(_) => {
                return Err(Error::invalid(format!(
                    "`{shown}` is not empty and is not a git repository; refusing to create one in it (use an empty directory, or an existing repository)"
                )));
            }
        },
    };
    let bare = repo.is_bare();
    check_branch(&repo, options)?;
    Ok(Opened {
        path: path.clone(),
        bare,
    })
}

fn init(path: &Path) -> Result<git2::Repository> {
    let mut opts = git2::RepositoryInitOptions::new();
    opts.bare(true).no_reinit(true).initial_head("main");
    git2::Repository::init_opts(path, &opts).map_err(|e| Error::Storage {
        message: format!(
            "cannot create a repository in `{}`: {}",
            path.display(),
            e.message()
        ),
        source: Some(Box::new(e)),
    })
}

/// A repository with commits but without the branch is refused, with its branches listed.
fn check_branch(repo: &git2::Repository, options: &LocalOptions) -> Result<()> {
    if options.allow_missing_branch {
        return Ok(());
    }
    let branches: Vec<String> = repo
        .branches(Some(git2::BranchType::Local))
        .map_err(|e| Error::storage("cannot list branches", e))?
        .filter_map(|b| b.ok())
        .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_owned))
        .collect();
    if branches.is_empty() || branches.contains(&options.branch) {
        return Ok(());
    }
    Err(Error::NotFound(format!(
        "the repository at `{}` has no branch `{}` (its branches: {}); set `branch` to one of them",
        options.path.display(),
        options.branch,
        branches.join(", ")
    )))
}
