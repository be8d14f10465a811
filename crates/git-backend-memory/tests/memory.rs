//! What only the `memory` backend does (BEHAVIOUR §2): its private scratch directory (where it
//! is made, that it is removed on drop, that directories left by ended processes are removed),
//! that nothing is ever written to the working directory (checked in a child process whose
//! working directory is empty and read-only), that many instances fetch at once, that new
//! objects stay in RAM until a compaction writes them as a pack, and that history stays complete
//! across many compactions and pack merges, for reads, fetches and pushes alike.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use git_backend::testsuite::put;
use git_backend::{
    Change, CommitRequest, Expected, GitBackend, GitBackendExt, LogOptions, ObjectId, PushUpdate,
    RefName, RefUpdate, Remote, Signature,
};
use git_backend_memory::{MemoryBackend, MemoryBackendOptions};
use test_support::{BareRemote, GitHttpServer, REMOTE_DIR_NAME, try_git};

// ------------------------------------------------------------------------------ helpers

/// Prefix of every scratch directory, followed by the owning process id and a dash.
const SCRATCH_PREFIX: &str = "flipt-memory-";

fn sig() -> Signature {
    Signature::now("flipt", "flipt@example.com")
}

fn main_ref() -> RefName {
    RefName::branch("main").unwrap()
}

fn oid(text: &str) -> ObjectId {
    ObjectId::parse(text.trim()).unwrap()
}

fn options(compact_every: usize, max_packs: usize, parent: Option<&Path>) -> MemoryBackendOptions {
    MemoryBackendOptions {
        compact_bytes: 1 << 30,
        compact_every,
        max_packs,
        scratch_parent: parent.map(Path::to_owned),
    }
}

fn new_backend(options: MemoryBackendOptions) -> MemoryBackend {
    MemoryBackend::new(options).expect("create a memory backend")
}

async fn commit(
    b: &MemoryBackend,
    parent: Option<ObjectId>,
    changes: Vec<Change>,
    message: &str,
) -> ObjectId {
    b.create_commit(CommitRequest {
        parent,
        changes,
        message: message.into(),
        author: sig(),
        committer: sig(),
    })
    .await
    .unwrap_or_else(|e| panic!("commit `{message}` failed: {e}"))
}

async fn move_ref(b: &MemoryBackend, name: &RefName, expected: Option<ObjectId>, new: ObjectId) {
    b.update_ref(RefUpdate {
        name: name.clone(),
        new: Some(new),
        expected: Expected::from_option(expected),
        message: "test".into(),
    })
    .await
    .unwrap_or_else(|e| panic!("moving {name} failed: {e}"));
}

async fn push_main(
    b: &MemoryBackend,
    remote: &Remote,
    local: ObjectId,
    expected: Option<ObjectId>,
) -> git_backend::Result<()> {
    b.push(
        remote,
        PushUpdate {
            local: Some(local),
            remote_ref: main_ref(),
            expected: Expected::from_option(expected),
        },
    )
    .await
}

/// `+refs/heads/main:refs/remotes/<name>/main`.
fn tracking(name: &str) -> Vec<String> {
    vec![format!("+refs/heads/main:refs/remotes/{name}/main")]
}

fn tracking_ref(name: &str) -> RefName {
    RefName::remote_tracking(name, "main").unwrap()
}

/// A bare remote reached both over `file://` and over smart HTTP.
struct Served {
    remote: BareRemote,
    server: GitHttpServer,
}

impl Served {
    fn new() -> Self {
        let remote = BareRemote::new();
        let server = GitHttpServer::builder(remote.project_root()).start();
        Served { remote, server }
    }

    fn file(&self) -> Remote {
        Remote::anonymous(self.remote.file_url())
    }

    fn http(&self) -> Remote {
        Remote::anonymous(self.server.url(REMOTE_DIR_NAME))
    }

    /// `("file", remote)` and `("http", remote)`.
    fn kinds(&self) -> [(&'static str, Remote); 2] {
        [("file", self.file()), ("http", self.http())]
    }

    fn head(&self) -> Option<ObjectId> {
        self.remote.head("main").map(|h| oid(&h))
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The `*.pack` files of a scratch directory.
fn packs(scratch: &Path) -> Vec<PathBuf> {
    let dir = scratch.join("objects").join("pack");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect()
}

/// Loose objects (`objects/xx/...`) of a scratch directory.
fn loose_objects(scratch: &Path) -> Vec<PathBuf> {
    let objects = scratch.join("objects");
    std::fs::read_dir(&objects)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 2 && n.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .collect()
}

/// Whether the object is stored on disk in the scratch repository (the git CLI sees only the
/// disk, never the backend's RAM).
fn on_disk(scratch: &Path, id: ObjectId) -> bool {
    try_git(&["cat-file", "-e", &id.to_string()], scratch).is_ok()
}

/// Scratch directories of process `pid` in `parent`.
fn scratch_dirs_of(parent: &Path, pid: u32) -> Vec<String> {
    let prefix = format!("{SCRATCH_PREFIX}{pid}-");
    names_in(parent)
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

// ------------------------------------------------------------------------------ scratch

/// The scratch directory is private (mode 0700), named after the process, made under
/// `scratch_parent` when it is set (else the system's temporary directory), shared by clones,
/// and removed when the last clone is dropped, also after fetches, pushes and compactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_directory_is_private_and_removed_on_drop() {
    let parent = tempfile::tempdir().unwrap();
    let served = Served::new();
    let seeded = oid(&served
        .remote
        .cli_commit("main", &[("a.yaml", Some("a: 1\n"))], "seed"));

    let b = new_backend(options(2, 2, Some(parent.path())));
    let scratch = b.scratch_dir().to_owned();
    assert_eq!(scratch.parent(), Some(parent.path()));
    let name = scratch.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with(&format!("{SCRATCH_PREFIX}{}-", std::process::id())),
        "{name}"
    );
    let mode = std::fs::metadata(&scratch).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "private: {mode:o}");
    assert!(
        scratch.join("HEAD").is_file() && scratch.join("objects").is_dir(),
        "libgit2's home is a bare repository"
    );
    assert_eq!(names_in(parent.path()), [name.as_str()]);

    // Use every part that touches the scratch directory.
    for (kind, remote) in served.kinds() {
        b.fetch(&remote, &tracking(kind), true).await.unwrap();
        assert_eq!(b.resolve(&tracking_ref(kind)).await.unwrap(), Some(seeded));
    }
    let mut head = seeded;
    for i in 0..5 {
        let next = commit(
            &b,
            Some(head),
            vec![put("a.yaml", format!("a: {i}\n"))],
            "c",
        )
        .await;
        move_ref(&b, &main_ref(), (i > 0).then_some(head), next).await;
        head = next;
    }
    b.compact().await.unwrap();
    push_main(&b, &served.file(), head, Some(seeded))
        .await
        .unwrap();
    assert_eq!(served.head(), Some(head));
    assert!(!packs(&scratch).is_empty());
    b.wait_for_merges().await.unwrap();

    let clone = b.clone();
    assert_eq!(clone.scratch_dir(), scratch);
    drop(b);
    assert!(scratch.is_dir(), "a clone still uses it");
    assert_eq!(
        clone
            .read_to_string(head, "a.yaml")
            .await
            .unwrap()
            .as_deref(),
        Some("a: 4\n")
    );
    let dynamic: git_backend::DynBackend = Arc::new(clone);
    assert!(scratch.is_dir());
    drop(dynamic);
    assert!(!scratch.exists(), "removed when the last clone is dropped");
    assert!(names_in(parent.path()).is_empty());

    // Without `scratch_parent`: under the system's temporary directory, one per backend.
    let b1 = new_backend(MemoryBackendOptions::default());
    let b2 = new_backend(MemoryBackendOptions::default());
    let (s1, s2) = (b1.scratch_dir().to_owned(), b2.scratch_dir().to_owned());
    assert_ne!(s1, s2);
    for s in [&s1, &s2] {
        assert_eq!(s.parent(), Some(std::env::temp_dir().as_path()));
        assert!(s.is_dir());
    }
    drop(b1);
    assert!(!s1.exists() && s2.is_dir());
    drop(b2);
    assert!(!s2.exists());
}

/// Keeps a process alive until dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The id of a process that has ended (and is not a zombie).
fn ended_pid() -> u32 {
    for _ in 0..20 {
        let mut child = Command::new("true").spawn().expect("run `true`");
        let pid = child.id();
        child.wait().unwrap();
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return pid;
        }
    }
    panic!("no ended process id found");
}

/// A new backend removes the scratch directories of processes that no longer run, and keeps
/// those of running processes (its own included) and anything not named like a scratch
/// directory.
#[test]
fn scratch_directories_of_ended_processes_are_removed() {
    assert!(Path::new("/proc/self").exists(), "the check needs procfs");
    let parent = tempfile::tempdir().unwrap();
    let live = Running(
        Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("run `sleep`"),
    );
    let live_pid = live.0.id();
    let dead_pid = ended_pid();
    let me = std::process::id();

    let stale = [
        format!("{SCRATCH_PREFIX}{dead_pid}-xyz"),
        format!("{SCRATCH_PREFIX}{dead_pid}-abc"),
    ];
    let kept = [
        format!("{SCRATCH_PREFIX}{me}-xyz"),
        format!("{SCRATCH_PREFIX}{live_pid}-xyz"),
        format!("{SCRATCH_PREFIX}notapid-xyz"),
        format!("other-{dead_pid}-xyz"),
        format!("flipt-{dead_pid}-xyz"),
    ];
    for name in stale.iter().chain(&kept) {
        // Non-empty, with a read-only file deep down, as a real scratch repository has.
        let pack = parent.path().join(name).join("objects").join("pack");
        std::fs::create_dir_all(&pack).unwrap();
        let file = pack.join("pack-1.idx");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    assert!(
        !Path::new(&format!("/proc/{dead_pid}")).exists(),
        "pid {dead_pid} was reused"
    );

    let b = new_backend(options(10, 4, Some(parent.path())));
    let own = b
        .scratch_dir()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut expected: Vec<String> = kept.to_vec();
    expected.push(own);
    expected.sort();
    assert_eq!(names_in(parent.path()), expected);
    assert!(
        Path::new(&format!("/proc/{live_pid}")).exists(),
        "the live process ran for the whole check"
    );
    drop(b);
    drop(live);
}

// ------------------------------------------------------------------------------ working dir

/// Set for the child process of [`nothing_is_written_to_the_working_directory`].
const CHILD_ENV: &str = "FLIPT_MEMORY_TEST_CWD_CHILD";
/// `1` when the child's working directory must refuse a new file.
const CHILD_READ_ONLY_ENV: &str = "FLIPT_MEMORY_TEST_CWD_READ_ONLY";
const CHILD_TEST: &str = "cwd_child_uses_memory_backends";
/// Capabilities that let root write into a directory it cannot write to; dropped from the
/// bounding set (so from the child) when the tests run as root.
const DAC_CAPS: &str = "--bounding-set=-dac_override,-dac_read_search,-fowner";

/// Whether creating a file in `dir` fails, for this process (`None`) or for a process run
/// through `setpriv` without the DAC capabilities.
fn refuses_writes(dir: &Path, setpriv: bool) -> bool {
    let probe = dir.join("probe");
    let refused = if setpriv {
        // `true` must work through setpriv (it fails without CAP_SETPCAP), `touch` must not.
        let run = |args: &[&str]| {
            Command::new("setpriv")
                .arg(DAC_CAPS)
                .arg("--")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        run(&["true"]) && !run(&["touch", probe.to_str().unwrap()])
    } else {
        std::fs::File::create(&probe).is_err()
    };
    let _ = std::fs::remove_file(&probe);
    refused
}

/// libgit2 writes `FETCH_HEAD`, `shallow.lock`, `shallow`, `refs/` and `logs/` into the
/// working directory of a repository without a git directory. The child process runs memory
/// backends (commits, fetches and pushes over `file://` and smart HTTP, compactions, merges)
/// in an empty, read-only working directory; the directory must still be empty afterwards,
/// and every scratch directory of the child must be gone.
///
/// The directory is made read-only with `chmod 555`. Root ignores that, so when the tests run
/// as root the child is started through `setpriv` without the DAC capabilities; if neither
/// works, only the empty-directory check applies (a note says so).
#[test]
fn nothing_is_written_to_the_working_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cwd.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let (setpriv, read_only) = if refuses_writes(cwd.path(), false) {
        (false, true)
    } else if refuses_writes(cwd.path(), true) {
        (true, true)
    } else {
        eprintln!(
            "note: the working directory cannot be made read-only for the child (root without \
             setpriv); only the empty-directory check applies"
        );
        (false, false)
    };
    let exe = std::env::current_exe().unwrap();
    let mut cmd = if setpriv {
        let mut c = Command::new("setpriv");
        c.arg(DAC_CAPS).arg("--").arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let stdout = logs.path().join("stdout");
    let stderr = logs.path().join("stderr");
    cmd.args(["--exact", CHILD_TEST, "--nocapture"])
        .env(CHILD_ENV, "1")
        .env(CHILD_READ_ONLY_ENV, if read_only { "1" } else { "0" })
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap());
    let child = Running(cmd.spawn().expect("start the child test process"));
    let child_pid = child.0.id();
    let status = wait_with_deadline(child, Duration::from_secs(240));
    let output = format!(
        "--- child stdout ---\n{}\n--- child stderr ---\n{}",
        std::fs::read_to_string(&stdout).unwrap_or_default(),
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    let status = status.unwrap_or_else(|| panic!("the child did not finish in time\n{output}"));
    assert!(status.success(), "the child failed: {status}\n{output}");
    assert!(
        output.contains("1 passed"),
        "the child ran its test\n{output}"
    );
    std::fs::set_permissions(cwd.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        names_in(cwd.path()),
        Vec::<String>::new(),
        "files left in the working directory"
    );
    assert_eq!(
        scratch_dirs_of(&std::env::temp_dir(), child_pid),
        Vec::<String>::new(),
        "scratch directories left by the child"
    );
}

/// Waits for the process, killing it after `deadline`; `None` when it had to be killed.
fn wait_with_deadline(mut child: Running, deadline: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > deadline {
            return None; // `Running` kills it.
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The child of [`nothing_is_written_to_the_working_directory`]; does nothing when run as a
/// test of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cwd_child_uses_memory_backends() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let cwd = std::env::current_dir().unwrap();
    assert!(
        names_in(&cwd).is_empty(),
        "the child starts in an empty directory"
    );
    if std::env::var(CHILD_READ_ONLY_ENV).as_deref() == Ok("1") {
        let probe = std::fs::File::create(cwd.join("probe"));
        assert!(probe.is_err(), "the working directory is read-only");
    }

    let served = Served::new();
    let seeded = oid(&served
        .remote
        .cli_commit("main", &[("a.yaml", Some("a: 0\n"))], "seed"));
    let mut expected_head = seeded;
    let mut scratches = Vec::new();
    // Several backends, each fetching, committing, pushing and compacting over both
    // transports; alternate compaction settings so that merges happen too.
    for round in 0..4 {
        let b = new_backend(options(1 + round % 2, 2, None));
        scratches.push(b.scratch_dir().to_owned());
        for (kind, remote) in served.kinds() {
            let listed = b.ls_remote(&remote).await.unwrap();
            assert!(
                listed
                    .iter()
                    .any(|r| r.name == main_ref() && r.target == expected_head)
            );
            b.fetch(&remote, &tracking(kind), true).await.unwrap();
            assert_eq!(
                b.resolve(&tracking_ref(kind)).await.unwrap(),
                Some(expected_head),
                "{kind}"
            );
        }
        let mut main_at = None;
        for (kind, remote) in served.kinds() {
            let mut head = expected_head;
            for i in 0..3 {
                let next = commit(
                    &b,
                    Some(head),
                    vec![put("a.yaml", format!("a: {round}-{kind}-{i}\n"))],
                    "change",
                )
                .await;
                move_ref(&b, &main_ref(), main_at, next).await;
                main_at = Some(next);
                head = next;
            }
            // Unreferenced locally until pushed, as the sync engine does.
            let pushed = commit(&b, Some(head), vec![put("b.yaml", kind)], "push").await;
            b.compact().await.unwrap();
            push_main(&b, &remote, pushed, Some(expected_head))
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            move_ref(&b, &main_ref(), main_at, pushed).await;
            main_at = Some(pushed);
            expected_head = pushed;
            // A branch created and deleted on the remote, pruned locally.
            let branch = RefName::branch("flipt/dev/x").unwrap();
            b.push(
                &remote,
                PushUpdate {
                    local: Some(pushed),
                    remote_ref: branch.clone(),
                    expected: Expected::Absent,
                },
            )
            .await
            .unwrap();
            let wildcard = vec![format!("+refs/heads/*:refs/remotes/{kind}-all/*")];
            b.fetch(&remote, &wildcard, true).await.unwrap();
            b.push(
                &remote,
                PushUpdate {
                    local: None,
                    remote_ref: branch,
                    expected: Expected::Value(pushed),
                },
            )
            .await
            .unwrap();
            b.fetch(&remote, &wildcard, true).await.unwrap();
            let mirrored = b
                .list_refs(&format!("refs/remotes/{kind}-all/"))
                .await
                .unwrap();
            assert_eq!(mirrored.len(), 1, "{kind}: {mirrored:?}");
            assert_eq!(served.head(), Some(expected_head));
        }
        // Another user's commit, fetched over both transports.
        let other =
            oid(&served
                .remote
                .cli_commit("main", &[("c.yaml", Some("c: 1\n"))], "another user"));
        for (kind, remote) in served.kinds() {
            b.fetch(&remote, &tracking(kind), true).await.unwrap();
            assert_eq!(
                b.read_to_string(other, "c.yaml").await.unwrap().as_deref(),
                Some("c: 1\n"),
                "{kind}"
            );
        }
        expected_head = other;
        b.compact().await.unwrap();
        assert!(
            names_in(&cwd).is_empty(),
            "round {round}: {:?}",
            names_in(&cwd)
        );
    }
    served.remote.fsck();
    for s in &scratches {
        assert!(!s.exists(), "{} is removed on drop", s.display());
    }
    assert!(names_in(&cwd).is_empty(), "{:?}", names_in(&cwd));
}

// ------------------------------------------------------------------------------ concurrency

/// Eight backends fetch the same remote at once over `file://` and smart HTTP; all succeed and
/// see the same head and history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_instances_fetch_at_once() {
    const INSTANCES: usize = 8;
    let served = Arc::new(Served::new());
    let mut head = None;
    for i in 0..5 {
        let path = format!("ns{i}/features.yaml");
        let content = format!("flags: [{i}]\n");
        head = Some(oid(&served.remote.cli_commit(
            "main",
            &[(&path, Some(&content))],
            "another user",
        )));
    }
    let head = head.unwrap();
    for round in 0..2 {
        let barrier = Arc::new(tokio::sync::Barrier::new(INSTANCES));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..INSTANCES {
            let served = Arc::clone(&served);
            let barrier = Arc::clone(&barrier);
            tasks.spawn(async move {
                let b = new_backend(options(1000, 32, None));
                barrier.wait().await;
                // Half start with HTTP, half with file://, so both run at the same time.
                let mut kinds = served.kinds();
                if i % 2 == 1 {
                    kinds.reverse();
                }
                let mut seen = Vec::new();
                for (kind, remote) in kinds {
                    let changes = b
                        .fetch(&remote, &tracking(kind), true)
                        .await
                        .unwrap_or_else(|e| panic!("instance {i}, {kind}: {e}"));
                    assert_eq!(changes.len(), 1, "instance {i}, {kind}: {changes:?}");
                    seen.push(b.resolve(&tracking_ref(kind)).await.unwrap());
                }
                let scratch = b.scratch_dir().to_owned();
                let history = b.log(head, LogOptions::default()).await.unwrap().len();
                let file = b.read_to_string(head, "ns4/features.yaml").await.unwrap();
                drop(b);
                (i, seen, history, file, scratch)
            });
        }
        let deadline = Duration::from_secs(120);
        let mut done = 0;
        while let Some(joined) = tokio::time::timeout(deadline, tasks.join_next())
            .await
            .expect("the fetches finish in time")
        {
            let (i, seen, history, file, scratch) = joined.expect("an instance panicked");
            assert_eq!(
                seen,
                [Some(head), Some(head)],
                "round {round}, instance {i}"
            );
            assert_eq!(history, 5, "round {round}, instance {i}: full history");
            assert_eq!(file.as_deref(), Some("flags: [4]\n"));
            assert!(!scratch.exists());
            done += 1;
        }
        assert_eq!(done, INSTANCES);
    }
}

// ------------------------------------------------------------------------------ compaction

/// New objects stay in RAM (the scratch repository on disk does not have them) until a
/// compaction writes them as one pack; reads work the same before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_objects_stay_in_ram_until_compaction() {
    let b = new_backend(options(1000, 32, None));
    let scratch = b.scratch_dir().to_owned();
    let c1 = commit(&b, None, vec![put("a/b.yaml", "b: 1\n")], "one").await;
    move_ref(&b, &main_ref(), None, c1).await;
    let c2 = commit(&b, Some(c1), vec![put("a/b.yaml", "b: 2\n")], "two").await;
    assert!(!on_disk(&scratch, c1) && !on_disk(&scratch, c2));
    assert!(packs(&scratch).is_empty());
    assert!(loose_objects(&scratch).is_empty());

    b.compact().await.unwrap();
    assert_eq!(packs(&scratch).len(), 1);
    assert!(on_disk(&scratch, c1), "referenced commits are written");
    assert!(
        on_disk(&scratch, c2),
        "recent unreferenced commits are kept"
    );
    assert!(
        loose_objects(&scratch).is_empty(),
        "objects go to packs only"
    );
    assert_eq!(
        b.read_to_string(c2, "a/b.yaml").await.unwrap().as_deref(),
        Some("b: 2\n")
    );
    // A compaction with nothing new writes no pack.
    b.compact().await.unwrap();
    assert_eq!(packs(&scratch).len(), 1);
    // The next commit is in RAM again; its pack holds only what is new.
    let c3 = commit(&b, Some(c2), vec![put("a/c.yaml", "c\n")], "three").await;
    assert!(!on_disk(&scratch, c3));
    b.compact().await.unwrap();
    assert_eq!(packs(&scratch).len(), 2);
    assert!(on_disk(&scratch, c3));
}

/// The objects held in RAM are bounded in bytes too: with `compact_bytes` at 64 KiB, two
/// commits of a 30 KB file stay in RAM (and in the process's count of held bytes), the third
/// writes all three as one pack; a single commit larger than the bound is packed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_follows_the_bytes_held_in_ram() {
    let b = new_backend(MemoryBackendOptions {
        compact_bytes: 64 << 10,
        ..options(1000, 32, None)
    });
    let scratch = b.scratch_dir().to_owned();
    let file = |n: u8| put("ns/features.yaml", format!("{n}").repeat(30_000));
    let compactions = git2_support::memory_stats().compactions;
    let c1 = commit(&b, None, vec![file(1)], "one").await;
    let c2 = commit(&b, Some(c1), vec![file(2)], "two").await;
    assert!(packs(&scratch).is_empty() && !on_disk(&scratch, c2));
    // Other tests of this process add their own bytes and take away only those.
    let held = git2_support::memory_stats().held_bytes;
    assert!(held >= 60_000, "held {held} bytes");
    let c3 = commit(&b, Some(c2), vec![file(3)], "three").await;
    assert_eq!(packs(&scratch).len(), 1);
    for c in [c1, c2, c3] {
        assert!(on_disk(&scratch, c), "{c} compacted");
    }
    assert!(git2_support::memory_stats().compactions > compactions);
    let big = put("ns/big.yaml", "x".repeat(100_000));
    let c4 = commit(&b, Some(c3), vec![big], "big").await;
    assert_eq!(packs(&scratch).len(), 2);
    assert!(on_disk(&scratch, c4));
    assert_eq!(
        b.read_to_string(c4, "ns/features.yaml")
            .await
            .unwrap()
            .map(|s| s.len()),
        Some(30_000)
    );
}

/// 200 commits and reference updates with a compaction every 10 commits and at most 4 packs:
/// the history stays complete and readable, the scratch directory holds it all in a few
/// packs (merging happened), and fetches and pushes after all those compactions work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_stays_complete_across_compactions_and_merges() {
    const COMMITS: usize = 200;
    const MAX_PACKS: usize = 4;
    let b = new_backend(options(10, MAX_PACKS, None));
    let scratch = b.scratch_dir().to_owned();
    let path_of = |i: usize| format!("d{}/f{:02}.yaml", i % 10, i % 25);
    let content_of = |i: usize| format!("version: {i}\n");
    let root = commit(&b, None, vec![put("README.md", "seed\n")], "c0").await;
    move_ref(&b, &main_ref(), None, root).await;
    let mut head = root;
    let mut most_packs = 0;
    for i in 1..=COMMITS {
        let next = commit(
            &b,
            Some(head),
            vec![put(&path_of(i), content_of(i))],
            &format!("c{i}"),
        )
        .await;
        move_ref(&b, &main_ref(), Some(head), next).await;
        head = next;
        // Merges run on a thread of their own; what they leave is what is bounded.
        b.wait_for_merges().await.unwrap();
        most_packs = most_packs.max(packs(&scratch).len());
    }
    assert!(
        most_packs <= MAX_PACKS + 1,
        "packs are merged: at most {most_packs} seen"
    );
    let n = packs(&scratch).len();
    assert!((1..=MAX_PACKS + 1).contains(&n), "{n} packs");
    assert!(!scratch.join("objects").join("pack-merge").exists());
    assert!(loose_objects(&scratch).is_empty());

    // Complete history, every version of every file readable.
    let log = b.log(head, LogOptions::default()).await.unwrap();
    assert_eq!(log.len(), COMMITS + 1);
    for info in &log {
        let i: usize = info.message.trim_start_matches('c').parse().unwrap();
        if i == 0 {
            continue;
        }
        assert_eq!(
            b.read_to_string(info.id, &path_of(i)).await.unwrap(),
            Some(content_of(i)),
            "commit {i}"
        );
    }
    // At the head, every file holds the last version written to it.
    let mut latest = std::collections::BTreeMap::new();
    latest.insert("README.md".to_owned(), "seed\n".to_owned());
    for i in 1..=COMMITS {
        latest.insert(path_of(i), content_of(i));
    }
    let files = b.list_tree(head, None, true).await.unwrap();
    let listed: Vec<&str> = files.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        listed,
        latest.keys().map(String::as_str).collect::<Vec<_>>()
    );
    for (path, content) in &latest {
        assert_eq!(
            b.read_to_string(head, path).await.unwrap().as_ref(),
            Some(content),
            "{path}"
        );
    }
    // Compactions ran every 10 commits (the root counts): the 200th compacted commit and
    // its whole history are on disk, checked by the git CLI; the last commit is in RAM until
    // the next compaction.
    let rev_count = |id: ObjectId| {
        test_support::git(&["rev-list", "--count", &id.to_string()], &scratch)
            .trim()
            .to_owned()
    };
    assert_eq!(rev_count(log[1].id), COMMITS.to_string());
    assert!(!on_disk(&scratch, head));
    b.compact().await.unwrap();
    assert_eq!(rev_count(head), (COMMITS + 1).to_string());
    test_support::git(&["fsck", "--no-progress", "--no-dangling"], &scratch);

    // Transports after all those compactions: push the whole history to both kinds of
    // remote, fetch another user's commit, build on it and push again.
    let served = Served::new();
    push_main(&b, &served.file(), head, None).await.unwrap();
    assert_eq!(served.head(), Some(head));
    assert_eq!(served.remote.log("main").len(), COMMITS + 1);
    served.remote.fsck();
    let mut remote_head = head;
    for (kind, remote) in served.kinds() {
        let other =
            oid(&served
                .remote
                .cli_commit("main", &[("other.yaml", Some(kind))], "another user"));
        let changes = b.fetch(&remote, &tracking(kind), true).await.unwrap();
        assert_eq!(changes.len(), 1, "{kind}");
        assert_eq!(
            b.read_to_string(other, "other.yaml")
                .await
                .unwrap()
                .as_deref(),
            Some(kind)
        );
        let mut local = other;
        for j in 0..15 {
            local = commit(
                &b,
                Some(local),
                vec![put("mine.yaml", format!("{j}"))],
                "mine",
            )
            .await;
        }
        push_main(&b, &remote, local, Some(other))
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(served.head(), Some(local), "{kind}");
        remote_head = local;
    }
    served.remote.fsck();
    // A fresh backend fetches it all back.
    let fresh = new_backend(options(10, MAX_PACKS, None));
    fresh
        .fetch(&served.http(), &tracking("origin"), true)
        .await
        .unwrap();
    assert_eq!(
        fresh
            .log(remote_head, LogOptions::default())
            .await
            .unwrap()
            .len(),
        COMMITS + 1 + 2 * 16
    );
    b.wait_for_merges().await.unwrap();
    assert!(packs(&scratch).len() <= MAX_PACKS + 1);
}

/// The sync engine pushes a commit before any local reference points at it. With a
/// compaction after every commit and pack merges in between, the commit is still there to be
/// pushed, over both transports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreferenced_commit_can_be_pushed_after_compactions() {
    for kind in ["file", "http"] {
        let served = Served::new();
        let remote = if kind == "file" {
            served.file()
        } else {
            served.http()
        };
        let b = new_backend(options(1, 2, None));
        let scratch = b.scratch_dir().to_owned();
        let c1 = commit(&b, None, vec![put("a.yaml", "a: 1\n")], "seed").await;
        move_ref(&b, &main_ref(), None, c1).await;
        push_main(&b, &remote, c1, None).await.unwrap();

        // Pushed right after creation (a compaction ran inside `create_commit`).
        let c2 = commit(&b, Some(c1), vec![put("a.yaml", "a: 2\n")], "two").await;
        assert!(on_disk(&scratch, c2), "{kind}: compacted at creation");
        push_main(&b, &remote, c2, Some(c1))
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(served.head(), Some(c2), "{kind}");
        move_ref(&b, &main_ref(), Some(c1), c2).await;

        // Created, then many compactions and merges of other work, then pushed.
        let c3 = commit(&b, Some(c2), vec![put("b/c.yaml", "c: 3\n")], "three").await;
        let other = RefName::branch("other").unwrap();
        let mut o = c1;
        for i in 0..8 {
            let next = commit(&b, Some(o), vec![put("o.yaml", format!("{i}"))], "other").await;
            move_ref(&b, &other, (i > 0).then_some(o), next).await;
            o = next;
            b.compact().await.unwrap();
        }
        assert!(packs(&scratch).len() <= 3, "{kind}: merges ran");
        assert_eq!(
            b.read_to_string(c3, "b/c.yaml").await.unwrap().as_deref(),
            Some("c: 3\n"),
            "{kind}: the unreferenced commit survives merges"
        );
        push_main(&b, &remote, c3, Some(c2))
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(served.head(), Some(c3), "{kind}");
        assert_eq!(
            served.remote.show_file("main", "b/c.yaml").as_deref(),
            Some("c: 3\n")
        );
        served.remote.fsck();
        move_ref(&b, &main_ref(), Some(c2), c3).await;
    }
}

/// Merges are geometric: a large pack is not rewritten when small ones are merged (only once
/// the small ones add up to half its size), and every object stays readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_leave_a_large_pack_alone() {
    let b = new_backend(options(1, 3, None));
    let scratch = b.scratch_dir().to_owned();
    // ~200 KB that does not compress much.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: String = (0..25_000)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            format!("{:08x}", x >> 32)
        })
        .collect();
    let mut head = commit(&b, None, vec![put("big.txt", noise)], "big").await;
    move_ref(&b, &main_ref(), None, head).await;
    let big = packs(&scratch);
    assert_eq!(big.len(), 1);
    for i in 0..20 {
        let next = commit(
            &b,
            Some(head),
            vec![put("small.yaml", format!("i: {i}\n"))],
            "small",
        )
        .await;
        move_ref(&b, &main_ref(), Some(head), next).await;
        head = next;
        b.wait_for_merges().await.unwrap();
        let n = packs(&scratch).len();
        assert!(n <= 3, "after commit {i}: {n} packs");
    }
    assert!(
        packs(&scratch).contains(&big[0]),
        "the large pack was rewritten: {:?}",
        packs(&scratch)
    );
    assert_eq!(
        b.read_to_string(head, "small.yaml")
            .await
            .unwrap()
            .as_deref(),
        Some("i: 19\n")
    );
    assert_eq!(
        b.read_to_string(head, "big.txt")
            .await
            .unwrap()
            .map(|t| t.len()),
        Some(200_000)
    );
    assert_eq!(b.log(head, LogOptions::default()).await.unwrap().len(), 21);
}

/// Pack merges run on a thread of their own. A backend dropped while one runs: the merge
/// keeps the scratch directory until it ends, then the directory is removed, and nothing is
/// left in its parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_directory_goes_after_a_merge_in_flight() {
    let parent = tempfile::tempdir().unwrap();
    let b = new_backend(options(1, 2, Some(parent.path())));
    let scratch = b.scratch_dir().to_owned();
    let mut head = commit(&b, None, vec![put("f.yaml", "0")], "0").await;
    move_ref(&b, &main_ref(), None, head).await;
    for i in 1..8 {
        let next = commit(&b, Some(head), vec![put("f.yaml", format!("{i}"))], "n").await;
        move_ref(&b, &main_ref(), Some(head), next).await;
        head = next;
    }
    // The last commits left three packs: a merge was started and may still run.
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(30);
    while scratch.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!scratch.exists(), "the scratch directory is removed");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        names_in(parent.path()).is_empty(),
        "{:?}",
        names_in(parent.path())
    );
}

/// A store that only fetches (no commits of its own, so no compaction) still merges the
/// packs its fetches leave, and keeps every fetched commit readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packs_left_by_fetches_are_merged() {
    let served = Served::new();
    let remote = served.file();
    let b = new_backend(options(1000, 3, None));
    let scratch = b.scratch_dir().to_owned();
    let mut fetched = Vec::new();
    for i in 0..10 {
        let commit = served.remote.cli_commit(
            "main",
            &[("a.yaml", Some(&format!("a: {i}\n")))],
            "another user",
        );
        b.fetch(&remote, &tracking("file"), true).await.unwrap();
        let head = oid(&commit);
        assert_eq!(b.resolve(&tracking_ref("file")).await.unwrap(), Some(head));
        fetched.push((head, i));
        b.wait_for_merges().await.unwrap();
        let n = packs(&scratch).len();
        assert!(n <= 3, "after fetch {i}: {n} packs");
    }
    for (id, i) in fetched {
        assert_eq!(
            b.read_to_string(id, "a.yaml").await.unwrap(),
            Some(format!("a: {i}\n")),
            "fetched commit {i} stays readable"
        );
    }
}

/// Reads on a store with nothing in memory run on pooled handles, beside pack merges that
/// delete the packs those handles listed: every read must still find its objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_during_pack_merges_find_their_objects() {
    // Every commit is compacted at once (nothing stays in memory) and packs are merged as
    // soon as there are more than two.
    let b = Arc::new(new_backend(options(1, 2, None)));
    let mut head = commit(&b, None, vec![put("f", "0")], "0").await;
    move_ref(&b, &main_ref(), None, head).await;
    let first = head;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..3 {
        let b = b.clone();
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut reads = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let head = b.resolve(&main_ref()).await.unwrap().unwrap();
                for (commit, path) in [(first, "f"), (head, "f")] {
                    let text = b
                        .read_to_string(commit, path)
                        .await
                        .unwrap_or_else(|e| panic!("reader {r}: reading {path} at {commit}: {e}"));
                    assert!(text.is_some(), "reader {r}: {path} missing at {commit}");
                }
                b.list_tree(head, None, true)
                    .await
                    .unwrap_or_else(|e| panic!("reader {r}: listing {head}: {e}"));
                reads += 1;
            }
            reads
        }));
    }
    for i in 1..80 {
        let next = commit(
            &b,
            Some(head),
            vec![put("f", i.to_string()), put(&format!("g{i}"), "x")],
            "w",
        )
        .await;
        move_ref(&b, &main_ref(), Some(head), next).await;
        head = next;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for r in readers {
        total += r.await.unwrap();
    }
    assert!(total > 0);
    assert_eq!(b.list_tree(head, None, true).await.unwrap().len(), 80);
}
