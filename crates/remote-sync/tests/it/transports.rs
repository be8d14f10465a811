//! ssh (OpenSSH `sshd` on loopback) and https (a test CA): credentials, host keys, TLS
//! trust, all through configuration as users write it.

use std::collections::BTreeMap;

use remote_sync::{SyncError, SyncOptions, SyncedStorage};
use test_support::{BareRemote, GitHttpServer, SshKeyPair, SshKeyType, SshServer, TestCa};

use crate::common::*;

fn config(yaml: &str) -> config_model::Config {
    config_model::load_str(yaml, None, &BTreeMap::new())
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

async fn start(yaml: &str) -> Result<SyncedStorage, SyncError> {
    let c = config(yaml);
    let o = SyncOptions::from_config(&c, &c.storages["default"]).unwrap();
    SyncedStorage::start(memory(), o).await
}

fn yaml_quote(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

fn ssh_yaml(url: &str, ssh: &str) -> String {
    format!(
        "credentials:\n  key:\n    type: ssh\n    ssh:\n{ssh}storage:\n  default:\n    remote: {url}\n    credentials: key\n"
    )
}

fn untrusted(r: Result<SyncedStorage, SyncError>) -> String {
    match r {
        Err(SyncError::Unauthenticated(m)) => m,
        other => panic!("expected an untrusted host, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_with_and_without_passphrase_wrong_key_and_rotation() {
    let remote = BareRemote::new();
    let key = SshKeyPair::generate(SshKeyType::Ed25519);
    let locked = SshKeyPair::generate_with_passphrase(SshKeyType::Ed25519, "pass-SECRET-phrase");
    let server = SshServer::builder()
        .authorize(&key)
        .authorize(&locked)
        .start();
    let url = server.url(remote.path());
    let kh = yaml_quote(&server.host_key_line());
    // Key file, no passphrase, non-default port, known_hosts inline.
    let s = start(&ssh_yaml(
        &url,
        &format!(
            "      private_key_path: {}\n      known_hosts: {kh}\n",
            key.private_key_path().display()
        ),
    ))
    .await
    .unwrap();
    write(&s, "a", "1", None).await.unwrap();
    assert_eq!(remote.head("main").map(|h| oid(&h)), s.head("main"));
    // Key bytes with a passphrase.
    let yaml = ssh_yaml(
        &url,
        &format!(
            "      private_key_bytes: {}\n      password: pass-SECRET-phrase\n      known_hosts: {kh}\n",
            yaml_quote(locked.private_key())
        ),
    );
    let s2 = start(&yaml).await.unwrap();
    assert_eq!(s2.head("main"), s.head("main"));
    // A wrong passphrase and an unauthorized key are refused.
    let err = start(&yaml.replace("pass-SECRET-phrase", "wrong-SECRET"))
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Unauthenticated(_)), "{err:?}");
    assert!(!err.to_string().contains("SECRET"), "{err}");
    let stranger = SshKeyPair::generate(SshKeyType::Ed25519);
    let err = start(&ssh_yaml(
        &url,
        &format!(
            "      private_key_path: {}\n      known_hosts: {kh}\n",
            stranger.private_key_path().display()
        ),
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, SyncError::Unauthenticated(_)), "{err:?}");
    // A key file rotated while the storage runs: the next fetch reads the new key.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("id");
    std::fs::copy(key.private_key_path(), &key_file).unwrap();
    let rotating = start(&ssh_yaml(
        &url,
        &format!(
            "      private_key_path: {}\n      known_hosts: {kh}\n",
            key_file.display()
        ),
    ))
    .await
    .unwrap();
    std::fs::copy(stranger.private_key_path(), &key_file).unwrap();
    assert!(matches!(
        rotating.refresh().await,
        Err(SyncError::Unauthenticated(_))
    ));
    std::fs::copy(locked.private_key_path(), &key_file).unwrap();
    // Passphrase-less copy of an authorized key: rotate back to the first key.
    std::fs::copy(key.private_key_path(), &key_file).unwrap();
    rotating.refresh().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_host_keys_are_verified() {
    let remote = BareRemote::new();
    let key = SshKeyPair::generate(SshKeyType::Ed25519);
    let mut server = SshServer::start(&key);
    let url = server.url(remote.path());
    let key_path = key.private_key_path().display().to_string();
    let port = server.port();
    // Unknown host: the error names the host, the key type, the fingerprint and ssh-keyscan.
    let m = untrusted(
        start(&ssh_yaml(
            &url,
            &format!("      private_key_path: {key_path}\n      known_hosts: \"# nothing\"\n"),
        ))
        .await,
    );
    assert!(m.contains(&format!("[127.0.0.1]:{port}")), "{m}");
    assert!(
        m.contains("ssh-ed25519") && m.contains(&server.host_key_fingerprint()),
        "{m}"
    );
    assert!(
        m.contains(&format!("ssh-keyscan -p {port} -t ssh-ed25519 127.0.0.1")),
        "{m}"
    );
    // A hashed entry in a known_hosts file is understood.
    let dir = tempfile::tempdir().unwrap();
    let kh_file = dir.path().join("known_hosts");
    std::fs::write(&kh_file, format!("{}\n", server.hashed_known_hosts_line())).unwrap();
    let yaml = ssh_yaml(
        &url,
        &format!(
            "      private_key_path: {key_path}\n      known_hosts_path: {}\n",
            kh_file.display()
        ),
    );
    let s = start(&yaml).await.unwrap();
    // The host key changes: refused, saying so.
    let old_fingerprint = server.host_key_fingerprint();
    server.restart_with_new_host_key();
    assert_ne!(server.host_key_fingerprint(), old_fingerprint);
    let err = s.refresh().await.unwrap_err();
    assert!(err.to_string().contains("CHANGED"), "{err}");
    assert!(
        err.to_string().contains(&server.host_key_fingerprint()),
        "{err}"
    );
    // @revoked keys are refused even when also listed as trusted.
    let line = server.host_key_line();
    std::fs::write(&kh_file, format!("{line}\n@revoked {line}\n")).unwrap();
    let err = s.refresh().await.unwrap_err();
    assert!(err.to_string().contains("@revoked"), "{err}");
    // insecure_ignore_host_key skips the check.
    let yaml = ssh_yaml(
        &url,
        &format!("      private_key_path: {key_path}\n      insecure_ignore_host_key: true\n"),
    );
    start(&yaml).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_known_only_with_other_key_types_gets_an_error_that_says_so() {
    let remote = BareRemote::new();
    let key = SshKeyPair::generate(SshKeyType::Ed25519);
    let server = SshServer::builder()
        .host_key_types(&[SshKeyType::EcdsaP256])
        .authorize(&key)
        .start();
    let other = SshServer::start(&key);
    // known_hosts has an ed25519 key for the right host and port; the server offers ecdsa.
    let name = server.known_hosts_name();
    let ed = other.host_key_line();
    let ed_key = ed.split_whitespace().skip(1).collect::<Vec<_>>().join(" ");
    let yaml = ssh_yaml(
        &server.url(remote.path()),
        &format!(
            "      private_key_path: {}\n      known_hosts: {}\n",
            key.private_key_path().display(),
            yaml_quote(&format!("{name} {ed_key}"))
        ),
    );
    let m = untrusted(start(&yaml).await);
    assert!(m.contains("knows it only with ssh-ed25519"), "{m}");
    assert!(m.contains("-t ecdsa-sha2-nistp256"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_per_storage_ca_bundle() {
    let ca = TestCa::new();
    let remote = BareRemote::new();
    let server = GitHttpServer::builder(remote.project_root())
        .basic_auth("alice", "s3cret")
        .tls(&ca)
        .start();
    let url = server.url(test_support::REMOTE_DIR_NAME);
    assert!(url.starts_with("https://"), "{url}");
    let creds =
        "credentials:\n  c:\n    type: basic\n    basic: { username: alice, password: s3cret }\n";
    let with = |extra: &str| {
        format!("{creds}storage:\n  default:\n    remote: {url}\n    credentials: c\n{extra}")
    };
    // The storage's own CA (as a path, and inline) is trusted.
    let s = start(&with(&format!(
        "    ca_cert_path: {}\n",
        ca.ca_path().display()
    )))
    .await
    .unwrap();
    write(&s, "a", "1", None).await.unwrap();
    start(&with(&format!(
        "    ca_cert_bytes: {}\n",
        yaml_quote(ca.ca_pem())
    )))
    .await
    .unwrap();
    // Without it (system trust), or with another CA, the certificate is refused; the CA of one
    // storage did not become trusted for others.
    let err = start(&with("")).await.unwrap_err();
    assert!(
        matches!(
            err,
            SyncError::Unauthenticated(_) | SyncError::Unavailable(_)
        ),
        "{err:?}"
    );
    let other = TestCa::new();
    let err = start(&with(&format!(
        "    ca_cert_path: {}\n",
        other.ca_path().display()
    )))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not trusted"), "{err}");
    // insecure_skip_tls accepts any certificate.
    start(&with("    insecure_skip_tls: true\n")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn https_refuses_a_certificate_for_another_host() {
    let ca = TestCa::new();
    let remote = BareRemote::new();
    let server = GitHttpServer::builder(remote.project_root())
        .tls_identity(ca.issue_server_identity(&["flags.example.com"]))
        .start();
    let url = server.url(test_support::REMOTE_DIR_NAME);
    let yaml = format!(
        "storage:\n  default:\n    remote: {url}\n    ca_cert_path: {}\n",
        ca.ca_path().display()
    );
    let err = start(&yaml).await.unwrap_err();
    assert!(err.to_string().contains("not trusted"), "{err}");
}
