//! Credentials against a real smart-HTTP server: basic auth, tokens, a rotated token file,
//! wrong passwords; and no secret in the logs.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use remote_sync::{SyncError, SyncOptions, SyncedStorage};
use test_support::{BareRemote, GitHttpServer};

use crate::common::*;

/// Captures log output of the current thread's subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

fn config(yaml: &str) -> config_model::Config {
    config_model::load_str(yaml, None, &BTreeMap::new())
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

async fn start_with(yaml: &str) -> Result<SyncedStorage, SyncError> {
    let c = config(yaml);
    let mut o = SyncOptions::from_config(&c, &c.storages["default"]).unwrap();
    o.poll_interval = std::time::Duration::from_secs(1);
    SyncedStorage::start(memory(), o).await
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_and_tokens_over_http_and_no_secret_in_logs() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let remote = BareRemote::new();
    let server = GitHttpServer::builder(remote.project_root())
        .basic_auth("alice", "pw-SECRET-1")
        .start();
    let url = server.url(test_support::REMOTE_DIR_NAME);
    let good = format!(
        "credentials:\n  c:\n    type: basic\n    basic: {{ username: alice, password: pw-SECRET-1 }}\nstorage:\n  default:\n    remote: {url}\n    credentials: c\n"
    );
    let s = start_with(&good).await.unwrap();
    write(&s, "a", "1", None).await.unwrap();
    assert_eq!(remote.head("main").map(|h| oid(&h)), s.head("main"));

    let wrong = good.replace("pw-SECRET-1", "pw-SECRET-wrong");
    let err = start_with(&wrong).await.unwrap_err();
    assert!(matches!(err, SyncError::Unauthenticated(_)), "{err:?}");
    assert!(!err.to_string().contains("pw-SECRET"), "{err}");
    let none = format!("storage:\n  default:\n    remote: {url}\n");
    let err = start_with(&none).await.unwrap_err();
    assert!(matches!(err, SyncError::Unauthenticated(_)), "{err:?}");
    assert!(err.to_string().contains("none are configured"), "{err}");

    drop(_guard);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("sync"), "logs were captured: {text}");
    assert!(
        !text.contains("pw-SECRET"),
        "a secret reached the logs:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_token_file_is_used_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "tok-ONE\n").unwrap();
    let remote = BareRemote::new();
    let server = GitHttpServer::builder(remote.project_root())
        .basic_auth("x-token-auth", "tok-ONE")
        .start();
    let port = server.port();
    let url = server.url(test_support::REMOTE_DIR_NAME);
    let yaml = format!(
        "credentials:\n  t:\n    type: access_token\n    access_token_path: {}\nstorage:\n  default:\n    remote: {url}\n    credentials: t\n",
        token_file.display()
    );
    let s = start_with(&yaml).await.unwrap();
    write(&s, "a", "1", None).await.unwrap();
    // The server's token is rotated: the old one is refused...
    server.stop();
    let server = GitHttpServer::builder(remote.project_root())
        .basic_auth("x-token-auth", "tok-TWO")
        .port(port)
        .start();
    let r = write(&s, "b", "2", None).await;
    assert!(matches!(r, Err(SyncError::Unauthenticated(_))), "{r:?}");
    // ...until the file holds the new one: the next operation reads it.
    let mut f = std::fs::File::create(&token_file).unwrap();
    f.write_all(b"tok-TWO").unwrap();
    drop(f);
    write(&s, "b", "2", None).await.unwrap();
    assert_eq!(remote.show_file("main", "b").as_deref(), Some("2"));
    drop(server);
}
