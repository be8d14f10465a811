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

use std::collections::BTreeMap;
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
    clean_env(Command::new(binary_path()))
}

/// Removes every `FLIPT_*` variable of the test process from `cmd`'s environment.
fn clean_env(mut cmd: Command) -> Command {
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

/// How to start a server: the configuration, extra environment variables and limits. Made
/// by [`Server::builder`].
///
/// ```no_run
/// // A local repository whose files may not grow beyond 64 KiB (SIGXFSZ ignored, so writes
/// // past the limit fail with EFBIG instead of killing the process).
/// let s = integration_tests::Server::builder("storage:\n  default:\n    backend:\n      type: local\n      path: /tmp/flags\n")
///     .file_size_limit(64 * 1024)
///     .start();
/// ```
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    config: String,
    env: Vec<(String, String)>,
    file_size_limit: Option<u64>,
}

impl ServerBuilder {
    /// Sets an environment variable for the server.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Runs the server with the soft `RLIMIT_FSIZE` at `bytes` (the hard limit unchanged, so
    /// [`Server::set_file_size_limit`] can raise it again) and SIGXFSZ ignored: a write that
    /// would make any file larger fails with `EFBIG`, as on a full disk, and needs no
    /// privilege. Started as `sh -c "trap '' XFSZ; exec prlimit --fsize=N: -- flipt-storage
    /// ..."`, so the process id is the server's.
    pub fn file_size_limit(mut self, bytes: u64) -> Self {
        self.file_size_limit = Some(bytes);
        self
    }

    /// Starts the server (`server.host`, ports and the ready file are set here) and waits
    /// until it listens. Panics with its output if it does not start within 30 seconds.
    pub fn start(self) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("config.yml");
        let full = format!(
            "{}\nserver:\n  host: 127.0.0.1\n  grpc_port: 0\n  http_port: 0\n",
            self.config
        );
        std::fs::write(&config_path, full).expect("write config");
        let ready = dir.path().join("ready.json");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let mut cmd = match self.file_size_limit {
            None => flipt_storage(),
            Some(limit) => {
                let mut sh = clean_env(Command::new("sh"));
                sh.arg("-c")
                    .arg(format!(
                        "trap '' XFSZ; exec prlimit --fsize={limit}: -- \"$0\" \"$@\""
                    ))
                    .arg(binary_path());
                sh
            }
        };
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .arg("--ready-file")
            .arg(&ready);
        cmd.stdout(log.try_clone().expect("log"))
            .stderr(log)
            .current_dir(dir.path());
        for (k, v) in &self.env {
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
                let _ = child.wait();
                panic!(
                    "flipt-storage did not listen within 30s:\n{}",
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Server {
    /// Starts the server with `config` (YAML; `server.host`, ports and the ready file are
    /// set by this function) and waits until it listens. Panics with its output if it does
    /// not start within 30 seconds. To restart a server on the same data (a `local`
    /// repository, a remote), start another one with the same `config`.
    pub fn start(config: &str) -> Server {
        Self::builder(config).start()
    }

    /// A server to start with `config`, with more options (environment, limits).
    pub fn builder(config: &str) -> ServerBuilder {
        ServerBuilder {
            config: config.to_owned(),
            env: Vec::new(),
            file_size_limit: None,
        }
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
        env.iter()
            .fold(Self::builder(config), |b, (k, v)| b.env(k, v))
            .start()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it has not exited or been killed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sets the server's soft `RLIMIT_FSIZE` (`None`: back to the hard limit) with
    /// `prlimit --pid`, as a disk that fills up or frees space while the server runs. Only
    /// for a server started with [`ServerBuilder::file_size_limit`] (otherwise SIGXFSZ would
    /// kill it).
    pub fn set_file_size_limit(&self, bytes: Option<u64>) {
        let limit = match bytes {
            Some(b) => format!("--fsize={b}:"),
            None => {
                // The hard limit, read back: `prlimit` has no "soft = hard" shorthand.
                let out = run(Command::new("prlimit")
                    .args(["--pid", &self.pid().to_string()])
                    .args(["--fsize", "--raw", "--noheadings", "--output=HARD"]));
                assert_eq!(out.code, Some(0), "prlimit failed: {out:?}");
                format!("--fsize={}:", out.stdout.trim())
            }
        };
        let out = run(Command::new("prlimit").args(["--pid", &self.pid().to_string(), &limit]));
        assert_eq!(out.code, Some(0), "prlimit failed: {out:?}");
    }

    /// Kills the server with SIGKILL, as a crash would, and waits for it; returns what it
    /// logged. Nothing is cleaned up: start another server with the same configuration to
    /// see what it left behind.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the killed server");
        assert!(
            status.code().is_none(),
            "the server had exited before SIGKILL ({status}):\n{}",
            self.log()
        );
        self.log()
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

// ------------------------------------------------------------------------------ HTTP

/// `curl` with `args`, then the status line written after the body: the status (0 when there
/// was no answer) and the body.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// `GET url`: the status (0 when there was no answer) and the body.
pub fn http_get(url: &str) -> (u16, String) {
    curl(&[url])
}

/// `POST url` with `body` and `headers`: the status (0 when there was no answer) and the body.
pub fn http_post(url: &str, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let headers: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let mut args = vec!["-X", "POST", "--data-binary", body, url];
    for h in &headers {
        args.extend(["-H", h.as_str()]);
    }
    curl(&args)
}

/// The `X-Hub-Signature-256` value of a webhook `body` signed with `secret` (HMAC-SHA256,
/// `sha256=<hex>`), as GitHub sends it.
pub fn hub_signature(secret: &str, body: &str) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// The samples of a Prometheus text exposition, `name{labels}` to value.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// The value of one sample (`name{labels}`) of a Prometheus text exposition; panics, showing
/// the text, when it is missing.
pub fn metric(text: &str, sample: &str) -> f64 {
    *parse_metrics(text)
        .get(sample)
        .unwrap_or_else(|| panic!("no `{sample}` in:\n{text}"))
}
