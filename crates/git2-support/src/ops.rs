//! The local operations on one `git2::Repository`: reads, commits and reference updates.
//! Everything here blocks; callers run it on blocking threads.

use std::collections::BTreeMap;

use git_backend::*;
use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};

use crate::convert::{git_oid, git_signature, local_error, object_write_error, oid, signature};

/// Whether an error is a git2 "not found".
fn is_not_found(e: &git2::Error) -> bool {
    e.code() == git2::ErrorCode::NotFound
}

pub(crate) fn find_commit(repo: &Repository, id: ObjectId) -> Result<git2::Commit<'_>> {
    let obj = repo.find_object(git_oid(id), None).map_err(|e| {
        if is_not_found(&e) {
            Error::not_found(format!("commit {id} not found"))
        } else {
            local_error("failed to read an object", e)
        }
    })?;
    obj.into_commit()
        .map_err(|_| Error::not_found(format!("{id} is not a commit")))
}

pub(crate) fn commit_info(repo: &Repository, id: ObjectId) -> Result<CommitInfo> {
    let c = find_commit(repo, id)?;
    Ok(CommitInfo {
        id,
        tree: oid(c.tree_id()),
        parents: c.parent_ids().map(oid).collect(),
        message: String::from_utf8_lossy(c.message_bytes()).into_owned(),
        author: signature(&c.author()),
        committer: signature(&c.committer()),
    })
}

pub(crate) fn read_blob(repo: &Repository, id: ObjectId) -> Result<Vec<u8>> {
    let blob = repo.find_blob(git_oid(id)).map_err(|e| {
        if is_not_found(&e) || e.code() == git2::ErrorCode::Invalid {
            Error::not_found(format!("blob {id} not found"))
        } else {
            local_error("failed to read a blob", e)
        }
    })?;
    Ok(blob.content().to_vec())
}

pub(crate) fn read_file(
    repo: &Repository,
    commit: ObjectId,
    path: &RepoPath,
) -> Result<Option<FileBlob>> {
    let tree = find_commit(repo, commit)?
        .tree()
        .map_err(|e| local_error("failed to read a tree", e))?;
    let entry = match tree.get_path(std::path::Path::new(path.as_str())) {
        Ok(entry) => entry,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(local_error("failed to look up a path", e)),
    };
    if entry.kind() != Some(ObjectType::Blob) {
        return Ok(None);
    }
    let blob = repo
        .find_blob(entry.id())
        .map_err(|e| local_error("failed to read a blob", e))?;
    Ok(Some(FileBlob {
        id: oid(entry.id()),
        content: blob.content().to_vec(),
    }))
}

fn entry_kind(mode: i32, kind: Option<ObjectType>) -> EntryKind {
    match (mode, kind) {
        (0o040000, _) | (_, Some(ObjectType::Tree)) => EntryKind::Directory,
        (0o100755, _) => EntryKind::Executable,
        (0o120000, _) => EntryKind::Symlink,
        (0o160000, _) | (_, Some(ObjectType::Commit)) => EntryKind::Submodule,
        _ => EntryKind::File,
    }
}

pub(crate) fn list_tree(
    repo: &Repository,
    commit: ObjectId,
    dir: Option<&RepoPath>,
    recursive: bool,
) -> Result<Vec<TreeEntry>> {
    let root = find_commit(repo, commit)?
        .tree()
        .map_err(|e| local_error("failed to read a tree", e))?;
    let (tree, prefix) = match dir {
        None => (root, String::new()),
        Some(dir) => match root.get_path(std::path::Path::new(dir.as_str())) {
            Ok(entry) if entry.kind() == Some(ObjectType::Tree) => (
                repo.find_tree(entry.id())
                    .map_err(|e| local_error("failed to read a tree", e))?,
                format!("{dir}/"),
            ),
            Ok(_) => return Ok(Vec::new()),
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(local_error("failed to look up a path", e)),
        },
    };
    let mut out = Vec::new();
    if recursive {
        tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
            if entry.kind() != Some(ObjectType::Tree) {
                let name = String::from_utf8_lossy(entry.name_bytes());
                out.push(TreeEntry {
                    path: format!("{prefix}{parent}{name}"),
                    id: oid(entry.id()),
                    kind: entry_kind(entry.filemode(), entry.kind()),
                });
            }
            TreeWalkResult::Ok
        })
        .map_err(|e| local_error("failed to walk a tree", e))?;
    } else {
        for entry in tree.iter() {
            let name = String::from_utf8_lossy(entry.name_bytes());
            out.push(TreeEntry {
                path: format!("{prefix}{name}"),
                id: oid(entry.id()),
                kind: entry_kind(entry.filemode(), entry.kind()),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

pub(crate) fn diff(
    repo: &Repository,
    from: Option<ObjectId>,
    to: ObjectId,
) -> Result<Vec<DiffEntry>> {
    let new_tree = find_commit(repo, to)?
        .tree()
        .map_err(|e| local_error("failed to read a tree", e))?;
    let old_tree = match from {
        Some(from) => Some(
            find_commit(repo, from)?
                .tree()
                .map_err(|e| local_error("failed to read a tree", e))?,
        ),
        None => None,
    };
    let d = repo
        .diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), None)
        .map_err(|e| local_error("failed to compare trees", e))?;
    let mut out = Vec::new();
    for delta in d.deltas() {
        let kind = match delta.status() {
            git2::Delta::Added => ChangeKind::Added,
            git2::Delta::Deleted => ChangeKind::Deleted,
            _ => ChangeKind::Modified,
        };
        let file = if kind == ChangeKind::Deleted {
            delta.old_file()
        } else {
            delta.new_file()
        };
        let path = file
            .path_bytes()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        let id = |f: git2::DiffFile<'_>| (!f.id().is_zero()).then(|| oid(f.id()));
        out.push(DiffEntry {
            path,
            kind,
            old: id(delta.old_file()),
            new: id(delta.new_file()),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

pub(crate) fn log(
    repo: &Repository,
    from: ObjectId,
    options: &LogOptions,
) -> Result<Vec<CommitInfo>> {
    find_commit(repo, from)?;
    let mut walk = repo
        .revwalk()
        .map_err(|e| local_error("failed to walk history", e))?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)
        .map_err(|e| local_error("failed to walk history", e))?;
    walk.push(git_oid(from))
        .map_err(|e| local_error("failed to walk history", e))?;
    for h in &options.hide {
        // Hiding a commit this repository does not have hides nothing.
        let _ = walk.hide(git_oid(*h));
    }
    let mut out = Vec::new();
    let mut skipping = options.after.is_some();
    for id in walk {
        let id = oid(id.map_err(|e| local_error("failed to walk history", e))?);
        if skipping {
            skipping = Some(id) != options.after;
            continue;
        }
        out.push(commit_info(repo, id)?);
        if options.limit != 0 && out.len() >= options.limit {
            break;
        }
    }
    Ok(out)
}

/// [`GitBackend::changed_paths`](git_backend::GitBackend::changed_paths) on one handle.
pub(crate) fn changed_paths(
    repo: &Repository,
    from: ObjectId,
    to: ObjectId,
) -> Result<Vec<String>> {
    if from == to {
        return Ok(Vec::new());
    }
    let commit = find_commit(repo, to)?;
    let one_on_top = commit.parent_count() == 1 && commit.parent_id(0).ok().map(oid) == Some(from);
    let mut paths: Vec<String> = if !one_on_top && is_ancestor(repo, from, to)? {
        let between = LogOptions {
            hide: vec![from],
            ..Default::default()
        };
        let mut paths = Vec::new();
        for c in log(repo, to, &between)? {
            let d = diff(repo, c.parents.first().copied(), c.id)?;
            paths.extend(d.into_iter().map(|d| d.path));
        }
        paths
    } else {
        diff(repo, Some(from), to)?
            .into_iter()
            .map(|d| d.path)
            .collect()
    };
    paths.sort_unstable();
    paths.dedup();
    Ok(paths)
}

pub(crate) fn is_ancestor(
    repo: &Repository,
    ancestor: ObjectId,
    descendant: ObjectId,
) -> Result<bool> {
    find_commit(repo, ancestor)?;
    let child = find_commit(repo, descendant)?;
    // The usual question, a commit one on top, is read off its parents: cheaper than a walk.
    if ancestor == descendant || child.parent_ids().any(|p| oid(p) == ancestor) {
        return Ok(true);
    }
    repo.graph_descendant_of(git_oid(descendant), git_oid(ancestor))
        .map_err(|e| local_error("failed to compare history", e))
}

/// What a path is in the tree being built.
#[derive(PartialEq, Eq)]
enum Node {
    File,
    Dir,
    Missing,
}

pub(crate) fn create_commit(repo: &Repository, request: &CommitRequest) -> Result<ObjectId> {
    let parent = match request.parent {
        Some(p) => Some(find_commit(repo, p)?),
        None => None,
    };
    let base = match &parent {
        Some(c) => c
            .tree()
            .map_err(|e| local_error("failed to read a tree", e))?,
        None => {
            let empty = repo
                .treebuilder(None)
                .and_then(|b| b.write())
                .map_err(|e| object_write_error(repo, "failed to write a tree", e, 64))?;
            repo.find_tree(empty)
                .map_err(|e| local_error("failed to read a tree", e))?
        }
    };
    // Collapse the changes to one final edit per path, checking each against the tree as the
    // earlier changes left it.
    let mut edits: BTreeMap<&str, Option<Oid>> = BTreeMap::new();
    let in_base = |path: &str| match base.get_path(std::path::Path::new(path)) {
        Ok(e) if e.kind() == Some(ObjectType::Tree) => Node::Dir,
        Ok(_) => Node::File,
        Err(_) => Node::Missing,
    };
    let node = |edits: &BTreeMap<&str, Option<Oid>>, path: &str| -> Node {
        match edits.get(path) {
            Some(Some(_)) => return Node::File,
            Some(None) => return Node::Missing,
            None => {}
        }
        let dir_prefix = format!("{path}/");
        // Edits are sorted: those under `path/` follow `path/` directly.
        let bounds = (
            std::ops::Bound::Included(dir_prefix.as_str()),
            std::ops::Bound::Unbounded,
        );
        if edits
            .range::<str, _>(bounds)
            .take_while(|(k, _)| k.starts_with(&dir_prefix))
            .any(|(_, v)| v.is_some())
        {
            return Node::Dir;
        }
        in_base(path)
    };
    for change in &request.changes {
        let path = change.path().as_str();
        match change {
            Change::Put { content, .. } => {
                if node(&edits, path) == Node::Dir {
                    return Err(Error::invalid(format!(
                        "cannot write `{path}`: it is a directory"
                    )));
                }
                let mut ancestor = path;
                while let Some(i) = ancestor.rfind('/') {
                    ancestor = &ancestor[..i];
                    if node(&edits, ancestor) == Node::File {
                        return Err(Error::invalid(format!(
                            "cannot write `{path}`: `{ancestor}` is a file"
                        )));
                    }
                }
                let blob = repo.blob(content).map_err(|e| {
                    object_write_error(repo, "failed to write a blob", e, content.len())
                })?;
                edits.insert(path, Some(blob));
            }
            Change::Delete { .. } => match node(&edits, path) {
                Node::File => {
                    edits.insert(path, None);
                }
                Node::Dir => {
                    return Err(Error::invalid(format!(
                        "cannot delete `{path}`: it is a directory"
                    )));
                }
                Node::Missing => {
                    return Err(Error::not_found(format!(
                        "cannot delete `{path}`: no such file"
                    )));
                }
            },
        }
    }
    let mut update = git2::build::TreeUpdateBuilder::new();
    for (path, edit) in &edits {
        match edit {
            Some(blob) => {
                // Keep the mode of an existing file (e.g. executable); new files are regular.
                let mode = match base.get_path(std::path::Path::new(path)) {
                    Ok(e) if e.kind() == Some(ObjectType::Blob) => match e.filemode() {
                        0o100755 => git2::FileMode::BlobExecutable,
                        _ => git2::FileMode::Blob,
                    },
                    _ => git2::FileMode::Blob,
                };
                update.upsert(path, *blob, mode);
            }
            None => {
                update.remove(path);
            }
        }
    }
    let tree_id = update
        .create_updated(repo, &base)
        .map_err(|e| object_write_error(repo, "failed to write trees", e, 64 * 1024))?;
    let tree = repo
        .find_tree(tree_id)
        .map_err(|e| local_error("failed to read a tree", e))?;
    let author = git_signature(&request.author)?;
    let committer = git_signature(&request.committer)?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let id = repo
        .commit(None, &author, &committer, &request.message, &tree, &parents)
        .map_err(|e| {
            let size = request.message.len() + 1024;
            object_write_error(repo, "failed to write a commit", e, size)
        })?;
    Ok(oid(id))
}

/// Bytes of the objects that [`create_commit`] wrote for `request` as commit `id`, at most:
/// the new blobs, the trees on the paths of the changes, and the commit. An object that
/// existed already is not stored again, so this may count more than was stored. Meant for the
/// memory store's account of what it holds in RAM; never fails (the commit exists already):
/// an object whose header cannot be read is left out.
pub(crate) fn commit_size(repo: &Repository, id: ObjectId, request: &CommitRequest) -> u64 {
    let mut bytes = 0;
    let mut dirs = std::collections::BTreeSet::new();
    for change in &request.changes {
        if let Change::Put { content, .. } = change {
            bytes += content.len() as u64;
        }
        let path = change.path().as_str();
        dirs.extend(path.match_indices('/').map(|(i, _)| &path[..i]));
    }
    let (Ok(odb), Ok(commit)) = (repo.odb(), repo.find_commit(git_oid(id))) else {
        return bytes;
    };
    let size = |oid: Oid| odb.read_header(oid).map_or(0, |(n, _)| n as u64);
    bytes += size(commit.id());
    if let Ok(tree) = commit.tree() {
        bytes += size(tree.id());
        for dir in dirs {
            // A directory that a deletion emptied is gone from the new tree.
            if let Ok(entry) = tree.get_path(std::path::Path::new(dir)) {
                bytes += size(entry.id());
            }
        }
    }
    bytes
}

/// Every reference under `refs/` that resolves to a commit.
pub(crate) fn all_refs(repo: &Repository) -> Result<BTreeMap<RefName, ObjectId>> {
    let mut out = BTreeMap::new();
    let refs = repo
        .references()
        .map_err(|e| local_error("failed to list references", e))?;
    for r in refs {
        let r = match r {
            Ok(r) => r,
            // A reference deleted while listing.
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(local_error("failed to list references", e)),
        };
        let Some(name) = r.name().ok().map(str::to_owned) else {
            continue;
        };
        if !name.starts_with("refs/") {
            continue;
        }
        let Ok(name) = RefName::new(name) else {
            continue;
        };
        if let Ok(commit) = r.peel_to_commit() {
            out.insert(name, oid(commit.id()));
        }
    }
    Ok(out)
}

pub(crate) fn resolve(repo: &Repository, name: &RefName) -> Result<Option<ObjectId>> {
    match repo.find_reference(name.as_str()) {
        Ok(r) => Ok(Some(oid(r
            .peel_to_commit()
            .map_err(|e| local_error("failed to resolve a reference", e))?
            .id()))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(local_error("failed to resolve a reference", e)),
    }
}

fn describe(id: Option<ObjectId>) -> String {
    id.map_or_else(|| "nothing".to_owned(), |i| i.to_string())
}

fn moved(update: &RefUpdate, actual: Option<ObjectId>) -> Error {
    let expected = match update.expected {
        Expected::Any => "anything".to_owned(),
        Expected::Absent => "nothing".to_owned(),
        Expected::Value(v) => v.to_string(),
    };
    Error::RefMoved {
        reference: update.name.to_string(),
        expected,
        actual: describe(actual),
    }
}

/// How long an update waits for a reference locked by another writer, as git does
/// (`core.filesRefLockTimeout`).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

enum Attempt {
    Locked,
    Failed(Error),
}

impl From<Error> for Attempt {
    fn from(e: Error) -> Self {
        Attempt::Failed(e)
    }
}

pub(crate) fn update_ref(repo: &Repository, update: &RefUpdate) -> Result<()> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match update_ref_once(repo, update) {
            Ok(()) => return Ok(()),
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Locked) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(Attempt::Locked) => {
                return Err(Error::Storage {
                    message: format!(
                        "`{0}` is locked: `{0}.lock` exists; if no git process is running, remove that file",
                        update.name
                    ),
                    source: None,
                });
            }
        }
    }
}

fn update_ref_once(repo: &Repository, update: &RefUpdate) -> Result<(), Attempt> {
    let name = update.name.as_str();
    match update.new {
        Some(new) => {
            find_commit(repo, new).map_err(|_| {
                Error::invalid(format!("cannot point `{name}` at {new}: no such commit"))
            })?;
            let result = match update.expected {
                Expected::Any => repo
                    .reference(name, git_oid(new), true, &update.message)
                    .map(drop),
                // A zero current id means "must not exist", checked under the reference's
                // lock (with `force = false` libgit2 checks before taking the lock).
                Expected::Absent => repo
                    .reference_matching(name, git_oid(new), true, Oid::ZERO_SHA1, &update.message)
                    .map(drop),
                Expected::Value(old) => {
                    if resolve(repo, &update.name)? != Some(old) {
                        return Err(moved(update, resolve(repo, &update.name)?).into());
                    }
                    repo.reference_matching(name, git_oid(new), true, git_oid(old), &update.message)
                        .map(drop)
                }
            };
            match result {
                Ok(()) => Ok(()),
                Err(e) if e.code() == git2::ErrorCode::Locked => Err(Attempt::Locked),
                Err(e)
                    if matches!(
                        e.code(),
                        git2::ErrorCode::Exists
                            | git2::ErrorCode::Modified
                            | git2::ErrorCode::NotFound
                    ) =>
                {
                    Err(moved(update, resolve(repo, &update.name)?).into())
                }
                Err(e) => Err(local_error(&format!("failed to update `{name}`"), e).into()),
            }
        }
        None => {
            let mut r = match repo.find_reference(name) {
                Ok(r) => r,
                Err(e) if is_not_found(&e) => {
                    return match update.expected {
                        Expected::Value(_) => Err(moved(update, None).into()),
                        _ => Ok(()),
                    };
                }
                Err(e) => return Err(local_error(&format!("failed to read `{name}`"), e).into()),
            };
            let current = r.target().map(oid);
            if !update.expected.matches(current) {
                return Err(moved(update, current).into());
            }
            // libgit2 deletes only if the reference still holds the value it was read with.
            match r.delete() {
                Ok(()) => Ok(()),
                Err(e) if e.code() == git2::ErrorCode::Locked => Err(Attempt::Locked),
                Err(e)
                    if matches!(
                        e.code(),
                        git2::ErrorCode::Modified | git2::ErrorCode::NotFound
                    ) =>
                {
                    Err(moved(update, resolve(repo, &update.name)?).into())
                }
                Err(e) => Err(local_error(&format!("failed to delete `{name}`"), e).into()),
            }
        }
    }
}
