//! The figures of PERFORMANCE.md, each measured next to its baseline, and what they share:
//! the run's settings, the data sets, clients of the real server, seeding, waiting.

mod build;
mod memory;
mod read;
mod snapshot;
mod sync;
mod write;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use storage_proto::environments::{
    GetResourceRequest, environments_service_client::EnvironmentsServiceClient,
};
use storage_proto::flipt::storage::v1::{
    CommitRequest, FileChange, file_change, storage_service_client::StorageServiceClient,
};
use tonic::transport::Channel;

use crate::charts::Charts;
use crate::data::{self, Generated};
use crate::process::{Binaries, Process};
use crate::report::Figure;

/// Flipt's API client.
pub type EnvClient = EnvironmentsServiceClient<Channel>;
/// The storage API client.
pub type StorageClient = StorageServiceClient<Channel>;

/// How much a run measures.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// `--quick`.
    pub quick: bool,
    /// Interleaved rounds (A B A B ...) per comparison.
    pub rounds: usize,
}

impl Scale {
    /// The settings of a full or a `--quick` run.
    pub fn new(quick: bool) -> Scale {
        Scale {
            quick,
            rounds: if quick { 3 } else { 5 },
        }
    }

    /// `full` in a full run, `quick` in a quick one.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }
}

/// What every figure needs.
#[derive(Debug)]
pub struct Ctx {
    /// The programs.
    pub bins: Binaries,
    /// This run's scratch directory (removed at the end).
    pub scratch: PathBuf,
    /// Run size.
    pub scale: Scale,
    /// The workspace (for C1).
    pub workspace: PathBuf,
    /// Where the report goes (for C1's target directory).
    pub out: PathBuf,
    repo10k: Option<Generated>,
}

impl Ctx {
    /// A context; the data sets are generated on first use.
    pub fn new(
        bins: Binaries,
        scratch: PathBuf,
        scale: Scale,
        workspace: PathBuf,
        out: PathBuf,
    ) -> Ctx {
        Ctx {
            bins,
            scratch,
            scale,
            workspace,
            out,
            repo10k: None,
        }
    }

    /// The generated 10,000-flag repository (read-only: figures that write use copies).
    pub fn repo10k(&mut self) -> Result<Generated> {
        if let Some(g) = &self.repo10k {
            return Ok(g.clone());
        }
        let t = Instant::now();
        let g = data::generate_repo(&self.scratch.join("data-10k.git"), 100)?;
        eprintln!(
            "data set: 10,000 flags, 100 segments, 100 namespace files, {:.1} MB of YAML, generated in {:.1} s",
            g.yaml_bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        self.repo10k = Some(g.clone());
        Ok(g)
    }

    /// A new directory under the scratch directory.
    pub fn dir(&self, prefix: &str) -> Result<PathBuf> {
        Ok(tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir_in(&self.scratch)?
            .keep())
    }
}

/// A group of figures measured together (they share servers or data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// R1, R2.
    Read,
    /// W1, W3.
    Write,
    /// W2 (file, http).
    Remote,
    /// S1 (file, http).
    Sync,
    /// S2, S3.
    Snapshot,
    /// M1.
    Rss,
    /// M2.
    Growth,
    /// C1.
    Build,
}

impl Group {
    /// Every group, in the order of a run.
    pub const ALL: [Group; 8] = [
        Group::Read,
        Group::Write,
        Group::Remote,
        Group::Sync,
        Group::Snapshot,
        Group::Rss,
        Group::Growth,
        Group::Build,
    ];

    /// The figure ids the group measures.
    pub fn ids(self) -> &'static [&'static str] {
        match self {
            Group::Read => &["R1", "R2"],
            Group::Write => &["W1", "W3"],
            Group::Remote => &["W2-file", "W2-http"],
            Group::Sync => &["S1-file", "S1-http"],
            Group::Snapshot => &["S2", "S3"],
            Group::Rss => &["M1"],
            Group::Growth => &["M2"],
            Group::Build => &["C1-build", "C1-test"],
        }
    }

    /// Whether a run with `filter` measures this group. Without a filter every group but
    /// C1 runs (C1 does not fit the time budget); a filter selects the groups with a figure
    /// id starting with it (case-insensitive), so `W` selects W1, W2 and W3.
    pub fn selected(self, filter: Option<&str>) -> bool {
        match filter {
            None => self != Group::Build,
            Some(f) => {
                let f = f.to_ascii_uppercase();
                self.ids()
                    .iter()
                    .any(|id| id.to_ascii_uppercase().starts_with(&f))
            }
        }
    }
}

/// Runs the selected groups; a group that fails is reported as not measured and the run
/// goes on.
pub async fn run(ctx: &mut Ctx, filter: Option<&str>, charts: &mut Charts) -> Vec<Figure> {
    let mut figures = Vec::new();
    for group in Group::ALL {
        if !group.selected(filter) {
            continue;
        }
        eprintln!("== {}", group.ids().join(", "));
        let t = Instant::now();
        let result = match group {
            Group::Read => read::run(ctx, charts).await,
            Group::Write => write::run(ctx, charts).await,
            Group::Remote => sync::run(ctx, charts, true, false).await,
            Group::Sync => sync::run(ctx, charts, false, true).await,
            Group::Snapshot => snapshot::run(ctx).await,
            Group::Rss => memory::rss(ctx).await,
            Group::Growth => memory::growth(ctx, charts).await,
            Group::Build => build::run(ctx).await,
        };
        match result {
            Ok(mut done) => {
                for f in &done {
                    eprintln!(
                        "   {}: {} {} (baseline {}; ratio {}; target {}; {})",
                        f.id,
                        crate::report::num(f.value),
                        f.unit,
                        f.baseline.map_or("-".into(), crate::report::num),
                        f.ratio.map_or("-".into(), crate::report::num),
                        f.target,
                        match f.pass {
                            Some(true) => "pass",
                            Some(false) => "MISS",
                            None => "tracked",
                        }
                    );
                }
                figures.append(&mut done);
            }
            Err(e) => {
                eprintln!("   failed: {e:#}");
                for id in group.ids() {
                    figures.push(Figure::failed(id, id, &e));
                }
            }
        }
        eprintln!("   ({:.1} s)", t.elapsed().as_secs_f64());
    }
    figures
}

/// A gRPC channel to `url` (one HTTP/2 connection).
pub async fn channel(url: &str) -> Result<Channel> {
    Channel::from_shared(url.to_owned())?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connect to {url}"))
}

/// Retries `check` every 20 ms until it succeeds or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => {
                return Err(e.context(format!("{what}: not within {timeout:?}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The request for the generated flag `f` of namespace `ns`.
pub fn get_flag(ns: usize, f: usize) -> GetResourceRequest {
    GetResourceRequest {
        environment_key: "default".into(),
        namespace_key: data::namespace_key(ns),
        type_url: "flipt.core.Flag".into(),
        key: data::flag_key(ns, f),
    }
}

/// Waits until the server serves the last flag of a data set of `namespaces` namespaces.
pub async fn wait_served(env: &mut EnvClient, namespaces: usize) -> Result<()> {
    let ns = namespaces - 1;
    let f = data::FLAGS_PER_NAMESPACE - 1;
    wait_for(
        "the data set to be served",
        Duration::from_secs(120),
        || {
            let mut env = env.clone();
            async move {
                env.get_resource(get_flag(ns, f)).await?;
                Ok(())
            }
        },
    )
    .await
}

/// Writes a data set of `namespaces` namespaces into a server's `default` storage through
/// the storage API's Commit, one namespace file per commit (as a team adding namespaces one
/// by one would), and waits until it is served.
pub async fn seed(grpc: &str, namespaces: usize) -> Result<()> {
    let ch = channel(grpc).await?;
    let mut storage = StorageClient::new(ch.clone()).max_decoding_message_size(64 << 20);
    for (path, content) in data::files(namespaces) {
        storage
            .commit(CommitRequest {
                storage_id: "default".into(),
                base_revision: None,
                changes: vec![FileChange {
                    path: path.clone(),
                    change: Some(file_change::Change::Content(content.into_bytes())),
                }],
                message: format!("add {path}"),
                author: None,
            })
            .await
            .with_context(|| format!("seed {path}"))?;
    }
    wait_served(&mut EnvClient::new(ch), namespaces).await
}

/// The configuration of a memory storage without remote.
pub fn memory_config() -> String {
    "storage:\n  default:\n    backend:\n      type: memory\n    branch: main\n".into()
}

/// The configuration of a memory storage with `remote` (polled once an hour, so only
/// writes and Refresh talk to it).
pub fn memory_remote_config(remote: &str) -> String {
    format!(
        "storage:\n  default:\n    backend:\n      type: memory\n    remote: {remote}\n    branch: main\n    poll_interval: 1h\n"
    )
}

/// The configuration of a local storage on `path`.
pub fn local_config(path: &Path) -> String {
    format!(
        "storage:\n  default:\n    backend:\n      type: local\n      path: {}\n    branch: main\n",
        path.display()
    )
}

/// A memory server seeded with `namespaces` namespaces.
pub async fn seeded_memory_server(ctx: &Ctx, name: &str, namespaces: usize) -> Result<Process> {
    let t = Instant::now();
    let server = ctx
        .bins
        .start_server(name, &memory_config(), &ctx.scratch)?;
    seed(&server.grpc, namespaces).await?;
    eprintln!(
        "   {name}: memory backend seeded with {} flags in {:.1} s",
        namespaces * data::FLAGS_PER_NAMESPACE,
        t.elapsed().as_secs_f64()
    );
    Ok(server)
}

/// Fails unless `cond`.
pub fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<()> {
    if !cond {
        bail!("{}", what());
    }
    Ok(())
}
