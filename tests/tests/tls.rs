//! `server.protocol: https`: both ports speak TLS with the configured certificate.

use integration_tests::Server;
use storage_proto::flipt::storage::v1 as pb;
use storage_proto::flipt::storage::v1::storage_service_client::StorageServiceClient;
use test_support::TestCa;

#[tokio::test(flavor = "multi_thread")]
async fn both_ports_serve_tls_with_the_configured_certificate() {
    let ca = TestCa::new();
    let identity = ca.server_identity();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, identity.chain_pem()).unwrap();
    std::fs::write(&key, identity.key_pem()).unwrap();
    let s = Server::start_with_tls(&cert, &key);
    let grpc = s.grpc.replace("http://", "https://");
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca.ca_pem()))
        .domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(grpc.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = StorageServiceClient::new(channel);
    let list = c
        .list_storages(pb::ListStoragesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.storages.len(), 1);
    // Plain text on the TLS port fails.
    let plain = StorageServiceClient::connect(s.grpc.clone()).await;
    let refused = match plain {
        Err(_) => true,
        Ok(mut c) => c.list_storages(pb::ListStoragesRequest {}).await.is_err(),
    };
    assert!(refused, "a plaintext client must not get through");
    // The HTTP port: trusted with the CA, refused without it.
    let https = s.http.replace("http://", "https://");
    let ok = std::process::Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(ca.ca_path())
        .arg(format!("{https}/health"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "ok\n", "{ok:?}");
    let untrusted = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{https}/health"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&untrusted.stdout),
        "000",
        "without the CA the handshake fails"
    );
    assert_eq!(s.stop(), Some(0));
}
