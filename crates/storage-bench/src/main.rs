//! `storage-bench`: the benchmark harness (`storage-bench run`, normally started by
//! `cargo xtask bench`) and the echo server it compares the real server with
//! (`storage-bench echo-server`).

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use storage_bench::charts::Charts;
use storage_bench::figures::{self, Ctx, Scale};
use storage_bench::process::Binaries;
use storage_bench::report::Report;

#[derive(Parser)]
#[command(
    name = "storage-bench",
    about = "Benchmarks of the flag storage service (PERFORMANCE.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Measure the figures and write the report.
    Run {
        /// Fewer operations and repeats (whole run under 2 minutes).
        #[arg(long)]
        quick: bool,
        /// Only the figures whose id starts with NAME (`R1`, `W`, `S1`, `C1`, ...). C1 runs
        /// only when selected this way.
        #[arg(long, value_name = "NAME")]
        filter: Option<String>,
        /// Where report.md, report.json and the charts go.
        #[arg(long, default_value = "target/bench")]
        out: PathBuf,
        /// The `flipt-storage` binary (default: next to this program).
        #[arg(long)]
        server_bin: Option<PathBuf>,
        /// The workspace (for C1 and the commit id).
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
    },
    /// Serve the echo baseline on 127.0.0.1:0 and write `{"grpc":"ADDR"}` to the ready file.
    EchoServer {
        /// Written once the server listens.
        #[arg(long)]
        ready_file: PathBuf,
    },
}

fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("storage-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Cmd::EchoServer { ready_file } => rt.block_on(storage_bench::echo::serve(&ready_file)),
        Cmd::Run {
            quick,
            filter,
            out,
            server_bin,
            workspace,
        } => rt.block_on(run(quick, filter, out, server_bin, workspace)),
    }
}

async fn run(
    quick: bool,
    filter: Option<String>,
    out: PathBuf,
    server_bin: Option<PathBuf>,
    workspace: PathBuf,
) -> Result<()> {
    let started = Instant::now();
    let date = shell(&["date", "-u", "+%Y-%m-%d %H:%M:%S UTC"]).unwrap_or_default();
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let out = out.canonicalize()?;
    let workspace = workspace.canonicalize()?;
    // The same process-wide libgit2 settings as the server, for the raw git2 baselines.
    git2_support::configure(git2_support::GlobalOptions::default());
    let bins = Binaries::locate(server_bin)?;
    let root = storage_bench::data::scratch_root();
    let scratch = tempfile::Builder::new()
        .prefix("storage-bench-")
        .tempdir_in(&root)
        .with_context(|| format!("scratch directory in {}", root.display()))?;
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "storage-bench: {} run, server {}, data in {}",
        if quick { "quick" } else { "full" },
        bins.server.display(),
        scratch.path().display()
    );
    let mut ctx = Ctx::new(
        bins,
        scratch.path().to_owned(),
        Scale::new(quick),
        workspace.clone(),
        out.clone(),
    );
    let mut charts = Charts::new(out.clone());
    let figures = figures::run(&mut ctx, filter.as_deref(), &mut charts).await;
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut notes = vec![
        format!(
            "mode: {}; filter: {}",
            if quick { "--quick (fewer operations and repeats; same 10,000-flag data set; M2 with 3,000 writes)" } else { "full" },
            filter.as_deref().unwrap_or("none (every figure but C1, which runs only with --filter C1)")
        ),
        "load model: closed-loop (a fixed number of workers, each sends its next request when the previous answer arrived), one gRPC channel (one HTTP/2 connection) per client; latencies in HDR histograms (3 significant digits)".into(),
        "each comparison alternates figure and baseline runs (A B A B ...); value and baseline are the medians of their runs, ratio = value / baseline".into(),
        format!(
            "load average (1/5/15 min) before: {}, after: {} (the machine may be shared: absolute numbers drift, ratios measured side by side much less)",
            load_before.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
            load_after.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        ),
    ];
    for e in &charts.errors {
        notes.push(format!("chart not drawn: {e}"));
    }
    let report = Report {
        mode: if quick { "quick" } else { "full" }.into(),
        commit: commit(&workspace),
        date,
        machine: machine(),
        scratch: root.display().to_string(),
        elapsed_secs: started.elapsed().as_secs_f64(),
        figures,
        notes,
        charts: charts.files.clone(),
    };
    report.write(&out)?;
    println!("{}", report.table());
    println!(
        "report: {} (and report.json, {} chart(s)); {:.0} s",
        out.join("report.md").display(),
        report.charts.len(),
        report.elapsed_secs
    );
    Ok(())
}

fn shell(args: &[&str]) -> Option<String> {
    let out = Command::new(args[0]).args(&args[1..]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn commit(workspace: &std::path::Path) -> String {
    let dir = workspace.display().to_string();
    let Some(head) = shell(&["git", "-C", &dir, "rev-parse", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty = shell(&[
        "git",
        "-C",
        &dir,
        "status",
        "--porcelain",
        "--untracked-files=no",
    ])
    .is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}-dirty") } else { head }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, {mem_gib:.0} GiB, Linux {}",
        kernel.trim()
    )
}
