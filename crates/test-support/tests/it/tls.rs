//! `GitHttpServer` over HTTPS with a `TestCa`, checked by the git CLI and `openssl s_client`.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::{BareRemote, GitError, GitHttpServer, TestCa, git, try_git_with_env};

use crate::commit_file;

const USER: &str = "alice";
const PASS: &str = "s3cret";

fn seeded() -> (BareRemote, String) {
    let remote = BareRemote::new();
    let seed = remote.cli_commit("main", &[("flags.yaml", Some("flags: []\n"))], "seed");
    (remote, seed)
}

/// Runs git trusting `ca_file` (or only the system's CAs with `None`).
fn git_tls(args: &[&str], cwd: &Path, ca_file: Option<&Path>) -> Result<String, GitError> {
    match ca_file {
        Some(ca) => try_git_with_env(args, cwd, &[("GIT_SSL_CAINFO", ca.to_str().unwrap())]),
        None => try_git_with_env(args, cwd, &[]),
    }
}

/// `openssl s_client` against the server, verifying with `ca` and checking the IP or host
/// name; returns its whole output and whether it exited successfully.
fn s_client(port: u16, ca: &Path, check: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .arg("-CAfile")
        .arg(ca)
        .args(["-verify_return_error", "-showcerts"])
        .args(check)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Waits (at most 10 s) until `cond` holds.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

#[test]
fn https_clone_and_push_trusting_the_test_ca() {
    let (remote, seed) = seeded();
    let ca = TestCa::new();
    let server = GitHttpServer::builder(remote.project_root())
        .basic_auth(USER, PASS)
        .tls(&ca)
        .start();
    let url = server.url_with_credentials("remote.git");
    assert_eq!(
        url,
        format!(
            "https://{USER}:{PASS}@127.0.0.1:{}/remote.git",
            server.port()
        )
    );
    assert!(server.url("remote.git").starts_with("https://127.0.0.1:"));

    let dir = tempfile::tempdir().unwrap();
    git_tls(
        &["clone", "-q", &url, "work"],
        dir.path(),
        Some(ca.ca_path()),
    )
    .unwrap();
    let work = dir.path().join("work");
    assert_eq!(git(&["rev-parse", "HEAD"], &work).trim(), seed);
    let pushed = commit_file(&work, "flags.yaml", b"flags: [tls]\n", "over https");
    git_tls(
        &["push", "-q", "origin", "HEAD:main"],
        &work,
        Some(ca.ca_path()),
    )
    .unwrap();
    assert_eq!(remote.head("main").as_deref(), Some(pushed.as_str()));
    remote.fsck();

    // The certificate is valid for `localhost` too (DNS name).
    let by_name = format!(
        "https://{USER}:{PASS}@localhost:{}/remote.git",
        server.port()
    );
    let listed = git_tls(
        &["ls-remote", &by_name, "refs/heads/main"],
        dir.path(),
        Some(ca.ca_path()),
    )
    .unwrap();
    assert!(listed.starts_with(&pushed), "{listed}");

    // openssl agrees: the chain verifies for IP 127.0.0.1 and the name localhost.
    let (ok, out) = s_client(server.port(), ca.ca_path(), &["-verify_ip", "127.0.0.1"]);
    assert!(ok && out.contains("Verify return code: 0 (ok)"), "{out}");
    let (ok, out) = s_client(
        server.port(),
        ca.ca_path(),
        &["-verify_hostname", "localhost"],
    );
    assert!(ok && out.contains("Verify return code: 0 (ok)"), "{out}");
}

#[test]
fn an_unknown_ca_is_refused() {
    let (remote, _) = seeded();
    let ca = TestCa::new();
    let server = GitHttpServer::builder(remote.project_root())
        .tls(&ca)
        .start();
    let url = server.url("remote.git");
    let dir = tempfile::tempdir().unwrap();

    // Without GIT_SSL_CAINFO only the system's CAs are trusted.
    let err = git_tls(&["ls-remote", &url], dir.path(), None).unwrap_err();
    assert!(err.stderr.contains("certificate"), "{err}");
    assert!(!err.stderr.contains("503"), "{err}");
    // Another test CA is no better.
    let other = TestCa::new();
    let err = git_tls(
        &["clone", "-q", &url, "other"],
        dir.path(),
        Some(other.ca_path()),
    )
    .unwrap_err();
    assert!(err.stderr.contains("certificate"), "{err}");
    assert!(!dir.path().join("other").exists());
    let (ok, out) = s_client(server.port(), other.ca_path(), &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("unable to get local issuer certificate"),
        "{out}"
    );

    // No request reached git http-backend. openssl gave up during the handshake; git's
    // curl (GnuTLS on Debian) checks the certificate after it and just hangs up.
    assert_eq!(server.requests(), 0);
    assert!(eventually(|| server.tls_failures() >= 1), "{server:?}");
}

#[test]
fn a_certificate_for_another_host_name_is_refused() {
    let (remote, seed) = seeded();
    let ca = TestCa::new();
    let wrong = ca.issue_server_identity(&["wrong.example"]);
    assert_eq!(wrong.names(), ["wrong.example"]);
    let server = GitHttpServer::builder(remote.project_root())
        .tls_identity(wrong)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let err = git_tls(
        &["ls-remote", &server.url("remote.git")],
        dir.path(),
        Some(ca.ca_path()),
    )
    .unwrap_err();
    assert!(err.stderr.contains("127.0.0.1"), "{err}");
    assert!(
        err.stderr.contains("does not match") || err.stderr.contains("no alternative"),
        "{err}"
    );
    assert_eq!(server.requests(), 0);
    // The chain itself is trusted: only the name is wrong.
    let (ok, out) = s_client(server.port(), ca.ca_path(), &[]);
    assert!(ok, "{out}");
    let (ok, out) = s_client(server.port(), ca.ca_path(), &["-verify_ip", "127.0.0.1"]);
    assert!(!ok, "{out}");
    assert!(out.contains("IP address mismatch"), "{out}");

    // Skipping verification (what an "insecure" option does) reaches the repository.
    let listed = try_git_with_env(
        &[
            "-c",
            "http.sslVerify=false",
            "ls-remote",
            &server.url("remote.git"),
            "refs/heads/main",
        ],
        dir.path(),
        &[],
    )
    .unwrap();
    assert!(listed.starts_with(&seed), "{listed}");
}

#[test]
fn an_intermediate_ca_is_sent_with_the_certificate() {
    let (remote, seed) = seeded();
    let ca = TestCa::with_intermediate();
    let intermediate = ca.intermediate_pem().unwrap();
    assert!(!ca.ca_pem().contains(intermediate.lines().nth(1).unwrap()));
    assert_eq!(fs::read_to_string(ca.ca_path()).unwrap(), ca.ca_pem());
    let server = GitHttpServer::builder(remote.project_root())
        .tls(&ca)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    git_tls(
        &["clone", "-q", &server.url("remote.git"), "work"],
        dir.path(),
        Some(ca.ca_path()),
    )
    .unwrap();
    assert_eq!(git(&["rev-parse", "HEAD"], &work).trim(), seed);

    let (ok, out) = s_client(server.port(), ca.ca_path(), &["-verify_ip", "127.0.0.1"]);
    assert!(ok && out.contains("Verify return code: 0 (ok)"), "{out}");
    assert_eq!(out.matches("BEGIN CERTIFICATE").count(), 2, "{out}");
    assert!(out.contains("test-support intermediate CA"), "{out}");
}

#[test]
fn plain_http_to_an_https_server_fails_the_handshake() {
    let (remote, _) = seeded();
    let ca = TestCa::new();
    let server = GitHttpServer::builder(remote.project_root())
        .tls(&ca)
        .start();
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /remote.git/info/refs HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"));
    assert!(eventually(|| server.tls_failures() == 1), "{server:?}");
    assert_eq!(server.requests(), 0);
}
