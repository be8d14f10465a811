//! TLS of both ports (`server.protocol: https`): the certificate chain and key are read once
//! at start-up; the gRPC port uses tonic's rustls support, the HTTP port the same rustls
//! through tokio-rustls.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

/// The PEM files of `server.cert_file` and `server.cert_key`, checked.
pub(crate) struct TlsMaterial {
    pub(crate) cert_pem: Vec<u8>,
    pub(crate) key_pem: Vec<u8>,
    config: Arc<rustls::ServerConfig>,
}

impl TlsMaterial {
    pub(crate) fn load(cert_file: &Path, key_file: &Path) -> Result<Self> {
        let cert_pem = std::fs::read(cert_file)
            .with_context(|| format!("cannot read `server.cert_file` `{}`", cert_file.display()))?;
        let key_pem = std::fs::read(key_file)
            .with_context(|| format!("cannot read `server.cert_key` `{}`", key_file.display()))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .with_context(|| {
                format!(
                    "`{}` holds no readable PEM certificate",
                    cert_file.display()
                )
            })?;
        if certs.is_empty() {
            anyhow::bail!("`{}` holds no certificate", cert_file.display());
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).with_context(|| {
            format!("`{}` holds no readable PEM private key", key_file.display())
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS set-up failed")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("the TLS certificate and key do not form a valid pair")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsMaterial {
            cert_pem,
            key_pem,
            config: Arc::new(config),
        })
    }
}

/// Serves `app` over TLS on `listener` until `cancel` fires.
pub(crate) async fn serve_https(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: &TlsMaterial,
    cancel: CancellationToken,
) -> Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    continue;
                }
            },
            _ = cancel.cancelled() => break,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let cancel = cancel.clone();
        connections.spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}
