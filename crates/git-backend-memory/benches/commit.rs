//! Commit cost (PERFORMANCE.md, reference C1): in a bare repository of 10,000 files of about
//! 200 bytes in 100 directories (`ns000/f000.yaml` .. `ns099/f099.yaml`), one commit changing
//! one file, then the compare-and-swap of `refs/heads/main` onto it.
//!
//! - `raw_git2`: the baseline, git2 alone on a bare repository of the same shape: write the
//!   blob, `TreeUpdateBuilder` over the head's tree, commit, `reference_matching`.
//! - `memory_backend`: the same change through `MemoryBackend::create_commit` and `update_ref`
//!   (`Expected::Value`), with the default options (a compaction every 1,000 commits, paid
//!   inside the measured commits as it is in service), driven from a Tokio runtime as the
//!   server does.
//!
//! The same figure for the `local` backend is in `git-backend-local`'s own `commit` bench
//! (backends never depend on each other). Each runs in a fresh temporary directory.
//! `cargo bench -p git-backend-memory --bench commit`.

use std::cell::Cell;
use std::hint::black_box;
use std::path::Path;

use criterion::Criterion;
use git_backend::{
    Change, CommitRequest, Expected, GitBackend, ObjectId, RefName, RefUpdate, RepoPath, Signature,
};
use git_backend_memory::{MemoryBackend, MemoryBackendOptions};

const DIRS: usize = 100;
const FILES_PER_DIR: usize = 100;

fn path_of(n: usize) -> String {
    format!(
        "ns{:03}/f{:03}.yaml",
        n / FILES_PER_DIR % DIRS,
        n % FILES_PER_DIR
    )
}

/// About 200 bytes of YAML; `version` makes every write a new blob.
fn content_of(n: usize, version: usize) -> Vec<u8> {
    let mut s = format!(
        "flags:\n  - key: flag-{n:05}\n    name: Flag {n}\n    type: BOOLEAN_FLAG_TYPE\n    \
         enabled: true\n    description: generated for the commit benchmark, version {version:08}\n"
    );
    while s.len() < 200 {
        s.push('#');
    }
    s.push('\n');
    s.into_bytes()
}

fn sig() -> Signature {
    Signature::now("bench", "bench@example.com")
}

fn main_ref() -> RefName {
    RefName::branch("main").unwrap()
}

/// The raw git2 baseline: a bare repository with the 10,000 files committed on `main`.
struct RawRepo {
    repo: git2::Repository,
    head: git2::Oid,
}

impl RawRepo {
    fn new(dir: &Path) -> Self {
        let repo = git2::Repository::init_bare(dir).unwrap();
        let head = {
            let empty = repo.treebuilder(None).unwrap().write().unwrap();
            let empty = repo.find_tree(empty).unwrap();
            let mut update = git2::build::TreeUpdateBuilder::new();
            for n in 0..DIRS * FILES_PER_DIR {
                let blob = repo.blob(&content_of(n, 0)).unwrap();
                update.upsert(path_of(n), blob, git2::FileMode::Blob);
            }
            let tree = update.create_updated(&repo, &empty).unwrap();
            let tree = repo.find_tree(tree).unwrap();
            let sig = git2::Signature::now("bench", "bench@example.com").unwrap();
            let id = repo.commit(None, &sig, &sig, "tree", &tree, &[]).unwrap();
            repo.reference("refs/heads/main", id, false, "tree")
                .unwrap();
            id
        };
        RawRepo { repo, head }
    }

    /// One commit changing file `n`, and the CAS of `main` onto it.
    fn commit_one(&mut self, n: usize, version: usize) {
        let repo = &self.repo;
        let parent = repo.find_commit(self.head).unwrap();
        let blob = repo.blob(&content_of(n, version)).unwrap();
        let mut update = git2::build::TreeUpdateBuilder::new();
        update.upsert(path_of(n), blob, git2::FileMode::Blob);
        let tree = update
            .create_updated(repo, &parent.tree().unwrap())
            .unwrap();
        let tree = repo.find_tree(tree).unwrap();
        let sig = git2::Signature::now("bench", "bench@example.com").unwrap();
        let id = repo
            .commit(None, &sig, &sig, "change", &tree, &[&parent])
            .unwrap();
        repo.reference_matching("refs/heads/main", id, true, self.head, "change")
            .unwrap();
        self.head = id;
    }
}

/// The backend under test, with the 10,000 files committed on `main`.
async fn seed(backend: &dyn GitBackend) -> ObjectId {
    let changes = (0..DIRS * FILES_PER_DIR)
        .map(|n| Change::Put {
            path: RepoPath::new(path_of(n)).unwrap(),
            content: content_of(n, 0),
        })
        .collect();
    let head = backend
        .create_commit(CommitRequest {
            parent: None,
            changes,
            message: "tree".into(),
            author: sig(),
            committer: sig(),
        })
        .await
        .unwrap();
    backend
        .update_ref(RefUpdate {
            name: main_ref(),
            new: Some(head),
            expected: Expected::Absent,
            message: "tree".into(),
        })
        .await
        .unwrap();
    head
}

/// One commit changing file `n` through the backend, and the CAS of `main` onto it.
async fn backend_commit_one(
    backend: &dyn GitBackend,
    head: ObjectId,
    n: usize,
    version: usize,
) -> ObjectId {
    let next = backend
        .create_commit(CommitRequest {
            parent: Some(head),
            changes: vec![Change::Put {
                path: RepoPath::new(path_of(n)).unwrap(),
                content: content_of(n, version),
            }],
            message: "change".into(),
            author: sig(),
            committer: sig(),
        })
        .await
        .unwrap();
    backend
        .update_ref(RefUpdate {
            name: main_ref(),
            new: Some(next),
            expected: Expected::Value(head),
            message: "change".into(),
        })
        .await
        .unwrap();
    next
}

fn commit_one_file(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("commit_one_file_of_10k");

    let raw_dir = tempfile::tempdir().unwrap();
    let mut raw = RawRepo::new(&raw_dir.path().join("raw.git"));
    let version = Cell::new(0usize);
    group.bench_function("raw_git2", |b| {
        b.iter(|| {
            let v = version.get() + 1;
            version.set(v);
            raw.commit_one(black_box(v * 7919 % (DIRS * FILES_PER_DIR)), v);
        })
    });
    drop(raw);

    let memory = MemoryBackend::new(MemoryBackendOptions::default()).unwrap();
    let mut head = rt.block_on(seed(&memory));
    group.bench_function("memory_backend", |b| {
        b.iter(|| {
            let v = version.get() + 1;
            version.set(v);
            let n = black_box(v * 7919 % (DIRS * FILES_PER_DIR));
            head = rt.block_on(backend_commit_one(&memory, head, n, v));
        })
    });
    group.finish();
    drop(memory);
}

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, without their undocumented `pub fn`.
    let mut c = Criterion::default().configure_from_args();
    commit_one_file(&mut c);
    c.final_summary();
}
