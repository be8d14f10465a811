//! The data sets of PERFORMANCE.md: namespaces of 100 flags (2 variants and 1 rule each) and
//! one segment, one features file per namespace (`ns-<n>/features.yaml`, Flipt v2's layout),
//! committed into fresh bare repositories; and the raw git2 writer of the baselines.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use git2::{FileMode, Oid, Repository, RepositoryInitOptions, Signature};
use storage_proto::flipt::core;

/// Flags per namespace file, whatever the size of the data set.
pub const FLAGS_PER_NAMESPACE: usize = 100;

/// The key of namespace `ns`.
pub fn namespace_key(ns: usize) -> String {
    format!("ns-{ns}")
}

/// The key of the generated flag `f` of namespace `ns`.
pub fn flag_key(ns: usize, f: usize) -> String {
    format!("flag-{ns}-{f}")
}

/// The repository path of namespace `ns`'s features file.
pub fn namespace_path(ns: usize) -> String {
    format!("ns-{ns}/features.yaml")
}

/// One flag item of a features file (2 variants, one with an attachment, and one rule with
/// two distributions on the namespace's segment), indented as an item of `flags:`.
pub fn flag_yaml(ns: usize, key: &str, description: &str, enabled: bool) -> String {
    format!(
        "  - key: {key}\n    name: Flag {key}\n    type: VARIANT_FLAG_TYPE\n    description: {description}\n    enabled: {enabled}\n    variants:\n      - key: control\n        name: Control\n      - key: treatment\n        name: Treatment\n        attachment:\n          color: blue\n          size: 3\n    rules:\n      - segment: segment-{ns}\n        distributions:\n          - variant: control\n            rollout: 50\n          - variant: treatment\n            rollout: 50\n"
    )
}

/// The description of every generated flag.
pub const DESCRIPTION: &str = "A generated flag with two variants and one rule";

/// The same flag as [`flag_yaml`] as an API message.
pub fn flag_proto(ns: usize, key: &str, description: &str, enabled: bool) -> core::Flag {
    use prost_types::{Struct, Value, value::Kind};
    let attachment = Value {
        kind: Some(Kind::StructValue(Struct {
            fields: [
                (
                    "color".to_owned(),
                    Value {
                        kind: Some(Kind::StringValue("blue".into())),
                    },
                ),
                (
                    "size".to_owned(),
                    Value {
                        kind: Some(Kind::NumberValue(3.0)),
                    },
                ),
            ]
            .into_iter()
            .collect(),
        })),
    };
    core::Flag {
        key: key.into(),
        r#type: core::FlagType::VariantFlagType as i32,
        name: format!("Flag {key}"),
        description: description.into(),
        enabled,
        variants: vec![
            core::Variant {
                key: "control".into(),
                name: "Control".into(),
                ..Default::default()
            },
            core::Variant {
                key: "treatment".into(),
                name: "Treatment".into(),
                attachment: Some(attachment),
                ..Default::default()
            },
        ],
        rules: vec![core::Rule {
            segments: vec![format!("segment-{ns}")],
            distributions: ["control", "treatment"]
                .into_iter()
                .map(|v| core::Distribution {
                    variant: v.into(),
                    rollout: 50.0,
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// `flag` as the `Any` payload of Flipt's resource API.
pub fn flag_any(flag: &core::Flag) -> prost_types::Any {
    prost_types::Any {
        type_url: "flipt.core.Flag".into(),
        value: prost::Message::encode_to_vec(flag),
    }
}

/// A namespace's features file as three parts, so that flags can be appended as a write
/// through the API appends them (after the last flag, before the segments).
#[derive(Debug, Clone)]
pub struct NamespaceText {
    header: String,
    flags: String,
    segments: String,
}

impl NamespaceText {
    /// The generated file of namespace `ns`: 100 flags and one segment.
    pub fn generated(ns: usize) -> Self {
        let header = format!(
            "version: \"1.6\"\nnamespace:\n  key: ns-{ns}\n  name: Namespace {ns}\n  description: Generated for the benchmarks\nflags:\n"
        );
        let mut flags = String::with_capacity(FLAGS_PER_NAMESPACE * 640);
        for f in 0..FLAGS_PER_NAMESPACE {
            flags.push_str(&flag_yaml(ns, &flag_key(ns, f), DESCRIPTION, false));
        }
        let segments = format!(
            "segments:\n  - key: segment-{ns}\n    name: Segment {ns}\n    match_type: ALL_MATCH_TYPE\n    constraints:\n      - type: STRING_COMPARISON_TYPE\n        property: region\n        operator: isoneof\n        value: [eu-west-1, eu-central-1]\n      - type: NUMBER_COMPARISON_TYPE\n        property: age\n        operator: gte\n        value: \"18\"\n"
        );
        NamespaceText {
            header,
            flags,
            segments,
        }
    }

    /// Appends a flag item (text from [`flag_yaml`]).
    pub fn push_flag(&mut self, item: &str) {
        self.flags.push_str(item);
    }

    /// The whole file.
    pub fn render(&self) -> String {
        let mut s =
            String::with_capacity(self.header.len() + self.flags.len() + self.segments.len());
        s.push_str(&self.header);
        s.push_str(&self.flags);
        s.push_str(&self.segments);
        s
    }
}

/// The files of a data set of `namespaces` namespaces: (repository path, content).
pub fn files(namespaces: usize) -> Vec<(String, String)> {
    (0..namespaces)
        .map(|ns| (namespace_path(ns), NamespaceText::generated(ns).render()))
        .collect()
}

/// A generated repository.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The bare repository.
    pub path: PathBuf,
    /// The commit of `main`.
    pub head: Oid,
    /// Namespaces (100 flags each).
    pub namespaces: usize,
    /// Total size of the features files.
    pub yaml_bytes: u64,
}

/// Commits `namespaces` generated namespace files as one commit on `main` of a new bare
/// repository at `path` (which must not exist or be empty).
pub fn generate_repo(path: &Path, namespaces: usize) -> Result<Generated> {
    let repo = Repository::init_opts(
        path,
        RepositoryInitOptions::new().bare(true).initial_head("main"),
    )
    .with_context(|| format!("init {}", path.display()))?;
    let mut root = repo.treebuilder(None)?;
    let mut yaml_bytes = 0u64;
    for ns in 0..namespaces {
        let text = NamespaceText::generated(ns).render();
        yaml_bytes += text.len() as u64;
        let blob = repo.blob(text.as_bytes())?;
        let mut dir = repo.treebuilder(None)?;
        dir.insert("features.yaml", blob, FileMode::Blob.into())?;
        let dir = dir.write()?;
        root.insert(namespace_key(ns), dir, FileMode::Tree.into())?;
    }
    let tree = repo.find_tree(root.write()?)?;
    let sig = signature()?;
    let head = repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        &format!(
            "generated data set: {} flags",
            namespaces * FLAGS_PER_NAMESPACE
        ),
        &tree,
        &[],
    )?;
    Ok(Generated {
        path: path.to_owned(),
        head,
        namespaces,
        yaml_bytes,
    })
}

fn signature() -> Result<Signature<'static>> {
    Ok(Signature::now("bench", "bench@example.com")?)
}

/// The raw git2 writer of the write baselines: writes a blob, updates the trees on its path,
/// commits and moves `refs/heads/main`, on a bare repository, without index or worktree.
pub struct RawWriter {
    repo: Repository,
    head: Oid,
    sig: Signature<'static>,
}

impl std::fmt::Debug for RawWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawWriter")
            .field("path", &self.repo.path())
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl RawWriter {
    /// Opens the bare repository at `path` on its `main`.
    pub fn open(path: &Path) -> Result<Self> {
        let repo =
            Repository::open_bare(path).with_context(|| format!("open {}", path.display()))?;
        let head = repo.refname_to_id("refs/heads/main")?;
        Ok(RawWriter {
            repo,
            head,
            sig: signature()?,
        })
    }

    /// The repository.
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// The current commit of `main`.
    pub fn head(&self) -> Oid {
        self.head
    }

    /// One commit replacing the file at `path` with `content`; moves `main`.
    pub fn commit_file(&mut self, path: &str, content: &[u8], message: &str) -> Result<Oid> {
        let blob = self.repo.blob(content)?;
        let parent = self.repo.find_commit(self.head)?;
        let mut update = git2::build::TreeUpdateBuilder::new();
        update.upsert(path, blob, FileMode::Blob);
        let tree = update.create_updated(&self.repo, &parent.tree()?)?;
        let tree = self.repo.find_tree(tree)?;
        self.head = self.repo.commit(
            Some("refs/heads/main"),
            &self.sig,
            &self.sig,
            message,
            &tree,
            &[&parent],
        )?;
        Ok(self.head)
    }

    /// Pushes `main` to `url` (one connection per push, as libgit2 does).
    pub fn push(&self, url: &str) -> Result<()> {
        let mut remote = self.repo.remote_anonymous(url)?;
        let mut rejected = None;
        let mut callbacks = git2::RemoteCallbacks::new();
        callbacks.push_update_reference(|name, status| {
            if let Some(status) = status {
                rejected = Some(format!("{name}: {status}"));
            }
            Ok(())
        });
        let mut options = git2::PushOptions::new();
        options.remote_callbacks(callbacks);
        remote.push(&["refs/heads/main:refs/heads/main"], Some(&mut options))?;
        drop(options);
        if let Some(rejected) = rejected {
            anyhow::bail!("push rejected: {rejected}");
        }
        Ok(())
    }

    /// Fetches `main` from `url` into `refs/remotes/origin/main`; returns its commit.
    pub fn fetch(&self, url: &str) -> Result<Oid> {
        let mut remote = self.repo.remote_anonymous(url)?;
        remote.fetch(&["+refs/heads/main:refs/remotes/origin/main"], None, None)?;
        Ok(self.repo.refname_to_id("refs/remotes/origin/main")?)
    }

    /// Sets `main` to `commit` (after a fetch), so the next commit builds on it.
    pub fn reset_main(&mut self, commit: Oid) -> Result<()> {
        self.repo
            .reference("refs/heads/main", commit, true, "bench: follow the remote")?;
        self.head = commit;
        Ok(())
    }
}

/// A bare clone of `url` at `path` (`main` checked out as the bare repository's `main`).
pub fn bare_clone(url: &str, path: &Path) -> Result<RawWriter> {
    git2::build::RepoBuilder::new()
        .bare(true)
        .clone(url, path)
        .with_context(|| format!("clone into {}", path.display()))?;
    RawWriter::open(path)
}

/// A bare copy of a generated repository (for a second remote with identical content).
pub fn copy_repo(from: &Path, to: &Path) -> Result<()> {
    let url = file_url(from);
    git2::build::RepoBuilder::new()
        .bare(true)
        .clone(&url, to)
        .with_context(|| format!("copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// `file://` URL of a local path.
pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Where benchmark data goes: `/dev/shm` (tmpfs) when it exists and is writable, so that
/// commits do not wait for a disk (and deleting large trees does not slow other runs),
/// else the system's temporary directory.
pub fn scratch_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && tempfile::Builder::new()
            .prefix("storage-bench-probe-")
            .tempdir_in(shm)
            .is_ok()
    {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git_backend::ObjectId;
    use git_backend_local::{LocalBackend, LocalOptions};
    use resource_model::Snapshot;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generated_repositories_validate_as_the_server_checks_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let g = generate_repo(&dir.path().join("data.git"), 3).expect("generate");
        let expected: usize = files(3).iter().map(|(_, t)| t.len()).sum();
        assert_eq!(g.yaml_bytes, expected as u64);
        let backend = LocalBackend::open(LocalOptions::new(&g.path, "main")).expect("open");
        let head = ObjectId::parse(&g.head.to_string()).expect("id");
        let problems = resource_model::validate_tree(&backend, head, "")
            .await
            .expect("validate");
        assert!(problems.is_empty(), "{problems:?}");
        let snapshot = Snapshot::build(&backend, head, "").await.expect("snapshot");
        let flags: usize = snapshot.namespaces().map(|n| n.flags().len()).sum();
        let segments: usize = snapshot.namespaces().map(|n| n.segments().len()).sum();
        assert_eq!((flags, segments), (3 * FLAGS_PER_NAMESPACE, 3));

        // The API payload of a generated flag is that flag.
        let parsed = snapshot.flag("ns-2", "flag-2-42").expect("flag");
        assert_eq!(
            storage_grpc::core_convert::flag_to_proto(parsed),
            flag_proto(2, "flag-2-42", DESCRIPTION, false)
        );

        // The raw writer of the baselines makes commits that still validate.
        let mut writer = RawWriter::open(&g.path).expect("writer");
        let mut text = NamespaceText::generated(1);
        text.push_flag(&flag_yaml(1, "extra", "Created by the benchmark", true));
        let next = writer
            .commit_file(&namespace_path(1), text.render().as_bytes(), "create flag")
            .expect("commit");
        let next = ObjectId::parse(&next.to_string()).expect("id");
        let rebuilt = snapshot.rebuild(&backend, next).await.expect("rebuild");
        assert_eq!(rebuilt.stats().files_parsed, 1);
        assert_eq!(
            storage_grpc::core_convert::flag_to_proto(
                rebuilt.flag("ns-1", "extra").expect("new flag")
            ),
            flag_proto(1, "extra", "Created by the benchmark", true)
        );
    }

    #[test]
    fn appended_flags_land_between_flags_and_segments() {
        let mut text = NamespaceText::generated(3);
        text.push_flag(&flag_yaml(3, "extra", "x", true));
        let rendered = text.render();
        let extra = rendered.find("key: extra").expect("appended");
        assert!(
            extra
                > rendered
                    .find("key: flag-3-99")
                    .expect("last generated flag")
        );
        assert!(extra < rendered.find("segments:").expect("segments"));
    }
}
