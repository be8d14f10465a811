//! W1 and W3: `CreateResource` through the real server, memory backend without remote, at
//! 10,000, 1,000 and 100 flags, against raw git2 (the same blob, the trees on its path, a
//! commit, the ref) plus one echo RPC of the same payload sizes.

use std::time::Instant;

use anyhow::{Context as _, Result};
use prost::Message as _;
use storage_proto::environments::{DeleteResourceRequest, UpdateResourceRequest};
use storage_proto::flipt::storage::v1::{CommitRequest, FileChange, file_change};

use super::{Ctx, EnvClient, StorageClient, channel, seeded_memory_server};
use crate::charts::Charts;
use crate::data::{self, NamespaceText, RawWriter};
use crate::echo::{EchoClient, request_like};
use crate::load::Latencies;
use crate::report::{Figure, Target};

/// The request creating flag `new-<tag>-<i>` in namespace `ns`.
pub(super) fn create_request(ns: usize, key: &str) -> UpdateResourceRequest {
    let flag = data::flag_proto(ns, key, "Created by the benchmark", true);
    UpdateResourceRequest {
        environment_key: "default".into(),
        namespace_key: data::namespace_key(ns),
        key: key.into(),
        payload: Some(data::flag_any(&flag)),
        revision: String::new(),
    }
}

/// A writer of `CreateResource` calls on one server: new flags spread over its namespaces.
struct Creator {
    env: EnvClient,
    namespaces: usize,
    tag: &'static str,
    next: usize,
}

impl Creator {
    async fn batch(&mut self, n: usize) -> Result<Latencies> {
        let mut lat = Latencies::new();
        let start = Instant::now();
        for _ in 0..n {
            let i = self.next;
            self.next += 1;
            let ns = i % self.namespaces;
            let key = format!("new-{}-{i}", self.tag);
            let req = create_request(ns, &key);
            let t = Instant::now();
            self.env
                .create_resource(req)
                .await
                .with_context(|| format!("create flag {i} ({})", self.tag))?;
            lat.record(t.elapsed());
            // Untimed: the flag goes again, so every create sees a namespace file of 100
            // flags whatever the number of namespaces (otherwise the 100-flag server's one
            // file would grow with every call and W3 would compare files of different sizes).
            self.env
                .delete_resource(DeleteResourceRequest {
                    environment_key: "default".into(),
                    namespace_key: data::namespace_key(ns),
                    type_url: "flipt.core.Flag".into(),
                    key,
                    revision: String::new(),
                })
                .await
                .with_context(|| format!("delete flag {i} ({})", self.tag))?;
        }
        lat.elapsed = start.elapsed();
        Ok(lat)
    }
}

/// The raw git2 side of W1: the same new flag appended to the same namespace file, one commit
/// per flag, plus one echo call of the create call's sizes.
struct RawCreator {
    writer: RawWriter,
    texts: Vec<NamespaceText>,
    echo: EchoClient<tonic::transport::Channel>,
    echo_request: crate::echo::EchoRequest,
    next: usize,
}

impl RawCreator {
    async fn batch(&mut self, n: usize) -> Result<Latencies> {
        let mut lat = Latencies::new();
        let start = Instant::now();
        for _ in 0..n {
            let i = self.next;
            self.next += 1;
            let ns = i % self.texts.len();
            let key = format!("new-raw-{i}");
            let mut text = self.texts[ns].clone();
            text.push_flag(&data::flag_yaml(ns, &key, "Created by the benchmark", true));
            let content = text.render();
            let restore = self.texts[ns].render();
            let path = data::namespace_path(ns);
            let message = format!("create flag {}/{key}", data::namespace_key(ns));
            let t = Instant::now();
            self.writer
                .commit_file(&path, content.as_bytes(), &message)?;
            self.echo.echo(self.echo_request.clone()).await?;
            lat.record(t.elapsed());
            // Untimed, as on the server side: the flag goes again.
            self.writer
                .commit_file(&path, restore.as_bytes(), &format!("delete flag {key}"))?;
        }
        lat.elapsed = start.elapsed();
        Ok(lat)
    }
}

/// Diagnostic beside W1: the storage layer alone, `StorageService.Commit` of the same change
/// (the whole namespace file with one flag appended) on another 10,000-flag memory server.
struct Committer {
    storage: StorageClient,
    texts: Vec<NamespaceText>,
    next: usize,
}

impl Committer {
    async fn batch(&mut self, n: usize) -> Result<Latencies> {
        let mut lat = Latencies::new();
        let start = Instant::now();
        for _ in 0..n {
            let i = self.next;
            self.next += 1;
            let ns = i % self.texts.len();
            let key = format!("new-commit-{i}");
            let mut text = self.texts[ns].clone();
            text.push_flag(&data::flag_yaml(ns, &key, "Created by the benchmark", true));
            let commit = |content: String, message: String| CommitRequest {
                storage_id: "default".into(),
                base_revision: None,
                changes: vec![FileChange {
                    path: data::namespace_path(ns),
                    change: Some(file_change::Change::Content(content.into_bytes())),
                }],
                message,
                author: None,
            };
            let req = commit(
                text.render(),
                format!("create flag {}/{key}", data::namespace_key(ns)),
            );
            let restore = commit(self.texts[ns].render(), format!("delete flag {key}"));
            let t = Instant::now();
            self.storage
                .commit(req)
                .await
                .with_context(|| format!("commit {i}"))?;
            lat.record(t.elapsed());
            // Untimed, as on the other servers: the flag goes again.
            self.storage
                .commit(restore)
                .await
                .with_context(|| format!("commit {i} (restore)"))?;
        }
        lat.elapsed = start.elapsed();
        Ok(lat)
    }
}

pub(super) async fn run(ctx: &mut Ctx, charts: &mut Charts) -> Result<Vec<Figure>> {
    let repo = ctx.repo10k()?;
    let s = ctx.scale;
    let sizes = [(100usize, "10k"), (10, "1k"), (1, "100")];
    let mut servers = Vec::new();
    for (namespaces, tag) in sizes {
        let p = seeded_memory_server(ctx, &format!("w-{tag}"), namespaces).await?;
        let env = EnvClient::new(channel(&p.grpc).await?);
        servers.push((
            p,
            Creator {
                env,
                namespaces,
                tag,
                next: 0,
            },
        ));
    }
    let commit_server = seeded_memory_server(ctx, "w-commit", 100).await?;
    let mut committer = Committer {
        storage: StorageClient::new(channel(&commit_server.grpc).await?),
        texts: (0..100).map(NamespaceText::generated).collect(),
        next: 0,
    };
    let echo_process = ctx.bins.start_echo(&ctx.scratch)?;
    let sample = create_request(50, "new-10k-5000");
    let request_bytes = sample.encoded_len();
    let reply_bytes = servers[0]
        .1
        .env
        .create_resource(sample)
        .await?
        .into_inner()
        .encoded_len();
    let copy = ctx.dir("w1-raw")?.join("repo.git");
    data::copy_repo(&repo.path, &copy)?;
    let mut raw = RawCreator {
        writer: RawWriter::open(&copy)?,
        texts: (0..repo.namespaces).map(NamespaceText::generated).collect(),
        echo: EchoClient::new(channel(&echo_process.grpc).await?),
        echo_request: request_like(request_bytes, reply_bytes),
        next: 0,
    };

    let n = s.pick(100, 30);
    let warm = s.pick(20, 10);
    for (_, c) in &mut servers {
        c.batch(warm).await?;
    }
    raw.batch(warm).await?;
    committer.batch(warm).await?;
    // Diagnostic beside W3: the 10k server again, every create in the same namespace (as on
    // the 100-flag server), to tell the repository's size from the spread over namespaces.
    let mut one_namespace = Creator {
        env: servers[0].1.env.clone(),
        namespaces: 1,
        tag: "10k-one",
        next: 0,
    };
    one_namespace.batch(warm).await?;
    let mut one_runs = Vec::new();
    let (mut commit_runs, mut commit_all) = (Vec::new(), Latencies::new());
    let mut runs: [Vec<f64>; 4] = Default::default();
    let mut all: [Latencies; 4] = Default::default();
    for _ in 0..s.rounds {
        // A B A B: the 10k server, the baseline, then the smaller servers.
        let order: [usize; 4] = [0, 3, 1, 2];
        for k in order {
            let lat = if k == 3 {
                raw.batch(n).await?
            } else {
                servers[k].1.batch(n).await?
            };
            runs[k].push(lat.p50_us() / 1000.0);
            all[k].merge(&lat);
        }
        one_runs.push(one_namespace.batch(n).await?.p50_us() / 1000.0);
        let lat = committer.batch(n).await?;
        commit_runs.push(lat.p50_us() / 1000.0);
        commit_all.merge(&lat);
    }
    let commit_spread = crate::report::Spread::of(&commit_runs);
    let [w10k, w1k, w100, base] = runs;
    let note_sizes = format!(
        "request {request_bytes} B, reply {reply_bytes} B; one call at a time on one channel (closed-loop, concurrency 1); each call creates a new flag (2 variants, 1 rule) in the next namespace, without a revision; an untimed delete of that flag follows each create (on the baseline: an untimed commit restoring the file), so every create meets a namespace file of 100 flags"
    );
    let w1 = Figure::compared(
        "W1",
        "CreateResource p50, memory backend, no remote, 10k flags",
        "ms",
        w10k.clone(),
        "raw git2 commit + echo",
        base,
        Target::RatioAtMost(2.0),
        n as u64,
        warm as u64,
    )
    .note("server: `flipt-storage serve`, memory backend, seeded with the 10,000-flag data set through StorageService.Commit, one namespace file per commit")
    .note("baseline: git2 on a bare copy of the data set on tmpfs: the same namespace file with the same flag appended written as a blob, TreeUpdateBuilder, commit, move refs/heads/main; then one echo call with the create call's request and reply sizes; the file's text is prepared before the clock starts")
    .note(note_sizes.clone())
    .note(format!(
        "diagnostic (not a figure): the storage layer alone, StorageService.Commit of the same change (the whole namespace file with one flag appended, {} KB) on a fourth 10,000-flag memory server, interleaved: p50 min / median / max {} ms",
        data::NamespaceText::generated(0).render().len() / 1000,
        commit_spread.map_or("-".into(), |s| format!(
            "{} / {} / {}",
            crate::report::num(s.min),
            crate::report::num(s.median),
            crate::report::num(s.max)
        ))
    ));
    let growth_1k = crate::report::Spread::of(&w1k).map_or(f64::NAN, |s| s.median);
    let w3 = Figure::compared(
        "W3",
        "CreateResource p50 at 10,000 flags / at 100 flags",
        "ms",
        w10k,
        "100 flags",
        w100,
        Target::RatioAtMost(1.5),
        n as u64,
        warm as u64,
    )
    .note(format!(
        "three memory servers (10,000 / 1,000 / 100 flags: 100 / 10 / 1 namespace files of 100 flags), interleaved; p50 at 1,000 flags: {} ms",
        crate::report::num(growth_1k)
    ))
    .note(format!(
        "diagnostic (not a figure): the 10,000-flag server with every create in one namespace (ns-0, as on the 100-flag server), interleaved: p50 min / median / max {} ms",
        crate::report::Spread::of(&one_runs).map_or("-".into(), |s| format!(
            "{} / {} / {}",
            crate::report::num(s.min),
            crate::report::num(s.median),
            crate::report::num(s.max)
        ))
    ))
    .note(note_sizes);
    charts.growth(
        "growth-w3.svg",
        "W3: CreateResource p50 by repository size",
        "flags in the repository",
        "p50 (ms)",
        vec![(
            "CreateResource p50".into(),
            vec![
                (100.0, all[2].p50_us() / 1000.0),
                (1000.0, all[1].p50_us() / 1000.0),
                (10000.0, all[0].p50_us() / 1000.0),
            ],
        )],
        true,
    );
    charts.latency(
        "latency-w1.svg",
        "W1: CreateResource (memory, no remote, 10k flags) vs raw git2 + echo (us)",
        vec![
            ("CreateResource".into(), all[0].curve()),
            ("raw git2 commit + echo".into(), all[3].curve()),
            (
                "StorageService.Commit (diagnostic)".into(),
                commit_all.curve(),
            ),
        ],
    );
    drop((servers, commit_server, echo_process));
    Ok(vec![w1, w3])
}
