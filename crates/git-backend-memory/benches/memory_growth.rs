//! Memory stays bounded under a long stream of writes (BEHAVIOUR §2): 10,000 one-file commits
//! to a generated tree of 100 files of about 63 KB each; the resident set size after 10,000
//! commits minus that after 2,000 must stay below 16 MiB.
//!
//! `cargo bench -p git-backend-memory --bench memory_growth` prints the figures and whether
//! the target is met.

use git_backend::{
    Change, CommitRequest, Expected, GitBackend, RefName, RefUpdate, RepoPath, Signature,
};
use git_backend_memory::{MemoryBackend, MemoryBackendOptions};

const FILES: usize = 100;
const FILE_SIZE: usize = 63 * 1024;
const COMMITS: usize = 10_000;
const FIRST_MEASURE: usize = 2_000;
const TARGET_MIB: f64 = 16.0;

fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn content(file: usize, version: usize) -> Vec<u8> {
    // Distinct content per version, so every commit writes a new 63 KB blob.
    let line = format!("flag-{file:03}: version {version:06} enabled true\n");
    line.as_bytes()
        .iter()
        .copied()
        .cycle()
        .take(FILE_SIZE)
        .collect()
}

fn main() {
    // As the server does at start-up.
    git2_support::configure(git2_support::GlobalOptions::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let backend = MemoryBackend::new(MemoryBackendOptions::default()).unwrap();
        let sig = Signature::now("bench", "bench@example.com");
        let main = RefName::branch("main").unwrap();
        let initial: Vec<Change> = (0..FILES)
            .map(|f| Change::Put { path: RepoPath::new(format!("ns/f{f:03}.yaml")).unwrap(), content: content(f, 0) })
            .collect();
        let mut head = backend
            .create_commit(CommitRequest { parent: None, changes: initial, message: "tree".into(), author: sig.clone(), committer: sig.clone() })
            .await
            .unwrap();
        backend.update_ref(RefUpdate { name: main.clone(), new: Some(head), expected: Expected::Absent, message: "b".into() }).await.unwrap();
        let start = std::time::Instant::now();
        let mut at_first = 0;
        for i in 1..=COMMITS {
            let f = i % FILES;
            let change = Change::Put { path: RepoPath::new(format!("ns/f{f:03}.yaml")).unwrap(), content: content(f, i) };
            let next = backend
                .create_commit(CommitRequest { parent: Some(head), changes: vec![change], message: format!("c{i}"), author: sig.clone(), committer: sig.clone() })
                .await
                .unwrap();
            backend.update_ref(RefUpdate { name: main.clone(), new: Some(next), expected: Expected::Value(head), message: "b".into() }).await.unwrap();
            head = next;
            if i == FIRST_MEASURE {
                at_first = rss_kib();
            }
            if i % 500 == 0 && std::env::var_os("BENCH_TRACE").is_some() {
                eprintln!("{i}: {:.1}s rss {} anon {} file {}", start.elapsed().as_secs_f64(), status_kib("VmRSS:") / 1024, status_kib("RssAnon:") / 1024, status_kib("RssFile:") / 1024);
            }
        }
        let at_end = rss_kib();
        let growth_mib = (at_end as f64 - at_first as f64) / 1024.0;
        let elapsed = start.elapsed();
        println!("memory_growth: {COMMITS} commits of one {FILE_SIZE}-byte file in a {FILES}-file tree in {:.1}s ({:.2} ms/commit)", elapsed.as_secs_f64(), elapsed.as_secs_f64() * 1000.0 / COMMITS as f64);
        println!("memory_growth: RSS after {FIRST_MEASURE} commits {:.1} MiB, after {COMMITS} {:.1} MiB", at_first as f64 / 1024.0, at_end as f64 / 1024.0);
        let verdict = if growth_mib < TARGET_MIB { "pass" } else { "MISS" };
        println!("memory_growth: growth {growth_mib:.1} MiB (target < {TARGET_MIB} MiB): {verdict}");
        let history = backend.log(head, Default::default()).await.unwrap().len();
        assert_eq!(history, COMMITS + 1, "history stays complete across compactions");
    });
}
