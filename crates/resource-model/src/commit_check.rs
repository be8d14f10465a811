//! Checking a commit of raw file changes (the storage API's `Commit`) against an environment:
//! the features files and `flipt.yaml` it writes must validate afterwards, the way the server
//! validates an environment before serving it.

use std::collections::{BTreeMap, BTreeSet};

use git_backend::{Change, EntryKind, GitBackend, ObjectId, RepoPath};

use crate::config::{CONFIG_FILES, RepositoryConfig};
use crate::error::{Problem, Result};
use crate::model::DEFAULT_NAMESPACE;
use crate::snapshot::{FEATURES_FILES, FileRole, classify, join, normalise_directory};
use crate::validate;

/// The problems `changes`, applied in order on `head` (`None`: an empty branch), leave in
/// the files they write in the environment whose directory is `directory` (`""`: the
/// repository root). Empty when the commit may go ahead.
///
/// A namespace is checked when the commit writes one of its features files
/// (`<namespace>/features.{yaml,yml,json}`, or `features.*` at the top for `default`): the
/// file must parse, follow the schema, have no duplicate keys, reference only segments and
/// variants of its namespace, name its folder's namespace, and be the namespace's only
/// features file. `flipt.yaml`/`flipt.yml` are checked when the commit writes one of them
/// (it must parse, and only one of the two may exist). Files the commit does not write are
/// not checked, so a commit can fix one broken file while another is still broken; deleting
/// a file is never a problem; files outside the environment's files (other folders, deeper
/// paths, other names) are not looked at. Problems name the file from the repository root,
/// and the line where it is known.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use git_backend::{Change, RepoPath};
///
/// let backend = git_backend_memory::MemoryBackend::new(Default::default()).unwrap();
/// let put = |path: &str, text: &str| Change::Put {
///     path: RepoPath::new(path).unwrap(),
///     content: text.as_bytes().to_vec(),
/// };
/// let ok = [put("prod/team/features.yaml", "flags:\n  - key: a\n    name: A\n")];
/// assert!(resource_model::check_commit(&backend, None, "prod", &ok).await.unwrap().is_empty());
///
/// let broken = [put("prod/team/features.yaml", "flags:\n  - key: a\n    name: [\n")];
/// let problems = resource_model::check_commit(&backend, None, "prod", &broken).await.unwrap();
/// assert_eq!(problems[0].file, "prod/team/features.yaml");
///
/// // Not a file of the environment in `prod`: not checked.
/// let elsewhere = [put("staging/team/features.yaml", "flags: [\n")];
/// assert!(resource_model::check_commit(&backend, None, "prod", &elsewhere).await.unwrap().is_empty());
/// # }
/// ```
pub async fn check_commit(
    backend: &dyn GitBackend,
    head: Option<ObjectId>,
    directory: &str,
    changes: &[Change],
) -> Result<Vec<Problem>> {
    let directory = normalise_directory(directory)?;
    let prefix = if directory.is_empty() {
        String::new()
    } else {
        format!("{directory}/")
    };

    // What the commit leaves in the environment's files, by path from the repository root
    // (the last change of a path wins), with each file's role.
    let mut after: BTreeMap<&str, (FileRole, Option<&[u8]>)> = BTreeMap::new();
    for change in changes {
        let path = change.path().as_str();
        let Some(role) = path.strip_prefix(&prefix).and_then(classify) else {
            continue;
        };
        let content = match change {
            Change::Put { content, .. } => Some(content.as_slice()),
            Change::Delete { .. } => None,
        };
        after.insert(path, (role, content));
    }
    let mut config_written = false;
    let mut namespaces: BTreeSet<&str> = BTreeSet::new();
    for (role, content) in after.values() {
        match (role, content) {
            (_, None) => {}
            (FileRole::Config, Some(_)) => config_written = true,
            (FileRole::Features { namespace }, Some(_)) => {
                namespaces.insert(namespace.as_str());
            }
        }
    }
    if !config_written && namespaces.is_empty() {
        return Ok(Vec::new());
    }

    // The files at head of the folders the checks look at: the environment's top level
    // (configuration, `default`'s top-level file) and the folder of each namespace written.
    let mut folders: BTreeSet<String> = BTreeSet::new();
    folders.insert(directory.clone());
    for ns in &namespaces {
        folders.insert(join(&directory, ns));
    }
    let mut at_head: BTreeSet<String> = BTreeSet::new();
    if let Some(head) = head {
        for folder in &folders {
            let dir = if folder.is_empty() {
                None
            } else {
                Some(RepoPath::new(folder.clone())?)
            };
            for e in backend.list_tree(head, dir.as_ref(), false).await? {
                if matches!(e.kind, EntryKind::File | EntryKind::Executable) {
                    at_head.insert(e.path);
                }
            }
        }
    }
    let present = |path: &str| match after.get(path) {
        Some((_, content)) => content.is_some(),
        None => at_head.contains(path),
    };
    let written = |path: &str| after.get(path).and_then(|(_, content)| *content);

    let mut problems = Vec::new();

    if config_written {
        let configs: Vec<String> = CONFIG_FILES
            .iter()
            .map(|name| join(&directory, name))
            .filter(|p| present(p))
            .collect();
        if let [first, second, ..] = configs.as_slice() {
            problems.push(Problem::file(
                second,
                format!("both {} exist; {first} is used", CONFIG_FILES.join(" and ")),
            ));
        }
        // The one that is used, as the server reads it.
        if let Some(path) = configs.first()
            && let Some(bytes) = written(path)
            && let Err(p) = RepositoryConfig::parse(path, bytes)
        {
            problems.extend(p);
        }
    }

    for ns in namespaces {
        // Every path this namespace's features file may have.
        let mut candidates: Vec<String> = FEATURES_FILES
            .iter()
            .map(|name| join(&directory, &format!("{ns}/{name}")))
            .collect();
        if ns == DEFAULT_NAMESPACE {
            candidates.extend(FEATURES_FILES.iter().map(|name| join(&directory, name)));
        }
        let mut files: Vec<&String> = candidates.iter().filter(|p| present(p)).collect();
        // In tree order, as the server lists them.
        files.sort();
        if let Some(why) = crate::key::key_problem(ns) {
            for f in files.iter().filter(|f| written(f).is_some()) {
                problems.push(Problem::file(
                    f.as_str(),
                    format!("the folder name is not a valid namespace key: {why}"),
                ));
            }
            continue;
        }
        if files.len() > 1 {
            let paths: Vec<&str> = files.iter().map(|f| f.as_str()).collect();
            for f in &files {
                problems.push(Problem::file(
                    f.as_str(),
                    format!(
                        "namespace \"{ns}\" has more than one features file ({})",
                        paths.join(", ")
                    ),
                ));
            }
            continue;
        }
        for f in files {
            if let Some(bytes) = written(f) {
                let (_, _, p) = validate::check_file(f, ns, bytes);
                problems.extend(p);
            }
        }
    }
    problems.sort();
    problems.dedup();
    Ok(problems)
}
