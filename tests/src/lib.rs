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

/// A running `flipt-storage serve`, stopped with SIGKILL when dropped (use [`Server::stop`]
/// for a graceful stop).
#[derive(Debug)]
pub struct Server {
    child: std::process::Child,
    /// The gRPC endpoint, e.g. `http://127.0.0.1:41234`.
    pub grpc: String,
    /// The HTTP base URL, e.g. `http://127.0.0.1:41235`.
    pub http: String,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server with `config` (YAML; `server.host`, ports and the ready file are
    /// set by this function) and waits until it listens. Panics with its output if it does
    /// not start within 30 seconds.
    pub fn start(config: &str) -> Server {
        Self::start_with_env(config, &[])
    }

    /// Starts the default configuration with `server.protocol: https` and the given PEM
    /// certificate chain and key.
    pub fn start_with_tls(cert: &Path, key: &Path) -> Server {
        Self::start_with_env(
            "",
            &[
                ("FLIPT_SERVER_PROTOCOL", "https"),
                ("FLIPT_SERVER_CERT_FILE", cert.to_str().expect("UTF-8 path")),
                ("FLIPT_SERVER_CERT_KEY", key.to_str().expect("UTF-8 path")),
            ],
        )
    }

    /// Like [`Server::start`], with extra environment variables.
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("config.yml");
        let full =
            format!("{config}\nserver:\n  host: 127.0.0.1\n  grpc_port: 0\n  http_port: 0\n");
        std::fs::write(&config_path, full).expect("write config");
        let ready = dir.path().join("ready.json");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let mut cmd = flipt_storage();
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .arg("--ready-file")
            .arg(&ready);
        cmd.stdout(log.try_clone().expect("log"))
            .stderr(log)
            .current_dir(dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn flipt-storage");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let v: serde_json::Value = serde_json::from_str(&text).expect("ready file is JSON");
                let addr = |k: &str| v[k].as_str().expect("address").to_owned();
                return Server {
                    child,
                    grpc: format!("http://{}", addr("grpc")),
                    http: format!("http://{}", addr("http")),
                    dir,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "flipt-storage exited with {status} before listening:\n{}",
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
                );
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "flipt-storage did not listen within 30s:\n{}",
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (at most 30 s) for the exit code.
    pub fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "flipt-storage did not stop within 30s after SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
