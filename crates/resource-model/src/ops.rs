//! Writes of namespaces, flags and segments, as re-appliable operations ([`WriteOp`]): each
//! plan reads the current head, checks the client's revision per resource, validates, and
//! returns the file changes and the commit message, or a refusal.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use git_backend::{
    Change, EntryKind, GitBackend, ObjectId, Plan, Refusal, RepoPath, WriteContext, WriteOp,
};

use crate::config::{
    self, CONFIG_FILES, ChangeRecord, EnvironmentInfo, RepositoryConfig, ResourceKind, Verb,
};
use crate::document::{FeaturesFile, Skeleton};
use crate::error::{Error, Result};
use crate::key::validate_key;
use crate::model::*;
use crate::snapshot::{FEATURES_FILES, join, normalise_directory};
use crate::template::Template;
use crate::validate;

/// One change to make.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// Create a namespace (`ALREADY_EXISTS` if it exists; `default` always does).
    CreateNamespace(Namespace),
    /// Update a namespace's name and description (`NOT_FOUND` if absent).
    UpdateNamespace(Namespace),
    /// Delete a namespace and its file (`default` is protected; absent: nothing to do).
    DeleteNamespace(String),
    /// Create a flag (`ALREADY_EXISTS` if it exists).
    CreateFlag {
        /// The namespace key.
        namespace: String,
        /// The flag.
        flag: Flag,
    },
    /// Update a flag in place (`NOT_FOUND` if absent).
    UpdateFlag {
        /// The namespace key.
        namespace: String,
        /// The flag.
        flag: Flag,
    },
    /// Delete a flag (absent: nothing to do).
    DeleteFlag {
        /// The namespace key.
        namespace: String,
        /// The flag key.
        key: String,
    },
    /// Create a segment (`ALREADY_EXISTS` if it exists).
    CreateSegment {
        /// The namespace key.
        namespace: String,
        /// The segment.
        segment: Segment,
    },
    /// Update a segment in place (`NOT_FOUND` if absent).
    UpdateSegment {
        /// The namespace key.
        namespace: String,
        /// The segment.
        segment: Segment,
    },
    /// Delete a segment (absent: nothing to do; used by a flag: refused).
    DeleteSegment {
        /// The namespace key.
        namespace: String,
        /// The segment key.
        key: String,
    },
}

/// What an operation touches, for the per-resource precondition.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Touch {
    /// The namespace's whole file.
    File,
    Flag(String),
    Segment(String),
}

impl Operation {
    fn namespace(&self) -> &str {
        match self {
            Operation::CreateNamespace(n) | Operation::UpdateNamespace(n) => &n.key,
            Operation::DeleteNamespace(k) => k,
            Operation::CreateFlag { namespace, .. }
            | Operation::UpdateFlag { namespace, .. }
            | Operation::DeleteFlag { namespace, .. }
            | Operation::CreateSegment { namespace, .. }
            | Operation::UpdateSegment { namespace, .. }
            | Operation::DeleteSegment { namespace, .. } => namespace,
        }
    }

    fn touch(&self) -> Touch {
        match self {
            Operation::CreateNamespace(_)
            | Operation::UpdateNamespace(_)
            | Operation::DeleteNamespace(_) => Touch::File,
            Operation::CreateFlag { flag, .. } | Operation::UpdateFlag { flag, .. } => {
                Touch::Flag(flag.key.clone())
            }
            Operation::DeleteFlag { key, .. } => Touch::Flag(key.clone()),
            Operation::CreateSegment { segment, .. } | Operation::UpdateSegment { segment, .. } => {
                Touch::Segment(segment.key.clone())
            }
            Operation::DeleteSegment { key, .. } => Touch::Segment(key.clone()),
        }
    }

    /// Checks every key the operation carries, so that no bad key reaches a tree path.
    fn check_keys(&self) -> Result<()> {
        validate_key("namespace", self.namespace())?;
        match self {
            Operation::CreateFlag { flag, .. } | Operation::UpdateFlag { flag, .. } => {
                validate_key("flag", &flag.key)?;
                for v in &flag.variants {
                    validate_key("variant", &v.key)?;
                }
                for s in flag.segment_keys() {
                    validate_key("segment", s)?;
                }
            }
            Operation::DeleteFlag { key, .. } => validate_key("flag", key)?,
            Operation::CreateSegment { segment, .. } | Operation::UpdateSegment { segment, .. } => {
                validate_key("segment", &segment.key)?;
            }
            Operation::DeleteSegment { key, .. } => validate_key("segment", key)?,
            _ => {}
        }
        Ok(())
    }
}

/// The environment a write goes to, and the server's commit template.
#[derive(Debug, Clone, Default)]
pub struct WriteTarget {
    /// The environment (its `directory` is where its namespaces are).
    pub environment: EnvironmentInfo,
    /// The server's `templates.commit_message`, used when `flipt.yaml` has none.
    pub server_commit_template: Option<Template>,
    /// Parsed namespace files shared by the writes to this environment.
    pub cache: Arc<FileCache>,
}

/// Namespace files parsed by earlier writes and validated, by path and blob id: a write
/// whose namespace file is one that an earlier write read or produced does not read or parse
/// it again, and a snapshot rebuilt after the write takes the documents from here instead of
/// parsing the new file (a namespace file of 100 flags takes milliseconds to parse; the rest
/// of a write, far less). A blob id names its content, so a stale entry is never used.
///
/// Bounded in two ways: each path keeps its [`VERSIONS_PER_PATH`] newest files (older
/// contents of a namespace are what the next write or rebuild will not ask for), and at most
/// [`CACHE_PATHS`] paths are kept, the least recently used going first. Keying the bound by
/// path matters: a stream of writes to one namespace must not push every other namespace out
/// (it did, when the bound was on (path, blob) entries: 100 writes to one namespace made the
/// next 100 writes to the others parse their files again).
#[derive(Debug, Default)]
pub struct FileCache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    /// Newest first.
    paths: HashMap<String, VecDeque<(ObjectId, Arc<FeaturesFile>)>>,
    /// Least recently used first.
    order: VecDeque<String>,
    /// What snapshot builds parsed, without the text, by path (the newest blob only): the
    /// documents, which share their flags with the snapshot, cost little memory.
    skeletons: HashMap<String, (ObjectId, Arc<Skeleton>)>,
}

/// Paths whose skeleton is kept at most (beyond, all are dropped: paths of deleted
/// namespaces must not pile up).
const SKELETON_PATHS: usize = 100_000;

/// Paths kept at most.
pub const CACHE_PATHS: usize = 256;
/// Files kept per path at most.
pub const VERSIONS_PER_PATH: usize = 2;

impl CacheInner {
    fn touch(&mut self, path: &str) {
        // A linear scan of at most `CACHE_PATHS` keys is nothing next to the parse it saves.
        if let Some(at) = self.order.iter().position(|k| k == path) {
            if at + 1 == self.order.len() {
                return;
            }
            if let Some(key) = self.order.remove(at) {
                self.order.push_back(key);
            }
        } else {
            self.order.push_back(path.to_owned());
        }
    }
}

impl FileCache {
    /// How many files it holds.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .map_or(0, |i| i.paths.values().map(VecDeque::len).sum())
    }

    /// How many files it knows from snapshot builds (kept without their text).
    pub fn skeletons(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.skeletons.len())
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file at `path` whose content is the blob `blob`, if cached.
    pub(crate) fn get(&self, path: &str, blob: ObjectId) -> Option<Arc<FeaturesFile>> {
        let mut inner = self.inner.lock().ok()?;
        let file = inner
            .paths
            .get(path)?
            .iter()
            .find(|(id, _)| *id == blob)
            .map(|(_, f)| f.clone())?;
        inner.touch(path);
        Some(file)
    }

    /// What a snapshot build parsed at `path` for the blob `blob`, if it is the newest.
    pub(crate) fn skeleton(&self, path: &str, blob: ObjectId) -> Option<Arc<Skeleton>> {
        let inner = self.inner.lock().ok()?;
        let (id, skeleton) = inner.skeletons.get(path)?;
        (*id == blob).then(|| skeleton.clone())
    }

    /// Keeps what a snapshot build parsed (a valid file) at `path` for the blob `blob`.
    pub(crate) fn put_skeleton(&self, path: &str, blob: ObjectId, skeleton: Arc<Skeleton>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.skeletons.len() >= SKELETON_PATHS && !inner.skeletons.contains_key(path) {
            inner.skeletons.clear();
        }
        inner.skeletons.insert(path.to_owned(), (blob, skeleton));
    }

    /// Caches `file`, which must be what parsing the blob `blob` at `path` gives, and valid.
    pub(crate) fn put(&self, path: &str, blob: ObjectId, file: FeaturesFile) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        // A skeleton is kept for the newest blob of its path only: one of another blob is
        // stale now, and it holds every flag of its parse, which the snapshot replaced with
        // the written ones (kept, they were ~1 KB per edited flag: M2 in BENCHMARKS.md).
        if inner.skeletons.get(path).is_some_and(|(id, _)| *id != blob) {
            inner.skeletons.remove(path);
        }
        let versions = inner.paths.entry(path.to_owned()).or_default();
        versions.retain(|(id, _)| *id != blob);
        versions.push_front((blob, Arc::new(file)));
        versions.truncate(VERSIONS_PER_PATH);
        inner.touch(path);
        while inner.order.len() > CACHE_PATHS {
            if let Some(old) = inner.order.pop_front() {
                inner.paths.remove(&old);
            }
        }
    }
}

/// A write of one or more operations, committed together. Implements [`WriteOp`], so the
/// sync engine can plan it again on a newer head.
#[derive(Debug, Clone)]
pub struct ResourceWrite {
    target: Arc<WriteTarget>,
    operations: Vec<Operation>,
}

/// A namespace's file as loaded at head, and its edits.
#[derive(Debug)]
struct NsFile {
    /// Path and blob at head, if it exists.
    at_head: Option<(String, ObjectId)>,
    path: String,
    file: FeaturesFile,
    /// Whether the file exists now (after the operations so far).
    exists: bool,
}

fn resource_name(kind: ResourceKind, namespace: &str, key: &str) -> String {
    format!("{}.{}/{namespace}/{key}", kind.package(), kind.name())
}

impl ResourceWrite {
    /// One operation.
    pub fn new(target: Arc<WriteTarget>, operation: Operation) -> Self {
        ResourceWrite {
            target,
            operations: vec![operation],
        }
    }

    /// Several operations in one commit, applied in order.
    pub fn batch(target: Arc<WriteTarget>, operations: Vec<Operation>) -> Self {
        ResourceWrite { target, operations }
    }

    /// The operations.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Plans the write on `ctx.head` (see [`WriteOp::plan`]), with this crate's error.
    pub async fn plan_write(&self, ctx: WriteContext<'_>) -> Result<Plan> {
        let dir = normalise_directory(&self.target.environment.directory)?;
        for op in &self.operations {
            op.check_keys()?;
        }
        let backend = ctx.backend;
        let mut namespaces: Vec<&str> = Vec::new();
        for op in &self.operations {
            if !namespaces.contains(&op.namespace()) {
                namespaces.push(op.namespace());
            }
        }
        // Every lookup at head is a call to the backend (a round trip to a blocking thread):
        // the namespace files and the repository's configuration are looked up together.
        let (head, dir_ref) = (ctx.head, dir.as_str());
        let loading = futures::future::try_join_all(namespaces.iter().map(|ns| async move {
            let file = load_namespace(backend, head, dir_ref, ns, &self.target.cache).await?;
            Ok::<_, Error>((ns.to_string(), file))
        }));
        let (loaded, config) =
            futures::future::join(loading, load_config(backend, ctx.head, &dir)).await;
        let mut files: HashMap<String, NsFile> = loaded?.into_iter().collect();
        self.check_preconditions(&ctx, &dir, &files).await?;

        let mut records = Vec::new();
        for op in &self.operations {
            let ns = op.namespace().to_owned();
            let Some(f) = files.get_mut(&ns) else {
                continue;
            };
            if let Some(record) = apply(op, &ns, f)? {
                records.push(record);
            }
        }

        let mut changes = Vec::new();
        let mut keys: Vec<&String> = files.keys().collect();
        keys.sort();
        for ns in &keys {
            let Some(f) = files.get(ns.as_str()) else {
                continue;
            };
            if !f.exists || !f.file.is_changed() {
                continue;
            }
            let (bytes, settled) = f.file.render_settled();
            let verified = settled.is_some();
            let problems: Vec<String> = if verified {
                // The written text reads back as the edited documents: checking those is
                // checking the file, without parsing it again.
                let docs: Vec<_> = f
                    .file
                    .documents()
                    .enumerate()
                    .map(|(i, d)| (i, i + 1, d))
                    .collect();
                validate::document_problems(ns.as_str(), &docs)
                    .into_iter()
                    .map(|(_, n, p)| match p.item {
                        Some(item) => format!("{} (document {n}, {item}): {}", f.path, p.message),
                        None => format!("{} (document {n}): {}", f.path, p.message),
                    })
                    .collect()
            } else {
                validate::check_file(&f.path, ns.as_str(), &bytes)
                    .2
                    .iter()
                    .map(|p| p.to_string())
                    .collect()
            };
            if !problems.is_empty() {
                return Err(Error::invalid(format!(
                    "the write would leave namespace \"{ns}\" invalid: {}",
                    problems.join("; ")
                )));
            }
            if let Some(settled) = settled {
                self.target
                    .cache
                    .put(&f.path, ObjectId::of_blob(&bytes), settled);
            }
            changes.push(Change::Put {
                path: RepoPath::new(f.path.clone())?,
                content: bytes,
            });
        }
        for ns in &keys {
            if let Some(NsFile {
                at_head: Some((path, _)),
                exists: false,
                ..
            }) = files.get(ns.as_str())
            {
                changes.push(Change::Delete {
                    path: RepoPath::new(path.clone())?,
                });
            }
        }
        if changes.is_empty() || records.is_empty() {
            return Ok(Plan::Nothing);
        }
        // Its errors count only now: a write that changes nothing does not need it.
        let config = config?;
        let message = config::commit_message(
            config.commit_message.as_ref(),
            self.target.server_commit_template.as_ref(),
            &self.target.environment,
            &records,
        )
        .map_err(|e| Error::FailedPrecondition(format!("commit message template: {e}")))?;
        Ok(Plan::Commit { changes, message })
    }

    /// Each resource a write touches must be the same at the client's revision and at head.
    async fn check_preconditions(
        &self,
        ctx: &WriteContext<'_>,
        dir: &str,
        files: &HashMap<String, NsFile>,
    ) -> Result<()> {
        let (Some(base), Some(head)) = (ctx.base, ctx.head) else {
            return Ok(());
        };
        if base == head {
            return Ok(());
        }
        let mut base_files: HashMap<&str, Option<FeaturesFile>> = HashMap::new();
        for op in &self.operations {
            let ns = op.namespace();
            let Some(at_head) = files.get(ns) else {
                continue;
            };
            let base_entry = namespace_entry(ctx.backend, Some(base), dir, ns).await?;
            if base_entry == at_head.at_head {
                continue;
            }
            let touch = op.touch();
            let conflict = |resource: String| Error::Conflict {
                resource,
                base,
                head,
            };
            let (kind, key) = match &touch {
                Touch::File => return Err(conflict(format!("namespace {ns}"))),
                Touch::Flag(k) => (ResourceKind::Flag, k),
                Touch::Segment(k) => (ResourceKind::Segment, k),
            };
            if !base_files.contains_key(ns) {
                let parsed = match &base_entry {
                    None => Some(FeaturesFile::empty("")),
                    Some((path, blob)) => {
                        let bytes = ctx.backend.read_blob(*blob).await?;
                        FeaturesFile::parse(path, &bytes).ok()
                    }
                };
                base_files.insert(ns, parsed);
            }
            let name = format!("{} {ns}/{key}", kind.name().to_lowercase());
            let Some(Some(base_file)) = base_files.get(ns) else {
                // The file did not parse at the client's revision: treat it as changed.
                return Err(conflict(name));
            };
            let same = match kind {
                ResourceKind::Flag => base_file.flag(key) == at_head.file.flag(key),
                _ => base_file.segment(key) == at_head.file.segment(key),
            };
            if !same {
                return Err(conflict(name));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl WriteOp for ResourceWrite {
    async fn plan(&self, ctx: WriteContext<'_>) -> Result<Plan, Refusal> {
        self.plan_write(ctx).await.map_err(Refusal::from)
    }
}

/// Applies one operation to the namespace's file; the change to record, if any.
fn apply(op: &Operation, ns: &str, f: &mut NsFile) -> Result<Option<ChangeRecord>> {
    let exists = f.exists || ns == DEFAULT_NAMESPACE;
    let record = |verb, kind, key: &str| {
        Some(ChangeRecord {
            verb,
            kind,
            namespace: if kind == ResourceKind::Namespace {
                String::new()
            } else {
                ns.to_owned()
            },
            key: key.to_owned(),
        })
    };
    let ensure_file = |f: &mut NsFile, namespace: &Namespace| {
        if !f.exists {
            f.file = FeaturesFile::empty(&f.path);
            f.file
                .push_document(crate::document::Document::new(namespace));
            f.exists = true;
        }
    };
    let need_namespace = |exists: bool| -> Result<()> {
        if exists {
            Ok(())
        } else {
            Err(Error::NotFound(format!("namespace \"{ns}\" not found")))
        }
    };
    Ok(match op {
        Operation::CreateNamespace(n) => {
            if exists {
                return Err(Error::AlreadyExists(format!(
                    "create namespace \"{ns}\": already exists"
                )));
            }
            ensure_file(f, n);
            record(Verb::Create, ResourceKind::Namespace, ns)
        }
        Operation::UpdateNamespace(n) => {
            if !exists {
                return Err(Error::NotFound(format!(
                    "update namespace \"{ns}\": namespace \"{ns}\" not found"
                )));
            }
            let before: Vec<_> = f.file.documents().cloned().collect();
            let had_file = f.exists;
            if f.exists {
                f.file.set_namespace(n);
            } else {
                ensure_file(f, n);
            }
            let after: Vec<_> = f.file.documents().cloned().collect();
            if had_file && before == after {
                None
            } else {
                record(Verb::Update, ResourceKind::Namespace, ns)
            }
        }
        Operation::DeleteNamespace(_) => {
            if ns == DEFAULT_NAMESPACE {
                return Err(Error::invalid("namespace \"default\" is protected"));
            }
            if !f.exists {
                return Ok(None);
            }
            f.exists = false;
            f.file = FeaturesFile::empty(&f.path);
            f.at_head
                .as_ref()
                .and_then(|_| record(Verb::Delete, ResourceKind::Namespace, ns))
        }
        Operation::CreateFlag { flag, .. } | Operation::UpdateFlag { flag, .. } => {
            need_namespace(exists)?;
            let create = matches!(op, Operation::CreateFlag { .. });
            let name = resource_name(ResourceKind::Flag, ns, &flag.key);
            let present = f.exists && f.file.flag(&flag.key).is_some();
            if create && present {
                return Err(Error::AlreadyExists(format!(
                    "create resource \"{name}\": already exists"
                )));
            }
            if !create && !present {
                return Err(Error::NotFound(format!(
                    "update resource \"{name}\": not found"
                )));
            }
            let problems = validate::flag_reference_problems(ns, flag, |s| {
                f.exists && f.file.segment(s).is_some()
            });
            if !problems.is_empty() {
                return Err(Error::invalid(problems.join("; ")));
            }
            ensure_file(f, &Namespace::new(DEFAULT_NAMESPACE, "Default"));
            let before = f.file.flag(&flag.key).cloned();
            f.file.put_flag(flag.clone());
            (before.as_ref() != Some(flag)).then(|| ChangeRecord {
                verb: if create { Verb::Create } else { Verb::Update },
                kind: ResourceKind::Flag,
                namespace: ns.to_owned(),
                key: flag.key.clone(),
            })
        }
        Operation::DeleteFlag { key, .. } => {
            if !f.exists || f.file.remove_flag(key).is_none() {
                return Ok(None);
            }
            record(Verb::Delete, ResourceKind::Flag, key)
        }
        Operation::CreateSegment { segment, .. } | Operation::UpdateSegment { segment, .. } => {
            need_namespace(exists)?;
            let create = matches!(op, Operation::CreateSegment { .. });
            let name = resource_name(ResourceKind::Segment, ns, &segment.key);
            let present = f.exists && f.file.segment(&segment.key).is_some();
            if create && present {
                return Err(Error::AlreadyExists(format!(
                    "create resource \"{name}\": already exists"
                )));
            }
            if !create && !present {
                return Err(Error::NotFound(format!(
                    "update resource \"{name}\": not found"
                )));
            }
            ensure_file(f, &Namespace::new(DEFAULT_NAMESPACE, "Default"));
            let before = f.file.segment(&segment.key).cloned();
            f.file.put_segment(segment.clone());
            (before.as_ref() != Some(segment)).then(|| ChangeRecord {
                verb: if create { Verb::Create } else { Verb::Update },
                kind: ResourceKind::Segment,
                namespace: ns.to_owned(),
                key: segment.key.clone(),
            })
        }
        Operation::DeleteSegment { key, .. } => {
            if !f.exists || f.file.segment(key).is_none() {
                return Ok(None);
            }
            for flag in f.file.documents().flat_map(|d| d.flags.iter()) {
                for (i, rule) in flag.rules.iter().enumerate() {
                    if rule.segments.iter().any(|s| s == key) {
                        return Err(Error::invalid(format!(
                            "segment \"{key}\" is in use by flag \"{}\" rule {}",
                            flag.key,
                            i + 1
                        )));
                    }
                }
                for (i, rollout) in flag.rollouts.iter().enumerate() {
                    if let RolloutRule::Segment(s) = &rollout.rule
                        && s.segments.iter().any(|s| s == key)
                    {
                        return Err(Error::invalid(format!(
                            "segment \"{key}\" is in use by flag \"{}\" rollout {}",
                            flag.key,
                            i + 1
                        )));
                    }
                }
            }
            f.file.remove_segment(key);
            record(Verb::Delete, ResourceKind::Segment, key)
        }
    })
}

/// The features file of a namespace at a commit: path and blob. More than one is refused.
async fn namespace_entry(
    backend: &dyn GitBackend,
    commit: Option<ObjectId>,
    dir: &str,
    ns: &str,
) -> Result<Option<(String, ObjectId)>> {
    let Some(commit) = commit else {
        return Ok(None);
    };
    let mut found = Vec::new();
    let folder = RepoPath::new(join(dir, ns))?;
    for e in backend.list_tree(commit, Some(&folder), false).await? {
        if matches!(e.kind, EntryKind::File | EntryKind::Executable)
            && FEATURES_FILES.contains(&e.path.rsplit('/').next().unwrap_or(""))
        {
            found.push((e.path, e.id));
        }
    }
    if ns == DEFAULT_NAMESPACE {
        let top = if dir.is_empty() {
            None
        } else {
            Some(RepoPath::new(dir)?)
        };
        for e in backend.list_tree(commit, top.as_ref(), false).await? {
            if matches!(e.kind, EntryKind::File | EntryKind::Executable)
                && FEATURES_FILES.contains(&e.path.rsplit('/').next().unwrap_or(""))
            {
                found.push((e.path, e.id));
            }
        }
    }
    if found.len() > 1 {
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        return Err(Error::FailedPrecondition(format!(
            "namespace \"{ns}\" has more than one features file ({})",
            paths.join(", ")
        )));
    }
    Ok(found.pop())
}

async fn load_namespace(
    backend: &dyn GitBackend,
    head: Option<ObjectId>,
    dir: &str,
    ns: &str,
    cache: &FileCache,
) -> Result<NsFile> {
    let entry = namespace_entry(backend, head, dir, ns).await?;
    let Some((path, blob)) = entry else {
        let path = join(dir, &format!("{ns}/{}", FEATURES_FILES[0]));
        return Ok(NsFile {
            at_head: None,
            file: FeaturesFile::empty(&path),
            path,
            exists: false,
        });
    };
    if let Some(file) = cache.get(&path, blob) {
        return Ok(NsFile {
            file: (*file).clone(),
            at_head: Some((path.clone(), blob)),
            path,
            exists: true,
        });
    }
    let bytes = backend.read_blob(blob).await?;
    if let Some(skeleton) = cache.skeleton(&path, blob)
        && let Ok(text) = std::str::from_utf8(&bytes)
    {
        // Parsed and validated by a snapshot build: only the text was missing.
        let file = FeaturesFile::from_skeleton(&path, text, &skeleton);
        cache.put(&path, blob, file.clone());
        return Ok(NsFile {
            file,
            at_head: Some((path.clone(), blob)),
            path,
            exists: true,
        });
    }
    let (pieces, text, problems) = validate::check_file(&path, ns, &bytes);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        return Err(Error::FailedPrecondition(format!(
            "namespace \"{ns}\" does not validate at the current revision; fix it first: {}",
            list.join("; ")
        )));
    }
    let file = FeaturesFile::from_pieces(&path, &text, pieces);
    cache.put(&path, blob, file.clone());
    Ok(NsFile {
        file,
        at_head: Some((path.clone(), blob)),
        path,
        exists: true,
    })
}

async fn load_config(
    backend: &dyn GitBackend,
    head: Option<ObjectId>,
    dir: &str,
) -> Result<RepositoryConfig> {
    let Some(head) = head else {
        return Ok(RepositoryConfig::default());
    };
    // One listing of the directory rather than a read per possible name: a repository
    // usually has no configuration file, and each read is a call to the backend.
    let top = if dir.is_empty() {
        None
    } else {
        Some(RepoPath::new(dir)?)
    };
    let entries = backend.list_tree(head, top.as_ref(), false).await?;
    for name in CONFIG_FILES {
        let path = join(dir, name);
        // The kinds `read_file` reads: everything stored as a blob.
        let found = entries.iter().find(|e| {
            e.path == path
                && matches!(
                    e.kind,
                    EntryKind::File | EntryKind::Executable | EntryKind::Symlink
                )
        });
        if let Some(entry) = found {
            let content = backend.read_blob(entry.id).await?;
            return RepositoryConfig::parse(&path, &content).map_err(|problems| {
                let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                Error::FailedPrecondition(list.join("; "))
            });
        }
    }
    Ok(RepositoryConfig::default())
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes([n; 20])
    }

    #[test]
    fn the_cache_drops_the_least_recently_used_path() {
        let cache = FileCache::default();
        let file = |p: &str| FeaturesFile::empty(p);
        cache.put("hot/features.yaml", id(0), file("hot/features.yaml"));
        for n in 1..=CACHE_PATHS + 10 {
            // A stream of paths used once, with the hot one used all along.
            assert!(cache.get("hot/features.yaml", id(0)).is_some(), "after {n}");
            let path = format!("ns-{n}/features.yaml");
            cache.put(&path, id(1), file(&path));
        }
        assert!(cache.len() <= CACHE_PATHS);
        assert!(cache.get("hot/features.yaml", id(0)).is_some());
        assert!(
            cache.get("ns-1/features.yaml", id(1)).is_none(),
            "the oldest path went"
        );
        assert!(
            cache.get("hot/features.yaml", id(1)).is_none(),
            "another blob at the same path is another file"
        );
    }

    #[test]
    fn many_writes_to_one_path_keep_the_other_paths() {
        let cache = FileCache::default();
        let file = |p: &str| FeaturesFile::empty(p);
        for n in 0..100u8 {
            let path = format!("ns-{n}/features.yaml");
            cache.put(&path, id(0), file(&path));
        }
        // 1,000 versions of one namespace file, as a burst of writes to it makes.
        for n in 0..1000u16 {
            let [a, b] = n.to_be_bytes();
            let mut bytes = [a; 20];
            bytes[1] = b;
            bytes[2] = 0xee;
            cache.put("ns-0/features.yaml", ObjectId::from_bytes(bytes), file("x"));
        }
        for n in 1..100u8 {
            assert!(
                cache.get(&format!("ns-{n}/features.yaml"), id(0)).is_some(),
                "ns-{n} stays"
            );
        }
        assert_eq!(cache.len(), 99 + VERSIONS_PER_PATH);
        assert!(
            cache.get("ns-0/features.yaml", id(0)).is_none(),
            "old versions go"
        );
    }
}
