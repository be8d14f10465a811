//! The processes under test: the real `flipt-storage` binary (release build) and the echo
//! server, each started on port 0 and found through its ready file; resident memory read from
//! `/proc/<pid>/status`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// A started process that listens on a gRPC address; killed when dropped.
#[derive(Debug)]
pub struct Process {
    child: Child,
    name: String,
    /// `http://127.0.0.1:PORT`.
    pub grpc: String,
    /// `127.0.0.1:PORT` of the HTTP listener (health, metrics), when the ready file names one
    /// (the server's does, the echo server's does not).
    pub http: Option<String>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Starts `cmd` with `--ready-file <dir>/ready.json` appended, its output in
    /// `<dir>/process.log`, and waits (at most 60 s) for the ready file.
    pub fn start(name: &str, mut cmd: Command, scratch: &Path) -> Result<Process> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(scratch)?;
        let ready = dir.path().join("ready.json");
        let log = dir.path().join("process.log");
        let out = std::fs::File::create(&log)?;
        cmd.arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .current_dir(dir.path());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("FLIPT_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("start {name} ({:?})", cmd.get_program()))?;
        let mut process = Process {
            child,
            name: name.into(),
            grpc: String::new(),
            http: None,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let v: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("{name}: ready file is not JSON: {text}"))?;
                let addr = v["grpc"].as_str().context("ready file without `grpc`")?;
                process.grpc = format!("http://{addr}");
                process.http = v["http"].as_str().map(str::to_owned);
                return Ok(process);
            }
            if let Some(status) = process.child.try_wait()? {
                bail!(
                    "{name} exited with {status} before listening:\n{}",
                    process.log()
                );
            }
            if Instant::now() > deadline {
                bail!("{name} did not listen within 60 s:\n{}", process.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the process wrote so far (the last 4 KB).
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4096);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        self.status_kib("VmRSS")
    }

    /// A KiB field of `/proc/<pid>/status` (`VmRSS`, `RssAnon`, `RssFile`, ...).
    pub fn status_kib(&self, field: &str) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {field} in {path}"))
    }

    /// A gauge without labels from the server's `/metrics` (`None` when the server does not
    /// report it: `flipt_storage_heap_in_use_bytes` needs glibc).
    pub fn metric(&self, name: &str) -> Result<Option<f64>> {
        use std::io::{Read as _, Write as _};
        let addr = self
            .http
            .as_deref()
            .with_context(|| format!("{}: no HTTP listener", self.name))?;
        let mut conn = std::net::TcpStream::connect(addr)
            .with_context(|| format!("{}: connect to {addr}", self.name))?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            conn,
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut text = String::new();
        conn.read_to_string(&mut text)
            .with_context(|| format!("{}: read /metrics", self.name))?;
        ensure_ok(&text, &self.name)?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok()))
    }

    /// The process's name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ensure_ok(response: &str, name: &str) -> Result<()> {
    let status = response.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("{name}: /metrics answered {status:?}");
    }
    Ok(())
}

/// The binaries the harness starts.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `flipt-storage` (release).
    pub server: PathBuf,
    /// This program (for `echo-server`).
    pub bench: PathBuf,
}

impl Binaries {
    /// `flipt-storage` next to this program (both are built by `cargo xtask bench` into
    /// `target/release/`), or `server` when given.
    pub fn locate(server: Option<PathBuf>) -> Result<Binaries> {
        let bench = std::env::current_exe().context("path of this program")?;
        let server = match server {
            Some(s) => s,
            None => bench
                .parent()
                .context("program directory")?
                .join(format!("flipt-storage{}", std::env::consts::EXE_SUFFIX)),
        };
        if !server.is_file() {
            bail!(
                "{} not found; build it with `cargo build --release -p storage-server` or pass --server-bin",
                server.display()
            );
        }
        Ok(Binaries { server, bench })
    }

    /// Starts `flipt-storage serve` with `config` (YAML; host and ports are added) and the
    /// temporary directory (the memory backend's scratch) under `scratch`.
    pub fn start_server(&self, name: &str, config: &str, scratch: &Path) -> Result<Process> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-config-"))
            .tempdir_in(scratch)?
            .keep();
        let path = dir.join("config.yml");
        let full = format!(
            "{config}\nserver:\n  host: 127.0.0.1\n  grpc_port: 0\n  http_port: 0\nlog:\n  level: warn\n"
        );
        std::fs::write(&path, full)?;
        let mut cmd = Command::new(&self.server);
        cmd.arg("serve")
            .arg("--config")
            .arg(&path)
            .env("TMPDIR", &dir);
        Process::start(name, cmd, scratch)
    }

    /// Starts the echo server.
    pub fn start_echo(&self, scratch: &Path) -> Result<Process> {
        let mut cmd = Command::new(&self.bench);
        cmd.arg("echo-server");
        Process::start("echo", cmd, scratch)
    }
}
