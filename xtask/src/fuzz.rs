//! `cargo xtask fuzz [--seconds N] [--target NAME]...`: the cargo-fuzz targets in `fuzz/`.
//!
//! The toolchain is stable; cargo-fuzz needs nightly flags (`-Zsanitizer`, sancov passes), so
//! every cargo-fuzz command runs with `RUSTC_BOOTSTRAP=1`. The fuzz crate is its own workspace
//! (with its own `target/` and `Cargo.lock`), so the root workspace's clippy, tests, tidy and
//! cargo-deny never see it.
//!
//! Each target runs for the given time over `fuzz/corpus/<target>` (grown by the run, not
//! committed) and `fuzz/seeds/<target>` (committed starting points). A crash, a timeout (over
//! 10 s for one input) or an input that needs more than 2 GB fails the run; libFuzzer writes
//! the input to `fuzz/artifacts/<target>/` and prints the command that replays it.

use std::{ffi::OsString, path::PathBuf, process::Command};

use anyhow::{Context as _, Result, bail};

use crate::{cargo, project_root, run};

/// Every target of `fuzz/fuzz_targets/`.
pub(crate) const TARGETS: &[&str] = &["config_parse", "features_parse", "grpc_decode"];

/// Seconds per target in `cargo xtask ci`.
pub(crate) const CI_SECONDS: u64 = 15;

/// Seconds per target when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 60;

/// The targets that read YAML get the YAML dictionary.
const YAML_TARGETS: &[&str] = &["config_parse", "features_parse"];

pub(crate) fn fuzz(args: &[OsString]) -> Result<()> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets: Vec<&'static str> = Vec::new();
    let mut args = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().context("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .with_context(|| format!("--seconds: `{value}` is not a number"))?;
            }
            "--target" => {
                let value = args.next().context("--target needs a name")?;
                let Some(target) = TARGETS.iter().find(|t| **t == value) else {
                    bail!(
                        "unknown fuzz target `{value}` (targets: {})",
                        TARGETS.join(", ")
                    );
                };
                targets.push(target);
            }
            other => bail!("`cargo xtask fuzz` does not take `{other}`"),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    run_targets(&targets, seconds)
}

/// Builds every target, then runs each for `seconds`.
pub(crate) fn run_targets(targets: &[&str], seconds: u64) -> Result<()> {
    let dir = fuzz_dir();
    run(cargo_fuzz().args(["build", "--release"]))?;
    for target in targets {
        let corpus = dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("cannot create `{}`", corpus.display()))?;
        let mut cmd = cargo_fuzz();
        cmd.args(["run", "--release", target])
            .arg(&corpus)
            .arg(dir.join("seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .args(["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"]);
        if YAML_TARGETS.contains(target) {
            cmd.arg(format!("-dict={}", dir.join("yaml.dict").display()));
        }
        run(&mut cmd)?;
    }
    Ok(())
}

fn fuzz_dir() -> PathBuf {
    project_root().join("fuzz")
}

/// `cargo fuzz` in `fuzz/`, with the nightly flags allowed on the stable toolchain.
fn cargo_fuzz() -> Command {
    let mut cmd = cargo();
    cmd.current_dir(fuzz_dir())
        .env("RUSTC_BOOTSTRAP", "1")
        .arg("fuzz");
    cmd
}
