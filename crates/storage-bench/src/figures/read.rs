//! R1 and R2: `GetResource` through the real server (a `local` storage on the generated
//! 10,000-flag repository) against the echo server with the same client and payload sizes.

use std::time::Duration;

use anyhow::Result;
use prost::Message as _;

use super::{Ctx, EnvClient, channel, get_flag, local_config, wait_served};
use crate::charts::Charts;
use crate::data;
use crate::echo::{EchoClient, request_like};
use crate::load::{Latencies, Stop, closed_loop, op};
use crate::report::{Figure, Target};

const CONCURRENCY: usize = 64;

pub(super) async fn run(ctx: &mut Ctx, charts: &mut Charts) -> Result<Vec<Figure>> {
    let repo = ctx.repo10k()?;
    let server = ctx
        .bins
        .start_server("r-server", &local_config(&repo.path), &ctx.scratch)?;
    let echo_process = ctx.bins.start_echo(&ctx.scratch)?;
    let mut env = EnvClient::new(channel(&server.grpc).await?);
    wait_served(&mut env, repo.namespaces).await?;
    let echo = EchoClient::new(channel(&echo_process.grpc).await?);

    // Payload sizes of a typical call (the keys differ in length by a few bytes).
    let sample = get_flag(50, 50);
    let request_bytes = sample.encoded_len();
    let reply_bytes = env.get_resource(sample).await?.into_inner().encoded_len();
    let echo_request = request_like(request_bytes, reply_bytes);
    let flags = repo.namespaces * data::FLAGS_PER_NAMESPACE;

    let get = {
        let env = env.clone();
        op(move |i| {
            let mut env = env.clone();
            async move {
                let n = (i as usize * 7919) % flags;
                env.get_resource(get_flag(
                    n / data::FLAGS_PER_NAMESPACE,
                    n % data::FLAGS_PER_NAMESPACE,
                ))
                .await?;
                Ok(())
            }
        })
    };
    let call_echo = {
        let echo = echo.clone();
        op(move |_| {
            let mut echo = echo.clone();
            let req = echo_request.clone();
            async move {
                echo.echo(req).await?;
                Ok(())
            }
        })
    };

    let s = ctx.scale;
    // R1: throughput at 64 concurrent requests on one channel, closed-loop.
    let window = Duration::from_millis(s.pick(3000, 1000));
    let warmup = Duration::from_millis(s.pick(1000, 500));
    let mut warm = closed_loop(&get, CONCURRENCY, Stop::Duration(warmup), 0)
        .await?
        .ops;
    warm += closed_loop(&call_echo, CONCURRENCY, Stop::Duration(warmup), 0)
        .await?
        .ops;
    let (mut r1, mut r1_base, mut ops) = (Vec::new(), Vec::new(), 0);
    for _ in 0..s.rounds {
        let a = closed_loop(&get, CONCURRENCY, Stop::Duration(window), 0).await?;
        let b = closed_loop(&call_echo, CONCURRENCY, Stop::Duration(window), 0).await?;
        ops = ops.max(a.ops);
        r1.push(a.throughput());
        r1_base.push(b.throughput());
    }
    let r1 = Figure::compared(
        "R1",
        "GetResource throughput, 64 concurrent requests",
        "req/s",
        r1,
        "echo",
        r1_base,
        Target::RatioAtLeast(0.8),
        ops,
        warm,
    )
    .note(format!(
        "closed-loop: {CONCURRENCY} tasks on one channel (one HTTP/2 connection), each sending its next request when the previous answer arrived; {} s per run; release build, loopback; client, server and echo server share the machine's cores",
        window.as_secs_f64()
    ))
    .note(format!(
        "server: `flipt-storage serve` with a `local` storage on the generated 10,000-flag bare repository (tmpfs); keys spread over all 10,000 flags; request {request_bytes} B, reply {reply_bytes} B; the echo request and reply have the same encoded sizes"
    ));

    // R2: latency with one client, one request at a time.
    let n = s.pick(3000, 1000);
    let warm = s.pick(500, 200);
    closed_loop(&get, 1, Stop::Ops(warm), 0).await?;
    closed_loop(&call_echo, 1, Stop::Ops(warm), 0).await?;
    let (mut all, mut all_base) = (Latencies::new(), Latencies::new());
    let (mut p99, mut p99_base, mut p50, mut p50_base) = (vec![], vec![], vec![], vec![]);
    for _ in 0..s.rounds {
        let a = closed_loop(&get, 1, Stop::Ops(n), 0).await?;
        let b = closed_loop(&call_echo, 1, Stop::Ops(n), 0).await?;
        p99.push(a.percentile_us(99.0));
        p99_base.push(b.percentile_us(99.0));
        p50.push(a.p50_us());
        p50_base.push(b.p50_us());
        all.merge(&a);
        all_base.merge(&b);
    }
    let p50 = Figure::compared(
        "R2",
        "",
        "us",
        p50,
        "echo",
        p50_base,
        Target::Tracked,
        n,
        warm,
    );
    let r2 = Figure::compared(
        "R2",
        "GetResource latency p99, one client",
        "us",
        p99,
        "echo",
        p99_base,
        Target::RatioAtMost(1.5),
        n,
        warm,
    )
    .note(format!(
        "p50: {} us vs echo {} us (ratio {}); min / median / max of the runs' p50: {} / {} / {} us",
        crate::report::num(p50.value),
        p50.baseline.map_or("-".into(), crate::report::num),
        p50.ratio.map_or("-".into(), crate::report::num),
        p50.spread.map_or("-".into(), |s| crate::report::num(s.min)),
        p50.spread.map_or("-".into(), |s| crate::report::num(s.median)),
        p50.spread.map_or("-".into(), |s| crate::report::num(s.max)),
    ))
    .note("one request at a time on one channel (closed-loop, concurrency 1); the value is the median over runs of each run's p99");
    charts.latency(
        "latency-r2.svg",
        "R2: GetResource vs echo, one client (us)",
        vec![
            ("GetResource".into(), all.curve()),
            ("echo".into(), all_base.curve()),
        ],
    );
    drop((server, echo_process));
    Ok(vec![r1, r2])
}
