//! Process-wide libgit2 settings. libgit2 keeps them in globals, so they are set once, at
//! start-up, by the binary (or by tests).
#![expect(
    unsafe_code,
    reason = "git2::opts setters are `unsafe fn`: they write libgit2 globals, which is sound only before other threads use libgit2, as `configure` documents"
)]

use std::sync::Once;
use std::time::Duration;

/// Settings applied to every repository of the process.
#[derive(Debug, Clone, Copy)]
pub struct GlobalOptions {
    /// Connect and I/O timeout of network operations.
    pub timeout: Duration,
}

impl Default for GlobalOptions {
    fn default() -> Self {
        GlobalOptions {
            timeout: Duration::from_secs(30),
        }
    }
}

static CONFIGURED: Once = Once::new();

/// Applies `options` to libgit2, once per process: later calls do nothing. Call it at
/// start-up, before any repository is opened on another thread.
pub fn configure(options: GlobalOptions) {
    CONFIGURED.call_once(|| {
        let millis = i32::try_from(options.timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: libgit2 reads these globals when it opens connections; `call_once` runs this
        // before any connection made through this crate, and the values are plain integers.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(millis);
            let _ = git2::opts::set_server_timeout_in_milliseconds(millis);
            // Trees up to 1 MiB stay in libgit2's object cache: without this, reads of large
            // directories re-inflate the tree every time.
            let _ = git2::opts::set_cache_object_limit(git2::ObjectType::Tree, 1 << 20);
        }
    });
}
