//! End-to-end tests of the flag storage service. The tests live in `tests/` and run the real
//! `flipt-storage` binary, which cargo builds and names through `CARGO_BIN_EXE_*` only for
//! the binary's own package; this crate finds it next to its own test executable instead.
//!
//! ```
//! let bin = integration_tests::binary_path();
//! assert!(bin.ends_with("flipt-storage"));
//! ```

use std::path::PathBuf;

/// Path of the `flipt-storage` binary in the same target directory as the running test
/// (`target/<profile>/flipt-storage`). `cargo build` (or `cargo xtask test`) builds it.
pub fn binary_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current executable has a path");
    // Test executables live in target/<profile>/deps/.
    let mut dir = exe.parent().expect("executable has a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(format!("flipt-storage{}", std::env::consts::EXE_SUFFIX))
}
