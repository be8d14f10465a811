//! M1 and M2: resident memory (`VmRSS` in `/proc/<pid>/status`) of the real server.
//!
//! - M1: serving the 10,000-flag repository (`local` backend) minus serving an empty one,
//!   against the size of the YAML files.
//! - M2: memory backend, 10,000 single-flag writes through the API to the 10,000-flag
//!   repository; RSS after all of them minus RSS after 2,000. Then 10,000 more writes, reported
//!   beside the figure, to show whether memory levels off once every flag has been edited.
//!   Each point is taken right after a compaction of the backend (see `growth`).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use storage_proto::environments::{ListNamespacesRequest, UpdateResourceRequest};

use super::{Ctx, EnvClient, channel, local_config, seeded_memory_server, wait_for, wait_served};
use crate::charts::Charts;
use crate::data;
use crate::load::Latencies;
use crate::process::Process;
use crate::report::{Figure, Target};

const MIB: f64 = 1024.0;

/// RSS once it stops moving: sampled every 100 ms until two samples 500 ms apart differ by
/// less than 1 % (at most 10 s), in KiB.
async fn settled_rss(p: &Process) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = p.rss_kib()?;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = p.rss_kib()?;
        if now.abs_diff(last) * 100 < last.max(1) || Instant::now() > deadline {
            return Ok(now);
        }
        last = now;
    }
}

/// The server's live heap and the freed memory its allocator holds, in KiB (zero when the
/// server cannot tell: not glibc).
fn heap_kib(p: &Process) -> Result<[u64; 2]> {
    let kib =
        |name: &str| -> Result<u64> { Ok(p.metric(name)?.map_or(0, |b| (b / 1024.0) as u64)) };
    Ok([
        kib("flipt_storage_heap_in_use_bytes")?,
        kib("flipt_storage_heap_free_held_bytes")?,
    ])
}

/// `RssAnon`, `RssFile` and `RssShmem` of `p`, in KiB.
fn rss_parts(p: &Process) -> Result<[u64; 3]> {
    Ok([
        p.status_kib("RssAnon")?,
        p.status_kib("RssFile")?,
        p.status_kib("RssShmem")?,
    ])
}

pub(super) async fn rss(ctx: &mut Ctx) -> Result<Vec<Figure>> {
    let repo = ctx.repo10k()?;
    let rounds = ctx.scale.pick(3, 2);
    let yaml_mib = repo.yaml_bytes as f64 / 1024.0 / 1024.0;
    let (mut deltas, mut full_kib, mut empty_kib) = (Vec::new(), Vec::new(), Vec::new());
    let (mut full_anon, mut empty_anon) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let full = ctx
            .bins
            .start_server("m1-full", &local_config(&repo.path), &ctx.scratch)?;
        let mut env = EnvClient::new(channel(&full.grpc).await?);
        wait_served(&mut env, repo.namespaces).await?;
        let full_rss = settled_rss(&full).await?;
        full_anon.push(full.status_kib("RssAnon")?);
        drop((env, full));

        let empty_dir = ctx.dir("m1-empty")?;
        let empty = ctx
            .bins
            .start_server("m1-empty", &local_config(&empty_dir), &ctx.scratch)?;
        let env = EnvClient::new(channel(&empty.grpc).await?);
        wait_for(
            "the empty repository to be served",
            Duration::from_secs(60),
            || {
                let mut env = env.clone();
                async move {
                    env.list_namespaces(ListNamespacesRequest {
                        environment_key: "default".into(),
                    })
                    .await?;
                    Ok(())
                }
            },
        )
        .await?;
        let empty_rss = settled_rss(&empty).await?;
        empty_anon.push(empty.status_kib("RssAnon")?);
        drop((env, empty));
        full_kib.push(full_rss);
        empty_kib.push(empty_rss);
        deltas.push((full_rss as f64 - empty_rss as f64) / MIB);
    }
    let base = vec![yaml_mib; deltas.len()];
    Ok(vec![
        Figure::compared(
            "M1",
            "server RSS with the 10k-flag environment loaded minus RSS serving an empty repository",
            "MiB",
            deltas,
            "size of the YAML files",
            base,
            Target::RatioAtMost(4.0),
            1,
            0,
        )
        .note(format!(
            "`flipt-storage serve`, `local` backend on the generated bare repository (loose objects on tmpfs: libgit2 reads them and maps only pack files, so the repository's bytes are not part of the RSS) vs a `local` backend on an empty directory (seeded with a README commit); VmRSS read once the last flag is served and RSS has settled (< 1 % change over 500 ms); VmRSS loaded {full_kib:?} KiB, empty {empty_kib:?} KiB; of which RssAnon (heap) loaded {full_anon:?} KiB, empty {empty_anon:?} KiB; a new process per run"
        )),
    ])
}

/// What M2 reads at one measuring point.
struct Point {
    writes: usize,
    rss: u64,
    parts: [u64; 3],
    heap: [u64; 2],
    held_kib: u64,
}

pub(super) async fn growth(ctx: &mut Ctx, charts: &mut Charts) -> Result<Vec<Figure>> {
    let s = ctx.scale;
    let (first, total) = s.pick((2_000usize, 10_000usize), (1_000, 3_000));
    // Past the figure: as many writes again, to see whether memory levels off once every
    // flag has been edited (the 10,000 writes edit each of the 10,000 flags once).
    let beyond = 2 * total;
    let server = seeded_memory_server(ctx, "m2", 100).await?;
    let mut env = EnvClient::new(channel(&server.grpc).await?);
    let start_rss = server.rss_kib()?;
    let mut points = vec![(0.0, start_rss as f64 / MIB)];
    let t = Instant::now();
    let (mut window, mut window_p50) = (Latencies::new(), Vec::new());
    // The three measuring points: at `first`, `total` and `beyond` writes, each moved on to
    // the first write that leaves nothing held in RAM (the backend compacts by bytes held, so
    // RSS is a saw-tooth whose period need not divide those numbers; measuring at the same
    // phase, right after a compaction, keeps up to 16 MiB of held objects out of the
    // difference).
    let targets = [first, total, beyond];
    let mut measured: Vec<Point> = Vec::new();
    let mut i = 0;
    while measured.len() < targets.len() {
        i += 1;
        let ns = i % 100;
        let f = (i / 100) % data::FLAGS_PER_NAMESPACE;
        let key = data::flag_key(ns, f);
        let flag = data::flag_proto(ns, &key, &format!("edit {i}"), i % 2 == 0);
        let started = Instant::now();
        env.update_resource(UpdateResourceRequest {
            environment_key: "default".into(),
            namespace_key: data::namespace_key(ns),
            key,
            payload: Some(data::flag_any(&flag)),
            revision: String::new(),
        })
        .await
        .with_context(|| format!("write {i}"))?;
        window.record(started.elapsed());
        if i % 1000 == 0 {
            window_p50.push((i as f64, window.p50_us() / 1000.0));
            window = Latencies::new();
        }
        if i % 250 == 0 {
            points.push((i as f64, server.rss_kib()? as f64 / MIB));
        }
        let target = targets[measured.len()];
        if i >= target {
            let held = server
                .metric("flipt_storage_memory_held_bytes")?
                .context("the server reports no flipt_storage_memory_held_bytes")?;
            // A write after a compaction holds its objects until the next one: at most the
            // bound's worth of writes (~260 of these files); give up on the phase long after.
            if held == 0.0 || i >= target + 5_000 {
                measured.push(Point {
                    writes: i,
                    rss: server.rss_kib()?,
                    parts: rss_parts(&server)?,
                    heap: heap_kib(&server)?,
                    held_kib: (held / 1024.0) as u64,
                });
            }
        }
    }
    let elapsed = t.elapsed();
    let [at_first, at_end, at_beyond] = [0, 1, 2].map(|k| measured[k].rss);
    let [parts_first, parts_end, parts_beyond] = [0, 1, 2].map(|k| measured[k].parts);
    let [heap_first, heap_end, heap_beyond] = [0, 1, 2].map(|k| measured[k].heap);
    let [w_first, w_end, w_beyond] = [0, 1, 2].map(|k| measured[k].writes);
    let growth = (at_end as f64 - at_first as f64) / MIB;
    charts.growth(
        "growth-m2.svg",
        "M2: server RSS during single-flag writes (memory backend, 10k flags)",
        "writes",
        "RSS (MiB)",
        vec![("VmRSS".into(), points)],
        false,
    );
    let mut f = Figure::alone(
        "M2",
        &format!("memory backend: RSS after {total} single-flag writes minus after {first}"),
        "MiB",
        vec![growth],
        Target::ValueBelow(16.0),
        total as u64,
    )
    .note(format!(
        "through the real server: `flipt-storage serve`, memory backend, no remote, seeded with the 10,000-flag data set; UpdateResource calls one at a time, each changing one flag (description and enabled) round-robin over the namespaces, so that the first 10,000 edit every flag once; {i} writes in {:.1} s ({:.2} ms per write); RSS {:.1} MiB after seeding, {:.1} MiB after {w_first} writes, {:.1} MiB after {w_end}, {:.1} MiB after {w_beyond}; one run (the figure is a difference within the run); the memory backend packs the objects it holds in RAM once they reach 16 MiB, so RSS is a saw-tooth (see growth-m2.svg), and each measuring point is the first write at or after {first}, {total} and {beyond} that leaves nothing held (the server's `flipt_storage_memory_held_bytes` is 0: right after a compaction; held at the three points: {} KiB)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / i as f64,
        start_rss as f64 / MIB,
        at_first as f64 / MIB,
        at_end as f64 / MIB,
        at_beyond as f64 / MIB,
        measured
            .iter()
            .map(|p| p.held_kib.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let part = |a: &[u64; 3], b: &[u64; 3], i: usize| (b[i] as f64 - a[i] as f64) / MIB;
    f = f.note(format!(
        "the growth by kind of page (/proc/<pid>/status): RssAnon (heap) {:+.1} MiB, RssFile {:+.1} MiB, RssShmem {:+.1} MiB (pack files of the memory backend's scratch directory mapped by libgit2, up to its {} MiB mapped limit; the bench keeps its scratch directories on tmpfs when /dev/shm is writable, and then those pages count as shared memory rather than page cache)",
        part(&parts_first, &parts_end, 0),
        part(&parts_first, &parts_end, 1),
        part(&parts_first, &parts_end, 2),
        git2_support::GlobalOptions::default().pack_mapped_limit_bytes >> 20
    ));
    let heap = |a: &[u64; 2], b: &[u64; 2], i: usize| (b[i] as f64 - a[i] as f64) / MIB;
    if heap_end[0] > 0 {
        f = f.note(format!(
            "the heap by the allocator's count (the server's `flipt_storage_heap_in_use_bytes` and `flipt_storage_heap_free_held_bytes`, glibc's mallinfo2): live {:.1} MiB after {w_first} writes, {:.1} after {w_end}, {:.1} after {w_beyond}; freed but held by the allocator {:.1}, {:.1}, {:.1} MiB; from {w_first} to {w_end} live {:+.1} MiB, held {:+.1} MiB",
            heap_first[0] as f64 / MIB,
            heap_end[0] as f64 / MIB,
            heap_beyond[0] as f64 / MIB,
            heap_first[1] as f64 / MIB,
            heap_end[1] as f64 / MIB,
            heap_beyond[1] as f64 / MIB,
            heap(&heap_first, &heap_end, 0),
            heap(&heap_first, &heap_end, 1),
        ));
    }
    f = f.note(format!(
        "levelling off, past the figure: from {w_end} to {w_beyond} writes (every flag edited a second time) RSS {:+.1} MiB: RssAnon {:+.1}, RssFile {:+.1}, RssShmem {:+.1} MiB",
        (at_beyond as f64 - at_end as f64) / MIB,
        part(&parts_end, &parts_beyond, 0),
        part(&parts_end, &parts_beyond, 1),
        part(&parts_end, &parts_beyond, 2)
    ));
    f = f.note(format!(
        "UpdateResource p50 per 1,000 writes (ms): {}",
        window_p50
            .iter()
            .map(|(_, ms)| crate::report::num(*ms))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    charts.growth(
        "growth-m2-latency.svg",
        "M2: UpdateResource p50 per 1,000 writes (memory backend, 10k flags)",
        "writes",
        "p50 (ms)",
        vec![("UpdateResource p50".into(), window_p50)],
        false,
    );
    if s.quick {
        f = f.note("quick run: 3,000 writes, growth measured from 1,000, then 3,000 more (the full run does the figure's 10,000 from 2,000, then 10,000 more)");
    }
    Ok(vec![f])
}
