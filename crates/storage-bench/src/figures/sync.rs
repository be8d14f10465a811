//! W2 and S1, over real transports (`file://` and smart HTTP through test-support's
//! `GitHttpServer`, which runs `git http-backend`).
//!
//! - W2: `CreateResource` on a memory server with a remote (the write is acknowledged once
//!   pushed) against raw git2 commit + push of the same change to a second remote with the
//!   same content over the same transport.
//! - S1: another user's push, then `Refresh` until the new head is on a `Watch` stream,
//!   against a raw git2 fetch of the same commit from the same remote.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use storage_proto::flipt::storage::v1::{RefreshRequest, WatchRequest};
use test_support::GitHttpServer;

use super::write::create_request;
use super::{Ctx, EnvClient, StorageClient, channel, ensure, memory_remote_config, wait_served};
use crate::charts::Charts;
use crate::data::{self, NamespaceText, RawWriter};
use crate::load::Latencies;
use crate::process::Process;
use crate::report::{Figure, Target};

/// One transport's setup: a server on remote A, raw git2 on remote B.
struct Transport {
    name: &'static str,
    url_a: String,
    url_b: String,
    /// The directory of the server's remote (`url_a`).
    remote_a: std::path::PathBuf,
    /// The directory of the baseline's remote (`url_b`).
    remote_b: std::path::PathBuf,
    /// Kept running while the transport is measured.
    _server: Process,
    env: EnvClient,
    storage: StorageClient,
    raw: RawWriter,
    texts: Vec<NamespaceText>,
    next: usize,
}

impl Transport {
    async fn create_batch(&mut self, n: usize) -> Result<Latencies> {
        let mut lat = Latencies::new();
        for _ in 0..n {
            let i = self.next;
            self.next += 1;
            let req = create_request(i % 100, &format!("new-{}-{i}", self.name));
            let t = Instant::now();
            self.env
                .create_resource(req)
                .await
                .with_context(|| format!("create flag {i} over {}", self.name))?;
            lat.record(t.elapsed());
        }
        Ok(lat)
    }

    fn raw_batch(&mut self, n: usize) -> Result<Latencies> {
        let mut lat = Latencies::new();
        for _ in 0..n {
            let i = self.next;
            self.next += 1;
            let ns = i % self.texts.len();
            let key = format!("new-raw-{i}");
            self.texts[ns].push_flag(&data::flag_yaml(ns, &key, "Created by the benchmark", true));
            let content = self.texts[ns].render();
            let path = data::namespace_path(ns);
            let t = Instant::now();
            self.raw
                .commit_file(&path, content.as_bytes(), &format!("create flag {key}"))?;
            self.raw.push(&self.url_b)?;
            lat.record(t.elapsed());
        }
        Ok(lat)
    }
}

pub(super) async fn run(
    ctx: &mut Ctx,
    charts: &mut Charts,
    measure_w2: bool,
    measure_s1: bool,
) -> Result<Vec<Figure>> {
    let repo = ctx.repo10k()?;
    let s = ctx.scale;
    let remotes = ctx.dir("remotes")?;
    let http = GitHttpServer::builder(&remotes).start();
    let mut transports = Vec::new();
    for name in ["file", "http"] {
        let (a, b) = (format!("{name}-a.git"), format!("{name}-b.git"));
        data::copy_repo(&repo.path, &remotes.join(&a))?;
        data::copy_repo(&repo.path, &remotes.join(&b))?;
        let (url_a, url_b) = if name == "file" {
            (
                data::file_url(&remotes.join(&a)),
                data::file_url(&remotes.join(&b)),
            )
        } else {
            (http.url(&a), http.url(&b))
        };
        let t = Instant::now();
        let server = ctx.bins.start_server(
            &format!("w2-{name}"),
            &memory_remote_config(&url_a),
            &ctx.scratch,
        )?;
        let ch = channel(&server.grpc).await?;
        let mut env = EnvClient::new(ch.clone());
        wait_served(&mut env, repo.namespaces).await?;
        eprintln!(
            "   w2-{name}: memory backend with remote {url_a} served the 10,000-flag data set after {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let raw = data::bare_clone(&url_b, &ctx.dir(&format!("raw-{name}"))?.join("repo.git"))?;
        transports.push(Transport {
            name,
            url_a,
            url_b,
            remote_a: remotes.join(&a),
            remote_b: remotes.join(&b),
            _server: server,
            env,
            storage: StorageClient::new(ch),
            raw,
            texts: (0..repo.namespaces).map(NamespaceText::generated).collect(),
            next: 0,
        });
    }

    let mut figures = Vec::new();
    if measure_w2 {
        let n = s.pick(30, 10);
        let warm = s.pick(5, 3);
        let mut lines = Vec::new();
        for t in &mut transports {
            t.create_batch(warm).await?;
            t.raw_batch(warm)?;
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let (mut all_a, mut all_b) = (Latencies::new(), Latencies::new());
            for _ in 0..s.rounds {
                // Outside the timing, as for S1: every push adds a pack to its remote, and
                // the baseline's clone keeps its commits as loose objects.
                repack(&t.remote_a)?;
                repack(&t.remote_b)?;
                repack(t.raw.repo().path())?;
                let x = t.create_batch(n).await?;
                let y = t.raw_batch(n)?;
                a.push(x.p50_us() / 1000.0);
                b.push(y.p50_us() / 1000.0);
                all_a.merge(&x);
                all_b.merge(&y);
            }
            lines.push((format!("CreateResource, {}", t.name), all_a.curve()));
            lines.push((format!("raw git2 commit + push, {}", t.name), all_b.curve()));
            let transport = if t.name == "file" {
                "a `file://` remote (bare repository on tmpfs)"
            } else {
                "a smart-HTTP remote on loopback (test-support's GitHttpServer: `git http-backend` behind a small HTTP/1.1 front with TCP_NODELAY, no TLS, no auth)"
            };
            figures.push(
                Figure::compared(
                    &format!("W2-{}", t.name),
                    &format!("CreateResource p50, memory backend, {} remote", t.name),
                    "ms",
                    a,
                    &format!("raw git2 commit + push ({})", t.name),
                    b,
                    Target::RatioAtMost(1.3),
                    n as u64,
                    warm as u64,
                )
                .note(format!("server: memory backend with {transport}, 10,000 flags; a write is acknowledged after the push; one call at a time"))
                .note("baseline: git2 on a bare clone of a second remote with the same content, same transport: the same kind of change (a new flag appended to a namespace file) committed with TreeUpdateBuilder and pushed (a new connection per push, as libgit2 makes)")
                .note("before each round, outside the timing, both remotes and the baseline's clone are repacked (`git repack -a -d`): every push adds a pack to its remote, which slowed both sides from round to round"),
            );
        }
        charts.latency(
            "latency-w2.svg",
            "W2: CreateResource with a remote vs raw git2 commit + push (us)",
            lines,
        );
    }

    if measure_s1 {
        let n = s.pick(20, 6);
        for t in &mut transports {
            figures.push(lag(ctx, t, n).await?);
        }
    }
    drop(http);
    Ok(figures)
}

/// `git repack -a -d -q` in the repository at `path`: its objects in one pack.
fn repack(path: &std::path::Path) -> Result<()> {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(path)
        .args(["repack", "-a", "-d", "-q"])
        .status()
        .with_context(|| format!("run git repack in {}", path.display()))?;
    ensure(status.success(), || {
        format!("git repack in {} failed ({status})", path.display())
    })
}

/// S1 on one transport.
async fn lag(ctx: &Ctx, t: &mut Transport, n: usize) -> Result<Figure> {
    let s = ctx.scale;
    // Another user: a clone of the server's remote. The fetcher of the baseline: another one.
    let mut user = data::bare_clone(
        &t.url_a,
        &ctx.dir(&format!("user-{}", t.name))?.join("repo.git"),
    )?;
    let fetcher = data::bare_clone(
        &t.url_a,
        &ctx.dir(&format!("fetch-{}", t.name))?.join("repo.git"),
    )?;
    let mut stream = t
        .storage
        .watch(WatchRequest {
            storage_id: "default".into(),
            from_revision: None,
        })
        .await?
        .into_inner();
    let url_a = t.url_a.clone();
    let mut edit = 0usize;
    let mut push_change = |user: &mut RawWriter| -> Result<git2::Oid> {
        edit += 1;
        let ns = (edit * 37) % 100;
        let path = data::namespace_path(ns);
        let text = {
            let head = user.repo().find_commit(user.head())?;
            let entry = head.tree()?.get_path(std::path::Path::new(&path))?;
            let blob = user.repo().find_blob(entry.id())?;
            String::from_utf8_lossy(blob.content()).into_owned()
        };
        let changed = text.replacen(
            &format!("description: {}", data::DESCRIPTION),
            &format!("description: edited by another user ({edit})"),
            1,
        );
        ensure(changed != text, || {
            format!("no flag left to edit in {path}")
        })?;
        let commit = user.commit_file(
            &path,
            changed.as_bytes(),
            &format!("another user's edit {edit}"),
        )?;
        user.push(&url_a)?;
        Ok(commit)
    };

    let warm = s.pick(3, 2);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..=s.rounds {
        // Outside the timing: the remote gets a pack per push (W2's and these), the
        // baseline's clone one per fetch, and hundreds of packs slowed both sides' fetches
        // 2-3x within a run (the server's own packs are merged by its memory backend).
        repack(&t.remote_a)?;
        repack(fetcher.repo().path())?;
        let (mut x, mut y) = (Latencies::new(), Latencies::new());
        let ops = if round == 0 { warm } else { n };
        for i in 0..ops {
            let commit = push_change(&mut user)?;
            let want = commit.to_string();
            // A then B, or B then A, alternately.
            for side in if i % 2 == 0 { [0, 1] } else { [1, 0] } {
                if side == 0 {
                    // The stream is read here, after Refresh returns: the event may be waiting
                    // already (the connection's task receives it meanwhile). Reading it
                    // through a task of its own and a channel added a handoff between threads
                    // of the client, ~0.25 ms, to the server's figure.
                    let start = Instant::now();
                    t.storage
                        .refresh(RefreshRequest {
                            storage_id: "default".into(),
                        })
                        .await?;
                    let deadline = start + Duration::from_secs(30);
                    loop {
                        let left = deadline.saturating_duration_since(Instant::now());
                        let event = tokio::time::timeout(left, stream.message())
                            .await
                            .with_context(|| {
                                format!("{want} not on the Watch stream within 30 s")
                            })??
                            .context("Watch stream ended")?;
                        // Heartbeats and events of earlier heads are skipped.
                        if !event.heartbeat && event.to == want {
                            break;
                        }
                    }
                    x.record(start.elapsed());
                } else {
                    let start = Instant::now();
                    let got = fetcher.fetch(&t.url_a)?;
                    let took = start.elapsed();
                    ensure(got == commit, || {
                        format!("fetched {got}, expected {commit}")
                    })?;
                    y.record(took);
                }
            }
        }
        if round > 0 {
            a.push(x.p50_us() / 1000.0);
            b.push(y.p50_us() / 1000.0);
        }
    }
    let transport = if t.name == "file" {
        "file://"
    } else {
        "smart HTTP (GitHttpServer, loopback)"
    };
    Ok(Figure::compared(
        &format!("S1-{}", t.name),
        &format!("sync lag p50: another user's push -> Refresh -> on Watch ({})", t.name),
        "ms",
        a,
        &format!("raw git2 fetch ({})", t.name),
        b,
        Target::RatioAtMost(1.3),
        n as u64,
        warm as u64,
    )
    .note(format!("another user (a git2 bare clone) commits a one-flag edit and pushes it over {transport}; the clock starts after the push: the server's value is Refresh plus the wait for the new head on an open Watch stream, which the timing task reads itself once Refresh returns (the event may be waiting already); the baseline is a git2 fetch of the same commit into another bare clone of the same remote; the order of the two alternates per push; before each round, outside the timing, the remote and the baseline's clone are repacked (`git repack -a -d`): without it both accumulate a pack per push or fetch (hundreds over W2 and S1) and both sides' fetches slowed 2-3x within a run, the baseline's more, which flattered the ratio"))
    .note("the server is the W2 server of the same transport (memory backend, 10,000 flags, poll interval 1 h so that only Refresh fetches)"))
}
