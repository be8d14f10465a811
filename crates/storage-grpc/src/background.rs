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

use tonic::Status;

/// The nice value of build threads (0 is normal; 19 the lowest priority).
const BUILD_NICE: libc::c_int = 10;

/// Runs `f` on a new thread whose CPU priority is lowered, and waits for its result.
pub(crate) async fn run_lowered<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Status> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("snapshot-build".into())
        .spawn(move || {
            lower_this_thread();
            let _ = tx.send(f());
        })
        .map_err(|e| Status::internal(format!("could not start a snapshot build thread: {e}")))?;
    rx.await
        .map_err(|_| Status::internal("the snapshot build thread ended without a result"))
}

/// Lowers the calling thread's priority. On Linux the nice value belongs to the thread
/// (setpriority(2), NOTES), so the thread that lowers itself is the only one affected; the
/// thread ends with the build, so the priority is never raised again (which needs a
/// privilege). Elsewhere, or when the call fails, the build runs at normal priority.
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
