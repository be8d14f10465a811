//! Filesystem notifications: with the periodic check set to an hour, a commit made by the
//! git CLI still reaches subscribers within seconds.

use std::time::Duration;

use git_backend::{GitBackend, RefName};
use git_backend_local::{LocalBackend, LocalOptions};
use test_support::git;

#[tokio::test(flavor = "multi_thread")]
async fn external_commits_are_noticed_through_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    git(
        &["init", "-q", "-b", "main", repo.to_str().unwrap()],
        dir.path(),
    );
    std::fs::write(repo.join("a"), "1").unwrap();
    git(&["add", "a"], &repo);
    git(&["commit", "-qm", "one"], &repo);
    let mut options = LocalOptions::new(&repo, "main");
    options.poll_interval = Duration::from_secs(3600);
    let backend = LocalBackend::open(options).unwrap();
    let mut rx = backend.subscribe();
    std::fs::write(repo.join("a"), "2").unwrap();
    git(&["commit", "-qam", "two"], &repo);
    let head = git(&["rev-parse", "HEAD"], &repo).trim().to_owned();
    let main = RefName::branch("main").unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if rx
                .borrow_and_update()
                .refs
                .get(&main)
                .map(|id| id.to_string())
                == Some(head.clone())
            {
                break;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("the commit was noticed without the periodic check");
}

/// CPU time (user + system, in clock ticks) this process has used.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses): utime and stime are the
    // 12th and 13th of them.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The watcher wakes the poller on changes only: reading the references (which makes open
/// and close events) must not wake it again, or an idle backend spins a core for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_backend_uses_no_cpu() {
    use git_backend::{GitBackendExt, Signature};

    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::open(LocalOptions::new(dir.path().join("repo"), "main")).unwrap();
    backend
        .seed_branch("main", &Signature::now("flipt", "flipt@example.com"))
        .await
        .unwrap();
    // Let the events of the seed's reference update be handled, then measure while idle.
    std::thread::sleep(Duration::from_millis(200));
    let before = cpu_ticks();
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks() - before;
    // A spinning poller uses about 100 ticks per second of a free core (at least ~40 on a
    // loaded 2-core machine); an idle backend uses almost none.
    assert!(used < 20, "{used} clock ticks used in 2 s while idle");
    drop(backend);
}
