//! Tests of the public API of `resource-model`, against the in-memory git backend.

mod commit_check;
mod documents;
mod ops;
mod props;
mod snapshot;
mod validate;

use git_backend::{Change, CommitRequest, GitBackend, ObjectId, RepoPath, Signature};
use git_backend_memory::MemoryBackend;

/// The corpus: (path in an environment, content).
pub(crate) const CORPUS: &[(&str, &str)] = &[
    ("default/features.yaml", include_str!("corpus/v1_0.yaml")),
    ("payments/features.yml", include_str!("corpus/v1_1.yml")),
    ("search/features.yaml", include_str!("corpus/v1_2.yaml")),
    ("growth/features.yaml", include_str!("corpus/v1_3.yaml")),
    ("mobile/features.yaml", include_str!("corpus/v1_4.yaml")),
    ("accounts/features.yaml", include_str!("corpus/v1_5.yaml")),
    ("platform/features.yaml", include_str!("corpus/v1_6.yaml")),
    ("internal/features.json", include_str!("corpus/v1_6.json")),
    (
        "legacy/features.yaml",
        include_str!("corpus/flipt_v3_style.yaml"),
    ),
];

pub(crate) fn backend() -> MemoryBackend {
    MemoryBackend::new(Default::default()).expect("memory backend")
}

pub(crate) fn put(path: &str, content: impl AsRef<[u8]>) -> Change {
    Change::Put {
        path: RepoPath::new(path).unwrap(),
        content: content.as_ref().to_vec(),
    }
}

pub(crate) fn del(path: &str) -> Change {
    Change::Delete {
        path: RepoPath::new(path).unwrap(),
    }
}

/// Commits changes on `parent` (no reference moves).
pub(crate) async fn commit(
    b: &dyn GitBackend,
    parent: Option<ObjectId>,
    changes: Vec<Change>,
) -> ObjectId {
    let sig = Signature::now("test", "test@example.com");
    b.create_commit(CommitRequest {
        parent,
        changes,
        message: "test".into(),
        author: sig.clone(),
        committer: sig,
    })
    .await
    .expect("commit")
}

/// A commit holding `files` (path, content).
pub(crate) async fn commit_files(
    b: &dyn GitBackend,
    parent: Option<ObjectId>,
    files: &[(&str, &str)],
) -> ObjectId {
    commit(b, parent, files.iter().map(|(p, c)| put(p, c)).collect()).await
}

/// Lines that differ between two texts (removed plus added), by longest common subsequence.
pub(crate) fn changed_lines(a: &str, b: &str) -> usize {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let mut dp = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            dp[i][j] = if a[i] == b[j] {
                dp[i + 1][j + 1] + 1
            } else {
                dp[i + 1][j].max(dp[i][j + 1])
            };
        }
    }
    a.len() + b.len() - 2 * dp[0][0]
}
