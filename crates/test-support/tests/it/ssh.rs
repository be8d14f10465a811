//! `SshServer` and `SshKeyPair` driven by the OpenSSH client and the git CLI.

use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

use test_support::{
    BareRemote, GitError, SshKeyPair, SshKeyType, SshServer, current_user, git, git_ssh_command,
    git_ssh_command_with_askpass, try_git_with_env,
};

use crate::commit_file;

fn seeded() -> (BareRemote, String) {
    let remote = BareRemote::new();
    let seed = remote.cli_commit("main", &[("flags.yaml", Some("flags: []\n"))], "seed");
    (remote, seed)
}

/// Runs git with `GIT_SSH_COMMAND` (and more variables).
fn git_ssh(
    ssh: &str,
    args: &[&str],
    cwd: &Path,
    extra: &[(&str, &str)],
) -> Result<String, GitError> {
    let mut env = vec![("GIT_SSH_COMMAND", ssh)];
    env.extend_from_slice(extra);
    try_git_with_env(args, cwd, &env)
}

/// `git ls-remote <url> refs/heads/main` over ssh with `key` and `known_hosts`.
fn ls_main(
    server: &SshServer,
    remote: &BareRemote,
    key: &SshKeyPair,
    known_hosts: &Path,
) -> Result<String, GitError> {
    let dir = tempfile::tempdir().unwrap();
    git_ssh(
        &git_ssh_command(key.private_key_path(), known_hosts),
        &["ls-remote", &server.url(remote.path()), "refs/heads/main"],
        dir.path(),
        &[],
    )
}

/// Runs `ssh-keygen` with `args` and returns (success, stdout, stderr).
fn ssh_keygen(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn clone_and_push_over_ssh_with_the_authorized_key() {
    let (remote, seed) = seeded();
    let key = SshKeyPair::generate(SshKeyType::Ed25519);
    let server = SshServer::start(&key);
    assert_ne!(server.port(), 22);
    assert_eq!(server.user(), current_user());
    assert_eq!(
        server.url(remote.path()),
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            current_user(),
            server.port(),
            remote.path().display()
        )
    );

    let dir = tempfile::tempdir().unwrap();
    let ssh = server.git_ssh_command(&key);
    let url = server.url(remote.path());
    let started = Instant::now();
    git_ssh(&ssh, &["clone", "-q", &url, "work"], dir.path(), &[])
        .unwrap_or_else(|e| panic!("{e}\n--- sshd log ---\n{}", server.log()));
    eprintln!("git clone over ssh took {:?}", started.elapsed());
    let work = dir.path().join("work");
    assert_eq!(git(&["rev-parse", "HEAD"], &work).trim(), seed);
    assert_eq!(
        fs::read_to_string(work.join("flags.yaml")).unwrap(),
        "flags: []\n"
    );

    let pushed = commit_file(&work, "flags.yaml", b"flags: [ssh]\n", "over ssh");
    git_ssh(&ssh, &["push", "-q", "origin", "HEAD:main"], &work, &[]).unwrap();
    assert_eq!(remote.head("main").as_deref(), Some(pushed.as_str()));

    // Fetching sees another user's commit, with protocol v2: sshd accepts GIT_PROTOCOL.
    let other = remote.cli_commit("main", &[("other", Some("x"))], "other user");
    let trace = dir.path().join("packet-trace");
    git_ssh(
        &ssh,
        &["-c", "protocol.version=2", "pull", "-q", "--ff-only"],
        &work,
        &[("GIT_TRACE_PACKET", trace.to_str().unwrap())],
    )
    .unwrap();
    assert_eq!(git(&["rev-parse", "HEAD"], &work).trim(), other);
    let trace = fs::read_to_string(&trace).unwrap();
    assert!(trace.contains("< version 2"), "{trace}");
    remote.fsck();
    let log = server.log();
    assert!(
        log.contains(&format!("Accepted publickey for {}", current_user())),
        "{log}"
    );
}

#[test]
fn a_key_that_is_not_authorized_is_refused() {
    let (remote, seed) = seeded();
    let key = SshKeyPair::generate(SshKeyType::Ed25519);
    let stranger = SshKeyPair::generate(SshKeyType::Ed25519);
    let server = SshServer::start(&key);
    let err = ls_main(&server, &remote, &stranger, &server.known_hosts_path()).unwrap_err();
    assert!(
        err.stderr.contains("Permission denied (publickey)"),
        "{err}"
    );

    // Nor can it push.
    let dir = tempfile::tempdir().unwrap();
    let work = crate::clone(&remote.file_url(), dir.path(), "work");
    commit_file(&work, "f", b"x", "x");
    let ssh = server.git_ssh_command(&stranger);
    let url = server.url(remote.path());
    let err = git_ssh(&ssh, &["push", "-q", &url, "HEAD:main"], &work, &[]).unwrap_err();
    assert!(
        err.stderr.contains("Permission denied (publickey)"),
        "{err}"
    );
    assert_eq!(remote.head("main").as_deref(), Some(seed.as_str()));

    // The authorized key still works.
    let listed = ls_main(&server, &remote, &key, &server.known_hosts_path()).unwrap();
    assert!(listed.starts_with(&seed), "{listed}");
}

#[test]
fn several_authorized_keys_of_every_type_log_in() {
    let (remote, seed) = seeded();
    let keys = [
        SshKeyPair::generate(SshKeyType::Ed25519),
        SshKeyPair::generate(SshKeyType::EcdsaP256),
        SshKeyPair::generate(SshKeyType::Rsa),
        SshKeyPair::builder(SshKeyType::Rsa).pem().generate(),
        SshKeyPair::builder(SshKeyType::EcdsaP256).pem().generate(),
    ];
    let server = keys
        .iter()
        .fold(SshServer::builder(), |b, k| b.authorize(k))
        .start();
    for key in &keys {
        let algorithm = key.key_type().algorithm();
        assert!(
            key.public_key().starts_with(&format!("{algorithm} AAAA")),
            "{key:?}"
        );
        assert!(key.public_key().ends_with(" test-support"), "{key:?}");
        // The blob starts with the algorithm name, length-prefixed (RFC 4253).
        let blob = key.public_key_blob();
        assert_eq!(&blob[4..4 + algorithm.len()], algorithm.as_bytes());
        assert_eq!(
            fs::read_to_string(key.private_key_path()).unwrap(),
            key.private_key()
        );
        assert_eq!(
            fs::read_to_string(key.public_key_path()).unwrap().trim(),
            key.public_key()
        );
        let listed = ls_main(&server, &remote, key, &server.known_hosts_path())
            .unwrap_or_else(|e| panic!("{key:?}: {e}\n{}", server.log()));
        assert!(listed.starts_with(&seed), "{listed}");
    }
    assert!(
        keys[0]
            .private_key()
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
    );
    assert!(
        keys[3]
            .private_key()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    assert!(
        keys[4]
            .private_key()
            .starts_with("-----BEGIN EC PRIVATE KEY-----")
    );
}

#[test]
fn an_unknown_host_key_is_refused() {
    let (remote, _) = seeded();
    let key = SshKeyPair::generate(SshKeyType::Ed25519);
    let server = SshServer::start(&key);
    let dir = tempfile::tempdir().unwrap();

    let empty = dir.path().join("empty_known_hosts");
    fs::write(&empty, "").unwrap();
    let err = ls_main(&server, &remote, &key, &empty).unwrap_err();
    assert!(err.stderr.contains("Host key verification failed"), "{err}");

    // Another server's key under this server's name: a changed key.
    let other = SshServer::start(&key);
    let impostor = dir.path().join("impostor_known_hosts");
    let line = other
        .host_key_line()
        .replace(&other.known_hosts_name(), &server.known_hosts_name());
    fs::write(&impostor, format!("{line}\n")).unwrap();
    let err = ls_main(&server, &remote, &key, &impostor).unwrap_err();
    assert!(
        err.stderr
            .contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{err}"
    );
    assert!(err.stderr.contains("Host key verification failed"), "{err}");

    // The right key under another port is unknown too: known_hosts names host and port.
    let wrong_port = dir.path().join("wrong_port_known_hosts");
    let line = server
        .host_key_line()
        .replace(&server.known_hosts_name(), &other.known_hosts_name());
    fs::write(&wrong_port, format!("{line}\n")).unwrap();
    let err = ls_main(&server, &remote, &key, &wrong_port).unwrap_err();
    assert!(err.stderr.contains("Host key verification failed"), "{err}");
}

#[test]
fn a_new_host_key_on_the_same_port_is_refused_until_trusted() {
    let (remote, seed) = seeded();
    let key = SshKeyPair::generate(SshKeyType::Ed25519);
    let mut server = SshServer::start(&key);
    let port = server.port();
    let dir = tempfile::tempdir().unwrap();
    let old_known_hosts = dir.path().join("old_known_hosts");
    fs::write(&old_known_hosts, format!("{}\n", server.host_key_line())).unwrap();
    let old_line = server.host_key_line();
    let old_blob = server.host_public_key_blob();
    ls_main(&server, &remote, &key, &old_known_hosts).unwrap();

    // A restart keeps the key.
    server.restart();
    assert_eq!(server.port(), port);
    assert_eq!(server.host_key_line(), old_line);
    ls_main(&server, &remote, &key, &old_known_hosts).unwrap();

    server.restart_with_new_host_key();
    assert_eq!(server.port(), port);
    assert_ne!(server.host_key_line(), old_line);
    assert_ne!(server.host_public_key_blob(), old_blob);
    let err = ls_main(&server, &remote, &key, &old_known_hosts).unwrap_err();
    assert!(
        err.stderr
            .contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{err}"
    );
    let listed = ls_main(&server, &remote, &key, &server.known_hosts_path()).unwrap();
    assert!(listed.starts_with(&seed), "{listed}");
}

#[test]
fn a_hashed_known_hosts_line_is_accepted() {
    let (remote, seed) = seeded();
    let key = SshKeyPair::generate(SshKeyType::Ed25519);
    let server = SshServer::start(&key);
    let hashed = server.hashed_known_hosts_line();
    let plain = server.host_key_line();
    let key_part = plain.split_once(' ').unwrap().1;
    assert!(hashed.starts_with("|1|"), "{hashed}");
    assert!(hashed.ends_with(key_part), "{hashed} / {plain}");
    assert!(!hashed.contains("127.0.0.1"), "{hashed}");
    assert_ne!(
        hashed,
        server.hashed_known_hosts_line(),
        "a new salt each time"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("known_hosts");
    fs::write(&file, format!("{hashed}\n")).unwrap();
    // ssh-keygen finds the host in it, and ssh trusts it.
    let (ok, out, err) = ssh_keygen(&[
        "-F",
        &server.known_hosts_name(),
        "-f",
        file.to_str().unwrap(),
    ]);
    assert!(ok && out.contains(&hashed), "{out}{err}");
    let listed = ls_main(&server, &remote, &key, &file).unwrap();
    assert!(listed.starts_with(&seed), "{listed}");
}

#[test]
fn ecdsa_and_rsa_host_keys() {
    let (remote, seed) = seeded();
    let key = SshKeyPair::generate(SshKeyType::Ed25519);
    let server = SshServer::builder()
        .host_key_types(&[SshKeyType::EcdsaP256, SshKeyType::Rsa])
        .authorize(&key)
        .start();
    let lines = server.host_key_lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], server.host_key_line());
    let name = server.known_hosts_name();
    assert_eq!(name, format!("[127.0.0.1]:{}", server.port()));
    assert!(lines[0].starts_with(&format!("{name} ecdsa-sha2-nistp256 AAAA")));
    assert!(lines[1].starts_with(&format!("{name} ssh-rsa AAAA")));
    assert_eq!(server.host_keys()[0].key_type(), SshKeyType::EcdsaP256);

    // The fingerprint matches OpenSSH's.
    let (ok, out, _) = ssh_keygen(&[
        "-l",
        "-E",
        "sha256",
        "-f",
        server.host_keys()[0].public_key_path().to_str().unwrap(),
    ]);
    assert!(ok);
    assert!(
        out.contains(&format!("{} ", server.host_key_fingerprint())),
        "{out} / {}",
        server.host_key_fingerprint()
    );

    // Knowing either key is enough: the client asks for the kind it knows.
    let dir = tempfile::tempdir().unwrap();
    for (i, line) in lines.iter().enumerate() {
        let file = dir.path().join(format!("known_hosts_{i}"));
        fs::write(&file, format!("{line}\n")).unwrap();
        let listed = ls_main(&server, &remote, &key, &file)
            .unwrap_or_else(|e| panic!("{line}: {e}\n{}", server.log()));
        assert!(listed.starts_with(&seed), "{listed}");
    }
}

#[test]
fn keys_with_a_passphrase() {
    let (remote, seed) = seeded();
    let passphrase = "correct horse 'battery'";
    let keys = [
        SshKeyPair::generate_with_passphrase(SshKeyType::Ed25519, passphrase),
        SshKeyPair::builder(SshKeyType::Rsa)
            .passphrase(passphrase)
            .pem()
            .generate(),
    ];
    let server = keys
        .iter()
        .fold(SshServer::builder(), |b, k| b.authorize(k))
        .start();
    let dir = tempfile::tempdir().unwrap();
    for key in &keys {
        assert_eq!(key.passphrase(), Some(passphrase));
        assert!(!format!("{key:?}").contains("horse"), "{key:?}");
        let path = key.private_key_path().to_str().unwrap();
        // The private key is encrypted: the right passphrase opens it, a wrong one or none
        // does not.
        let (ok, out, err) = ssh_keygen(&["-y", "-P", passphrase, "-f", path]);
        assert!(ok, "{err}");
        let public = key.public_key().rsplit_once(' ').unwrap().0;
        assert_eq!(
            out.trim().split(' ').take(2).collect::<Vec<_>>().join(" "),
            public
        );
        for wrong in ["wrong", ""] {
            let (ok, _, err) = ssh_keygen(&["-y", "-P", wrong, "-f", path]);
            assert!(!ok, "{wrong:?} opened the key");
            assert!(err.contains("incorrect passphrase"), "{err}");
        }
        if key.key_type() == SshKeyType::Rsa {
            assert!(key.private_key().contains("Proc-Type: 4,ENCRYPTED"));
        } else {
            assert!(
                key.private_key()
                    .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
            );
        }

        // In batch mode ssh cannot ask for the passphrase: the key is unusable.
        let err = ls_main(&server, &remote, key, &server.known_hosts_path()).unwrap_err();
        assert!(
            err.stderr.contains("Permission denied (publickey)"),
            "{err}"
        );

        // With the askpass script it logs in.
        let ssh = git_ssh_command_with_askpass(key.private_key_path(), &server.known_hosts_path());
        let env = key.askpass_env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let listed = git_ssh(
            &ssh,
            &["ls-remote", &server.url(remote.path()), "refs/heads/main"],
            dir.path(),
            &env,
        )
        .unwrap_or_else(|e| panic!("{key:?}: {e}\n{}", server.log()));
        assert!(listed.starts_with(&seed), "{listed}");
    }
}

#[test]
fn concurrent_clones_over_ssh() {
    let (remote, seed) = seeded();
    let key = SshKeyPair::generate(SshKeyType::Ed25519);
    let server = SshServer::start(&key);
    let ssh = server.git_ssh_command(&key);
    let url = server.url(remote.path());
    let dir = tempfile::tempdir().unwrap();
    thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (ssh, url, dir) = (&ssh, &url, dir.path());
                s.spawn(move || {
                    let name = format!("clone{i}");
                    git_ssh(ssh, &["clone", "-q", url, &name], dir, &[]).unwrap();
                    git(&["rev-parse", "HEAD"], &dir.join(name))
                        .trim()
                        .to_owned()
                })
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), seed);
        }
    });
}

#[test]
fn drop_and_stop_end_sshd() {
    let key = SshKeyPair::generate(SshKeyType::Ed25519);
    let mut server = SshServer::start(&key);
    assert!(server.is_running());
    let addr = server.addr();
    assert_eq!(addr.port(), server.port());
    TcpStream::connect(addr).unwrap();
    server.stop();
    server.stop(); // idempotent
    assert!(!server.is_running());
    assert!(TcpStream::connect(addr).is_err());
    server.restart();
    assert!(server.is_running());
    TcpStream::connect(addr).unwrap();
    drop(server);
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn a_fixed_port_is_used() {
    let key = SshKeyPair::generate(SshKeyType::Ed25519);
    let port = test_support::free_port();
    let server = SshServer::builder().authorize(&key).port(port).start();
    assert_eq!(server.port(), port);
    assert_eq!(
        server.host_key_line().split(' ').next().unwrap(),
        format!("[127.0.0.1]:{port}")
    );
    assert!(
        server
            .url(Path::new("/r.git"))
            .ends_with(&format!("@127.0.0.1:{port}/r.git"))
    );
}
