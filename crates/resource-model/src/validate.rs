//! Checks across the documents of a namespace (duplicates, references), and the command
//! line's `validate`: every features file of an environment, from a commit or a directory.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use git_backend::{GitBackend, ObjectId};

use crate::document::{self, DocProblem, List, Locator, ParsedPiece};
use crate::error::Problem;
use crate::model::*;
use crate::snapshot;

/// The reference problems of one flag, in Flipt's wording, given which segments exist.
pub(crate) fn flag_reference_problems(
    namespace: &str,
    flag: &Flag,
    segment_exists: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    // Formatted only for a problem: this runs for every flag of a namespace at every write.
    let name = || format!("{namespace}/{}", flag.key);
    let variants = KeySet::new(flag.variants.iter().map(|v| v.key.as_str()));
    for (i, rule) in flag.rules.iter().enumerate() {
        for s in &rule.segments {
            if !segment_exists(s) {
                out.push(format!(
                    "flag {} rule {} references unknown segment \"{s}\"",
                    name(),
                    i + 1
                ));
            }
        }
        for d in &rule.distributions {
            if !variants.contains(d.variant.as_str()) {
                out.push(format!(
                    "flag {} rule {} references unknown variant \"{}\"",
                    name(),
                    i + 1,
                    d.variant
                ));
            }
        }
    }
    for (i, rollout) in flag.rollouts.iter().enumerate() {
        if let RolloutRule::Segment(seg) = &rollout.rule {
            for s in &seg.segments {
                if !segment_exists(s) {
                    out.push(format!(
                        "flag {} rollout {} references unknown segment \"{s}\"",
                        name(),
                        i + 1
                    ));
                }
            }
        }
    }
    if let Some(default) = &flag.default_variant
        && !variants.contains(default.as_str())
    {
        out.push(format!(
            "flag {} default variant \"{default}\" is not one of its variants",
            name()
        ));
    }
    out
}

/// A set of keys that is a list while it is short (a flag has a few variants): checking
/// every flag of a namespace at every write hashed thousands of keys.
enum KeySet<'a> {
    Few(Vec<&'a str>),
    Many(HashSet<&'a str>),
}

impl<'a> KeySet<'a> {
    const FEW: usize = 16;

    fn new(keys: impl Iterator<Item = &'a str>) -> Self {
        let few: Vec<&str> = keys.collect();
        if few.len() <= Self::FEW {
            KeySet::Few(few)
        } else {
            KeySet::Many(few.into_iter().collect())
        }
    }

    /// An empty set for up to about `n` keys.
    fn for_keys(n: usize) -> Self {
        if n <= Self::FEW {
            KeySet::Few(Vec::with_capacity(n))
        } else {
            KeySet::Many(HashSet::with_capacity(n))
        }
    }

    fn contains(&self, key: &str) -> bool {
        match self {
            KeySet::Few(keys) => keys.contains(&key),
            KeySet::Many(keys) => keys.contains(key),
        }
    }

    /// Adds `key`; whether it was not in the set yet.
    fn insert(&mut self, key: &'a str) -> bool {
        match self {
            KeySet::Few(keys) if keys.contains(&key) => false,
            KeySet::Few(keys) => {
                keys.push(key);
                true
            }
            KeySet::Many(keys) => keys.insert(key),
        }
    }
}

/// Checks the documents of one namespace file: each document's namespace against the
/// folder's, duplicate keys, and references. `docs` are the file's parsed pieces.
pub(crate) fn namespace_problems(
    namespace: &str,
    pieces: &[ParsedPiece],
) -> Vec<(usize, usize, DocProblem)> {
    let docs: Vec<(usize, usize, &document::Document)> = pieces
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.doc.as_ref().map(|(n, d)| (i, *n, d)))
        .collect();
    document_problems(namespace, &docs)
}

/// The same checks over documents: (piece index, document number, document).
pub(crate) fn document_problems(
    namespace: &str,
    docs: &[(usize, usize, &document::Document)],
) -> Vec<(usize, usize, DocProblem)> {
    let mut out = Vec::new();
    let segments: HashSet<&str> = docs
        .iter()
        .flat_map(|(_, _, d)| d.segments.iter().map(|s| s.key.as_str()))
        .collect();
    let mut seen_flags: HashMap<&str, usize> = HashMap::new();
    let mut seen_segments: HashMap<&str, usize> = HashMap::new();
    for &(piece, number, doc) in docs {
        if let Some(ns) = &doc.namespace
            && ns.key() != namespace
        {
            out.push((
                piece,
                number,
                DocProblem {
                    item: Some("namespace".into()),
                    at: None,
                    field: Some("namespace"),
                    message: format!(
                        "the document's namespace \"{}\" is not its folder's, \"{namespace}\"",
                        crate::key::shorten(ns.key())
                    ),
                },
            ));
        }
        for (i, flag) in doc.flags.iter().enumerate() {
            let item = || Some(format!("flag {}", flag.key));
            if let Some(first) = seen_flags.insert(flag.key.as_str(), number) {
                out.push((
                    piece,
                    number,
                    DocProblem {
                        item: item(),
                        at: Some((List::Flags, i)),
                        field: None,
                        message: format!("duplicate flag key (also in document {first})"),
                    },
                ));
            }
            let mut variants = KeySet::for_keys(flag.variants.len());
            for v in &flag.variants {
                if !variants.insert(v.key.as_str()) {
                    out.push((
                        piece,
                        number,
                        DocProblem {
                            item: item(),
                            at: Some((List::Flags, i)),
                            field: None,
                            message: format!("duplicate variant key \"{}\"", v.key),
                        },
                    ));
                }
            }
            for message in flag_reference_problems(namespace, flag, |s| segments.contains(s)) {
                out.push((
                    piece,
                    number,
                    DocProblem {
                        item: item(),
                        at: Some((List::Flags, i)),
                        field: None,
                        message,
                    },
                ));
            }
        }
        for (i, segment) in doc.segments.iter().enumerate() {
            if let Some(first) = seen_segments.insert(segment.key.as_str(), number) {
                out.push((
                    piece,
                    number,
                    DocProblem {
                        item: Some(format!("segment {}", segment.key)),
                        at: Some((List::Segments, i)),
                        field: None,
                        message: format!("duplicate segment key (also in document {first})"),
                    },
                ));
            }
        }
    }
    out
}

/// Parses and checks one namespace file; every problem, with lines.
pub(crate) fn check_file(
    path: &str,
    namespace: &str,
    bytes: &[u8],
) -> (Vec<ParsedPiece>, String, Vec<Problem>) {
    let (text, pieces, mut problems) = document::parse_bytes(path, bytes);
    let locator = Locator::new(path, &text);
    for (piece, number, p) in namespace_problems(namespace, &pieces) {
        if let Some(piece) = pieces.get(piece) {
            problems.push(locator.problem(piece, number, p));
        }
    }
    (pieces, text, problems)
}

/// Validates an environment at a commit the way the server does before serving it: every
/// features file (`<namespace>/features.yaml|yml|json`, and `features.*` at the top for
/// `default`), and `flipt.yaml`/`flipt.yml`. Returns every problem, sorted by file and
/// line; an empty list means the commit is valid.
pub async fn validate_tree(
    backend: &dyn GitBackend,
    commit: ObjectId,
    directory: &str,
) -> Result<Vec<Problem>, crate::Error> {
    match snapshot::Snapshot::build(backend, commit, directory).await {
        Ok(_) => Ok(Vec::new()),
        Err(crate::Error::Invalid(problems)) => Ok(problems.0),
        Err(e) => Err(e),
    }
}

/// Validates a plain directory of files on disk (an environment directory: namespace folders
/// with features files, and `flipt.yaml`). Paths in problems are relative to `dir`. A
/// directory that cannot be read is one problem.
pub fn validate_dir(dir: &Path) -> Vec<Problem> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut problems = Vec::new();
    let read_dir = |p: &Path| -> Result<Vec<std::fs::DirEntry>, String> {
        let mut entries = std::fs::read_dir(p)
            .map_err(|e| e.to_string())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        entries.sort_by_key(|e| e.file_name());
        Ok(entries)
    };
    let top = match read_dir(dir) {
        Ok(t) => t,
        Err(e) => {
            return vec![Problem::file(
                dir.display().to_string(),
                format!("cannot read the directory: {e}"),
            )];
        }
    };
    for entry in top {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            if name.starts_with('.') {
                continue;
            }
            match read_dir(&path) {
                Ok(inner) => {
                    for file in inner {
                        let fname = file.file_name().to_string_lossy().into_owned();
                        let rel = format!("{name}/{fname}");
                        if snapshot::classify(&rel).is_some() && file.path().is_file() {
                            match std::fs::read(file.path()) {
                                Ok(bytes) => files.push((rel, bytes)),
                                Err(e) => problems
                                    .push(Problem::file(rel, format!("cannot read the file: {e}"))),
                            }
                        }
                    }
                }
                Err(e) => problems.push(Problem::file(
                    name,
                    format!("cannot read the directory: {e}"),
                )),
            }
        } else if snapshot::classify(&name).is_some() {
            match std::fs::read(&path) {
                Ok(bytes) => files.push((name, bytes)),
                Err(e) => problems.push(Problem::file(name, format!("cannot read the file: {e}"))),
            }
        }
    }
    problems.extend(validate_files(files));
    problems.sort();
    problems
}

/// Validates an environment given as its files (paths relative to the environment
/// directory).
pub(crate) fn validate_files(files: Vec<(String, Vec<u8>)>) -> Vec<Problem> {
    let inputs = files
        .into_iter()
        .filter_map(|(path, bytes)| {
            snapshot::classify(&path).map(|role| snapshot::Input {
                path,
                // Files on disk have no blob id; validation does not need one.
                blob: ObjectId::from_bytes([0; 20]),
                role,
                bytes: Some(bytes),
                parsed: None,
            })
        })
        .collect();
    match snapshot::assemble(
        ObjectId::from_bytes([0; 20]),
        String::new(),
        inputs,
        None,
        None,
    ) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}
