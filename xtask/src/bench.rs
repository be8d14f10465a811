//! `cargo xtask bench [--quick] [--filter NAME]`: builds the server and the benchmark harness
//! in release mode, then runs `storage-bench run`, which measures the figures of
//! PERFORMANCE.md against their baselines and writes `target/bench/report.md`,
//! `target/bench/report.json` and SVG charts. A missed target is reported in the table, not
//! as a failure: the exit code is non-zero only when the harness itself fails.

use std::{env, ffi::OsString, path::PathBuf};

use anyhow::{Result, bail};

use crate::{cargo, project_root, run};

pub(crate) fn bench(args: &[OsString]) -> Result<()> {
    let mut forwarded: Vec<OsString> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--quick") => forwarded.push(arg.clone()),
            Some("--filter") => {
                let Some(name) = args.next() else {
                    bail!("`--filter` needs a figure name (R1, W2, S1, M2, C1, ...)");
                };
                forwarded.extend([arg.clone(), name.clone()]);
            }
            _ => bail!("usage: cargo xtask bench [--quick] [--filter NAME]; got {arg:?}"),
        }
    }
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "storage-server",
        "-p",
        "storage-bench",
    ]))?;
    let root = project_root();
    let target = env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let target = if target.is_absolute() {
        target
    } else {
        root.join(target)
    };
    let bin = target
        .join("release")
        .join(format!("storage-bench{}", env::consts::EXE_SUFFIX));
    run(std::process::Command::new(bin)
        .current_dir(&root)
        .arg("run")
        .args(forwarded)
        .arg("--out")
        .arg(root.join("target").join("bench"))
        .arg("--workspace")
        .arg(&root))
}
