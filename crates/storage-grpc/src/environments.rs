//! `environments.EnvironmentsService`, Flipt v2's API (API.md §1), over the sync engines and
//! the resources crate. Reads come from a validated snapshot of the branch the environment
//! reads (the last good one when the newest commit does not validate); writes are
//! [`resource_model::ResourceWrite`]s through the sync engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use git_backend::{LogOptions, ObjectId};
use remote_sync::{SyncedStorage, WriteRequest};
use resource_model::{EnvironmentInfo, Operation, ResourceWrite, Snapshot, WriteTarget};
use storage_proto::environments as pb;
use storage_proto::environments::environments_service_server::EnvironmentsService;
use tonic::{Request, Response, Status};

use crate::core_convert::{self, Decoded, ResourceType};
use crate::error::{from_sync, shown};
use crate::registry::Registry;

/// An environment of the configuration.
#[derive(Debug, Clone)]
pub struct EnvironmentDef {
    /// Its key in the API (`environments.<id>.name`).
    pub key: String,
    /// Its storage.
    pub storage_id: String,
    /// Its directory in the repository (empty: the root).
    pub directory: String,
    /// Whether it is the default environment.
    pub default: bool,
}

struct Env {
    def: EnvironmentDef,
    sync: SyncedStorage,
    remote: Option<String>,
    rejected: Arc<crate::registry::Rejections>,
    target: Arc<WriteTarget>,
    /// The last good snapshot per branch.
    snapshots: Mutex<HashMap<String, Arc<Snapshot>>>,
    /// Held while a snapshot is built, so that requests arriving together after the head
    /// moved wait for one build instead of each making its own (a cold build of 10,000 flags
    /// takes a quarter of a second and tens of megabytes; concurrent ones multiply both).
    building: tokio::sync::Mutex<()>,
    /// Per branch, the head that did not validate and why: not built again on every read
    /// (nor logged again) until the branch moves.
    refused: Mutex<HashMap<String, (ObjectId, String)>>,
    /// Resources already encoded for `GetResource`, by namespace.
    encoded: Mutex<HashMap<String, EncodedNamespace>>,
}

/// The encoded `Any` payloads of a namespace's resources, for one content of its features
/// file (the digest is the file's blob id): a read of an unchanged resource costs a lookup and
/// a copy instead of a conversion and an encoding.
#[derive(Debug, Default)]
struct EncodedNamespace {
    digest: String,
    resources: HashMap<(ResourceType, String), prost_types::Any>,
}

impl Env {
    /// The payload of a resource of `ns` (whose file has blob id `digest`), encoded once.
    fn encoded(
        &self,
        ns: &str,
        digest: &str,
        kind: ResourceType,
        key: &str,
        encode: impl FnOnce() -> Option<prost_types::Any>,
    ) -> Option<prost_types::Any> {
        {
            let cache = self.encoded.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(any) = cache
                .get(ns)
                .filter(|e| e.digest == digest)
                .and_then(|e| e.resources.get(&(kind, key.to_owned())))
            {
                return Some(any.clone());
            }
        }
        let any = encode()?;
        let mut cache = self.encoded.lock().unwrap_or_else(|p| p.into_inner());
        let entry = cache.entry(ns.to_owned()).or_default();
        if entry.digest != digest {
            // The file changed: what was encoded from the old one is of no use.
            *entry = EncodedNamespace {
                digest: digest.to_owned(),
                resources: HashMap::new(),
            };
        }
        entry.resources.insert((kind, key.to_owned()), any.clone());
        Some(any)
    }
}

/// The environments service.
pub struct EnvironmentsApi {
    envs: Vec<Arc<Env>>,
}

impl std::fmt::Debug for EnvironmentsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentsApi")
            .field("environments", &self.envs.len())
            .finish()
    }
}

/// What a request's `environment_key` names: an environment on its base branch, or one of its
/// branch environments.
struct Resolved {
    env: Arc<Env>,
    branch: String,
    base_key: Option<String>,
    key: String,
}

/// The snapshot of `branch` of `env`: the head's when it validates, else the last good one. A
/// head of the environment's base branch that does not validate is recorded in the storage's
/// status until a good one follows.
async fn snapshot_of(env: &Env, branch: &str) -> Result<Arc<Snapshot>, Status> {
    let head = env
        .sync
        .head(branch)
        .ok_or_else(|| Status::unavailable("the environment has no state to serve yet"))?;
    let last = || {
        env.snapshots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(branch)
            .cloned()
    };
    if let Some(prev) = last().filter(|p| p.commit() == head) {
        return Ok(prev);
    }
    let _one_build = env.building.lock().await;
    // Another request may have built it while this one waited.
    let previous = last();
    if let Some(prev) = previous.as_ref().filter(|p| p.commit() == head) {
        return Ok(prev.clone());
    }
    let refused = env
        .refused
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(branch)
        .filter(|(commit, _)| *commit == head)
        .map(|(_, why)| why.clone());
    if let Some(why) = refused {
        return previous.ok_or_else(|| {
            Status::unavailable(format!(
                "commit {head} does not validate and there is no earlier state: {why}"
            ))
        });
    }
    let backend = env.sync.backend();
    // Files this server's writes produced come parsed from the writes' cache; the others
    // are parsed on a thread of the build's own (a cold build of 10,000 flags takes ~0.2 s
    // of CPU).
    let directory = previous
        .as_ref()
        .map_or(env.def.directory.as_str(), |p| p.directory())
        .to_owned();
    let built = match Snapshot::prepare(
        &**backend,
        head,
        &directory,
        previous.clone(),
        Some(env.target.cache.clone()),
    )
    .await
    {
        // Off the async threads, and below request handling in CPU priority.
        Ok(pending) => crate::background::run_lowered(move || pending.finish()).await?,
        Err(e) => Err(e),
    };
    let base = branch == env.sync.options().branch;
    match built {
        Ok(snap) => {
            env.snapshots
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(branch.to_owned(), snap.clone());
            if base {
                env.rejected.clear(&env.def.key);
            }
            Ok(snap)
        }
        Err(e) => {
            tracing::warn!(environment = %env.def.key, commit = %head, error = %e, "the commit does not validate; serving the last good state");
            if matches!(e, resource_model::Error::Invalid(_)) {
                env.refused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(branch.to_owned(), (head, e.to_string()));
            }
            if base {
                let reason = format!("environment `{}`: {e}", env.def.key);
                env.rejected.set(
                    &env.def.key,
                    crate::registry::Rejection {
                        commit: head.to_string(),
                        reason,
                    },
                );
            }
            previous.ok_or_else(|| {
                Status::unavailable(format!(
                    "commit {head} does not validate and there is no earlier state: {e}"
                ))
            })
        }
    }
}

fn rev(id: ObjectId) -> String {
    id.to_string()
}

fn branch_name(env: &str, key: &str) -> String {
    format!("flipt/{env}/{key}")
}

impl EnvironmentsApi {
    /// The service for `environments`, whose storages are in `registry`.
    pub fn new(registry: &Registry, environments: Vec<EnvironmentDef>) -> Result<Self, String> {
        let mut envs = Vec::new();
        for def in environments {
            let entry = registry.get(&def.storage_id).ok_or_else(|| {
                format!(
                    "environment `{}` names unknown storage `{}`",
                    def.key, def.storage_id
                )
            })?;
            let target = Arc::new(WriteTarget {
                environment: EnvironmentInfo {
                    name: def.key.clone(),
                    storage: def.storage_id.clone(),
                    directory: def.directory.clone(),
                    default: def.default,
                },
                ..Default::default()
            });
            envs.push(Arc::new(Env {
                sync: entry.sync.clone(),
                remote: entry.remote.clone(),
                rejected: entry.rejected.clone(),
                target,
                snapshots: Mutex::new(HashMap::new()),
                building: tokio::sync::Mutex::new(()),
                refused: Mutex::new(HashMap::new()),
                encoded: Mutex::new(HashMap::new()),
                def,
            }));
        }
        Ok(EnvironmentsApi { envs })
    }

    fn resolve(&self, key: &str) -> Result<Resolved, Status> {
        if let Some(env) = self.envs.iter().find(|e| e.def.key == key) {
            return Ok(Resolved {
                env: env.clone(),
                branch: env.sync.options().branch.clone(),
                base_key: None,
                key: key.to_owned(),
            });
        }
        for env in &self.envs {
            let branch = branch_name(&env.def.key, key);
            if env.sync.head(&branch).is_some() {
                return Ok(Resolved {
                    env: env.clone(),
                    branch,
                    base_key: Some(env.def.key.clone()),
                    key: key.to_owned(),
                });
            }
        }
        Err(Status::not_found(format!(
            "environment \"{}\" not found",
            shown(key)
        )))
    }

    /// The snapshot to serve for a branch: the head's when it validates, else the last good one.
    async fn snapshot(&self, r: &Resolved) -> Result<Arc<Snapshot>, Status> {
        snapshot_of(&r.env, &r.branch).await
    }

    /// Keeps every environment's snapshot current: rebuilt when its branch moves (so reads
    /// find it ready, and a commit that does not validate is reported in the storage status
    /// at once), until `cancel` fires. Call it once, from within the runtime.
    pub fn follow(&self, cancel: tokio_util::sync::CancellationToken) {
        for env in &self.envs {
            let env = env.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let mut heads = env.sync.subscribe();
                let branch = env.sync.options().branch.clone();
                loop {
                    let _ = snapshot_of(&env, &branch).await;
                    tokio::select! {
                        changed = heads.changed() => if changed.is_err() { return },
                        _ = cancel.cancelled() => return,
                    }
                }
            });
        }
    }

    async fn write(
        &self,
        r: &Resolved,
        revision: &str,
        operation: Operation,
    ) -> Result<String, Status> {
        let write = ResourceWrite::new(r.env.target.clone(), operation);
        let out = r
            .env
            .sync
            .write(WriteRequest {
                branch: &r.branch,
                revision: Some(revision).filter(|s| !s.is_empty()),
                op: &write,
                author: None,
            })
            .await
            .map_err(from_sync)?;
        Ok(out.revision.map(rev).unwrap_or_default())
    }
}

fn non_empty(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!(
            "{field} must not be empty"
        )));
    }
    Ok(())
}

/// A payload without a key takes the request's; one with another key is refused.
fn payload_key(payload: &mut String, request: &str) -> Result<(), Status> {
    if payload.is_empty() {
        *payload = request.to_owned();
    }
    if payload != request {
        return Err(Status::invalid_argument(format!(
            "payload key \"{}\" differs from request key \"{}\"",
            shown(payload),
            shown(request)
        )));
    }
    Ok(())
}

fn resource_type(type_url: &str) -> Result<ResourceType, Status> {
    core_convert::parse_type_url(type_url).ok_or_else(|| {
        Status::invalid_argument(format!("resource type \"{}\" not found", shown(type_url)))
    })
}

#[tonic::async_trait]
impl EnvironmentsService for EnvironmentsApi {
    async fn list_environments(
        &self,
        _: Request<pb::ListEnvironmentsRequest>,
    ) -> Result<Response<pb::ListEnvironmentsResponse>, Status> {
        let mut environments = Vec::new();
        for env in &self.envs {
            let config = |r#ref: String, base: Option<String>| pb::EnvironmentConfiguration {
                r#ref,
                directory: (!env.def.directory.is_empty()).then(|| env.def.directory.clone()),
                remote: env.remote.clone(),
                base,
                scm: None,
            };
            environments.push(pb::Environment {
                key: env.def.key.clone(),
                name: env.def.key.clone(),
                default: Some(env.def.default),
                configuration: Some(config(env.sync.options().branch.clone(), None)),
            });
            let prefix = format!("flipt/{}/", env.def.key);
            let heads = env.sync.subscribe().borrow().branches.clone();
            for branch in heads.keys().filter(|b| b.starts_with(&prefix)) {
                let key = branch[prefix.len()..].to_owned();
                environments.push(pb::Environment {
                    key: key.clone(),
                    name: key,
                    default: Some(false),
                    configuration: Some(config(branch.clone(), Some(env.def.key.clone()))),
                });
            }
        }
        Ok(Response::new(pb::ListEnvironmentsResponse { environments }))
    }

    async fn branch_environment(
        &self,
        req: Request<pb::BranchEnvironmentRequest>,
    ) -> Result<Response<pb::Environment>, Status> {
        let r = req.into_inner();
        let base = self.resolve(&r.environment_key)?;
        if base.base_key.is_some() {
            return Err(Status::invalid_argument(
                "cannot branch from a branch environment",
            ));
        }
        let key = r
            .key
            .trim()
            .trim_start_matches(&format!("flipt/{}/", base.key))
            .to_owned();
        non_empty("key", &key)?;
        resource_model::validate_key("environment", &key)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if self.resolve(&key).is_ok() {
            return Err(Status::already_exists(format!("environment: \"{key}\"")));
        }
        let branch = branch_name(&base.key, &key);
        base.env
            .sync
            .create_branch(&base.branch, &branch)
            .await
            .map_err(from_sync)?;
        Ok(Response::new(pb::Environment {
            key: key.clone(),
            name: key,
            default: Some(false),
            configuration: Some(pb::EnvironmentConfiguration {
                r#ref: branch,
                directory: (!base.env.def.directory.is_empty())
                    .then(|| base.env.def.directory.clone()),
                remote: base.env.remote.clone(),
                base: Some(base.key.clone()),
                scm: None,
            }),
        }))
    }

    async fn delete_branch_environment(
        &self,
        req: Request<pb::DeleteBranchEnvironmentRequest>,
    ) -> Result<Response<()>, Status> {
        let r = req.into_inner();
        let base = self.resolve(&r.environment_key)?;
        let branch = branch_name(&base.key, &r.key);
        base.env
            .sync
            .delete_branch(&branch)
            .await
            .map_err(from_sync)?;
        base.env
            .snapshots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&branch);
        Ok(Response::new(()))
    }

    async fn list_environment_branches(
        &self,
        req: Request<pb::ListEnvironmentBranchesRequest>,
    ) -> Result<Response<pb::ListEnvironmentBranchesResponse>, Status> {
        let base = self.resolve(&req.get_ref().environment_key)?;
        let prefix = format!("flipt/{}/", base.key);
        let heads = base.env.sync.subscribe().borrow().branches.clone();
        let branches = heads
            .keys()
            .filter(|b| b.starts_with(&prefix))
            .map(|b| pb::BranchEnvironment {
                environment_key: base.key.clone(),
                key: b[prefix.len()..].to_owned(),
                r#ref: b.clone(),
                proposal: None,
            })
            .collect();
        Ok(Response::new(pb::ListEnvironmentBranchesResponse {
            branches,
        }))
    }

    async fn list_branched_environment_changes(
        &self,
        req: Request<pb::ListBranchedEnvironmentChangesRequest>,
    ) -> Result<Response<pb::ListBranchedEnvironmentChangesResponse>, Status> {
        let r = req.into_inner();
        let base = self.resolve(&r.environment_key)?;
        let branch = branch_name(&base.key, &r.key);
        let head = base.env.sync.head(&branch).ok_or_else(|| {
            Status::not_found(format!(
                "branch environment \"{}\" not found",
                shown(&r.key)
            ))
        })?;
        let limit = match r.limit {
            None | Some(0) => 10,
            Some(n) if (1..=100).contains(&n) => n as usize,
            Some(n) => {
                return Err(Status::invalid_argument(format!(
                    "limit must be between 1 and 100, got {n}"
                )));
            }
        };
        let after = match r.from.as_deref().filter(|f| !f.is_empty()) {
            Some(f) => {
                Some(ObjectId::parse(f).map_err(|e| Status::invalid_argument(e.to_string()))?)
            }
            None => None,
        };
        let hide: Vec<ObjectId> = base.env.sync.head(&base.branch).into_iter().collect();
        let log = base
            .env
            .sync
            .backend()
            .log(head, LogOptions { limit, hide, after })
            .await
            .map_err(crate::error::from_backend)?;
        let changes = log
            .into_iter()
            .map(|c| pb::Change {
                revision: c.id.to_string(),
                message: c.message,
                author_name: Some(c.author.name),
                author_email: Some(c.author.email),
                timestamp: c
                    .author
                    .time
                    .map(|t| t.seconds.to_string())
                    .unwrap_or_default(),
                scm_url: None,
            })
            .collect();
        Ok(Response::new(pb::ListBranchedEnvironmentChangesResponse {
            changes,
            proposal_title: String::new(),
            proposal_body: String::new(),
        }))
    }

    async fn propose_environment(
        &self,
        _: Request<pb::ProposeEnvironmentRequest>,
    ) -> Result<Response<pb::EnvironmentProposalDetails>, Status> {
        Err(Status::unimplemented(
            "proposals need a hosting provider's API, which this server does not have",
        ))
    }

    async fn get_namespace(
        &self,
        req: Request<pb::GetNamespaceRequest>,
    ) -> Result<Response<pb::NamespaceResponse>, Status> {
        let r = req.get_ref();
        non_empty("key", &r.key)?;
        let env = self.resolve(&r.environment_key)?;
        let snap = self.snapshot(&env).await?;
        let ns = snap.namespace(&r.key).ok_or_else(|| {
            Status::not_found(format!("namespace \"{}\" not found", shown(&r.key)))
        })?;
        Ok(Response::new(pb::NamespaceResponse {
            namespace: Some(core_convert::namespace_to_proto(ns.namespace())),
            revision: rev(snap.commit()),
        }))
    }

    async fn list_namespaces(
        &self,
        req: Request<pb::ListNamespacesRequest>,
    ) -> Result<Response<pb::ListNamespacesResponse>, Status> {
        let env = self.resolve(&req.get_ref().environment_key)?;
        let snap = self.snapshot(&env).await?;
        let mut items: Vec<pb::Namespace> = snap
            .namespaces()
            .map(|n| core_convert::namespace_to_proto(n.namespace()))
            .collect();
        items.sort_by(|a, b| {
            (a.key != resource_model::DEFAULT_NAMESPACE, &a.key)
                .cmp(&(b.key != resource_model::DEFAULT_NAMESPACE, &b.key))
        });
        Ok(Response::new(pb::ListNamespacesResponse {
            items,
            revision: rev(snap.commit()),
        }))
    }

    async fn create_namespace(
        &self,
        req: Request<pb::UpdateNamespaceRequest>,
    ) -> Result<Response<pb::NamespaceResponse>, Status> {
        self.put_namespace(req.into_inner(), Operation::CreateNamespace)
            .await
    }

    async fn update_namespace(
        &self,
        req: Request<pb::UpdateNamespaceRequest>,
    ) -> Result<Response<pb::NamespaceResponse>, Status> {
        self.put_namespace(req.into_inner(), Operation::UpdateNamespace)
            .await
    }

    async fn delete_namespace(
        &self,
        req: Request<pb::DeleteNamespaceRequest>,
    ) -> Result<Response<pb::DeleteNamespaceResponse>, Status> {
        let r = req.into_inner();
        non_empty("key", &r.key)?;
        let env = self.resolve(&r.environment_key)?;
        let revision = self
            .write(&env, &r.revision, Operation::DeleteNamespace(r.key.clone()))
            .await?;
        Ok(Response::new(pb::DeleteNamespaceResponse { revision }))
    }

    async fn get_resource(
        &self,
        req: Request<pb::GetResourceRequest>,
    ) -> Result<Response<pb::ResourceResponse>, Status> {
        let r = req.get_ref();
        non_empty("key", &r.key)?;
        let kind = resource_type(&r.type_url)?;
        let env = self.resolve(&r.environment_key)?;
        let snap = self.snapshot(&env).await?;
        let missing = || {
            Status::not_found(format!(
                "resource \"{}/{}/{}\" not found",
                kind.type_url(),
                shown(&r.namespace_key),
                shown(&r.key)
            ))
        };
        let ns = snap.namespace(&r.namespace_key).ok_or_else(missing)?;
        let payload = env
            .env
            .encoded(&r.namespace_key, ns.digest(), kind, &r.key, || match kind {
                ResourceType::Flag => ns.flag(&r.key).map(core_convert::flag_to_any),
                ResourceType::Segment => ns.segment(&r.key).map(core_convert::segment_to_any),
            })
            .ok_or_else(missing)?;
        Ok(Response::new(pb::ResourceResponse {
            resource: Some(pb::Resource {
                namespace_key: r.namespace_key.clone(),
                key: r.key.clone(),
                payload: Some(payload),
            }),
            revision: rev(snap.commit()),
        }))
    }

    async fn list_resources(
        &self,
        req: Request<pb::ListResourcesRequest>,
    ) -> Result<Response<pb::ListResourcesResponse>, Status> {
        let r = req.get_ref();
        let kind = resource_type(&r.type_url)?;
        let env = self.resolve(&r.environment_key)?;
        let snap = self.snapshot(&env).await?;
        let resources = match snap.namespace(&r.namespace_key) {
            None => Vec::new(),
            Some(ns) => match kind {
                ResourceType::Flag => ns
                    .flags()
                    .iter()
                    .map(|f| pb::Resource {
                        namespace_key: r.namespace_key.clone(),
                        key: f.key.clone(),
                        payload: Some(core_convert::flag_to_any(f)),
                    })
                    .collect(),
                ResourceType::Segment => ns
                    .segments()
                    .iter()
                    .map(|s| pb::Resource {
                        namespace_key: r.namespace_key.clone(),
                        key: s.key.clone(),
                        payload: Some(core_convert::segment_to_any(s)),
                    })
                    .collect(),
            },
        };
        Ok(Response::new(pb::ListResourcesResponse {
            resources,
            revision: rev(snap.commit()),
        }))
    }

    async fn create_resource(
        &self,
        req: Request<pb::UpdateResourceRequest>,
    ) -> Result<Response<pb::ResourceResponse>, Status> {
        self.put_resource(req.into_inner(), true).await
    }

    async fn update_resource(
        &self,
        req: Request<pb::UpdateResourceRequest>,
    ) -> Result<Response<pb::ResourceResponse>, Status> {
        self.put_resource(req.into_inner(), false).await
    }

    async fn delete_resource(
        &self,
        req: Request<pb::DeleteResourceRequest>,
    ) -> Result<Response<pb::DeleteResourceResponse>, Status> {
        let r = req.into_inner();
        non_empty("key", &r.key)?;
        let kind = resource_type(&r.type_url)?;
        let env = self.resolve(&r.environment_key)?;
        let op = match kind {
            ResourceType::Flag => Operation::DeleteFlag {
                namespace: r.namespace_key.clone(),
                key: r.key.clone(),
            },
            ResourceType::Segment => Operation::DeleteSegment {
                namespace: r.namespace_key.clone(),
                key: r.key.clone(),
            },
        };
        let revision = self.write(&env, &r.revision, op).await?;
        Ok(Response::new(pb::DeleteResourceResponse { revision }))
    }
}

impl EnvironmentsApi {
    async fn put_namespace(
        &self,
        r: pb::UpdateNamespaceRequest,
        operation: fn(resource_model::Namespace) -> Operation,
    ) -> Result<Response<pb::NamespaceResponse>, Status> {
        non_empty("key", &r.key)?;
        let env = self.resolve(&r.environment_key)?;
        let ns = core_convert::namespace_from_request(&r);
        let revision = self.write(&env, &r.revision, operation(ns.clone())).await?;
        Ok(Response::new(pb::NamespaceResponse {
            namespace: Some(core_convert::namespace_to_proto(&ns)),
            revision,
        }))
    }

    async fn put_resource(
        &self,
        r: pb::UpdateResourceRequest,
        create: bool,
    ) -> Result<Response<pb::ResourceResponse>, Status> {
        non_empty("key", &r.key)?;
        let env = self.resolve(&r.environment_key)?;
        let any = r
            .payload
            .clone()
            .ok_or_else(|| Status::invalid_argument("payload must not be empty"))?;
        let decoded = core_convert::resource_from_any(&any)
            .map_err(|e| Status::invalid_argument(format!("invalid payload: {e}")))?;
        let namespace = r.namespace_key.clone();
        let (op, payload) = match decoded {
            Decoded::Flag(mut flag) => {
                payload_key(&mut flag.key, &r.key)?;
                let payload = core_convert::flag_to_any(&flag);
                (
                    if create {
                        Operation::CreateFlag { namespace, flag }
                    } else {
                        Operation::UpdateFlag { namespace, flag }
                    },
                    payload,
                )
            }
            Decoded::Segment(mut segment) => {
                payload_key(&mut segment.key, &r.key)?;
                let payload = core_convert::segment_to_any(&segment);
                (
                    if create {
                        Operation::CreateSegment { namespace, segment }
                    } else {
                        Operation::UpdateSegment { namespace, segment }
                    },
                    payload,
                )
            }
        };
        let revision = self.write(&env, &r.revision, op).await?;
        Ok(Response::new(pb::ResourceResponse {
            resource: Some(pb::Resource {
                namespace_key: r.namespace_key,
                key: r.key,
                payload: Some(payload),
            }),
            revision,
        }))
    }
}
