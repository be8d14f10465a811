//! Keeping a normal repository's index and working tree in step with the served branch.
//!
//! When the branch that `HEAD` points at moves, each changed path is updated in the index
//! and the working tree as `git checkout` would, but only where both still match the previous
//! commit. A path with staged edits is left alone; a path with only unstaged edits keeps them
//! on disk while its index entry follows the new commit. Either way a warning is logged, and
//! a user's next `git commit` never reverts a write made through the service.

use std::path::Path;

use git_backend::{ObjectId, RefName};
use git2::{ObjectType, Oid, Repository};

/// The hook run after every reference update.
pub(crate) fn hook(_branch: String) -> git2_support::RefHook {
    Box::new(move |repo, name, old, new| {
        if let Err(e) = sync(repo, name, old, new) {
            tracing::warn!(error = %e, reference = %name, "failed to update the working tree after a write");
        }
    })
}

fn oid(id: ObjectId) -> Oid {
    Oid::from_bytes(id.as_bytes()).expect("20 bytes")
}

fn sync(
    repo: &Repository,
    name: &RefName,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
) -> Result<(), git2::Error> {
    if repo.is_bare() {
        return Ok(());
    }
    let head = repo.find_reference("HEAD")?;
    if head.symbolic_target().ok().flatten() != Some(name.as_str()) {
        return Ok(());
    }
    let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
        return Ok(());
    };
    let tree_of = |id: Option<ObjectId>| -> Result<Option<git2::Tree<'_>>, git2::Error> {
        match id {
            Some(id) => Ok(Some(repo.find_commit(oid(id))?.tree()?)),
            None => Ok(None),
        }
    };
    let (old_tree, new_tree) = (tree_of(old)?, tree_of(new)?);
    let diff = repo.diff_tree_to_tree(old_tree.as_ref(), new_tree.as_ref(), None)?;
    let mut index = repo.index()?;
    // The handle keeps the index it loaded first: re-read it, or writing it back would undo
    // whatever the user staged since.
    index.read(true)?;
    let mut changed = false;
    for delta in diff.deltas() {
        let Some(path) = delta
            .new_file()
            .path()
            .or_else(|| delta.old_file().path())
            .map(Path::to_path_buf)
        else {
            continue;
        };
        let before = (!delta.old_file().id().is_zero()).then(|| delta.old_file().id());
        let after = (!delta.new_file().id().is_zero()).then(|| delta.new_file().id());
        let in_index = index.get_path(&path, 0).map(|e| e.id);
        let file = workdir.join(&path);
        let on_disk = match std::fs::symlink_metadata(&file) {
            Ok(m) if m.is_file() => Some(Oid::hash_file(ObjectType::Blob, &file)?),
            Ok(_) => Some(Oid::ZERO_SHA1),
            Err(_) => None,
        };
        if in_index != before {
            tracing::warn!(path = %path.display(), "left alone in the index and the working tree: it has staged edits");
            continue;
        }
        if on_disk != before {
            // Unstaged edits stay on disk, but the index follows the new commit, so that the
            // user's next `git commit` does not revert this write.
            tracing::warn!(path = %path.display(), "left alone in the working tree: it has unstaged edits");
            match after {
                Some(blob) => index.add(&unstaged_entry(&delta.new_file(), blob))?,
                None => index.remove_path(&path)?,
            }
            changed = true;
            continue;
        }
        match after {
            Some(blob) => {
                let content = repo.find_blob(blob)?;
                let written = file
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(&file, content.content()));
                match written {
                    Ok(()) => index.add_path(&path)?,
                    Err(e) => {
                        // E.g. a full disk: the index still follows the new commit (so the
                        // user's next `git commit` does not revert this write) and the
                        // other paths are still updated; a partly written file is removed.
                        let _ = std::fs::remove_file(&file);
                        tracing::warn!(path = %path.display(), error = %e, "could not write the file in the working tree; the index has the new content (`git checkout -- <path>` restores it)");
                        index.add(&unstaged_entry(&delta.new_file(), blob))?;
                    }
                }
            }
            None => {
                if let Err(e) = std::fs::remove_file(&file) {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove the file from the working tree; the index follows the new commit");
                }
                let mut dir = file.parent();
                while let Some(d) = dir {
                    if d == workdir || std::fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
                index.remove_path(&path)?;
            }
        }
        changed = true;
    }
    if changed {
        index.write()?;
    }
    Ok(())
}

/// An index entry for `blob` with no stat data, so that git compares the file's content.
fn unstaged_entry(file: &git2::DiffFile<'_>, blob: Oid) -> git2::IndexEntry {
    let never = git2::IndexTime::new(0, 0);
    git2::IndexEntry {
        ctime: never,
        mtime: never,
        dev: 0,
        ino: 0,
        mode: u32::from(file.mode()),
        uid: 0,
        gid: 0,
        file_size: 0,
        id: blob,
        flags: 0,
        flags_extended: 0,
        path: file.path_bytes().unwrap_or_default().to_vec(),
    }
}
