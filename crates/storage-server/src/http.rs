//! The HTTP port: `/health`, `/ready`, `/metrics` (Prometheus text) and the webhook that
//! triggers a refresh (API.md §3).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::SecretString;
use storage_grpc::Registry;

use crate::auth::webhook_signature_ok;

/// Largest webhook body accepted.
const MAX_WEBHOOK_BYTES: usize = 1 << 20;

#[derive(Clone)]
pub(crate) struct HttpState {
    pub(crate) registry: Arc<Registry>,
    pub(crate) webhook_secrets: Arc<std::collections::BTreeMap<String, SecretString>>,
}

pub(crate) fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route(
            "/api/v1/storages/{id}/webhook",
            post(webhook).layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES)),
        )
        .with_state(state)
}

async fn ready(State(state): State<HttpState>) -> Response {
    let waiting: Vec<String> = state
        .registry
        .iter()
        .filter(|e| e.sync.head(&e.sync.options().branch).is_none())
        .map(|e| e.id.clone())
        .collect();
    if waiting.is_empty() {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "ready": true })),
        )
            .into_response()
    } else {
        let body = serde_json::json!({ "ready": false, "reason": "storages without a first state", "storages": waiting });
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

async fn webhook(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (Some(secret), Some(entry)) = (state.webhook_secrets.get(&id), state.registry.get(&id))
    else {
        return (StatusCode::NOT_FOUND, "no webhook for this storage\n").into_response();
    };
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !webhook_signature_ok(secret, &body, signature) {
        tracing::warn!(storage = %id, "webhook with a missing or wrong signature refused");
        return (
            StatusCode::UNAUTHORIZED,
            "bad or missing X-Hub-Signature-256\n",
        )
            .into_response();
    }
    let sync = entry.sync.clone();
    tokio::spawn(async move {
        if let Err(e) = sync.refresh().await {
            tracing::warn!(storage = %sync.id(), error = %e, "refresh triggered by a webhook failed");
        }
    });
    (StatusCode::ACCEPTED, "refresh triggered\n").into_response()
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in rows {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {value}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
    };
    // A sample of the whole process: no labels.
    let one = |value: u64| vec![(String::new(), value.to_string())];
    let entries: Vec<_> = state.registry.iter().collect();
    let per = |f: &dyn Fn(&storage_grpc::StorageEntry) -> Vec<(String, String)>| -> Vec<(String, String)> {
        entries.iter().flat_map(|e| f(e)).collect()
    };
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed).to_string();
    family(
        "flipt_storage_syncs_total",
        "counter",
        "Syncs (fetches, or re-reads without a remote) by result.",
        per(&|e| {
            let m = e.sync.metrics();
            vec![
                (
                    format!("storage=\"{}\",result=\"ok\"", e.id),
                    load(&m.syncs_ok),
                ),
                (
                    format!("storage=\"{}\",result=\"error\"", e.id),
                    load(&m.syncs_failed),
                ),
            ]
        }),
    );
    family(
        "flipt_storage_sync_seconds_total",
        "counter",
        "Time spent syncing.",
        per(&|e| {
            let micros = e.sync.metrics().sync_micros.load(Ordering::Relaxed);
            vec![(
                format!("storage=\"{}\"", e.id),
                format!("{:.6}", micros as f64 / 1e6),
            )]
        }),
    );
    family(
        "flipt_storage_last_successful_sync_timestamp_seconds",
        "gauge",
        "Unix time of the last successful sync (0: never).",
        per(&|e| {
            vec![(
                format!("storage=\"{}\"", e.id),
                load(&e.sync.metrics().last_sync_success_unix),
            )]
        }),
    );
    family(
        "flipt_storage_pushes_total",
        "counter",
        "Pushes by result.",
        per(&|e| {
            let m = e.sync.metrics();
            vec![
                (
                    format!("storage=\"{}\",result=\"ok\"", e.id),
                    load(&m.pushes_ok),
                ),
                (
                    format!("storage=\"{}\",result=\"error\"", e.id),
                    load(&m.pushes_failed),
                ),
            ]
        }),
    );
    family(
        "flipt_storage_push_conflicts_total",
        "counter",
        "Pushes refused because the remote moved.",
        per(&|e| {
            vec![(
                format!("storage=\"{}\"", e.id),
                load(&e.sync.metrics().push_conflicts),
            )]
        }),
    );
    family(
        "flipt_storage_push_replays_total",
        "counter",
        "Writes applied again after the remote moved.",
        per(&|e| {
            vec![(
                format!("storage=\"{}\"", e.id),
                load(&e.sync.metrics().push_replays),
            )]
        }),
    );
    family(
        "flipt_storage_commits_total",
        "counter",
        "Commits made.",
        per(&|e| {
            vec![(
                format!("storage=\"{}\"", e.id),
                load(&e.sync.metrics().commits),
            )]
        }),
    );
    family(
        "flipt_storage_errors_total",
        "counter",
        "Errors by class.",
        per(&|e| {
            e.sync
                .metrics()
                .errors_by_class()
                .into_iter()
                .map(|(class, n)| {
                    (
                        format!("storage=\"{}\",class=\"{}\"", e.id, class.as_str()),
                        n.to_string(),
                    )
                })
                .collect()
        }),
    );
    family(
        "flipt_storage_remote_rewrites_total",
        "counter",
        "Rewrites of the remote's branch (not a fast-forward) that the local branch followed, holding nothing unpushed.",
        per(&|e| {
            vec![(
                format!("storage=\"{}\"", e.id),
                load(&e.sync.metrics().remote_rewrites),
            )]
        }),
    );
    family(
        "flipt_storage_diverged",
        "gauge",
        "1 while the local branch has commits the remote never had and the remote's history does not contain it (writes refused).",
        per(&|e| {
            vec![(
                format!("storage=\"{}\"", e.id),
                u8::from(e.sync.status().divergence.is_some()).to_string(),
            )]
        }),
    );
    family(
        "flipt_storage_synced",
        "gauge",
        "1 when the served head is the remote's and the storage is in step with it (last fetch succeeded, not diverged).",
        per(&|e| {
            vec![(
                format!("storage=\"{}\"", e.id),
                u8::from(e.sync.status().synced).to_string(),
            )]
        }),
    );
    if let Some(heap) = git2_support::heap_stats() {
        family(
            "flipt_storage_heap_in_use_bytes",
            "gauge",
            "Bytes the C allocator has handed out and not had back (Rust and libgit2 alike).",
            one(heap.in_use),
        );
        family(
            "flipt_storage_heap_free_held_bytes",
            "gauge",
            "Bytes freed but kept by the C allocator for reuse (resident in part).",
            one(heap.free_held),
        );
    }
    let memory = git2_support::memory_stats();
    family(
        "flipt_storage_memory_held_bytes",
        "gauge",
        "Bytes of new git objects that memory storages hold in RAM, not yet written to a pack in their scratch directory.",
        one(memory.held_bytes),
    );
    family(
        "flipt_storage_memory_compactions_total",
        "counter",
        "Times memory storages wrote the objects held in RAM as one pack.",
        one(memory.compactions),
    );
    family(
        "flipt_storage_memory_pack_merges_total",
        "counter",
        "Times memory storages merged the packs of their scratch directory into one.",
        one(memory.pack_merges),
    );
    let grpc = crate::serve::request_metrics_text();
    out.push_str(&grpc);
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}
