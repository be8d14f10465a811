//! Snapshot builds on threads of their own, at a lower CPU priority than request handling.
//!
//! A rebuild after a head change is CPU work of milliseconds (one changed namespace) to a few
//! hundred milliseconds (a cold build of 10,000 flags). On the blocking pool at normal
//! priority it took a core from the requests running meanwhile: measured on 2 cores, the
//! Watch event of the change that started it waited for it (S1 in BENCHMARKS.md). A request
//! that needs the new snapshot waits for it anyway, and waiting costs no CPU, so the build
//! gets the CPU back as soon as nothing more urgent wants it.
#![expect(
    unsafe_code,
    reason = "setpriority(2) is an FFI call; it lowers the calling thread's own priority"
)]

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

use tonic::Status;

/// The nice value of build threads (0 is normal; 19 the lowest priority).
const BUILD_NICE: libc::c_int = 10;

type Job = Box<dyn FnOnce() + Send>;

/// Threads started on first use, one per core (at most 4): builds of different environments
/// run in parallel, and no build pays for starting a thread.
fn workers() -> &'static Mutex<Sender<Job>> {
    static WORKERS: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    WORKERS.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let n = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        for i in 0..n {
            let rx = rx.clone();
            // A thread that cannot start leaves the others; with none, jobs fail (below).
            let _ = std::thread::Builder::new()
                .name(format!("snapshot-build-{i}"))
                .spawn(move || work(&rx));
        }
        Mutex::new(tx)
    })
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    lower_this_thread();
    loop {
        let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // A panicking build drops its result sender, which its caller reports; the worker
        // goes on with the next build.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Runs `f` on a build thread (lowered CPU priority) and waits for its result.
pub(crate) async fn run_lowered<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Status> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    workers()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(job)
        .map_err(|_| Status::internal("no snapshot build thread is running"))?;
    rx.await
        .map_err(|_| Status::internal("the snapshot build ended without a result"))
}

/// Lowers the calling thread's priority. On Linux the nice value belongs to the thread
/// (setpriority(2), NOTES), so the thread that lowers itself is the only one affected; build
/// threads run nothing else, so the priority is never raised again (which needs a
/// privilege). Elsewhere, or when the call fails, builds run at normal priority.
fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain integers; `who = 0` is the calling thread on Linux. The result only
        // tells whether the priority changed, which nothing depends on.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, BUILD_NICE) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_build_is_an_error_and_the_next_build_runs() {
        let r = run_lowered(|| -> u8 { panic!("a build that fails") }).await;
        assert!(r.is_err());
        assert_eq!(run_lowered(|| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn runs_the_build_on_a_lowered_thread_and_returns_its_result() {
        let (value, nice) = run_lowered(|| {
            // SAFETY: reads the calling thread's nice value.
            let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            (41 + 1, nice)
        })
        .await
        .unwrap();
        assert_eq!(value, 42);
        #[cfg(target_os = "linux")]
        assert_eq!(
            nice, BUILD_NICE,
            "the build thread runs at the lowered priority"
        );
        // The calling thread keeps its priority.
        #[cfg(target_os = "linux")]
        assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }, 0);
    }
}
