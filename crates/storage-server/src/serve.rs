//! `serve`: the composition root. Builds each storage's backend from the configuration (the
//! only place that names concrete backends), starts the sync engines, and serves gRPC and
//! HTTP until SIGINT or SIGTERM.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{Context as _, Result};
use config_model::{Backend, Config, StorageConfig};
use git_backend::DynBackend;
use remote_sync::{SyncOptions, SyncedStorage};
use storage_grpc::{Registry, StorageApi, StorageApiOptions, StorageEntry};
use storage_proto::flipt::storage::v1::storage_service_server::StorageServiceServer;
use tokio_util::sync::CancellationToken;

use crate::auth::Tokens;
use crate::http::{HttpState, router};

/// Builds the backend of a storage: the one `match` over backend kinds.
async fn backend_for(storage: &StorageConfig) -> Result<DynBackend> {
    let storage = storage.clone();
    tokio::task::spawn_blocking(move || -> Result<DynBackend> {
        match &storage.backend {
            Backend::Memory => Ok(Arc::new(git_backend_memory::MemoryBackend::new(
                Default::default(),
            )?)),
            Backend::Local { path } => {
                let mut options = git_backend_local::LocalOptions::new(path, &storage.branch);
                // With a remote, the branch may come from the remote.
                options.allow_missing_branch = storage.remote.is_some();
                Ok(Arc::new(git_backend_local::LocalBackend::open(options)?))
            }
            other => anyhow::bail!(
                "backend type `{}` is not supported by this build",
                other.kind()
            ),
        }
    })
    .await?
}

fn write_ready_file(path: &Path, grpc: SocketAddr, http: SocketAddr) -> Result<()> {
    let body =
        serde_json::json!({ "grpc": grpc.to_string(), "http": http.to_string() }).to_string();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body).with_context(|| format!("cannot write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

async fn shutdown_signal(cancel: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = ctrl_c.await;
            cancel.cancel();
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = cancel.cancelled() => {}
    }
    cancel.cancel();
}

/// The directories of the environments of each storage: `Commit` checks the features files
/// it writes in them.
fn environment_directories(config: &Config) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &config.environments {
        out.entry(e.storage.clone())
            .or_default()
            .push(e.directory.clone());
    }
    out
}

/// Runs the server until a signal arrives.
pub(crate) async fn serve(config: Config, ready_file: Option<PathBuf>) -> Result<()> {
    let started = Instant::now();
    git2_support::configure(git2_support::GlobalOptions {
        timeout: config.server.git_timeout,
        ..Default::default()
    });
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_signal(cancel.clone()));

    let mut registry = Registry::new();
    let mut webhook_secrets = BTreeMap::new();
    let mut loops = Vec::new();
    for storage in config.storages.values() {
        let backend = backend_for(storage)
            .await
            .with_context(|| format!("storage `{}`", storage.id))?;
        let options = SyncOptions::from_config(&config, storage)
            .with_context(|| format!("storage `{}`", storage.id))?;
        let sync = SyncedStorage::start(backend.clone(), options)
            .await
            .with_context(|| format!("starting storage `{}`", storage.id))?;
        tracing::info!(storage = %storage.id, backend = backend.kind(), remote = storage.remote.as_ref().map(|r| r.to_string()).unwrap_or_default(), branch = %storage.branch, head = %sync.head(&storage.branch).map(|h| h.to_string()).unwrap_or_else(|| "none".into()), "storage ready");
        let runner = sync.clone();
        let token = cancel.child_token();
        loops.push(tokio::spawn(async move { runner.run(token).await }));
        if let Some(secret) = &storage.webhook_secret {
            webhook_secrets.insert(storage.id.clone(), secret.clone());
        }
        registry.add(StorageEntry {
            id: storage.id.clone(),
            backend_kind: backend.kind(),
            remote: storage.remote.as_ref().map(|r| r.to_string()),
            sync,
            rejected: Default::default(),
        });
    }
    let registry = Arc::new(registry);

    let host = &config.server.host;
    let grpc_listener = tokio::net::TcpListener::bind((host.as_str(), config.server.grpc_port))
        .await
        .with_context(|| format!("cannot listen on {host}:{} (gRPC)", config.server.grpc_port))?;
    let http_listener = tokio::net::TcpListener::bind((host.as_str(), config.server.http_port))
        .await
        .with_context(|| format!("cannot listen on {host}:{} (HTTP)", config.server.http_port))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;

    // gRPC: the storage service, health (overall and per storage), reflection.
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    // Per storage: SERVING while it has a state to serve, NOT_SERVING otherwise (phase ERROR
    // or no head yet), following its status.
    for e in registry.iter() {
        let name = format!("storage/{}", e.id);
        let mut status = e.sync.watch_status();
        let reporter = health.clone();
        let stop = cancel.clone();
        tokio::spawn(async move {
            loop {
                let serving = {
                    let s = status.borrow_and_update();
                    s.head.is_some() && s.phase != remote_sync::Phase::Error
                };
                let value = if serving {
                    tonic_health::ServingStatus::Serving
                } else {
                    tonic_health::ServingStatus::NotServing
                };
                reporter.set_service_status(name.clone(), value).await;
                tokio::select! {
                    changed = status.changed() => if changed.is_err() { return },
                    _ = stop.cancelled() => return,
                }
            }
        });
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(storage_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(storage_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let max_bytes = usize::try_from(config.server.max_request_bytes).unwrap_or(usize::MAX);
    let api = StorageApi::new(
        registry.clone(),
        StorageApiOptions {
            max_watch_streams: config.server.max_concurrent_streams as usize,
            shutdown: cancel.clone(),
            environment_directories: environment_directories(&config),
            ..Default::default()
        },
    );
    let auth = config
        .authentication
        .required
        .then(|| Tokens::new(&config.authentication.token.tokens));
    let check = move |req: tonic::Request<()>| -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(tokens) = &auth {
            let header = req
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            if !tokens.accepts(header) {
                return Err(tonic::Status::unauthenticated(
                    "a valid `authorization: Bearer <token>` is required",
                ));
            }
        }
        Ok(req)
    };
    let storage_service = StorageServiceServer::new(api).max_decoding_message_size(max_bytes);
    let environments = storage_grpc::EnvironmentsApi::new(
        &registry,
        config
            .environments
            .iter()
            .map(|e| storage_grpc::EnvironmentDef {
                key: e.name.clone(),
                storage_id: e.storage.clone(),
                directory: e.directory.clone(),
                default: e.default,
            })
            .collect(),
    )
    .map_err(anyhow::Error::msg)?;
    environments.follow(cancel.clone());
    let environments_service =
        storage_proto::environments::environments_service_server::EnvironmentsServiceServer::new(
            environments,
        )
        .max_decoding_message_size(max_bytes);
    let tls = match &config.server.tls {
        Some(files) => Some(crate::tls::TlsMaterial::load(
            &files.cert_file,
            &files.cert_key,
        )?),
        None => None,
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(
                tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem),
            ))
            .context("invalid TLS certificate or key")?;
    }
    let grpc = builder
        .layer(tower::layer::layer_fn(RequestTiming::new))
        .add_service(health_service)
        .add_service(tonic::service::interceptor::InterceptedService::new(
            storage_service,
            check.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            environments_service,
            check.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            reflection_v1,
            check.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            reflection_v1alpha,
            check,
        ))
        .serve_with_incoming_shutdown(
            tokio_stream_incoming(grpc_listener),
            cancel.clone().cancelled_owned(),
        );

    let http_state = HttpState {
        registry: registry.clone(),
        webhook_secrets: Arc::new(webhook_secrets),
    };
    let http_cancel = cancel.clone();
    let app = router(http_state);
    let http = async move {
        match &tls {
            None => axum::serve(http_listener, app)
                .with_graceful_shutdown(async move { http_cancel.cancelled().await })
                .await
                .map_err(anyhow::Error::from),
            Some(tls) => crate::tls::serve_https(http_listener, app, tls, http_cancel).await,
        }
    };

    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "listening grpc={grpc_addr} http={http_addr}"
    );
    if let Some(path) = &ready_file {
        write_ready_file(path, grpc_addr, http_addr)?;
    }
    // After the signal, in-flight requests (writes included) get a grace period; a client
    // that keeps its connection open past it does not keep the process alive.
    let grace = config.server.git_timeout + std::time::Duration::from_secs(2);
    let servers = async { tokio::join!(grpc, http) };
    tokio::pin!(servers);
    tokio::select! {
        (g, h) = &mut servers => {
            g.context("gRPC server failed")?;
            h.context("HTTP server failed")?;
        }
        () = async { cancel.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_secs = grace.as_secs(), "connections still open after the grace period; stopping anyway");
        }
    }
    for l in loops {
        let _ = l.await;
    }
    // A pack merge of a memory storage keeps its scratch directory until it ends: let it
    // end, so that the directory goes when the storages are dropped.
    let merged = tokio::task::spawn_blocking(|| {
        git2_support::wait_for_pack_merges(std::time::Duration::from_secs(30))
    })
    .await
    .unwrap_or(false);
    if !merged {
        tracing::warn!(
            "a pack merge still runs; its scratch directory is removed by the next start"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

fn tokio_stream_incoming(
    listener: tokio::net::TcpListener,
) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

// -------------------------------------------------------------------------------- request timing

const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    total: u64,
    sum: f64,
}

static REQUESTS: Mutex<BTreeMap<String, Histogram>> = Mutex::new(BTreeMap::new());

/// The label of requests to a path that names no method the server serves.
const UNKNOWN_METHOD: &str = "unknown";

/// Every gRPC method the server serves, as `/<package>.<Service>/<Method>`, from the
/// descriptor sets of its services. The request metrics name only these: anything else is
/// [`UNKNOWN_METHOD`], so that made-up paths (answered `UNIMPLEMENTED`, also without a
/// token) cannot grow the metrics without bound.
fn known_methods() -> &'static HashSet<String> {
    static KNOWN: OnceLock<HashSet<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        use prost::Message as _;
        let mut known = HashSet::new();
        for encoded in [
            storage_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
                continue;
            };
            for file in set.file {
                for service in &file.service {
                    for method in &service.method {
                        known.insert(format!(
                            "/{}.{}/{}",
                            file.package(),
                            service.name(),
                            method.name()
                        ));
                    }
                }
            }
        }
        known
    })
}

/// The metrics label of a request path.
fn method_label(path: &str) -> &str {
    if known_methods().contains(path) {
        path
    } else {
        UNKNOWN_METHOD
    }
}

fn record(method: &str, seconds: f64) {
    let mut all = REQUESTS.lock().unwrap_or_else(|p| p.into_inner());
    let h = all.entry(method.to_owned()).or_default();
    for (i, b) in BUCKETS.iter().enumerate() {
        if seconds <= *b {
            h.counts[i] += 1;
        }
    }
    h.total += 1;
    h.sum += seconds;
}

/// The request-latency histograms in Prometheus text format.
pub(crate) fn request_metrics_text() -> String {
    use std::fmt::Write as _;
    let all = REQUESTS.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = String::from(
        "# HELP flipt_grpc_request_duration_seconds gRPC request latency by method.\n# TYPE flipt_grpc_request_duration_seconds histogram\n",
    );
    for (method, h) in all.iter() {
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "flipt_grpc_request_duration_seconds_bucket{{method=\"{method}\",le=\"{b}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "flipt_grpc_request_duration_seconds_bucket{{method=\"{method}\",le=\"+Inf\"}} {}",
            h.total
        );
        let _ = writeln!(
            out,
            "flipt_grpc_request_duration_seconds_sum{{method=\"{method}\"}} {:.6}",
            h.sum
        );
        let _ = writeln!(
            out,
            "flipt_grpc_request_duration_seconds_count{{method=\"{method}\"}} {}",
            h.total
        );
    }
    out
}

/// A tower layer that times each gRPC request (until its response headers) and logs it at
/// debug level.
#[derive(Debug, Clone)]
struct RequestTiming<S> {
    inner: S,
}

impl<S> RequestTiming<S> {
    fn new(inner: S) -> Self {
        RequestTiming { inner }
    }
}

impl<S, B> tower::Service<http::Request<B>> for RequestTiming<S>
where
    S: tower::Service<http::Request<B>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = method_label(req.uri().path()).to_owned();
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            let elapsed = started.elapsed();
            record(&method, elapsed.as_secs_f64());
            tracing::debug!(method = %method, elapsed_us = elapsed.as_micros() as u64, ok = result.is_ok(), "request");
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_methods_have_their_own_metrics_label() {
        for served in [
            "/flipt.storage.v1.StorageService/Commit",
            "/flipt.storage.v1.StorageService/Watch",
            "/environments.EnvironmentsService/ListEnvironments",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert_eq!(method_label(served), served);
        }
        for made_up in [
            "/flipt.storage.v1.StorageService/NoSuch",
            "/flipt.storage.v1.StorageService/Commit/x",
            "/made.up.Service/Call",
            "/",
            "",
        ] {
            assert_eq!(method_label(made_up), UNKNOWN_METHOD);
        }
    }
}
