//! Immutable snapshots of an environment at a commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use git_backend::{EntryKind, GitBackend, ObjectId, RepoPath};

use crate::config::{CONFIG_FILES, RepositoryConfig};
use crate::document::{Document, DocumentNamespace, FeaturesFile, Skeleton};
use crate::error::{Error, Problem, Problems, Result};
use crate::model::*;
use crate::ops::FileCache;
use crate::validate;

/// The blob id of an empty file: the digest of a namespace that has no file.
const EMPTY_BLOB: &str = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";

/// The names a namespace's features file may have, in lookup order.
pub const FEATURES_FILES: [&str; 3] = ["features.yaml", "features.yml", "features.json"];

/// What a file of an environment directory is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileRole {
    Config,
    Features { namespace: String },
}

/// The role of a path relative to the environment directory: `flipt.yaml`/`flipt.yml`,
/// `<namespace>/features.{yaml,yml,json}`, or `features.*` at the top (namespace `default`).
/// Anything else (deeper folders, other names) is not read.
pub(crate) fn classify(rel: &str) -> Option<FileRole> {
    match rel.split_once('/') {
        None if CONFIG_FILES.contains(&rel) => Some(FileRole::Config),
        None if FEATURES_FILES.contains(&rel) => Some(FileRole::Features {
            namespace: DEFAULT_NAMESPACE.into(),
        }),
        Some((folder, file)) if !file.contains('/') && FEATURES_FILES.contains(&file) => {
            Some(FileRole::Features {
                namespace: folder.to_owned(),
            })
        }
        _ => None,
    }
}

/// Normalises an environment directory: `""`, `.` and `/` are the root; no trailing `/`.
pub(crate) fn normalise_directory(directory: &str) -> Result<String> {
    let d = directory.trim_matches('/');
    if d.is_empty() || d == "." {
        return Ok(String::new());
    }
    RepoPath::new(d)?;
    Ok(d.to_owned())
}

pub(crate) fn join(directory: &str, rel: &str) -> String {
    if directory.is_empty() {
        rel.to_owned()
    } else {
        format!("{directory}/{rel}")
    }
}

/// The features file of a namespace as stored: its path from the repository root and blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceFile {
    /// Path from the repository root.
    pub path: String,
    /// Blob id of the content.
    pub blob: ObjectId,
}

/// One namespace of a snapshot: its flags and segments in file order, indexed by key.
#[derive(Debug, Clone)]
pub struct NamespaceSnapshot {
    namespace: Namespace,
    file: Option<NamespaceFile>,
    flags: Vec<Arc<Flag>>,
    flag_index: HashMap<String, usize>,
    segments: Vec<Segment>,
    segment_index: HashMap<String, usize>,
    digest: String,
}

impl NamespaceSnapshot {
    /// The namespace: from the first document that describes it (`namespace: {key, name,
    /// description}`), else its key as name (`default`: `Default`, "The default namespace").
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The features file, if the namespace has one (`default` may not).
    pub fn file(&self) -> Option<&NamespaceFile> {
        self.file.as_ref()
    }

    /// Flags, in file order (shared with the documents they were read from and with the
    /// snapshots that reuse this namespace).
    pub fn flags(&self) -> &[Arc<Flag>] {
        &self.flags
    }

    /// Segments, in file order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// A flag by key.
    pub fn flag(&self, key: &str) -> Option<&Flag> {
        self.flag_index
            .get(key)
            .and_then(|i| self.flags.get(*i))
            .map(|f| &**f)
    }

    /// A segment by key.
    pub fn segment(&self, key: &str) -> Option<&Segment> {
        self.segment_index
            .get(key)
            .and_then(|i| self.segments.get(*i))
    }

    /// The namespace's digest: the blob id (40 hex digits) of its features file, which
    /// changes exactly when the file does (Flipt uses the SHA-1 of the file's bytes; a blob id
    /// is the SHA-1 of a short header and the bytes, so it is as good an entity tag and costs
    /// nothing to get). A namespace without a file has the empty blob's id.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    fn synthesised_default() -> Self {
        NamespaceSnapshot {
            namespace: Namespace::synthesised_default(),
            file: None,
            flags: Vec::new(),
            flag_index: HashMap::new(),
            segments: Vec::new(),
            segment_index: HashMap::new(),
            digest: EMPTY_BLOB.into(),
        }
    }

    /// Builds a namespace from its validated documents.
    /// The flags are shared with the documents.
    pub(crate) fn from_documents<'a>(
        key: &str,
        file: Option<NamespaceFile>,
        docs: impl IntoIterator<Item = &'a Arc<Document>>,
    ) -> Self {
        let mut namespace = None;
        let mut flags = Vec::new();
        let mut segments = Vec::new();
        for doc in docs {
            if namespace.is_none()
                && let Some(DocumentNamespace::Details {
                    key,
                    name,
                    description,
                }) = &doc.namespace
            {
                namespace = Some(Namespace {
                    protected: key == DEFAULT_NAMESPACE,
                    name: if name.is_empty() {
                        key.clone()
                    } else {
                        name.clone()
                    },
                    key: key.clone(),
                    description: description.clone(),
                });
            }
            flags.extend(doc.flags.iter().cloned());
            segments.extend(doc.segments.iter().cloned());
        }
        let namespace = namespace.unwrap_or_else(|| {
            if key == DEFAULT_NAMESPACE {
                Namespace::synthesised_default()
            } else {
                Namespace::new(key, key)
            }
        });
        let flag_index = flags
            .iter()
            .enumerate()
            .map(|(i, f)| (f.key.clone(), i))
            .collect();
        let segment_index = segments
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key.clone(), i))
            .collect();
        NamespaceSnapshot {
            namespace,
            digest: file
                .as_ref()
                .map_or_else(|| EMPTY_BLOB.to_owned(), |f| f.blob.to_string()),
            file,
            flags,
            flag_index,
            segments,
            segment_index,
        }
    }
}

/// How much work a build did: files parsed, and namespaces reused from the previous snapshot
/// because their file's blob did not change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildStats {
    /// Features files read and parsed.
    pub files_parsed: usize,
    /// Namespaces taken over unchanged from the previous snapshot.
    pub files_reused: usize,
    /// Features files taken, already parsed and validated, from the writes' cache.
    pub files_from_writes: usize,
}

/// An environment at a commit: every namespace with its flags and segments, validated. Cheap
/// to share (`Arc<Snapshot>`), never changed after it is built; a new commit gives a new
/// snapshot ([`Snapshot::rebuild`] re-parses only the files that changed).
#[derive(Debug, Clone)]
pub struct Snapshot {
    commit: ObjectId,
    directory: String,
    config: Arc<RepositoryConfig>,
    config_file: Option<NamespaceFile>,
    namespaces: BTreeMap<String, Arc<NamespaceSnapshot>>,
    stats: BuildStats,
}

/// One file of the environment, with what it is and (unless it is reused) its content.
pub(crate) struct Input {
    pub(crate) path: String,
    pub(crate) blob: ObjectId,
    pub(crate) role: FileRole,
    pub(crate) bytes: Option<Vec<u8>>,
    /// The file as a write produced it (from the [`FileCache`]): valid, not parsed again.
    pub(crate) parsed: Option<Arc<FeaturesFile>>,
}

impl Snapshot {
    /// Builds the snapshot of the environment in `directory` (`""` for the repository root)
    /// at `commit`. If anything does not validate, the error is [`Error::Invalid`] with every
    /// problem found (file, document, item, line), and there is no snapshot.
    pub async fn build(
        backend: &dyn GitBackend,
        commit: ObjectId,
        directory: &str,
    ) -> Result<Arc<Snapshot>> {
        build(backend, commit, directory, None, None).await
    }

    /// [`Snapshot::build`], leaving what it parsed in `cache` (the
    /// [`WriteTarget`](crate::WriteTarget)'s) without the files' text: the first write to any
    /// namespace then reads its file's text again but does not parse it.
    pub async fn build_with(
        backend: &dyn GitBackend,
        commit: ObjectId,
        directory: &str,
        cache: &FileCache,
    ) -> Result<Arc<Snapshot>> {
        build(backend, commit, directory, None, Some(cache)).await
    }

    /// Builds the snapshot of a newer commit, re-using every namespace whose file has the
    /// same blob as in `self`, and parsing only the others.
    pub async fn rebuild(
        &self,
        backend: &dyn GitBackend,
        commit: ObjectId,
    ) -> Result<Arc<Snapshot>> {
        build(backend, commit, &self.directory, Some(self), None).await
    }

    /// [`Snapshot::rebuild`], taking the namespace files that writes produced from `cache`
    /// (the [`WriteTarget`](crate::WriteTarget)'s) instead of parsing them: after a write
    /// through this crate, a rebuild parses nothing.
    pub async fn rebuild_with(
        &self,
        backend: &dyn GitBackend,
        commit: ObjectId,
        cache: &FileCache,
    ) -> Result<Arc<Snapshot>> {
        build(backend, commit, &self.directory, Some(self), Some(cache)).await
    }

    /// The commit it was built from.
    pub fn commit(&self) -> ObjectId {
        self.commit
    }

    /// The environment directory (`""`: the repository root).
    pub fn directory(&self) -> &str {
        &self.directory
    }

    /// The environment's `flipt.yaml` (defaults if it has none).
    pub fn config(&self) -> &RepositoryConfig {
        &self.config
    }

    /// Every namespace, by key (`default` always among them).
    pub fn namespaces(&self) -> impl Iterator<Item = &NamespaceSnapshot> {
        self.namespaces.values().map(|n| &**n)
    }

    /// A namespace by key.
    pub fn namespace(&self, key: &str) -> Option<&NamespaceSnapshot> {
        self.namespaces.get(key).map(|n| &**n)
    }

    /// A flag by namespace and key.
    pub fn flag(&self, namespace: &str, key: &str) -> Option<&Flag> {
        self.namespace(namespace)?.flag(key)
    }

    /// A segment by namespace and key.
    pub fn segment(&self, namespace: &str, key: &str) -> Option<&Segment> {
        self.namespace(namespace)?.segment(key)
    }

    /// What the build did.
    pub fn stats(&self) -> BuildStats {
        self.stats
    }
}

/// A snapshot build whose files are read, and which is left to parse and validate them:
/// [`PendingBuild::finish`] is CPU work (a cold 10,000-flag build takes about 0.2 s), for a
/// thread where blocking is allowed (e.g. `tokio::task::spawn_blocking`), not an async one.
/// From [`Snapshot::prepare`].
pub struct PendingBuild {
    commit: ObjectId,
    directory: String,
    inputs: Vec<Input>,
    previous: Option<Arc<Snapshot>>,
    cache: Option<Arc<FileCache>>,
}

impl std::fmt::Debug for PendingBuild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingBuild")
            .field("commit", &self.commit)
            .field("directory", &self.directory)
            .field("files", &self.inputs.len())
            .finish_non_exhaustive()
    }
}

impl PendingBuild {
    /// Parses, validates and indexes what was read: the snapshot, or every problem.
    pub fn finish(self) -> Result<Arc<Snapshot>> {
        finish(
            self.commit,
            self.directory,
            self.inputs,
            self.previous.as_deref(),
            self.cache.as_deref(),
        )
    }
}

impl Snapshot {
    /// The first half of a build (what [`Snapshot::build_with`] and
    /// [`Snapshot::rebuild_with`] do at once): lists the environment's files at `commit` and
    /// reads those that `previous` (a snapshot of the same directory) and `cache` do not
    /// already hold. [`PendingBuild::finish`] does the rest, off the async threads.
    pub async fn prepare(
        backend: &dyn GitBackend,
        commit: ObjectId,
        directory: &str,
        previous: Option<Arc<Snapshot>>,
        cache: Option<Arc<FileCache>>,
    ) -> Result<PendingBuild> {
        let (directory, inputs) = read_inputs(
            backend,
            commit,
            directory,
            previous.as_deref(),
            cache.as_deref(),
        )
        .await?;
        Ok(PendingBuild {
            commit,
            directory,
            inputs,
            previous,
            cache,
        })
    }
}

async fn build(
    backend: &dyn GitBackend,
    commit: ObjectId,
    directory: &str,
    previous: Option<&Snapshot>,
    cache: Option<&FileCache>,
) -> Result<Arc<Snapshot>> {
    let (directory, inputs) = read_inputs(backend, commit, directory, previous, cache).await?;
    finish(commit, directory, inputs, previous, cache)
}

/// [`assemble`], with this crate's error.
fn finish(
    commit: ObjectId,
    directory: String,
    inputs: Vec<Input>,
    previous: Option<&Snapshot>,
    cache: Option<&FileCache>,
) -> Result<Arc<Snapshot>> {
    assemble(commit, directory, inputs, previous, cache)
        .map(Arc::new)
        .map_err(|problems| Error::Invalid(Problems(problems)))
}

/// Lists the environment's files and reads the ones that must be parsed.
async fn read_inputs(
    backend: &dyn GitBackend,
    commit: ObjectId,
    directory: &str,
    previous: Option<&Snapshot>,
    cache: Option<&FileCache>,
) -> Result<(String, Vec<Input>)> {
    let directory = normalise_directory(directory)?;
    let dir_path = if directory.is_empty() {
        None
    } else {
        Some(RepoPath::new(directory.clone())?)
    };
    let entries = backend.list_tree(commit, dir_path.as_ref(), true).await?;
    let prefix = if directory.is_empty() {
        String::new()
    } else {
        format!("{directory}/")
    };
    let mut inputs = Vec::new();
    for e in entries {
        if !matches!(e.kind, EntryKind::File | EntryKind::Executable) {
            continue;
        }
        let Some(rel) = e.path.strip_prefix(&prefix) else {
            continue;
        };
        let Some(role) = classify(rel) else { continue };
        let file = NamespaceFile {
            path: e.path.clone(),
            blob: e.id,
        };
        let reusable = previous.is_some_and(|p| match &role {
            FileRole::Config => p.config_file.as_ref() == Some(&file),
            FileRole::Features { namespace } => p
                .namespaces
                .get(namespace)
                .is_some_and(|n| n.file.as_ref() == Some(&file)),
        });
        let parsed = match (&role, cache) {
            (FileRole::Features { .. }, Some(cache)) if !reusable => cache.get(&e.path, e.id),
            _ => None,
        };
        let bytes = if reusable || parsed.is_some() {
            None
        } else {
            Some(backend.read_blob(e.id).await?)
        };
        inputs.push(Input {
            path: e.path,
            blob: e.id,
            role,
            bytes,
            parsed,
        });
    }
    Ok((directory, inputs))
}

/// Builds a snapshot from the files of an environment; every problem if it does not
/// validate. An input without bytes is taken from `previous`.
pub(crate) fn assemble(
    commit: ObjectId,
    directory: String,
    inputs: Vec<Input>,
    previous: Option<&Snapshot>,
    cache: Option<&FileCache>,
) -> Result<Snapshot, Vec<Problem>> {
    let mut problems: Vec<Problem> = Vec::new();
    let mut stats = BuildStats::default();

    // The repository configuration: `flipt.yaml`, else `flipt.yml`.
    let configs: Vec<&Input> = inputs
        .iter()
        .filter(|i| i.role == FileRole::Config)
        .collect();
    let mut config = Arc::new(RepositoryConfig::default());
    let mut config_file = None;
    if configs.len() > 1 {
        problems.push(Problem::file(
            &configs[1].path,
            format!(
                "both {} exist; {} is used",
                CONFIG_FILES.join(" and "),
                configs[0].path
            ),
        ));
    }
    if let Some(input) = configs.first() {
        match (&input.bytes, previous) {
            (None, Some(p)) => config = p.config.clone(),
            (Some(bytes), _) => match RepositoryConfig::parse(&input.path, bytes) {
                Ok(c) => config = Arc::new(c),
                Err(p) => problems.extend(p),
            },
            (None, None) => {}
        }
        config_file = Some(NamespaceFile {
            path: input.path.clone(),
            blob: input.blob,
        });
    }

    // Namespaces: one features file each.
    let mut by_namespace: BTreeMap<&str, Vec<&Input>> = BTreeMap::new();
    for input in &inputs {
        if let FileRole::Features { namespace } = &input.role {
            by_namespace
                .entry(namespace.as_str())
                .or_default()
                .push(input);
        }
    }
    let mut namespaces = BTreeMap::new();
    for (key, files) in by_namespace {
        if let Some(why) = crate::key::key_problem(key) {
            for f in &files {
                problems.push(Problem::file(
                    &f.path,
                    format!("the folder name is not a valid namespace key: {why}"),
                ));
            }
            continue;
        }
        if files.len() > 1 {
            let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
            for f in &files {
                problems.push(Problem::file(
                    &f.path,
                    format!(
                        "namespace \"{key}\" has more than one features file ({})",
                        paths.join(", ")
                    ),
                ));
            }
            continue;
        }
        let Some(input) = files.first() else { continue };
        let file = NamespaceFile {
            path: input.path.clone(),
            blob: input.blob,
        };
        match &input.bytes {
            None if input.parsed.is_some() => {
                if let Some(parsed) = &input.parsed {
                    stats.files_from_writes += 1;
                    namespaces.insert(
                        key.to_owned(),
                        Arc::new(NamespaceSnapshot::from_documents(
                            key,
                            Some(file),
                            parsed.shared_documents(),
                        )),
                    );
                }
            }
            None => {
                if let Some(prev) = previous.and_then(|p| p.namespaces.get(key)) {
                    namespaces.insert(key.to_owned(), prev.clone());
                    stats.files_reused += 1;
                }
            }
            Some(bytes) => {
                stats.files_parsed += 1;
                match namespace_from_bytes(key, file, bytes) {
                    Ok((ns, skeleton)) => {
                        if let Some(cache) = cache {
                            cache.put_skeleton(&input.path, input.blob, skeleton);
                        }
                        namespaces.insert(key.to_owned(), Arc::new(ns));
                    }
                    Err(p) => problems.extend(p),
                }
            }
        }
    }
    if !problems.is_empty() {
        problems.sort();
        return Err(problems);
    }
    namespaces
        .entry(DEFAULT_NAMESPACE.to_owned())
        .or_insert_with(|| Arc::new(NamespaceSnapshot::synthesised_default()));
    Ok(Snapshot {
        commit,
        directory,
        config,
        config_file,
        namespaces,
        stats,
    })
}

/// Parses and validates one namespace file.
/// The namespace, and the file's parse for the writes (see [`FileCache`]).
pub(crate) fn namespace_from_bytes(
    key: &str,
    file: NamespaceFile,
    bytes: &[u8],
) -> Result<(NamespaceSnapshot, Arc<Skeleton>), Vec<Problem>> {
    let (pieces, _, problems) = validate::check_file(&file.path, key, bytes);
    if !problems.is_empty() {
        return Err(problems);
    }
    let skeleton = Skeleton::of(pieces);
    let ns = NamespaceSnapshot::from_documents(key, Some(file), skeleton.documents());
    Ok((ns, Arc::new(skeleton)))
}
