//! End-to-end tests of the flag storage service, run against the real `flipt-storage`
//! binary. The tests live in `tests/`; this library holds what they share.
//!
//! The binary is found through `STORAGE_SERVER_BIN` (which `cargo xtask test` sets after
//! building it) or, when that is not set, built on first use with `cargo build`, so that
//! `cargo test -p integration-tests` never runs a stale binary.
//!
//! ```no_run
//! let out = integration_tests::flipt_storage().args(["config", "validate"]).output().unwrap();
//! assert!(out.status.success());
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
}

/// Path of the `flipt-storage` binary, building it if needed.
pub fn binary_path() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("STORAGE_SERVER_BIN") {
            return PathBuf::from(bin);
        }
        // Test executables live in <target>/<profile>/deps/; the binary goes in <profile>/.
        let exe = std::env::current_exe().expect("current executable has a path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps layout");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        build.current_dir(workspace_root()).args([
            "build",
            "--quiet",
            "-p",
            "storage-server",
            "--bin",
            "flipt-storage",
        ]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building flipt-storage failed");
        profile_dir.join(format!("flipt-storage{}", std::env::consts::EXE_SUFFIX))
    })
}

/// A command running the binary with a clean configuration environment: no `FLIPT_*`
/// variable of the test process leaks into it.
pub fn flipt_storage() -> Command {
    let mut cmd = Command::new(binary_path());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("FLIPT_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// The output of a finished command as text, for assertions and failure messages.
#[derive(Debug)]
pub struct Output {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs a command to completion and captures its output.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the binary runs");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
