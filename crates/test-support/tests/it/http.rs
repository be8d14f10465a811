//! `GitHttpServer` driven by the git CLI, plus raw HTTP for keep-alive and headers.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::thread;

use test_support::{
    BareRemote, GitHttpServer, TOKEN_URL_USER, free_port, git, try_git, try_git_with_env,
};

use crate::{clone, commit_file};

const USER: &str = "alice";
const PASS: &str = "s3cret";

fn seeded() -> (BareRemote, String) {
    let remote = BareRemote::new();
    let seed = remote.cli_commit("main", &[("flags.yaml", Some("flags: []\n"))], "seed");
    (remote, seed)
}

fn authed(remote: &BareRemote) -> GitHttpServer {
    GitHttpServer::builder(remote.project_root())
        .basic_auth(USER, PASS)
        .start()
}

#[test]
fn clone_and_push_with_basic_auth() {
    let (remote, seed) = seeded();
    let server = authed(&remote);
    assert_eq!(
        server.url("remote.git"),
        format!("http://127.0.0.1:{}/remote.git", server.port())
    );
    let url = format!(
        "http://{USER}:{PASS}@127.0.0.1:{}/remote.git",
        server.port()
    );
    assert_eq!(server.url_with_credentials("/remote.git"), url);

    let dir = tempfile::tempdir().unwrap();
    let work = clone(&url, dir.path(), "work");
    assert_eq!(git(&["rev-parse", "HEAD"], &work).trim(), seed);
    assert_eq!(
        fs::read_to_string(work.join("flags.yaml")).unwrap(),
        "flags: []\n"
    );

    let pushed = commit_file(&work, "flags.yaml", b"flags: [a]\n", "from http");
    git(&["push", "-q", "origin", "HEAD:main"], &work);
    assert_eq!(remote.head("main").as_deref(), Some(pushed.as_str()));
    assert_eq!(
        remote.show_file("main", "flags.yaml").as_deref(),
        Some("flags: [a]\n")
    );

    // Fetching over HTTP sees another user's commit.
    let other = remote.cli_commit("main", &[("other", Some("x"))], "other user");
    git(&["pull", "-q", "--ff-only"], &work);
    assert_eq!(git(&["rev-parse", "HEAD"], &work).trim(), other);
    assert!(server.requests() >= 4, "{server:?}");
    remote.fsck();
}

#[test]
fn wrong_or_missing_credentials_get_401_and_are_counted() {
    let (remote, _) = seeded();
    let server = authed(&remote);
    let dir = tempfile::tempdir().unwrap();

    let bad = format!("http://{USER}:wrong@127.0.0.1:{}/remote.git", server.port());
    let err = try_git(&["clone", "-q", &bad, "bad"], dir.path()).unwrap_err();
    assert!(err.stderr.contains("Authentication failed"), "{err}");
    assert!(server.unauthorized() >= 1, "{server:?}");
    assert!(!dir.path().join("bad").exists());

    let before = server.unauthorized();
    let err = try_git(&["ls-remote", &server.url("remote.git")], dir.path()).unwrap_err();
    // GIT_TERMINAL_PROMPT=0: git gives up instead of asking for a user name.
    assert!(err.stderr.contains("could not read Username"), "{err}");
    assert!(server.unauthorized() > before);

    // Push with a wrong password changes nothing.
    let work = clone(
        &server.url_with_credentials("remote.git"),
        dir.path(),
        "work",
    );
    commit_file(&work, "f", b"x", "x");
    git(&["remote", "set-url", "origin", &bad], &work);
    let head = remote.head("main");
    let err = try_git(&["push", "-q", "origin", "HEAD:main"], &work).unwrap_err();
    assert!(err.stderr.contains("Authentication failed"), "{err}");
    assert_eq!(remote.head("main"), head);
}

#[test]
fn raw_http_keep_alive_and_401_headers() {
    let (remote, _) = seeded();
    let server = authed(&remote);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());

    let get = |auth: &str| {
        format!(
            "GET /remote.git/info/refs?service=git-upload-pack HTTP/1.1\r\n\
             Host: 127.0.0.1\r\n{auth}\r\n"
        )
    };
    // "alice:s3cret" in base64.
    let good = "Authorization: Basic YWxpY2U6czNjcmV0\r\n";
    for (auth, status) in [
        ("", 401),
        (good, 200),
        ("Authorization: Basic eDp5\r\n", 401),
        (good, 200),
    ] {
        stream.write_all(get(auth).as_bytes()).unwrap();
        let (code, headers, body) = read_response(&mut reader);
        assert_eq!(code, status, "{headers:?}");
        if status == 401 {
            assert!(
                headers.contains(&"www-authenticate: Basic realm=\"git\"".to_owned()),
                "{headers:?}"
            );
        } else {
            assert!(
                headers.contains(
                    &"content-type: application/x-git-upload-pack-advertisement".to_owned()
                ),
                "{headers:?}"
            );
            assert!(String::from_utf8_lossy(&body).contains("# service=git-upload-pack"));
        }
    }
    assert_eq!(server.requests(), 4);
    assert_eq!(server.unauthorized(), 2);
}

/// Reads one response: status, lower-cased `name: value` headers, body by Content-Length.
fn read_response(reader: &mut impl BufRead) -> (u16, Vec<String>, Vec<u8>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push(format!("{}: {}", k.to_ascii_lowercase(), v.trim()));
    }
    let len: usize = headers
        .iter()
        .find_map(|h| h.strip_prefix("content-length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    (status, headers, body)
}

#[test]
fn a_pre_receive_hook_rejects_a_push_over_http() {
    let (remote, seed) = seeded();
    let server = authed(&remote);
    let dir = tempfile::tempdir().unwrap();
    let work = clone(
        &server.url_with_credentials("remote.git"),
        dir.path(),
        "work",
    );
    remote.install_hook("pre-receive", "echo 'flags are frozen' >&2\nexit 1\n");
    commit_file(&work, "flags.yaml", b"flags: [b]\n", "rejected");
    let err = try_git(&["push", "origin", "HEAD:main"], &work).unwrap_err();
    assert!(err.stderr.contains("flags are frozen"), "{err}");
    assert!(err.stderr.contains("pre-receive hook declined"), "{err}");
    assert_eq!(remote.head("main").as_deref(), Some(seed.as_str()));
    remote.fsck();
}

#[test]
fn outages_answer_503_and_recover() {
    let (remote, seed) = seeded();
    let server = authed(&remote);
    let url = server.url_with_credentials("remote.git");
    let dir = tempfile::tempdir().unwrap();

    server.set_down(true);
    let err = try_git(&["clone", "-q", &url, "down"], dir.path()).unwrap_err();
    assert!(err.stderr.contains("503"), "{err}");
    assert!(!dir.path().join("down").exists());

    server.set_down(false);
    let work = clone(&url, dir.path(), "up");
    assert_eq!(git(&["rev-parse", "HEAD"], &work).trim(), seed);

    server.fail_next(1);
    let err = try_git(&["ls-remote", &url], dir.path()).unwrap_err();
    assert!(err.stderr.contains("503"), "{err}");
    let listed = git(&["ls-remote", &url, "refs/heads/main"], dir.path());
    assert!(listed.starts_with(&seed), "{listed}");
}

#[test]
fn stop_refuses_connections_and_a_restart_on_the_same_port_serves_again() {
    let (remote, seed) = seeded();
    let server = authed(&remote);
    let port = server.port();
    let url = server.url_with_credentials("remote.git");
    let dir = tempfile::tempdir().unwrap();
    git(&["ls-remote", &url], dir.path());

    server.stop();
    server.stop(); // idempotent
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    let err = try_git(&["ls-remote", &url], dir.path()).unwrap_err();
    assert!(
        err.stderr.contains("Failed to connect") || err.stderr.contains("Could not connect"),
        "{err}"
    );
    drop(server);

    let again = GitHttpServer::builder(remote.project_root())
        .basic_auth(USER, PASS)
        .port(port)
        .start();
    assert_eq!(again.url_with_credentials("remote.git"), url);
    let listed = git(&["ls-remote", &url, "refs/heads/main"], dir.path());
    assert!(listed.starts_with(&seed), "{listed}");
}

#[test]
fn without_auth_anonymous_pushes_are_accepted() {
    let (remote, _) = seeded();
    let server = GitHttpServer::builder(remote.project_root()).start();
    let url = server.url("remote.git");
    assert_eq!(server.url_with_credentials("remote.git"), url);
    let dir = tempfile::tempdir().unwrap();
    let work = clone(&url, dir.path(), "work");
    let pushed = commit_file(&work, "x", b"x", "anonymous");
    git(&["push", "-q", "origin", "HEAD:main"], &work);
    assert_eq!(remote.head("main").as_deref(), Some(pushed.as_str()));
    assert_eq!(server.unauthorized(), 0);
}

#[test]
fn concurrent_clients_are_served() {
    let (remote, seed) = seeded();
    let server = authed(&remote);
    let url = server.url_with_credentials("remote.git");
    let dir = tempfile::tempdir().unwrap();
    // A client stuck in the middle of its request headers must not block anyone else
    // (git gives up after 10 s without progress instead of hanging the test).
    let mut stuck = TcpStream::connect(server.addr()).unwrap();
    stuck
        .write_all(b"GET /remote.git/info/refs HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let listed = git(
        &[
            "-c",
            "http.lowSpeedLimit=1",
            "-c",
            "http.lowSpeedTime=10",
            "ls-remote",
            &url,
        ],
        dir.path(),
    );
    assert!(listed.contains(&seed), "{listed}");
    thread::scope(|s| {
        let clones: Vec<_> = (0..2)
            .map(|i| {
                let (url, dir) = (&url, dir.path());
                s.spawn(move || clone(url, dir, &format!("clone{i}")))
            })
            .collect();
        for handle in clones {
            let work = handle.join().unwrap();
            assert_eq!(git(&["rev-parse", "HEAD"], &work).trim(), seed);
        }
    });

    // Two users pushing to different branches at the same time both land.
    let pushed: Vec<(String, String)> = thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let dir = dir.path().join(format!("clone{i}"));
                s.spawn(move || {
                    let id = commit_file(&dir, "who", format!("{i}").as_bytes(), "parallel");
                    let branch = format!("b{i}");
                    git(&["push", "-q", "origin", &format!("HEAD:{branch}")], &dir);
                    (branch, id)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (branch, id) in pushed {
        assert_eq!(remote.head(&branch), Some(id));
    }
    remote.fsck();
}

#[test]
fn a_large_push_is_sent_chunked_and_decoded() {
    let (remote, _) = seeded();
    let server = authed(&remote);
    let dir = tempfile::tempdir().unwrap();
    let work = clone(
        &server.url_with_credentials("remote.git"),
        dir.path(),
        "work",
    );
    // 512 KiB that do not compress, so the pack exceeds git's 64 KiB minimum post buffer.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..512 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect();
    let pushed = commit_file(&work, "noise.bin", &noise, "large");
    let trace = dir.path().join("curl-trace");
    let trace_str = trace.to_str().unwrap();
    try_git_with_env(
        &[
            "-c",
            "http.postBuffer=65536",
            "push",
            "-q",
            "origin",
            "HEAD:main",
        ],
        &work,
        &[
            ("GIT_TRACE_CURL", trace_str),
            ("GIT_TRACE_CURL_NO_DATA", "1"),
        ],
    )
    .unwrap();
    let trace = fs::read_to_string(&trace).unwrap();
    assert!(
        trace.contains("Transfer-Encoding: chunked"),
        "the push was not chunked:\n{trace}"
    );
    assert_eq!(remote.head("main").as_deref(), Some(pushed.as_str()));
    let size = git(
        &["cat-file", "-s", &format!("{pushed}:noise.bin")],
        remote.path(),
    );
    assert_eq!(size.trim(), (512 * 1024).to_string());
    remote.fsck();
}

#[test]
fn free_port_is_bindable() {
    let port = free_port();
    assert_ne!(port, 0);
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
}

#[test]
fn a_token_passes_with_any_user_name() {
    let (remote, _) = seeded();
    let token = "ghp_t0ken/with:odd@chars";
    let server = GitHttpServer::builder(remote.project_root())
        .accept_any_user_with_password(token)
        .start();
    assert_eq!(
        server.url_with_credentials("remote.git"),
        format!(
            "http://{TOKEN_URL_USER}:ghp_t0ken%2Fwith%3Aodd%40chars@127.0.0.1:{}/remote.git",
            server.port()
        )
    );
    // The user each push was made as, as git http-backend tells the hooks.
    let users = remote.path().parent().unwrap().join("pushed-by");
    remote.install_hook(
        "post-receive",
        &format!("echo \"$GIT_COMMITTER_NAME\" >> '{}'\n", users.display()),
    );
    let dir = tempfile::tempdir().unwrap();
    let work = clone(
        &server.url_with_credentials("remote.git"),
        dir.path(),
        "work",
    );
    for (i, user) in ["x-token-auth", "oauth2", "x-access-token"]
        .iter()
        .enumerate()
    {
        let url = server.url_with_user_and_password(user, token, "remote.git");
        let pushed = commit_file(&work, "who", user.as_bytes(), &format!("push {i}"));
        git(&["push", "-q", &url, "HEAD:main"], &work);
        assert_eq!(remote.head("main").as_deref(), Some(pushed.as_str()));
    }
    assert_eq!(
        fs::read_to_string(&users).unwrap(),
        "x-token-auth\noauth2\nx-access-token\n"
    );

    // A wrong token, whatever the user, is refused and counted.
    for user in ["x-token-auth", "oauth2"] {
        let before = server.unauthorized();
        let url = server.url_with_user_and_password(user, "ghp_wrong", "remote.git");
        let err = try_git(&["ls-remote", &url], dir.path()).unwrap_err();
        assert!(err.stderr.contains("Authentication failed"), "{err}");
        assert!(server.unauthorized() > before, "{server:?}");
    }
}

#[test]
fn a_token_as_the_basic_auth_password() {
    let (remote, seed) = seeded();
    let server = GitHttpServer::builder(remote.project_root())
        .basic_auth("x-access-token", "t0ken")
        .start();
    let dir = tempfile::tempdir().unwrap();
    let listed = git(
        &[
            "ls-remote",
            &server.url_with_credentials("remote.git"),
            "refs/heads/main",
        ],
        dir.path(),
    );
    assert!(listed.starts_with(&seed), "{listed}");
    // Here the user name matters.
    let url = server.url_with_user_and_password("oauth2", "t0ken", "remote.git");
    let err = try_git(&["ls-remote", &url], dir.path()).unwrap_err();
    assert!(err.stderr.contains("Authentication failed"), "{err}");
    assert!(server.unauthorized() >= 1);
}
