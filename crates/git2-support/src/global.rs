//! Process-wide libgit2 and allocator settings. libgit2 keeps its settings in globals, so
//! they are set once, at start-up, by the binary (or by tests and benchmarks).
#![expect(
    unsafe_code,
    reason = "git2::opts setters are `unsafe fn` (they write libgit2 globals, sound only before other threads use libgit2, as `configure` documents), and glibc's `malloc_trim` and `mallinfo2` are FFI calls"
)]

use std::sync::Once;
use std::time::Duration;

/// Settings applied to every repository of the process.
#[derive(Debug, Clone, Copy)]
pub struct GlobalOptions {
    /// Connect and I/O timeout of network operations.
    pub timeout: Duration,
    /// Size of the windows through which pack files are mapped into memory (1 MiB, git's
    /// value on 32-bit systems: under the mapped limit below, eight packs can each keep a
    /// window mapped at once).
    pub pack_window_bytes: usize,
    /// Most pack-file bytes kept mapped at once (least recently used windows are unmapped
    /// beyond it). libgit2's default (8 GiB, one window per pack) lets the resident size grow
    /// with every pack that is read; this keeps it bounded. Mapped pages count in the
    /// resident size (as shared memory when the packs are on tmpfs, as in the bench; as page
    /// cache otherwise): at 16 MiB they were half of M2's growth in BENCHMARKS.md; at 8 MiB
    /// they stop growing early, and the writes measured no slower in A/B runs.
    pub pack_mapped_limit_bytes: usize,
    /// Most bytes of parsed objects (commits and trees; blobs are never cached) that libgit2
    /// keeps in its object caches, all repositories together. libgit2's default, 256 MiB, is
    /// reached only slowly: every commit adds new trees, and a long-lived handle (the pooled
    /// ones) keeps what it parsed until the limit evicts it, so the resident size of a server
    /// taking writes crept up for hours. The trees read again and again (a root tree, the
    /// directories of a snapshot) fit many times in the bound.
    pub object_cache_bytes: usize,
}

impl Default for GlobalOptions {
    fn default() -> Self {
        GlobalOptions {
            timeout: Duration::from_secs(30),
            pack_window_bytes: 1 << 20,
            pack_mapped_limit_bytes: 8 << 20,
            object_cache_bytes: 16 << 20,
        }
    }
}

static CONFIGURED: Once = Once::new();

/// Applies `options` to libgit2, once per process: later calls do nothing. Call it at
/// start-up, before any repository is opened on another thread.
pub fn configure(options: GlobalOptions) {
    CONFIGURED.call_once(|| {
        let millis = i32::try_from(options.timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: libgit2 reads these globals when it opens connections and maps packs;
        // `call_once` runs this at start-up, and the values are plain integers.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(millis);
            let _ = git2::opts::set_server_timeout_in_milliseconds(millis);
            // Trees up to 1 MiB stay in libgit2's object cache: without this, reads of large
            // directories re-inflate the tree every time.
            let _ = git2::opts::set_cache_object_limit(git2::ObjectType::Tree, 1 << 20);
            let _ = git2::opts::set_mwindow_size(options.pack_window_bytes);
            let _ = git2::opts::set_mwindow_mapped_limit(options.pack_mapped_limit_bytes);
            let cache = isize::try_from(options.object_cache_bytes).unwrap_or(isize::MAX);
            let _ = git2::opts::set_cache_max_size(cache);
        }
    });
}

/// Returns freed heap memory to the system (glibc's `malloc_trim`). libgit2 allocates with
/// the C allocator; after a compaction frees tens of megabytes of in-memory objects, glibc
/// keeps the pages, and long-lived allocations made in between make the resident size ratchet
/// up with every compaction (measured: +35 MiB per 1,000 commits of a 63 KB file). Does
/// nothing on other C libraries.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases free memory; it takes no pointer and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What the C allocator holds: the heap of Rust and libgit2 alike (both allocate with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes in allocations not yet freed (the live heap).
    pub in_use: u64,
    /// Bytes freed but kept by the allocator for reuse, not given back to the system. Some of
    /// them are resident, some not: `malloc_trim` gives back whole free pages only.
    pub free_held: u64,
}

/// The C allocator's counters (glibc's `mallinfo2`, summed over its arenas), or `None` where
/// they cannot be had: other C libraries, and glibc older than 2.33, which has `mallinfo2`'s
/// 32-bit predecessor only (looked up when first asked for, so that the binary still starts
/// there). Takes each arena's lock briefly; meant for a metrics scrape, not a hot path.
pub fn heap_stats() -> Option<HeapStats> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::sync::OnceLock;
        type MallInfo2 = unsafe extern "C" fn() -> libc::mallinfo2;
        static MALLINFO2: OnceLock<Option<MallInfo2>> = OnceLock::new();
        let f = (*MALLINFO2.get_or_init(|| {
            // SAFETY: `dlsym` with the default handle and a NUL-terminated name only looks a
            // symbol up.
            let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"mallinfo2".as_ptr()) };
            // SAFETY: glibc's `mallinfo2` has exactly this signature (no arguments, the struct
            // returned by value), as `libc` declares it.
            (!p.is_null())
                .then(|| unsafe { std::mem::transmute::<*mut libc::c_void, MallInfo2>(p) })
        }))?;
        // SAFETY: `mallinfo2` takes no pointer and is thread-safe (it locks each arena).
        let info = unsafe { f() };
        Some(HeapStats {
            in_use: (info.uordblks + info.hblkhd) as u64,
            free_held: info.fordblks as u64,
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn heap_stats_follow_a_large_allocation() {
        let before = heap_stats().expect("glibc >= 2.33 on the machines this is built for");
        let big = std::hint::black_box(vec![1u8; 64 << 20]);
        let during = heap_stats().unwrap();
        assert!(
            during.in_use >= before.in_use + (60 << 20),
            "{before:?} -> {during:?}"
        );
        drop(big);
        let after = heap_stats().unwrap();
        assert!(
            after.in_use + (60 << 20) <= during.in_use,
            "{during:?} -> {after:?}"
        );
    }
}
